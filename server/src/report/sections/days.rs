//! Each agent's day: one row per agent, its activities over game time, coloured by the kind
//! of place (home, work, elsewhere) with sleep apart.

use super::{Section, clock_label, hours_since, svg, swatch};
use crate::report::RunFolder;
use crate::report::log::{AgentDay, Segment};
use crate::report::page::empty;
use plotters::prelude::*;

/// Rows drawn at most; a bigger town shows its first agents and says so.
pub const MAX_ROWS: usize = 60;
const ROW: u32 = 16;

/// What kind of place an activity is at, for its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaceKind {
    Sleep,
    Home,
    Work,
    Elsewhere,
}

impl PlaceKind {
    pub const ALL: [PlaceKind; 4] = [
        PlaceKind::Sleep,
        PlaceKind::Home,
        PlaceKind::Work,
        PlaceKind::Elsewhere,
    ];

    fn name(self) -> &'static str {
        match self {
            PlaceKind::Sleep => "asleep",
            PlaceKind::Home => "at home",
            PlaceKind::Work => "at work",
            PlaceKind::Elsewhere => "elsewhere (shops, park, friends)",
        }
    }

    fn colour(self) -> RGBColor {
        match self {
            PlaceKind::Sleep => RGBColor(40, 50, 110),
            PlaceKind::Home => RGBColor(90, 170, 90),
            PlaceKind::Work => RGBColor(235, 150, 40),
            PlaceKind::Elsewhere => RGBColor(150, 90, 190),
        }
    }
}

/// The sector part of an address (`World:Sector:arena:object`).
fn sector(address: &str) -> Option<&str> {
    address.split(':').nth(1)
}

/// The kind of place of `segment` in `agent`'s day; `work` is its persona's work place.
pub fn place_kind(agent: &AgentDay, work: Option<&str>, segment: &Segment) -> PlaceKind {
    let description = segment.description.to_lowercase();
    if segment.emoji == "😴" || description.contains("sleep") {
        return PlaceKind::Sleep;
    }
    let here = sector(&segment.location);
    if here.is_some() && here == sector(&agent.home) {
        PlaceKind::Home
    } else if here.is_some() && here == work.and_then(|w| w.split(':').next()) {
        PlaceKind::Work
    } else {
        PlaceKind::Elsewhere
    }
}

pub fn section(run: &RunFolder) -> Result<Section, String> {
    let caption = format!(
        "One row per agent (at most {MAX_ROWS}); each bar is one activity, from when it \
         started to the next, coloured by where it happened: home is the sector of the \
         agent's bed, work its persona's work place."
    );
    let agents = &run.log.agents;
    let shown = &agents[..agents.len().min(MAX_ROWS)];
    if shown.iter().all(|a| a.segments.is_empty()) {
        return Ok(Section {
            id: "days",
            title: "Each agent's day",
            caption,
            body: empty("No activity in this log."),
        });
    }
    let end = hours_since(run, run.log.end).max(0.01);
    let n = shown.len() as u32;
    let body = svg((960, 60 + n * ROW + 40), |root| {
        let names: Vec<String> = shown.iter().map(|a| a.name.clone()).collect();
        let mut chart = ChartBuilder::on(root)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(130)
            .build_cartesian_2d(0.0..end, (0..shown.len() as i32).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(shown.len())
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_labels(12)
            .x_label_formatter(&|h| clock_label(run, *h))
            .draw()?;
        for kind in PlaceKind::ALL {
            let mut bars = vec![];
            for (row, agent) in shown.iter().enumerate() {
                let work = run
                    .persona_of(&agent.id)
                    .and_then(|p| p.work.as_ref())
                    .map(|w| w.place.as_str());
                let ends = (agent.segments.iter().skip(1))
                    .map(|s| s.start)
                    .chain([run.log.end]);
                for (segment, until) in agent.segments.iter().zip(ends) {
                    if place_kind(agent, work, segment) != kind {
                        continue;
                    }
                    let row = row as i32;
                    bars.push(Rectangle::new(
                        [
                            (hours_since(run, segment.start), SegmentValue::Exact(row)),
                            (hours_since(run, until), SegmentValue::Exact(row + 1)),
                        ],
                        kind.colour().filled(),
                    ));
                }
            }
            let colour = kind.colour();
            chart
                .draw_series(bars)?
                .label(kind.name())
                .legend(swatch(colour));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })?;
    let note = if agents.len() > shown.len() {
        format!(
            "<p>The first {} of {} agents.</p>",
            shown.len(),
            agents.len()
        )
    } else {
        String::new()
    };
    Ok(Section {
        id: "days",
        title: "Each agent's day",
        caption,
        body: body + &note,
    })
}
