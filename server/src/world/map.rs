//! The town: a tile grid with collisions and the location tree the paper uses
//! (world > sector > arena > object), built from a Tiled map and checked for consistency.

use super::tiled::{TiledMap, TiledObject};
use agora_shared::TilePos;
use agora_shared::persona::Places;
use bevy::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

/// Largest map side we accept, in tiles (a bound on memory for untrusted map files).
pub const MAX_MAP_SIDE: u32 = 1024;
/// Map files larger than this are refused unread.
pub const MAX_MAP_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// What is wrong with a map file, naming the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", file.display())]
pub struct MapError {
    pub file: PathBuf,
    pub message: String,
}

pub type SectorId = usize;
pub type ArenaId = usize;
pub type ObjectId = usize;

/// A rectangle of tiles, `[x, x + w) x [y, y + h)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileRect {
    pub x: u16,
    pub y: u16,
    pub w: u16,
    pub h: u16,
}

impl TileRect {
    pub fn contains(&self, t: TilePos) -> bool {
        t.x >= self.x && t.y >= self.y && t.x < self.x + self.w && t.y < self.y + self.h
    }

    pub fn contains_rect(&self, o: &TileRect) -> bool {
        o.x >= self.x
            && o.y >= self.y
            && o.x + o.w <= self.x + self.w
            && o.y + o.h <= self.y + self.h
    }

    pub fn tiles(&self) -> impl Iterator<Item = TilePos> + '_ {
        (self.y..self.y + self.h)
            .flat_map(move |y| (self.x..self.x + self.w).map(move |x| TilePos::new(x, y)))
    }
}

/// A building or open area ("Willow Cafe", "Riverside Park").
#[derive(Debug)]
pub struct Sector {
    pub name: String,
    pub rect: TileRect,
    pub arenas: Vec<ArenaId>,
}

/// A room or part of a sector ("kitchen").
#[derive(Debug)]
pub struct Arena {
    pub name: String,
    pub sector: SectorId,
    pub rect: TileRect,
    pub objects: Vec<ObjectId>,
    /// Walkable tiles inside the arena, row by row.
    pub walkable: Vec<TilePos>,
}

/// Something agents use ("bed", "counter").
#[derive(Debug)]
pub struct MapObject {
    pub name: String,
    pub arena: ArenaId,
    pub rect: TileRect,
    /// The walkable tile an agent stands on to use it.
    pub tile: TilePos,
}

/// A place a persona or a brain can name: a whole sector or one arena of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Place {
    Sector(SectorId),
    Arena(ArenaId),
}

/// The loaded town. A resource: every system that needs space reads it.
#[derive(Resource, Debug)]
pub struct TownMap {
    /// The world's name, the root of every location address.
    pub world: String,
    pub file: PathBuf,
    pub width: u16,
    pub height: u16,
    walkable: Vec<bool>,
    pub sectors: Vec<Sector>,
    pub arenas: Vec<Arena>,
    pub objects: Vec<MapObject>,
    arena_at: Vec<Option<ArenaId>>,
    sector_at: Vec<Option<SectorId>>,
}

impl TownMap {
    /// Loads and checks a Tiled JSON map.
    pub fn load(path: &Path) -> Result<TownMap, MapError> {
        let error = |message: String| MapError {
            file: path.to_path_buf(),
            message,
        };
        let len = std::fs::metadata(path)
            .map_err(|e| error(format!("cannot read map: {e}")))?
            .len();
        if len > MAX_MAP_FILE_BYTES {
            return Err(error(format!(
                "map file is {len} bytes, expected at most {MAX_MAP_FILE_BYTES}"
            )));
        }
        if path.extension().is_some_and(|e| e == "tmx") {
            return Err(error(
                "TMX (XML) maps are not supported: in Tiled, use File > Export As > JSON map (.tmj)".into(),
            ));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| error(format!("cannot read map: {e}")))?;
        Self::from_json(path, &text)
    }

    /// Builds a map from the text of a `.tmj` file; `path` is used in errors.
    pub fn from_json(path: &Path, text: &str) -> Result<TownMap, MapError> {
        let error = |message: String| MapError {
            file: path.to_path_buf(),
            message,
        };
        let tiled: TiledMap = serde_json::from_str(text)
            .map_err(|e| error(format!("not a Tiled JSON map (line {}): {e}", e.line())))?;
        build(&tiled, path).map_err(error)
    }

