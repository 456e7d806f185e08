//! Perception: what an agent with a memory stream notices. Each step it looks at the actors
//! within its vision radius (agents and players, and what each is doing: the object one uses
//! is part of that) and writes the nearest few *new* observations as event memories; an actor
//! seen doing the same thing as last time is not written again, so an unchanged scene does not
//! flood memory. Everything said in its earshot (players' lines too, as `Heard`) becomes a chat
//! memory, the words quoted as data (a line that told news is remembered as [`TOLD`]). An
//! agent asleep perceives nothing.

use super::{CognitionSystems, Conversations, MemorySetup};
use crate::actors::{Activity, ActivityKind};
use crate::happenings::Heard;
use crate::memory::{MemoryKind, MemoryStream, NewMemory, Triple};
use crate::time::GameClock;
use crate::world::{ActorId, Occupancy, Position};
use agora_shared::GameTime;
use bevy::prelude::*;
use std::collections::HashMap;

/// How far and how much an agent perceives: the paper's vision radius of 4 tiles and
/// attention bandwidth of 3, once every 10 game seconds (its step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerceptionSettings {
    /// Tiles in each direction (a square, as in the paper's code).
    pub vision_radius: u16,
    /// New observations written per step, nearest first.
    pub bandwidth: usize,
    /// Game milliseconds between two looks.
    pub every_ms: u64,
}

impl Default for PerceptionSettings {
    fn default() -> Self {
        Self {
            vision_radius: 4,
            bandwidth: 3,
            every_ms: 10_000,
        }
    }
}

/// An actor out of sight this long is forgotten by [`Perceived`]: seeing it again is new.
const RETENTION_MS: u64 = 3_600_000;

/// What an agent last saw each actor doing, so repeats are not written again.
#[derive(Component, Debug, Default)]
pub struct Perceived {
    last: HashMap<Entity, (String, GameTime)>,
    next_look: GameTime,
}

pub fn plugin(app: &mut App) {
    app.add_systems(
        Update,
        (perceive, hear)
            .chain()
            .run_if(resource_exists::<MemorySetup>)
            .in_set(CognitionSystems::Perceive),
    );
}

/// How an actor is named in memories: its persona's or player's name, else its id.
pub(super) fn display_name(id: &ActorId, name: Option<&Name>) -> String {
    name.map_or_else(|| id.0.clone(), |n| n.as_str().to_string())
}

/// "Iris Chen is painting", and the triple (subject, "is", what).
fn observation(name: &str, activity: &Activity) -> (String, Triple) {
    let doing = if activity.kind == ActivityKind::Idle || activity.description.is_empty() {
        "idle".to_string()
    } else {
        activity.description.clone()
    };
    (
        format!("{name} is {doing}"),
        Triple {
            subject: name.to_string(),
            predicate: "is".into(),
            object: doing,
        },
    )
}

fn perceive(
    clock: Res<GameClock>,
    setup: Res<MemorySetup>,
    occupancy: Res<Occupancy>,
    mut observers: Query<(
        Entity,
        &Position,
        Option<&Activity>,
        &mut MemoryStream,
        &mut Perceived,
    )>,
    actors: Query<(&ActorId, Option<&Name>, &Position, Option<&Activity>)>,
) {
    let now = clock.now;
    let settings = setup.perception;
    for (me, position, own, mut stream, mut perceived) in &mut observers {
        if now < perceived.next_look {
            continue;
        }
        perceived.next_look = GameTime(now.0 + settings.every_ms);
        perceived
            .last
            .retain(|_, (_, seen)| now.0.saturating_sub(seen.0) <= RETENTION_MS);
        if own.is_some_and(Activity::is_sleeping) {
            continue;
        }
        let mut new = Vec::new();
        for other in occupancy.within(position.0, settings.vision_radius) {
            // An actor with no activity yet (spawned this tick) has nothing to show.
            let Ok((id, name, at, Some(activity))) = actors.get(other) else {
                continue;
            };
            if other == me {
                continue;
            }
            let (description, triple) = observation(&display_name(id, name), activity);
            match perceived.last.get_mut(&other) {
                Some((last, seen)) if *last == description => *seen = now,
                _ => new.push((position.0.chebyshev(at.0), id, other, description, triple)),
            }
        }
        new.sort_by(|a, b| (a.0, &a.1.0).cmp(&(b.0, &b.1.0)));
        for (_, _, other, description, triple) in new.into_iter().take(settings.bandwidth) {
            perceived.last.insert(other, (description.clone(), now));
            stream.write(
                NewMemory {
                    kind: MemoryKind::Event,
                    description,
                    triple: Some(triple),
                    evidence: vec![],
                },
                now,
            );
        }
    }
}

/// The predicate of a chat memory of a line that told news (the speaker's memory, worded
/// and held to it: [`super::conversation`]); other lines are "said to". Only news told is
/// passed on as news.
pub(super) const TOLD: &str = "told";

fn hear(
    clock: Res<GameClock>,
    conversations: Res<Conversations>,
    mut heard: MessageReader<Heard>,
    mut listeners: Query<(&mut MemoryStream, Option<&Activity>)>,
    names: Query<(&ActorId, Option<&Name>)>,
) {
    for line in heard.read() {
        let Ok((mut stream, activity)) = listeners.get_mut(line.listener) else {
            continue;
        };
        if activity.is_some_and(Activity::is_sleeping) {
            continue;
        }
        let name = |e: Entity| {
            names
                .get(e)
                .map_or_else(|_| "someone".to_string(), |(id, n)| display_name(id, n))
        };
        let (speaker, listener) = (name(line.speaker), name(line.listener));
        // The words are data: quoted, never spliced into anything as instructions.
        let quoted = line.text.replace('"', "'");
        stream.write(
            NewMemory {
                kind: MemoryKind::Chat,
                description: format!("{speaker} said: \"{quoted}\""),
                triple: Some(Triple {
                    subject: speaker,
                    predicate: if conversations.was_news(line.speaker, &line.text) {
                        TOLD.into()
                    } else {
                        "said to".into()
                    },
                    object: listener,
                }),
                evidence: vec![],
            },
            clock.now,
        );
    }
}
