//! `agora-server serve`: the town in real time, with players connected over the network.
//!
//! Ticks are paced by the wall clock (20 Hz by default); each advances game time by the tick
//! times `time_scale`. Persona files are watched and reloaded. The event log goes to
//! `out/events.jsonl` (an earlier run's log is renamed, not overwritten). Players' avatars and
//! the clock are kept in a SQLite database, so a restarted server resumes where it stopped.
//! Ctrl-C (or SIGTERM) stops at the end of a tick and saves everything first.

use crate::agents::hot_reload::WatchPersonas;
use crate::agents::{BrainKind, Roster};
use crate::app::{Journal, MindOptions, Minds, load_minds};
use crate::app::{NetSetup, ServerApp, WorldSetup};
use crate::cognition::{ModelTiming, RestoredPlaces};
use crate::happenings::{EventLog, JsonlFileSink};
use crate::net::replication::{View, ViewRange};
use crate::net::server::Dropped;
use crate::persist::{
    Persistence, Saved, Store, away_players, lock_database, restored_plans, restored_streams,
};
use crate::schedule::{ThreadTimes, TickStats, thread_times};
use crate::time::GameClock;
use crate::world::TownMap;
use agora_net::keys::{KeyOrigin, ServerKey};
use agora_shared::GameTime;
use agora_shared::events::{EVENT_FORMAT_VERSION, Event};
use bevy::prelude::*;
use bevy_renet::RenetServer;
use signal_hook::consts::{SIGINT, SIGTERM};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Model calls waiting at most; past it a call is refused at once and retried later.
const MODEL_QUEUE: usize = 1024;

/// Where a run starts when neither `--start` nor the database says otherwise.
pub const DEFAULT_START: &str = "08:00";

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub map: PathBuf,
    pub personas: PathBuf,
    pub agents: Option<usize>,
    pub seed: u64,
    /// Game time to start at; `None` resumes the database's clock (or [`DEFAULT_START`]).
    pub start: Option<GameTime>,
    pub bind: SocketAddr,
    pub public: Option<SocketAddr>,
    pub key: PathBuf,
    pub hz: f64,
    /// Game seconds per wall second.
    pub time_scale: f64,
    pub out: PathBuf,
    /// The SQLite database of players' avatars and the clock.
    pub db: PathBuf,
    /// Stop after this long (load tests); run until killed when `None`.
    pub duration: Option<Duration>,
    /// Where the token endpoint listens, if anywhere.
    pub token_endpoint: Option<SocketAddr>,
    /// Players one address may have connected at once.
    pub players_per_address: usize,
    /// How long a joined player may send nothing (`None`: forever).
    pub idle_kick: Option<Duration>,
    /// Players not seen for this long are forgotten at start-up (`None`: never).
    pub forget_players_after: Option<Duration>,
    /// How far players see.
    pub view: ViewRange,
    /// Every agent keeps a memory stream (MiniLM), saved in the database.
    pub memory: bool,
    /// What drives the agents (`llm`: memory and conversations with the language model).
    pub brain: BrainKind,
    /// The GGUF file `--brain llm` runs on; `None`: `$AGORA_MODEL`, else the model cache.
    pub model: Option<PathBuf>,
    /// The prompt templates' folder.
    pub prompts: PathBuf,
}

impl ServeConfig {
    /// The run's event log.
    fn events(&self) -> PathBuf {
        self.out.join("events.jsonl")
    }

    /// Wall time per tick.
    fn tick(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.hz)
    }
}

/// What a bounded run did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ServeReport {
    pub ticks: u64,
    pub tick_us: TickStats,
    /// Per tick, time on a core and time queued for one (Linux; absent elsewhere): a tick
    /// slower than its work waited for a core, or for a lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tick_on_core_us: Option<TickStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tick_queued_us: Option<TickStats>,
    pub peak_players: usize,
    pub dropped_messages: u64,
    /// Bytes sent per second per connected client, averaged over clients and samples.
    pub bytes_per_second_per_client: f64,
    /// Agents and players in a joined player's view, averaged over players and samples.
    pub entities_in_view: f64,
    /// Over the session, once a second (less often in a long one: at most
    /// [`BANDWIDTH_SAMPLES`] are kept): wall seconds since the start, players connected, and
    /// bytes sent per second per player.
    pub bandwidth: Vec<(f64, usize, f64)>,
}

/// Bandwidth samples kept at most; a longer session keeps every other one and samples half
/// as often.
pub const BANDWIDTH_SAMPLES: usize = 4_096;

