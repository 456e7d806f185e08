//! One way to build the server's app, for `sim`, `serve`, the tests and the benches:
//! [`ServerApp::new`] with what the world starts from, then the optional parts (a brain for new
//! agents, persona hot reload, model workers, the network, persistence), then
//! [`ServerApp::build`]. The builder inserts each part's resources before its plugin, so no
//! caller has to know what must come first.

use crate::actors::AwayPlayers;
use crate::agents::hot_reload::WatchPersonas;
use crate::agents::{BrainKind, Roster};
use crate::cognition::model_queue::ModelWorkers;
use crate::happenings::EventLog;
use crate::net::replication::ViewRange;
use crate::persist::Persistence;
use crate::time::GameClock;
use crate::world::{TownMap, WorldSeed};
use agora_net::keys::ServerKey;
use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use std::net::SocketAddr;

/// What a world starts from.
pub struct WorldSetup {
    pub map: TownMap,
    pub roster: Roster,
    pub clock: GameClock,
    pub seed: u64,
    pub log: EventLog,
}

/// Where and how players connect.
pub struct NetSetup {
    pub bind: SocketAddr,
    /// The address written in tokens (default: the bound address).
    pub public: Option<SocketAddr>,
    pub key: ServerKey,
    pub view: ViewRange,
}

/// Builds the server's app. Each `app.update()` of the result is one tick.
pub struct ServerApp {
    app: App,
}

impl ServerApp {
    /// The whole world (time, happenings and the event log, the map, actors, agents, the model
    /// queue), headless.
    pub fn new(setup: WorldSetup) -> Self {
        let mut app = App::new();
        app.add_plugins((MinimalPlugins, StatesPlugin))
            .insert_resource(setup.map)
            .insert_resource(setup.roster)
            .insert_resource(setup.clock)
            .insert_resource(WorldSeed(setup.seed))
            .insert_resource(setup.log)
            .add_plugins(crate::plugin);
        Self { app }
    }

    /// The brain agents are spawned with (default: routine).
    pub fn brain(mut self, brain: BrainKind) -> Self {
        self.app.insert_resource(brain);
        self
    }

    /// Reloads persona files when they are edited.
    pub fn watch_personas(mut self, watch: WatchPersonas) -> Self {
        self.app.insert_resource(watch);
        self
    }

    /// Model calls go to these workers.
    pub fn model_workers(mut self, workers: ModelWorkers) -> Self {
        self.app.insert_resource(workers);
        self
    }

    /// Players connect over UDP (netcode, secure). Returns the bound address too.
    pub fn net(mut self, net: NetSetup) -> std::io::Result<(Self, SocketAddr)> {
        self.app
            .insert_resource(net.view)
            .add_plugins(crate::net::plugin);
        let bound = crate::net::server::listen(&mut self.app, net.bind, net.public, &net.key)?;
        Ok((self, bound))
    }

    /// Players and the clock are saved through `persistence`; `away` are the players it
    /// remembered, who come back where they stood.
    pub fn persistence(mut self, persistence: Persistence, away: AwayPlayers) -> Self {
        self.app
            .insert_resource(persistence)
            .insert_resource(away)
            .add_plugins(crate::persist::plugin);
        self
    }

    /// The app, ready to tick: plugins finished, every schedule on one thread.
    pub fn build(mut self) -> App {
        self.app.finish();
        self.app.cleanup();
        run_schedules_on_one_thread(&mut self.app);
        self.app
    }
}

/// Runs every schedule with the single-threaded executor.
///
/// The world's systems are chained (see [`crate::TickSystems`]), so there is little to run in
/// parallel, and on a 2-core machine the multi-threaded executor's wake-ups cost far more than
/// they save: measured here, a 2-agent tick took 1.05 ms multi-threaded and 17 us single-threaded,
/// with identical events. Heavy work (model calls, log writing) runs on its own threads anyway.
fn run_schedules_on_one_thread(app: &mut App) {
    let mut schedules = app.world_mut().resource_mut::<Schedules>();
    for (_, schedule) in schedules.iter_mut() {
        schedule.set_executor(bevy::ecs::schedule::SingleThreadedExecutor::new());
    }
}
