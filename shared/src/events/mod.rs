//! The event log format: what happened in the world, one JSON object per line.
//!
//! A run's `events.jsonl` is the record researchers analyse and the replay viewer plays back.
//! The format is versioned by [`EVENT_FORMAT_VERSION`]; `docs/events.md` documents it. New kinds
//! and new optional fields may be added within a version; renaming or removing one bumps it.

use crate::{GameTime, TilePos};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod reader;

pub use reader::{Line, LogReader, MAX_LINE_BYTES};

/// Version of the event format, written in every run's `run_started` event.
pub const EVENT_FORMAT_VERSION: u32 = 1;

/// One line of the event log: when, and what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The world tick at which the event happened (0 = the first tick).
    pub tick: u64,
    /// Game time at that tick, in milliseconds since day 1 00:00.
    pub time: GameTime,
    #[serde(flatten)]
    pub event: Event,
}

/// What happened. Serialised with a `kind` field naming the variant in snake_case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// First event of every run: the inputs that, with the personas, determine the run.
    RunStarted {
        format: u32,
        seed: u64,
        map: String,
        start: GameTime,
        tick_ms: u64,
        agents: u32,
        brain: String,
    },
    /// An agent entered the world.
    AgentSpawned {
        agent: String,
        name: String,
        /// Content hash of the persona it was made from (provenance).
        persona_hash: String,
        tile: TilePos,
        home: String,
        /// The persona's age, traits and work, for viewers (absent in older logs).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        about: Option<About>,
    },
    /// An agent started doing something new.
    Activity {
        agent: String,
        description: String,
        emoji: String,
        /// Full location address ("world:sector:arena:object") where it happens.
        location: String,
    },
    /// An agent walked during a tick, from one tile to another.
    Move {
        agent: String,
        from: TilePos,
        to: TilePos,
    },
    /// An agent reached the place its activity is at.
    Arrive {
        agent: String,
        location: String,
        tile: TilePos,
    },
    /// The day moved into a new phase (night, morning, afternoon, evening).
    DayPhase { phase: String },
    /// A persona file changed and the agent now follows the new version.
    PersonaReloaded { agent: String, persona_hash: String },
    /// A persona file changed but the new version is invalid; the agent keeps the old one.
    PersonaRejected { agent: String, error: String },
    /// A player joined (or rejoined) the world. Players' actor ids start with `player:`.
    PlayerJoined {
        player: String,
        name: String,
        tile: TilePos,
    },
    /// A player's connection ended; its avatar leaves the world until the player returns.
    PlayerLeft { player: String },
    /// Someone said something aloud (the words as said, length-capped).
    Said {
        speaker: String,
        text: String,
        tile: TilePos,
    },
    /// An agent in earshot perceived what was said: its cognition reads these.
    Heard {
        agent: String,
        speaker: String,
        text: String,
    },
    /// An agent's memory is complete: written when it was perceived, heard or thought
    /// (`created`), and now embedded and rated, so retrieval can find it.
    Memory {
        agent: String,
        /// Its id in the agent's stream: 0, 1, 2, ... in the order written.
        memory: u32,
        /// `event` (perceived), `thought` (concluded; the persona's seeds too) or `chat` (heard).
        memory_kind: String,
        created: GameTime,
        description: String,
        /// 1 (mundane) to 10 (poignant).
        importance: u8,
        /// Ids of the memories a thought was drawn from.
        evidence: Vec<u32>,
        /// A chat memory of news told (a line worded from the speaker's own memory and held
        /// to it), which the agent may pass on; absent for all other memories.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        told: bool,
        /// A reflection (a thought drawn from `evidence` that is not a plan); absent for all
        /// other memories.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reflection: bool,
    },
    /// Agents (and perhaps a player) started talking.
    ConversationStarted {
        /// Its number in this run: 1, 2, 3, ...
        conversation: u64,
        /// Actor ids; the first started it.
        participants: Vec<String>,
        location: String,
    },
    /// A conversation ended; every line said in it (also logged as `said` when spoken).
    ConversationEnded {
        conversation: u64,
        participants: Vec<String>,
        lines: Vec<ConversationLine>,
        /// `finished` (the line cap), `walked away`, `player left`, `nothing to say`,
        /// `model failed: ...`.
        reason: String,
    },
    /// An agent planned its day (from now until it next wakes): every stretch of it, and
    /// what it chose to do with its free time (`intent`), if anything.
    PlanMade {
        agent: String,
        /// The game day the plan's morning falls on (1, 2, ...).
        day: u32,
        intent: Option<String>,
        /// What the agent noticed that made it re-plan (a reaction), if that is why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        because: Option<String>,
        items: Vec<PlanItem>,
    },
    /// An agent broke an hour of its plan into steps.
    StepsPlanned { agent: String, steps: Vec<PlanItem> },
    /// Model calls whose answers took effect in one game hour (`hour_start` to an hour
    /// later), and their prompt + output tokens, by purpose; logged when the hour is over.
    ModelUsage {
        hour_start: GameTime,
        calls: BTreeMap<String, u64>,
        tokens: BTreeMap<String, u64>,
    },
    /// Last event of a run.
    RunFinished { ticks: u64 },
}

