//! The renet server: the UDP socket, netcode in secure mode, and what happens when a client
//! connects or leaves. Only connected players' avatars are in the world; a player who leaves
//! is remembered ([`AwayPlayers`]: tile, team, record), so reconnecting with the same identity
//! (the client id in the token) brings the avatar back where it stood.

use super::actions::{Budget, LastMessage, STRIKES_TO_DISCONNECT};
use super::replication::{Net, NetIds};
use super::transport::Transport;
use crate::actors::{Away, AwayPlayers, Player, Team};
use crate::happenings::Happened;
use crate::world::{ActorId, Position, TownMap};
use agora_net::config::{connection_config, unix_now};
use agora_net::keys::ServerKey;
use agora_net::tokens;
use agora_shared::TilePos;
use agora_shared::events::Event;
use agora_shared::protocol::NETCODE_PROTOCOL_ID;
use bevy::prelude::*;
use bevy_renet::netcode::{ServerAuthentication, ServerConfig};
use bevy_renet::renet::{ClientId, ServerEvent};
use bevy_renet::{RenetServer, RenetServerEvent, RenetServerPlugin};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};

/// Most players connected at once.
pub const MAX_CLIENTS: usize = 128;

/// The player said hello in the right protocol version and receives the world.
#[derive(Component, Debug)]
pub struct Joined;

/// Connected players' avatars by client id.
#[derive(Resource, Default, Debug)]
pub struct Avatars(pub HashMap<ClientId, Entity>);

/// Where new players appear.
#[derive(Resource, Clone, Copy, Debug)]
pub struct SpawnTile(pub TilePos);

/// Every known player's name by its skeleton ([`agora_shared::text::skeleton`]): a name that
/// looks like another player's (Cyrillic "Аda" beside Latin "Ada") is refused.
#[derive(Resource, Default, Debug)]
pub struct NameSkeletons(pub HashMap<String, ClientId>);

/// Messages dropped because they were malformed, oversized or unexpected (per run).
#[derive(Resource, Default, Debug)]
pub struct Dropped {
    pub messages: u64,
}

/// The address tokens name: `public`, else the bound address, except that a socket bound to
/// every interface (0.0.0.0 or ::) is named by loopback, which this machine at least reaches
/// (no client can connect to 0.0.0.0 across a network).
pub fn public_address(bound: SocketAddr, public: Option<SocketAddr>) -> SocketAddr {
    match public {
        Some(public) => public,
        None if bound.ip().is_unspecified() => {
            let loopback: std::net::IpAddr = match bound {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            };
            SocketAddr::new(loopback, bound.port())
        }
        None => bound,
    }
}

/// Opens the UDP socket and starts netcode in secure mode. `public` is the address written in
/// tokens ([`public_address`]); one address may have `players_per_address` players connected.
/// Returns the bound address.
pub fn listen(
    app: &mut App,
    bind: SocketAddr,
    public: Option<SocketAddr>,
    key: &ServerKey,
    players_per_address: usize,
) -> std::io::Result<SocketAddr> {
    let socket = UdpSocket::bind(bind)?;
    let bound = socket.local_addr()?;
    let config = ServerConfig {
        current_time: unix_now(),
        max_clients: MAX_CLIENTS,
        protocol_id: NETCODE_PROTOCOL_ID,
        public_addresses: vec![public_address(bound, public)],
        authentication: ServerAuthentication::Secure {
            private_key: *key.bytes(),
        },
    };
    let transport = Transport::new(config, socket, players_per_address)?;
    let spawn = spawn_tile(app.world().resource::<TownMap>());
    app.insert_resource(RenetServer::new(connection_config()))
        .insert_resource(transport)
        .insert_resource(SpawnTile(spawn));
    Ok(bound)
}

/// The walkable tile nearest the map's centre.
fn spawn_tile(map: &TownMap) -> TilePos {
    let centre = TilePos::new(map.width / 2, map.height / 2);
    (0..map.height)
        .flat_map(|y| (0..map.width).map(move |x| TilePos::new(x, y)))
        .filter(|&t| map.is_walkable(t))
        .min_by_key(|&t| (t.manhattan(centre), t))
        .unwrap_or(centre)
}

pub fn plugin(app: &mut App) {
    app.add_message::<Happened>()
        .add_plugins((RenetServerPlugin, super::transport::plugin))
        .init_resource::<Avatars>()
        .init_resource::<AwayPlayers>()
        .init_resource::<Dropped>()
        .init_resource::<NameSkeletons>()
        .add_systems(Startup, remember_skeletons)
        .add_observer(on_server_event);
}

