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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_goes_through_doors_on_walkable_tiles() {
        let map = crate::world::map::shipped_town();
        let bed = map
            .find_object(map.resolve("Alvarez House:main bedroom").unwrap(), "bed")
            .unwrap();
        let bar = map
            .find_object(map.resolve("Copper Kettle Bar").unwrap(), "stage")
            .unwrap();
        let (from, to) = (map.objects[bed].tile, map.objects[bar].tile);
        let path = find_path(&map, from, to).unwrap();
        assert_eq!(*path.last().unwrap(), to);
        let mut previous = from;
        for step in &path {
            assert!(map.is_walkable(*step), "{step} is a wall");
            assert_eq!(
                previous.manhattan(*step),
                1,
                "jump from {previous} to {step}"
            );
            previous = *step;
        }
        // A* finds a shortest route: never shorter than the straight-line bound.
        assert!(path.len() as u32 >= from.manhattan(to));
    }

    #[test]
    fn unreachable_or_blocked_targets_give_none() {
        let map = crate::world::map::shipped_town();
        let wall = TilePos::new(2, 3);
        assert!(!map.is_walkable(wall));
        assert!(find_path(&map, TilePos::new(0, 0), wall).is_none());
        let river = TilePos::new(5, map.height - 1);
        assert!(find_path(&map, TilePos::new(0, 0), river).is_none());
    }

    #[test]
    fn cache_returns_the_same_route() {
        let map = crate::world::map::shipped_town();
        let mut cache = PathCache::default();
        let a = cache
            .route(&map, TilePos::new(0, 0), TilePos::new(30, 28))
            .unwrap();
        let b = cache
            .route(&map, TilePos::new(0, 0), TilePos::new(30, 28))
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!((cache.hits, cache.misses), (1, 1));
    }
}
