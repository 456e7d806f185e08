//! The personas a run was started with, and how many agents to make from them.

use agora_shared::persona::Persona;
use bevy::prelude::*;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

/// One loaded persona file.
#[derive(Clone, Debug)]
pub struct RosterEntry {
    pub persona: Arc<Persona>,
    pub hash: String,
    pub file: PathBuf,
}

/// The personas of a run. Agent `i` is made from persona `i % len`; beyond the first
/// `len` agents, copies get ids like `marisol_alvarez#2` (large-scale runs and benchmarks).
#[derive(Resource, Clone, Debug)]
pub struct Roster {
    pub dir: PathBuf,
    pub entries: Vec<RosterEntry>,
    pub agents: usize,
}

impl Roster {
    pub fn new(dir: PathBuf, personas: Vec<(Persona, PathBuf)>, agents: usize) -> Self {
        let entries = personas
            .into_iter()
            .map(|(persona, file)| RosterEntry {
                hash: persona.content_hash(),
                persona: Arc::new(persona),
                file,
            })
            .collect();
        Self {
            dir,
            entries,
            agents,
        }
    }

    /// Ids of the personas (not of copies): what relationships may name.
    pub fn persona_ids(&self) -> BTreeSet<String> {
        self.entries.iter().map(|e| e.persona.id.clone()).collect()
    }

    /// The persona and agent id of agent number `i`.
    pub fn agent(&self, i: usize) -> Option<(&RosterEntry, String)> {
        let n = self.entries.len();
        let entry = self.entries.get(i % n.max(1))?;
        let copy = i / n;
        let id = if copy == 0 {
            entry.persona.id.clone()
        } else {
            format!("{}#{}", entry.persona.id, copy + 1)
        };
        Some((entry, id))
    }
}
