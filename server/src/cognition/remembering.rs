//! Memories made whole off the tick: every agent gets a stream seeded with its persona's
//! memories; each tick the new memories of all agents go to the embedder in one batch (one
//! MiniLM pass serves the whole town), and when the vectors come back each memory is rated
//! (importance from its embedding), completed, and logged as a `memory` event.

use super::model_queue::{ModelQueue, ModelResult};
use super::perception::Perceived;
use super::{CognitionSystems, MemorySetup, RestoredStreams};
use crate::agents::{Agent, AgentPersona};
use crate::happenings::Happened;
use crate::memory::{MemoryId, MemoryKind, MemoryStream, NewMemory};
use crate::time::GameClock;
use crate::world::ActorId;
use agora_llm::worker::{JobId, JobOutput, JobRequest, Priority, Purpose};
use agora_shared::events::Event;
use bevy::prelude::*;
use std::collections::BTreeMap;

/// Texts per embedding call: one call a tick in a town of 25, several in a crowd.
const TEXTS_PER_CALL: usize = 256;

/// Embedding calls in flight: which memory each text belongs to.
#[derive(Resource, Debug, Default)]
pub(super) struct PendingEmbeddings {
    calls: BTreeMap<JobId, Vec<(Entity, MemoryId)>>,
    /// Whether the last attempt failed (warn once per outage, not once per tick).
    failing: bool,
}

pub fn plugin(app: &mut App) {
    app.init_resource::<PendingEmbeddings>()
        .init_resource::<RestoredStreams>()
        .add_systems(
            Update,
            (
                (give_memory_streams, apply_embeddings)
                    .chain()
                    .in_set(CognitionSystems::Remember),
                request_embeddings.in_set(CognitionSystems::Embed),
            )
                .run_if(resource_exists::<MemorySetup>),
        );
}

/// New agents get the stream a database kept for them, or else one holding their persona's
/// memories, as thoughts made now.
fn give_memory_streams(
    mut commands: Commands,
    clock: Res<GameClock>,
    setup: Res<MemorySetup>,
    mut restored: ResMut<RestoredStreams>,
    agents: Query<(Entity, &ActorId, &AgentPersona), (With<Agent>, Without<MemoryStream>)>,
) {
    for (entity, id, persona) in &agents {
        if let Some(stream) = restored.0.remove(&id.0) {
            commands
                .entity(entity)
                .insert((stream, Perceived::default()));
            continue;
        }
        let mut stream = MemoryStream::new(setup.dimensions);
        for seed in &persona.persona.memories {
            stream.write(
                NewMemory {
                    kind: MemoryKind::Thought,
                    description: seed.clone(),
                    triple: None,
                    evidence: vec![],
                },
                clock.now,
            );
        }
        commands
            .entity(entity)
            .insert((stream, Perceived::default()));
    }
}

fn apply_embeddings(
    setup: Res<MemorySetup>,
    mut pending: ResMut<PendingEmbeddings>,
    mut results: MessageReader<ModelResult>,
    mut streams: Query<(&ActorId, &mut MemoryStream)>,
    mut happened: MessageWriter<Happened>,
) {
    for result in results.read() {
        let Some(memories) = pending.calls.remove(&result.id) else {
            continue;
        };
        let vectors = match &result.output {
            Ok(JobOutput::Embedded(e)) if e.vectors.len() == memories.len() => &e.vectors,
            other => {
                let why = match other {
                    Err(e) => e.to_string(),
                    Ok(_) => "the embedder's answer did not match the request".into(),
                };
                if !pending.failing {
                    warn!(
                        "embedding {} memories failed ({why}); retrying",
                        memories.len()
                    );
                }
                pending.failing = true;
                for (entity, id) in memories {
                    if let Ok((_, mut stream)) = streams.get_mut(entity) {
                        stream.want_again(id);
                    }
                }
                continue;
            }
        };
        pending.failing = false;
        for ((entity, id), vector) in memories.into_iter().zip(vectors) {
            let Ok((agent, mut stream)) = streams.get_mut(entity) else {
                continue;
            };
            if !stream.embed(id, vector, setup.rater.rate(vector)) {
                warn!(
                    "{}: memory {} got a {}-wide embedding, expected {}",
                    agent.0,
                    id.0,
                    vector.len(),
                    stream.dimensions()
                );
                continue;
            }
            let Some(memory) = stream.get(id) else {
                continue;
            };
            happened.write(Happened(Event::Memory {
                agent: agent.0.clone(),
                memory: id.0,
                memory_kind: memory.kind.name().into(),
                created: memory.created,
                description: memory.description.clone(),
                importance: memory.importance.unwrap_or(1),
                evidence: memory.evidence.iter().map(|e| e.0).collect(),
                told: (memory.triple.as_ref())
                    .is_some_and(|t| t.predicate == super::perception::TOLD),
                reflection: memory.is_reflection(),
            }));
        }
    }
}

/// Sends every agent's new memories to the embedder, agents in id order so that batches are
/// the same in every run.
pub(super) fn request_embeddings(
    mut queue: ModelQueue,
    mut pending: ResMut<PendingEmbeddings>,
    mut streams: Query<(Entity, &ActorId, &mut MemoryStream)>,
) {
    let mut agents: Vec<_> = streams.iter_mut().collect();
    agents.sort_by(|a, b| a.1.0.cmp(&b.1.0));
    let mut wanted: Vec<(Entity, MemoryId, String)> = Vec::new();
    for (entity, _, stream) in &mut agents {
        wanted.extend((stream.take_wanted().into_iter()).map(|(id, text)| (*entity, id, text)));
    }
    for batch in wanted.chunks(TEXTS_PER_CALL) {
        let texts = batch.iter().map(|(_, _, t)| t.clone()).collect();
        let memories: Vec<(Entity, MemoryId)> = batch.iter().map(|(e, id, _)| (*e, *id)).collect();
        match queue.submit(
            None,
            Purpose::Memory,
            Priority::Low,
            JobRequest::Embed(texts),
        ) {
            Ok(job) => {
                pending.calls.insert(job, memories);
            }
            Err(e) => {
                if !pending.failing {
                    warn!("cannot embed {} memories ({e}); retrying", memories.len());
                }
                pending.failing = true;
                for (entity, id) in memories {
                    if let Some((_, _, stream)) = agents.iter_mut().find(|a| a.0 == entity) {
                        stream.want_again(id);
                    }
                }
            }
        }
    }
}
