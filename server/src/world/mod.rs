//! Space and time: the town map, the game clock, pathfinding, walking and who stands where.

pub mod clock;
pub mod map;
pub mod movement;
pub mod occupancy;
pub mod path;
pub mod tiled;

use bevy::prelude::*;

pub use clock::{DayPhase, GameClock};
pub use map::{MapError, Place, TownMap};
pub use movement::{Destination, Position, WalkSpeed, Walking};
pub use occupancy::Occupancy;

/// Who an entity is in logs and on the wire: the persona id of an agent, a player's name.
#[derive(Component, Clone, Debug, PartialEq, Eq, Hash, Deref)]
pub struct ActorId(pub String);

/// Needs a [`TownMap`] and a [`GameClock`] resource inserted before it runs.
pub fn plugin(app: &mut App) {
    app.add_plugins((clock::plugin, movement::plugin, occupancy::plugin));
}
