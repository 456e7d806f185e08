//! The routine brain: a persona's normal day, with no language model.
//!
//! Wake at home, breakfast, work and the persona's usual visits in time order (home in the
//! gaps of an hour or more), dinner and an evening at home, sleep. Times vary by a few minutes
//! from day to day, drawn from the agent's seed, so runs are reproducible and agents are not
//! in lockstep. The plan is a pure function of (persona, seed, time): nothing to store, and a
//! hot-reloaded persona takes effect at the agent's next activity change.

use super::{AgentPersona, AgentSeed, BrainSystems};
use crate::actors::{Action, Activity, ActorCommand};
use crate::time::GameClock;
use crate::world::map::ObjectId;
use crate::world::{Destination, Place, Position, TownMap};
use agora_shared::persona::Persona;
use agora_shared::{GameTime, TilePos};
use bevy::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Routine times vary by up to this many minutes either way from day to day.
const JITTER_MINUTES: i64 = 10;
const WAKING_MINUTES: i64 = 15;
const BREAKFAST_MINUTES: i64 = 30;
const DINNER_MINUTES: i64 = 45;
/// A gap shorter than this between two outings is spent going to the next one early.
const MIN_HOME_GAP_MINUTES: i64 = 60;
const MINUTES_PER_DAY: i64 = 1440;

/// What an agent does at home between outings and in the evening: its free time.
pub const AT_HOME: &str = "relaxing at home";
const SLEEPING: &str = "sleeping";

/// Marks an agent driven by its routine.
#[derive(Component, Debug, Default)]
pub struct RoutineBrain;

/// Where a slot happens, before it is placed on the map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Bed,
    HomeKitchen,
    HomeLounge,
    /// A place named in the persona ("Willow Cafe", "Town Hall:mayor's office").
    Place(String),
}

/// One stretch of an agent's day, in minutes since day 1 00:00 (negative before that).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub start: i64,
    pub end: i64,
    pub description: String,
    pub emoji: String,
    pub target: Target,
}

impl Slot {
    /// The night's sleep that ends an agent-day.
    pub fn is_sleep(&self) -> bool {
        self.target == Target::Bed && self.description == SLEEPING
    }
}

