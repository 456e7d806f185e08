//! What the model cost: language-model tokens by purpose over game time (the log's
//! `model_usage` lines), per agent-hour against the design's target, and the queue wait and
//! latency of each purpose (`summary.json`).

use super::{Section, clock_label, hours_since, svg, swatch};
use crate::report::RunFolder;
use crate::report::page::{empty, number, table};
use plotters::prelude::*;
use serde_json::Value;
use std::collections::BTreeSet;

/// The design's budget: prompt + output tokens per agent per game hour (issue 10; the
/// paper's code spent ~26,000 on gpt-3.5).
pub const TARGET_TOKENS_PER_AGENT_HOUR: f64 = 2_600.0;
/// Embeddings are counted apart: the budget is the language model's.
const EMBEDDINGS: &str = "memory";

pub fn section(run: &RunFolder) -> Result<Section, String> {
    let caption = format!(
        "Left: the language model's prompt + output tokens per game hour, stacked by purpose \
         (embeddings not included). Right: the same per agent, against the target of {} \
         tokens per agent-hour (dashed). The table gives each purpose's calls, tokens and \
         wall-clock queue wait and latency (p50 / p99, ms).",
        TARGET_TOKENS_PER_AGENT_HOUR
    );
    let usage = &run.log.model_usage;
    let purposes: Vec<String> = (usage.iter())
        .flat_map(|h| h.tokens.keys().cloned())
        .filter(|p| p != EMBEDDINGS)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let latency = latency_table(run);
    if purposes.is_empty() && latency.is_none() {
        return Ok(Section {
            id: "cost",
            title: "Model cost",
            caption,
            body: empty("No language-model calls in this run (a routine run)."),
        });
    }
    let mut body = String::new();
    if purposes.is_empty() {
        body += &empty("This log has no model_usage lines (an older build's run).");
    } else {
        body += &hourly_charts(run, &purposes)?;
    }
    if let Some(latency) = latency {
        body += &latency;
    }
    if let Some(per) = run
        .summary_field(&["llm_tokens_per_agent_hour"])
        .and_then(Value::as_f64)
    {
        body += &format!(
            "<p>Over the whole run: {per:.0} tokens per agent-hour (target {TARGET_TOKENS_PER_AGENT_HOUR}).</p>"
        );
    }
    Ok(Section {
        id: "cost",
        title: "Model cost",
        caption,
        body,
    })
}

fn hourly_charts(run: &RunFolder, purposes: &[String]) -> Result<String, String> {
    let usage = &run.log.model_usage;
    let agents = run.log.agents.len().max(1) as f64;
    let hours: Vec<f64> = usage
        .iter()
        .map(|h| hours_since(run, h.hour_start))
        .collect();
    let totals: Vec<f64> = (usage.iter())
        .map(|h| {
            (h.tokens.iter())
                .filter(|(p, _)| *p != EMBEDDINGS)
                .map(|(_, n)| *n as f64)
                .sum()
        })
        .collect();
    let x_end = hours.iter().fold(0.0f64, |a, h| a.max(*h)) + 1.0;
    let x_start = hours.iter().fold(x_end, |a, h| a.min(*h)).min(0.0);
    let most = totals.iter().copied().fold(1.0, f64::max);
    let per_agent_most = (most / agents).max(TARGET_TOKENS_PER_AGENT_HOUR) * 1.1;
    let palette = |i: usize| Palette99::pick(i).to_rgba();
    svg((960, 320), |root| {
        let (left, right) = root.split_horizontally(480);
        let mut stacked = ChartBuilder::on(&left)
            .margin(8)
            .caption("tokens by purpose, per game hour", ("sans-serif", 13))
            .x_label_area_size(26)
            .y_label_area_size(56)
            .build_cartesian_2d(x_start..x_end, 0.0..most * 1.1)?;
        stacked
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&|h| clock_label(run, *h))
            .draw()?;
        // Each purpose's band sits on the ones before it: bars from the running sum.
        let mut base = vec![0.0; usage.len()];
        for (i, purpose) in purposes.iter().enumerate() {
            let colour = palette(i);
            let bars: Vec<Rectangle<(f64, f64)>> = (usage.iter().enumerate())
                .filter_map(|(k, h)| {
                    let n = *h.tokens.get(purpose)? as f64;
                    let bar = Rectangle::new(
                        [(hours[k] + 0.05, base[k]), (hours[k] + 0.95, base[k] + n)],
                        colour.filled(),
                    );
                    base[k] += n;
                    Some(bar)
                })
                .collect();
            stacked
                .draw_series(bars)?
                .label(purpose.clone())
                .legend(swatch(colour));
        }
        stacked
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        let mut per_agent = ChartBuilder::on(&right)
            .margin(8)
            .caption("tokens per agent per game hour", ("sans-serif", 13))
            .x_label_area_size(26)
            .y_label_area_size(56)
            .build_cartesian_2d(x_start..x_end, 0.0..per_agent_most)?;
        per_agent
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&|h| clock_label(run, *h))
            .draw()?;
        per_agent.draw_series(LineSeries::new(
            hours
                .iter()
                .zip(&totals)
                .map(|(h, t)| (h + 0.5, t / agents)),
            BLUE.stroke_width(2),
        ))?;
        per_agent.draw_series(DashedLineSeries::new(
            [
                (x_start, TARGET_TOKENS_PER_AGENT_HOUR),
                (x_end, TARGET_TOKENS_PER_AGENT_HOUR),
            ],
            6,
            4,
            RED.stroke_width(1),
        ))?;
        Ok(())
    })
}

/// Per purpose, from `summary.json`'s `llm`: calls, tokens, queue wait and latency.
fn latency_table(run: &RunFolder) -> Option<String> {
    let llm = run.summary_field(&["llm"])?.as_object()?;
    if llm.is_empty() {
        return None;
    }
    let field = |stats: &Value, key: &str| stats.get(key).map_or("-".into(), number);
    let rows: Vec<Vec<String>> = llm
        .iter()
        .map(|(purpose, stats)| {
            vec![
                purpose.clone(),
                field(stats, "calls"),
                field(stats, "errors"),
                field(stats, "tokens_in"),
                field(stats, "tokens_cached"),
                field(stats, "tokens_out"),
                format!(
                    "{} / {}",
                    field(stats, "queue_wait_ms_p50"),
                    field(stats, "queue_wait_ms_p99")
                ),
                format!(
                    "{} / {}",
                    field(stats, "latency_ms_p50"),
                    field(stats, "latency_ms_p99")
                ),
            ]
        })
        .collect();
    Some(table(
        &[
            "purpose",
            "calls",
            "errors",
            "prompt tokens",
            "of them cached",
            "output tokens",
            "queue wait ms",
            "latency ms",
        ],
        &rows,
    ))
}
