//! `agora-server serve`: the town in real time, with players connected over the network.
//!
//! Ticks are paced by the wall clock (20 Hz by default); each advances game time by the tick
//! times `time_scale`. Persona files are watched and reloaded. The event log goes to
//! `out/events.jsonl` (an earlier run's log is renamed, not overwritten). Players' avatars and
//! the clock are kept in a SQLite database, so a restarted server resumes where it stopped.
//! Ctrl-C (or SIGTERM) stops at the end of a tick and saves everything first.

use crate::agents::hot_reload::WatchPersonas;
use crate::event_log::{EventLog, JsonlFileSink};
use crate::net::keys::{KeyOrigin, ServerKey};
use crate::net::replication::{View, ViewRange};
use crate::net::server::{Dropped, listen};
use crate::persist::{Persistence, Store, away_players};
use crate::sim::TickStats;
use crate::world::GameClock;
use crate::{WorldSetup, headless_app};
use agora_shared::GameTime;
use agora_shared::events::{EVENT_FORMAT_VERSION, Event};
use bevy::prelude::*;
use bevy_renet::RenetServer;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// How far players see.
    pub view: ViewRange,
}

/// What a bounded run did.
#[derive(Debug)]
pub struct ServeReport {
    pub ticks: u64,
    pub tick_us: TickStats,
    pub peak_players: usize,
    pub dropped_messages: u64,
    /// Bytes sent per second per connected client, averaged over clients and samples.
    pub bytes_per_second_per_client: f64,
    /// Agents and players in a joined player's view, averaged over players and samples.
    pub entities_in_view: f64,
}