    fn index(&self, t: TilePos) -> Option<usize> {
        (t.x < self.width && t.y < self.height)
            .then(|| t.y as usize * self.width as usize + t.x as usize)
    }

    pub fn in_bounds(&self, t: TilePos) -> bool {
        self.index(t).is_some()
    }

    pub fn is_walkable(&self, t: TilePos) -> bool {
        self.index(t).is_some_and(|i| self.walkable[i])
    }

    /// The arena a tile is in, if any.
    pub fn arena_at(&self, t: TilePos) -> Option<ArenaId> {
        self.index(t).and_then(|i| self.arena_at[i])
    }

    /// The sector a tile is in, if any.
    pub fn sector_at(&self, t: TilePos) -> Option<SectorId> {
        self.index(t).and_then(|i| self.sector_at[i])
    }

    /// Walkable 4-neighbours of a tile, in a fixed order (determinism).
    pub fn walkable_neighbours(&self, t: TilePos) -> impl Iterator<Item = TilePos> + '_ {
        let candidates = [
            (t.x.checked_sub(1), Some(t.y)),
            (t.x.checked_add(1), Some(t.y)),
            (Some(t.x), t.y.checked_sub(1)),
            (Some(t.x), t.y.checked_add(1)),
        ];
        candidates
            .into_iter()
            .filter_map(|(x, y)| Some(TilePos::new(x?, y?)))
            .filter(|n| self.is_walkable(*n))
    }

    pub fn sector_by_name(&self, name: &str) -> Option<SectorId> {
        self.sectors.iter().position(|s| s.name == name)
    }

    /// Resolves `"Sector"`, `"Sector:arena"` or `"Sector:arena:object"` to the place (an
    /// object's arena, for the last).
    pub fn resolve(&self, place: &str) -> Result<Place, String> {
        self.resolve_object(place).map(|(place, _)| place)
    }

    /// Resolves a place as [`Self::resolve`] does, and the object it names, if it names one.
    pub fn resolve_object(&self, place: &str) -> Result<(Place, Option<ObjectId>), String> {
        let (area, object_name) = match place.splitn(3, ':').collect::<Vec<_>>()[..] {
            [sector, arena, object] => (&place[..sector.len() + 1 + arena.len()], Some(object)),
            _ => (place, None),
        };
        let resolved = self.resolve_area(area)?;
        let Some(object_name) = object_name else {
            return Ok((resolved, None));
        };
        let Place::Arena(arena) = resolved else {
            unreachable!("two parts name an arena")
        };
        let objects = &self.arenas[arena].objects;
        match objects
            .iter()
            .find(|&&o| self.objects[o].name == object_name)
        {
            Some(&o) => Ok((resolved, Some(o))),
            None => Err(format!(
                "{area:?} has no object {object_name:?}; its objects are: {}",
                (objects.iter())
                    .map(|&o| self.objects[o].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// `"Sector"` or `"Sector:arena"`.
    fn resolve_area(&self, place: &str) -> Result<Place, String> {
        let (sector_name, arena_name) = match place.split_once(':') {
            Some((sector, arena)) => (sector, Some(arena)),
            None => (place, None),
        };
        let sector = self.sector_by_name(sector_name).ok_or_else(|| {
            format!(
                "no sector {sector_name:?} on the map {}; sectors are: {}",
                self.file.display(),
                self.sectors
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let Some(arena_name) = arena_name else {
            return Ok(Place::Sector(sector));
        };
        self.sectors[sector]
            .arenas
            .iter()
            .copied()
            .find(|&a| self.arenas[a].name == arena_name)
            .map(Place::Arena)
            .ok_or_else(|| {
                format!(
                    "sector {sector_name:?} has no arena {arena_name:?}; its arenas are: {}",
                    self.sectors[sector]
                        .arenas
                        .iter()
                        .map(|&a| self.arenas[a].name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// The arenas a place covers.
    pub fn arenas_of(&self, place: Place) -> impl Iterator<Item = ArenaId> + '_ {
        let (whole_sector, single) = match place {
            Place::Sector(s) => (self.sectors[s].arenas.as_slice(), None),
            Place::Arena(a) => (&[][..], Some(a)),
        };
        whole_sector.iter().copied().chain(single)
    }

    /// The sector a place belongs to.
    pub fn sector_of_place(&self, place: Place) -> SectorId {
        match place {
            Place::Sector(s) => s,
            Place::Arena(a) => self.arenas[a].sector,
        }
    }

    /// The first object named `name` within a place.
    pub fn find_object(&self, place: Place, name: &str) -> Option<ObjectId> {
        self.arenas_of(place)
            .flat_map(|a| self.arenas[a].objects.iter().copied())
            .find(|&o| self.objects[o].name == name)
    }

    /// Full address of an arena ("Maple Hollow:Willow Cafe:cafe").
    pub fn arena_address(&self, arena: ArenaId) -> String {
        let a = &self.arenas[arena];
        format!("{}:{}:{}", self.world, self.sectors[a.sector].name, a.name)
    }

    /// Full address of an object ("Maple Hollow:Willow Cafe:cafe:counter").
    pub fn object_address(&self, object: ObjectId) -> String {
        let o = &self.objects[object];
        format!("{}:{}", self.arena_address(o.arena), o.name)
    }

    /// Address of whatever is at a tile: the object standing there, else the arena, else the
    /// sector, else the world.
    pub fn address_at(&self, t: TilePos) -> String {
        if let Some(arena) = self.arena_at(t) {
            match self.arenas[arena]
                .objects
                .iter()
                .find(|&&o| self.objects[o].rect.contains(t))
            {
                Some(&o) => self.object_address(o),
                None => self.arena_address(arena),
            }
        } else if let Some(sector) = self.sector_at(t) {
            format!("{}:{}", self.world, self.sectors[sector].name)
        } else {
            self.world.clone()
        }
    }
}

impl Places for TownMap {
    fn check_place(&self, place: &str) -> Result<(), String> {
        self.resolve(place).map(|_| ())
    }

    fn check_home(&self, place: &str) -> Result<(), String> {
        let resolved = self.resolve(place)?;
        match self.find_object(resolved, "bed") {
            Some(_) => Ok(()),
            None => Err(format!(
                "{place:?} has no `bed` object, expected a home where the agent can sleep"
            )),
        }
    }

    fn bed_of(&self, home: &str) -> Option<String> {
        let bed = self.find_object(self.resolve(home).ok()?, "bed")?;
        Some(self.object_address(bed))
    }
}

/// The shipped town, for tests across the crate.
#[cfg(test)]
pub(crate) fn shipped_town() -> TownMap {
    TownMap::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/maps/maple_hollow.tmj"))
        .expect("the shipped map loads")
}

fn build(tiled: &TiledMap, path: &Path) -> Result<TownMap, String> {
    if tiled.orientation != "orthogonal" {
        return Err(format!(
            "orientation is {:?}, expected \"orthogonal\"",
            tiled.orientation
        ));
    }
    if tiled.infinite {
        return Err(
            "infinite maps are not supported: uncheck Map > Map Properties > Infinite".into(),
        );
    }
    if tiled.width == 0
        || tiled.height == 0
        || tiled.width > MAX_MAP_SIDE
        || tiled.height > MAX_MAP_SIDE
    {
        return Err(format!(
            "map is {}x{} tiles, expected each side 1-{MAX_MAP_SIDE}",
            tiled.width, tiled.height
        ));
    }
    if tiled.tilewidth == 0 || tiled.tileheight == 0 {
        return Err("tilewidth and tileheight must be positive".into());
    }
    let (width, height) = (tiled.width as u16, tiled.height as u16);
    let cells = width as usize * height as usize;

    let collision = tiled
        .tile_layer("collision")
        .ok_or("no tile layer named \"collision\" (non-zero tiles there block walking)")?;
    if let Some(encoding) = collision.encoding.as_deref().filter(|e| *e != "csv") {
        return Err(format!(
            "layer \"collision\" is {encoding}-encoded; save it with Tile Layer Format: CSV"
        ));
    }
    if collision.width != tiled.width || collision.height != tiled.height {
        return Err(format!(
            "layer \"collision\" is {}x{}, expected the map's {}x{}",
            collision.width, collision.height, tiled.width, tiled.height
        ));
    }
    let data = collision
        .data
        .as_ref()
        .and_then(|d| d.as_array())
        .ok_or("layer \"collision\" has no tile data array")?;
    if data.len() != cells {
        return Err(format!(
            "layer \"collision\" has {} tiles, expected {cells}",
            data.len()
        ));
    }
    let walkable: Vec<bool> = data.iter().map(|v| v.as_u64() == Some(0)).collect();

    let to_rect = |layer: &str, o: &TiledObject| -> Result<TileRect, String> {
        let label = format!("{layer} object {:?} (id {})", o.name, o.id);
        if o.name.trim().is_empty() {
            return Err(format!("{layer} object id {} has no name", o.id));
        }
        if o.name.contains(':') {
            return Err(format!("{label}: names may not contain ':'"));
        }
        let (tw, th) = (f64::from(tiled.tilewidth), f64::from(tiled.tileheight));
        let x0 = (o.x / tw).floor();
        let y0 = (o.y / th).floor();
        let (x1, y1) = if o.point || o.width <= 0.0 || o.height <= 0.0 {
            (x0 + 1.0, y0 + 1.0)
        } else {
            (
                (((o.x + o.width) / tw).ceil()),
                ((o.y + o.height) / th).ceil(),
            )
        };
        if !(x0 >= 0.0 && y0 >= 0.0 && x1 <= f64::from(width) && y1 <= f64::from(height)) {
            return Err(format!("{label} lies outside the {width}x{height} map"));
        }
        Ok(TileRect {
            x: x0 as u16,
            y: y0 as u16,
            w: (x1 - x0) as u16,
            h: (y1 - y0) as u16,
        })
    };
    let layer = |name: &str| {
        tiled
            .object_layer(name)
            .ok_or_else(|| format!("no object layer named {name:?}"))
    };

    let world = tiled
        .string_property("world")
        .map(str::to_string)
        .unwrap_or_else(|| {
            path.file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("world")
                .to_string()
        });

    let mut sectors: Vec<Sector> = Vec::new();
    for o in &layer("sectors")?.objects {
        let rect = to_rect("sectors", o)?;
        if sectors.iter().any(|s| s.name == o.name) {
            return Err(format!("two sectors are named {:?}", o.name));
        }
        sectors.push(Sector {
            name: o.name.clone(),
            rect,
            arenas: Vec::new(),
        });
    }
    let mut arenas: Vec<Arena> = Vec::new();
    for o in &layer("arenas")?.objects {
        let rect = to_rect("arenas", o)?;
        let sector = sectors
            .iter()
            .position(|s| s.rect.contains_rect(&rect))
            .ok_or_else(|| format!("arena {:?} (id {}) is not inside any sector", o.name, o.id))?;
        if sectors[sector]
            .arenas
            .iter()
            .any(|&a| arenas[a].name == o.name)
        {
            return Err(format!(
                "sector {:?} has two arenas named {:?}",
                sectors[sector].name, o.name
            ));
        }
        let walkable_tiles: Vec<TilePos> = rect
            .tiles()
            .filter(|t| walkable[t.y as usize * width as usize + t.x as usize])
            .collect();
        if walkable_tiles.is_empty() {
            return Err(format!(
                "arena {:?} (id {}) has no walkable tile",
                o.name, o.id
            ));
        }
        sectors[sector].arenas.push(arenas.len());
        arenas.push(Arena {
            name: o.name.clone(),
            sector,
            rect,
            objects: Vec::new(),
            walkable: walkable_tiles,
        });
    }
    if let Some(empty) = sectors.iter().find(|s| s.arenas.is_empty()) {
        return Err(format!("sector {:?} has no arena inside it", empty.name));
    }
    let mut objects: Vec<MapObject> = Vec::new();
    for o in &layer("objects")?.objects {
        let rect = to_rect("objects", o)?;
        let arena = arenas
            .iter()
            .position(|a| a.rect.contains_rect(&rect))
            .ok_or_else(|| format!("object {:?} (id {}) is not inside any arena", o.name, o.id))?;
        let tile = rect
            .tiles()
            .find(|t| walkable[t.y as usize * width as usize + t.x as usize])
            .ok_or_else(|| {
                format!(
                    "object {:?} (id {}) has no walkable tile to stand on",
                    o.name, o.id
                )
            })?;
        arenas[arena].objects.push(objects.len());
        objects.push(MapObject {
            name: o.name.clone(),
            arena,
            rect,
            tile,
        });
    }

    let mut arena_at = vec![None; cells];
    let mut sector_at = vec![None; cells];
    for (id, s) in sectors.iter().enumerate() {
        for t in s.rect.tiles() {
            sector_at[t.y as usize * width as usize + t.x as usize].get_or_insert(id);
        }
    }
    for (id, a) in arenas.iter().enumerate() {
        for t in a.rect.tiles() {
            arena_at[t.y as usize * width as usize + t.x as usize].get_or_insert(id);
        }
    }
    let map = TownMap {
        world,
        file: path.to_path_buf(),
        width,
        height,
        walkable,
        sectors,
        arenas,
        objects,
        arena_at,
        sector_at,
    };
    check_connected(&map)?;
    Ok(map)
}

/// Every arena must be reachable on foot from every other: a walled-off room strands agents.
fn check_connected(map: &TownMap) -> Result<(), String> {
    let Some(start) = map.arenas.first().map(|a| a.walkable[0]) else {
        return Ok(());
    };
    let mut seen = vec![false; map.walkable.len()];
    let mut queue = VecDeque::from([start]);
    seen[map.index(start).unwrap_or_default()] = true;
    while let Some(t) = queue.pop_front() {
        for n in map.walkable_neighbours(t) {
            let i = map.index(n).unwrap_or_default();
            if !seen[i] {
                seen[i] = true;
                queue.push_back(n);
            }
        }
    }
    let mut cut_off: HashMap<&str, Vec<&str>> = HashMap::new();
    for a in &map.arenas {
        if !a
            .walkable
            .iter()
            .any(|t| seen[map.index(*t).unwrap_or_default()])
        {
            cut_off
                .entry(&map.sectors[a.sector].name)
                .or_default()
                .push(&a.name);
        }
    }
    if cut_off.is_empty() {
        return Ok(());
    }
    let mut list: Vec<String> = cut_off
        .into_iter()
        .map(|(s, arenas)| format!("{s}: {}", arenas.join(", ")))
        .collect();
    list.sort();
    Err(format!(
        "some arenas cannot be reached on foot from {:?} (a missing door?): {}",
        map.arena_address(0),
        list.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn shipped_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/maps/maple_hollow.tmj")
    }

    fn shipped_json() -> Value {
        serde_json::from_str(&std::fs::read_to_string(shipped_path()).unwrap()).unwrap()
    }

    fn layer<'a>(map: &'a mut Value, name: &str) -> &'a mut Value {
        map["layers"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|l| l["name"] == name)
            .unwrap()
    }

    fn load(map: &Value) -> Result<TownMap, MapError> {
        TownMap::from_json(Path::new("broken.tmj"), &map.to_string())
    }

    #[test]
    fn shipped_town_has_the_places_personas_need() {
        let map = TownMap::load(&shipped_path()).unwrap();
        assert_eq!(map.world, "Maple Hollow");
        assert_eq!((map.width, map.height), (120, 64));
        for sector in [
            "Willow Cafe",
            "Elm Street Market",
            "Riverside Park",
            "Maple Hill College",
            "Copper Kettle Bar",
            "Town Hall",
            "Maple Hill Dormitory",
        ] {
            assert!(map.sector_by_name(sector).is_some(), "{sector} missing");
        }
        assert_eq!(map.sectors.len(), 17);
        let cafe = map.resolve("Willow Cafe:cafe").unwrap();
        let counter = map.find_object(cafe, "counter").unwrap();
        assert_eq!(
            map.object_address(counter),
            "Maple Hollow:Willow Cafe:cafe:counter"
        );
        let tile = map.objects[counter].tile;
        assert!(map.is_walkable(tile));
        assert_eq!(
            map.address_at(tile),
            "Maple Hollow:Willow Cafe:cafe:counter"
        );
        assert!(map.check_home("Maple Hill Dormitory:room 2").is_ok());
        assert!(
            map.check_home("Willow Cafe")
                .unwrap_err()
                .contains("no `bed`")
        );
        let err = map.check_place("Willow Cafe:attic").unwrap_err();
        assert!(
            err.contains("no arena \"attic\"") && err.contains("cafe, kitchen"),
            "{err}"
        );
        assert!(
            map.check_place("Nowhere")
                .unwrap_err()
                .contains("no sector \"Nowhere\"")
        );
        // A place may name the object itself.
        assert_eq!(
            map.resolve_object("Willow Cafe:cafe:counter").unwrap(),
            (cafe, Some(counter))
        );
        let err = map.check_place("Willow Cafe:cafe:piano").unwrap_err();
        assert!(
            err.contains("no object \"piano\"") && err.contains("counter"),
            "{err}"
        );
    }

    #[test]
    fn missing_collision_layer_is_named() {
        let mut json = shipped_json();
        layer(&mut json, "collision")["name"] = "walls".into();
        let err = load(&json).unwrap_err();
        assert_eq!(err.file, Path::new("broken.tmj"));
        assert!(
            err.to_string()
                .starts_with("broken.tmj: no tile layer named \"collision\""),
            "{err}"
        );
    }

    #[test]
    fn arena_outside_every_sector_is_refused() {
        let mut json = shipped_json();
        let arena = &mut layer(&mut json, "arenas")["objects"][0];
        arena["x"] = 0.into();
        arena["y"] = 0.into();
        let err = load(&json).unwrap_err();
        assert!(
            err.message.contains("arena \"main bedroom\"")
                && err.message.contains("not inside any sector"),
            "{err}"
        );
    }

    #[test]
    fn object_outside_every_arena_is_refused() {
        let mut json = shipped_json();
        let object = &mut layer(&mut json, "objects")["objects"][0];
        object["x"] = 0.into();
        object["y"] = 0.into();
        assert!(
            load(&json)
                .unwrap_err()
                .message
                .contains("not inside any arena")
        );
    }

    #[test]
    fn walled_off_room_is_found() {
        let mut json = shipped_json();
        let width = json["width"].as_u64().unwrap() as usize;
        // Wall in the whole of Price Cottage (x 32..46, y 15..25), doors included.
        let data = layer(&mut json, "collision")["data"]
            .as_array_mut()
            .unwrap();
        for y in 15..25 {
            for x in 32..46 {
                let edge = y == 15 || y == 24 || x == 32 || x == 45;
                if edge {
                    data[y * width + x] = 3.into();
                }
            }
        }
        let err = load(&json).unwrap_err();
        assert!(err.message.contains("cannot be reached on foot"), "{err}");
        assert!(
            err.message
                .contains("Price Cottage: bedroom, kitchen, living room"),
            "{err}"
        );
    }

    #[test]
    fn unsupported_formats_say_what_to_do() {
        let mut json = shipped_json();
        layer(&mut json, "collision")["encoding"] = "base64".into();
        assert!(
            load(&json)
                .unwrap_err()
                .message
                .contains("Tile Layer Format: CSV")
        );
        let mut json = shipped_json();
        json["infinite"] = true.into();
        assert!(load(&json).unwrap_err().message.contains("infinite"));
        let err = TownMap::from_json(Path::new("x.tmj"), "{ not json").unwrap_err();
        assert!(
            err.message.contains("not a Tiled JSON map (line 1)"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let tmx = dir.path().join("town.tmx");
        std::fs::write(&tmx, "<map/>").unwrap();
        assert!(
            TownMap::load(&tmx)
                .unwrap_err()
                .message
                .contains("Export As > JSON")
        );
    }

    #[test]
    fn duplicate_and_colon_names_are_refused() {
        let mut json = shipped_json();
        let sectors = &mut layer(&mut json, "sectors")["objects"];
        sectors[1]["name"] = sectors[0]["name"].clone();
        assert!(
            load(&json)
                .unwrap_err()
                .message
                .contains("two sectors are named")
        );
        let mut json = shipped_json();
        layer(&mut json, "sectors")["objects"][0]["name"] = "A:B".into();
        assert!(
            load(&json)
                .unwrap_err()
                .message
                .contains("may not contain ':'")
        );
    }
}
