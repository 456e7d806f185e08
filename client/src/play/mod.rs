//! The player's hands: click a tile to walk there, Enter to talk (and `/team NAME`, `/leave`).

pub mod chat;
pub mod click;

use bevy::prelude::*;

pub fn plugin(app: &mut App) {
    // Commands go out through the net plugin; in a replay nobody sends them.
    app.add_message::<crate::net::Outgoing>()
        .add_plugins((chat::plugin, click::plugin));
}
