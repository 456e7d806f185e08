//! The `agora-server` command line.

use crate::agents::BrainKind;
use crate::cognition::{Prompts, interview};
use crate::eval;
use crate::net::replication::ViewRange;
use crate::report;
use crate::serve::{self, ServeConfig};
use crate::sim::{self, SimConfig, SimError};
use crate::world::TownMap;
use agora_llm::backends::embedded::{EmbeddedModel, EmbeddedOptions};
use agora_llm::backends::minilm::{self, Embedder};
use agora_llm::backends::openai::{OpenAiConfig, OpenAiModel};
use agora_llm::{GenerateRequest, LanguageModel, LlmError, SamplingParams, ScoreRequest, locate};
use agora_net::config::unix_now;
use agora_net::keys::{KeyError, KeyOrigin, ServerKey};
use agora_net::tokens::{self, TokenError};
use agora_shared::GameTime;
use agora_shared::persona;
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Agora: a town of generative agents on a Bevy ECS server.
#[derive(Debug, Parser)]
// A flag given twice takes its last value, so a script's defaults (scripts/run-day) can be
// overridden by the arguments passed on to it.
#[command(name = "agora-server", version = crate::VERSION, about, long_about = None, args_override_self = true)]
pub struct Cli {
    /// The assets folder (maps, personas). Default: $AGORA_ASSETS, else ./assets, else the
    /// assets folder of the source tree this binary was built from.
    #[arg(long, global = true, env = "AGORA_ASSETS")]
    pub assets: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the town headless, as fast as the machine allows, and write the event log and a
    /// summary to an output folder.
    Sim(SimArgs),
    /// Work with persona files.
    #[command(subcommand)]
    Persona(PersonaCommand),
    /// Work with map files.
    #[command(subcommand)]
    Map(MapCommand),
    /// Try the language model: generate text or score candidate continuations (for tuning
    /// prompt templates).
    #[command(subcommand)]
    Llm(LlmCommand),
    /// Run the town in real time with players connected over the network (UDP, netcode in
    /// secure mode).
    Serve(ServeArgs),
    /// Write a connect token that lets a player join the server (netcode, signed with the
    /// server's key).
    Token(TokenArgs),
    /// Ask an agent of a finished run (sim or serve, with memory) a question: it answers from
    /// its memory stream, and the memories it drew on are listed with their ids.
    Interview(InterviewArgs),
    /// Run the paper's evaluations.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Draw what a run did as one self-contained HTML page (open it in any browser, offline):
    /// where agents spent their time, each agent's day, who met whom, the model's cost, how
    /// news spread, tick health.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run's folder (from sim, serve or eval): its events.jsonl, and summary.json and
    /// diffusion.json where present. Two folders with --compare.
    #[arg(value_name = "RUN_DIR", required = true, num_args = 1..=2)]
    pub runs: Vec<PathBuf>,
    /// Put two runs side by side and name the first event where their logs differ.
    #[arg(long)]
    pub compare: bool,
    /// Where to write the page [default: RUN_DIR/report.html, with --compare
    /// RUN_A/compare.html].
    #[arg(long, value_name = "FILE.html")]
    pub out: Option<PathBuf>,
    /// The map the run used (drawn under the heatmap) [default: the shipped town].
    #[arg(long)]
    pub map: Option<PathBuf>,
    /// The personas folder the run used (authors, work places, relationships) [default: the
    /// shipped personas].
    #[arg(long, value_name = "DIR")]
    pub personas: Option<PathBuf>,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Information diffusion: run a day with --brain llm, interview every agent about the news
    /// the personas carry (Marisol's harvest party, Gabriel's candidacy), and count who is
    /// informed and who asserts news no memory holds. Writes OUT/diffusion.json; the last line
    /// is `diffusion: informed=K/N hallucinated=H/N`.
    Diffusion(DiffusionArgs),
}

