//! The seam between deciding and doing.
//!
//! A brain is a marker component plus systems in [`TickSystems::Think`] that write an agent's
//! [`Activity`] and [`Destination`](crate::world::Destination). Everything downstream (walking,
//! logging, later replication) reads only those, so brains can be swapped per agent by
//! swapping the marker: the routine brain ([`super::RoutineBrain`]) now, the model-driven
//! cognition brain later, with the routine brain kept as the fallback.

use crate::event_log::EventLog;
use crate::schedule::TickSystems;
use crate::world::{ActorId, GameClock};
use agora_shared::GameTime;
use agora_shared::events::Event;
use bevy::prelude::*;

/// Every brain's deciding systems, inside [`TickSystems::Think`]. Model results are delivered
/// before this set runs, so a brain sees the answers that arrived since the last tick.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BrainSystems;

/// What an agent is doing and until when its brain need not think again.
#[derive(Component, Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    pub description: String,
    pub emoji: String,
    /// Location address where it happens.
    pub location: String,
    /// When the brain should decide again.
    pub until: GameTime,
}

/// Which brain new agents get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BrainKind {
    /// Follows the persona's daily routine: no language model, any number of agents.
    #[default]
    Routine,
}

impl BrainKind {
    pub fn name(self) -> &'static str {
        match self {
            BrainKind::Routine => "routine",
        }
    }
}

pub fn plugin(app: &mut App) {
    app.configure_sets(Update, BrainSystems.in_set(TickSystems::Think))
        .add_systems(Update, log_activity_changes.in_set(TickSystems::Act));
}

fn log_activity_changes(
    clock: Res<GameClock>,
    mut log: ResMut<EventLog>,
    changed: Query<(&ActorId, &Activity), Changed<Activity>>,
) {
    for (actor, activity) in &changed {
        log.record(
            &clock,
            Event::Activity {
                agent: actor.0.clone(),
                description: activity.description.clone(),
                emoji: activity.emoji.clone(),
                location: activity.location.clone(),
            },
        );
    }
}
