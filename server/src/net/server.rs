//! The renet server: the UDP socket, netcode in secure mode, and what happens when a client
//! connects or leaves. Only connected players' avatars are in the world; a player who leaves
//! is remembered ([`AwayPlayers`]: tile, team, record), so reconnecting with the same identity
//! (the client id in the token) brings the avatar back where it stood.

use super::actions::{Budget, STRIKES_TO_DISCONNECT};
use super::keys::ServerKey;
use super::replication::{Net, NetIds, Team};
use super::tokens;
use crate::event_log::EventLog;
use crate::world::{ActorId, GameClock, Position, TownMap};
use agora_shared::TilePos;
use agora_shared::events::Event;
use agora_shared::protocol::{Channel, MAX_MESSAGE_BYTES, NETCODE_PROTOCOL_ID};
use bevy::prelude::*;
use bevy_renet::netcode::{
    NetcodeServerPlugin, NetcodeServerTransport, ServerAuthentication, ServerConfig,
};
use bevy_renet::renet::{ChannelConfig, ClientId, ConnectionConfig, SendType, ServerEvent};
use bevy_renet::{RenetServer, RenetServerEvent, RenetServerPlugin};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Most players connected at once.
pub const MAX_CLIENTS: usize = 128;

/// A player's avatar.
#[derive(Component, Clone, Debug)]
pub struct Player {
    pub client_id: ClientId,
    pub name: String,
}

/// A player who is not connected: where its avatar stood, its team, its record of refused
/// messages. Its avatar is out of the world until it comes back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Away {
    pub name: String,
    pub tile: TilePos,
    pub team: Option<String>,
    pub strikes: u32,
    /// Its wire id, if it was in the world during this run: it keeps it.
    pub net: Option<Net>,
}

/// Players not connected now, by client id: those who left during this run, and those a
/// database remembered at startup.
#[derive(Resource, Default, Debug)]
pub struct AwayPlayers(pub HashMap<ClientId, Away>);

/// The player said hello in the right protocol version and receives the world.
#[derive(Component, Debug)]
pub struct Joined;

/// Connected players' avatars by client id.
#[derive(Resource, Default, Debug)]
pub struct Avatars(pub HashMap<ClientId, Entity>);

/// Where new players appear.
#[derive(Resource, Clone, Copy, Debug)]
pub struct SpawnTile(pub TilePos);

/// Messages dropped because they were malformed, oversized or unexpected (per run).
#[derive(Resource, Default, Debug)]
pub struct Dropped {
    pub messages: u64,
}

/// Both channels, the same on both sides (clients use [`connection_config`] too).
pub fn connection_config() -> ConnectionConfig {
    let channels = vec![
        ChannelConfig {
            channel_id: Channel::Reliable.into(),
            max_memory_usage_bytes: 64 * MAX_MESSAGE_BYTES,
            send_type: SendType::ReliableOrdered {
                resend_time: Duration::from_millis(200),
            },
        },
        ChannelConfig {
            channel_id: Channel::Unreliable.into(),
            max_memory_usage_bytes: 16 * MAX_MESSAGE_BYTES,
            send_type: SendType::Unreliable,
        },
    ];
    ConnectionConfig {
        available_bytes_per_tick: 60_000,
        server_channels_config: channels.clone(),
        client_channels_config: channels,
    }
}

/// Unix time, as netcode wants it.
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Opens the UDP socket and starts netcode in secure mode. `public` is the address written in
/// tokens (default: the bound address). Returns the bound address.
pub fn listen(
    app: &mut App,
    bind: SocketAddr,
    public: Option<SocketAddr>,
    key: &ServerKey,
) -> std::io::Result<SocketAddr> {
    let socket = UdpSocket::bind(bind)?;
    let bound = socket.local_addr()?;
    let config = ServerConfig {
        current_time: unix_now(),
        max_clients: MAX_CLIENTS,
        protocol_id: NETCODE_PROTOCOL_ID,
        public_addresses: vec![public.unwrap_or(bound)],
        authentication: ServerAuthentication::Secure {
            private_key: *key.bytes(),
        },
    };
    let transport = NetcodeServerTransport::new(config, socket)?;
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
    app.add_plugins((RenetServerPlugin, NetcodeServerPlugin))
        .init_resource::<Avatars>()
        .init_resource::<AwayPlayers>()
        .init_resource::<Dropped>()
        .add_observer(on_server_event);
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
    transport: Res<NetcodeServerTransport>,
    mut server: ResMut<RenetServer>,
    mut avatars: ResMut<Avatars>,
    mut away: ResMut<AwayPlayers>,
    mut ids: ResMut<NetIds>,
    map: Res<TownMap>,
    spawn: Res<SpawnTile>,
    clock: Res<GameClock>,
    mut log: ResMut<EventLog>,
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
                .unwrap_or_else(|| ids.issue());
            let team = Team(returning.and_then(|a| a.team));
            let entity = commands
                .spawn((avatar(client_id, &name, tile, team, net), budget))
                .id();
            avatars.0.insert(client_id, entity);
            log.record(
                &clock,
                Event::PlayerJoined {
                    player: format!("player:{name}"),
                    name,
                    tile,
                },
            );
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
                    net: Some(*net),
                },
            );
            log.record(
                &clock,
                Event::PlayerLeft {
                    player: actor.0.clone(),
                },
            );
            commands.entity(entity).despawn();
        }
    }
}
