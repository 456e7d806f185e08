//! agora-net: what a program needs to play on an Agora server, without Bevy and without the
//! server: the renet connection config both sides share ([`config`]), players' identities and
//! connect tokens ([`tokens`], signed with the server's [`keys`]), fetching a token from a
//! server's endpoint ([`fetch`]), a headless [`client`], and the [`bot`]s built on it.
//! The Bevy game client and `agora-bot` use it; so does the server, for the same config.
//!
//! The messages themselves are in `agora_shared::protocol`.

pub mod bot;
pub mod client;
pub mod config;
pub mod fetch;
pub mod keys;
pub mod tokens;
