//! One way to build the server's app, for `sim`, `serve`, the tests and the benches:
//! [`ServerApp::new`] with what the world starts from, then the optional parts (a brain for new
//! agents, persona hot reload, model workers, the network, persistence), then
//! [`ServerApp::build`]. The builder puts each part's resources in place before the plugins
//! that read them at build time, and the world's plugins read the optional resources only
//! when they run (at startup or per tick), so the parts can be given in any order.

use crate::actors::AwayPlayers;
use crate::agents::hot_reload::WatchPersonas;
use crate::agents::{BrainKind, Roster};
use crate::cognition::{
    DialogueSettings, DialogueSetup, MemorySetup, ModelCalls, ModelTiming, ModelWorkers,
    PlanningSettings, Prompts, ReflectionSettings, RestoredPlaces, RestoredPlans, RestoredStreams,
    memory_workers,
};
use crate::happenings::EventLog;
use crate::net::replication::ViewRange;
use crate::persist::Persistence;
use crate::time::GameClock;
use crate::world::{MapError, TownMap, WorldSeed};
use agora_llm::backends::embedded::{EmbeddedModel, EmbeddedOptions};
use agora_llm::backends::minilm::{self, Embedder};
use agora_llm::journal::{Recorder, Replayer};
use agora_llm::{LanguageModel, TextEmbedder, locate};
use agora_net::keys::ServerKey;
use agora_shared::persona::{self, PersonaError};
use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the town's files could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TownError {
    #[error(transparent)]
    Map(#[from] MapError),
    #[error("{} persona error(s):\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Personas(Vec<PersonaError>),
    #[error("no persona files in {0}")]
    NoPersonas(PathBuf),
}

/// The map and the roster of agents made from every persona in `personas` (reused round-robin
/// beyond their number), refusing any invalid persona file. `sim`, `serve` and the tests all
/// start here.
pub fn load_town(
    map: &Path,
    personas: &Path,
    agents: Option<usize>,
) -> Result<(TownMap, Roster), TownError> {
    let map = TownMap::load(map)?;
    let folder = persona::load_folder(personas, &map).map_err(|e| TownError::Personas(vec![e]))?;
    if !folder.errors.is_empty() {
        return Err(TownError::Personas(folder.errors));
    }
    if folder.personas.is_empty() {
        return Err(TownError::NoPersonas(personas.to_path_buf()));
    }
    for warning in &folder.warnings {
        warn!("{warning}");
    }
    let agents = agents.unwrap_or(folder.personas.len());
    Ok((
        map,
        Roster::new(personas.to_path_buf(), folder.personas, agents),
    ))
}

/// What a world starts from.
pub struct WorldSetup {
    pub map: TownMap,
    pub roster: Roster,
    pub clock: GameClock,
    pub seed: u64,
    pub log: EventLog,
}

/// The models agents think with, loaded: what `--memory` and `--brain llm` need.
pub struct Minds {
    pub workers: ModelWorkers,
    pub memory: MemorySetup,
    /// Conversations, with `--brain llm`.
    pub dialogue: Option<DialogueSetup>,
    /// The language model's file and its SHA-256 (provenance), when one was loaded.
    pub model_file: Option<(PathBuf, String)>,
}

/// Where model answers come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Journal {
    /// From the models.
    #[default]
    Off,
    /// From the models, and every call and answer written to this file.
    Record(PathBuf),
    /// From this journal alone; no model is loaded.
    Replay(PathBuf),
}

/// What agents think with, as a run's options say.
#[derive(Clone, Debug)]
pub struct MindOptions {
    pub brain: BrainKind,
    /// Memory streams without the language model (`--brain llm` implies them).
    pub memory: bool,
    /// The GGUF file for `--brain llm`; `None`: `$AGORA_MODEL`, else the model cache.
    pub model: Option<PathBuf>,
    /// The prompt templates' folder.
    pub prompts: PathBuf,
    pub journal: Journal,
    /// Model calls waiting, at most.
    pub queue: usize,
}