/// Who an agent is, as a viewer shows it: from its persona.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct About {
    pub age: u8,
    pub traits: Vec<String>,
    /// What it does for a living ("baking bread at Willow Cafe"); empty if nothing.
    pub occupation: String,
}

/// One stretch of a plan: what, where and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanItem {
    pub start: GameTime,
    pub end: GameTime,
    pub activity: String,
    /// The address it happens at.
    pub location: String,
}

/// One line of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationLine {
    pub speaker: String,
    pub text: String,
}

impl Event {
    /// Every kind this version knows, as [`Event::kind`] names them: a reader tells a line
    /// of a newer log (a kind not here) from a broken line of a known kind.
    pub const KINDS: &[&str] = &[
        "run_started",
        "agent_spawned",
        "activity",
        "move",
        "arrive",
        "day_phase",
        "persona_reloaded",
        "persona_rejected",
        "player_joined",
        "player_left",
        "said",
        "heard",
        "memory",
        "conversation_started",
        "conversation_ended",
        "plan_made",
        "steps_planned",
        "model_usage",
        "run_finished",
    ];

    /// The `kind` field as written in the log.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "run_started",
            Event::AgentSpawned { .. } => "agent_spawned",
            Event::Activity { .. } => "activity",
            Event::Move { .. } => "move",
            Event::Arrive { .. } => "arrive",
            Event::DayPhase { .. } => "day_phase",
            Event::PersonaReloaded { .. } => "persona_reloaded",
            Event::PersonaRejected { .. } => "persona_rejected",
            Event::PlayerJoined { .. } => "player_joined",
            Event::PlayerLeft { .. } => "player_left",
            Event::Said { .. } => "said",
            Event::Heard { .. } => "heard",
            Event::Memory { .. } => "memory",
            Event::ConversationStarted { .. } => "conversation_started",
            Event::ConversationEnded { .. } => "conversation_ended",
            Event::PlanMade { .. } => "plan_made",
            Event::StepsPlanned { .. } => "steps_planned",
            Event::ModelUsage { .. } => "model_usage",
            Event::RunFinished { .. } => "run_finished",
        }
    }

    /// The agent the event is about, if it is about one.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Event::AgentSpawned { agent, .. }
            | Event::Activity { agent, .. }
            | Event::Move { agent, .. }
            | Event::Arrive { agent, .. }
            | Event::PersonaReloaded { agent, .. }
            | Event::PersonaRejected { agent, .. }
            | Event::Heard { agent, .. }
            | Event::Memory { agent, .. }
            | Event::PlanMade { agent, .. }
            | Event::StepsPlanned { agent, .. } => Some(agent),
            Event::RunStarted { .. }
            | Event::DayPhase { .. }
            | Event::RunFinished { .. }
            | Event::ModelUsage { .. }
            | Event::PlayerJoined { .. }
            | Event::PlayerLeft { .. }
            | Event::Said { .. }
            | Event::ConversationStarted { .. }
            | Event::ConversationEnded { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_is_one_flat_object_with_kind() {
        let rec = EventRecord {
            tick: 12,
            time: GameTime(120_000),
            event: Event::Move {
                agent: "ann".into(),
                from: TilePos::new(1, 2),
                to: TilePos::new(2, 2),
            },
        };
        let line = serde_json::to_string(&rec).unwrap();
        assert_eq!(
            line,
            r#"{"tick":12,"time":120000,"kind":"move","agent":"ann","from":[1,2],"to":[2,2]}"#
        );
        let back: EventRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, rec);
        assert_eq!(back.event.kind(), "move");
        assert_eq!(back.event.agent(), Some("ann"));
    }

    #[test]
    fn kind_matches_serialised_tag() {
        let events = [
            Event::DayPhase {
                phase: "night".into(),
            },
            Event::RunFinished { ticks: 3 },
            Event::PersonaRejected {
                agent: "a".into(),
                error: "e".into(),
            },
        ];
        for e in events {
            let v: serde_json::Value = serde_json::to_value(&e).unwrap();
            assert_eq!(v["kind"], e.kind());
            assert!(Event::KINDS.contains(&e.kind()));
        }
    }

    /// `KINDS` and docs/events.md's table of kinds name the same kinds.
    #[test]
    fn the_known_kinds_are_the_documented_ones() {
        let docs = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events.md"),
        )
        .unwrap();
        let table = docs
            .split("## Kinds")
            .nth(1)
            .unwrap()
            .split("\n## ")
            .next()
            .unwrap();
        let documented: Vec<&str> = (table.lines())
            .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
            .collect();
        assert_eq!(documented, Event::KINDS);
    }
}
