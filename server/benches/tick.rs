//! Tick cost of the headless world at 25, 1,000 and 10,000 routine agents.
//!
//! `cargo bench -p agora-server --bench tick` (add `-- 1000` to run one size). Runs three
//! game hours from 05:00 (the morning rush: everyone wakes and walks) with the paper's
//! 10-second tick and prints mean, p50, p99 and max wall time per tick. Events are counted,
//! not written: serialising and writing happen off the tick thread in real runs.
//!
//! `-- --loaded` runs each size twice, side by side, paced at 20 Hz for 200 ticks: without
//! model calls, and with the real embedded model busy on worker threads, 25 calls always queued
//! or running (one per agent of the town), to show that the tick never waits on the model.

use agora_llm::backends::embedded::{EmbeddedModel, EmbeddedOptions};
use agora_llm::worker::{JobRequest, Priority, Purpose, WorkerPool};
use agora_llm::{GenerateRequest, LanguageModel, SamplingParams};
use agora_server::agents::Roster;
use agora_server::cognition::{ModelTiming, ModelWorkers};
use agora_server::happenings::{EventLog, NullSink};
use agora_server::schedule::TickStats;
use agora_server::time::GameClock;
use agora_server::world::TownMap;
use agora_server::{ServerApp, WorldSetup};
use agora_shared::persona;
use bevy::prelude::*;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets");
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![25, 1_000, 10_000]
    } else {
        sizes
    };
    let loaded = std::env::args().any(|a| a == "--loaded");
    let model: Option<Arc<dyn LanguageModel>> = loaded.then(|| {
        let path = agora_llm::locate::language_model(None).expect("model (scripts/fetch-models)");
        Arc::new(EmbeddedModel::load(&path, EmbeddedOptions::default()).expect("model loads"))
            as Arc<dyn LanguageModel>
    });
    println!(
        "{:>7} {:>7} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "agents", "ticks", "mean_us", "p50_us", "p99_us", "max_us", "events"
    );
    let runs: Vec<(usize, bool)> = sizes
        .iter()
        .flat_map(|&n| {
            if loaded {
                vec![(n, false), (n, true)]
            } else {
                vec![(n, false)]
            }
        })
        .collect();
    for (agents, with_model) in runs {
        let map_path = assets.join("maps/maple_hollow.tmj");
        let map = TownMap::load(&map_path).expect("shipped map loads");
        let folder = persona::load_folder(&assets.join("personas"), &map).expect("persona folder");
        assert!(folder.errors.is_empty(), "{:?}", folder.errors);
        let roster = Roster::new(assets.join("personas"), folder.personas, agents);
        let start = "05:00".parse().expect("time");
        let mut app = ServerApp::new(WorldSetup {
            map,
            roster,
            clock: GameClock::new(start, 10_000),
            seed: 7,
            log: EventLog::new(NullSink::counting_only()),
        });
        if with_model {
            let model = model.clone().expect("loaded model");
            app = app.model_workers(
                ModelWorkers(WorkerPool::start(model, 1, 64)),
                ModelTiming::AsTheyArrive,
            );
        }
        let mut app = app.build();
        if with_model {
            app.add_systems(Update, keep_model_busy);
        }
        // The first tick places every agent at once; measured apart from the steady state.
        let first = Instant::now();
        app.update();
        let first = first.elapsed();
        // Loaded runs are paced like a server (20 Hz) so model calls complete during them.
        let (ticks, pace) = if loaded {
            (200, Some(std::time::Duration::from_millis(50)))
        } else {
            (3 * 360, None)
        };
        let mut times = Vec::with_capacity(ticks);
        for _ in 0..ticks {
            let t0 = Instant::now();
            app.update();
            times.push(t0.elapsed());
            if let Some(pace) = pace {
                std::thread::sleep(pace.saturating_sub(t0.elapsed()));
            }
        }
        let model_calls = app.world().get_resource::<ModelWorkers>().and_then(|w| {
            w.metrics
                .lock()
                .ok()
                .map(|m| m.summary().values().map(|s| s.calls).sum::<u64>())
        });
        let stats = TickStats::from_durations(&times);
        let events = app
            .world_mut()
            .resource_mut::<EventLog>()
            .finish()
            .map(|s| s.events)
            .unwrap_or_default();
        println!(
            "{agents:>7} {ticks:>7} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {events:>9}   (first tick {:.1} ms){}",
            stats.mean,
            stats.p50,
            stats.p99,
            stats.max,
            first.as_secs_f64() * 1e3,
            model_calls
                .map(|n| format!(", model busy: {n} calls done"))
                .unwrap_or_default()
        );
    }
}

/// Keeps 25 model calls queued or running, resubmitting as results arrive.
fn keep_model_busy(workers: Res<ModelWorkers>, mut n: Local<u64>) {
    while workers.pending() < 25 {
        *n += 1;
        let request = GenerateRequest {
            prompt: format!(
                "Agent {} thinks about the morning in Maple Hollow and decides to",
                *n
            ),
            max_tokens: 8,
            stop: vec!["\n".into()],
            sampling: SamplingParams {
                seed: *n,
                ..SamplingParams::default()
            },
        };
        if workers
            .submit(
                None,
                Purpose::Plan,
                Priority::Normal,
                JobRequest::Generate(request),
            )
            .is_err()
        {
            break;
        }
    }
    workers.drain();
}
