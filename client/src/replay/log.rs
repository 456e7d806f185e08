//! A run's `events.jsonl` read into what playback needs: the updates the town is drawn from,
//! in game-time order, and what each agent was thinking, for the inspector.

use super::Replay;
use super::minds::MindEvent;
use agora_shared::TilePos;
use agora_shared::events::{Event, Line, LogReader};
use agora_shared::protocol::{EntityKind, MemoryNote, NetId, ServerMessage};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// Reads a run's log; lines that are not events are skipped (and counted on stderr).
pub fn load(dir: &Path) -> Result<Replay, String> {
    let path = dir.join("events.jsonl");
    let mut reader =
        LogReader::open(&path).map_err(|e| format!("{e} (a run's folder holds events.jsonl)"))?;
    let mut ids: HashMap<String, NetId> = HashMap::new();
    let mut id_of = |actor: &str| {
        let next = NetId(ids.len() as u32 + 1);
        *ids.entry(actor.to_string()).or_insert(next)
    };
    let mut replay = Replay::default();
    let mut online: BTreeSet<String> = BTreeSet::new();
    let mut skipped = 0usize;
    while let Some(line) = reader.next_line()? {
        let Line::Event(record) = line else {
            skipped += 1;
            continue;
        };
        let time = record.time;
        replay.end = replay.end.max(time);
        let message = match record.event {
            Event::RunStarted { map, start, .. } => {
                replay.world = map;
                replay.start = start;
                continue;
            }
            Event::AgentSpawned {
                agent,
                name,
                tile,
                about,
                ..
            } => {
                let id = id_of(&agent);
                replay.minds.spawned(id, &name, about.unwrap_or_default());
                spawned(id, EntityKind::Agent, name, tile)
            }
            Event::PlayerJoined { player, name, tile } => {
                online.insert(player.clone());
                let players = online.len() as u32;
                replay
                    .updates
                    .push((time, ServerMessage::Online { players }));
                spawned(id_of(&player), EntityKind::Player, name, tile)
            }
            Event::PlayerLeft { player } => {
                online.remove(&player);
                let players = online.len() as u32;
                replay
                    .updates
                    .push((time, ServerMessage::Online { players }));
                ServerMessage::Despawned { id: id_of(&player) }
            }
            Event::Move { agent, to, .. } => ServerMessage::Positions {
                time,
                moved: vec![(id_of(&agent), to)],
            },
            Event::Activity {
                agent,
                description,
                emoji,
                location,
            } => {
                let id = id_of(&agent);
                let doing = MindEvent::Activity {
                    description: description.clone(),
                    emoji: emoji.clone(),
                    location,
                };
                replay.minds.record(id, time, doing);
                ServerMessage::Activity {
                    id,
                    activity: description,
                    emoji,
                }
            }
            Event::Said { speaker, text, .. } => ServerMessage::Said {
                id: id_of(&speaker),
                text,
            },
            Event::Memory {
                agent,
                memory,
                memory_kind,
                created,
                description,
                importance,
                reflection,
                ..
            } => {
                let note = MemoryNote {
                    id: memory,
                    created,
                    kind: memory_kind,
                    importance,
                    text: description,
                };
                let event = MindEvent::Memory { note, reflection };
                replay.minds.record(id_of(&agent), time, event);
                continue;
            }
            Event::PlanMade {
                agent,
                intent,
                items,
                ..
            } => {
                let event = MindEvent::Plan { intent, items };
                replay.minds.record(id_of(&agent), time, event);
                continue;
            }
            Event::StepsPlanned { agent, steps } => {
                replay
                    .minds
                    .record(id_of(&agent), time, MindEvent::Steps(steps));
                continue;
            }
            _ => continue,
        };
        replay.updates.push((time, message));
    }
    if reader.lines == 0 {
        return Err(format!("{} is empty: no run to replay", path.display()));
    }
    if skipped > 0 {
        eprintln!(
            "agora-client: {skipped} of {} lines of {} are not events; skipped",
            reader.lines,
            path.display()
        );
    }
    if replay.updates.is_empty() {
        return Err(format!("{} has no agents to show", path.display()));
    }
    // A log is in time order; a stable sort keeps a tick's order if one was not.
    replay.updates.sort_by_key(|(time, _)| *time);
    replay.minds.sort();
    replay.now = replay.start.0 as f64;
    Ok(replay)
}

fn spawned(id: NetId, kind: EntityKind, name: String, tile: TilePos) -> ServerMessage {
    ServerMessage::Spawned {
        id,
        kind,
        name,
        tile,
        activity: String::new(),
        emoji: String::new(),
        team: None,
    }
}
