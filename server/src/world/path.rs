//! A* on the tile grid, with a cache: agents walk the same few routes every day.

use super::TownMap;
use agora_shared::TilePos;
use bevy::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// Routes kept at most; the cache is emptied when full (routes are cheap to recompute).
const MAX_CACHED_ROUTES: usize = 16_384;

/// The tiles from `from` (exclusive) to `to` (inclusive), moving between 4-neighbours.
/// `None` if `to` cannot be reached. Deterministic: equal inputs give equal paths.
pub fn find_path(map: &TownMap, from: TilePos, to: TilePos) -> Option<Vec<TilePos>> {
    if !map.is_walkable(to) {
        return None;
    }
    let (mut path, _cost) = pathfinding::directed::astar::astar(
        &from,
        |t| {
            map.walkable_neighbours(*t)
                .map(|n| (n, 1u32))
                .collect::<Vec<_>>()
        },
        |t| t.manhattan(to),
        |t| *t == to,
    )?;
    path.remove(0);
    Some(path)
}

/// Memoised [`find_path`]. A resource, shared by everything that walks.
#[derive(Resource, Default)]
pub struct PathCache {
    routes: HashMap<(TilePos, TilePos), Option<Arc<[TilePos]>>>,
    pub hits: u64,
    pub misses: u64,
}

impl PathCache {
    pub fn route(&mut self, map: &TownMap, from: TilePos, to: TilePos) -> Option<Arc<[TilePos]>> {
        if let Some(route) = self.routes.get(&(from, to)) {
            self.hits += 1;
            return route.clone();
        }
        self.misses += 1;
        if self.routes.len() >= MAX_CACHED_ROUTES {
            self.routes.clear();
        }
        let route: Option<Arc<[TilePos]>> = find_path(map, from, to).map(Into::into);
        self.routes.insert((from, to), route.clone());
        route
    }
}