/// The players the server remembers (from the database) hold their names' looks.
fn remember_skeletons(away: Res<AwayPlayers>, mut skeletons: ResMut<NameSkeletons>) {
    for (&client_id, player) in &away.0 {
        skeletons
            .0
            .entry(agora_shared::text::skeleton(&player.name))
            .or_insert(client_id);
    }
}

/// A connected player's avatar.
fn avatar(client_id: ClientId, name: &str, tile: TilePos, team: Team, net: Net) -> impl Bundle {
    (
        Player {
            client_id,
            name: name.to_string(),
        },
        Name::new(name.to_string()),
        ActorId(format!("player:{name}")),
        Position(tile),
        team,
        net,
    )
}

fn on_server_event(
    event: On<RenetServerEvent>,
    mut commands: Commands,
    transport: Res<Transport>,
    mut server: ResMut<RenetServer>,
    mut avatars: ResMut<Avatars>,
    mut away: ResMut<AwayPlayers>,
    mut ids: ResMut<NetIds>,
    mut skeletons: ResMut<NameSkeletons>,
    map: Res<TownMap>,
    spawn: Res<SpawnTile>,
    mut happened: MessageWriter<Happened>,
    players: Query<(&Player, &ActorId, &Position, &Team, &Budget, &Net)>,
) {
    match **event {
        ServerEvent::ClientConnected { client_id } => {
            let name = transport
                .user_data(client_id)
                .and_then(|data| tokens::name_from_user_data(&data));
            // The id must be the one the name maps to: a token is the only way in, and only
            // our key makes tokens, but a mismatch would mean two identities for one avatar.
            let Some(name) = name.filter(|n| tokens::client_id(n) == client_id) else {
                warn!("client {client_id}: no valid player name in its token; disconnecting");
                server.disconnect(client_id);
                return;
            };
            if avatars.0.contains_key(&client_id) {
                // netcode lets one connection per client id in; never two avatars for one.
                return;
            }
            let looks = agora_shared::text::skeleton(&name);
            match skeletons.0.get(&looks) {
                Some(&other) if other != client_id => {
                    warn!("{name}: looks like another player's name; refused");
                    server.disconnect(client_id);
                    return;
                }
                Some(_) => {}
                None => {
                    skeletons.0.insert(looks, client_id);
                }
            }
            let returning = away.0.remove(&client_id);
            // Disconnected for breaking the rules, it stays out (until the server restarts).
            if let Some(barred) = returning
                .as_ref()
                .filter(|a| a.strikes >= STRIKES_TO_DISCONNECT)
            {
                warn!(
                    "{name}: refused again ({} refused messages)",
                    barred.strikes
                );
                away.0.insert(client_id, barred.clone());
                server.disconnect(client_id);
                return;
            }
            // The map may have changed since: a tile no longer walkable means the spawn.
            let tile = match &returning {
                Some(a) if map.is_walkable(a.tile) => a.tile,
                Some(a) => {
                    warn!(
                        "{name} stood on {}, which is not walkable on this map; back to the spawn",
                        a.tile
                    );
                    spawn.0
                }
                None => spawn.0,
            };
            // Strikes survive a reconnect: reconnecting does not clear a misbehaving record.
            let mut budget = Budget::default();
            budget.strikes = returning.as_ref().map_or(0, |a| a.strikes);
            let net = returning
                .as_ref()
                .and_then(|a| a.net)
                .map(Net)
                .unwrap_or_else(|| ids.issue());
            let team = Team(returning.and_then(|a| a.team));
            let entity = commands
                .spawn((
                    avatar(client_id, &name, tile, team, net),
                    budget,
                    LastMessage::default(),
                ))
                .id();
            avatars.0.insert(client_id, entity);
            happened.write(Happened(Event::PlayerJoined {
                player: format!("player:{name}"),
                name,
                tile,
            }));
        }
        ServerEvent::ClientDisconnected { client_id, .. } => {
            let Some(entity) = avatars.0.remove(&client_id) else {
                return;
            };
            // The avatar leaves the world (replication tells those who saw it), and the player
            // is remembered for a return.
            let Ok((player, actor, position, team, budget, net)) = players.get(entity) else {
                // Every avatar is spawned with all of these (see `avatar`).
                warn!("client {client_id}: its avatar is incomplete; not remembered");
                commands.entity(entity).despawn();
                return;
            };
            away.0.insert(
                client_id,
                Away {
                    name: player.name.clone(),
                    tile: position.0,
                    team: team.0.clone(),
                    strikes: budget.strikes,
                    net: Some(net.0),
                },
            );
            happened.write(Happened(Event::PlayerLeft {
                player: actor.0.clone(),
            }));
            commands.entity(entity).despawn();
        }
    }
}
