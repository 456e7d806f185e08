//! The Agora world server: a town of generative agents in a Bevy ECS world.
//!
//! The module tree is the plugin tree, and the modules are layered: each imports only from
//! the layers below it (docs/architecture.md; a test checks it).
//!
//! 1. [`schedule`], [`time`]: the tick's sets in order; the game clock.
//! 2. [`happenings`]: what happened, as messages; the event log is one reader.
//! 3. [`world`]: the map, paths, walking, who stands where.
//! 4. [`actors`]: what players and agents both do (move, say, use, teams), one set of rules.
//! 5. [`agents`]: agents from personas, their brains; then [`cognition`].
//! 6. Adapters: [`net`] (players over UDP), [`persist`] (SQLite), [`sim`] and [`serve`]
//!    (the runs), [`cli`]; [`app`] builds the app for all of them.

pub mod actors;
pub mod agents;
pub mod app;
pub mod cli;
pub mod cognition;
pub mod happenings;
pub mod net;
pub mod persist;
pub mod schedule;
pub mod serve;
pub mod sim;
pub mod time;
pub mod world;

pub use app::{ServerApp, WorldSetup};
pub use schedule::TickSystems;

use bevy::prelude::*;

/// The world's plugins: everything but the adapters (network, persistence), which
/// [`ServerApp`] adds on request.
pub fn plugin(app: &mut App) {
    app.add_plugins((
        schedule::plugin,
        time::plugin,
        happenings::plugin,
        world::plugin,
        actors::plugin,
        agents::plugin,
        cognition::plugin,
    ));
}
