//! The server and real netcode clients over UDP on loopback: two players join the shipped town,
//! see each other move, talk (and a sleeping agent next to them perceives it), one leaves and
//! comes back into the same avatar; bad, expired and mismatched tokens are refused.

use agora_server::event_log::{EventLog, MemorySink};
use agora_server::net::bot::{self, BotReport, Tokens};
use agora_server::net::client::Client;
use agora_server::net::keys::ServerKey;
use agora_server::net::server::{listen, unix_now};
use agora_server::net::tokens;
use agora_server::world::GameClock;
use agora_server::{WorldSetup, headless_app};
use agora_shared::GameTime;
use agora_shared::events::Event;
use agora_shared::protocol::{ClientMessage, NETCODE_PROTOCOL_ID, PROTOCOL_VERSION, ServerMessage};
use bevy::prelude::*;
use bevy_renet::netcode::ConnectToken;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets")
}

/// The shipped town at 03:00 (everyone asleep, so agents stay put), 4 game seconds a tick, a
/// netcode server on a free loopback port.
fn server(key: &ServerKey) -> (App, SocketAddr, MemorySink) {
    let (map, roster) = agora_server::sim::load_town(
        &assets().join("maps/maple_hollow.tmj"),
        &assets().join("personas"),
        Some(25),
    )
    .unwrap();
    let sink = MemorySink::default();
    let mut app = headless_app(WorldSetup {
        map,
        roster,
        clock: GameClock::new(GameTime::at(1, "03:00".parse().unwrap()), 4_000),
        seed: 1,
        log: EventLog::new(sink.clone()),
    });
    app.add_plugins(agora_server::net::plugin);
    let addr = listen(&mut app, "127.0.0.1:0".parse().unwrap(), None, key).unwrap();
    app.finish();
    app.cleanup();
    (app, addr, sink)
}

fn join(key: &ServerKey, name: &str, server: SocketAddr) -> Client {
    Client::connect(
        tokens::mint(key, name, vec![server], Duration::from_secs(60), unix_now()).unwrap(),
    )
    .unwrap()
}

/// Runs the server and the clients until `done` holds, or fails after 20 s.
fn run_until(
    app: &mut App,
    clients: &mut [&mut Client],
    what: &str,
    mut done: impl FnMut(&mut App, &[&mut Client]) -> bool,
) {
    let started = Instant::now();
    let dt = Duration::from_millis(5);
    while !done(app, clients) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        app.update();
        for c in clients.iter_mut() {
            c.pump(dt);
        }
        std::thread::sleep(dt);
    }
}

