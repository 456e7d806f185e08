//! What the model cost, hour by hour: the calls whose answers took effect in each game hour,
//! and their prompt and output tokens, by purpose, as one `model_usage` happening when the
//! hour is over (and for the last, partial hour, when the run ends). Run reports draw the
//! model's cost over the day from these lines. In `sim` answers take effect at fixed ticks,
//! so the lines are reproducible; cached prompt tokens depend on how calls were batched (wall
//! clock), so they are left to `summary.json`.

use super::CognitionSystems;
use super::model_queue::{ModelResult, ModelWorkers, deliver_results};
use crate::happenings::Happened;
use crate::time::GameClock;
use agora_shared::GameTime;
use agora_shared::events::Event;
use bevy::prelude::*;
use std::collections::BTreeMap;

const HOUR_MS: u64 = 3_600_000;

/// The hour being counted.
#[derive(Resource, Debug, Default)]
pub struct HourlyUsage {
    hour_start: Option<GameTime>,
    calls: BTreeMap<String, u64>,
    tokens: BTreeMap<String, u64>,
}

impl HourlyUsage {
    /// The counted hour as a happening, and a fresh count; `None` when no call took effect.
    fn take(&mut self) -> Option<Event> {
        let hour_start = self.hour_start.take()?;
        let calls = std::mem::take(&mut self.calls);
        let tokens = std::mem::take(&mut self.tokens);
        (!calls.is_empty()).then_some(Event::ModelUsage {
            hour_start,
            calls,
            tokens,
        })
    }
}

pub fn plugin(app: &mut App) {
    // What it reports is a happening (registering it again is a no-op).
    app.add_message::<Happened>()
        .init_resource::<HourlyUsage>()
        .add_systems(
            Update,
            count_usage
                .after(deliver_results)
                .run_if(resource_exists::<ModelWorkers>)
                .in_set(CognitionSystems::Deliver),
        );
}

/// Counts this tick's answers; the first tick of a new hour reports the last one.
fn count_usage(
    clock: Res<GameClock>,
    mut results: MessageReader<ModelResult>,
    mut usage: ResMut<HourlyUsage>,
    mut happened: MessageWriter<Happened>,
) {
    let hour = GameTime(clock.now.0 / HOUR_MS * HOUR_MS);
    if usage.hour_start.is_some_and(|h| h != hour)
        && let Some(event) = usage.take()
    {
        happened.write(Happened(event));
    }
    for result in results.read() {
        usage.hour_start.get_or_insert(hour);
        let purpose = result.purpose.name().to_string();
        *usage.calls.entry(purpose.clone()).or_default() += 1;
        let tokens = result.output.as_ref().map_or(0, |o| o.usage().tokens());
        *usage.tokens.entry(purpose).or_default() += u64::from(tokens);
    }
}

/// The last, partial hour's usage, for a run that is ending (logged before `run_finished`).
pub fn last_hour(world: &mut World) -> Option<Event> {
    world.get_resource_mut::<HourlyUsage>()?.take()
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_llm::worker::{JobId, JobOutput, JobResult, Purpose};
    use agora_llm::{Generation, Usage};
    use std::time::Duration;

    fn answer(id: u64, purpose: Purpose, prompt: u32, output: u32) -> ModelResult {
        ModelResult(JobResult {
            id: JobId(id),
            requester: None,
            purpose,
            output: Ok(JobOutput::Generated(Generation {
                text: String::new(),
                usage: Usage {
                    prompt_tokens: prompt,
                    cached_tokens: 0,
                    completion_tokens: output,
                    elapsed: Duration::ZERO,
                },
            })),
            queue_wait: Duration::ZERO,
        })
    }

    #[test]
    fn each_hour_reports_the_calls_that_took_effect_in_it() {
        let mut app = App::new();
        app.add_message::<ModelResult>()
            .add_message::<Happened>()
            .insert_resource(GameClock::new(GameTime::from_minutes(7 * 60 + 50), 600_000))
            .init_resource::<HourlyUsage>()
            .add_systems(Update, count_usage);
        let send = |app: &mut App, results: Vec<ModelResult>| {
            for r in results {
                app.world_mut().write_message(r);
            }
            app.update();
            app.world_mut().resource_mut::<GameClock>().now.0 += 600_000;
        };
        // 07:50: two calls; 08:00: the hour 07:00 is reported, one more call; 08:10: nothing.
        send(
            &mut app,
            vec![
                answer(1, Purpose::Plan, 100, 20),
                answer(2, Purpose::Converse, 50, 10),
            ],
        );
        send(&mut app, vec![answer(3, Purpose::Plan, 30, 5)]);
        send(&mut app, vec![]);
        let reported: Vec<Event> = (app.world_mut().resource_mut::<Messages<Happened>>())
            .drain()
            .map(|h| h.0)
            .collect();
        assert_eq!(
            reported,
            [Event::ModelUsage {
                hour_start: GameTime::from_minutes(7 * 60),
                calls: BTreeMap::from([("converse".into(), 1), ("plan".into(), 1)]),
                tokens: BTreeMap::from([("converse".into(), 60), ("plan".into(), 120)]),
            }]
        );
        assert_eq!(
            last_hour(app.world_mut()),
            Some(Event::ModelUsage {
                hour_start: GameTime::from_minutes(8 * 60),
                calls: BTreeMap::from([("plan".into(), 1)]),
                tokens: BTreeMap::from([("plan".into(), 35)]),
            })
        );
        assert_eq!(last_hour(app.world_mut()), None, "an hour is reported once");
    }
}