pub fn run(config: &ServeConfig) -> Result<ServeReport, String> {
    // First of all: a signal during start-up, too, stops the run cleanly.
    let stop = stop_on_signal();
    stop.store(false, Ordering::Relaxed);
    // The tick never waits for the model, so the model waits for the tick: its threads take a
    // core only when the world leaves one (before any model is loaded).
    agora_llm::priority::set_model_priority(agora_llm::priority::ModelPriority::BelowTheWorld);
    let prepared = prepare(config)?;
    let mut app = build(config, prepared)?;
    let ticks = run_ticks(&mut app, config, &stop);
    shutdown(&mut app, config, ticks)
}

/// What `serve` opened and read before the world exists.
struct Prepared {
    map: TownMap,
    roster: Roster,
    store: Store,
    saved: Saved,
    minds: Option<Minds>,
    start: GameTime,
    /// Held for the whole run: one server per database.
    lock: std::fs::File,
    key: ServerKey,
}

/// Checks the settings, loads the town, takes the database's lock and reads it, keeps the
/// earlier run's log, and loads the key.
fn prepare(config: &ServeConfig) -> Result<Prepared, String> {
    if !(config.hz > 0.0 && config.hz <= 120.0) {
        return Err(format!("--hz must be in (0, 120], got {}", config.hz));
    }
    if !(config.time_scale > 0.0 && config.time_scale <= 3600.0) {
        return Err(format!(
            "--time-scale must be in (0, 3600], got {}",
            config.time_scale
        ));
    }
    let (map, roster) = crate::app::load_town(&config.map, &config.personas, config.agents)
        .map_err(|e| e.to_string())?;
    let minds = load_minds(&MindOptions {
        brain: config.brain,
        memory: config.memory,
        model: config.model.clone(),
        prompts: config.prompts.clone(),
        journal: Journal::Off,
        queue: MODEL_QUEUE,
    })?;
    std::fs::create_dir_all(&config.out)
        .map_err(|e| format!("cannot create {}: {e}", config.out.display()))?;
    let lock = lock_database(&config.db)?;
    let store = Store::open(&config.db).map_err(|e| e.to_string())?;
    if let Some(age) = config.forget_players_after {
        let forgotten = store
            .forget_players_unseen_for(age)
            .map_err(|e| e.to_string())?;
        if forgotten > 0 {
            println!(
                "serve: forgot {forgotten} players not seen for {} days",
                age.as_secs() / 86_400
            );
        }
    }
    let saved = store.load().map_err(|e| e.to_string())?;
    let start = config
        .start
        .or(saved.clock)
        .unwrap_or_else(|| DEFAULT_START.parse().expect("a valid time"));
    if !saved.players.is_empty() || saved.clock.is_some() {
        println!(
            "serve: resuming from {}: {} players, {} agents' memories, game time {}",
            config.db.display(),
            saved.players.len(),
            if minds.is_some() {
                saved.memories.len()
            } else {
                0
            },
            start
        );
    }
    if minds.is_none() && !saved.memories.is_empty() {
        eprintln!(
            "serve: warning: {} holds the memories of {} agents, kept but not used: run with \
             --memory to resume them",
            config.db.display(),
            saved.memories.len()
        );
    }
    keep_earlier_log(&config.events())?;
    let (key, origin) = ServerKey::load_or_create(&config.key).map_err(|e| e.to_string())?;
    match origin {
        KeyOrigin::Created(path) => eprintln!(
            "serve: no server key found; created one in {} (keep it secret: it signs tokens)",
            path.display()
        ),
        KeyOrigin::File(path) => eprintln!("serve: server key from {}", path.display()),
        KeyOrigin::Environment => eprintln!("serve: server key from $AGORA_SERVER_KEY"),
    }
    Ok(Prepared {
        map,
        roster,
        store,
        saved,
        minds,
        start,
        lock,
        key,
    })
}

