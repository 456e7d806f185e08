//! Space: the town map and its location tree, pathfinding, walking and who stands where.

pub mod map;
pub mod movement;
pub mod occupancy;
mod path;
pub(crate) use agora_shared::tiled;

use bevy::prelude::*;

pub use map::{MapError, Place, TownMap};
pub use movement::{Destination, Position, WalkSpeed, Walking};
pub use occupancy::Occupancy;

/// Who an entity is in logs and on the wire: the persona id of an agent, a player's name.
#[derive(Component, Clone, Debug, PartialEq, Eq, Hash, Deref)]
pub struct ActorId(pub String);

/// The seed of a run: every random choice in the world derives from it.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq, Deref)]
pub struct WorldSeed(pub u64);

/// Needs a [`TownMap`] resource inserted before it runs.
pub fn plugin(app: &mut App) {
    app.add_plugins((movement::plugin, occupancy::plugin));
}