#[test]
fn two_players_meet_talk_and_reconnect() {
    let key = ServerKey::generate();
    let (mut app, addr, sink) = server(&key);
    let mut ada = join(&key, "ada", addr);
    let mut bob = join(&key, "bob", addr);
    run_until(
        &mut app,
        &mut [&mut ada, &mut bob],
        "both connect",
        |_, c| c.iter().all(|c| c.is_connected()),
    );
    for c in [&mut ada, &mut bob] {
        c.send(&ClientMessage::Hello {
            version: PROTOCOL_VERSION,
        });
    }
    run_until(&mut app, &mut [&mut ada, &mut bob], "welcome", |_, c| {
        c.iter().all(|c| c.welcome().is_some())
    });
    let (ada_id, bob_id) = (ada.welcome().unwrap(), bob.welcome().unwrap());
    assert_ne!(ada_id, bob_id);
    // Ada sees the 25 agents and Bob (he joined at the same time: a Spawned either way).
    let agents = ada
        .inbox
        .iter()
        .filter(|m| {
            matches!(
                m,
                ServerMessage::Spawned {
                    kind: agora_shared::protocol::EntityKind::Agent,
                    ..
                }
            )
        })
        .count();
    assert_eq!(agents, 25);

    // Both walk to a sleeping agent's bedside; each sees the other arrive.
    let (sleeper_id, target) = ada
        .inbox
        .iter()
        .find_map(|m| match m {
            ServerMessage::Spawned {
                id,
                kind: agora_shared::protocol::EntityKind::Agent,
                tile,
                ..
            } => Some((*id, *tile)),
            _ => None,
        })
        .unwrap();
    // Both joined in the same tick: each was still told of the other, and of itself.
    for (client, other) in [(&ada, bob_id), (&bob, ada_id)] {
        for id in [other, client.welcome().unwrap()] {
            assert!(
                client.inbox.iter().any(|m| matches!(m, ServerMessage::Spawned { id: i, kind: agora_shared::protocol::EntityKind::Player, .. } if *i == id)),
                "a player missing from a newcomer's view"
            );
        }
    }
    let bob_start = bob.tiles()[&bob_id];
    ada.send(&ClientMessage::MoveTo { tile: target });
    run_until(
        &mut app,
        &mut [&mut ada, &mut bob],
        "bob sees ada arrive",
        |_, c| c[1].tiles().get(&ada_id) == Some(&target),
    );
    // Ada's command moved Ada only: a client acts through its own avatar.
    assert_eq!(bob.tiles()[&bob_id], bob_start);
    bob.send(&ClientMessage::MoveTo { tile: target });
    run_until(
        &mut app,
        &mut [&mut ada, &mut bob],
        "ada sees bob arrive",
        |_, c| c[0].tiles().get(&bob_id) == Some(&target),
    );

    // Ada speaks: Bob hears it, and so does the agent asleep there (in the event log).
    ada.send(&ClientMessage::Say {
        text: "Is the harvest party tonight?".into(),
    });
    run_until(
        &mut app,
        &mut [&mut ada, &mut bob],
        "bob hears ada",
        |_, c| {
            c[1].inbox.iter().any(|m| {
            matches!(m, ServerMessage::Said { id, text } if *id == ada_id && text == "Is the harvest party tonight?")
        })
        },
    );
    app.update();
    let heard: Vec<String> = sink
        .snapshot()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::Heard {
                agent,
                speaker,
                text,
            } if speaker == "player:ada" && text == "Is the harvest party tonight?" => Some(agent),
            _ => None,
        })
        .collect();
    assert!(!heard.is_empty(), "no agent heard ada");
    let _ = sleeper_id;

    // Bob leaves; Ada is told. Bob comes back with a new token: the same avatar, where he was.
    bob.disconnect();
    run_until(&mut app, &mut [&mut ada], "ada sees bob leave", |_, c| {
        c[0].inbox
            .iter()
            .any(|m| matches!(m, ServerMessage::Despawned { id } if *id == bob_id))
    });
    let mut bob_again = join(&key, "bob", addr);
    run_until(
        &mut app,
        &mut [&mut ada, &mut bob_again],
        "bob reconnects",
        |_, c| c[1].is_connected(),
    );
    bob_again.send(&ClientMessage::Hello {
        version: PROTOCOL_VERSION,
    });
    run_until(
        &mut app,
        &mut [&mut ada, &mut bob_again],
        "bob rejoins",
        |_, c| c[1].welcome().is_some(),
    );
    assert_eq!(bob_again.welcome(), Some(bob_id), "same avatar");
    assert_eq!(bob_again.tiles()[&bob_id], target, "where he left it");
}

