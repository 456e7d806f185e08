//! Tick health: how long ticks took (the histogram of `summary.json`, or of `serve.json`),
//! and for a `serve` session the players online over game time and the bytes sent to each
//! over wall time.

use super::{Section, clock_label, hours_since, svg};
use crate::report::RunFolder;
use crate::report::page::empty;
use plotters::prelude::*;
use serde_json::Value;

/// A bucket's upper bound, readably.
fn duration_label(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{} ms", us / 1_000),
        _ => format!("{} s", us / 1_000_000),
    }
}

/// `serve.json`'s bandwidth samples: (wall seconds, bytes per second per player), where
/// players were connected.
fn bandwidth(run: &RunFolder) -> Option<Vec<(f64, f64)>> {
    let samples: Vec<(f64, f64)> = (run.serve.as_ref()?.get("bandwidth")?.as_array()?.iter())
        .filter_map(|s| {
            let (secs, players, rate) = (
                s.get(0)?.as_f64()?,
                s.get(1)?.as_u64()?,
                s.get(2)?.as_f64()?,
            );
            (players > 0).then_some((secs, rate))
        })
        .collect();
    (!samples.is_empty()).then_some(samples)
}

pub fn section(run: &RunFolder) -> Result<Section, String> {
    let caption = "Ticks by wall-clock time (bars: how many ticks took at most each bucket's \
                   time and more than half of it), with the median (p50) and p99; for a \
                   serve session, the players online over game time and the bytes sent per \
                   second to each player over the session's wall time."
        .to_string();
    let mut body = String::new();
    let buckets: Vec<(u64, u64)> = run
        .figures_field(&["tick_us", "histogram"])
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    if buckets.is_empty() {
        body += &empty(
            "No tick times recorded (no summary.json or serve.json, or a run of an older build).",
        );
    } else {
        let mut buckets = buckets;
        buckets.sort();
        let most = buckets.iter().map(|b| b.1).max().unwrap_or(1);
        let labels: Vec<String> = buckets.iter().map(|b| duration_label(b.0)).collect();
        body += &svg((760, 300), |root| {
            let mut chart = ChartBuilder::on(root)
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(60)
                .build_cartesian_2d(
                    (0..buckets.len() as i32).into_segmented(),
                    0..(most + most / 10 + 1),
                )?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(buckets.len())
                .x_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) => {
                        labels.get(*i as usize).cloned().unwrap_or_default()
                    }
                    _ => String::new(),
                })
                .y_desc("ticks")
                .draw()?;
            chart.draw_series(buckets.iter().enumerate().map(|(i, (_, n))| {
                let i = i as i32;
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0),
                        (SegmentValue::Exact(i + 1), *n),
                    ],
                    RGBColor(70, 110, 170).filled(),
                );
                bar.set_margin(0, 0, 3, 3);
                bar
            }))?;
            Ok(())
        })?;
        let figure = |key: &str| {
            run.figures_field(&["tick_us", key])
                .and_then(Value::as_f64)
                .map_or("-".into(), |us| format!("{:.0} µs", us))
        };
        body += &format!(
            "<p>p50 {}, p99 {}, max {}.</p>",
            figure("p50"),
            figure("p99"),
            figure("max")
        );
    }
    let online = &run.log.players_online;
    if !online.is_empty() {
        let end = hours_since(run, run.log.end).max(0.01);
        let most = online.iter().map(|o| o.1).max().unwrap_or(1).max(1);
        body += &svg((760, 240), |root| {
            let mut chart = ChartBuilder::on(root)
                .margin(10)
                .caption("players online (game time)", ("sans-serif", 13))
                .x_label_area_size(28)
                .y_label_area_size(40)
                .build_cartesian_2d(0.0..end, 0.0..f64::from(most) + 1.0)?;
            chart
                .configure_mesh()
                .x_labels(8)
                .x_label_formatter(&|h| clock_label(run, *h))
                .draw()?;
            let mut steps = vec![(0.0, 0.0)];
            for (time, n) in online {
                let h = hours_since(run, *time);
                let last = steps.last().map_or(0.0, |s| s.1);
                steps.push((h, last));
                steps.push((h, f64::from(*n)));
            }
            steps.push((end, steps.last().map_or(0.0, |s| s.1)));
            chart.draw_series(LineSeries::new(steps, GREEN.stroke_width(2)))?;
            Ok(())
        })?;
    }
    if let Some(samples) = bandwidth(run) {
        let end = samples.last().map_or(1.0, |s| s.0).max(1.0);
        let most = samples.iter().map(|s| s.1).fold(1.0, f64::max);
        body += &svg((760, 240), |root| {
            let mut chart = ChartBuilder::on(root)
                .margin(10)
                .caption("bytes per second per player", ("sans-serif", 13))
                .x_label_area_size(28)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..end, 0.0..most * 1.1)?;
            chart.configure_mesh().x_desc("wall seconds").draw()?;
            chart.draw_series(LineSeries::new(
                samples.iter().copied(),
                BLUE.stroke_width(2),
            ))?;
            Ok(())
        })?;
    }
    Ok(Section {
        id: "ticks",
        title: "Tick health",
        caption,
        body,
    })
}
