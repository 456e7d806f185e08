//! The order of work inside one world tick.
//!
//! Every system of the server runs in `Update` inside one of these sets, which are chained,
//! so a tick always runs input -> clock -> reloads -> think -> act -> move -> record -> advance.
//! A fixed order is what makes simulation runs reproducible: two systems that both write to
//! the event log never race.

use bevy::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TickSystems {
    /// Decode and validate outside input (players, later).
    Input,
    /// Read the clock: day phase and anything keyed to the time of day.
    Clock,
    /// Apply edits to mod files (personas) that arrived since the last tick.
    Reload,
    /// Brains decide what each agent does next.
    Think,
    /// Decisions take effect: activities are logged, destinations set.
    Act,
    /// Walking along paths.
    Move,
    /// Hand this tick's events to the event log writer (off the tick thread).
    Record,
    /// Advance the clock to the next tick.
    Advance,
}

pub fn plugin(app: &mut App) {
    app.configure_sets(
        Update,
        (
            TickSystems::Input,
            TickSystems::Clock,
            TickSystems::Reload,
            TickSystems::Think,
            TickSystems::Act,
            TickSystems::Move,
            TickSystems::Record,
            TickSystems::Advance,
        )
            .chain(),
    );
}

/// Tick wall-clock statistics, in microseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TickStats {
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    /// Ticks by time, in power-of-two buckets: upper bound in microseconds -> ticks that took
    /// at most that long and more than half of it.
    pub histogram: BTreeMap<u64, u64>,
}

impl TickStats {
    pub fn from_durations(times: &[Duration]) -> Self {
        if times.is_empty() {
            return Self::default();
        }
        let mut us: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        us.sort_by(f64::total_cmp);
        let pick = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize];
        let mut histogram = BTreeMap::new();
        for t in &us {
            *histogram
                .entry((t.ceil() as u64).max(1).next_power_of_two())
                .or_default() += 1;
        }
        Self {
            histogram,
            mean: us.iter().sum::<f64>() / us.len() as f64,
            p50: pick(0.5),
            p99: pick(0.99),
            max: us[us.len() - 1],
        }
    }
}
