//! Using objects: an actor may use an object of the arena it stands in.

use crate::world::map::ObjectId;
use crate::world::{Place, TownMap};
use agora_shared::TilePos;

/// The object called `name` in the arena at `tile`, if there is one.
pub fn usable_at(map: &TownMap, tile: TilePos, name: &str) -> Option<ObjectId> {
    map.arena_at(tile)
        .and_then(|arena| map.find_object(Place::Arena(arena), name))
}
