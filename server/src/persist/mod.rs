//! What must survive a restart, in SQLite (rusqlite, WAL mode): players' avatars (where they
//! stand, their teams) and the world clock. Later: memory streams and the ledger.
//!
//! Reads happen once, before the world runs ([`store::Store::load`]); writes go through
//! [`writer::Persistence`], a thread that owns the connection, so no tick waits on the disk.

mod players;
mod store;
mod writer;

use bevy::prelude::*;

pub use players::away_players;
pub(crate) use players::save_all;
pub use store::{Saved, SavedPlayer, Store, StoreError};
pub use writer::Persistence;

/// Saves the world through a [`Persistence`] resource, if one is inserted. To restore players,
/// insert [`away_players`] of what [`Store::load`] read.
pub fn plugin(app: &mut App) {
    app.add_plugins(players::plugin);
}
