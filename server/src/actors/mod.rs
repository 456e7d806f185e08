//! What players and agents both do, under one set of rules: an [`ActorCommand`] is what a
//! player's packet becomes (in `net/`) and what an agent's brain issues, and the same systems
//! carry it out, so a line is heard, a tile is walkable and an object is usable by the same
//! rules for everyone. A command the rules forbid comes back as [`Refused`].
//!
//! - [`activity`]: what an actor is doing ([`Activity`]), and its changes as happenings.
//! - [`speech`]: saying something aloud, heard within earshot.
//! - [`objects`]: using an object of the arena one stands in.
//! - [`teams`]: joining and leaving teams.
//! - [`players`]: who a player is, and the record of players who are away.

pub mod activity;
mod commands;
pub mod objects;
pub mod players;
pub mod speech;
pub mod teams;

pub use activity::{Activity, ActivityKind};
pub use commands::{Action, ActorCommand, Refused};
pub use players::{Away, AwayPlayers, Player};
pub use teams::Team;

use crate::schedule::TickSystems;
use bevy::prelude::*;

/// The actor layer's steps inside [`TickSystems::Act`], in order.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorSystems {
    /// Carry out this tick's commands.
    Perform,
    /// Record what changed (activities) as happenings.
    Record,
}

pub fn plugin(app: &mut App) {
    app.configure_sets(
        Update,
        (ActorSystems::Perform, ActorSystems::Record)
            .chain()
            .in_set(TickSystems::Act),
    )
    .add_plugins((commands::plugin, activity::plugin));
}
