//! What the end-to-end network tests share: the shipped town with a netcode server on a free
//! loopback port, tokens for players, and a loop that runs server and clients together.
#![allow(dead_code)] // Each test file uses its own part.

use agora_net::client::Client;
use agora_net::config::unix_now;
use agora_net::keys::ServerKey;
use agora_net::tokens;
use agora_server::agents::BrainKind;
use agora_server::app::{Minds, NetSetup};
use agora_server::cognition::{ModelTiming, RestoredStreams};
use agora_server::happenings::{EventLog, MemorySink};
use agora_server::net::replication::ViewRange;
use agora_server::time::GameClock;
use agora_server::{ServerApp, WorldSetup};
use agora_shared::GameTime;
use bevy::prelude::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets")
}

/// The shipped town at 03:00 (everyone asleep, so agents stay put), 4 game seconds a tick, a
/// netcode server on a free loopback port.
pub fn server(key: &ServerKey) -> (App, SocketAddr, MemorySink) {
    server_with(key, None)
}

/// As [`server`], with agents that think with `minds` (answers applied as they arrive).
/// Every test player comes from 127.0.0.1: any number of them may be connected.
pub fn server_with(key: &ServerKey, minds: Option<Minds>) -> (App, SocketAddr, MemorySink) {
    server_on(key, minds, agora_server::net::server::MAX_CLIENTS)
}

/// As [`server_with`], letting one address have `players_per_address` players connected.
pub fn server_on(
    key: &ServerKey,
    minds: Option<Minds>,
    players_per_address: usize,
) -> (App, SocketAddr, MemorySink) {
    let (map, roster) = agora_server::app::load_town(
        &assets().join("maps/maple_hollow.tmj"),
        &assets().join("personas"),
        Some(25),
    )
    .unwrap();
    let sink = MemorySink::default();
    let app = ServerApp::new(WorldSetup {
        map,
        roster,
        clock: GameClock::new(GameTime::at(1, "03:00".parse().unwrap()), 4_000),
        seed: 1,
        log: EventLog::new(sink.clone()),
    });
    let app = match minds {
        Some(minds) => app.brain(BrainKind::Llm).minds(
            minds,
            ModelTiming::AsTheyArrive,
            RestoredStreams::default(),
        ),
        None => app,
    };
    let (app, addr) = app
        .net(NetSetup {
            bind: "127.0.0.1:0".parse().unwrap(),
            public: None,
            key: key.clone(),
            view: ViewRange::default(),
            players_per_address,
        })
        .unwrap();
    (app.build(), addr, sink)
}

pub fn join(key: &ServerKey, name: &str, server: SocketAddr) -> Client {
    Client::connect(
        tokens::mint(key, name, vec![server], Duration::from_secs(60), unix_now()).unwrap(),
    )
    .unwrap()
}

/// Runs the server and the clients until `done` holds, or fails after 20 s.
pub fn run_until(
    app: &mut App,
    clients: &mut [&mut Client],
    what: &str,
    done: impl FnMut(&mut App, &[&mut Client]) -> bool,
) {
    run_until_within(app, clients, what, Duration::from_secs(20), done)
}

/// As [`run_until`], failing after `limit`.
pub fn run_until_within(
    app: &mut App,
    clients: &mut [&mut Client],
    what: &str,
    limit: Duration,
    mut done: impl FnMut(&mut App, &[&mut Client]) -> bool,
) {
    let started = Instant::now();
    let dt = Duration::from_millis(5);
    while !done(app, clients) {
        assert!(started.elapsed() < limit, "timed out: {what}");
        app.update();
        for c in clients.iter_mut() {
            c.pump(dt);
        }
        std::thread::sleep(dt);
    }
}

/// Runs the server and the clients for `how_long`.
pub fn run_for(app: &mut App, clients: &mut [&mut Client], how_long: Duration) {
    let deadline = Instant::now() + how_long;
    run_until(app, clients, "the time to pass", |_, _| {
        Instant::now() >= deadline
    });
}
