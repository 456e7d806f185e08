//! Spatial memory, and how an intent in words becomes a spot on the map.
//!
//! The paper's tree (world > sector > arena > object): an agent knows its home, its work, the
//! places its persona visits and the homes of the people it knows, and learns each public
//! place it comes within sight of. A place is never parsed out of the model's text: the intent
//! ("have a drink with Ana") is embedded (MiniLM) and compared with short descriptions: a
//! known sector scores its best match among its own, its arenas' and its objects'; then the
//! sector's arenas, then the arena's objects, the most similar winning at each level. On a
//! labelled set that chose 14 places of 16 right, where the language model's own
//! log-likelihood chose 4 (`server/tests/cognition_labelled.rs`).
//!
//! What an agent has learned is saved (`persist`, by sector name) and given back to it when
//! a stopped world resumes ([`RestoredPlaces`]).
//!
//! The descriptions are embedded once per run, through the model queue (so a journal holds
//! them and a replay needs no model): [`PlaceIndex`] is there from the second tick on.

use super::model_queue::{ModelQueue, ModelResult};
use super::{CognitionSystems, MemorySetup};
use crate::agents::AgentPersona;
use crate::world::map::{ArenaId, ObjectId, SectorId};
use crate::world::{Place, Position, TownMap};
use agora_llm::kernels::dot;
use agora_llm::worker::{JobId, JobOutput, JobRequest, Priority, Purpose};
use agora_shared::TilePos;
use bevy::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// What "home" means to the embedder: an agent's own home is this candidate, whichever house
/// it is.
const HOME_DESCRIPTION: &str = "at home: resting, cooking, eating, reading, cleaning, sleeping";
/// The query that recalls what bears on a day's plans.
pub const PLANS_QUERY: &str = "plans, invitations, events and things to do today";

/// Every place's description, embedded: what intents are compared with.
#[derive(Resource, Debug)]
pub struct PlaceIndex {
    sectors: Vec<Vec<f32>>,
    arenas: Vec<Vec<f32>>,
    objects: Vec<Vec<f32>>,
    home: Vec<f32>,
    /// The embedding of [`PLANS_QUERY`].
    pub plans_query: Vec<f32>,
}

/// The texts a [`PlaceIndex`] embeds, in its order: sectors, arenas, objects, home, query.
pub fn place_descriptions(
    map: &TownMap,
    residents: &BTreeMap<SectorId, Vec<String>>,
) -> Vec<String> {
    let objects_of = |arena: ArenaId| -> Vec<&str> {
        (map.arenas[arena].objects.iter())
            .map(|&o| map.objects[o].name.as_str())
            .collect()
    };
    let sectors = map.sectors.iter().enumerate().map(|(s, sector)| {
        let rooms: Vec<String> = (sector.arenas.iter())
            .map(|&a| match objects_of(a).as_slice() {
                [] => map.arenas[a].name.clone(),
                objects => format!("{} ({})", map.arenas[a].name, objects.join(", ")),
            })
            .collect();
        let who = residents
            .get(&s)
            .map(|names| format!(", where {} live", names.join(" and ")))
            .unwrap_or_default();
        format!("{}{who}: {}", sector.name, rooms.join(", "))
    });
    let arenas = map.arenas.iter().enumerate().map(|(a, arena)| {
        let sector = &map.sectors[arena.sector].name;
        match objects_of(a).as_slice() {
            [] => format!("the {} of {sector}", arena.name),
            objects => format!("the {} of {sector}: {}", arena.name, objects.join(", ")),
        }
    });
    let objects = map.objects.iter().map(|o| {
        let arena = &map.arenas[o.arena];
        format!(
            "the {} in the {} of {}",
            o.name, arena.name, map.sectors[arena.sector].name
        )
    });
    sectors
        .chain(arenas)
        .chain(objects)
        .chain([HOME_DESCRIPTION.to_string(), PLANS_QUERY.to_string()])
        .collect()
}

impl PlaceIndex {
    /// From the vectors of [`place_descriptions`], in its order.
    pub fn from_vectors(map: &TownMap, mut vectors: Vec<Vec<f32>>) -> Option<Self> {
        let (s, a, o) = (map.sectors.len(), map.arenas.len(), map.objects.len());
        if vectors.len() != s + a + o + 2 {
            return None;
        }
        let plans_query = vectors.pop()?;
        let home = vectors.pop()?;
        let objects = vectors.split_off(s + a);
        let arenas = vectors.split_off(s);
        Some(Self {
            sectors: vectors,
            arenas,
            objects,
            home,
            plans_query,
        })
    }

