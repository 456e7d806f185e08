//! How long the replay viewer takes to read a run's log: a routine 25-agent day made here,
//! and any log named by `AGORA_REPLAY_LOG` (a run folder, e.g. a model-driven day). The
//! target: a 25-agent day in under 2 s. Then the inspector's answers from it: time and size.
//! `cargo bench --profile dev -p agora-client --bench replay` (dev: dependencies are
//! optimised there too, and the render stack is not built twice).

use agora_server::sim::{self, SimConfig};
use agora_shared::protocol::{NetId, ServerMessage, encode};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn measure(label: &str, dir: &Path) {
    let bytes = std::fs::metadata(dir.join("events.jsonl")).map_or(0, |m| m.len());
    let started = Instant::now();
    let replay = agora_client::replay::load(dir).expect("the log loads");
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{label}: {:.1} MB, {} to {}, loaded in {seconds:.3} s ({:.0} MB/s)",
        bytes as f64 / 1e6,
        replay.start,
        replay.end,
        bytes as f64 / 1e6 / seconds.max(1e-9)
    );
    // The inspector's answers at the run's end: how long each takes, and how big it is on the
    // wire (the bound is 12 KiB).
    let started = Instant::now();
    let sizes: Vec<usize> = (1..=1000)
        .filter_map(|id| replay.inspect(NetId(id), replay.end))
        .map(|i| encode(&ServerMessage::Inspected(Box::new(i))).len())
        .collect();
    let each = started.elapsed().as_secs_f64() / sizes.len().max(1) as f64;
    println!(
        "{label}: {} inspections at the end, {:.0} us each, {} bytes mean, {} max",
        sizes.len(),
        each * 1e6,
        sizes.iter().sum::<usize>() / sizes.len().max(1),
        sizes.iter().max().unwrap_or(&0)
    );
}

fn main() {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let run = dir.path().join("day");
    sim::run(&SimConfig::routine_day(&assets, run.clone())).expect("a routine day runs");
    measure("routine day, 25 agents", &run);
    if let Some(other) = std::env::var_os("AGORA_REPLAY_LOG") {
        measure("AGORA_REPLAY_LOG", &PathBuf::from(other));
    }
}
