//! The model queue inside the tick: brains submit calls through [`ModelQueue`] (to
//! agora-llm's worker pool, tagged with the asking agent's entity) and read the answers as
//! [`ModelResult`] messages, delivered at the start of each tick's thinking, in the order the
//! calls were made.
//!
//! When an answer takes effect is [`ModelTiming`]'s choice: as soon as it has arrived (`serve`:
//! the tick never waits), or exactly a fixed number of ticks after the call (`sim`: the tick
//! waits for it if it is late, and holds it back if it is early), which makes a run with a
//! model in the loop reproducible whatever the machine's speed.

use crate::time::GameClock;
use agora_llm::LlmError;
use agora_llm::worker::{JobId, JobRequest, JobResult, Priority, Purpose, WorkerPool};
use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The worker pool serving this world's model calls. Dropping it stops the workers.
#[derive(Resource, Deref)]
pub struct ModelWorkers(pub WorkerPool<Entity>);

/// A finished model call; `requester` is the agent that asked.
#[derive(Message, Clone, Debug, Deref)]
pub struct ModelResult(pub JobResult<Entity>);

/// When a model answer takes effect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ModelTiming {
    /// In the first tick after it arrives; the tick never waits (`serve`).
    #[default]
    AsTheyArrive,
    /// Exactly `delay_ticks` after the tick that asked (at least 1); the tick waits for a late
    /// answer (`sim`).
    Lockstep { delay_ticks: u64 },
}

/// A lockstep tick gives up on a missing answer after this long (the call then counts as
/// failed, and the run is no longer reproducible: a warning says so).
const LOCKSTEP_GIVE_UP: Duration = Duration::from_secs(600);
/// How often a waiting lockstep tick says that it is waiting.
const LOCKSTEP_NOTICE: Duration = Duration::from_secs(30);

/// Calls made and not yet delivered: when each is due, and answers that came early.
#[derive(Resource, Debug, Default)]
pub struct ModelCalls {
    timing: ModelTiming,
    due: BTreeMap<JobId, u64>,
    arrived: BTreeMap<JobId, JobResult<Entity>>,
}

impl ModelCalls {
    pub fn new(timing: ModelTiming) -> Self {
        Self {
            timing,
            ..Self::default()
        }
    }

    pub fn timing(&self) -> ModelTiming {
        self.timing
    }

    /// Calls whose answers have not been delivered yet.
    pub fn outstanding(&self) -> usize {
        self.due.len()
    }

    fn due_tick(&self, asked_at: u64) -> u64 {
        match self.timing {
            ModelTiming::AsTheyArrive => asked_at,
            ModelTiming::Lockstep { delay_ticks } => asked_at + delay_ticks.max(1),
        }
    }

    /// Due calls at `tick` whose answer has not arrived.
    fn missing(&self, tick: u64) -> usize {
        self.due
            .iter()
            .filter(|(id, due)| **due <= tick && !self.arrived.contains_key(id))
            .count()
    }
}

/// What a system needs to call the model: `submit`, and the answer comes back as a
/// [`ModelResult`] in a later tick.
#[derive(SystemParam)]
pub struct ModelQueue<'w> {
    workers: Option<Res<'w, ModelWorkers>>,
    calls: ResMut<'w, ModelCalls>,
    clock: Res<'w, GameClock>,
}

impl ModelQueue<'_> {
    /// Whether this world has a model to call.
    pub fn is_available(&self) -> bool {
        self.workers.is_some()
    }

    /// Queues a call; fails at once if there are no workers or their queue is full.
    pub fn submit(
        &mut self,
        requester: Option<Entity>,
        purpose: Purpose,
        priority: Priority,
        request: JobRequest,
    ) -> Result<JobId, LlmError> {
        let workers = self
            .workers
            .as_ref()
            .ok_or_else(|| LlmError::Unavailable("this world has no model".into()))?;
        let id = workers.submit(requester, purpose, priority, request)?;
        let due = self.calls.due_tick(self.clock.tick);
        self.calls.due.insert(id, due);
        Ok(id)
    }
}

pub fn plugin(app: &mut App) {
    app.add_message::<ModelResult>()
        .init_resource::<ModelCalls>()
        .add_systems(
            Update,
            deliver_results
                .run_if(resource_exists::<ModelWorkers>)
                .in_set(super::CognitionSystems::Deliver),
        );
}