/// The world with players and persistence, listening; the token endpoint started.
fn build(config: &ServeConfig, prepared: Prepared) -> Result<App, String> {
    let Prepared {
        map,
        roster,
        store,
        saved,
        minds,
        start,
        lock,
        key,
    } = prepared;
    let agents = roster.agents;
    let events = config.events();
    let sink = JsonlFileSink::create(&events)
        .map_err(|e| format!("cannot create {}: {e}", events.display()))?;
    let tick_ms = (config.tick().as_secs_f64() * config.time_scale * 1000.0)
        .round()
        .max(1.0) as u64;
    let world = map.world.clone();
    let clock = GameClock::new(start, tick_ms);
    let mut log = EventLog::new(sink);
    log.record(
        &clock,
        Event::RunStarted {
            format: EVENT_FORMAT_VERSION,
            seed: config.seed,
            map: world.clone(),
            start,
            tick_ms,
            agents: agents as u32,
            brain: config.brain.name().into(),
        },
    );
    let plans = restored_plans(saved.plans, &map);
    let app = ServerApp::new(WorldSetup {
        map,
        roster,
        clock,
        seed: config.seed,
        log,
    })
    .watch_personas(WatchPersonas::default())
    .persistence(Persistence::start(store), away_players(saved.players));
    let app = match minds {
        Some(minds) => {
            let restored = restored_streams(saved.memories, minds.memory.dimensions)
                .map_err(|e| format!("{}: {e}", config.db.display()))?;
            // The tick never waits for the model: answers apply when they arrive.
            app.minds(minds, ModelTiming::AsTheyArrive, restored)
                .plans(plans)
                .places(RestoredPlaces(saved.known_places))
        }
        None => app,
    };
    let (app, bound) = app
        .net(NetSetup {
            bind: config.bind,
            public: config.public,
            key: key.clone(),
            view: config.view,
            players_per_address: config.players_per_address,
        })
        .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
    let public = crate::net::server::public_address(bound, config.public);
    if config.public.is_none() && bound.ip().is_unspecified() {
        eprintln!(
            "serve: warning: listening on every interface ({bound}), but tokens name {public}, \
             which only this machine reaches: give --public-addr HOST:{} (the address players \
             connect to) so that players on other machines can join",
            bound.port()
        );
    }
    if let Some(at) = config.token_endpoint {
        let endpoint = crate::net::token_endpoint::start(
            at,
            key,
            vec![public],
            crate::net::token_endpoint::TOKEN_TTL,
        )
        .map_err(|e| format!("cannot serve tokens on {at}: {e}"))?;
        println!(
            "serve: tokens at {}",
            agora_net::fetch::endpoint_url(endpoint.addr)
        );
    }
    let mut app = app.build();
    app.insert_resource(DatabaseLock { _file: lock })
        .insert_resource(crate::net::actions::IdleLimits {
            idle: config.idle_kick,
            ..default()
        });
    println!(
        "serve: {world} on {bound} ({agents} agents, {} Hz, 1 s = {} game s); tokens: agora-server token --player NAME --server {public}",
        config.hz, config.time_scale,
    );
    Ok(app)
}

/// The database's lock file, held as long as the app lives.
#[derive(Resource)]
struct DatabaseLock {
    _file: std::fs::File,
}

/// What the tick loop measured.
struct TickFigures {
    ticks: u64,
    tick_times: Vec<Duration>,
    /// Each tick's time on a core and queued for one (where the OS tells).
    tick_threads: Vec<ThreadTimes>,
    peak_players: usize,
    bandwidth: (f64, u64),
    in_view: (f64, u64),
    samples: Vec<(f64, usize, f64)>,
}

/// Ticks at `--hz` until `--seconds` pass or a signal asks to stop.
fn run_ticks(app: &mut App, config: &ServeConfig, stop: &AtomicBool) -> TickFigures {
    let tick = config.tick();
    let started = Instant::now();
    let mut next = started;
    let mut figures = TickFigures {
        ticks: 0,
        tick_times: Vec::new(),
        tick_threads: Vec::new(),
        peak_players: 0,
        bandwidth: (0.0, 0),
        in_view: (0.0, 0),
        samples: Vec::new(),
    };
    // Seconds between bandwidth samples: doubles whenever the samples fill up.
    let mut every = 1u64;
    let mut views = app.world_mut().query::<&View>();
    while config.duration.is_none_or(|d| started.elapsed() < d) {
        if stop.load(Ordering::Relaxed) {
            eprintln!("serve: stopping (saving first)");
            break;
        }
        let before = thread_times();
        let t0 = Instant::now();
        app.update();
        figures.tick_times.push(t0.elapsed());
        if let (Some(before), Some(after)) = (before, thread_times()) {
            figures.tick_threads.push(after - before);
        }
        figures.ticks += 1;
        // Read off renet's own counters: no per-tick query of the world.
        let server = app.world().resource::<RenetServer>();
        figures.peak_players = figures.peak_players.max(server.connected_clients());
        if figures.ticks.is_multiple_of(config.hz.ceil() as u64) {
            let (sum, clients) = bytes_sent(server);
            figures.bandwidth.0 += sum;
            figures.bandwidth.1 += clients as u64;
            let second = figures.ticks / config.hz.ceil() as u64;
            if second.is_multiple_of(every) {
                figures.samples.push(bandwidth_sample(server, started));
                if figures.samples.len() >= BANDWIDTH_SAMPLES {
                    let kept = figures.samples.iter().copied().step_by(2).collect();
                    figures.samples = kept;
                    every *= 2;
                }
            }
            for view in views.iter(app.world()) {
                figures.in_view.0 += view.len() as f64;
                figures.in_view.1 += 1;
            }
        }
        next += tick;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            // Running late: don't try to catch up in a burst.
            next = now;
        }
    }
    // The last moment too: a session shorter than a second has one sample.
    let server = app.world().resource::<RenetServer>();
    figures.samples.push(bandwidth_sample(server, started));
    figures
}

