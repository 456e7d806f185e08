//! Where agents spent their time: a heatmap of agent-hours over the town map, and the
//! agent-hours of each sector.

use super::{Section, svg};
use crate::report::RunFolder;
use crate::report::page::{empty, table};
use crate::world::TownMap;
use agora_shared::TilePos;
use plotters::prelude::*;
use std::collections::BTreeMap;

/// Pixels per tile: the shipped 120 x 64 town is 840 x 448.
const CELL: i32 = 7;
/// What tiles outside every sector (streets, fields) are counted as.
pub const OUTSIDE: &str = "(outside any sector)";

pub fn section(run: &RunFolder) -> Result<Section, String> {
    let caption = "Each tile is shaded by the agent-hours spent on it (darker red: more; the \
                   scale is logarithmic), over the town map with its sectors outlined; the \
                   table gives each sector's agent-hours, most visited first."
        .to_string();
    let Some(map) = &run.map else {
        return Ok(Section {
            id: "places",
            title: "Where agents spent their time",
            caption,
            body: empty("No map to draw on (see the warnings above)."),
        });
    };
    let hours: BTreeMap<TilePos, f64> = (run.log.heat.iter())
        .map(|(tile, ms)| (*tile, *ms as f64 / 3_600_000.0))
        .collect();
    let mut body = heatmap(map, &run.tile_colours, &hours)?;
    let sectors = sector_hours(map, &hours);
    let total: f64 = sectors.iter().map(|(_, h)| h).sum();
    let mut rows: Vec<Vec<String>> = (sectors.iter())
        .map(|(name, h)| {
            vec![
                name.clone(),
                format!("{h:.1}"),
                format!("{:.1}%", 100.0 * h / total.max(1e-9)),
            ]
        })
        .collect();
    rows.push(vec!["all".into(), format!("{total:.1}"), "100%".into()]);
    body += &table(&["sector", "agent-hours", "share"], &rows);
    Ok(Section {
        id: "places",
        title: "Where agents spent their time",
        caption,
        body,
    })
}

/// Agent-hours per sector (and [`OUTSIDE`]), most first; every tile counted once.
pub fn sector_hours(map: &TownMap, hours: &BTreeMap<TilePos, f64>) -> Vec<(String, f64)> {
    let mut by_sector: BTreeMap<String, f64> = BTreeMap::new();
    for (tile, h) in hours {
        let name = (map.in_bounds(*tile))
            .then(|| map.sector_at(*tile))
            .flatten()
            .map_or(OUTSIDE, |s| map.sectors[s].name.as_str());
        *by_sector.entry(name.to_string()).or_default() += h;
    }
    let mut sectors: Vec<(String, f64)> = by_sector.into_iter().collect();
    sectors.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    sectors
}

fn heatmap(
    map: &TownMap,
    colours: &[Option<[u8; 3]>],
    hours: &BTreeMap<TilePos, f64>,
) -> Result<String, String> {
    let (w, h) = (i32::from(map.width), i32::from(map.height));
    let legend = 24;
    svg(((w * CELL) as u32, (h * CELL + legend) as u32), |root| {
        // The map: runs of same-coloured tiles in a row are one rectangle.
        for y in 0..h {
            let mut x = 0;
            while x < w {
                let colour = colours.get((y * w + x) as usize).copied().flatten();
                let mut end = x + 1;
                while end < w && colours.get((y * w + end) as usize).copied().flatten() == colour {
                    end += 1;
                }
                let [r, g, b] = colour.unwrap_or([235, 235, 235]);
                let tint = RGBColor(r, g, b).mix(0.55);
                root.draw(&Rectangle::new(
                    [(x * CELL, y * CELL), (end * CELL, (y + 1) * CELL)],
                    tint.filled(),
                ))?;
                x = end;
            }
        }
        let most = hours.values().copied().fold(0.0, f64::max);
        let shade = |v: f64| (1.0 + v).ln() / (1.0 + most).ln().max(1e-9);
        for (tile, v) in hours.iter().filter(|(_, v)| **v > 0.0) {
            let (x, y) = (i32::from(tile.x), i32::from(tile.y));
            root.draw(&Rectangle::new(
                [(x * CELL, y * CELL), ((x + 1) * CELL, (y + 1) * CELL)],
                RGBColor(200, 0, 0).mix(0.15 + 0.85 * shade(*v)).filled(),
            ))?;
        }
        for sector in &map.sectors {
            let r = sector.rect;
            let (x0, y0) = (i32::from(r.x) * CELL, i32::from(r.y) * CELL);
            let (x1, y1) = (x0 + i32::from(r.w) * CELL, y0 + i32::from(r.h) * CELL);
            root.draw(&Rectangle::new(
                [(x0, y0), (x1, y1)],
                BLACK.mix(0.6).stroke_width(1),
            ))?;
            root.draw(&Text::new(
                sector.name.clone(),
                (x0 + 2, y0 + 2),
                ("sans-serif", 10).into_font().color(&BLACK),
            ))?;
        }
        let y = h * CELL + 6;
        for (i, v) in [0.0, 0.25, 0.5, 0.75, 1.0].into_iter().enumerate() {
            let x = 4 + i as i32 * 20;
            root.draw(&Rectangle::new(
                [(x, y), (x + 18, y + 12)],
                RGBColor(200, 0, 0).mix(0.15 + 0.85 * v).filled(),
            ))?;
        }
        root.draw(&Text::new(
            format!("agent-hours on a tile, from a moment to {most:.1} (log scale)"),
            (110, y),
            ("sans-serif", 11).into_font(),
        ))?;
        Ok(())
    })
}
