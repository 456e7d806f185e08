//! The Agora game client. For now an empty Bevy app that starts and exits: rendering, the
//! HUD, chat and the replay viewer arrive with the networking and client issues.

use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;

fn main() -> AppExit {
    println!(
        "agora-client {}: the game client is not built yet",
        env!("CARGO_PKG_VERSION")
    );
    App::new()
        .add_plugins(MinimalPlugins.set(ScheduleRunnerPlugin::run_once()))
        .run()
}