/// Delivers the answers due this tick, in the order they were asked for; in lockstep, waits
/// for those that are due and have not arrived.
pub(super) fn deliver_results(
    workers: Res<ModelWorkers>,
    mut calls: ResMut<ModelCalls>,
    clock: Res<GameClock>,
    mut results: MessageWriter<ModelResult>,
) {
    let tick = clock.tick;
    let mut arrived = workers.drain();
    let started = Instant::now();
    let mut noticed = started;
    loop {
        calls.arrived.extend(arrived.into_iter().map(|r| (r.id, r)));
        let missing = calls.missing(tick);
        if missing == 0 || calls.timing == ModelTiming::AsTheyArrive {
            break;
        }
        if started.elapsed() >= LOCKSTEP_GIVE_UP {
            warn!(
                "{missing} model call(s) unanswered after {} s: counted as failed; this run is \
                 no longer reproducible",
                LOCKSTEP_GIVE_UP.as_secs()
            );
            let lost: Vec<JobId> = (calls.due.iter())
                .filter(|(id, due)| **due <= tick && !calls.arrived.contains_key(id))
                .map(|(id, _)| *id)
                .collect();
            for id in lost {
                let failed = JobResult {
                    id,
                    requester: None,
                    purpose: Purpose::Other,
                    output: Err(LlmError::Unavailable("no answer in time".into())),
                    queue_wait: started.elapsed(),
                };
                calls.arrived.insert(id, failed);
            }
            break;
        }
        if noticed.elapsed() >= LOCKSTEP_NOTICE {
            noticed = Instant::now();
            info!(
                "waiting for {missing} model call(s) ({} s so far)",
                started.elapsed().as_secs()
            );
        }
        arrived = workers.drain_waiting(Duration::from_millis(200));
    }
    let ready: Vec<JobId> = (calls.arrived.keys())
        .filter(|id| calls.due.get(id).is_none_or(|due| *due <= tick))
        .copied()
        .collect();
    for id in ready {
        calls.due.remove(&id);
        if let Some(result) = calls.arrived.remove(&id) {
            results.write(ModelResult(result));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_llm::{
        GenerateRequest, Generation, LanguageModel, SamplingParams, ScoreRequest, Scores, Usage,
    };
    use bevy::ecs::system::RunSystemOnce;
    use std::sync::Arc;

    /// A scripted stand-in for a model (not a real one): echoes the prompt after a delay.
    struct EchoModel(Duration);

    impl LanguageModel for EchoModel {
        fn name(&self) -> &str {
            "echo"
        }
        fn generate(&self, r: &GenerateRequest) -> Result<Generation, LlmError> {
            std::thread::sleep(self.0);
            Ok(Generation {
                text: r.prompt.clone(),
                usage: Usage::default(),
            })
        }
        fn score(&self, _: &ScoreRequest) -> Result<Scores, LlmError> {
            Err(LlmError::Request("scoring is not scripted".into()))
        }
    }

    #[derive(Resource, Default)]
    struct Seen(Vec<(u64, JobId, Option<Entity>)>);

    /// Records (tick, job, requester) of every delivered result.
    fn see(mut seen: ResMut<Seen>, clock: Res<GameClock>, mut results: MessageReader<ModelResult>) {
        let tick = clock.tick;
        seen.0
            .extend(results.read().map(|r| (tick, r.id, r.requester)));
    }

    fn app(delay: Duration, timing: ModelTiming) -> App {
        let mut app = App::new();
        app.add_plugins((MinimalPlugins, bevy::state::app::StatesPlugin))
            .add_plugins((
                crate::schedule::plugin,
                crate::time::plugin,
                crate::agents::brain::plugin,
                super::super::plugin,
            ))
            .init_resource::<Seen>()
            .insert_resource(ModelCalls::new(timing))
            .insert_resource(ModelWorkers(WorkerPool::start(
                Arc::new(EchoModel(delay)),
                1,
                16,
            )))
            .add_systems(Update, see.in_set(crate::agents::BrainSystems));
        app
    }

    fn prompt(text: &str) -> JobRequest {
        JobRequest::Generate(GenerateRequest {
            prompt: text.into(),
            max_tokens: 4,
            stop: vec![],
            sampling: SamplingParams::default(),
        })
    }

    /// Submits through the same system parameter brains use.
    fn submit(app: &mut App, agent: Entity, text: &'static str) -> JobId {
        app.world_mut()
            .run_system_once(move |mut queue: ModelQueue| {
                queue
                    .submit(Some(agent), Purpose::Plan, Priority::Normal, prompt(text))
                    .unwrap()
            })
            .unwrap()
    }

    #[test]
    fn as_they_arrive_results_reach_brains_with_their_requester_without_waiting() {
        let mut app = app(Duration::from_millis(300), ModelTiming::AsTheyArrive);
        let agent = app.world_mut().spawn_empty().id();
        let id = submit(&mut app, agent, "hi");
        app.update();
        // Had the tick waited for the answer, it would have delivered it.
        assert!(
            app.world().resource::<Seen>().0.is_empty(),
            "the tick waited for the model"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while app.world().resource::<Seen>().0.is_empty() {
            assert!(Instant::now() < deadline, "no result within 10 s");
            std::thread::sleep(Duration::from_millis(2));
            app.update();
        }
        let seen = &app.world().resource::<Seen>().0;
        assert_eq!((seen[0].1, seen[0].2), (id, Some(agent)));
    }

    #[test]
    fn lockstep_results_take_effect_exactly_their_delay_after_the_call() {
        // A slow model: the tick must wait for it.
        let mut app = app(
            Duration::from_millis(80),
            ModelTiming::Lockstep { delay_ticks: 1 },
        );
        let agent = app.world_mut().spawn_empty().id();
        app.update(); // tick 0
        let slow = submit(&mut app, agent, "slow"); // asked during tick 1
        app.update(); // tick 1: not due yet
        assert!(app.world().resource::<Seen>().0.is_empty());
        app.update(); // tick 2: due, waited for
        assert_eq!(app.world().resource::<Seen>().0, [(2, slow, Some(agent))]);

        // A fast model with a long delay: the answer is held back until it is due.
        let mut app = super::tests::app(Duration::ZERO, ModelTiming::Lockstep { delay_ticks: 3 });
        let first = submit(&mut app, agent, "a");
        let second = submit(&mut app, agent, "b");
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(20));
            app.update();
        }
        assert!(
            app.world().resource::<Seen>().0.is_empty(),
            "delivered early"
        );
        app.update();
        let seen: Vec<(u64, JobId)> = (app.world().resource::<Seen>().0.iter())
            .map(|(t, id, _)| (*t, *id))
            .collect();
        assert_eq!(
            seen,
            [(3, first), (3, second)],
            "due at tick 0 + 3, in call order"
        );
        assert_eq!(app.world().resource::<ModelCalls>().outstanding(), 0);
    }
}
