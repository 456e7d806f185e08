//! How news spread, for an `eval diffusion` run: per news item, the share of agents holding a
//! memory that carries it over game time, the share the interviews found informed at the
//! end, and the paper's figures beside them.

use super::{Section, clock_label, hours_since, svg};
use crate::eval::NEWS;
use crate::report::RunFolder;
use crate::report::page::{empty, table};
use plotters::prelude::*;
use serde_json::Value;

/// The paper's diffusion: 4% informed at the start, after two game days 32% (the party) and
/// 52% (the candidacy).
const PAPER_START: f64 = 4.0;
const PAPER_HOURS: f64 = 48.0;
fn paper_end(item: &str) -> f64 {
    if item == "party" { 32.0 } else { 52.0 }
}

pub fn section(run: &RunFolder) -> Result<Section, String> {
    let caption = "Solid: the share of agents holding a memory that carries each piece of \
                   news (the eval's keyword rule), over game time; dots: the share the final \
                   interviews counted informed; dashed: the paper's spread, 4% to 32% (party) \
                   and 52% (candidacy) over two game days."
        .to_string();
    let Some(diffusion) = &run.diffusion else {
        return Ok(Section {
            id: "news",
            title: "How news spread",
            caption,
            body: empty(
                "Not a diffusion run (no diffusion.json): run `agora-server eval diffusion`.",
            ),
        });
    };
    let agents = run.log.agents.len().max(1) as f64;
    let end = hours_since(run, run.log.end);
    let x_end = end.max(PAPER_HOURS);
    // Interviews: informed per item, from diffusion.json's `items` ([name, seeded, informed]).
    let informed = |item: &str| -> Option<f64> {
        (diffusion.get("items")?.as_array()?.iter())
            .find(|row| row.get(0).and_then(Value::as_str) == Some(item))
            .and_then(|row| row.get(2)?.as_f64())
    };
    let mut body = svg((760, 340), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(10)
            .x_label_area_size(28)
            .y_label_area_size(44)
            .build_cartesian_2d(0.0..x_end, 0.0..100.0)?;
        chart
            .configure_mesh()
            .x_labels(10)
            .x_label_formatter(&|h| clock_label(run, *h))
            .y_desc("% of agents")
            .draw()?;
        for (i, item) in NEWS.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            let mut times: Vec<f64> = (run.log.news_held.get(item.name))
                .map(|held| held.values().map(|t| hours_since(run, *t)).collect())
                .unwrap_or_default();
            times.sort_by(f64::total_cmp);
            let mut curve = vec![(0.0, 0.0)];
            for (k, t) in times.iter().enumerate() {
                curve.push((*t, 100.0 * k as f64 / agents));
                curve.push((*t, 100.0 * (k + 1) as f64 / agents));
            }
            curve.push((end, 100.0 * times.len() as f64 / agents));
            chart
                .draw_series(LineSeries::new(curve, colour.stroke_width(2)))?
                .label(format!("{}: holding it", item.name))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], colour));
            chart.draw_series(DashedLineSeries::new(
                [(0.0, PAPER_START), (PAPER_HOURS, paper_end(item.name))],
                6,
                4,
                colour.stroke_width(1),
            ))?;
            if let Some(n) = informed(item.name) {
                chart.draw_series([Circle::new((end, 100.0 * n / agents), 5, colour.filled())])?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })?;
    let rows: Vec<Vec<String>> = NEWS
        .iter()
        .map(|item| {
            let held = run.log.news_held.get(item.name).map_or(0, |h| h.len());
            vec![
                item.name.to_string(),
                held.to_string(),
                informed(item.name).map_or("-".into(), |n| n.to_string()),
                format!("{}% -> {}%", PAPER_START, paper_end(item.name)),
            ]
        })
        .collect();
    body += &table(
        &[
            "news",
            "agents holding it at the end",
            "informed (interviews)",
            "the paper, two days",
        ],
        &rows,
    );
    if let Some(h) = diffusion.get("hallucinated").and_then(Value::as_u64) {
        body += &format!(
            "<p>Hallucinated: {h} of {} interviews.</p>",
            diffusion
                .get("interviews")
                .and_then(Value::as_u64)
                .unwrap_or(0)
        );
    }
    Ok(Section {
        id: "news",
        title: "How news spread",
        caption,
        body,
    })
}
