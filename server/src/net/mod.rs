//! Multiplayer over renet and netcode: the server's key and players' connect tokens.
//!
//! Players connect over UDP with netcode in secure mode: each presents a connect token that
//! the server's private key signed ([`tokens`]); the client id inside it is the player's
//! identity. The real-time server plugin, replication and player actions build on these.

pub mod keys;
pub mod tokens;
