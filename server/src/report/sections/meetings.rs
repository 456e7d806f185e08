//! Who met whom: the conversation graph, and relationship density before and after the run
//! (the paper's measure: the share of agent pairs that know each other).

use super::{Section, svg};
use crate::report::RunFolder;
use crate::report::folder::persona_id;
use crate::report::page::{empty, table};
use plotters::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// Agents drawn at most, the most talkative first.
const MAX_NODES: usize = 60;

/// Pairs of agents (by index in the log) who know each other by their personas' relationships.
fn acquainted(run: &RunFolder) -> BTreeSet<(usize, usize)> {
    let agents = &run.log.agents;
    let mut pairs = BTreeSet::new();
    for (i, a) in agents.iter().enumerate() {
        let Some(persona) = run.persona_of(&a.id) else {
            continue;
        };
        for relationship in &persona.relationships {
            for (j, b) in agents.iter().enumerate() {
                if i != j && persona_id(&b.id) == relationship.with {
                    pairs.insert((i.min(j), i.max(j)));
                }
            }
        }
    }
    pairs
}

/// Density before (personas' relationships) and after (those and every pair that talked).
pub fn densities(run: &RunFolder) -> (f64, f64) {
    let n = run.log.agents.len();
    let all_pairs = (n * n.saturating_sub(1) / 2).max(1) as f64;
    let before = acquainted(run);
    let index = run.log.agent_index();
    let mut after = before.clone();
    for (a, b) in run.log.pair_lines.keys() {
        if let (Some(&i), Some(&j)) = (index.get(a.as_str()), index.get(b.as_str())) {
            after.insert((i.min(j), i.max(j)));
        }
    }
    (
        before.len() as f64 / all_pairs,
        after.len() as f64 / all_pairs,
    )
}

pub fn section(run: &RunFolder) -> Result<Section, String> {
    let caption = "Agents on a circle, a line for each pair that talked, thicker for more \
                   lines exchanged (players included). Density is the share of agent pairs \
                   who know each other: before, by their personas' relationships; after, \
                   adding every pair that talked."
        .to_string();
    let log = &run.log;
    if log.pair_lines.is_empty() {
        return Ok(Section {
            id: "meetings",
            title: "Who met whom",
            caption,
            body: empty(
                "No conversations in this run (routine agents do not talk; --brain llm does).",
            ),
        });
    }
    // Nodes: the most talkative actors first.
    let mut lines_of: BTreeMap<&str, u64> = BTreeMap::new();
    for ((a, b), n) in &log.pair_lines {
        *lines_of.entry(a).or_default() += n;
        *lines_of.entry(b).or_default() += n;
    }
    let mut nodes: Vec<(&str, u64)> = lines_of.into_iter().collect();
    nodes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    nodes.truncate(MAX_NODES);
    let position: BTreeMap<&str, (i32, i32)> = (nodes.iter().enumerate())
        .map(|(i, (id, _))| {
            let angle = std::f64::consts::TAU * i as f64 / nodes.len() as f64;
            let (x, y) = (380.0 + 260.0 * angle.cos(), 320.0 + 260.0 * angle.sin());
            (*id, (x as i32, y as i32))
        })
        .collect();
    let names: BTreeMap<&str, &str> = (log.agents.iter())
        .map(|a| (a.id.as_str(), a.name.as_str()))
        .collect();
    let most = log.pair_lines.values().copied().max().unwrap_or(1).max(1);
    let mut body = svg((760, 640), |root| {
        for ((a, b), n) in &log.pair_lines {
            let (Some(pa), Some(pb)) = (position.get(a.as_str()), position.get(b.as_str())) else {
                continue;
            };
            let width = 1 + (5 * n / most) as u32;
            root.draw(&PathElement::new(
                vec![*pa, *pb],
                RGBColor(60, 90, 160).mix(0.5).stroke_width(width),
            ))?;
        }
        for (id, _) in &nodes {
            let (x, y) = position[id];
            root.draw(&Circle::new((x, y), 4, BLACK.filled()))?;
            let label = names.get(id).copied().unwrap_or(*id);
            root.draw(&Text::new(
                label.to_string(),
                (x + 6, y - 6),
                ("sans-serif", 11).into_font(),
            ))?;
        }
        Ok(())
    })?;
    let (before, after) = densities(run);
    body += &table(
        &[
            "conversations",
            "pairs that talked",
            "density before",
            "density after",
        ],
        &[vec![
            log.conversations.to_string(),
            log.pair_lines.len().to_string(),
            format!("{before:.3}"),
            format!("{after:.3}"),
        ]],
    );
    Ok(Section {
        id: "meetings",
        title: "Who met whom",
        caption,
        body,
    })
}