/// Statistics of one of the ticks' thread times, if the OS gave any.
fn thread_stats(
    times: &[ThreadTimes],
    which: impl Fn(&ThreadTimes) -> Duration,
) -> Option<TickStats> {
    (!times.is_empty())
        .then(|| TickStats::from_durations(&times.iter().map(which).collect::<Vec<_>>()))
}

/// Bytes sent per second, summed over connected players, and how many were counted.
fn bytes_sent(server: &RenetServer) -> (f64, usize) {
    (server.clients_id().into_iter())
        .map(|id| server.bytes_sent_per_sec(id))
        .filter(|rate| rate.is_finite())
        .fold((0.0, 0), |(sum, n), rate| (sum + rate, n + 1))
}

/// (wall seconds since `started`, players connected, bytes per second per player).
fn bandwidth_sample(server: &RenetServer, started: Instant) -> (f64, usize, f64) {
    let (sum, clients) = bytes_sent(server);
    let per_player = if clients == 0 {
        0.0
    } else {
        sum / clients as f64
    };
    (
        started.elapsed().as_secs_f64(),
        server.connected_clients(),
        per_player,
    )
}

/// Saves every player and the clock, finishes the log, and reports.
fn shutdown(
    app: &mut App,
    config: &ServeConfig,
    figures: TickFigures,
) -> Result<ServeReport, String> {
    let dropped = app.world().resource::<Dropped>().messages;
    let clock = app.world().resource::<GameClock>().clone();
    crate::persist::save_all(app.world_mut());
    app.world()
        .resource::<Persistence>()
        .flush()
        .map_err(|e| format!("cannot save to {}: {e}", config.db.display()))?;
    let last_hour = crate::cognition::usage::last_hour(app.world_mut());
    let mut log = app.world_mut().resource_mut::<EventLog>();
    if let Some(usage) = last_hour {
        log.record(&clock, usage);
    }
    log.record(
        &clock,
        Event::RunFinished {
            ticks: figures.ticks,
        },
    );
    log.finish()
        .map_err(|e| format!("cannot write {}: {e}", config.events().display()))?;
    let mean = |(sum, n): (f64, u64)| sum / n.max(1) as f64;
    let report = ServeReport {
        ticks: figures.ticks,
        tick_us: TickStats::from_durations(&figures.tick_times),
        tick_on_core_us: thread_stats(&figures.tick_threads, |t| t.on_core),
        tick_queued_us: thread_stats(&figures.tick_threads, |t| t.queued),
        peak_players: figures.peak_players,
        dropped_messages: dropped,
        bytes_per_second_per_client: mean(figures.bandwidth),
        entities_in_view: mean(figures.in_view),
        bandwidth: figures.samples,
    };
    // The session's figures beside its log, for `agora-server report`.
    let path = config.out.join("serve.json");
    let json = serde_json::to_string(&report).map_err(|e| e.to_string())?;
    std::fs::write(&path, json + "\n")
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(report)
}

/// Set by Ctrl-C or SIGTERM: the loop stops after the tick in progress.
static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Catches SIGINT and SIGTERM (once per process; a later `run` shares the flag). signal-hook
/// registers whatever disposition the process inherited: a server started with `&` from a
/// script inherits SIGINT ignored, and ctrlc, used before, refused to install there. (So a
/// Ctrl-C at the terminal stops a background `serve` too: it saves, where being killed would
/// not.) A second signal while stopping exits at once (status 1), for a save that hangs.
fn stop_on_signal() -> Arc<AtomicBool> {
    STOP.get_or_init(|| {
        let stop = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            let registered =
                signal_hook::flag::register_conditional_shutdown(signal, 1, stop.clone())
                    .and_then(|_| signal_hook::flag::register(signal, stop.clone()));
            if let Err(e) = registered {
                eprintln!(
                    "serve: cannot catch signal {signal} ({e}); it stops the server at once, \
                     losing at most the last half second of changes"
                );
            }
        }
        stop
    })
    .clone()
}

/// Renames an earlier run's log to `events-<unix ms>.jsonl`, so a restart keeps it.
fn keep_earlier_log(events: &Path) -> Result<(), String> {
    if !events.exists() {
        return Ok(());
    }
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let kept = (0u32..)
        .map(|n| match n {
            0 => events.with_file_name(format!("events-{stamp}.jsonl")),
            n => events.with_file_name(format!("events-{stamp}-{n}.jsonl")),
        })
        .find(|candidate| !candidate.exists())
        .expect("some name is free");
    std::fs::rename(events, &kept)
        .map_err(|e| format!("cannot keep the earlier log {}: {e}", events.display()))?;
    println!("serve: the earlier run's log is now {}", kept.display());
    Ok(())
}
