//! Multiplayer over renet and netcode: an adapter, with no gameplay in it.
//!
//! Players connect over UDP with netcode in secure mode: each presents a connect token that
//! the server's private key signed (`agora_net::tokens`); the client id inside it is the
//! player's identity and picks its avatar ([`server`]). Datagrams go through a transport of our
//! own around netcode ([`transport`]), whose [handshake gate](handshakes) meters connection
//! requests per source. Their messages are decoded, bounded,
//! rate-limited and turned into the same actor commands agents' brains issue ([`actions`]);
//! what they see is sent as changes ([`replication`]), what they ask about an agent answered
//! ([`inspect`]), and how many are playing told ([`online`]). [`token_endpoint`] hands out
//! tokens over HTTP.

pub mod actions;
pub mod handshakes;
pub mod inspect;
pub mod online;
pub mod replication;
pub mod server;
pub mod token_endpoint;
pub mod transport;

use bevy::prelude::*;

/// The network plugins. [`server::listen`] opens the socket (`ServerApp::net` does both).
/// Each registers the messages it reads and writes (their own plugins do too; adding one
/// twice is harmless), so each also works on its own in a test.
pub fn plugin(app: &mut App) {
    app.add_plugins((
        server::plugin,
        replication::plugin,
        actions::plugin,
        inspect::plugin,
        online::plugin,
    ));
}
