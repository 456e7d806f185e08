//! The event log: at the end of each tick ([`TickSystems::Record`]) the tick's [`Happened`]
//! messages are stamped with the tick and game time and handed to a sink, which writes them
//! off the tick thread. The file sink serialises and writes on its own thread and hashes the
//! stream as it goes (the run's `determinism_hash`).

use super::{EventSink, Happened, LogStats, NullSink};
use crate::schedule::TickSystems;
use crate::time::GameClock;
use agora_shared::events::{Event, EventRecord};
use bevy::prelude::*;

/// This tick's events, and where they go at the end of the tick.
#[derive(Resource)]
pub struct EventLog {
    pending: Vec<EventRecord>,
    sink: Box<dyn EventSink>,
}

impl EventLog {
    pub fn new(sink: impl EventSink) -> Self {
        Self {
            pending: Vec::new(),
            sink: Box::new(sink),
        }
    }

    /// Records an event at the clock's current tick and time. Systems write [`Happened`]
    /// instead; this is for the runner, before the first tick and after the last.
    pub fn record(&mut self, clock: &GameClock, event: Event) {
        self.pending.push(EventRecord {
            tick: clock.tick,
            time: clock.now,
            event,
        });
    }

    /// Hands the pending events to the sink.
    pub fn flush(&mut self) {
        if !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.pending);
            self.sink.write(batch);
        }
    }

    /// Flushes, closes the sink and returns what it wrote.
    pub fn finish(&mut self) -> std::io::Result<LogStats> {
        self.flush();
        self.sink.finish()
    }
}

impl Default for EventLog {
    fn default() -> Self {
        Self::new(NullSink::default())
    }
}

pub fn plugin(app: &mut App) {
    app.init_resource::<EventLog>()
        .add_systems(Update, write_happenings.in_set(TickSystems::Record));
}

/// Every [`Happened`] of this tick, in order, to the sink.
fn write_happenings(
    clock: Res<GameClock>,
    mut log: ResMut<EventLog>,
    mut happened: MessageReader<Happened>,
) {
    for Happened(event) in happened.read() {
        log.record(&clock, event.clone());
    }
    log.flush();
}
