//! The Agora world server: a town of generative agents in a Bevy ECS world.
//!
//! The module tree is the plugin tree: [`plugin`] adds each feature's plugin, and each
//! feature lives in its own folder. A tick's systems run in the [`TickSystems`] sets, in order.
//!
//! To run a town headless, see [`sim::run`]; to build your own app around the world, see
//! [`headless_app`].

pub mod agents;
pub mod cli;
pub mod event_log;
pub mod llm;
pub mod net;
pub mod persist;
pub mod schedule;
pub mod serve;
pub mod sim;
pub mod world;

pub use schedule::TickSystems;

use bevy::prelude::*;
use bevy::state::app::StatesPlugin;

/// The seed of a run: every random choice in the world derives from it.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq, Deref)]
pub struct WorldSeed(pub u64);

/// All of the server's features. Needs [`world::TownMap`], [`agents::Roster`], [`WorldSeed`]
/// and (optionally) [`world::GameClock`] and [`event_log::EventLog`] inserted first.
pub fn plugin(app: &mut App) {
    app.add_plugins((
        schedule::plugin,
        event_log::plugin,
        world::plugin,
        agents::plugin,
        llm::plugin,
    ));
}

/// What a headless world starts from.
pub struct WorldSetup {
    pub map: world::TownMap,
    pub roster: agents::Roster,
    pub clock: world::GameClock,
    pub seed: u64,
    pub log: event_log::EventLog,
}

/// A headless app with the whole world in it. Each `app.update()` is one tick.
pub fn headless_app(setup: WorldSetup) -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, StatesPlugin))
        .insert_resource(setup.map)
        .insert_resource(setup.roster)
        .insert_resource(setup.clock)
        .insert_resource(WorldSeed(setup.seed))
        .insert_resource(setup.log)
        .add_plugins(plugin);
    run_schedules_on_one_thread(&mut app);
    app
}

/// Runs every schedule with the single-threaded executor.
///
/// The world's systems are chained (see [`TickSystems`]), so there is little to run in
/// parallel, and on a 2-core machine the multi-threaded executor's wake-ups cost far more than
/// they save: measured here, a 2-agent tick took 1.05 ms multi-threaded and 17 us single-threaded,
/// with identical events. Heavy work (model calls, log writing) runs on its own threads anyway.
pub fn run_schedules_on_one_thread(app: &mut App) {
    let mut schedules = app.world_mut().resource_mut::<Schedules>();
    for (_, schedule) in schedules.iter_mut() {
        schedule.set_executor(bevy::ecs::schedule::SingleThreadedExecutor::new());
    }
}
