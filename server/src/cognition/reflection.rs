//! Reflection: when what an agent has lived through lately adds up (the summed importance of
//! its memories since it last reflected passes [`ReflectionSettings::threshold`], the paper's
//! 150) and its model budget allows ([`super::budget`]), it thinks back: its most important recent memory leads a retrieval, the model writes
//! one sentence from `assets/prompts/reflection.txt`, and that sentence becomes a thought whose
//! evidence is the memories it came from. Reflections are the lowest of the model's
//! priorities; an agent that is asleep or talking does not reflect.

use super::budget::{Need, TokenBudget};
use super::conversation::{Conversations, DialogueSetup, spoken_line};
use super::model_queue::{ModelQueue, ModelResult};
use super::perception::display_name;
use crate::actors::Activity;
use crate::agents::{Agent, stable_hash};
use crate::memory::{MemoryId, MemoryKind, MemoryStream, NewMemory, RetrievalWeights};
use crate::time::GameClock;
use crate::world::{ActorId, WorldSeed};
use agora_llm::worker::{JobId, JobOutput, JobRequest, Priority, Purpose};
use agora_llm::{GenerateRequest, SamplingParams};
use agora_shared::GameTime;
use bevy::prelude::*;
use std::collections::BTreeMap;

/// When and how agents reflect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReflectionSettings {
    /// Summed importance of new memories that makes an agent reflect (the paper: 150).
    pub threshold: u32,
    /// Memories a reflection draws on.
    pub evidence: usize,
    pub max_tokens: u32,
}

impl Default for ReflectionSettings {
    fn default() -> Self {
        Self {
            threshold: 150,
            evidence: 8,
            max_tokens: 40,
        }
    }
}

/// An agent's reflecting: since when its memories count, and the call under way.
#[derive(Component, Debug, Default)]
pub struct Reflections {
    since: GameTime,
    pending: Option<(JobId, Vec<MemoryId>)>,
    /// Reflections made so far.
    pub made: u32,
}

pub fn plugin(app: &mut App) {
    app.add_systems(
        Update,
        reflect
            .run_if(resource_exists::<DialogueSetup>)
            .in_set(super::CognitionSystems::Reflect),
    );
}

fn reflect(
    mut commands: Commands,
    clock: Res<GameClock>,
    seed: Res<WorldSeed>,
    setup: Res<DialogueSetup>,
    conversations: Res<Conversations>,
    mut budget: ResMut<TokenBudget>,
    mut queue: ModelQueue,
    mut results: MessageReader<ModelResult>,
    mut agents: Query<
        (
            Entity,
            &ActorId,
            Option<&Name>,
            Option<&Activity>,
            &mut MemoryStream,
            Option<&mut Reflections>,
        ),
        With<Agent>,
    >,
) {
    let now = clock.now;
    let settings = setup.reflection;
    let answers: BTreeMap<JobId, &ModelResult> = results.read().map(|r| (r.id, r)).collect();
    let mut order: Vec<_> = agents.iter_mut().collect();
    order.sort_by(|a, b| a.1.0.cmp(&b.1.0));
    for (entity, id, name, activity, mut stream, reflections) in order {
        let Some(mut reflections) = reflections else {
            commands.entity(entity).insert(Reflections::default());
            continue;
        };
        let name = display_name(id, name);
        // A reflection written: it becomes a thought, with its evidence.
        if let Some((job, evidence)) = reflections.pending.clone()
            && let Some(answer) = answers.get(&job)
        {
            reflections.pending = None;
            reflections.since = now;
            match &answer.output {
                Ok(JobOutput::Generated(g)) => {
                    budget.spend(entity, now, g.usage.tokens());
                    if let Some(line) = spoken_line(&g.text, std::slice::from_ref(&name)) {
                        stream.write(
                            NewMemory {
                                kind: MemoryKind::Thought,
                                description: format!("{name} thinks that {line}"),
                                triple: None,
                                evidence,
                            },
                            now,
                        );
                        reflections.made += 1;
                    }
                }
                Ok(_) => {}
                Err(e) => warn!("{}: reflecting failed ({e})", id.0),
            }
        }
        let awake = activity.is_some_and(|a| !a.is_sleeping());
        if reflections.pending.is_some()
            || !awake
            || conversations.is_talking(entity)
            || !budget.allows(entity, now, Need::Reflect)
            || stream.importance_since(reflections.since) < settings.threshold
        {
            continue;
        }
        // What matters most lately leads the retrieval.
        let since = reflections.since;
        let lead = (stream.iter())
            .filter(|m| m.created > since && stream.is_embedded(m.id))
            .max_by_key(|m| (m.importance, std::cmp::Reverse(m.id)))
            .and_then(|m| stream.embedding(m.id).map(<[f32]>::to_vec));
        let Some(query) = lead else {
            continue;
        };
        let recalled =
            stream.retrieve(&query, now, settings.evidence, &RetrievalWeights::default());
        let evidence: Vec<MemoryId> = recalled.iter().map(|r| r.id).collect();
        stream.touch(evidence.iter().copied(), now);
        let memories: Vec<String> = (evidence.iter())
            .filter_map(|&m| stream.get(m))
            .map(|m| format!("- {}", m.description))
            .collect();
        let values = BTreeMap::from([("agent", name.clone()), ("memories", memories.join("\n"))]);
        let request = JobRequest::Generate(GenerateRequest {
            prompt: setup.prompts.reflection.render(&values),
            max_tokens: settings.max_tokens,
            stop: vec!["\n".into()],
            sampling: SamplingParams {
                seed: stable_hash(&format!(
                    "{}:{}:reflection:{}",
                    seed.0, id.0, reflections.made
                )),
                ..SamplingParams::default()
            },
        });
        match queue.submit(Some(entity), Purpose::Reflect, Priority::Low, request) {
            Ok(job) => reflections.pending = Some((job, evidence)),
            // Try again once more has happened.
            Err(e) => {
                warn!("{}: cannot reflect ({e})", id.0);
                reflections.since = now;
            }
        }
    }
}
