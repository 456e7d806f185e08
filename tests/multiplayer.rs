//! The server and real netcode clients over UDP on loopback: two players join the shipped town,
//! see each other move, talk (and a sleeping agent next to them perceives it), one leaves and
//! comes back into the same avatar; bad, expired and mismatched tokens are refused.

use agora_net::bot::{self, BotReport, Tokens};
use agora_net::client::Client;
use agora_net::config::unix_now;
use agora_net::keys::ServerKey;
use agora_net::tokens;
use agora_server::TickSystems;
use agora_server::actors::Activity;
use agora_server::actors::{Action, ActorCommand, Away, AwayPlayers};
use agora_server::agents::{Agent, BrainKind};
use agora_server::app::{Journal, MindOptions, load_minds};
use agora_server::happenings::{EventLog, Heard};
use agora_server::memory::{MemoryKind, MemoryStream};
use agora_server::net::actions::MESSAGES_PER_SECOND;
use agora_server::net::replication::{Net, VIEW_KEEP_RADIUS, VIEW_RADIUS};
use agora_server::net::server::SpawnTile;
use agora_server::world::{Position, TownMap};
use agora_shared::GameTime;
use agora_shared::TilePos;
use agora_shared::events::Event;
use agora_shared::protocol::{ClientMessage, NETCODE_PROTOCOL_ID, PROTOCOL_VERSION, ServerMessage};
use agora_shared::protocol::{EntityKind, NetId};
use bevy::prelude::*;
use bevy_renet::netcode::ConnectToken;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

mod common;
use common::{assets, join, run_for, run_until, run_until_within, server, server_with};

fn chebyshev(a: TilePos, b: TilePos) -> u16 {
    a.x.abs_diff(b.x).max(a.y.abs_diff(b.y))
}

/// Every agent's wire id and tile, as the server has them.
fn agents(app: &mut App) -> Vec<(NetId, TilePos)> {
    app.world_mut()
        .query_filtered::<(&Net, &Position), With<Agent>>()
        .iter(app.world())
        .map(|(net, p)| (net.0, p.0))
        .collect()
}

/// The server's entity with this wire id.
fn entity_of(app: &mut App, id: NetId) -> Entity {
    app.world_mut()
        .query::<(Entity, &Net)>()
        .iter(app.world())
        .find(|(_, net)| net.0 == id)
        .map(|(entity, _)| entity)
        .unwrap()
}

