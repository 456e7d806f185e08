//! The model queue inside the tick: brains submit calls to [`ModelWorkers`] (agora-llm's worker
//! pool, tagged with the asking agent's entity) and read the answers as [`ModelResult`]
//! messages, delivered at the start of each tick's thinking. Nothing here waits for a model.

use crate::agents::BrainSystems;
use crate::schedule::TickSystems;
use agora_llm::worker::{JobResult, WorkerPool};
use bevy::prelude::*;

/// The worker pool serving this world's model calls. Dropping it stops the workers.
#[derive(Resource, Deref)]
pub struct ModelWorkers(pub WorkerPool<Entity>);

/// A finished model call; `requester` is the agent that asked.
#[derive(Message, Clone, Debug, Deref)]
pub struct ModelResult(pub JobResult<Entity>);

pub fn plugin(app: &mut App) {
    app.add_message::<ModelResult>().add_systems(
        Update,
        deliver_results
            .run_if(resource_exists::<ModelWorkers>)
            .in_set(TickSystems::Think)
            .before(BrainSystems),
    );
}

fn deliver_results(workers: Res<ModelWorkers>, mut results: MessageWriter<ModelResult>) {
    results.write_batch(workers.drain().into_iter().map(ModelResult));
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_llm::worker::{JobId, JobRequest, Priority, Purpose};
    use agora_llm::{
        GenerateRequest, Generation, LanguageModel, LlmError, SamplingParams, ScoreRequest, Scores,
        Usage,
    };
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A scripted stand-in for a model (not a real one): echoes the prompt at once.
    struct EchoModel;

    impl LanguageModel for EchoModel {
        fn name(&self) -> &str {
            "echo"
        }
        fn generate(&self, r: &GenerateRequest) -> Result<Generation, LlmError> {
            Ok(Generation {
                text: r.prompt.clone(),
                usage: Usage::default(),
            })
        }
        fn score(&self, _: &ScoreRequest) -> Result<Scores, LlmError> {
            Err(LlmError::Request("scoring is not scripted".into()))
        }
    }

    #[test]
    fn results_reach_brains_as_messages_with_their_requester() {
        #[derive(Resource, Default)]
        struct Seen(Vec<(JobId, Option<Entity>)>);
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .add_plugins((
                crate::schedule::plugin,
                crate::agents::brain::plugin,
                plugin,
            ))
            .init_resource::<Seen>()
            .insert_resource(ModelWorkers(WorkerPool::start(Arc::new(EchoModel), 1, 4)))
            .add_systems(
                Update,
                (|mut seen: ResMut<Seen>, mut results: MessageReader<ModelResult>| {
                    seen.0.extend(results.read().map(|r| (r.id, r.requester)));
                })
                .in_set(BrainSystems),
            );
        let agent = app.world_mut().spawn_empty().id();
        let request = JobRequest::Generate(GenerateRequest {
            prompt: "hi".into(),
            max_tokens: 4,
            stop: vec![],
            sampling: SamplingParams::default(),
        });
        let id = app
            .world()
            .resource::<ModelWorkers>()
            .submit(Some(agent), Purpose::Plan, Priority::Normal, request)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while app.world().resource::<Seen>().0.is_empty() {
            assert!(Instant::now() < deadline, "no result within 10 s");
            std::thread::sleep(Duration::from_millis(2));
            app.update();
        }
        assert_eq!(app.world().resource::<Seen>().0, vec![(id, Some(agent))]);
    }
}
