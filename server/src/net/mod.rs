//! Multiplayer over renet and netcode.
//!
//! Players connect over UDP with netcode in secure mode: each presents a connect token that
//! the server's private key ([`keys`]) signed ([`tokens`]); the client id inside it is the
//! player's identity and picks its avatar ([`server`]). Their messages are checked against
//! the world ([`actions`]); what they see is sent as changes ([`replication`]).

pub mod actions;
pub mod bot;
pub mod client;
pub mod keys;
pub mod replication;
pub mod server;
pub mod token_endpoint;
pub mod tokens;

use bevy::prelude::*;

/// The network plugins. Call [`server::listen`] to open the socket.
pub fn plugin(app: &mut App) {
    app.add_plugins((server::plugin, replication::plugin, actions::plugin));
}
