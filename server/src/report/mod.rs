//! `agora-server report`: what a headless run (or a `serve` session) did, as one HTML page a
//! researcher reads at a glance. The page is self-contained (inline SVG drawn by plotters, a
//! little CSS, no script), so it opens offline in any browser and can be mailed or archived
//! beside the run.
//!
//! The log is read once, streamed ([`log`]); the run folder's other files ([`folder`]) add
//! what the log does not hold (wall time, model latency, tick times). Each section of the page
//! is its own file in [`sections`]; [`page`] lays them out, one column per run, so
//! `--compare` is the same page with two columns and the first event where the logs part
//! ([`compare`]).

mod compare;
mod folder;
pub mod log;
mod page;
mod sections;

pub use compare::{Divergence, first_difference};
pub use folder::RunFolder;

use std::path::{Path, PathBuf};

/// What to report on and where to write it.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// One run folder, or two for `--compare`.
    pub runs: Vec<PathBuf>,
    pub out: PathBuf,
    /// The map the runs used: drawn under the heatmap, and how tiles become sectors.
    pub map: PathBuf,
    /// The personas the runs used: authors, work places, relationships.
    pub personas: PathBuf,
    /// Say how far reading a big log has got, on stderr.
    pub progress: bool,
}

/// What was written, for the command's last lines.
#[derive(Clone, Debug)]
pub struct Written {
    pub out: PathBuf,
    pub bytes: usize,
    /// Per run: warnings about the folder (a map that differs from the run's, a cut log, ...).
    pub warnings: Vec<String>,
    pub divergence: Option<Divergence>,
}

/// Reads the runs and writes the page.
pub fn write(options: &ReportOptions) -> Result<Written, String> {
    let mut runs = Vec::new();
    for dir in &options.runs {
        runs.push(RunFolder::read(
            dir,
            &options.map,
            &options.personas,
            options.progress,
        )?);
    }
    let divergence = match runs.as_slice() {
        [a, b] => Some(first_difference(&a.events_path(), &b.events_path())?),
        _ => None,
    };
    let html = page::render(&runs, divergence.as_ref())?;
    write_file(&options.out, &html)?;
    Ok(Written {
        out: options.out.clone(),
        bytes: html.len(),
        warnings: runs
            .iter()
            .flat_map(|r| {
                r.warnings
                    .iter()
                    .map(|w| format!("{}: {w}", r.dir.display()))
            })
            .collect(),
        divergence,
    })
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