    /// How like `intent` a place is: its best match among its own description and those of
    /// its arenas and objects ("play pool" finds the bar by its pool table).
    fn likeness(&self, map: &TownMap, intent: &[f32], sector: SectorId) -> f32 {
        let arenas = &map.sectors[sector].arenas;
        let objects = arenas.iter().flat_map(|&a| map.arenas[a].objects.iter());
        (arenas.iter().map(|&a| dot(intent, &self.arenas[a])))
            .chain(objects.map(|&o| dot(intent, &self.objects[o])))
            .fold(dot(intent, &self.sectors[sector]), f32::max)
    }

    /// The known sector most like `intent` (a unit embedding). The agent's own home counts
    /// as "home" (and its rooms and things); somebody else's home only by its description (who
    /// lives there), since every house has a sofa.
    pub fn choose_sector(&self, map: &TownMap, intent: &[f32], known: &SpatialMemory) -> SectorId {
        let home = dot(intent, &self.home).max(self.likeness(map, intent, known.home));
        let mut best = (home, known.home);
        for &sector in known.sectors.iter().filter(|&&s| s != known.home) {
            let score = if is_residence(map, sector) {
                dot(intent, &self.sectors[sector])
            } else {
                self.likeness(map, intent, sector)
            };
            if score > best.0 {
                best = (score, sector);
            }
        }
        best.1
    }

    /// The arena of `place` most like `intent`, then its object most like it: a tile to stand
    /// on, and its address. `None` for a place with no walkable tile.
    pub fn choose_spot(
        &self,
        map: &TownMap,
        intent: &[f32],
        place: Place,
    ) -> Option<(TilePos, String)> {
        let arenas: Vec<ArenaId> = map.arenas_of(place).collect();
        let arena = best_of(&arenas, |a| dot(intent, &self.arenas[a]))?;
        let objects = &map.arenas[arena].objects;
        match best_of(objects, |o| dot(intent, &self.objects[o])) {
            Some(object) => Some((map.objects[object].tile, map.object_address(object))),
            None => {
                let tile = *map.arenas[arena].walkable.first()?;
                Some((tile, map.address_at(tile)))
            }
        }
    }

    /// The object anywhere in `place` most like `step` (for a step of an hour's plan).
    pub fn choose_object(&self, map: &TownMap, step: &[f32], place: Place) -> Option<ObjectId> {
        let objects: Vec<ObjectId> = map
            .arenas_of(place)
            .flat_map(|a| map.arenas[a].objects.iter().copied())
            .collect();
        best_of(&objects, |o| dot(step, &self.objects[o]))
    }
}

/// The candidate with the highest score; the first of equals.
fn best_of<T: Copy>(candidates: &[T], score: impl Fn(T) -> f32) -> Option<T> {
    let mut best: Option<(f32, T)> = None;
    for &c in candidates {
        let s = score(c);
        if best.is_none_or(|(b, _)| s > b) {
            best = Some((s, c));
        }
    }
    best.map(|(_, c)| c)
}

/// The sectors an agent knows it can go to.
#[derive(Component, Clone, Debug, PartialEq, Eq)]
pub struct SpatialMemory {
    pub home: SectorId,
    pub sectors: BTreeSet<SectorId>,
}

/// The places a database kept, by agent id and sector name: an agent spawned with one of
/// these ids knows them as well as its persona's. Names no longer on the map are dropped.
#[derive(Resource, Debug, Default)]
pub struct RestoredPlaces(pub BTreeMap<String, BTreeSet<String>>);

/// Whether a sector is somebody's home (it has a bed): those are known only through the
/// persona, never by walking past.
pub fn is_residence(map: &TownMap, sector: SectorId) -> bool {
    map.find_object(Place::Sector(sector), "bed").is_some()
}

impl SpatialMemory {
    /// What a persona knows: its home, work and visits, and the homes of those it knows.
    pub fn seeded(
        map: &TownMap,
        persona: &agora_shared::persona::Persona,
        homes: &BTreeMap<String, SectorId>,
    ) -> Option<Self> {
        let sector = |place: &str| map.resolve(place).ok().map(|p| map.sector_of_place(p));
        let home = sector(&persona.home)?;
        let sectors = (persona.work.iter().map(|w| w.place.as_str()))
            .chain(persona.visits.iter().map(|v| v.place.as_str()))
            .filter_map(sector)
            .chain(
                persona
                    .relationships
                    .iter()
                    .filter_map(|r| homes.get(&r.with).copied()),
            )
            .chain([home])
            .collect();
        Some(Self { home, sectors })
    }