#[derive(Debug, Args)]
pub struct DiffusionArgs {
    /// Number of agents [default: one per persona].
    #[arg(long)]
    pub agents: Option<usize>,
    /// Game hours to run.
    #[arg(long, default_value_t = 24.0)]
    pub hours: f64,
    /// Seed for every random choice of the run; the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Game time at the first tick.
    #[arg(long, default_value = "06:00", value_parser = parse_game_time)]
    pub start: GameTime,
    /// Output folder for the run and diffusion.json.
    #[arg(long, default_value = "runs/diffusion")]
    pub out: PathBuf,
    /// GGUF model [default: $AGORA_MODEL, else the model cache].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Run no new day: interview and judge again the run already in --out (after changing
    /// the interview, its template or the rule). --hours, --seed and --start are then unused.
    #[arg(long)]
    pub rejudge: bool,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct InterviewArgs {
    /// The run's folder (its events.jsonl holds the agents' memories).
    #[arg(long, value_name = "DIR")]
    pub world: PathBuf,
    /// The agent: its id (`marisol_alvarez`) or its name (`Marisol Alvarez`).
    #[arg(long)]
    pub agent: String,
    /// The question, in quotes.
    pub question: String,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (UDP).
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub bind: std::net::SocketAddr,
    /// Address clients reach the server at, written into tokens [default: the bound address].
    #[arg(long)]
    pub public_addr: Option<std::net::SocketAddr>,
    /// The server's key file, which signs every token; created (owner-only) if absent
    /// [default: OUT/server.key, with the world]. $AGORA_SERVER_KEY (64 hex digits) wins.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Ticks per second.
    #[arg(long, default_value_t = 20.0)]
    pub hz: f64,
    /// Game seconds per wall-clock second.
    #[arg(long, default_value_t = 10.0)]
    pub time_scale: f64,
    /// Game time to start at ("HH:MM" or "day D HH:MM") [default: where the database's last
    /// run stopped, else 08:00].
    #[arg(long, value_parser = parse_game_time)]
    pub start: Option<GameTime>,
    /// Number of agents [default: one per persona].
    #[arg(long)]
    pub agents: Option<usize>,
    /// Seed for the world's random choices (agents' routines, who talks when).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Map file [default: ASSETS/maps/maple_hollow.tmj].
    #[arg(long)]
    pub map: Option<PathBuf>,
    /// Persona folder [default: ASSETS/personas]; edits are picked up while serving.
    #[arg(long)]
    pub personas: Option<PathBuf>,
    /// Folder for the event log (an earlier run's log is kept, renamed).
    #[arg(long, default_value = "runs/serve")]
    pub out: PathBuf,
    /// The SQLite database that keeps players' avatars and the clock across restarts
    /// [default: OUT/world.sqlite].
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Stop after this many seconds and print tick and bandwidth figures [default: run until
    /// killed].
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Where to hand out connect tokens over HTTP (`GET /token?player=NAME`). Anyone who
    /// reaches it can get a token: keep it on loopback, or put an account check in front.
    #[arg(long, default_value = "127.0.0.1:5001")]
    pub token_endpoint: std::net::SocketAddr,
    /// No token endpoint (tokens only from `agora-server token`).
    #[arg(long)]
    pub no_token_endpoint: bool,
    /// Players one address (an IPv6 /64) may have connected at once; more are refused at the
    /// handshake. Raise it for load tests or a LAN party behind one router.
    #[arg(long, default_value_t = crate::net::handshakes::PLAYERS_PER_SOURCE as u16,
          value_parser = clap::value_parser!(u16).range(1..=crate::net::server::MAX_CLIENTS as i64))]
    pub players_per_address: u16,
    /// Seconds a joined player may send nothing before it is disconnected, freeing its slot
    /// (0: never). A client that connects but never says hello has 10 s.
    #[arg(long, default_value_t = crate::net::actions::IDLE_KICK_SECONDS)]
    pub idle_kick: u64,
    /// Players not seen for this many days are forgotten when the server starts (their avatar
    /// and team; the name can join again as new). 0: never.
    #[arg(long, default_value_t = 90)]
    pub forget_players_after_days: u64,
    /// Every agent keeps a memory stream (MiniLM; see `sim --help`), saved in the database so
    /// a restarted server resumes every agent's memories.
    #[arg(long)]
    pub memory: bool,
    /// Which brain drives the agents: `llm` also talks with the language model (to each other
    /// and to players who speak to them), and implies --memory.
    #[arg(long, value_enum, default_value_t = BrainKind::Routine)]
    pub brain: BrainKind,
    /// GGUF model for `--brain llm` [default: $AGORA_MODEL, else the model cache].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// How far players see, in tiles: agents and players within it come into view (and stay
    /// until 4 tiles farther).
    #[arg(long, default_value_t = crate::net::replication::VIEW_RADIUS)]
    pub view_radius: u16,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The player's name: their identity in the town (1-32 letters, digits, spaces, - _ .).
    #[arg(long)]
    pub player: String,
    /// How long the token may be used to connect, in seconds (1 to 2592000, 30 days).
    #[arg(long, default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=agora_net::tokens::MAX_TTL.as_secs()))]
    pub ttl: u64,
    /// The server's public address (repeatable).
    #[arg(long = "server", default_value = "127.0.0.1:5000")]
    pub servers: Vec<std::net::SocketAddr>,
    /// The server's key file: `serve` keeps it with the world, as OUT/server.key; created
    /// (owner-only) if absent. $AGORA_SERVER_KEY (64 hex digits) wins.
    #[arg(long, default_value = "runs/serve/server.key")]
    pub key: PathBuf,
    /// Where to write the token [default: PLAYER.token].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum LlmCommand {
    /// Continue a prompt.
    Generate {
        /// The text to continue (the model is a base model: write the start of what you want).
        prompt: String,
        #[command(flatten)]
        model: ModelArgs,
        /// Tokens to generate, at most.
        #[arg(long, default_value_t = 48)]
        max_tokens: u32,
        /// Stop before this text (repeatable).
        #[arg(long)]
        stop: Vec<String>,
        /// Sampling temperature; 0 for greedy (always the likeliest token).
        #[arg(long, default_value_t = 0.7)]
        temperature: f32,
        /// Nucleus sampling: draw from the likeliest tokens that make up this much
        /// probability.
        #[arg(long, default_value_t = 0.9)]
        top_p: f32,
        /// Penalty on tokens already in the text (1 for none).
        #[arg(long, default_value_t = 1.15)]
        repetition_penalty: f32,
        /// Seed for sampling; the same seed and inputs give the same text.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Rank candidate continuations of a prompt by log-likelihood.
    Score {
        /// The text the candidates continue.
        prompt: String,
        /// A candidate continuation, usually starting with a space (repeatable).
        #[arg(long = "candidate", short = 'c', required = true)]
        candidates: Vec<String>,
        #[command(flatten)]
        model: ModelArgs,
    },
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// GGUF model file [default: $AGORA_MODEL, else the model cache filled by scripts/fetch-models].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Use an OpenAI-compatible server instead, e.g. http://127.0.0.1:8000/v1 (vLLM,
    /// llama.cpp's server, Ollama). Key and limits: AGORA_OPENAI_API_KEY,
    /// AGORA_OPENAI_TIMEOUT_S, AGORA_OPENAI_MAX_IN_FLIGHT.
    #[arg(long, env = "AGORA_OPENAI_BASE_URL", conflicts_with = "model")]
    pub openai: Option<String>,
    /// The model name the server knows.
    #[arg(long, env = "AGORA_OPENAI_MODEL", default_value = "default")]
    pub openai_model: String,
}

fn load_model(args: &ModelArgs) -> Result<Box<dyn LanguageModel>, LlmError> {
    if let Some(base) = &args.openai {
        let config = OpenAiConfig::new(base, &args.openai_model).with_env()?;
        return Ok(Box::new(OpenAiModel::new(config)));
    }
    let path = locate::language_model(args.model.as_deref())?;
    Ok(Box::new(EmbeddedModel::load(
        &path,
        EmbeddedOptions::from_env()?,
    )?))
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Number of agents [default: one per persona]; beyond that, personas are reused.
    #[arg(long)]
    pub agents: Option<usize>,
    /// Game hours to simulate.
    #[arg(long, default_value_t = 24.0)]
    pub hours: f64,
    /// Seed for every random choice; same seed and inputs, same events.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output folder for events.jsonl and summary.json [default: runs/seed-S].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Which brain drives the agents [default: llm when the language model and MiniLM are
    /// there (scripts/fetch-models), else routine, said on stderr; with --journal, the
    /// recorded run's].
    #[arg(long, value_enum)]
    pub brain: Option<BrainKind>,
    /// Game time at the first tick: "HH:MM" on day 1, or "day D HH:MM" (06:00 by default,
    /// when the town wakes: a run from midnight spends its first hours asleep).
    #[arg(long, default_value = "06:00", value_parser = parse_game_time)]
    pub start: GameTime,
    /// Game seconds per tick (the paper's step is 10).
    #[arg(long, default_value_t = 10.0)]
    pub tick_seconds: f64,
    /// Map file [default: ASSETS/maps/maple_hollow.tmj].
    #[arg(long)]
    pub map: Option<PathBuf>,
    /// Persona folder [default: ASSETS/personas].
    #[arg(long)]
    pub personas: Option<PathBuf>,
    /// Every agent keeps a memory stream: what it perceives and hears, embedded with MiniLM
    /// (scripts/fetch-models) and rated for importance, logged as `memory` events. The brain
    /// still decides what agents do. `--brain llm` implies it.
    #[arg(long)]
    pub memory: bool,
    /// GGUF model for `--brain llm` [default: $AGORA_MODEL, else the model cache].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Re-run a recorded run without any model: every model call is answered from the
    /// journal.jsonl in this earlier run's folder (same seed and options: same events and
    /// determinism_hash). Runs with a model always write OUT/journal.jsonl.
    #[arg(long, value_name = "RUN_DIR")]
    pub journal: Option<PathBuf>,
    /// Save the world (clock, agents' memories and plans) to this SQLite file as the run
    /// goes; if it already holds a saved world, resume from it: the run starts at its saved
    /// clock (not --start) and goes on for --hours, every agent with the memories and plan it
    /// had. A run stopped by any means (even kill -9) loses at most its last 10 ticks.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Reload persona files when they are edited during the run (breaks reproducibility).
    #[arg(long)]
    pub watch: bool,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum PersonaCommand {
    /// Check every persona file in a folder against the schema, the map and each other.
    /// Exits non-zero if any has an error.
    Check {
        /// Persona folder [default: ASSETS/personas].
        dir: Option<PathBuf>,
        /// Map the personas live on [default: ASSETS/maps/maple_hollow.tmj].
        #[arg(long)]
        map: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MapCommand {
    /// Check a Tiled map (.tmj) and print its location tree.
    Check {
        /// Map file [default: ASSETS/maps/maple_hollow.tmj].
        file: Option<PathBuf>,
    },
}

fn parse_game_time(s: &str) -> Result<GameTime, String> {
    s.parse()
}

/// The assets folder: explicit, else ./assets, else the source tree's.
pub fn locate_assets(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(dir) = explicit {
        return if dir.is_dir() {
            Ok(tidy(dir))
        } else {
            Err(format!("assets folder {} does not exist", dir.display()))
        };
    }
    let candidates = [
        PathBuf::from("assets"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets"),
    ];
    candidates
        .iter()
        .find(|d| d.join("maps").is_dir())
        .map(|d| tidy(d))
        .ok_or_else(|| {
            "cannot find the assets folder: run from the repository root, or pass --assets DIR \
             (or set AGORA_ASSETS)"
                .to_string()
        })
}

/// A path without `..` (for messages), if it can be resolved.
fn tidy(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

const DEFAULT_MAP: &str = "maps/maple_hollow.tmj";

/// Why a command failed; printed as `error: ...`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A flag's value is out of range, or flags disagree.
    #[error("{0}")]
    Usage(String),
    /// The assets folder cannot be found.
    #[error("{0}")]
    Assets(String),
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error(transparent)]
    Map(#[from] crate::world::MapError),
    #[error(transparent)]
    Persona(#[from] persona::PersonaError),
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("{0}")]
    Serve(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// Runs the command line; returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match execute(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn execute(cli: Cli) -> Result<ExitCode, CliError> {
    let assets = Assets(cli.assets);
    match cli.command {
        Command::Sim(args) => sim(args, &assets),
        Command::Persona(PersonaCommand::Check { dir, map }) => persona_check(dir, map, &assets),
        Command::Map(MapCommand::Check { file }) => map_check(file, &assets),
        Command::Llm(LlmCommand::Generate {
            prompt,
            model,
            max_tokens,
            stop,
            temperature,
            top_p,
            repetition_penalty,
            seed,
        }) => llm_generate(
            &model,
            GenerateRequest {
                prompt,
                max_tokens,
                stop,
                sampling: SamplingParams {
                    temperature,
                    top_p,
                    repetition_penalty,
                    seed,
                },
            },
        ),
        Command::Llm(LlmCommand::Score {
            prompt,
            candidates,
            model,
        }) => llm_score(&model, ScoreRequest { prompt, candidates }),
        Command::Serve(args) => serve(args, &assets),
        Command::Token(args) => token(args),
        Command::Interview(args) => interview(args, &assets),
        Command::Eval(EvalCommand::Diffusion(args)) => diffusion(args, &assets),
        Command::Report(args) => report(args, &assets),
    }
}

fn diffusion(args: DiffusionArgs, assets: &Assets) -> Result<ExitCode, CliError> {
    let config = SimConfig {
        map: assets.or_default(None, DEFAULT_MAP)?,
        personas: assets.or_default(None, "personas")?,
        agents: args.agents,
        hours: args.hours,
        seed: args.seed,
        out: args.out,
        start: args.start,
        tick_ms: 10_000,
        brain: BrainKind::Llm,
        memory: true,
        model: args.model,
        prompts: assets.or_default(None, "prompts")?,
        journal: None,
        db: None,
        watch: false,
        progress: !args.quiet,
    };
    let report = eval::diffusion(&config, args.rejudge).map_err(CliError::Usage)?;
    for (item, seeded, informed) in &report.items {
        println!(
            "diffusion: {item}: informed {informed}/{} (at the start {seeded}/{})",
            report.agents, report.agents
        );
    }
    println!(
        "diffusion: wrote {}",
        config.out.join("diffusion.json").display()
    );
    println!("{}", eval::summary_line(&report));
    Ok(ExitCode::SUCCESS)
}

fn report(args: ReportArgs, assets: &Assets) -> Result<ExitCode, CliError> {
    let (first, page) = match (args.runs.as_slice(), args.compare) {
        ([run], false) => (run, "report.html"),
        ([a, _], true) => (a, "compare.html"),
        ([_], true) => {
            return Err(CliError::Usage(
                "--compare takes two run folders: report --compare RUN_A RUN_B".into(),
            ));
        }
        _ => {
            return Err(CliError::Usage(
                "two run folders are compared: add --compare".into(),
            ));
        }
    };
    let options = report::ReportOptions {
        out: args.out.clone().unwrap_or_else(|| first.join(page)),
        map: assets.or_default(args.map, DEFAULT_MAP)?,
        personas: assets.or_default(args.personas, "personas")?,
        runs: args.runs,
        progress: !args.quiet,
    };
    let written = report::write(&options).map_err(CliError::Usage)?;
    for warning in &written.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(divergence) = &written.divergence {
        println!("compare: {divergence}");
    }
    println!(
        "report: wrote {} ({} KB)",
        written.out.display(),
        written.bytes / 1024
    );
    Ok(ExitCode::SUCCESS)
}

fn interview(args: InterviewArgs, assets: &Assets) -> Result<ExitCode, CliError> {
    let log = args.world.join("events.jsonl");
    let (agents, end) = interview::agents_from_log(&log).map_err(CliError::Usage)?;
    let wanted = args.agent.to_lowercase();
    let Some((id, agent)) = (agents.iter())
        .find(|(id, a)| id.to_lowercase() == wanted || a.name.to_lowercase() == wanted)
    else {
        let known: Vec<&str> = agents.keys().map(String::as_str).collect();
        return Err(CliError::Usage(format!(
            "no agent {:?} in {}; its agents are: {}",
            args.agent,
            log.display(),
            known.join(", ")
        )));
    };
    if agent.memories.is_empty() {
        return Err(CliError::Usage(format!(
            "{id} has no memories in {}: was the run made with --memory or --brain llm?",
            log.display()
        )));
    }
    let prompts = Prompts::load(&assets.or_default(None, "prompts")?)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let embedder = Embedder::load(&minilm::default_folder())?;
    let model = load_model(&args.model)?;
    let answer = interview::interview(
        agent,
        &args.question,
        end,
        &embedder,
        model.as_ref(),
        &prompts.interview,
    )?;
    println!("{}: {}", agent.name, answer.answer);
    for (memory, score, relevance) in &answer.recalled {
        let mark = if Some(memory.id) == answer.drawn_from {
            "*"
        } else {
            " "
        };
        println!(
            "{mark} memory {:>4}  score {score:.2}  relevance {relevance:.2}  {}",
            memory.id.0, memory.description
        );
    }
    match answer.drawn_from {
        Some(id) if answer.worded => println!("interview: drawn from memory {}", id.0),
        Some(id) => println!(
            "interview: drawn from memory {} (quoted: the model's wording added to it)",
            id.0
        ),
        None => println!(
            "interview: no memory relevant enough (relevance {} or more); the model was not asked",
            interview::MIN_RELEVANCE
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--assets` folder given, if any.
struct Assets(Option<PathBuf>);

impl Assets {
    /// A path given on the command line, else the default inside the assets folder.
    fn or_default(&self, given: Option<PathBuf>, default: &str) -> Result<PathBuf, CliError> {
        match given {
            Some(path) => Ok(path),
            None => Ok(locate_assets(self.0.as_deref())
                .map_err(CliError::Assets)?
                .join(default)),
        }
    }
}

fn sim(args: SimArgs, assets: &Assets) -> Result<ExitCode, CliError> {
    if !(args.tick_seconds >= 0.001 && args.tick_seconds <= 3600.0) {
        return Err(CliError::Usage(format!(
            "--tick-seconds must be between 0.001 and 3600, got {}",
            args.tick_seconds
        )));
    }
    let brain = match args.brain {
        Some(brain) => brain,
        None => default_brain(args.model.as_deref(), args.journal.as_deref())?,
    };
    let config = SimConfig {
        map: assets.or_default(args.map, DEFAULT_MAP)?,
        personas: assets.or_default(args.personas, "personas")?,
        agents: args.agents,
        hours: args.hours,
        seed: args.seed,
        out: args
            .out
            .unwrap_or_else(|| PathBuf::from(format!("runs/seed-{}", args.seed))),
        start: args.start,
        tick_ms: (args.tick_seconds * 1000.0).round() as u64,
        brain,
        memory: args.memory,
        model: args.model,
        prompts: assets.or_default(None, "prompts")?,
        journal: args.journal,
        db: args.db,
        watch: args.watch,
        progress: !args.quiet,
    };
    let summary = sim::run(&config)?;
    println!(
        "sim: {} agents, {:.1} game hours, {} ticks in {:.2}s ({:.0} ticks/s), {} events",
        summary.agents,
        summary.game_hours,
        summary.ticks,
        summary.wall_seconds,
        summary.ticks_per_second,
        summary.events_total
    );
    println!("sim: determinism_hash {}", summary.determinism_hash);
    println!("sim: wrote {}", config.out.display());
    Ok(ExitCode::SUCCESS)
}

/// `sim`'s brain when none is asked for: the recorded run's when replaying a journal; the
/// language model's when a model file is named or it and MiniLM are in the cache; else the
/// routine, saying why.
fn default_brain(model: Option<&Path>, journal: Option<&Path>) -> Result<BrainKind, CliError> {
    if let Some(run) = journal {
        let file = run.join("summary.json");
        let recorded = std::fs::read_to_string(&file)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|summary| summary.get("brain")?.as_str().map(str::to_owned));
        return match recorded.as_deref() {
            Some("llm") => Ok(BrainKind::Llm),
            Some("routine") => Ok(BrainKind::Routine),
            _ => Err(CliError::Usage(format!(
                "{} does not say which brain the recorded run had: pass --brain",
                file.display()
            ))),
        };
    }
    // A model asked for by name is meant to be used: if it is missing, loading it says so.
    if model.is_some() || std::env::var_os("AGORA_MODEL").is_some() {
        return Ok(BrainKind::Llm);
    }
    let minilm = minilm::default_folder();
    let found = locate::language_model(None)
        .map_err(|e| e.to_string())
        .and_then(|_| {
            if minilm.join("model.safetensors").is_file() {
                Ok(())
            } else {
                Err(format!("no MiniLM in {}", minilm.display()))
            }
        });
    match found {
        Ok(()) => Ok(BrainKind::Llm),
        Err(why) => {
            eprintln!(
                "note: agents follow their routines (--brain routine): {why}. \
                 scripts/fetch-models fetches the default models for --brain llm."
            );
            Ok(BrainKind::Routine)
        }
    }
}

fn persona_check(
    dir: Option<PathBuf>,
    map: Option<PathBuf>,
    assets: &Assets,
) -> Result<ExitCode, CliError> {
    let dir = assets.or_default(dir, "personas")?;
    let town = TownMap::load(&assets.or_default(map, DEFAULT_MAP)?)?;
    let report = persona::load_folder(&dir, &town)?;
    for error in &report.errors {
        eprintln!("error: {error}");
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    for (p, file) in &report.personas {
        println!(
            "ok: {} ({}) {}",
            p.id,
            file.display(),
            &p.content_hash()[..12]
        );
    }
    let broken_files: std::collections::BTreeSet<_> =
        report.errors.iter().map(|e| &e.file).collect();
    let files = report.personas.len() + broken_files.len();
    if files == 0 {
        // The answer `sim` and `serve` give for the same folder (TownError::NoPersonas).
        eprintln!(
            "persona check: no persona files (*.toml) in {}: a town needs at least one",
            dir.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    if report.errors.is_empty() {
        println!(
            "persona check: {} personas valid in {}",
            report.personas.len(),
            dir.display()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "persona check: {} error(s) in {} of {files} file(s)",
            report.errors.len(),
            broken_files.len()
        );
        Ok(ExitCode::FAILURE)
    }
}

fn map_check(file: Option<PathBuf>, assets: &Assets) -> Result<ExitCode, CliError> {
    let map = TownMap::load(&assets.or_default(file, DEFAULT_MAP)?)?;
    println!("{} ({}x{} tiles)", map.world, map.width, map.height);
    for sector in &map.sectors {
        println!("  {}", sector.name);
        for &a in &sector.arenas {
            let arena = &map.arenas[a];
            let objects: Vec<&str> = arena
                .objects
                .iter()
                .map(|&o| map.objects[o].name.as_str())
                .collect();
            println!("    {}: {}", arena.name, objects.join(", "));
        }
    }
    println!(
        "map check: ok, {} sectors, {} arenas, {} objects",
        map.sectors.len(),
        map.arenas.len(),
        map.objects.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn llm_generate(model: &ModelArgs, request: GenerateRequest) -> Result<ExitCode, CliError> {
    let generation = load_model(model)?.generate(&request)?;
    println!("{}", generation.text);
    let u = generation.usage;
    eprintln!(
        "llm: {} prompt tokens, {} generated in {:.2}s",
        u.prompt_tokens,
        u.completion_tokens,
        u.elapsed.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn llm_score(model: &ModelArgs, request: ScoreRequest) -> Result<ExitCode, CliError> {
    let scores = load_model(model)?.score(&request)?;
    let mut order: Vec<usize> = (0..request.candidates.len()).collect();
    order.sort_by(|&a, &b| scores.logprobs[b].total_cmp(&scores.logprobs[a]));
    for i in order {
        println!(
            "{:>9.3}  {:>2} tokens  {:?}",
            scores.logprobs[i], scores.tokens[i], request.candidates[i]
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(args: ServeArgs, assets: &Assets) -> Result<ExitCode, CliError> {
    let config = ServeConfig {
        map: assets.or_default(args.map, DEFAULT_MAP)?,
        personas: assets.or_default(args.personas, "personas")?,
        agents: args.agents,
        seed: args.seed,
        start: args.start,
        bind: args.bind,
        public: args.public_addr,
        key: args.key.unwrap_or_else(|| args.out.join("server.key")),
        hz: args.hz,
        time_scale: args.time_scale,
        db: args.db.unwrap_or_else(|| args.out.join("world.sqlite")),
        out: args.out,
        duration: args
            .seconds
            .map(|s| std::time::Duration::from_secs_f64(s.max(0.0))),
        token_endpoint: (!args.no_token_endpoint).then_some(args.token_endpoint),
        players_per_address: usize::from(args.players_per_address),
        idle_kick: (args.idle_kick > 0).then(|| std::time::Duration::from_secs(args.idle_kick)),
        forget_players_after: (args.forget_players_after_days > 0).then(|| {
            std::time::Duration::from_secs(args.forget_players_after_days.saturating_mul(86_400))
        }),
        view: ViewRange::radius(args.view_radius),
        memory: args.memory,
        brain: args.brain,
        model: args.model,
        prompts: assets.or_default(None, "prompts")?,
    };
    let report = serve::run(&config).map_err(CliError::Serve)?;
    println!(
        "serve: {} ticks, tick mean {:.0} us p99 {:.0} us, peak {} players, {:.0} B/s per client, {:.1} in view, {} messages dropped",
        report.ticks,
        report.tick_us.mean,
        report.tick_us.p99,
        report.peak_players,
        report.bytes_per_second_per_client,
        report.entities_in_view,
        report.dropped_messages
    );
    if let (Some(on_core), Some(queued)) = (&report.tick_on_core_us, &report.tick_queued_us) {
        println!(
            "serve: per tick on a core mean {:.0} us p99 {:.0} us; queued for a core mean {:.0} us p99 {:.0} us",
            on_core.mean, on_core.p99, queued.mean, queued.p99
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to `path`, readable by its owner only (a token lets anyone in as its player
/// until it expires), replacing what was there.
fn write_owner_only(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // An existing file keeps its mode when opened: narrow it too.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(bytes)
}

fn token(args: TokenArgs) -> Result<ExitCode, CliError> {
    let (key, origin) = ServerKey::load_or_create(&args.key)?;
    if let KeyOrigin::Created(path) = &origin {
        eprintln!(
            "token: no server key was found; created a new one in {}",
            path.display()
        );
    }
    let token = tokens::mint(
        &key,
        &args.player,
        args.servers.clone(),
        std::time::Duration::from_secs(args.ttl),
        unix_now(),
    )?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("{}.token", args.player.trim())));
    write_owner_only(&out, &tokens::to_bytes(&token)).map_err(|source| CliError::Io {
        what: format!("cannot write {}", out.display()),
        source,
    })?;
    println!(
        "token for {:?} (client id {}) valid {} s: {}",
        args.player.trim(),
        token.client_id,
        args.ttl,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
