//! The order of work inside one world tick.
//!
//! Every system of the server runs in `Update` inside one of these sets, which are chained,
//! so a tick always runs input -> clock -> reloads -> think -> act -> move -> record -> advance.
//! A fixed order is what makes simulation runs reproducible: two systems that both write to
//! the event log never race.

use bevy::prelude::*;

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
