//! Persona hot reload under a running app: edits apply, broken edits are refused.

mod common;

use agora_server::actors::Activity;
use agora_server::agents::hot_reload::WatchPersonas;
use agora_server::agents::{AgentPersona, Roster};
use agora_server::happenings::{EventLog, MemorySink};
use agora_server::time::GameClock;
use agora_server::world::{ActorId, TownMap};
use agora_server::{ServerApp, WorldSetup};
use agora_shared::events::Event;
use agora_shared::persona;
use bevy::prelude::*;
use std::time::{Duration, Instant};

fn ann(app: &mut App) -> (AgentPersona, Option<Activity>) {
    let world = app.world_mut();
    let mut query = world.query::<(&ActorId, &AgentPersona, Option<&Activity>)>();
    query
        .iter(world)
        .find(|(id, _, _)| id.0 == "ann")
        .map(|(_, p, a)| (p.clone(), a.cloned()))
        .expect("ann exists")
}

/// Runs ticks until `done` holds, for at most 10 s of wall time (the watcher polls every 20 ms).
fn update_until(app: &mut App, mut done: impl FnMut(&mut App) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(app) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the edit to apply"
        );
        std::thread::sleep(Duration::from_millis(5));
        app.update();
    }
}

#[test]
fn editing_a_persona_file_updates_the_running_agent() {
    let dir = common::two_personas();
    let map = TownMap::load(&common::shipped_map()).unwrap();
    let folder = persona::load_folder(dir.path(), &map).unwrap();
    assert!(folder.errors.is_empty(), "{:?}", folder.errors);
    let sink = MemorySink::default();
    let mut app = ServerApp::new(WorldSetup {
        map,
        roster: Roster::new(dir.path().to_path_buf(), folder.personas, 2),
        // 07:00, one game minute per tick: Ann is at breakfast, work starts at 08:00.
        clock: GameClock::new("07:00".parse().unwrap(), 60_000),
        seed: 3,
        log: EventLog::new(sink.clone()),
    })
    .watch_personas(WatchPersonas {
        interval: Duration::from_millis(20),
    })
    .build();
    app.update();
    let (before, _) = ann(&mut app);
    assert_eq!(before.persona.traits, ["kind", "curious"]);

    // A valid edit: fixed traits change at once, the work activity from the next plan step.
    let file = dir.path().join("ann.toml");
    let edited = common::ANN
        .replace("[\"kind\", \"curious\"]", "[\"brave\"]")
        .replace("activity = \"cooking\"", "activity = \"baking bread\"");
    std::fs::write(&file, &edited).unwrap();
    update_until(&mut app, |app| ann(app).0.persona.traits == ["brave"]);
    let (after, activity) = ann(&mut app);
    assert_ne!(after.hash, before.hash);
    assert_ne!(
        activity.unwrap().description,
        "baking bread",
        "plans change only at the next step"
    );
    assert!(sink.snapshot().iter().any(|r| r.event
        == Event::PersonaReloaded {
            agent: "ann".into(),
            persona_hash: after.hash.clone(),
        }));
    update_until(&mut app, |app| {
        ann(app).1.is_some_and(|a| a.description == "baking bread")
    });

    // A broken edit: reported, and the agent keeps the persona it had.
    std::fs::write(
        &file,
        edited.replace("wake = \"06:00\"", "wake = \"27:00\""),
    )
    .unwrap();
    update_until(&mut app, |_| {
        sink.snapshot()
            .iter()
            .any(|r| matches!(&r.event, Event::PersonaRejected { agent, .. } if agent == "ann"))
    });
    let rejected = sink
        .snapshot()
        .into_iter()
        .find_map(|r| match r.event {
            Event::PersonaRejected { error, .. } => Some(error),
            _ => None,
        })
        .unwrap();
    assert!(
        rejected.contains("ann.toml:") && rejected.contains("field `wake`"),
        "{rejected}"
    );
    let (kept, _) = ann(&mut app);
    assert_eq!(kept.hash, after.hash);
    assert_eq!(kept.persona.traits, ["brave"]);
}
