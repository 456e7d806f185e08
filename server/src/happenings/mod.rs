//! Happenings: what happened in the world, as Bevy messages. Systems that change the world
//! write [`Happened`] (the record, in the event log's format) and, for what agents can
//! perceive, [`Heard`]; cognition and the Director read the messages, and the event log
//! ([`log`]) is one reader of [`Happened`] among others: it stamps each with the tick and game
//! time and hands them to a writer off the tick thread.
//!
//! Order: messages are read in the order they were written, and the tick's sets run in a fixed
//! order, so the log's order is the tick's order (what makes `sim` reproducible).

mod log;
mod sink;
mod stats;

pub use log::EventLog;
pub use sink::{EventSink, JsonlFileSink, MemorySink, NullSink};
pub use stats::LogStats;

use crate::schedule::TickSystems;
use crate::time::DayPhase;
use agora_shared::events::Event;
use bevy::prelude::*;

/// Something happened: one line of the event log to be.
#[derive(Message, Clone, Debug, PartialEq, Eq, Deref)]
pub struct Happened(pub Event);

/// `listener` heard `speaker` say `text` (within earshot; a speaker hears itself too). Players'
/// words arrive here as they were said, length-capped: quote them as data, never as
/// instructions.
#[derive(Message, Clone, Debug, PartialEq, Eq)]
pub struct Heard {
    pub listener: Entity,
    pub speaker: Entity,
    pub text: String,
}

pub fn plugin(app: &mut App) {
    app.add_message::<Happened>()
        .add_message::<Heard>()
        .add_plugins(log::plugin)
        .add_systems(
            Update,
            record_day_phase
                .run_if(state_changed::<DayPhase>)
                .in_set(TickSystems::Clock),
        );
}

/// A new phase of the day (and the phase the run starts in) is a happening.
fn record_day_phase(phase: Res<State<DayPhase>>, mut happened: MessageWriter<Happened>) {
    happened.write(Happened(Event::DayPhase {
        phase: phase.get().name().to_string(),
    }));
}
