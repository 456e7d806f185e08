//! The renet server: the UDP socket, netcode in secure mode, and what happens when a client
//! connects or leaves. A player's avatar outlives its connection, so reconnecting with the same
//! identity (the client id in the token) resumes it.

use super::actions::Budget;
use super::keys::ServerKey;
use super::replication::{Net, NetIds, Team, View};
use super::tokens;
use crate::event_log::EventLog;
use crate::world::{ActorId, Destination, GameClock, Position, TownMap, Walking};
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

/// The avatar's player is connected now.
#[derive(Component, Debug)]
pub struct Online;

/// The player said hello in the right protocol version and receives the world.
#[derive(Component, Debug)]
pub struct Joined;

/// Avatars by client id, online or not.
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
        .init_resource::<Dropped>()
        .add_observer(on_server_event);
}

/// A player's avatar, offline until its player connects.
pub fn avatar(client_id: ClientId, name: &str, tile: TilePos, team: Team, net: Net) -> impl Bundle {
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
    mut ids: ResMut<NetIds>,
    spawn: Res<SpawnTile>,
    clock: Res<GameClock>,
    mut log: ResMut<EventLog>,
    players: Query<(&ActorId, &Position)>,
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
            let (entity, tile) = match avatars.0.get(&client_id) {
                Some(&entity) => (entity, players.get(entity).map_or(spawn.0, |(_, p)| p.0)),
                None => {
                    let entity = commands
                        .spawn(avatar(client_id, &name, spawn.0, Team(None), ids.issue()))
                        .id();
                    avatars.0.insert(client_id, entity);
                    (entity, spawn.0)
                }
            };
            // Strikes survive a reconnect: reconnecting does not clear a misbehaving record.
            commands
                .entity(entity)
                .insert(Online)
                .insert_if_new(Budget::default());
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
            let Some(&entity) = avatars.0.get(&client_id) else {
                return;
            };
            // The avatar stops where it is and waits for its player; replication tells those
            // who saw it that it is gone.
            commands
                .entity(entity)
                .remove::<(Online, Joined, View, Destination, Walking)>();
            if let Ok((actor, ..)) = players.get(entity) {
                log.record(
                    &clock,
                    Event::PlayerLeft {
                        player: actor.0.clone(),
                    },
                );
            }
        }
    }
}
