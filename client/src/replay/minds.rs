//! The inspector in a replay: what the log says each agent was, did and thought, answered as
//! of the time shown, in the same [`Inspection`] a server sends. Only the log speaks: an
//! agent of a routine run has no plan or memories to show, and none are made up.

use agora_shared::GameTime;
use agora_shared::events::{About, PlanItem};
use agora_shared::protocol::{Inspection, MemoryNote, NetId};
use std::collections::HashMap;

/// One thing the log says about an agent's mind.
#[derive(Clone, Debug)]
pub enum MindEvent {
    Activity {
        description: String,
        emoji: String,
        location: String,
    },
    Memory {
        note: MemoryNote,
        reflection: bool,
    },
    /// A day planned: its stretches (and any steps from before are void).
    Plan {
        intent: Option<String>,
        items: Vec<PlanItem>,
    },
    /// An hour broken into steps.
    Steps(Vec<PlanItem>),
}

#[derive(Debug, Default)]
struct Mind {
    name: String,
    about: About,
    /// In game-time order.
    events: Vec<(GameTime, MindEvent)>,
}

/// Every agent's mind as the log has it.
#[derive(Debug, Default)]
pub struct Minds(HashMap<NetId, Mind>);

impl Minds {
    pub fn spawned(&mut self, id: NetId, name: &str, about: About) {
        let mind = self.0.entry(id).or_default();
        mind.name = name.to_string();
        mind.about = about;
    }

    pub fn record(&mut self, id: NetId, time: GameTime, event: MindEvent) {
        self.0.entry(id).or_default().events.push((time, event));
    }

    /// Puts each agent's events in time order (stable: a tick's order is kept).
    pub fn sort(&mut self) {
        for mind in self.0.values_mut() {
            mind.events.sort_by_key(|(time, _)| *time);
        }
    }

    /// The agent `id` as of `now`, bounded like a server's answer; `None` if the log never
    /// spawned it.
    pub fn inspect(&self, id: NetId, now: GameTime) -> Option<Inspection> {
        let mind = self.0.get(&id)?;
        if mind.name.is_empty() {
            return None;
        }
        let mut inspection = Inspection {
            id,
            name: mind.name.clone(),
            age: mind.about.age,
            traits: mind.about.traits.clone(),
            occupation: mind.about.occupation.clone(),
            ..Inspection::default()
        };
        let until = mind.events.partition_point(|(time, _)| *time <= now);
        let past = &mind.events[..until];
        let mut steps: Vec<PlanItem> = Vec::new();
        for (_, event) in past {
            match event {
                MindEvent::Activity {
                    description,
                    emoji,
                    location,
                } => {
                    inspection.activity = description.clone();
                    inspection.emoji = emoji.clone();
                    inspection.location = location.clone();
                }
                MindEvent::Plan { intent, items } => {
                    inspection.intent = intent.clone();
                    inspection.plan = items.clone();
                    steps.clear();
                }
                MindEvent::Steps(more) => steps.extend(more.iter().cloned()),
                MindEvent::Memory { .. } => {}
            }
        }
        // The steps of the stretch under way that are not over, as a server tells them.
        if let Some(slot) = (inspection.plan.iter()).find(|s| s.start <= now && now < s.end) {
            inspection.steps = (steps.into_iter())
                .filter(|s| s.start >= slot.start && s.end <= slot.end && s.end > now)
                .collect();
        }
        for (_, event) in past.iter().rev() {
            if let MindEvent::Memory { note, reflection } = event
                && !inspection.add_older(note.clone(), *reflection)
            {
                break;
            }
        }
        inspection.bound();
        Some(inspection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(clock: &str) -> GameTime {
        clock.parse().unwrap()
    }

    fn item(start: &str, end: &str, activity: &str) -> PlanItem {
        PlanItem {
            start: at(start),
            end: at(end),
            activity: activity.into(),
            location: "town:cafe".into(),
        }
    }

    fn memory(id: u32, text: &str, reflection: bool) -> MindEvent {
        MindEvent::Memory {
            note: MemoryNote {
                id,
                text: text.into(),
                kind: "thought".into(),
                importance: 5,
                ..MemoryNote::default()
            },
            reflection,
        }
    }

    #[test]
    fn an_agent_as_of_the_time_shown() {
        let mut minds = Minds::default();
        let iris = NetId(1);
        minds.spawned(
            iris,
            "Iris Chen",
            About {
                age: 31,
                traits: vec!["curious".into()],
                occupation: "painting at Studio".into(),
            },
        );
        let doing = |what: &str| MindEvent::Activity {
            description: what.into(),
            emoji: String::new(),
            location: "town:cafe".into(),
        };
        minds.record(iris, at("07:00"), doing("waking up"));
        minds.record(iris, at("07:01"), memory(0, "I paint", false));
        minds.record(
            iris,
            at("07:05"),
            MindEvent::Plan {
                intent: Some("visit the party".into()),
                items: vec![
                    item("07:00", "09:00", "painting"),
                    item("09:00", "10:00", "tea"),
                ],
            },
        );
        minds.record(
            iris,
            at("07:06"),
            MindEvent::Steps(vec![
                item("07:00", "07:10", "mixing paint"),
                item("07:10", "07:20", "sketching"),
            ]),
        );
        minds.record(iris, at("07:08"), doing("painting"));
        minds.record(iris, at("07:09"), memory(1, "painting matters", true));
        minds.sort();

        let early = minds.inspect(iris, at("07:02")).unwrap();
        assert_eq!(early.name, "Iris Chen");
        assert_eq!(
            (early.age, early.occupation.as_str()),
            (31, "painting at Studio")
        );
        assert_eq!(early.activity, "waking up");
        assert!(early.plan.is_empty(), "not planned yet");
        assert_eq!(early.memories.len(), 1);

        let later = minds.inspect(iris, at("07:15")).unwrap();
        assert_eq!(later.activity, "painting");
        assert_eq!(later.intent.as_deref(), Some("visit the party"));
        assert_eq!(later.plan.len(), 2);
        let steps: Vec<&str> = later.steps.iter().map(|s| s.activity.as_str()).collect();
        assert_eq!(steps, ["sketching"], "the step that is over is gone");
        assert_eq!(later.memories[0].text, "I paint");
        assert_eq!(later.reflections[0].text, "painting matters");

        assert!(minds.inspect(NetId(9), at("07:15")).is_none());
    }
}
