//! Walking: an entity with a [`Destination`] walks there along an A* path at walking speed.

use super::path::PathCache;
use super::{ActorId, Occupancy, TownMap};
use crate::happenings::Happened;
use crate::schedule::TickSystems;
use crate::time::GameClock;
use agora_shared::TilePos;
use agora_shared::events::Event;
use bevy::prelude::*;
use std::sync::Arc;

/// The tile an entity stands on.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq, Deref)]
pub struct Position(pub TilePos);

/// Where an entity wants to be. Brains (or players' commands) set it; walking follows.
#[derive(Component, Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub tile: TilePos,
    /// Location address of the destination, for the log ("Maple Hollow:Willow Cafe:cafe:counter").
    pub location: String,
}

/// An entity on its way: the route and how far along it is.
#[derive(Component, Debug)]
pub struct Walking {
    route: Arc<[TilePos]>,
    next: usize,
    /// Distance walked but not yet a whole tile, in thousandths of a tile.
    carried_milli_tiles: u64,
}

impl Walking {
    /// Tiles still to walk.
    pub fn remaining(&self) -> &[TilePos] {
        &self.route[self.next..]
    }
}

/// Walking speed in tiles per game second (default 0.5: 5 tiles per 10-second sim tick).
#[derive(Resource, Clone, Copy, Debug)]
pub struct WalkSpeed {
    pub tiles_per_second: f64,
}

impl Default for WalkSpeed {
    fn default() -> Self {
        Self {
            tiles_per_second: 0.5,
        }
    }
}

pub fn plugin(app: &mut App) {
    app.init_resource::<WalkSpeed>()
        .init_resource::<PathCache>()
        .add_systems(
            Update,
            (plan_routes, walk).chain().in_set(TickSystems::Move),
        );
}

/// Finds a route for every new or changed destination.
fn plan_routes(
    mut commands: Commands,
    map: Res<TownMap>,
    mut cache: ResMut<PathCache>,
    mut happened: MessageWriter<Happened>,
    movers: Query<(Entity, &ActorId, &Position, &Destination), Changed<Destination>>,
) {
    for (entity, actor, position, destination) in &movers {
        if position.0 == destination.tile {
            commands.entity(entity).remove::<Walking>();
            happened.write(arrive(actor, destination));
            continue;
        }
        match cache.route(&map, position.0, destination.tile) {
            Some(route) => {
                commands.entity(entity).insert(Walking {
                    route,
                    next: 0,
                    carried_milli_tiles: 0,
                });
            }
            None => {
                warn!(
                    "{} cannot reach {} ({}) from {}; staying put",
                    actor.0, destination.location, destination.tile, position.0
                );
                commands.entity(entity).remove::<(Walking, Destination)>();
            }
        }
    }
}

/// Moves walkers along their routes by this tick's share of their speed.
fn walk(
    mut commands: Commands,
    clock: Res<GameClock>,
    speed: Res<WalkSpeed>,
    mut occupancy: ResMut<Occupancy>,
    mut happened: MessageWriter<Happened>,
    mut walkers: Query<(Entity, &ActorId, &mut Position, &mut Walking, &Destination)>,
) {
    let per_tick = (speed.tiles_per_second * clock.ms_per_tick as f64).round() as u64;
    for (entity, actor, mut position, mut walking, destination) in &mut walkers {
        let budget = walking.carried_milli_tiles + per_tick;
        let steps = ((budget / 1000) as usize).min(walking.remaining().len());
        walking.carried_milli_tiles = budget % 1000;
        if steps == 0 {
            continue;
        }
        let from = position.0;
        let to = walking.route[walking.next + steps - 1];
        walking.next += steps;
        position.0 = to;
        occupancy.relocate(entity, from, to);
        happened.write(Happened(Event::Move {
            agent: actor.0.clone(),
            from,
            to,
        }));
        if walking.remaining().is_empty() {
            commands.entity(entity).remove::<Walking>();
            happened.write(arrive(actor, destination));
        }
    }
}

fn arrive(actor: &ActorId, destination: &Destination) -> Happened {
    Happened(Event::Arrive {
        agent: actor.0.clone(),
        location: destination.location.clone(),
        tile: destination.tile,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::happenings::{EventLog, MemorySink};
    use bevy::state::app::StatesPlugin;

    /// The world plugins without agents: a map, a clock, a memory log.
    fn world_app() -> (App, MemorySink) {
        let map = crate::world::map::shipped_town();
        let sink = MemorySink::default();
        let mut app = App::new();
        app.add_plugins((MinimalPlugins, StatesPlugin))
            .insert_resource(map)
            .insert_resource(GameClock::new("05:59".parse().unwrap(), 10_000))
            .insert_resource(EventLog::new(sink.clone()))
            .add_plugins((
                crate::schedule::plugin,
                crate::time::plugin,
                crate::happenings::plugin,
                crate::world::plugin,
            ));
        (app, sink)
    }

    #[test]
    fn walker_follows_the_route_at_walking_speed_and_arrives() {
        let (mut app, sink) = world_app();
        let from = TilePos::new(10, 28);
        let to = TilePos::new(30, 28);
        let walker = app
            .world_mut()
            .spawn((
                ActorId("walker".into()),
                Position(from),
                Destination {
                    tile: to,
                    location: "the street".into(),
                },
            ))
            .id();
        // 0.5 tiles/s and 10 s ticks: 5 tiles per tick, 20 tiles in 4 ticks.
        for _ in 0..4 {
            app.update();
        }
        assert_eq!(app.world().get::<Position>(walker).unwrap().0, to);
        assert!(app.world().get::<Walking>(walker).is_none());
        assert_eq!(app.world().resource::<Occupancy>().at(to), &[walker]);
        assert!(app.world().resource::<Occupancy>().at(from).is_empty());
        let events: Vec<Event> = sink.snapshot().into_iter().map(|r| r.event).collect();
        let moves: Vec<(TilePos, TilePos)> = events
            .iter()
            .filter_map(|e| match e {
                Event::Move { from, to, .. } => Some((*from, *to)),
                _ => None,
            })
            .collect();
        assert_eq!(moves.len(), 4);
        assert!(moves.iter().all(|(a, b)| a.manhattan(*b) == 5), "{moves:?}");
        assert!(events.contains(&Event::Arrive {
            agent: "walker".into(),
            location: "the street".into(),
            tile: to
        }));
    }

    #[test]
    fn unreachable_destination_is_dropped_not_retried() {
        let (mut app, _) = world_app();
        let walker = app
            .world_mut()
            .spawn((
                ActorId("walker".into()),
                Position(TilePos::new(10, 28)),
                Destination {
                    tile: TilePos::new(5, 63),
                    location: "the river".into(),
                },
            ))
            .id();
        app.update();
        assert!(app.world().get::<Destination>(walker).is_none());
        assert_eq!(
            app.world().get::<Position>(walker).unwrap().0,
            TilePos::new(10, 28)
        );
    }

    #[test]
    fn day_phase_follows_the_clock_and_is_logged() {
        let (mut app, sink) = world_app();
        // Starts at 05:59, night; one tick (10 s) per update; morning from 06:00.
        for _ in 0..8 {
            app.update();
        }
        assert_eq!(
            *app.world().resource::<State<crate::time::DayPhase>>().get(),
            crate::time::DayPhase::Morning
        );
        let phases: Vec<String> = sink
            .snapshot()
            .into_iter()
            .filter_map(|r| match r.event {
                Event::DayPhase { phase } => Some(phase),
                _ => None,
            })
            .collect();
        assert_eq!(phases, ["night", "morning"]);
    }
}
