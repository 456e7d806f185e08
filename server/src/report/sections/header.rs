//! The run's header: what was run, on what, and the hashes that say whether two runs are the
//! same experiment.

use super::Section;
use crate::report::RunFolder;
use crate::report::folder::persona_id;
use crate::report::page::{escape, table};
use serde_json::Value;
use std::collections::BTreeMap;

pub fn section(run: &RunFolder) -> Section {
    let log = &run.log;
    let text = |path: &[&str]| -> Option<String> {
        run.summary_field(path).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    let started = log.started.clone().unwrap_or_default();
    let unknown = || "unknown".to_string();
    let mut rows: Vec<Vec<String>> = vec![
        vec![
            "map".into(),
            format!(
                "{} (SHA-256 {})",
                started.map,
                text(&["map_sha256"]).unwrap_or_else(unknown)
            ),
        ],
        vec!["agents".into(), log.agents.len().to_string()],
        vec!["seed".into(), started.seed.to_string()],
        vec![
            "game time".into(),
            format!(
                "{} to {} ({:.1} game hours, {} ticks of {} s)",
                started.start,
                log.end,
                log.game_hours(),
                log.ticks,
                started.tick_ms as f64 / 1000.0
            ),
        ],
        vec![
            "wall time".into(),
            (run.summary_field(&["wall_seconds"]).and_then(Value::as_f64))
                .map(|s| format!("{s:.0} s"))
                .unwrap_or_else(|| "not recorded (no summary.json)".into()),
        ],
        vec!["brain".into(), started.brain.clone()],
        vec![
            "model".into(),
            match (text(&["model", "file"]), text(&["model", "sha256"])) {
                (Some(file), Some(sha)) => format!("{file} (SHA-256 {sha})"),
                _ => "none".into(),
            },
        ],
        vec![
            "determinism_hash".into(),
            text(&["determinism_hash"]).unwrap_or_else(unknown),
        ],
        vec![
            "build".into(),
            match (text(&["agora_version"]), text(&["commit"])) {
                (Some(v), Some(c)) => format!("{v} ({c})"),
                _ => "unknown".into(),
            },
        ],
        vec![
            "log".into(),
            format!("{} lines, {} bytes", log.lines, log.bytes),
        ],
    ];
    if log.truncated_line.is_some() || !log.finished {
        rows.push(vec!["ended".into(), "not cleanly (see below)".into()]);
    }
    // One row per persona used, however many copies of it walked the town.
    let mut personas: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
    for agent in &log.agents {
        let entry = personas
            .entry(persona_id(&agent.id))
            .or_insert((&agent.persona_hash, 0));
        entry.1 += 1;
    }
    let persona_rows: Vec<Vec<String>> = personas
        .iter()
        .map(|(id, (hash, copies))| {
            let persona = run.persona_of(id);
            vec![
                id.to_string(),
                copies.to_string(),
                hash.chars().take(16).collect(),
                persona.map_or_else(unknown, |p| p.author.clone()),
                persona.map_or_else(unknown, |p| p.license.clone()),
            ]
        })
        .collect();
    let mut body = table(&["", ""], &rows);
    if !run.warnings.is_empty() {
        body += "<ul class=\"warn\">";
        for w in &run.warnings {
            body += &format!("<li>{}</li>", escape(w));
        }
        body += "</ul>";
    }
    body += &table(
        &["persona", "agents", "content hash", "author", "license"],
        &persona_rows,
    );
    Section {
        id: "header",
        title: "The run",
        caption: "What was run and on what. Two runs with the same inputs and build have the \
                  same determinism_hash; persona hashes say which version of each persona \
                  walked the town."
            .into(),
        body,
    }
}
