//! The event log: every tick's events go to a sink that writes them off the tick thread.
//!
//! Systems call [`EventLog::record`]; at the end of the tick ([`TickSystems::Record`]) the
//! batch is handed to the sink. The file sink serialises and writes on its own thread and
//! hashes the stream as it goes (the run's `determinism_hash`).

mod sink;
mod stats;

pub use sink::{EventSink, JsonlFileSink, MemorySink, NullSink};
pub use stats::LogStats;

use crate::schedule::TickSystems;
use crate::world::GameClock;
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

    /// Records an event at the clock's current tick and time.
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
        .add_systems(Update, flush_events.in_set(TickSystems::Record));
}

fn flush_events(mut log: ResMut<EventLog>) {
    log.flush();
}