/// The agents a client has in view.
fn agents_in(client: &Client) -> Vec<NetId> {
    client.in_view(EntityKind::Agent).into_keys().collect()
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
    // Ada sees the agents around her, and no others (the view is entered at VIEW_RADIUS).
    let spawn = ada.tiles()[&ada_id];
    let seen_agents: BTreeSet<NetId> = agents_in(&ada).into_iter().collect();
    let nearby: BTreeSet<NetId> = agents(&mut app)
        .into_iter()
        .filter(|(_, tile)| chebyshev(*tile, spawn) <= VIEW_RADIUS)
        .map(|(id, _)| id)
        .collect();
    assert!(!nearby.is_empty() && nearby.len() < 25, "{nearby:?}");
    assert_eq!(seen_agents, nearby);

    // Both walk to a sleeping agent's bedside; each sees the other arrive.
    let (sleeper_id, target) = ada
        .inbox
        .iter()
        .find_map(|m| match m {
            ServerMessage::Spawned {
                id,
                kind: EntityKind::Agent,
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
                client.inbox.iter().any(|m| matches!(m, ServerMessage::Spawned { id: i, kind: EntityKind::Player, .. } if *i == id)),
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

    // Ada uses the thing at the bedside and joins a team: Bob, who has her in view, sees both,
    // and the log records the use with the object's address. A thing not there is refused.
    let address = app.world().resource::<TownMap>().address_at(target);
    assert_eq!(address.split(':').count(), 4, "not an object: {address}");
    let object = address.rsplit(':').next().unwrap().to_string();
    ada.send(&ClientMessage::Interact {
        object: "no such thing".into(),
    });
    ada.send(&ClientMessage::Interact {
        object: object.clone(),
    });
    ada.send(&ClientMessage::JoinTeam { team: "red".into() });
    let using = format!("using the {object}");
    run_until(
        &mut app,
        &mut [&mut ada, &mut bob],
        "bob sees ada busy, on a team",
        |_, c| {
            let busy = c[1].inbox.iter().any(|m| {
                matches!(m, ServerMessage::Activity { id, activity, .. } if *id == ada_id && *activity == using)
            });
            let team = c[1].inbox.iter().any(|m| {
                matches!(m, ServerMessage::Team { id, team: Some(t) } if *id == ada_id && t == "red")
            });
            busy && team
        },
    );
    assert!(ada.inbox.iter().any(
        |m| matches!(m, ServerMessage::Refused { reason } if reason.contains("no such thing"))
    ));
    // Repeats, in later ticks, change nothing, so nothing is sent for them.
    ada.send(&ClientMessage::Interact {
        object: object.clone(),
    });
    ada.send(&ClientMessage::JoinTeam { team: "red".into() });
    let later = Instant::now() + Duration::from_millis(300);
    run_until(&mut app, &mut [&mut ada, &mut bob], "a moment", |_, _| {
        Instant::now() > later
    });
    let about_ada = |m: &&ServerMessage| matches!(m, ServerMessage::Activity { id, .. } | ServerMessage::Team { id, .. } if *id == ada_id);
    assert_eq!(bob.inbox.iter().filter(about_ada).count(), 2);
    assert!(sink.snapshot().iter().any(|r| matches!(
        &r.event,
        Event::Activity { agent, location, .. } if agent == "player:ada" && *location == address
    )));

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

/// Connects the clients and says hello; returns their avatars' ids.
fn join_all(app: &mut App, clients: &mut [&mut Client]) -> Vec<NetId> {
    run_until(app, clients, "all connect", |_, c| {
        c.iter().all(|c| c.is_connected())
    });
    for c in clients.iter_mut() {
        c.send(&ClientMessage::Hello {
            version: PROTOCOL_VERSION,
        });
    }
    run_until(app, clients, "all welcomed", |_, c| {
        c.iter().all(|c| c.welcome().is_some())
    });
    clients.iter().map(|c| c.welcome().unwrap()).collect()
}

#[test]
fn the_view_follows_the_player() {
    let key = ServerKey::generate();
    let (mut app, addr, _) = server(&key);
    let mut ada = join(&key, "ada", addr);
    let mut bob = join(&key, "bob", addr);
    let ids = join_all(&mut app, &mut [&mut ada, &mut bob]);
    let (ada_id, bob_id) = (ids[0], ids[1]);
    run_until(
        &mut app,
        &mut [&mut ada, &mut bob],
        "they see each other",
        |_, c| c[0].tiles().contains_key(&bob_id) && c[1].tiles().contains_key(&ada_id),
    );
    let spawn = ada.tiles()[&ada_id];
    let before: BTreeSet<NetId> = agents_in(&ada).into_iter().collect();

    // Ada walks to the agent farthest from the spawn (asleep: nobody else moves).
    let (_, far) = agents(&mut app)
        .into_iter()
        .max_by_key(|(_, tile)| chebyshev(*tile, spawn))
        .unwrap();
    assert!(chebyshev(far, spawn) > VIEW_KEEP_RADIUS);
    ada.send(&ClientMessage::MoveTo { tile: far });
    let world = agents(&mut app);
    let view_is_right = |c: &Client| {
        let seen: BTreeSet<NetId> = agents_in(c).into_iter().collect();
        world.iter().all(|(id, tile)| {
            let d = chebyshev(*tile, far);
            (d > VIEW_RADIUS || seen.contains(id)) && (d <= VIEW_KEEP_RADIUS || !seen.contains(id))
        })
    };
    run_until(
        &mut app,
        &mut [&mut ada, &mut bob],
        "ada arrives and sees around her",
        |_, c| c[0].tiles().get(&ada_id) == Some(&far) && view_is_right(c[0]),
    );
    // Within a second a keyframe repeats every tile in her view, standing or not.
    let in_view = ada.tiles();
    let keyframes_before = ada.inbox.len();
    run_until(&mut app, &mut [&mut ada, &mut bob], "a keyframe", |_, c| {
        c[0].inbox[keyframes_before..].iter().any(|m| match m {
            ServerMessage::Positions { moved, .. } => {
                moved.len() == in_view.len()
                    && moved.iter().all(|(id, t)| in_view.get(id) == Some(t))
            }
            _ => false,
        })
    });
    let after: BTreeSet<NetId> = agents_in(&ada).into_iter().collect();
    assert!(before.difference(&after).count() > 0, "nobody left view");
    assert!(
        after.difference(&before).count() > 0,
        "nobody came into view"
    );
    // Bob, still at the spawn, lost sight of her, and she of him.
    run_until(
        &mut app,
        &mut [&mut ada, &mut bob],
        "they lose sight",
        |_, c| !c[0].tiles().contains_key(&bob_id) && !c[1].tiles().contains_key(&ada_id),
    );
    // She comes back into his view when she returns.
    ada.send(&ClientMessage::MoveTo { tile: spawn });
    run_until(
        &mut app,
        &mut [&mut ada, &mut bob],
        "they meet again",
        |_, c| c[1].tiles().get(&ada_id) == Some(&spawn) && c[0].tiles().contains_key(&bob_id),
    );
}

#[test]
fn a_returning_player_whose_tile_is_gone_starts_at_the_spawn() {
    let key = ServerKey::generate();
    let (mut app, addr, _) = server(&key);
    let tile = |walkable: bool| {
        let map = app.world().resource::<TownMap>();
        (0..map.height)
            .flat_map(|y| (0..map.width).map(move |x| TilePos::new(x, y)))
            .find(|&t| map.is_walkable(t) == walkable)
            .unwrap()
    };
    let (wall, floor) = (tile(false), tile(true));
    assert_ne!(floor, app.world().resource::<SpawnTile>().0);
    // As a database would remember them (e.g. before the map was edited).
    let mut away = app.world_mut().resource_mut::<AwayPlayers>();
    for (name, tile) in [("ada", wall), ("bob", floor)] {
        away.0.insert(
            tokens::client_id(name),
            Away {
                name: name.into(),
                tile,
                team: Some("red".into()),
                strikes: 0,
                net: None,
            },
        );
    }
    let mut ada = join(&key, "ada", addr);
    let mut bob = join(&key, "bob", addr);
    let ids = join_all(&mut app, &mut [&mut ada, &mut bob]);
    run_until(
        &mut app,
        &mut [&mut ada, &mut bob],
        "each sees itself",
        |_, c| c[0].tiles().contains_key(&ids[0]) && c[1].tiles().contains_key(&ids[1]),
    );
    let spawn = app.world().resource::<SpawnTile>().0;
    assert_eq!(ada.tiles()[&ids[0]], spawn);
    assert_eq!(bob.tiles()[&ids[1]], floor);
    let bob_team = bob.inbox.iter().find_map(|m| match m {
        ServerMessage::Spawned { id, team, .. } if *id == ids[1] => Some(team.clone()),
        _ => None,
    });
    assert_eq!(bob_team, Some(Some("red".into())));
}

#[test]
fn a_flooding_client_is_cut_off_and_others_play_on() {
    let key = ServerKey::generate();
    let (mut app, addr, sink) = server(&key);
    let mut flood = join(&key, "flood", addr);
    let mut bob = join(&key, "bob", addr);
    let ids = join_all(&mut app, &mut [&mut flood, &mut bob]);
    for i in 0..200 {
        flood.send(&ClientMessage::Say {
            text: format!("spam {i}"),
        });
    }
    run_until(
        &mut app,
        &mut [&mut flood, &mut bob],
        "the flooder is cut off",
        |_, c| !c[0].is_connected(),
    );
    // Bob (beside him at the spawn) heard what fit the rate, and is still here.
    let heard = bob
        .inbox
        .iter()
        .filter(|m| matches!(m, ServerMessage::Said { id, .. } if *id == ids[0]))
        .count();
    assert!(
        (1..=MESSAGES_PER_SECOND as usize + 5).contains(&heard),
        "{heard} lines got through"
    );
    // Coming back with a fresh token does not help.
    let mut again = join(&key, "flood", addr);
    let deadline = Instant::now() + Duration::from_secs(2);
    run_until(&mut app, &mut [&mut again], "two seconds", |_, _| {
        Instant::now() > deadline
    });
    assert!(!again.is_connected() && again.welcome().is_none());
    // Turned away at the door: its avatar never came back into the world.
    let joins = sink
        .snapshot()
        .iter()
        .filter(
            |r| matches!(&r.event, Event::PlayerJoined { player, .. } if player == "player:flood"),
        )
        .count();
    assert_eq!(joins, 1);
    bob.send(&ClientMessage::Say {
        text: "hello?".into(),
    });
    run_until(&mut app, &mut [&mut bob], "bob still plays", |_, c| {
        c[0].inbox
            .iter()
            .any(|m| matches!(m, ServerMessage::Said { text, .. } if text == "hello?"))
    });
}

/// Refusals by the world's rules (here: walking into a wall) count as strikes like malformed
/// messages do, and a client close to the limit gets no more commands in than strikes it has
/// left: the lines it sends behind its last refused commands are never said.
#[test]
fn a_client_whose_commands_keep_being_refused_is_cut_off_before_more_get_through() {
    let key = ServerKey::generate();
    let (mut app, addr, _) = server(&key);
    let mut mallory = join(&key, "mallory", addr);
    let mut bob = join(&key, "bob", addr);
    join_all(&mut app, &mut [&mut mallory, &mut bob]);
    let wall = {
        let map = app.world().resource::<TownMap>();
        (0..map.height)
            .flat_map(|y| (0..map.width).map(move |x| TilePos::new(x, y)))
            .find(|&t| !map.is_walkable(t))
            .unwrap()
    };
    let refusals = |c: &Client| {
        c.inbox
            .iter()
            .filter(|m| matches!(m, ServerMessage::Refused { .. }))
            .count()
    };
    // 45 refusals, in rounds that stay under the message rate.
    for round in 1..=5 {
        for _ in 0..9 {
            mallory.send(&ClientMessage::MoveTo { tile: wall });
        }
        run_until(
            &mut app,
            &mut [&mut mallory, &mut bob],
            "refusals",
            |_, c| refusals(c[0]) == 9 * round,
        );
        let refilled = Instant::now() + Duration::from_millis(500);
        run_until(
            &mut app,
            &mut [&mut mallory, &mut bob],
            "the rate refills",
            |_, _| Instant::now() > refilled,
        );
    }
    assert!(mallory.is_connected());
    // Five more refusals reach the limit; the lines behind them must not be said.
    for _ in 0..5 {
        mallory.send(&ClientMessage::MoveTo { tile: wall });
    }
    for i in 0..10 {
        mallory.send(&ClientMessage::Say {
            text: format!("past the limit {i}"),
        });
    }
    run_until(
        &mut app,
        &mut [&mut mallory, &mut bob],
        "mallory is cut off",
        |_, c| !c[0].is_connected(),
    );
    let later = Instant::now() + Duration::from_millis(300);
    run_until(&mut app, &mut [&mut bob], "a moment", |_, _| {
        Instant::now() > later
    });
    let leaked = bob
        .inbox
        .iter()
        .filter(
            |m| matches!(m, ServerMessage::Said { text, .. } if text.starts_with("past the limit")),
        )
        .count();
    assert_eq!(leaked, 0, "lines got through after the 50th refusal");
    assert!(bob.is_connected());
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
    let token = tokens::mint(&key, "ada", vec![addr], Duration::from_secs(60), unix_now()).unwrap();
    let mut copy = Vec::new();
    token.write(&mut copy).unwrap();
    let mut honest = Client::connect(token).unwrap();
    run_until(
        &mut app,
        &mut [&mut forged, &mut expired, &mut impostor, &mut honest],
        "the honest client connects",
        |_, c| c[3].is_connected(),
    );
    // The same token replayed from another address.
    let mut replayed = Client::connect(ConnectToken::read(&mut copy.as_slice()).unwrap()).unwrap();
    // Give the others time to fail.
    let deadline = Instant::now() + Duration::from_secs(2);
    run_until(
        &mut app,
        &mut [
            &mut forged,
            &mut expired,
            &mut impostor,
            &mut honest,
            &mut replayed,
        ],
        "two seconds",
        |_, _| Instant::now() > deadline,
    );
    assert!(!replayed.is_connected(), "a replayed token got in");
    assert!(
        honest.is_connected(),
        "the replay cut off the honest client"
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
    // The URL as `serve` prints it.
    let from_url = Tokens::Url(agora_net::fetch::endpoint_url(endpoint.addr));
    let from_key = Tokens::Key(key);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| bot::run(addr, &from_url, "bot", 8, Duration::from_secs(6)));
        let b = s.spawn(|| bot::run(addr, &from_key, "bot-k", 8, Duration::from_secs(6)));
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert!(
        a.troubles.is_empty() && b.troubles.is_empty(),
        "{a:?} {b:?}"
    );
    let report = BotReport {
        joined: a.joined + b.joined,
        dropped: a.dropped + b.dropped,
        undecodable: a.undecodable + b.undecodable,
        troubles: Default::default(),
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

/// Bots sent to an address where no server listens say so, and give up when netcode does
/// (the token's 5 s timeout) instead of waiting out their run.
#[test]
fn bots_with_no_server_say_why_and_stop() {
    let nobody = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = nobody.local_addr().unwrap();
    drop(nobody);
    let started = Instant::now();
    let report = bot::run(
        addr,
        &Tokens::Key(ServerKey::generate()),
        "lost",
        3,
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!((report.joined, report.dropped), (0, 0));
    assert_eq!(report.troubles.values().sum::<usize>(), 3, "{report:?}");
    let (trouble, _) = report.troubles.iter().next().unwrap();
    assert!(
        trouble.starts_with("no answer from the server"),
        "{trouble}"
    );
}

/// Players and agents speak through one system (`actors`): an agent's line, issued as the
/// `ActorCommand` a brain would send, reaches a player's client over UDP as `Said`; a player's
/// line from its client reaches the agent as a `Heard` message that a system in the app reads.
#[test]
fn agents_and_players_speak_through_the_same_system() {
    #[derive(Resource, Default)]
    struct HeardByAgents(Vec<(Entity, Entity, String)>);

    let key = ServerKey::generate();
    let (mut app, addr, sink) = server(&key);
    app.init_resource::<HeardByAgents>().add_systems(
        Update,
        (|mut heard: MessageReader<Heard>,
          agents: Query<(), With<Agent>>,
          mut seen: ResMut<HeardByAgents>| {
            for h in heard.read() {
                if agents.contains(h.listener) {
                    seen.0.push((h.listener, h.speaker, h.text.clone()));
                }
            }
        })
        .after(TickSystems::Act),
    );
    let mut ada = join(&key, "ada", addr);
    let ada_id = join_all(&mut app, &mut [&mut ada])[0];
    // Ada walks to the bedside of the nearest agent (asleep at 03:00: it stays put).
    let me = ada.tiles()[&ada_id];
    let (agent_id, bedside) = agents(&mut app)
        .into_iter()
        .min_by_key(|(_, tile)| chebyshev(*tile, me))
        .unwrap();
    ada.send(&ClientMessage::MoveTo { tile: bedside });
    run_until(&mut app, &mut [&mut ada], "ada at the bedside", |_, c| {
        c[0].tiles().get(&ada_id) == Some(&bedside)
    });
    let agent = entity_of(&mut app, agent_id);

    // The agent speaks, as its brain would.
    app.world_mut().write_message(ActorCommand {
        actor: agent,
        action: Action::Say("Who's there? It's three in the morning.".into()),
    });
    run_until(&mut app, &mut [&mut ada], "ada hears the agent", |_, c| {
        c[0].inbox.iter().any(|m| {
            matches!(m, ServerMessage::Said { id, text } if *id == agent_id && text == "Who's there? It's three in the morning.")
        })
    });

    // Ada answers: the agent hears it, as a message in the app and in the log.
    ada.send(&ClientMessage::Say {
        text: "Only me, sorry!".into(),
    });
    let ada_avatar = entity_of(&mut app, ada_id);
    run_until(
        &mut app,
        &mut [&mut ada],
        "the agent hears ada",
        |app, _| {
            app.world().resource::<HeardByAgents>().0.contains(&(
                agent,
                ada_avatar,
                "Only me, sorry!".to_string(),
            ))
        },
    );
    // Its own line is not logged as heard by itself; Ada's is logged as heard by it.
    app.update();
    let heard: Vec<(String, String)> = sink
        .snapshot()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::Heard { agent, speaker, .. } => Some((agent, speaker)),
            _ => None,
        })
        .collect();
    assert!(
        heard.iter().all(|(agent, speaker)| agent != speaker),
        "{heard:?}"
    );
    assert!(heard.iter().any(|(_, speaker)| speaker == "player:ada"));
}

/// A player says hello next to an agent (the real embedded model, real MiniLM) and gets its
/// answer as a `Said` from that agent, over UDP; the agent remembers what the player said,
/// quoted.
#[test]
fn a_player_says_hello_and_the_agent_answers_in_its_own_words() {
    let mut minds = load_minds(&MindOptions {
        brain: BrainKind::Llm,
        memory: true,
        model: None,
        prompts: assets().join("prompts"),
        journal: Journal::Off,
        queue: 64,
    })
    .expect("the models load (scripts/fetch-models)")
    .expect("--brain llm loads models");
    // Agents do not start talking among themselves here: this agent is free for Ada.
    if let Some(dialogue) = minds.dialogue.as_mut() {
        dialogue.settings.start_chance = 0.0;
    }
    let key = ServerKey::generate();
    let (mut app, addr, sink) = server_with(&key, Some(minds));
    let mut ada = join(&key, "ada", addr);
    let ada_id = join_all(&mut app, &mut [&mut ada])[0];
    let me = ada.tiles()[&ada_id];
    let (agent_id, bedside) = agents(&mut app)
        .into_iter()
        .min_by_key(|(_, tile)| chebyshev(*tile, me))
        .unwrap();
    // It is three in the morning, but this agent lies awake reading.
    let agent = entity_of(&mut app, agent_id);
    app.world_mut().entity_mut(agent).insert(Activity::doing(
        "reading in bed",
        "\u{1f4d6}",
        "",
        GameTime(u64::MAX),
    ));
    ada.send(&ClientMessage::MoveTo { tile: bedside });
    run_until(&mut app, &mut [&mut ada], "ada at the bedside", |_, c| {
        c[0].tiles().get(&ada_id) == Some(&bedside)
    });
    ada.send(&ClientMessage::Say {
        text: "Hello! Are you still awake?".into(),
    });
    let limit = Duration::from_secs(120);
    run_until_within(
        &mut app,
        &mut [&mut ada],
        "the agent answers",
        limit,
        |_, c| {
            c[0].inbox
                .iter()
                .any(|m| matches!(m, ServerMessage::Said { id, .. } if *id == agent_id))
        },
    );
    let answer = ada.inbox.iter().find_map(|m| match m {
        ServerMessage::Said { id, text } if *id == agent_id => Some(text.clone()),
        _ => None,
    });
    let answer = answer.unwrap();
    eprintln!("the agent answered: {answer}");
    assert!(!answer.trim().is_empty() && answer.chars().count() <= 280);
    let stream = app.world().get::<MemoryStream>(agent).unwrap();
    assert!(
        stream.iter().any(|m| m.kind == MemoryKind::Chat
            && m.description == "ada said: \"Hello! Are you still awake?\""),
        "the agent does not remember what ada said"
    );
    // Her inspector shows it among the agent's latest memories, from its real stream.
    ada.send(&ClientMessage::Inspect { id: agent_id });
    let inspected = |c: &Client| {
        c.inbox.iter().rev().find_map(|m| match m {
            ServerMessage::Inspected(i) if i.id == agent_id => Some((**i).clone()),
            _ => None,
        })
    };
    run_until(&mut app, &mut [&mut ada], "the inspection", |_, c| {
        inspected(c[0]).is_some()
    });
    let inspection = inspected(&ada).unwrap();
    assert!(
        (inspection.memories.iter())
            .any(|n| n.kind == "chat" && n.text.contains("Are you still awake?")),
        "{:#?}",
        inspection.memories
    );
    app.update();
    app.world_mut().resource_mut::<EventLog>().flush();
    let started = sink.snapshot().into_iter().any(|r| {
        matches!(&r.event, Event::ConversationStarted { participants, .. }
            if participants.contains(&"player:ada".to_string()))
    });
    assert!(started, "no conversation with ada in the log");
}

/// The inspector's server side: an agent in view is described from the server's own state
/// (persona, activity, memories newest first, reflections apart, no plan for a routine
/// agent); one out of view is refused; asking too fast is refused; the count of players
/// online reaches everyone.
#[test]
fn a_player_inspects_agents_in_view_and_only_those() {
    use agora_server::agents::AgentPersona;
    use agora_server::memory::NewMemory;
    use agora_server::net::actions::INSPECT_BURST;
    let key = ServerKey::generate();
    let (mut app, addr, _) = server(&key);
    let mut ada = join(&key, "ada", addr);
    let ada_id = join_all(&mut app, &mut [&mut ada])[0];
    run_until(&mut app, &mut [&mut ada], "agents in view", |_, c| {
        !agents_in(c[0]).is_empty() && c[0].inbox.contains(&ServerMessage::Online { players: 1 })
    });
    let seen = agents_in(&ada)[0];
    let unseen = (agents(&mut app).into_iter())
        .map(|(id, _)| id)
        .find(|id| !agents_in(&ada).contains(id))
        .expect("an agent out of view");

    // The agent remembers three things; the last two are a reflection and a chat.
    let agent = entity_of(&mut app, seen);
    let mut stream = MemoryStream::new(4);
    let now = GameTime::at(1, "03:00".parse().unwrap());
    let seed = stream.write(
        NewMemory {
            kind: MemoryKind::Thought,
            description: "I love the harvest".into(),
            triple: None,
            evidence: vec![],
        },
        now,
    );
    stream.write(
        NewMemory {
            kind: MemoryKind::Thought,
            description: "the harvest matters to me".into(),
            triple: None,
            evidence: vec![seed],
        },
        now,
    );
    stream.write(
        NewMemory {
            kind: MemoryKind::Chat,
            description: "Ada said: \"hello\"".into(),
            triple: None,
            evidence: vec![],
        },
        now,
    );
    app.world_mut().entity_mut(agent).insert(stream);
    let world = app.world();
    let persona = world.get::<AgentPersona>(agent).unwrap().persona.clone();
    let doing = world.get::<Activity>(agent).unwrap().description.clone();

    let inspected = |c: &Client| {
        c.inbox.iter().find_map(|m| match m {
            ServerMessage::Inspected(i) => Some((**i).clone()),
            _ => None,
        })
    };
    ada.send(&ClientMessage::Inspect { id: seen });
    run_until(&mut app, &mut [&mut ada], "the answer", |_, c| {
        inspected(c[0]).is_some()
    });
    let answer = inspected(&ada).unwrap();
    assert_eq!(answer.id, seen);
    assert_eq!(answer.name, persona.name);
    assert_eq!((answer.age, &answer.traits), (persona.age, &persona.traits));
    assert_eq!(answer.occupation, persona.about().occupation);
    assert_eq!(answer.activity, doing);
    let texts = |notes: &[agora_shared::protocol::MemoryNote]| -> Vec<String> {
        notes.iter().map(|n| n.text.clone()).collect()
    };
    assert_eq!(
        texts(&answer.memories),
        ["Ada said: \"hello\"", "I love the harvest"],
        "newest first, reflections apart"
    );
    assert_eq!(texts(&answer.reflections), ["the harvest matters to me"]);
    assert!(
        answer.plan.is_empty() && answer.intent.is_none(),
        "a routine agent has no plan to show, and none is made up"
    );

    // Out of view, or not an agent at all: refused, and not counted against her.
    let refusals = |c: &Client| {
        (c.inbox.iter())
            .filter_map(|m| match m {
                ServerMessage::Refused { reason } => Some(reason.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    ada.inbox.clear();
    ada.send(&ClientMessage::Inspect { id: unseen });
    ada.send(&ClientMessage::Inspect { id: ada_id });
    run_until(&mut app, &mut [&mut ada], "two refusals", |_, c| {
        refusals(c[0]).len() == 2
    });
    assert!(
        refusals(&ada)
            .iter()
            .all(|r| r.contains("no agent") && r.contains("view"))
    );
    assert!(inspected(&ada).is_none());

    // Asking faster than the inspector's rate: the excess is refused.
    run_for(&mut app, &mut [&mut ada], Duration::from_secs(3));
    ada.inbox.clear();
    for _ in 0..10 {
        ada.send(&ClientMessage::Inspect { id: seen });
    }
    run_until(&mut app, &mut [&mut ada], "ten replies", |_, c| {
        let answers = (c[0].inbox.iter())
            .filter(|m| {
                matches!(
                    m,
                    ServerMessage::Inspected(_) | ServerMessage::Refused { .. }
                )
            })
            .count();
        answers == 10
    });
    let answered = (ada.inbox.iter())
        .filter(|m| matches!(m, ServerMessage::Inspected(_)))
        .count();
    assert!(
        (INSPECT_BURST as usize..=INSPECT_BURST as usize + 1).contains(&answered),
        "{answered} of 10 answered"
    );
    assert!(refusals(&ada).iter().all(|r| r.contains("too fast")));

    // A second player: both hear that two are online.
    let mut bob = join(&key, "bob", addr);
    join_all(&mut app, &mut [&mut bob]);
    run_until(&mut app, &mut [&mut ada, &mut bob], "two online", |_, c| {
        c.iter()
            .all(|c| c.inbox.contains(&ServerMessage::Online { players: 2 }))
    });
}
