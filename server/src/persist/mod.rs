//! What must survive a restart, in SQLite (rusqlite, WAL mode): players' avatars (where they
//! stand, their teams), agents' memory streams and the world clock. Later: the ledger.
//!
//! Reads happen once, before the world runs ([`store::Store::load`]); writes go through
//! [`writer::Persistence`], a thread that owns the connection, so no tick waits on the disk.

mod memories;
mod players;
mod store;
mod writer;

use bevy::prelude::*;

pub use memories::restored_streams;
pub use players::away_players;
pub use store::{Saved, SavedMemory, SavedPlayer, Store, StoreError};
pub use writer::Persistence;

/// Saves the world through a [`Persistence`] resource, if one is inserted. To restore players,
/// insert [`away_players`] of what [`Store::load`] read.
pub fn plugin(app: &mut App) {
    app.add_plugins((players::plugin, memories::plugin));
}

/// Hands every player, the clock and every memory not yet saved to the writer, changed or
/// not: at shutdown, when the periodic save may not have run since the last change. Follow
/// with [`Persistence::flush`].
pub fn save_all(world: &mut World) {
    players::save_all(world);
    memories::save_all(world);
}
