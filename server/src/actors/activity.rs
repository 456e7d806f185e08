//! What an actor is doing: brains decide it for agents, using an object sets it for anyone.
//! Every change is a happening (an `activity` line in the log) and is replicated to viewers.

use crate::happenings::Happened;
use crate::world::ActorId;
use agora_shared::GameTime;
use agora_shared::events::Event;
use bevy::prelude::*;

/// Shown beside an actor who is using an object.
pub const USING_EMOJI: &str = "\u{270b}";

/// What kind of thing an actor is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivityKind {
    /// Something its brain chose, somewhere, until a time ("cooking" at the cafe's stove).
    Doing,
    /// Using an object (`location` is its address) until it walks away.
    Using,
    /// Nothing in particular: a player who stopped using something. On the wire and in the
    /// log its description, emoji and location are empty.
    Idle,
}

/// What an actor is doing, and until when its brain need not think again.
#[derive(Component, Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    pub kind: ActivityKind,
    pub description: String,
    pub emoji: String,
    /// Location address where it happens.
    pub location: String,
    /// When the brain should decide again.
    pub until: GameTime,
}

impl Activity {
    /// Something a brain decided to do at `location` until `until`.
    pub fn doing(
        description: impl Into<String>,
        emoji: impl Into<String>,
        location: impl Into<String>,
        until: GameTime,
    ) -> Self {
        Self {
            kind: ActivityKind::Doing,
            description: description.into(),
            emoji: emoji.into(),
            location: location.into(),
            until,
        }
    }

    /// Using the object called `object` at `address`, from `now`.
    pub fn using(object: &str, address: String, now: GameTime) -> Self {
        Self {
            kind: ActivityKind::Using,
            description: format!("using the {object}"),
            emoji: USING_EMOJI.into(),
            location: address,
            until: now,
        }
    }

    /// Asleep: a brain's sleep is an activity described as "sleeping" (the routine's bed
    /// slot). An asleep agent perceives nothing, and neither talks nor reflects.
    pub fn is_sleeping(&self) -> bool {
        self.description.starts_with("sleeping")
    }

    /// Doing nothing in particular, from `now`.
    pub fn idle(now: GameTime) -> Self {
        Self {
            kind: ActivityKind::Idle,
            description: String::new(),
            emoji: String::new(),
            location: String::new(),
            until: now,
        }
    }
}

pub fn plugin(app: &mut App) {
    app.add_systems(
        Update,
        record_activity_changes.in_set(super::ActorSystems::Record),
    );
}

fn record_activity_changes(
    mut happened: MessageWriter<Happened>,
    changed: Query<(&ActorId, &Activity), Changed<Activity>>,
) {
    for (actor, activity) in &changed {
        happened.write(Happened(Event::Activity {
            agent: actor.0.clone(),
            description: activity.description.clone(),
            emoji: activity.emoji.clone(),
            location: activity.location.clone(),
        }));
    }
}
