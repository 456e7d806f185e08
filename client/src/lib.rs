//! agora-client: the town of an Agora server in a window.
//!
//! The module tree is the plugin tree: [`net`] connects (after the [`connect`] screen, if no
//! token was given) and turns what the server says into
//! [`town::TownUpdate`]s, and [`replay`] turns a saved run's log into the same; [`town`] draws
//! the map and everyone in view from those updates; [`play`] turns clicks and typing into
//! commands; [`inspect`] shows what an agent is thinking when it is clicked; [`hud`] shows the
//! clock, the connection and the chat; [`screenshot`] saves a frame and exits.
//! Every frame runs [`ClientSystems`] in order.

pub mod cli;
pub mod connect;
pub mod hud;
pub mod inspect;
pub mod net;
pub mod play;
pub mod replay;
pub mod screenshot;
pub mod town;

use bevy::prelude::*;
use std::path::PathBuf;

/// What the town is shown from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A live server.
    Server(net::ServerOptions),
    /// A live server chosen on the connect screen (its address filled in, if known).
    Connect(Option<std::net::SocketAddr>),
    /// A saved run's folder.
    Replay(replay::ReplayOptions),
}

/// What the client was asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    pub source: Source,
    /// The Tiled map the server runs (the server names the town, not its file).
    pub map: PathBuf,
    pub screenshot: Option<screenshot::ScreenshotOptions>,
    /// Window size in pixels.
    pub window: (u32, u32),
    /// An agent to open the inspector on once it is in view.
    pub inspect: Option<String>,
}

/// The order of a frame's work.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientSystems {
    /// Read the network (or a replay) and the player's input.
    Receive,
    /// Apply what arrived to the town.
    Apply,
    /// Move sprites, the camera and the HUD towards the new state.
    Present,
    /// Send the player's commands.
    Send,
}

/// The whole client: a window and everything in it.
pub fn app(options: Options) -> App {
    let mut app = App::new();
    let (width, height) = options.window;
    app.add_plugins(
        DefaultPlugins
            .set(WindowPlugin {
                primary_window: Some(Window {
                    title: "Agora".into(),
                    resolution: (width, height).into(),
                    ..default()
                }),
                ..default()
            })
            // Pixel art: no smoothing between texels.
            .set(ImagePlugin::default_nearest()),
    );
    app.insert_resource(ClearColor(Color::srgb(0.08, 0.09, 0.11)));
    plugin(&mut app, options);
    app
}

/// Everything but the window and renderer, so tests can add it to a headless app.
pub fn plugin(app: &mut App, options: Options) {
    app.configure_sets(
        Update,
        (
            ClientSystems::Receive,
            ClientSystems::Apply,
            ClientSystems::Present,
            ClientSystems::Send,
        )
            .chain(),
    );
    app.insert_resource(town::MapFile(options.map));
    app.add_plugins((town::plugin, play::plugin, inspect::plugin, hud::plugin));
    match options.source {
        Source::Server(server) => {
            app.insert_resource(server).add_plugins(net::plugin);
        }
        Source::Connect(addr) => {
            app.insert_resource(connect::ConnectForm::at(addr))
                .add_plugins(net::plugin);
        }
        Source::Replay(replay) => {
            app.insert_resource(replay).add_plugins(replay::plugin);
        }
    }
    if let Some(name) = options.inspect {
        app.insert_resource(inspect::InspectAtStart(name));
    }
    if let Some(screenshot) = options.screenshot {
        app.insert_resource(screenshot)
            .add_plugins(screenshot::plugin);
    }
}
