//! Memory streams across restarts: every memory is saved when it is written, embedded or
//! recalled, and a restarted world gives each agent back its stream (embeddings included), so
//! it resumes remembering what it remembered.

use super::players::SAVE_EVERY_TICKS;
use super::store::{SavedMemory, Write};
use super::writer::Persistence;
use crate::cognition::RestoredStreams;
use crate::memory::{Memory, MemoryStream};
use crate::schedule::TickSystems;
use crate::world::ActorId;
use bevy::prelude::*;
use std::collections::BTreeMap;

/// The streams a database kept, ready for the agents they belong to. A stream that does not
/// fit (ids out of order, embeddings of another width) is an error naming its agent: starting
/// without it would silently lose the agent's memories.
pub fn restored_streams(
    saved: BTreeMap<String, Vec<(Memory, Option<Vec<f32>>)>>,
    dimensions: usize,
) -> Result<RestoredStreams, String> {
    let mut streams = RestoredStreams::default();
    for (agent, memories) in saved {
        let stream = MemoryStream::restore(dimensions, memories)
            .map_err(|e| format!("the saved memories of {agent} do not fit: {e}"))?;
        streams.0.insert(agent, stream);
    }
    Ok(streams)
}

pub fn plugin(app: &mut App) {
    app.add_systems(
        Update,
        save_memories
            .in_set(TickSystems::Save)
            .run_if(resource_exists::<Persistence>)
            .run_if(every_ticks()),
    );
}

fn every_ticks() -> impl FnMut(Local<u64>) -> bool {
    |mut ticks: Local<u64>| {
        let due = ticks.is_multiple_of(SAVE_EVERY_TICKS);
        *ticks += 1;
        due
    }
}

/// The rows of a stream's changed memories (taking them: each change is saved once).
fn changed_rows(agent: &ActorId, stream: &mut MemoryStream) -> Vec<Write> {
    (stream.take_changed().into_iter())
        .filter_map(|id| {
            let memory = stream.get(id)?.clone();
            Some(Write::Memory(SavedMemory {
                agent: agent.0.clone(),
                embedding: stream.embedding(id).map(<[f32]>::to_vec),
                memory,
            }))
        })
        .collect()
}

fn save_memories(
    persistence: Res<Persistence>,
    mut streams: Query<(&ActorId, &mut MemoryStream), Changed<MemoryStream>>,
) {
    for (agent, mut stream) in &mut streams {
        // Taking the changes is bookkeeping, not a change of the stream.
        for row in changed_rows(agent, stream.bypass_change_detection()) {
            persistence.save(row);
        }
    }
}

/// Hands every memory changed since the last periodic save to the writer (at shutdown).
pub(super) fn save_all(world: &mut World) {
    let mut streams = world.query::<(&ActorId, &mut MemoryStream)>();
    let rows: Vec<Write> = streams
        .iter_mut(world)
        .flat_map(|(agent, mut stream)| changed_rows(agent, stream.bypass_change_detection()))
        .collect();
    if let Some(persistence) = world.get_resource::<Persistence>() {
        rows.into_iter().for_each(|r| persistence.save(r));
    }
}