    /// The public places within `radius` tiles of `at` it does not know yet.
    fn unknown_around(&self, map: &TownMap, at: TilePos, radius: u16) -> BTreeSet<SectorId> {
        let mut found = BTreeSet::new();
        let (x0, y0) = (at.x.saturating_sub(radius), at.y.saturating_sub(radius));
        for y in y0..=at
            .y
            .saturating_add(radius)
            .min(map.height.saturating_sub(1))
        {
            for x in x0..=at.x.saturating_add(radius).min(map.width.saturating_sub(1)) {
                if let Some(sector) = map.sector_at(TilePos::new(x, y))
                    && !self.sectors.contains(&sector)
                    && !is_residence(map, sector)
                {
                    found.insert(sector);
                }
            }
        }
        found
    }
}

/// The index's embedding call, while it is under way.
#[derive(Resource, Debug, Default)]
struct IndexRequest {
    job: Option<JobId>,
}

pub fn plugin(app: &mut App) {
    app.init_resource::<IndexRequest>()
        .init_resource::<RestoredPlaces>()
        .add_systems(
            Update,
            (
                index_places.in_set(CognitionSystems::Remember),
                (give_spatial_memory, learn_places)
                    .chain()
                    .in_set(CognitionSystems::Perceive),
            )
                .run_if(resource_exists::<super::DialogueSetup>),
        );
}

/// Who lives where: persona id -> home sector, and home sector -> residents' names.
fn residents<'a>(
    map: &TownMap,
    personas: impl Iterator<Item = (&'a str, &'a AgentPersona)>,
) -> (BTreeMap<String, SectorId>, BTreeMap<SectorId, Vec<String>>) {
    let mut homes = BTreeMap::new();
    let mut names: BTreeMap<SectorId, Vec<String>> = BTreeMap::new();
    for (id, persona) in personas {
        if let Ok(place) = map.resolve(&persona.persona.home) {
            let sector = map.sector_of_place(place);
            homes.insert(id.to_string(), sector);
            let list = names.entry(sector).or_default();
            if !list.contains(&persona.persona.name) {
                list.push(persona.persona.name.clone());
            }
        }
    }
    (homes, names)
}

/// Embeds the places' descriptions once, and makes the index when the vectors come back.
fn index_places(
    mut commands: Commands,
    map: Res<TownMap>,
    index: Option<Res<PlaceIndex>>,
    mut request: ResMut<IndexRequest>,
    mut queue: ModelQueue,
    mut results: MessageReader<ModelResult>,
    agents: Query<(&crate::world::ActorId, &AgentPersona)>,
) {
    if index.is_some() {
        return;
    }
    for result in results.read() {
        if Some(result.id) != request.job {
            continue;
        }
        request.job = None;
        match &result.output {
            Ok(JobOutput::Embedded(e)) => match PlaceIndex::from_vectors(&map, e.vectors.clone()) {
                Some(index) => {
                    commands.insert_resource(index);
                    return;
                }
                None => warn!("places: the embedder's answer did not match the request; retrying"),
            },
            Ok(_) => warn!("places: not an embedding; retrying"),
            Err(e) => warn!("places: embedding failed ({e}); retrying"),
        }
    }
    if request.job.is_some() {
        return;
    }
    let mut personas: Vec<_> = agents.iter().map(|(id, p)| (id.0.as_str(), p)).collect();
    personas.sort_by_key(|(id, _)| *id);
    let (_, names) = residents(&map, personas.into_iter());
    let texts = place_descriptions(&map, &names);
    match queue.submit(
        None,
        Purpose::Plan,
        Priority::High,
        JobRequest::Embed(texts),
    ) {
        Ok(job) => request.job = Some(job),
        Err(e) => warn!("places: cannot embed their descriptions ({e}); retrying"),
    }
}

/// New agents learn what their persona knows, and what they knew before a restart.
fn give_spatial_memory(
    mut commands: Commands,
    map: Res<TownMap>,
    mut restored: ResMut<RestoredPlaces>,
    all: Query<(&crate::world::ActorId, &AgentPersona)>,
    new: Query<(Entity, &crate::world::ActorId, &AgentPersona), Without<SpatialMemory>>,
) {
    if new.is_empty() {
        return;
    }
    let (homes, _) = residents(&map, all.iter().map(|(id, p)| (id.0.as_str(), p)));
    for (entity, id, persona) in &new {
        match SpatialMemory::seeded(&map, &persona.persona, &homes) {
            Some(mut known) => {
                for name in restored.0.remove(&id.0).unwrap_or_default() {
                    match map.sector_by_name(&name) {
                        Some(sector) => {
                            known.sectors.insert(sector);
                        }
                        None => warn!("{}: the saved place {name:?} is not on this map", id.0),
                    }
                }
                commands.entity(entity).insert(known);
            }
            None => warn!(
                "{}: home {:?} is not on the map",
                id.0, persona.persona.home
            ),
        }
    }
}

