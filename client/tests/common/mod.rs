//! What the client's window tests share: a real server in the test, on loopback, with the
//! shipped town; tokens; and the programs the tests drive (Xvfb, xdotool).
#![allow(dead_code)] // Each test file uses its own part.

use agora_net::config::unix_now;
use agora_net::keys::ServerKey;
use agora_net::tokens;
use agora_server::app::NetSetup;
use agora_server::happenings::{EventLog, MemorySink};
use agora_server::net::replication::ViewRange;
use agora_server::net::server::SpawnTile;
use agora_server::time::GameClock;
use agora_server::world::{Position, TownMap};
use agora_server::{ServerApp, WorldSetup};
use agora_shared::{GameTime, TilePos};
use bevy::prelude::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const WIDTH: u32 = 1280;
pub const HEIGHT: u32 = 720;
/// Screen pixels per world unit at the client's starting zoom.
pub const ZOOM: f32 = 2.0;
pub const TILE: f32 = 16.0;

pub fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

pub fn map_file() -> PathBuf {
    assets().join("maps/maple_hollow.tmj")
}

/// The shipped town at `at` on day 1, at `serve`'s pace (half a game second per tick), with a
/// netcode server on loopback; its agents are spawned.
pub fn server(key: &ServerKey, at: &str) -> (App, SocketAddr) {
    let (map, roster) =
        agora_server::app::load_town(&map_file(), &assets().join("personas"), Some(25)).unwrap();
    let (app, addr) = ServerApp::new(WorldSetup {
        map,
        roster,
        clock: GameClock::new(GameTime::at(1, at.parse().unwrap()), 500),
        seed: 1,
        log: EventLog::new(MemorySink::default()),
    })
    .net(NetSetup {
        bind: "127.0.0.1:0".parse().unwrap(),
        public: None,
        key: key.clone(),
        view: ViewRange::default(),
        players_per_address: 8,
    })
    .unwrap();
    let mut app = app.build();
    app.update();
    (app, addr)
}

/// New players appear on a walkable tile two to four rows below `agent` (who, at night, is in
/// bed), so the agent is in their view.
pub fn spawn_below(app: &mut App, agent: &str) -> TilePos {
    let bed = app
        .world_mut()
        .query::<(&Name, &Position)>()
        .iter(app.world())
        .find(|(name, _)| name.as_str() == agent)
        .unwrap_or_else(|| panic!("{agent} is in town"))
        .1
        .0;
    let map = app.world().resource::<TownMap>();
    let near = (bed.x.saturating_sub(4)..=bed.x + 4)
        .flat_map(|x| (bed.y + 2..=bed.y + 4).map(move |y| TilePos::new(x, y)));
    let spawn = near
        .filter(|t| map.is_walkable(*t))
        .min_by_key(|t| (t.chebyshev(bed), t.x, t.y))
        .expect("a walkable tile near the bed");
    app.insert_resource(SpawnTile(spawn));
    spawn
}

/// A connect token file for `player` in `dir`.
pub fn token_file(key: &ServerKey, player: &str, server: SocketAddr, dir: &Path) -> PathBuf {
    let token = tokens::mint(
        key,
        player,
        vec![server],
        Duration::from_secs(300),
        unix_now(),
    )
    .unwrap();
    let path = dir.join(format!("{player}.token"));
    std::fs::write(&path, tokens::to_bytes(&token)).unwrap();
    path
}

/// The client's arguments to join `server` with `token`, in a window of the tests' size.
pub fn client_args(server: SocketAddr, token: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["--server".into(), server.to_string().into()];
    args.extend(["--token".into(), token.into()]);
    args.extend(["--map".into(), map_file().into()]);
    args.extend(["--window".into(), format!("{WIDTH}x{HEIGHT}").into()]);
    args
}

/// A program on the PATH, or a clear failure naming the script that installs it.
pub fn program(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("no {name}: run scripts/install-render-deps (Xvfb, Mesa's Vulkan, xdotool)")
    })
}

/// The screen position of the centre of `tile`, with the camera centred on `centre`'s.
pub fn on_screen(tile: TilePos, centre: TilePos) -> (f32, f32) {
    let dx = (f32::from(tile.x) - f32::from(centre.x)) * TILE * ZOOM;
    let dy = (f32::from(tile.y) - f32::from(centre.y)) * TILE * ZOOM;
    (WIDTH as f32 / 2.0 + dx, HEIGHT as f32 / 2.0 + dy)
}
