//! Agents: entities made from personas, each driven by a brain.

pub mod brain;
pub mod hot_reload;
mod roster;
pub mod routine;
mod spawn;

use agora_shared::persona::Persona;
use bevy::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;

pub use brain::{BrainKind, BrainSystems};
pub use roster::Roster;
pub use routine::RoutineBrain;
pub use spawn::stable_hash;

/// Marks an agent (as opposed to a player's avatar).
#[derive(Component, Debug, Default)]
pub struct Agent;

/// The persona an agent follows now; replaced when its file is edited (hot reload).
#[derive(Component, Clone, Debug)]
pub struct AgentPersona {
    pub persona: Arc<Persona>,
    /// The persona's content hash (provenance), see [`Persona::content_hash`].
    pub hash: String,
    /// The file it came from; every agent made from that file follows its edits.
    pub file: PathBuf,
}

/// A per-agent seed derived from the world seed and the agent's id, so one agent's random
/// choices do not depend on which other agents exist.
#[derive(Component, Clone, Copy, Debug, Deref)]
pub struct AgentSeed(pub u64);

/// Needs [`Roster`], [`crate::world::WorldSeed`] and the world's resources inserted first.
pub fn plugin(app: &mut App) {
    app.add_plugins((
        spawn::plugin,
        brain::plugin,
        routine::plugin,
        hot_reload::plugin,
    ));
}
