//! The game clock: one tick is a fixed step of game time, and the day's phase follows it. At
//! the bottom of the house: everything may read the time, and time imports nothing of ours but
//! the tick's sets.

use crate::schedule::TickSystems;
use agora_shared::GameTime;
use bevy::prelude::*;

/// Game time and tick count. Each `app.update()` is one tick of `ms_per_tick` game time:
/// 10 s in a simulation (the paper's step), wall-clock paced when serving players.
#[derive(Resource, Clone, Debug)]
pub struct GameClock {
    pub now: GameTime,
    pub tick: u64,
    pub ms_per_tick: u64,
}

impl GameClock {
    pub fn new(start: GameTime, ms_per_tick: u64) -> Self {
        Self {
            now: start,
            tick: 0,
            ms_per_tick: ms_per_tick.max(1),
        }
    }
}

/// Day and night. Brains and (later) the client react to phase changes.
#[derive(States, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DayPhase {
    #[default]
    Night,
    Morning,
    Afternoon,
    Evening,
}

impl DayPhase {
    /// Night 22-6, morning 6-12, afternoon 12-18, evening 18-22.
    pub fn at(time: GameTime) -> Self {
        match time.clock().hour() {
            6..=11 => DayPhase::Morning,
            12..=17 => DayPhase::Afternoon,
            18..=21 => DayPhase::Evening,
            _ => DayPhase::Night,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DayPhase::Night => "night",
            DayPhase::Morning => "morning",
            DayPhase::Afternoon => "afternoon",
            DayPhase::Evening => "evening",
        }
    }
}

/// Uses the [`GameClock`] resource if one was inserted, else starts at day 1 00:00 with 10 s ticks.
pub fn plugin(app: &mut App) {
    let start = app
        .world_mut()
        .get_resource_or_insert_with(|| GameClock::new(GameTime(0), 10_000))
        .now;
    app.insert_state(DayPhase::at(start)).add_systems(
        Update,
        (
            follow_day_phase.in_set(TickSystems::Clock),
            advance_clock.in_set(TickSystems::Advance),
        ),
    );
}

fn follow_day_phase(
    clock: Res<GameClock>,
    phase: Res<State<DayPhase>>,
    mut next: ResMut<NextState<DayPhase>>,
) {
    let now = DayPhase::at(clock.now);
    if now != *phase.get() {
        next.set(now);
    }
}

fn advance_clock(mut clock: ResMut<GameClock>) {
    clock.tick += 1;
    clock.now.0 += clock.ms_per_tick;
}
