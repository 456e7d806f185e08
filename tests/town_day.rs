//! A whole game day of the shipped town, 25 agents on the routine brain: everyone wakes,
//! leaves home, visits at least two places, comes home and goes to bed there, and runs are
//! reproducible. (Night owls go to bed after midnight: in a day from 00:00 their bedtime at home
//! falls early on day 1, before their outings.)

use agora_server::agents::BrainKind;
use agora_server::sim::{self, SimConfig, SimSummary};
use agora_shared::events::{Event, EventRecord};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets")
}

fn run_day(seed: u64, out: &Path) -> (SimSummary, Vec<EventRecord>) {
    let config = SimConfig {
        map: assets().join("maps/maple_hollow.tmj"),
        personas: assets().join("personas"),
        agents: Some(25),
        hours: 24.0,
        seed,
        out: out.to_path_buf(),
        start: "00:00".parse().unwrap(),
        tick_ms: 10_000,
        brain: BrainKind::Routine,
        memory: false,
        model: None,
        prompts: assets().join("prompts"),
        journal: None,
        db: None,
        watch: false,
        progress: false,
    };
    let summary = sim::run(&config).expect("the day runs");
    let events = std::fs::read_to_string(out.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is a valid event"))
        .collect();
    (summary, events)
}

/// What one agent did, read back from the event log alone.
#[derive(Default, Debug)]
struct Day<'a> {
    home_sector: &'a str,
    woke: bool,
    places_away: BTreeSet<&'a str>,
    /// An away arrival happened before this point in the agent's events.
    been_out: bool,
    /// The current activity is "sleeping" at home, at this location (the bed).
    sleeping_at_home: Option<&'a str>,
    /// Went to bed at home during the run (the placement at tick 0 does not count).
    slept_at_home: bool,
    /// Came home after being out.
    came_home: bool,
}

fn sector_of(location: &str) -> &str {
    location.split(':').nth(1).unwrap_or("")
}

fn read_days(events: &[EventRecord]) -> BTreeMap<&str, Day<'_>> {
    let mut days: BTreeMap<&str, Day> = BTreeMap::new();
    for record in events {
        match &record.event {
            Event::AgentSpawned { agent, home, .. } => {
                days.entry(agent).or_default().home_sector = sector_of(home);
            }
            Event::Activity {
                agent,
                description,
                location,
                ..
            } => {
                let day = days.get_mut(agent.as_str()).expect("spawned first");
                day.woke |= description == "waking up";
                let at_home = sector_of(location) == day.home_sector;
                day.sleeping_at_home = (description == "sleeping" && at_home).then_some(location);
            }
            Event::Arrive {
                agent, location, ..
            } => {
                let day = days.get_mut(agent.as_str()).expect("spawned first");
                let sector = sector_of(location);
                if sector != day.home_sector {
                    day.places_away.insert(sector);
                    day.been_out = true;
                } else {
                    day.came_home |= day.been_out;
                    day.slept_at_home |=
                        record.tick > 0 && day.sleeping_at_home == Some(location.as_str());
                }
            }
            _ => {}
        }
    }
    days
}

#[test]
fn a_town_day_is_lived_and_reproducible() {
    let runs = tempfile::tempdir().unwrap();
    let (first, events) = run_day(7, &runs.path().join("a"));
    let (again, _) = run_day(7, &runs.path().join("b"));
    let (other, _) = run_day(8, &runs.path().join("c"));

    assert_eq!(first.agents, 25);
    assert_eq!(first.ticks, 8_640);
    assert_eq!(
        first.determinism_hash, again.determinism_hash,
        "same seed, same events"
    );
    assert_ne!(
        first.determinism_hash, other.determinism_hash,
        "another seed, other events"
    );
    assert_eq!(
        std::fs::read(runs.path().join("a/events.jsonl")).unwrap(),
        std::fs::read(runs.path().join("b/events.jsonl")).unwrap()
    );
    for kind in ["move", "arrive", "activity", "agent_spawned", "day_phase"] {
        assert!(
            first.events.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} events"
        );
    }
    assert_eq!(first.events_total as usize, events.len());

    let days = read_days(&events);
    assert_eq!(days.len(), 25);
    for (agent, day) in &days {
        assert!(day.woke, "{agent} never woke: {day:?}");
        assert!(
            day.places_away.len() >= 2,
            "{agent} visited fewer than two places: {day:?}"
        );
        assert!(day.came_home, "{agent} never came home: {day:?}");
        assert!(
            day.slept_at_home,
            "{agent} did not go to bed at home: {day:?}"
        );
    }
}
