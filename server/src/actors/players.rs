//! Players as actors: who a connected player's avatar is, and what is remembered of players
//! who are away. Only connected players' avatars are in the world; a player who leaves is
//! kept in [`AwayPlayers`] (tile, team, record), and comes back where it stood.

use agora_shared::TilePos;
use agora_shared::protocol::NetId;
use bevy::prelude::*;
use std::collections::HashMap;

/// A player's avatar. The client id is the player's identity (the id in its connect token,
/// derived from the name).
#[derive(Component, Clone, Debug)]
pub struct Player {
    pub client_id: u64,
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
    pub net: Option<NetId>,
}

/// Players not connected now, by client id: those who left during this run, and those a
/// database remembered at startup.
#[derive(Resource, Default, Debug)]
pub struct AwayPlayers(pub HashMap<u64, Away>);
