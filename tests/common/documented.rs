//! What docs/events.md documents, read from its tables: the fields of each event kind and
//! the keys of `summary.json`. Tests hold every run's output to it, so that a field added in
//! code and not in the docs fails a test.
#![allow(dead_code)] // Each test file uses its own part.

use std::collections::{BTreeMap, BTreeSet};

pub struct Documented {
    common: BTreeSet<String>,
    kinds: BTreeMap<String, BTreeSet<String>>,
    summary: BTreeSet<String>,
}

/// The names in a table cell's backticks: "`start` (ms), `tick_ms`" -> start, tick_ms.
fn names(cell: &str) -> BTreeSet<String> {
    (cell.split('`').skip(1).step_by(2))
        .map(|quoted| {
            quoted
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// The rows of the table under `## heading`, split into cells, the header rows left out.
fn table<'a>(doc: &'a str, heading: &str) -> Vec<Vec<&'a str>> {
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("docs/events.md has no section {heading:?}"));
    (section.lines())
        .filter(|l| l.starts_with('|') && !l.starts_with("| ---"))
        .skip(1)
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect()
}

impl Documented {
    pub fn load() -> Self {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let common = (table(&doc, "Common fields").iter())
            .flat_map(|row| names(row[0]))
            .collect();
        let kinds = (table(&doc, "Kinds").iter())
            .map(|row| {
                let kind = names(row[0]).into_iter().next().expect("a kind");
                (kind, names(row[1]))
            })
            .collect();
        let summary = (table(&doc, "`summary.json`").iter())
            .flat_map(|row| names(row[0]))
            .collect();
        Self {
            common,
            kinds,
            summary,
        }
    }

    /// The fields of an event (one line of `events.jsonl`) that the docs do not give its kind,
    /// as "kind.field"; or its kind, when that is not documented at all.
    pub fn undocumented_in_event(&self, event: &serde_json::Value) -> Vec<String> {
        let kind = event["kind"].as_str().unwrap_or_default();
        let Some(fields) = self.kinds.get(kind) else {
            return vec![format!("kind {kind:?}")];
        };
        (event.as_object().into_iter().flatten())
            .map(|(key, _)| key)
            .filter(|key| !self.common.contains(*key) && !fields.contains(*key))
            .map(|key| format!("{kind}.{key}"))
            .collect()
    }

    /// The keys of a `summary.json` that the docs do not list.
    pub fn undocumented_in_summary(&self, summary: &serde_json::Value) -> Vec<String> {
        (summary.as_object().into_iter().flatten())
            .map(|(key, _)| key.clone())
            .filter(|key| !self.summary.contains(key))
            .collect()
    }

    /// Every undocumented kind and field in a run's `events.jsonl`, once each.
    pub fn undocumented_in_log(&self, log: &str) -> BTreeSet<String> {
        (log.lines())
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .flat_map(|event: serde_json::Value| self.undocumented_in_event(&event))
            .collect()
    }
}
