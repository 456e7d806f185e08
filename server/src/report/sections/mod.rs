//! The report's sections, in page order, one file each. A section always renders: when the
//! run holds nothing for it (a routine run has no model cost), it says so instead.

mod cost;
mod days;
mod header;
mod meetings;
mod news;
mod places;
mod ticks;

use super::RunFolder;
use plotters::coord::Shift;
use plotters::prelude::*;

/// One section of the page for one run.
#[derive(Clone, Debug)]
pub struct Section {
    /// The HTML id (tests and links find sections by it).
    pub id: &'static str,
    pub title: &'static str,
    /// How to read it, in one line.
    pub caption: String,
    /// HTML: inline SVG, tables, or an empty-state line.
    pub body: String,
}

/// Every section for `run`, in page order.
pub fn all(run: &RunFolder) -> Result<Vec<Section>, String> {
    Ok(vec![
        header::section(run),
        places::section(run)?,
        days::section(run)?,
        meetings::section(run)?,
        cost::section(run)?,
        news::section(run)?,
        ticks::section(run)?,
    ])
}

/// Draws an SVG of `size` pixels with plotters and returns its text.
fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<(), Box<dyn std::error::Error>>,
) -> Result<String, String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root).map_err(|e| format!("drawing the report: {e}"))?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(text)
}

/// A legend's coloured square, for a series of bars.
fn swatch<C: Color>(colour: C) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    let style = colour.filled();
    move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], style)
}

/// Game hours since the run's start, for x axes.
fn hours_since(run: &RunFolder, time: agora_shared::GameTime) -> f64 {
    let start = run.log.started.as_ref().map_or(0, |s| s.start.0);
    time.0.saturating_sub(start) as f64 / 3_600_000.0
}

/// The clock time `hours` after the run's start, for axis labels ("08:00", "d2 06:00").
fn clock_label(run: &RunFolder, hours: f64) -> String {
    let start = run.log.started.as_ref().map_or(0, |s| s.start.0);
    let time = agora_shared::GameTime(start + (hours.max(0.0) * 3_600_000.0) as u64);
    let clock = time.clock();
    let day = time.day();
    let first_day = agora_shared::GameTime(start).day();
    if day == first_day {
        format!("{clock}")
    } else {
        format!("d{day} {clock}")
    }
}
