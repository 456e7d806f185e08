//! The seam between deciding and doing.
//!
//! A brain is a marker component plus systems in [`BrainSystems`] that decide what an agent
//! does: they write its [`Activity`](crate::actors::Activity) and issue
//! [`ActorCommand`](crate::actors::ActorCommand)s (walk somewhere, say something), the same
//! commands a player's client sends. Everything downstream (walking, logging, replication)
//! reads only those, so brains can be swapped per agent by swapping the marker: the routine
//! brain ([`super::RoutineBrain`]), or the model-made plan of cognition (its `DayPlan`),
//! with the routine brain kept as the fallback. [`BrainKind`] picks the brain new agents get.

use crate::schedule::TickSystems;
use bevy::prelude::*;

/// Every brain's deciding systems, inside [`TickSystems::Think`]. Model results are delivered
/// before this set runs, so a brain sees the answers that arrived since the last tick.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BrainSystems;

/// Which brain new agents get (a resource; default: routine).
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BrainKind {
    /// Follows the persona's daily routine: no language model, any number of agents.
    #[default]
    Routine,
    /// Remembers (memory streams, as `--memory`), plans its day and talks with the language
    /// model, with the agents it meets and the players who speak to it; the routine is its
    /// brain until its first plan arrives, and the fallback when the model fails or the budget
    /// is spent.
    Llm,
}

impl BrainKind {
    pub fn name(self) -> &'static str {
        match self {
            BrainKind::Routine => "routine",
            BrainKind::Llm => "llm",
        }
    }
}

pub fn plugin(app: &mut App) {
    app.init_resource::<BrainKind>()
        .configure_sets(Update, BrainSystems.in_set(TickSystems::Think));
}