#[test]
fn bad_expired_and_mismatched_tokens_are_refused_and_old_clients_told() {
    let key = ServerKey::generate();
    let (mut app, addr, _) = server(&key);
    // Signed with another key.
    let mut forged = join(&ServerKey::generate(), "mallory", addr);
    // Expired: issued two minutes ago for one minute.
    let old = unix_now() - Duration::from_secs(120);
    let mut expired = Client::connect(
        tokens::mint(&key, "eve", vec![addr], Duration::from_secs(60), old).unwrap(),
    )
    .unwrap();
    // A valid signature, but the client id is not the one its player name maps to.
    let mut user_data = [0u8; 256];
    user_data[..3].copy_from_slice(b"ada");
    let mismatched = ConnectToken::generate(
        unix_now(),
        NETCODE_PROTOCOL_ID,
        60,
        tokens::client_id("trudy"),
        15,
        vec![addr],
        Some(&user_data),
        key.bytes(),
    )
    .unwrap();
    let mut impostor = Client::connect(mismatched).unwrap();
    let mut honest = join(&key, "ada", addr);
    run_until(
        &mut app,
        &mut [&mut forged, &mut expired, &mut impostor, &mut honest],
        "the honest client connects",
        |_, c| c[3].is_connected(),
    );
    // Give the others time to fail.
    let deadline = Instant::now() + Duration::from_secs(2);
    run_until(
        &mut app,
        &mut [&mut forged, &mut expired, &mut impostor, &mut honest],
        "two seconds",
        |_, _| Instant::now() > deadline,
    );
    assert!(!forged.is_connected(), "a forged token got in");
    assert!(!expired.is_connected(), "an expired token got in");
    assert!(!impostor.is_connected(), "a mismatched client id got in");

    // Garbage and oversized messages are dropped and counted; the sender stays connected
    // (until it has broken the rules too often).
    honest
        .renet
        .send_message(agora_shared::protocol::Channel::Reliable, vec![0xff; 7]);
    honest.renet.send_message(
        agora_shared::protocol::Channel::Reliable,
        vec![0u8; agora_shared::protocol::MAX_MESSAGE_BYTES + 1],
    );
    run_until(&mut app, &mut [&mut honest], "both dropped", |app, _| {
        app.world()
            .resource::<agora_server::net::server::Dropped>()
            .messages
            == 2
    });
    assert!(honest.is_connected());

    // An outdated client is told why.
    honest.send(&ClientMessage::Hello {
        version: PROTOCOL_VERSION + 1,
    });
    run_until(&mut app, &mut [&mut honest], "outdated", |_, c| {
        c[0].inbox
            .iter()
            .any(|m| matches!(m, ServerMessage::Outdated { server_version, .. } if *server_version == PROTOCOL_VERSION))
    });
    assert!(honest.welcome().is_none());
}

#[test]
fn bots_join_wander_and_chat_without_drops() {
    let key = ServerKey::generate();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let server_key = key.clone();
    // The server ticks on its own thread, as `serve` does, while the bots play.
    let server = std::thread::spawn(move || {
        let (mut app, addr, sink) = server(&server_key);
        addr_tx.send(addr).unwrap();
        let until = Instant::now() + Duration::from_secs(9);
        while Instant::now() < until {
            app.update();
            std::thread::sleep(Duration::from_millis(10));
        }
        sink.snapshot()
    });
    let addr = addr_rx.recv().unwrap();
    // Half the bots get tokens from the token endpoint, half mint them with the key.
    let endpoint = agora_server::net::token_endpoint::start(
        "127.0.0.1:0".parse().unwrap(),
        key.clone(),
        vec![addr],
        Duration::from_secs(60),
    )
    .unwrap();
    let from_url = Tokens::Url(format!("http://{}", endpoint.addr));
    let from_key = Tokens::Key(key);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| bot::run(addr, &from_url, "bot", 8, Duration::from_secs(6)));
        let b = s.spawn(|| bot::run(addr, &from_key, "bot-k", 8, Duration::from_secs(6)));
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    let report = BotReport {
        joined: a.joined + b.joined,
        dropped: a.dropped + b.dropped,
        undecodable: a.undecodable + b.undecodable,
    };
    let events = server.join().unwrap();
    assert_eq!(
        (report.joined, report.dropped, report.undecodable),
        (16, 0, 0),
        "{report:?}"
    );
    let said = events
        .iter()
        .filter(|r| matches!(&r.event, Event::Said { speaker, .. } if speaker.starts_with("player:bot")))
        .count();
    assert!(said >= 16, "every bot spoke at least once: {said}");
}