/// Agents learn the public places they come within sight of. A spatial memory counts as
/// changed (and is saved) only when it learns one.
fn learn_places(
    map: Res<TownMap>,
    setup: Res<MemorySetup>,
    mut agents: Query<(&Position, &mut SpatialMemory), Changed<Position>>,
) {
    for (position, mut known) in &mut agents {
        let new = known.unknown_around(&map, position.0, setup.perception.vision_radius);
        if !new.is_empty() {
            known.sectors.extend(new);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn descriptions_name_rooms_objects_and_residents_in_the_index_order() {
        let map = crate::world::map::shipped_town();
        let cafe = map.sector_by_name("Willow Cafe").unwrap();
        let alvarez = map.sector_by_name("Alvarez House").unwrap();
        let names = BTreeMap::from([(alvarez, vec!["Marisol Alvarez".to_string()])]);
        let texts = place_descriptions(&map, &names);
        assert_eq!(
            texts.len(),
            map.sectors.len() + map.arenas.len() + map.objects.len() + 2
        );
        assert!(
            texts[cafe].starts_with("Willow Cafe: cafe (counter"),
            "{}",
            texts[cafe]
        );
        assert!(texts[alvarez].starts_with("Alvarez House, where Marisol Alvarez live: "));
        assert_eq!(texts[texts.len() - 1], PLANS_QUERY);
        // Wrong-sized answers make no index.
        assert!(PlaceIndex::from_vectors(&map, vec![vec![1.0]; 3]).is_none());
    }

    #[test]
    fn spatial_memory_grows_by_public_places_seen_never_by_others_homes() {
        let map = crate::world::map::shipped_town();
        let bar = map.sector_by_name("Copper Kettle Bar").unwrap();
        let mut known = SpatialMemory {
            home: 0,
            sectors: BTreeSet::from([0]),
        };
        // Standing in the bar's doorway region, then at every tile of the town.
        let inside = map.arenas[map.sectors[bar].arenas[0]].walkable[0];
        let look_around = |known: &mut SpatialMemory, at| {
            let new = known.unknown_around(&map, at, 4);
            assert!(
                new.iter().all(|s| !known.sectors.contains(s)),
                "known: {new:?}"
            );
            known.sectors.extend(new);
        };
        look_around(&mut known, inside);
        assert!(known.sectors.contains(&bar));
        for y in 0..map.height {
            for x in 0..map.width {
                look_around(&mut known, TilePos::new(x, y));
            }
        }
        for &s in &known.sectors {
            assert!(
                s == 0 || !is_residence(&map, s),
                "learned a home: {}",
                map.sectors[s].name
            );
        }
    }

    #[test]
    fn the_most_similar_known_place_wins_level_by_level() {
        let map = crate::world::map::shipped_town();
        let (s, a, o) = (map.sectors.len(), map.arenas.len(), map.objects.len());
        let bar = map.sector_by_name("Copper Kettle Bar").unwrap();
        let cafe = map.sector_by_name("Willow Cafe").unwrap();
        // Scripted vectors (not a model): every place points along x, the bar and its pool table
        // along y, the cafe half way, home along z.
        let mut vectors = vec![unit(&[1.0, 0.0, 0.0]); s + a + o + 2];
        vectors[bar] = unit(&[0.2, 1.0, 0.0]);
        vectors[cafe] = unit(&[1.0, 1.0, 0.0]);
        let pool = (0..o)
            .find(|&i| map.objects[i].name == "pool table")
            .unwrap();
        vectors[s + a + pool] = unit(&[0.0, 1.0, 0.0]);
        vectors[s + a + o] = unit(&[0.0, 0.0, 1.0]);
        let index = PlaceIndex::from_vectors(&map, vectors).unwrap();
        let known = SpatialMemory {
            home: 0,
            sectors: BTreeSet::from([0, cafe, bar]),
        };
        let drink = unit(&[0.1, 1.0, 0.0]);
        assert_eq!(index.choose_sector(&map, &drink, &known), bar);
        assert_eq!(
            index.choose_sector(&map, &unit(&[0.0, 0.1, 1.0]), &known),
            0
        );
        let unknown = SpatialMemory {
            home: 0,
            sectors: BTreeSet::from([0, cafe]),
        };
        assert_eq!(
            index.choose_sector(&map, &drink, &unknown),
            cafe,
            "the bar is not known"
        );
        let (tile, address) = index.choose_spot(&map, &drink, Place::Sector(bar)).unwrap();
        assert_eq!(tile, map.objects[pool].tile);
        assert!(address.ends_with(":pool table"), "{address}");
        assert_eq!(
            index.choose_object(&map, &drink, Place::Sector(bar)),
            Some(pool)
        );
    }
}