fn day_rng(seed: u64, day: i64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (day as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// When the agent wakes on agent-day `day` (day 0 is the day that starts on day 1).
fn wake_at(persona: &Persona, seed: u64, day: i64) -> i64 {
    let jitter = day_rng(seed, day).random_range(-JITTER_MINUTES..=JITTER_MINUTES);
    day * MINUTES_PER_DAY + i64::from(persona.wake.minutes()) + jitter
}

/// The agent's plan from waking on `day` until waking the next day; contiguous slots.
pub fn day_plan(persona: &Persona, seed: u64, day: i64) -> Vec<Slot> {
    let mut rng = day_rng(seed, day);
    let nominal_wake = day * MINUTES_PER_DAY + i64::from(persona.wake.minutes());
    let wake = nominal_wake + rng.random_range(-JITTER_MINUTES..=JITTER_MINUTES);
    let sleep = nominal_wake
        + i64::from(persona.awake_minutes())
        + rng.random_range(-JITTER_MINUTES..=JITTER_MINUTES);
    let next_wake = wake_at(persona, seed, day + 1);

    struct Outing<'a> {
        start: i64,
        minutes: i64,
        activity: &'a str,
        emoji: &'a str,
        place: &'a str,
    }
    let at = |clock: agora_shared::ClockTime| {
        nominal_wake + i64::from(persona.wake.minutes_until(clock))
    };
    let mut outings: Vec<Outing> = persona
        .work
        .iter()
        .map(|w| Outing {
            start: at(w.start),
            minutes: i64::from(w.start.minutes_until(w.end)),
            activity: &w.activity,
            emoji: w.emoji.as_deref().unwrap_or("💼"),
            place: &w.place,
        })
        .chain(persona.visits.iter().map(|v| Outing {
            start: at(v.at),
            minutes: i64::from(v.minutes),
            activity: &v.activity,
            emoji: v.emoji.as_deref().unwrap_or("🚶"),
            place: &v.place,
        }))
        .collect();
    for outing in &mut outings {
        outing.start += rng.random_range(-JITTER_MINUTES..=JITTER_MINUTES);
    }
    outings.sort_by_key(|o| o.start);

    let slot = |start: i64, end: i64, description: &str, emoji: &str, target: Target| Slot {
        start,
        end,
        description: description.to_string(),
        emoji: emoji.to_string(),
        target,
    };
    let mut plan = vec![
        slot(wake, wake + WAKING_MINUTES, "waking up", "🥱", Target::Bed),
        slot(
            wake + WAKING_MINUTES,
            wake + WAKING_MINUTES + BREAKFAST_MINUTES,
            "having breakfast",
            "🍳",
            Target::HomeKitchen,
        ),
    ];
    let mut t = wake + WAKING_MINUTES + BREAKFAST_MINUTES;
    for outing in outings {
        let start = outing.start.max(t);
        let end = (start + outing.minutes).min(sleep);
        if end - start < 10 {
            continue;
        }
        let slot_start = if start - t >= MIN_HOME_GAP_MINUTES {
            plan.push(slot(t, start, AT_HOME, "🛋️", Target::HomeLounge));
            start
        } else {
            t
        };
        plan.push(slot(
            slot_start,
            end,
            outing.activity,
            outing.emoji,
            Target::Place(outing.place.to_string()),
        ));
        t = end;
    }
    if sleep - t >= DINNER_MINUTES + MIN_HOME_GAP_MINUTES {
        plan.push(slot(
            t,
            t + DINNER_MINUTES,
            "having dinner",
            "🍲",
            Target::HomeKitchen,
        ));
        t += DINNER_MINUTES;
    }
    if sleep > t {
        plan.push(slot(t, sleep, AT_HOME, "🛋️", Target::HomeLounge));
    }
    plan.push(slot(sleep.max(t), next_wake, SLEEPING, "😴", Target::Bed));
    plan
}

/// The slot an agent is in at `minute` (minutes since day 1 00:00), and its agent-day.
pub fn slot_at(persona: &Persona, seed: u64, minute: i64) -> (Slot, i64) {
    let day = (minute - i64::from(persona.wake.minutes())).div_euclid(MINUTES_PER_DAY);
    for d in [day, day - 1, day + 1] {
        if let Some(slot) = day_plan(persona, seed, d)
            .into_iter()
            .find(|s| s.start <= minute && minute < s.end)
        {
            return (slot, d);
        }
    }
    // Unreachable for a validated persona (plans are contiguous); sleep is a safe answer.
    let slot = Slot {
        start: minute,
        end: minute + 60,
        description: SLEEPING.into(),
        emoji: "😴".into(),
        target: Target::Bed,
    };
    (slot, day)
}

pub fn plugin(app: &mut App) {
    app.add_systems(Update, follow_routine.in_set(BrainSystems));
}

/// Agents on their routine do what its slot for now says.
pub fn follow_routine(
    mut commands: Commands,
    mut orders: MessageWriter<ActorCommand>,
    clock: Res<GameClock>,
    map: Res<TownMap>,
    agents: Query<
        (
            Entity,
            &AgentPersona,
            &AgentSeed,
            &Position,
            Option<&Activity>,
            Option<&Destination>,
        ),
        With<RoutineBrain>,
    >,
) {
    let minute = clock.now.total_minutes() as i64;
    for (entity, persona, seed, position, activity, destination) in &agents {
        if activity.is_some_and(|a| clock.now < a.until) {
            continue;
        }
        let (slot, day) = slot_at(&persona.persona, seed.0, minute);
        let (tile, location) = place_slot(&map, &persona.persona, seed.0, day, &slot)
            .unwrap_or_else(|| (position.0, map.address_at(position.0)));
        let until = GameTime::from_minutes(slot.end.max(minute + 1) as u64);
        commands.entity(entity).insert(Activity::doing(
            slot.description,
            slot.emoji,
            location.clone(),
            until,
        ));
        if destination.is_none_or(|d| d.tile != tile) {
            orders.write(ActorCommand {
                actor: entity,
                action: Action::MoveTo {
                    tile,
                    place: Some(location),
                },
            });
        }
    }
}

/// Where on the map a slot happens: a tile to stand on and its address.
pub fn place_slot(
    map: &TownMap,
    persona: &Persona,
    seed: u64,
    day: i64,
    slot: &Slot,
) -> Option<(TilePos, String)> {
    let home = map.resolve(&persona.home).ok()?;
    let home_sector = Place::Sector(map.sector_of_place(home));
    let at_object = |o: ObjectId| (map.objects[o].tile, map.object_address(o));
    let first_of =
        |place: Place, names: &[&str]| names.iter().find_map(|n| map.find_object(place, n));
    let bed = || map.find_object(home, "bed").map(at_object);
    match &slot.target {
        Target::Bed => bed(),
        Target::HomeKitchen => first_of(home_sector, &["dining table", "kitchenette", "stove"])
            .map(at_object)
            .or_else(bed),
        Target::HomeLounge => first_of(home_sector, &["sofa", "bookshelf", "desk"])
            .map(at_object)
            .or_else(bed),
        Target::Place(name) => {
            let (place, object) = map.resolve_object(name).ok()?;
            if let Some(object) = object {
                return Some(at_object(object));
            }
            let mut rng = day_rng(seed ^ slot.start as u64, day);
            let objects: Vec<ObjectId> = map
                .arenas_of(place)
                .flat_map(|a| map.arenas[a].objects.iter().copied())
                .collect();
            if objects.is_empty() {
                let arenas: Vec<_> = map.arenas_of(place).collect();
                let arena = &map.arenas[arenas[rng.random_range(0..arenas.len())]];
                let tile = arena.walkable[rng.random_range(0..arena.walkable.len())];
                Some((tile, map.address_at(tile)))
            } else {
                Some(at_object(objects[rng.random_range(0..objects.len())]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_shared::persona::{Context, parse_persona};
    use std::collections::BTreeSet;
    use std::path::Path;

    const BARTENDER: &str = r#"
name = "Night Owl"
age = 35
traits = ["calm"]
backstory = "Works nights."
lifestyle = "Late."
speech_style = "Dry."
wake = "10:00"
sleep = "02:00"
home = "Brennan House:bedroom"
author = "tests"
license = "CC0-1.0"

[work]
place = "Copper Kettle Bar:bar"
start = "17:00"
end = "01:00"
activity = "tending bar"

[[visits]]
place = "Riverside Park"
at = "12:00"
minutes = 60
activity = "walking by the river"

[[visits]]
place = "Elm Street Market"
at = "12:30"
minutes = 30
activity = "buying groceries"
"#;

    fn persona(map: &TownMap) -> Persona {
        parse_persona(
            Path::new("night_owl.toml"),
            BARTENDER,
            Context {
                places: map,
                persona_ids: &BTreeSet::new(),
            },
        )
        .unwrap()
    }

    #[test]
    fn plan_is_contiguous_and_follows_the_persona() {
        let map = crate::world::map::shipped_town();
        let p = persona(&map);
        for seed in 0..20 {
            let plan = day_plan(&p, seed, 0);
            for pair in plan.windows(2) {
                assert_eq!(pair[0].end, pair[1].start, "gap or overlap in {plan:#?}");
                assert!(pair[0].start < pair[0].end, "empty slot in {plan:#?}");
            }
            let names: Vec<&str> = plan.iter().map(|s| s.description.as_str()).collect();
            assert_eq!(names.first(), Some(&"waking up"));
            assert_eq!(names.last(), Some(&"sleeping"));
            // The overlapping visit starts when the earlier one ends, keeping its length.
            let walk = plan
                .iter()
                .position(|s| s.description == "walking by the river")
                .unwrap();
            assert_eq!(plan[walk + 1].description, "buying groceries");
            assert_eq!(plan[walk + 1].end - plan[walk + 1].start, 30);
            let work = plan
                .iter()
                .find(|s| s.description == "tending bar")
                .unwrap();
            assert!(
                (work.start - (17 * 60)).abs() <= 2 * JITTER_MINUTES,
                "{work:?}"
            );
            // Work ends after midnight, then home and to bed around 02:00.
            assert!(work.end > MINUTES_PER_DAY);
            let sleep = plan.last().unwrap();
            assert!(
                (sleep.start - (26 * 60)).abs() <= JITTER_MINUTES,
                "{sleep:?}"
            );
        }
    }

    #[test]
    fn plans_are_reproducible_and_vary_by_seed_and_day() {
        let map = crate::world::map::shipped_town();
        let p = persona(&map);
        assert_eq!(day_plan(&p, 7, 3), day_plan(&p, 7, 3));
        let wakes: BTreeSet<i64> = (0..10).map(|seed| day_plan(&p, seed, 0)[0].start).collect();
        assert!(
            wakes.len() > 3,
            "wake times do not vary with the seed: {wakes:?}"
        );
        let days: BTreeSet<i64> = (0..10)
            .map(|d| day_plan(&p, 7, d)[0].start - d * MINUTES_PER_DAY)
            .collect();
        assert!(days.len() > 3, "wake times do not vary by day: {days:?}");
    }

    #[test]
    fn slot_at_agrees_with_the_plan_across_midnight() {
        let map = crate::world::map::shipped_town();
        let p = persona(&map);
        // 00:30 on day 1: still at the bar from the night before.
        let (slot, day) = slot_at(&p, 1, 30);
        assert_eq!((slot.description.as_str(), day), ("tending bar", -1));
        for minute in (0..3 * MINUTES_PER_DAY).step_by(7) {
            let (slot, _) = slot_at(&p, 1, minute);
            assert!(
                slot.start <= minute && minute < slot.end,
                "{minute}: {slot:?}"
            );
        }
    }

    #[test]
    fn slots_land_on_objects_in_the_right_places() {
        let map = crate::world::map::shipped_town();
        let p = persona(&map);
        for slot in day_plan(&p, 1, 0) {
            let (tile, address) = place_slot(&map, &p, 1, 0, &slot).unwrap();
            assert!(map.is_walkable(tile));
            let expected = match &slot.target {
                Target::Bed => "Maple Hollow:Brennan House:bedroom:bed".to_string(),
                Target::HomeKitchen => {
                    "Maple Hollow:Brennan House:kitchen:dining table".to_string()
                }
                Target::HomeLounge => "Maple Hollow:Brennan House:living room:sofa".to_string(),
                Target::Place(place) => format!("Maple Hollow:{place}"),
            };
            assert!(
                address.starts_with(&expected),
                "{address} is not in {expected}"
            );
        }
    }

    #[test]
    fn a_period_that_names_its_object_is_spent_there_every_day() {
        let map = crate::world::map::shipped_town();
        let mut p = persona(&map);
        p.work.as_mut().unwrap().place = "Copper Kettle Bar:bar:bar counter".into();
        for seed in 0..5 {
            for day in 0..3 {
                let plan = day_plan(&p, seed, day);
                let work = (plan.iter())
                    .find(|s| s.description == "tending bar")
                    .unwrap();
                let (_, address) = place_slot(&map, &p, seed, day, work).unwrap();
                assert_eq!(address, "Maple Hollow:Copper Kettle Bar:bar:bar counter");
            }
        }
    }
}
