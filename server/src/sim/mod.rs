//! Headless simulation: the researchers' main job. Runs the town as fast as the machine
//! allows and writes `events.jsonl` and `summary.json` to an output folder.
//!
//! **Reproducibility guarantee:** with the same map, personas, seed, start time, tick length,
//! agent count, brain and Agora build, a run writes the same `events.jsonl`, byte for byte, and
//! so the same `determinism_hash`. Nothing in the event stream depends on wall-clock time,
//! thread timing or hash-map order. (Editing persona files during a run with `--watch` is
//! outside the guarantee.)

mod progress;
mod summary;

pub use summary::SimSummary;

use crate::actors::AwayPlayers;
use crate::agents::BrainKind;
use crate::agents::hot_reload::WatchPersonas;
use crate::app::{
    Journal, MindOptions, ServerApp, TownError, WorldSetup, file_sha256, load_minds, load_town,
};
use crate::cognition::{ModelTiming, ModelWorkers, RestoredPlaces};
use crate::happenings::{EventLog, JsonlFileSink};
use crate::persist::{Persistence, Saved, Store, lock_database, restored_plans, restored_streams};
use crate::time::GameClock;
use agora_shared::GameTime;
use agora_shared::events::{EVENT_FORMAT_VERSION, Event};
use bevy::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Everything a run depends on.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub map: PathBuf,
    pub personas: PathBuf,
    /// Number of agents; `None` makes one per persona.
    pub agents: Option<usize>,
    pub hours: f64,
    pub seed: u64,
    pub out: PathBuf,
    pub start: GameTime,
    pub tick_ms: u64,
    pub brain: BrainKind,
    /// Every agent keeps a memory stream (needs the MiniLM files); `--brain llm` implies it.
    pub memory: bool,
    /// The GGUF file `--brain llm` runs on; `None`: `$AGORA_MODEL`, else the model cache.
    pub model: Option<PathBuf>,
    /// The prompt templates' folder (`assets/prompts`).
    pub prompts: PathBuf,
    /// Answer every model call from the journal in this earlier run's folder, loading no
    /// model (`--journal DIR`).
    pub journal: Option<PathBuf>,
    /// Save the world (clock, memories, plans) to this SQLite file as the run goes, and
    /// resume from it if it holds a saved world (`--db`).
    pub db: Option<PathBuf>,
    /// Hot-reload persona edits during the run.
    pub watch: bool,
    /// Show progress on stderr (a bar on a terminal, plain lines otherwise).
    pub progress: bool,
}

