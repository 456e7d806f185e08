//! Run reports of big logs (the targets: a 25-agent day's report in under 2 s, a
//! 1,000-agent day's in under 30 s, memory bounded).
//!
//! `cargo bench -p agora-server --bench report` (add agent counts: `-- 25 1000`). For each
//! size, runs a routine day of the shipped town from 06:00 (the sim is not timed), then times
//! `report::write` on it and prints the log's size, the report's wall time, its throughput,
//! the page's size, and the process's peak resident memory so far (Linux `VmHWM`; the sim
//! itself is part of it, so read the figure of the first size as the floor).

use agora_server::report::{self, ReportOptions};
use agora_server::sim::{self, SimConfig};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

/// Peak resident memory of this process, in MB (0 where /proc is not there).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    (status.lines())
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let sizes: Vec<usize> = (std::env::args().skip(1))
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![25, 1000]
    } else {
        sizes
    };
    let dir = tempfile::tempdir().expect("a temporary folder");
    println!(
        "{:>7} {:>10} {:>9} {:>8} {:>8} {:>9} {:>9}",
        "agents", "log_MB", "lines", "report_s", "MB/s", "page_KB", "peak_MB"
    );
    for agents in sizes {
        let out = dir.path().join(format!("day-{agents}"));
        let config = SimConfig {
            agents: Some(agents),
            ..SimConfig::routine_day(&assets(), out.clone())
        };
        let summary = sim::run(&config).expect("the day runs");
        let page = out.join("report.html");
        let started = Instant::now();
        let written = report::write(&ReportOptions {
            runs: vec![out.clone()],
            out: page,
            map: config.map.clone(),
            personas: config.personas.clone(),
            progress: false,
        })
        .expect("the report is written");
        let seconds = started.elapsed().as_secs_f64();
        let mb = summary.events_bytes as f64 / 1e6;
        println!(
            "{agents:>7} {mb:>10.1} {:>9} {seconds:>8.2} {:>8.1} {:>9} {:>9.0}",
            summary.events_total,
            mb / seconds,
            written.bytes / 1024,
            peak_rss_mb()
        );
    }
}
