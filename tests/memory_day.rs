//! A morning of the shipped town (25 agents, 07:00-09:00) with memory on (`sim --memory`), on the real MiniLM: every
//! agent's stream starts with its persona's memories, fills with what it perceives, and each
//! memory is embedded, rated and logged; two runs give the same log, byte for byte.

use agora_server::agents::BrainKind;
use agora_server::sim::{self, SimConfig, SimSummary};
use agora_shared::events::{Event, EventRecord};
use agora_shared::persona;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[path = "common/documented.rs"]
mod documented;

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets")
}

/// The morning's run: 25 agents with memory, 07:00-09:00.
fn config(out: &Path) -> SimConfig {
    SimConfig {
        map: assets().join("maps/maple_hollow.tmj"),
        personas: assets().join("personas"),
        agents: None,
        hours: 2.0,
        seed: 3,
        out: out.to_path_buf(),
        start: "07:00".parse().unwrap(),
        tick_ms: 10_000,
        brain: BrainKind::Routine,
        memory: true,
        model: None,
        prompts: assets().join("prompts"),
        journal: None,
        db: None,
        watch: false,
        progress: false,
    }
}

fn run(out: &Path) -> (SimSummary, Vec<EventRecord>) {
    let config = config(out);
    let summary = sim::run(&config).expect("the run works (needs scripts/fetch-models)");
    let events = std::fs::read_to_string(out.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is a valid event"))
        .collect();
    (summary, events)
}

#[test]
fn agents_remember_their_persona_and_what_they_see_reproducibly() {
    let dir = tempfile::tempdir().unwrap();
    let (summary, events) = run(&dir.path().join("a"));
    let (again, _) = run(&dir.path().join("b"));
    assert_eq!(summary.determinism_hash, again.determinism_hash);
    assert!(summary.memory);

    // Every agent's memories, by id, as the log tells them.
    let mut streams: BTreeMap<String, Vec<(u32, String, String, u8)>> = BTreeMap::new();
    for record in &events {
        if let Event::Memory {
            agent,
            memory,
            memory_kind,
            created,
            description,
            importance,
            evidence,
            ..
        } = &record.event
        {
            assert!(*created <= record.time, "logged before it was made");
            assert!((1..=10).contains(importance), "importance {importance}");
            assert!(evidence.is_empty(), "no thoughts with evidence yet");
            let stream = streams.entry(agent.clone()).or_default();
            stream.push((
                *memory,
                memory_kind.clone(),
                description.clone(),
                *importance,
            ));
        }
    }
    assert_eq!(streams.len(), 25, "every agent remembers");
    let mut watchers = 0;
    let folder = persona::load_folder(
        &assets().join("personas"),
        &agora_server::world::TownMap::load(&assets().join("maps/maple_hollow.tmj")).unwrap(),
    )
    .unwrap();
    for (agent, stream) in &streams {
        let ids: Vec<u32> = stream.iter().map(|m| m.0).collect();
        assert_eq!(
            ids,
            (0..ids.len() as u32).collect::<Vec<_>>(),
            "{agent}: ids in order"
        );
        let (persona, _) = folder
            .personas
            .iter()
            .find(|(p, _)| &p.id == agent)
            .unwrap();
        let seeds = &persona.memories;
        for (memory, seed) in stream.iter().zip(seeds) {
            assert_eq!((memory.1.as_str(), &memory.2), ("thought", seed), "{agent}");
        }
        let seen: Vec<&str> = (stream[seeds.len()..].iter())
            .filter(|m| m.1 == "event")
            .map(|m| m.2.as_str())
            .collect();
        watchers += usize::from(!seen.is_empty());
        assert!(
            seen.iter().all(|s| s.contains(" is ")),
            "{agent}: observations read 'X is doing Y': {seen:?}"
        );
    }
    // Most of the town crosses someone's path in a morning (20 of 25 on seed 3).
    assert!(watchers >= 15, "only {watchers} of 25 agents saw anyone");
    // The embedder was called, and its tokens are not counted against the language model.
    assert!(summary.llm["memory"].calls > 0);
    assert_eq!(summary.llm_tokens_per_agent_hour, 0.0);

    // Every key the run wrote is in docs/events.md.
    let docs = documented::Documented::load();
    let out = dir.path().join("a");
    let log = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    assert_eq!(docs.undocumented_in_log(&log), Default::default());
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(docs.undocumented_in_summary(&written), Vec::<String>::new());
    assert_eq!(written["personas"].as_object().unwrap().len(), 25);
}

/// A 3-agent run lists the 3 personas it used, not the folder's 25, and the map's hash.
#[test]
fn a_runs_summary_names_only_what_it_used() {
    let dir = tempfile::tempdir().unwrap();
    let config = SimConfig {
        agents: Some(3),
        hours: 0.1,
        seed: 1,
        memory: false,
        ..config(dir.path())
    };
    let summary = sim::run(&config).unwrap();
    assert_eq!(summary.personas.len(), 3, "{:?}", summary.personas);
    assert_eq!(summary.map_sha256.len(), 64);
    assert_eq!(summary.start.0, 7 * 3_600_000);
    assert!(!summary.commit.is_empty());
}
