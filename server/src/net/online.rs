//! How many players are in the world, for every client's HUD: sent to a player when it joins,
//! and to everyone when the count changes.

use super::replication::ReplicationSystems;
use super::server::Joined;
use crate::actors::Player;
use agora_shared::protocol::{Channel, ServerMessage, encode};
use bevy::prelude::*;
use bevy_renet::RenetServer;

pub fn plugin(app: &mut App) {
    app.add_systems(
        Update,
        send_online
            .in_set(ReplicationSystems::Online)
            .run_if(resource_exists::<RenetServer>),
    );
}

/// `last`: the count last sent.
fn send_online(
    mut server: ResMut<RenetServer>,
    players: Query<(&Player, Ref<Joined>)>,
    mut last: Local<Option<u32>>,
) {
    let count = players.iter().count() as u32;
    let changed = *last != Some(count);
    *last = Some(count);
    let message = encode(&ServerMessage::Online { players: count });
    for (player, joined) in &players {
        if changed || joined.is_added() {
            server.send_message(player.client_id, Channel::Reliable, message.clone());
        }
    }
}
