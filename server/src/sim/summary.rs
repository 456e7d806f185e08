use super::SimConfig;
use crate::agents::BrainKind;
use crate::app::Journal;
use crate::happenings::LogStats;
use crate::schedule::TickStats;
use agora_llm::BatchStats;
use agora_llm::worker::{Purpose, PurposeStats};
use agora_shared::GameTime;
use agora_shared::events::EVENT_FORMAT_VERSION;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A model file and its SHA-256: with the seed and templates, what a model-driven run's
/// events depend on.
#[derive(Clone, Debug, Serialize)]
pub struct ModelFile {
    pub file: PathBuf,
    pub sha256: String,
}

/// The database a run saved its world to (`--db`), and where it resumed, if it did.
#[derive(Clone, Debug, Serialize)]
pub struct DatabaseUse {
    pub file: PathBuf,
    /// The saved game time the run resumed from; `None`: it started a new world.
    pub resumed_at: Option<GameTime>,
}

/// `summary.json`: what a run was and what it produced.
#[derive(Clone, Debug, Serialize)]
pub struct SimSummary {
    /// The event log's format (docs/events.md).
    pub format: u32,
    pub agora_version: String,
    /// The build's commit, `-modified` when its sources differed from it ([`crate::COMMIT`]).
    pub commit: &'static str,
    pub map: String,
    /// SHA-256 of the map file: the run's events depend on it as on the seed.
    pub map_sha256: String,
    pub agents: usize,
    pub brain: String,
    /// Whether agents kept memory streams (`--memory`).
    pub memory: bool,
    pub seed: u64,
    /// Game time of the first tick, in milliseconds, as in the log.
    pub start: GameTime,
    /// Game milliseconds per tick.
    pub tick_ms: u64,
    pub game_hours: f64,
    pub ticks: u64,
    pub wall_seconds: f64,
    pub ticks_per_second: f64,
    /// Event counts by kind.
    pub events: BTreeMap<String, u64>,
    pub events_total: u64,
    pub events_bytes: u64,
    /// SHA-256 of `events.jsonl`: equal inputs give an equal hash (see the module docs).
    pub determinism_hash: String,
    /// Wall-clock cost of one tick.
    pub tick_us: TickStats,
    /// Persona id and content hash of every persona the run's agents were made from.
    pub personas: BTreeMap<String, String>,
    /// Prompt template file -> SHA-256 (empty when no brain used the language model).
    pub prompts: BTreeMap<String, String>,
    /// The language model's file and SHA-256, when one was loaded.
    pub model: Option<ModelFile>,
    /// Where model answers were journaled (`recorded`) or replayed from (`replayed`).
    pub journal: Option<BTreeMap<&'static str, PathBuf>>,
    /// Language-model calls by purpose (empty when no brain used a model).
    pub llm: BTreeMap<&'static str, PurposeStats>,
    /// Model tokens (in + out) per agent per game hour: the budget DESIGN.md sets at 2,500.
    pub llm_tokens_per_agent_hour: f64,
    /// How the embedded model batched its calls (absent for other backends and routine runs).
    pub llm_batching: Option<BatchingSummary>,
    /// The database the run saved to (`--db`).
    pub database: Option<DatabaseUse>,
}

/// Continuous batching in a run: how many sequences shared a forward pass, and what the
/// prefix cache saved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BatchingSummary {
    pub passes: u64,
    pub mean_sequences: f64,
    pub max_sequences: usize,
    /// Passes by sequences in them: `{"1": 812, "2": 140, ...}`.
    pub sequences_per_pass: BTreeMap<usize, u64>,
    pub decode_tokens_per_s: f64,
    pub decode_step_ms_p50: f64,
    pub decode_step_ms_p99: f64,
    /// Share of prompts that found a cached prefix, and of prompt tokens read from it.
    pub prefix_hit_rate: f64,
    pub prompt_tokens_reused: f64,
}

impl From<&BatchStats> for BatchingSummary {
    fn from(s: &BatchStats) -> Self {
        Self {
            passes: s.passes,
            mean_sequences: s.mean_sequences(),
            max_sequences: s.max_sequences,
            sequences_per_pass: (s.sequences_per_pass.iter().enumerate())
                .filter(|(_, count)| **count > 0)
                .map(|(n, count)| (n, *count))
                .collect(),
            decode_tokens_per_s: s.decode_tokens_per_s(),
            decode_step_ms_p50: s.decode_step_ms(50.0),
            decode_step_ms_p99: s.decode_step_ms(99.0),
            prefix_hit_rate: s.prefix_hit_rate(),
            prompt_tokens_reused: s.reused_prompt_tokens as f64 / s.prompt_tokens.max(1) as f64,
        }
    }
}

pub(super) struct SummaryInputs<'a> {
    pub config: &'a SimConfig,
    pub map: String,
    pub map_sha256: String,
    pub agents: usize,
    pub ticks: u64,
    pub wall: Duration,
    pub stats: LogStats,
    pub personas: Vec<(String, String)>,
    pub tick_times: Vec<Duration>,
    pub llm: BTreeMap<&'static str, PurposeStats>,
    pub batching: Option<BatchStats>,
    pub prompts: BTreeMap<String, String>,
    pub model_file: Option<(PathBuf, String)>,
    pub journal: Option<Journal>,
    /// When the run started (the saved clock when it resumed).
    pub start: GameTime,
    pub database: Option<DatabaseUse>,
}

impl SimSummary {
    pub(super) fn new(i: SummaryInputs<'_>) -> Self {
        let wall_seconds = i.wall.as_secs_f64();
        let game_hours = i.ticks as f64 * i.config.tick_ms as f64 / 3_600_000.0;
        // The language model's budget: embedding tokens (memory) are another model's.
        let llm_tokens: u64 = (i.llm.iter())
            .filter(|(purpose, _)| **purpose != Purpose::Memory.name())
            .map(|(_, p)| p.tokens_in + p.tokens_out)
            .sum();
        Self {
            format: EVENT_FORMAT_VERSION,
            agora_version: env!("CARGO_PKG_VERSION").into(),
            commit: crate::COMMIT,
            map: i.map,
            map_sha256: i.map_sha256,
            agents: i.agents,
            brain: i.config.brain.name().into(),
            memory: i.config.memory || i.config.brain == BrainKind::Llm,
            seed: i.config.seed,
            start: i.start,
            tick_ms: i.config.tick_ms,
            game_hours,
            ticks: i.ticks,
            wall_seconds,
            ticks_per_second: i.ticks as f64 / wall_seconds.max(1e-9),
            determinism_hash: i.stats.determinism_hash(),
            events: i.stats.by_kind,
            events_total: i.stats.events,
            events_bytes: i.stats.bytes,
            tick_us: TickStats::from_durations(&i.tick_times),
            personas: i.personas.into_iter().collect(),
            llm_tokens_per_agent_hour: llm_tokens as f64
                / (i.agents.max(1) as f64 * game_hours.max(1e-9)),
            llm: i.llm,
            llm_batching: i.batching.as_ref().map(BatchingSummary::from),
            prompts: i.prompts,
            model: i
                .model_file
                .map(|(file, sha256)| ModelFile { file, sha256 }),
            journal: i.journal.and_then(|j| match j {
                Journal::Record(path) => Some(BTreeMap::from([("recorded", path)])),
                Journal::Replay(path) => Some(BTreeMap::from([("replayed", path)])),
                Journal::Off => None,
            }),
            database: i.database,
        }
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, json + "\n")
    }
}