/// Loads what the options ask for: MiniLM for memory, and for `--brain llm` the language model
/// and the prompt templates; or, replaying, only the journal. `None` when nothing asks for a
/// model. Slow (models load): before the world runs.
pub fn load_minds(options: &MindOptions) -> Result<Option<Minds>, String> {
    let talks = options.brain == BrainKind::Llm;
    if !talks && !options.memory {
        return Ok(None);
    }
    let dialogue = talks
        .then(|| Prompts::load(&options.prompts).map_err(|e| e.to_string()))
        .transpose()?
        .map(|prompts| DialogueSetup {
            prompts: Arc::new(prompts),
            settings: DialogueSettings::default(),
            reflection: ReflectionSettings::default(),
            planning: PlanningSettings::default(),
        });
    let mut model_file = None;
    let (language_model, embedder, dimensions): (
        Option<Arc<dyn LanguageModel>>,
        Arc<dyn TextEmbedder>,
        usize,
    ) = if let Journal::Replay(path) = &options.journal {
        let journal = Replayer::open(path).map_err(|e| e.to_string())?;
        let dimensions = journal.dimensions().ok_or_else(|| {
            format!(
                "journal {} holds no embeddings: not a run with memory",
                path.display()
            )
        })?;
        let model = talks.then(|| journal.clone() as Arc<dyn LanguageModel>);
        (model, journal, dimensions)
    } else {
        let model: Option<Arc<dyn LanguageModel>> = if talks {
            let path =
                locate::language_model(options.model.as_deref()).map_err(|e| e.to_string())?;
            let loaded = EmbeddedOptions::from_env()
                .and_then(|options| EmbeddedModel::load(&path, options))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let sha256 = file_sha256(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            model_file = Some((path, sha256));
            Some(Arc::new(loaded))
        } else {
            None
        };
        let minilm =
            Embedder::load(&minilm::default_folder()).map_err(|e| format!("memory: {e}"))?;
        let dimensions = minilm.dimensions;
        let embedder: Arc<dyn TextEmbedder> = Arc::new(minilm);
        match &options.journal {
            Journal::Record(path) => {
                let recorder =
                    Recorder::create(path, model, Some(embedder)).map_err(|e| e.to_string())?;
                let model = talks.then(|| recorder.clone() as Arc<dyn LanguageModel>);
                (model, recorder, dimensions)
            }
            _ => (model, embedder, dimensions),
        }
    };
    let (workers, memory) = memory_workers(language_model, embedder, dimensions, options.queue)
        .map_err(|e| format!("memory: {e}"))?;
    Ok(Some(Minds {
        workers,
        memory,
        dialogue,
        model_file,
    }))
}

/// SHA-256 of a file, hex, read in pieces.
pub(crate) fn file_sha256(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Where and how players connect.
pub struct NetSetup {
    pub bind: SocketAddr,
    /// The address written in tokens (default: the bound address).
    pub public: Option<SocketAddr>,
    pub key: ServerKey,
    pub view: ViewRange,
    /// Players one address (an IPv6 /64) may have connected at once.
    pub players_per_address: usize,
}

/// Builds the server's app. Each `app.update()` of the result is one tick.
pub struct ServerApp {
    app: App,
}

impl ServerApp {
    /// The whole world (time, happenings and the event log, the map, actors, agents, the model
    /// queue), headless.
    pub fn new(setup: WorldSetup) -> Self {
        let mut app = App::new();
        app.add_plugins((MinimalPlugins, StatesPlugin))
            .insert_resource(setup.map)
            .insert_resource(setup.roster)
            .insert_resource(setup.clock)
            .insert_resource(WorldSeed(setup.seed))
            .insert_resource(setup.log)
            .add_plugins(crate::plugin);
        Self { app }
    }

    /// The brain agents are spawned with (default: routine).
    pub fn brain(mut self, brain: BrainKind) -> Self {
        self.app.insert_resource(brain);
        self
    }

    /// Reloads persona files when they are edited.
    pub fn watch_personas(mut self, watch: WatchPersonas) -> Self {
        self.app.insert_resource(watch);
        self
    }

    /// Model calls go to these workers, and their answers take effect as `timing` says.
    pub fn model_workers(mut self, workers: ModelWorkers, timing: ModelTiming) -> Self {
        self.app
            .insert_resource(workers)
            .insert_resource(ModelCalls::new(timing));
        self
    }

    /// Every agent keeps a memory stream: perceives, hears, remembers; an agent whose id is in
    /// `restored` resumes that stream. Needs model workers with an embedder.
    pub fn memory(mut self, setup: MemorySetup, restored: RestoredStreams) -> Self {
        self.app.insert_resource(setup).insert_resource(restored);
        self
    }

    /// Agents whose id is in `plans` follow that plan for the rest of its day instead of
    /// planning again (a restarted world).
    pub fn plans(mut self, plans: RestoredPlans) -> Self {
        self.app.insert_resource(plans);
        self
    }

    /// Agents whose id is in `places` know those places as well as their persona's (a
    /// restarted world).
    pub fn places(mut self, places: RestoredPlaces) -> Self {
        self.app.insert_resource(places);
        self
    }

    /// Agents talk (with each other and with players). Needs memory and model workers with a
    /// language model.
    pub fn dialogue(mut self, setup: DialogueSetup) -> Self {
        self.app.insert_resource(setup);
        self
    }

    /// Everything `minds` holds: workers answering as `timing` says, memory (resuming
    /// `restored`), dialogue if loaded.
    pub fn minds(self, minds: Minds, timing: ModelTiming, restored: RestoredStreams) -> Self {
        let app = self
            .model_workers(minds.workers, timing)
            .memory(minds.memory, restored);
        match minds.dialogue {
            Some(dialogue) => app.dialogue(dialogue),
            None => app,
        }
    }

    /// Players connect over UDP (netcode, secure). Returns the bound address too.
    pub fn net(mut self, net: NetSetup) -> std::io::Result<(Self, SocketAddr)> {
        self.app
            .insert_resource(net.view)
            .add_plugins(crate::net::plugin);
        let bound = crate::net::server::listen(
            &mut self.app,
            net.bind,
            net.public,
            &net.key,
            net.players_per_address,
        )?;
        Ok((self, bound))
    }

    /// Players and the clock are saved through `persistence`; `away` are the players it
    /// remembered, who come back where they stood.
    pub fn persistence(mut self, persistence: Persistence, away: AwayPlayers) -> Self {
        self.app
            .insert_resource(persistence)
            .insert_resource(away)
            .add_plugins(crate::persist::plugin);
        self
    }

    /// The app, ready to tick: plugins finished, every schedule on one thread.
    pub fn build(mut self) -> App {
        self.app.finish();
        self.app.cleanup();
        run_schedules_on_one_thread(&mut self.app);
        self.app
    }
}

/// Runs every schedule with the single-threaded executor.
///
/// The world's systems are chained (see [`crate::schedule::TickSystems`]), so there is little to run in
/// parallel, and on a 2-core machine the multi-threaded executor's wake-ups cost far more than
/// they save: measured here, a 2-agent tick took 1.05 ms multi-threaded and 17 us single-threaded,
/// with identical events. Heavy work (model calls, log writing) runs on its own threads anyway.
fn run_schedules_on_one_thread(app: &mut App) {
    let mut schedules = app.world_mut().resource_mut::<Schedules>();
    for (_, schedule) in schedules.iter_mut() {
        schedule.set_executor(bevy::ecs::schedule::SingleThreadedExecutor::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cognition::PerceptionSettings;
    use crate::happenings::MemorySink;
    use crate::memory::ImportanceRater;
    use crate::persist::Store;
    use agora_llm::worker::WorkerPool;
    use bevy::ecs::schedule::{LogLevel, ScheduleBuildSettings};
    use std::sync::Arc;

    /// Two systems of the tick that touch the same data with no order between them would run
    /// in whichever order the executor picks: a replay could differ from its run. Bevy's
    /// ambiguity detection finds such pairs; here it fails the test on any, in the whole server
    /// (world, memory, network, persistence).
    #[test]
    fn the_tick_has_no_ambiguous_system_pairs() {
        let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets");
        let (map, roster) = load_town(
            &assets.join("maps/maple_hollow.tmj"),
            &assets.join("personas"),
            Some(3),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("world.sqlite")).unwrap();
        let (app, _) = ServerApp::new(WorldSetup {
            map,
            roster,
            clock: GameClock::new(agora_shared::GameTime(0), 10_000),
            seed: 1,
            log: EventLog::new(MemorySink::default()),
        })
        .persistence(Persistence::start(store), AwayPlayers::default())
        .model_workers(
            ModelWorkers(WorkerPool::start_with_embedder(None, None, 1, 8)),
            ModelTiming::Lockstep { delay_ticks: 1 },
        )
        .memory(
            MemorySetup {
                rater: Arc::new(ImportanceRater::from_vectors(vec![], vec![])),
                dimensions: 2,
                perception: PerceptionSettings::default(),
            },
            RestoredStreams::default(),
        )
        .net(NetSetup {
            bind: "127.0.0.1:0".parse().unwrap(),
            public: None,
            key: ServerKey::generate(),
            view: ViewRange::default(),
            players_per_address: crate::net::handshakes::PLAYERS_PER_SOURCE,
        })
        .unwrap();
        let mut app = app.build();
        app.edit_schedule(Update, |schedule| {
            schedule.set_build_settings(ScheduleBuildSettings {
                ambiguity_detection: LogLevel::Error,
                ..default()
            });
        });
        let world = app.world_mut();
        let mut schedule = world.resource_mut::<Schedules>().remove(Update).unwrap();
        if let Err(e) = schedule.initialize(world) {
            panic!(
                "{}\n(bevy's `debug` feature shows the systems' names)",
                e.to_string(schedule.graph(), world)
            );
        }
    }
}
