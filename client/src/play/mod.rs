//! The player's hands: click a tile to walk there, Enter to talk (and `/team NAME`, `/leave`).

pub mod chat;
pub mod click;

use bevy::prelude::*;

pub fn plugin(app: &mut App) {
    app.add_plugins((chat::plugin, click::plugin));
}
