//! What must survive a restart, in SQLite (rusqlite, WAL mode): players' avatars (where they
//! stand, their teams), agents' memory streams, plans and the places they know, and the world
//! clock. Later: the
//! ledger.
//!
//! Reads happen once, before the world runs ([`store::Store::load`]); writes go through
//! [`writer::Persistence`], a thread that owns the connection, so no tick waits on the disk.

mod memories;
mod places;
mod plans;
mod players;
mod store;
mod writer;

use bevy::prelude::*;
use std::path::Path;

pub use memories::restored_streams;
pub use plans::restored_plans;
pub use players::away_players;
pub use store::{Saved, SavedMemory, SavedPlayer, Store, StoreError};
pub use writer::Persistence;

/// Saves the world through a [`Persistence`] resource, if one is inserted. To restore players,
/// insert [`away_players`] of what [`Store::load`] read.
pub fn plugin(app: &mut App) {
    app.add_plugins((
        players::plugin,
        memories::plugin,
        plans::plugin,
        places::plugin,
    ));
}

/// Hands every player, the clock, every memory not yet saved and every plan to the writer, changed or
/// not: at shutdown, when the periodic save may not have run since the last change. Follow
/// with [`Persistence::flush`].
pub fn save_all(world: &mut World) {
    players::save_all(world);
    memories::save_all(world);
    plans::save_all(world);
}

/// One server per database (and so per output folder): a second would interleave its writes
/// and rename the first one's live log. The lock goes with the returned file.
pub fn lock_database(db: &Path) -> Result<std::fs::File, String> {
    let path = db.with_extension("lock");
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let file = std::fs::File::create(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => format!(
            "another agora-server is using {} (its lock {} is held)",
            db.display(),
            path.display()
        ),
        std::fs::TryLockError::Error(e) => format!("cannot lock {}: {e}", path.display()),
    })?;
    Ok(file)
}
