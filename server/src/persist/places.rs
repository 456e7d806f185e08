//! Spatial memory across restarts: the places each agent has come to know are saved by sector
//! name as they are learned, so a restarted world does not forget the town its agents walked.

use super::store::Write;
use super::writer::Persistence;
use crate::cognition::SpatialMemory;
use crate::schedule::TickSystems;
use crate::world::{ActorId, TownMap};
use bevy::prelude::*;

pub fn plugin(app: &mut App) {
    app.add_systems(
        Update,
        save_places
            .in_set(TickSystems::Save)
            .run_if(resource_exists::<Persistence>),
    );
}

fn rows(map: &TownMap, agent: &ActorId, known: &SpatialMemory) -> Vec<Write> {
    (known.sectors.iter().chain([&known.home]))
        .filter_map(|&s| map.sectors.get(s))
        .map(|sector| Write::KnownPlace {
            agent: agent.0.clone(),
            sector: sector.name.clone(),
        })
        .collect()
}

/// Every tick; a spatial memory changes only when it is given or learns a place, a few times
/// a day per agent. Rows already saved are written again harmlessly.
fn save_places(
    persistence: Res<Persistence>,
    map: Res<TownMap>,
    changed: Query<(&ActorId, &SpatialMemory), Changed<SpatialMemory>>,
) {
    for (agent, known) in &changed {
        rows(&map, agent, known)
            .into_iter()
            .for_each(|r| persistence.save(r));
    }
}
