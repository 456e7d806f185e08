//! Persona hot reload: edit a persona file while the server runs and the agent follows it.
//!
//! A watcher thread polls the persona folder (no disk I/O on the tick thread) and sends the
//! text of files whose content changed and then held still for one poll. A system applies
//! each one: a valid persona replaces the old one on every agent made from that file (fixed
//! traits at once, plans from the agent's next planning step); an invalid one is reported and
//! the agent keeps the old one.

use super::{AgentPersona, Roster};
use crate::happenings::Happened;
use crate::schedule::TickSystems;
use crate::world::{ActorId, TownMap};
use agora_shared::events::Event;
use agora_shared::persona::{self, Context};
use bevy::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Turns hot reload on: poll the roster's folder at this interval.
#[derive(Resource, Clone, Copy, Debug)]
pub struct WatchPersonas {
    pub interval: Duration,
}

impl Default for WatchPersonas {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(250),
        }
    }
}

/// A persona file whose content changed on disk.
#[derive(Debug)]
struct FileChanged {
    file: PathBuf,
    text: Result<String, String>,
}

#[derive(Resource)]
struct PersonaWatcher {
    changes: Mutex<Receiver<FileChanged>>,
}

pub fn plugin(app: &mut App) {
    app.add_systems(
        Startup,
        start_watcher.run_if(resource_exists::<WatchPersonas>),
    )
    .add_systems(
        Update,
        apply_persona_edits
            .run_if(resource_exists::<PersonaWatcher>)
            .in_set(TickSystems::Reload),
    );
}

fn start_watcher(mut commands: Commands, roster: Res<Roster>, watch: Res<WatchPersonas>) {
    let (sender, receiver) = channel();
    let dir = roster.dir.clone();
    let interval = watch.interval;
    let mut known = read_all(&dir);
    let spawned = std::thread::Builder::new()
        .name("persona-watcher".into())
        .spawn(move || {
            // A changed file is sent once it reads the same on two polls in a row: an editor
            // (or `fs::write`) truncates and then writes, and a poll in between would otherwise
            // report a half-written file as a broken persona.
            let mut settling: HashMap<PathBuf, Result<String, String>> = HashMap::new();
            loop {
                std::thread::sleep(interval);
                let now = read_all(&dir);
                settling.retain(|file, _| now.contains_key(file));
                for (file, text) in now {
                    if known.get(&file) == Some(&text) {
                        settling.remove(&file);
                    } else if settling.get(&file) == Some(&text) {
                        settling.remove(&file);
                        known.insert(file.clone(), text.clone());
                        if sender.send(FileChanged { file, text }).is_err() {
                            return; // The app is gone.
                        }
                    } else {
                        settling.insert(file, text);
                    }
                }
            }
        });
    match spawned {
        Ok(_) => {
            info!("watching {} for persona edits", roster.dir.display());
            commands.insert_resource(PersonaWatcher {
                changes: Mutex::new(receiver),
            });
        }
        Err(e) => error!("cannot start the persona watcher: {e}; hot reload is off"),
    }
}

fn read_all(dir: &Path) -> HashMap<PathBuf, Result<String, String>> {
    persona::persona_files(dir)
        .unwrap_or_default()
        .into_iter()
        .map(|f| {
            let text = persona::read_persona_file(&f).map_err(|e| e.to_string());
            (f, text)
        })
        .collect()
}

fn apply_persona_edits(
    watcher: Res<PersonaWatcher>,
    roster: Res<Roster>,
    map: Res<TownMap>,
    mut happened: MessageWriter<Happened>,
    mut agents: Query<(&ActorId, &mut AgentPersona)>,
) {
    let Ok(changes) = watcher.changes.lock() else {
        return;
    };
    let persona_ids = roster.persona_ids();
    for change in changes.try_iter() {
        let context = Context {
            places: &*map,
            persona_ids: &persona_ids,
        };
        let parsed = change.text.map_err(|e| vec![e]).and_then(|text| {
            persona::parse_persona(&change.file, &text, context)
                .map_err(|errors| errors.iter().map(ToString::to_string).collect())
        });
        let mut affected = agents
            .iter_mut()
            .filter(|(_, p)| p.file == change.file)
            .peekable();
        if affected.peek().is_none() {
            info!(
                "{} changed but no agent uses it; new personas join at the next start",
                change.file.display()
            );
            continue;
        }
        match parsed {
            Ok(persona) => {
                let hash = persona.content_hash();
                let persona = Arc::new(persona);
                for (actor, mut current) in affected {
                    if current.hash == hash {
                        continue;
                    }
                    info!(
                        "{}: persona reloaded from {}",
                        actor.0,
                        change.file.display()
                    );
                    current.persona = persona.clone();
                    current.hash = hash.clone();
                    happened.write(Happened(Event::PersonaReloaded {
                        agent: actor.0.clone(),
                        persona_hash: hash.clone(),
                    }));
                }
            }
            Err(errors) => {
                let error = errors.join("; ");
                warn!("persona edit rejected, agents keep the previous version: {error}");
                for (actor, _) in affected {
                    happened.write(Happened(Event::PersonaRejected {
                        agent: actor.0.clone(),
                        error: error.clone(),
                    }));
                }
            }
        }
    }
}