/// Why a run could not start or finish.
impl SimConfig {
    /// The shipped town in `assets` (its map, personas and prompts): one routine day from
    /// 06:00, one agent per persona, 10-second ticks, no memory, no model, no database, quiet.
    /// What tests and benchmarks start from, overriding what they vary.
    pub fn routine_day(assets: &Path, out: PathBuf) -> Self {
        Self {
            map: assets.join("maps/maple_hollow.tmj"),
            personas: assets.join("personas"),
            agents: None,
            hours: 24.0,
            seed: 1,
            out,
            start: GameTime::from_minutes(6 * 60),
            tick_ms: 10_000,
            brain: BrainKind::Routine,
            memory: false,
            model: None,
            prompts: assets.join("prompts"),
            journal: None,
            db: None,
            watch: false,
            progress: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Town(#[from] TownError),
    #[error("{0}")]
    Config(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// The journal of a run's model calls, in its folder.
pub const JOURNAL: &str = "journal.jsonl";

/// Model calls of a sim run are never refused for a full queue (which would depend on the
/// machine's speed): the queue holds this many.
const SIM_QUEUE: usize = 1 << 16;

/// A run's database, opened and locked, and what it held.
struct Database {
    lock: std::fs::File,
    store: Store,
    saved: Saved,
}

fn open_database(path: &std::path::Path) -> Result<Database, SimError> {
    let lock = lock_database(path).map_err(SimError::Config)?;
    let store = Store::open(path).map_err(|e| SimError::Config(e.to_string()))?;
    let saved = store.load().map_err(|e| SimError::Config(e.to_string()))?;
    Ok(Database { lock, store, saved })
}

/// Runs a simulation to the end and returns its summary (also written to `summary.json`).
pub fn run(config: &SimConfig) -> Result<SimSummary, SimError> {
    if !(config.hours > 0.0 && config.hours <= 24.0 * 365.0) {
        return Err(SimError::Config(format!(
            "--hours must be more than 0 and at most a year, got {}",
            config.hours
        )));
    }
    if config.agents == Some(0) {
        return Err(SimError::Config("--agents must be at least 1".into()));
    }
    let (map, roster) = load_town(&config.map, &config.personas, config.agents)?;
    let agents = roster.agents;
    let database = config.db.as_deref().map(open_database).transpose()?;
    let start = (database.as_ref())
        .and_then(|d| d.saved.clock)
        .unwrap_or(config.start);
    // Every model call is journaled in the run's folder, or answered from an earlier run's.
    let journal = match &config.journal {
        Some(dir) => Journal::Replay(dir.join(JOURNAL)),
        None => {
            std::fs::create_dir_all(&config.out).map_err(|source| SimError::Io {
                what: format!("cannot create {}", config.out.display()),
                source,
            })?;
            Journal::Record(config.out.join(JOURNAL))
        }
    };
    let minds = load_minds(&MindOptions {
        brain: config.brain,
        memory: config.memory,
        model: config.model.clone(),
        prompts: config.prompts.clone(),
        journal: journal.clone(),
        queue: SIM_QUEUE,
    })
    .map_err(SimError::Config)?;
    let model_file = minds.as_ref().and_then(|m| m.model_file.clone());
    let journal = minds.as_ref().map(|_| journal);
    let prompts = (minds.as_ref())
        .and_then(|m| m.dialogue.as_ref())
        .map(|d| d.prompts.hashes())
        .unwrap_or_default();

    let io = |what: String| move |source| SimError::Io { what, source };
    std::fs::create_dir_all(&config.out)
        .map_err(io(format!("cannot create {}", config.out.display())))?;
    let events_path = config.out.join("events.jsonl");
    let sink = JsonlFileSink::create(&events_path)
        .map_err(io(format!("cannot create {}", events_path.display())))?;
    let mut log = EventLog::new(sink);
    let clock = GameClock::new(start, config.tick_ms);
    log.record(
        &clock,
        Event::RunStarted {
            format: EVENT_FORMAT_VERSION,
            seed: config.seed,
            map: map.world.clone(),
            start,
            tick_ms: config.tick_ms,
            agents: agents as u32,
            brain: config.brain.name().into(),
        },
    );
    // The personas the agents were made from (a 3-agent run uses 3 of the folder's).
    let personas: Vec<(String, String)> = (0..agents)
        .map_while(|i| roster.agent(i))
        .map(|(e, _)| (e.persona.id.clone(), e.hash.clone()))
        .collect();
    let map_name = map.world.clone();
    let map_sha256 =
        file_sha256(&config.map).map_err(io(format!("cannot read {}", config.map.display())))?;
    let (saved, persistence) = match database {
        Some(Database { lock, store, saved }) => {
            let resumed = saved.clock.is_some();
            if resumed {
                eprintln!(
                    "sim: resuming from {}: game time {start}, {} agents' memories, {} plans",
                    store.path().display(),
                    saved.memories.len(),
                    saved.plans.len()
                );
                if minds.is_none() && !saved.memories.is_empty() {
                    eprintln!(
                        "sim: warning: the database holds memories, kept but not used: run \
                         with --memory or --brain llm to resume them"
                    );
                }
            }
            let resumed_at = resumed.then_some(start);
            (saved, Some((Persistence::start(store), lock, resumed_at)))
        }
        None => (Saved::default(), None),
    };
    let plans = restored_plans(saved.plans, &map);

    let mut app = ServerApp::new(WorldSetup {
        map,
        roster,
        clock,
        seed: config.seed,
        log,
    })
    .brain(config.brain);
    if config.watch {
        app = app.watch_personas(WatchPersonas::default());
    }
    if let Some(minds) = minds {
        // Every answer takes effect at the next step, and the run waits for it.
        let timing = ModelTiming::Lockstep { delay_ticks: 1 };
        let restored =
            restored_streams(saved.memories, minds.memory.dimensions).map_err(SimError::Config)?;
        app = (app.minds(minds, timing, restored))
            .plans(plans)
            .places(RestoredPlaces(saved.known_places));
    }
    let (database, _lock) = match persistence {
        Some((persistence, lock, resumed_at)) => {
            app = app.persistence(persistence, AwayPlayers::default());
            let file = config.db.clone().unwrap_or_default();
            (Some(summary::DatabaseUse { file, resumed_at }), Some(lock))
        }
        None => (None, None),
    };
    let mut app = app.build();

    let game_ms = (config.hours * 3_600_000.0).round() as u64;
    let ticks = game_ms.div_ceil(config.tick_ms.max(1));
    let mut progress = progress::Progress::new(config.progress, ticks);
    let mut tick_times = Vec::with_capacity(ticks as usize);
    let started = Instant::now();
    for tick in 0..ticks {
        let t0 = Instant::now();
        app.update();
        tick_times.push(t0.elapsed());
        progress.update(tick + 1, app.world().resource::<GameClock>().now);
    }
    let wall = started.elapsed();
    progress.finish();

    if let Some(db) = &config.db {
        crate::persist::save_all(app.world_mut());
        (app.world().resource::<Persistence>().flush())
            .map_err(|e| SimError::Config(format!("cannot save to {}: {e}", db.display())))?;
    }
    let world = app.world_mut();
    let llm = world
        .get_resource::<ModelWorkers>()
        .map(|workers| workers.metrics_summary())
        .unwrap_or_default();
    let batching = (world.get_resource::<ModelWorkers>()).and_then(|workers| workers.batching());
    let clock = world.resource::<GameClock>().clone();
    let last_hour = crate::cognition::usage::last_hour(world);
    let mut log = world.resource_mut::<EventLog>();
    if let Some(usage) = last_hour {
        log.record(&clock, usage);
    }
    log.record(&clock, Event::RunFinished { ticks });
    let stats = log
        .finish()
        .map_err(io(format!("cannot write {}", events_path.display())))?;

    let summary = SimSummary::new(summary::SummaryInputs {
        config,
        map: map_name,
        map_sha256,
        agents,
        ticks,
        wall,
        stats,
        personas,
        tick_times,
        llm,
        batching,
        prompts,
        model_file,
        journal,
        start,
        database,
    });
    summary
        .write(&config.out.join("summary.json"))
        .map_err(io(format!(
            "cannot write {}",
            config.out.join("summary.json").display()
        )))?;
    Ok(summary)
}