pub fn run(config: &ServeConfig) -> Result<ServeReport, String> {
    // First of all: a signal during start-up, too, stops the run cleanly.
    stop_on_signal();
    if !(config.hz > 0.0 && config.hz <= 120.0) {
        return Err(format!("--hz must be in (0, 120], got {}", config.hz));
    }
    if !(config.time_scale > 0.0 && config.time_scale <= 3600.0) {
        return Err(format!(
            "--time-scale must be in (0, 3600], got {}",
            config.time_scale
        ));
    }
    let (map, roster) = crate::sim::load_town(&config.map, &config.personas, config.agents)
        .map_err(|e| e.to_string())?;
    let agents = roster.agents;
    std::fs::create_dir_all(&config.out)
        .map_err(|e| format!("cannot create {}: {e}", config.out.display()))?;
    let _lock = lock_database(&config.db)?;
    let store = Store::open(&config.db).map_err(|e| e.to_string())?;
    let saved = store.load().map_err(|e| e.to_string())?;
    let start = config
        .start
        .or(saved.clock)
        .unwrap_or_else(|| DEFAULT_START.parse().expect("a valid time"));
    if !saved.players.is_empty() || saved.clock.is_some() {
        println!(
            "serve: resuming from {}: {} players, game time {}",
            config.db.display(),
            saved.players.len(),
            start
        );
    }
    let events = config.out.join("events.jsonl");
    keep_earlier_log(&events)?;
    let sink = JsonlFileSink::create(&events)
        .map_err(|e| format!("cannot create {}: {e}", events.display()))?;
    let tick = Duration::from_secs_f64(1.0 / config.hz);
    let tick_ms = (tick.as_secs_f64() * config.time_scale * 1000.0)
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
            brain: "routine".into(),
        },
    );
    let mut app = headless_app(WorldSetup {
        map,
        roster,
        clock,
        seed: config.seed,
        log,
    });
    app.insert_resource(WatchPersonas::default())
        .insert_resource(away_players(saved.players))
        .insert_resource(Persistence::start(store))
        .insert_resource(config.view)
        .add_plugins((crate::net::plugin, crate::persist::plugin));
    let (key, origin) = ServerKey::load_or_create(&config.key).map_err(|e| e.to_string())?;
    match origin {
        KeyOrigin::Created(path) => eprintln!(
            "serve: no server key found; created one in {} (keep it secret: it signs tokens)",
            path.display()
        ),
        KeyOrigin::File(path) => eprintln!("serve: server key from {}", path.display()),
        KeyOrigin::Environment => eprintln!("serve: server key from $AGORA_SERVER_KEY"),
    }
    let bound = listen(&mut app, config.bind, config.public, &key)
        .map_err(|e| format!("cannot listen on {}: {e}", config.bind))?;
    let public = config.public.unwrap_or(bound);
    if let Some(at) = config.token_endpoint {
        let endpoint = crate::net::token_endpoint::start(
            at,
            key.clone(),
            vec![public],
            Duration::from_secs(3600),
        )
        .map_err(|e| format!("cannot serve tokens on {at}: {e}"))?;
        println!(
            "serve: tokens at http://{}/token?player=NAME",
            endpoint.addr
        );
    }
    app.finish();
    app.cleanup();
    println!(
        "serve: {world} on {bound} ({} agents, {} Hz, 1 s = {} game s); tokens: agora-server token --player NAME --server {}",
        agents,
        config.hz,
        config.time_scale,
        config.public.unwrap_or(bound)
    );

    let started = Instant::now();
    let mut next = started;
    let mut tick_times = Vec::new();
    let mut peak_players = 0;
    let (mut bandwidth_sum, mut bandwidth_samples) = (0.0, 0u64);
    let (mut in_view_sum, mut in_view_samples) = (0.0, 0u64);
    let mut views = app.world_mut().query::<&View>();
    let mut ticks = 0u64;
    while config.duration.is_none_or(|d| started.elapsed() < d) && !STOP.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        app.update();
        tick_times.push(t0.elapsed());
        ticks += 1;
        // Read off renet's own counters: no per-tick query of the world.
        let server = app.world().resource::<RenetServer>();
        peak_players = peak_players.max(server.connected_clients());
        if ticks.is_multiple_of(config.hz.ceil() as u64) {
            for id in server.clients_id() {
                let rate = server.bytes_sent_per_sec(id);
                if rate.is_finite() {
                    bandwidth_sum += rate;
                    bandwidth_samples += 1;
                }
            }
            for view in views.iter(app.world()) {
                in_view_sum += view.len() as f64;
                in_view_samples += 1;
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
    let dropped = app.world().resource::<Dropped>().messages;
    let clock = app.world().resource::<GameClock>().clone();
    crate::persist::players::save_all(app.world_mut());
    app.world()
        .resource::<Persistence>()
        .flush()
        .map_err(|e| format!("cannot save to {}: {e}", config.db.display()))?;
    let mut log = app.world_mut().resource_mut::<EventLog>();
    log.record(&clock, Event::RunFinished { ticks });
    log.finish()
        .map_err(|e| format!("cannot write {}: {e}", events.display()))?;
    Ok(ServeReport {
        ticks,
        tick_us: TickStats::from_durations(&tick_times),
        peak_players,
        dropped_messages: dropped,
        bytes_per_second_per_client: bandwidth_sum / bandwidth_samples.max(1) as f64,
        entities_in_view: in_view_sum / in_view_samples.max(1) as f64,
    })
}

/// Set by Ctrl-C or SIGTERM: the loop stops after the tick in progress.
static STOP: AtomicBool = AtomicBool::new(false);

fn stop_on_signal() {
    // Only one handler per process: a second `run` in the same process reuses the first.
    let handler = ctrlc::try_set_handler(|| {
        eprintln!("serve: stopping (saving first)");
        STOP.store(true, Ordering::Relaxed);
    });
    match handler {
        Ok(()) => {}
        Err(e) => eprintln!(
            "serve: cannot catch Ctrl-C or SIGTERM ({e}); they stop the server at once, losing \
             at most the last half second of changes"
        ),
    }
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

/// One server per database (and so per output folder): a second would interleave its writes
/// and rename the first one's live log. The lock goes with the returned file.
fn lock_database(db: &Path) -> Result<std::fs::File, String> {
    let path = db.with_extension("lock");
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let file = std::fs::File::create(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => format!(
            "another agora-server is using {} (its lock {} is held)",
            db.display(),
            path.display()
        ),
        std::fs::TryLockError::Error(e) => format!("cannot lock {}: {e}", path.display()),
    })?;
    Ok(file)
}
