//! One pass over a run's `events.jsonl`, keeping only what the report draws: a log of any
//! size is streamed, never held whole. What it keeps grows with agents, places and
//! conversations, not with ticks.

use crate::eval::NEWS;
use agora_shared::events::{Event, Line, LogReader};
use agora_shared::{GameTime, TilePos};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// How often a long read says how far it has got.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The run's inputs, as its first line gives them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunStart {
    pub format: u32,
    pub seed: u64,
    pub map: String,
    pub start: GameTime,
    pub tick_ms: u64,
    pub agents: u32,
    pub brain: String,
}

/// One thing an agent did, from its start until the next one's.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub start: GameTime,
    pub description: String,
    pub emoji: String,
    pub location: String,
}

/// An agent's day as the log tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentDay {
    pub id: String,
    pub name: String,
    pub persona_hash: String,
    /// The address of the room its bed is in.
    pub home: String,
    pub spawned: GameTime,
    pub segments: Vec<Segment>,
    /// Where it stands now, and since when (for the heatmap).
    tile: TilePos,
    since: GameTime,
}

/// Model calls whose answers took effect in one game hour, by purpose (`model_usage`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HourUsage {
    pub hour_start: GameTime,
    /// Purpose -> prompt + output tokens.
    pub tokens: BTreeMap<String, u64>,
}

/// Everything the report needs from the log.
#[derive(Clone, Debug, Default)]
pub struct RunLog {
    pub started: Option<RunStart>,
    /// Game time the log covers up to: the end of the last tick for a finished run, the last
    /// line's time for a killed one.
    pub end: GameTime,
    pub ticks: u64,
    pub finished: bool,
    /// Agents in the order they entered the world (players are not agents).
    pub agents: Vec<AgentDay>,
    /// Agent-milliseconds spent on each tile.
    pub heat: BTreeMap<TilePos, u64>,
    pub conversations: u64,
    /// Lines exchanged by each pair of actors (ids in order) in conversations they shared.
    pub pair_lines: BTreeMap<(String, String), u64>,
    /// Per news item of the diffusion check ([`NEWS`]), when each agent first held a memory
    /// carrying it.
    pub news_held: BTreeMap<&'static str, BTreeMap<String, GameTime>>,
    /// Players online, at each change.
    pub players_online: Vec<(GameTime, u32)>,
    pub model_usage: Vec<HourUsage>,
    /// Event kinds this build does not know (a newer log), and how often each came.
    pub unknown_kinds: BTreeMap<String, u64>,
    /// Lines that were not events at all, by line number (the first few).
    pub malformed: Vec<usize>,
    /// The last line, cut short (a killed run), by its number.
    pub truncated_line: Option<usize>,
    pub lines: usize,
    pub bytes: u64,
}

impl RunLog {
    /// Agent-hours the log covers: each agent from its spawn to the end.
    pub fn agent_hours(&self) -> f64 {
        let ms: u64 = (self.agents.iter())
            .map(|a| self.end.0.saturating_sub(a.spawned.0))
            .sum();
        ms as f64 / 3_600_000.0
    }

    pub fn game_hours(&self) -> f64 {
        let start = self.started.as_ref().map_or(0, |s| s.start.0);
        self.end.0.saturating_sub(start) as f64 / 3_600_000.0
    }

    /// The agent with `id`, by its position in [`RunLog::agents`].
    pub fn agent_index(&self) -> BTreeMap<&str, usize> {
        (self.agents.iter().enumerate())
            .map(|(i, a)| (a.id.as_str(), i))
            .collect()
    }
}

/// Reads `path`; `progress` is told (bytes read, bytes in all) about once a second.
pub fn read(path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<RunLog, String> {
    let mut reader = LogReader::open(path)?;
    let mut log = RunLog::default();
    let mut said = Instant::now();
    let mut agent_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut online: BTreeSet<String> = BTreeSet::new();
    while let Some(line) = reader.next_line()? {
        log.lines = reader.lines;
        log.bytes = reader.bytes;
        if said.elapsed() >= PROGRESS_EVERY {
            said = Instant::now();
            progress(reader.bytes, reader.total);
        }
        let record = match line {
            Line::Event(record) => record,
            Line::Cut => {
                log.truncated_line = Some(log.lines);
                break;
            }
            Line::UnknownKind(kind) => {
                *log.unknown_kinds.entry(kind).or_default() += 1;
                continue;
            }
            Line::Malformed => {
                if log.malformed.len() < 10 {
                    log.malformed.push(log.lines);
                }
                continue;
            }
        };
        log.end = log.end.max(record.time);
        let time = record.time;
        match record.event {
            Event::RunStarted {
                format,
                seed,
                map,
                start,
                tick_ms,
                agents,
                brain,
            } => {
                log.started = Some(RunStart {
                    format,
                    seed,
                    map,
                    start,
                    tick_ms,
                    agents,
                    brain,
                });
            }
            Event::AgentSpawned {
                agent,
                name,
                persona_hash,
                tile,
                home,
                ..
            } => {
                agent_index.insert(agent.clone(), log.agents.len());
                log.agents.push(AgentDay {
                    id: agent,
                    name,
                    persona_hash,
                    home,
                    spawned: time,
                    segments: vec![],
                    tile,
                    since: time,
                });
            }
            Event::Activity {
                agent,
                description,
                emoji,
                location,
            } => {
                if let Some(&i) = agent_index.get(&agent) {
                    log.agents[i].segments.push(Segment {
                        start: time,
                        description,
                        emoji,
                        location,
                    });
                }
            }
            Event::Move { agent, to, .. } => {
                if let Some(&i) = agent_index.get(&agent) {
                    let day = &mut log.agents[i];
                    *log.heat.entry(day.tile).or_default() += time.0.saturating_sub(day.since.0);
                    day.tile = to;
                    day.since = time;
                }
            }
            Event::PlayerJoined { player, .. } => {
                online.insert(player);
                log.players_online.push((time, online.len() as u32));
            }
            Event::PlayerLeft { player } => {
                online.remove(&player);
                log.players_online.push((time, online.len() as u32));
            }
            Event::Memory {
                agent, description, ..
            } => {
                for item in NEWS.iter().filter(|item| item.carried_by(&description)) {
                    (log.news_held.entry(item.name).or_default())
                        .entry(agent.clone())
                        .or_insert(time);
                }
            }
            Event::ConversationStarted { .. } => log.conversations += 1,
            Event::ConversationEnded {
                participants,
                lines,
                ..
            } => {
                let mut pairs = BTreeSet::new();
                for (i, a) in participants.iter().enumerate() {
                    for b in &participants[i + 1..] {
                        pairs.insert(if a <= b { (a, b) } else { (b, a) });
                    }
                }
                for (a, b) in pairs {
                    *(log.pair_lines).entry((a.clone(), b.clone())).or_default() +=
                        lines.len() as u64;
                }
            }
            Event::ModelUsage {
                hour_start, tokens, ..
            } => log.model_usage.push(HourUsage { hour_start, tokens }),
            Event::RunFinished { ticks } => {
                log.ticks = ticks;
                log.finished = true;
                if let Some(s) = &log.started {
                    log.end = log.end.max(GameTime(s.start.0 + ticks * s.tick_ms));
                }
            }
            _ => {}
        }
    }
    progress(reader.bytes, reader.total);
    // The time since each agent's last step counts where it stands.
    let end = log.end;
    for day in &mut log.agents {
        *log.heat.entry(day.tile).or_default() += end.0.saturating_sub(day.since.0);
        day.since = end;
    }
    Ok(log)
}
