//! A run's folder, read for the report: the event log (streamed), `summary.json` (`sim`),
//! `diffusion.json` (`eval diffusion`), and the map and personas the run was made from, each
//! checked against what the run recorded of it.

use super::log::{self, RunLog};
use crate::world::TownMap;
use crate::world::tiled::{TiledMap, TilesetImage};
use agora_shared::persona::{self, Persona};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Logs this big or bigger say how far reading them has got.
const PROGRESS_FROM_BYTES: u64 = 32 << 20;
/// Biggest `summary.json` or `diffusion.json` read (a 25-agent diffusion report is ~30 KB).
const MAX_JSON_BYTES: u64 = 64 << 20;

/// What the report knows of one run.
#[derive(Debug)]
pub struct RunFolder {
    pub dir: PathBuf,
    pub log: RunLog,
    /// `summary.json`, written by `sim` at the end of a run (`serve` writes none).
    pub summary: Option<Value>,
    /// `diffusion.json`, written by `eval diffusion`.
    pub diffusion: Option<Value>,
    /// `serve.json`, written by `serve` when it stops: tick times and bandwidth.
    pub serve: Option<Value>,
    /// The map, when it is the one the run used.
    pub map: Option<TownMap>,
    /// Each map tile's colour (the top-most tile of its layers, averaged over the tileset's
    /// pixels), row by row; empty when the tileset could not be read.
    pub tile_colours: Vec<Option<[u8; 3]>>,
    /// The run's personas by id, when the folder could be read with the map.
    pub personas: BTreeMap<String, Persona>,
    /// What the reader should know: a map or persona that differs from the run's, a cut log.
    pub warnings: Vec<String>,
}

impl RunFolder {
    /// Reads `dir`; `map` and `personas` are the files the run is believed to have used.
    pub fn read(
        dir: &Path,
        map: &Path,
        personas: &Path,
        progress: bool,
    ) -> Result<RunFolder, String> {
        if !dir.is_dir() {
            return Err(format!("{}: no such run folder", dir.display()));
        }
        let events = dir.join("events.jsonl");
        if !events.is_file() {
            return Err(format!(
                "{} is not a run folder: it has no events.jsonl (sim and serve write one)",
                dir.display()
            ));
        }
        let mut said = false;
        let log = log::read(&events, &mut |read, total| {
            // A small log is read before anyone would wait for it.
            if progress && total >= PROGRESS_FROM_BYTES {
                said = true;
                eprint!(
                    "\rreport: reading {}: {} of {} MB",
                    events.display(),
                    read >> 20,
                    total >> 20
                );
            }
        })?;
        if said {
            eprintln!();
        }
        let mut folder = RunFolder {
            dir: dir.to_path_buf(),
            summary: read_json(&dir.join("summary.json"))?,
            diffusion: read_json(&dir.join("diffusion.json"))?,
            serve: read_json(&dir.join("serve.json"))?,
            log,
            map: None,
            tile_colours: vec![],
            personas: BTreeMap::new(),
            warnings: vec![],
        };
        folder.check_log();
        folder.load_map(map);
        folder.load_personas(personas);
        Ok(folder)
    }

    pub fn events_path(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }

    /// A field of `summary.json`, by path (`["tick_us", "p99"]`).
    pub fn summary_field(&self, path: &[&str]) -> Option<&Value> {
        field(self.summary.as_ref(), path)
    }

    /// The run's figures (`summary.json` of a sim, else `serve.json`), by path.
    pub fn figures_field(&self, path: &[&str]) -> Option<&Value> {
        self.summary_field(path)
            .or_else(|| field(self.serve.as_ref(), path))
    }

    fn check_log(&mut self) {
        let log = &self.log;
        let mut warnings = vec![];
        if log.started.is_none() {
            warnings.push("the log has no run_started line: its inputs are unknown".into());
        }
        if let Some(line) = log.truncated_line {
            warnings.push(format!(
                "line {line}, the last, is cut short (a killed run?): skipped"
            ));
        } else if !log.finished {
            warnings.push("the log has no run_finished line: the run did not end cleanly".into());
        }
        if !log.unknown_kinds.is_empty() {
            let kinds: Vec<String> = (log.unknown_kinds.iter())
                .map(|(kind, n)| format!("{kind} ({n})"))
                .collect();
            warnings.push(format!(
                "event kinds this build does not know (a newer log?), not shown: {}",
                kinds.join(", ")
            ));
        }
        if !log.malformed.is_empty() {
            warnings.push(format!(
                "lines that are not events, skipped: {:?}",
                log.malformed
            ));
        }
        self.warnings.extend(warnings);
    }

    fn load_map(&mut self, path: &Path) {
        let map = match TownMap::load(path) {
            Ok(map) => map,
            Err(e) => {
                self.warnings.push(format!("no map drawn: {e}"));
                return;
            }
        };
        let world = self.log.started.as_ref().map(|s| s.map.as_str());
        if world.is_some_and(|w| w != map.world) {
            self.warnings.push(format!(
                "no map drawn: the run's world is {:?}, {} is {:?} (give the run's map with --map)",
                world.unwrap_or_default(),
                path.display(),
                map.world
            ));
            return;
        }
        let recorded = self.summary_field(&["map_sha256"]).and_then(Value::as_str);
        if let (Some(recorded), Ok(actual)) = (recorded, crate::app::file_sha256(path))
            && recorded != actual
        {
            self.warnings.push(format!(
                "{} has changed since the run (its SHA-256 differs from summary.json's): places \
                 may be drawn where they no longer are",
                path.display()
            ));
        }
        match tile_colours(path) {
            Ok(colours) => self.tile_colours = colours,
            Err(e) => self
                .warnings
                .push(format!("map drawn without its tiles: {e}")),
        }
        self.map = Some(map);
    }

    fn load_personas(&mut self, dir: &Path) {
        let Some(map) = &self.map else {
            return;
        };
        let report = match persona::load_folder(dir, map) {
            Ok(report) => report,
            Err(e) => {
                self.warnings.push(format!("personas not read: {e}"));
                return;
            }
        };
        let personas: BTreeMap<String, Persona> = (report.personas.into_iter())
            .map(|(p, _)| (p.id.clone(), p))
            .collect();
        for agent in &self.log.agents {
            let id = persona_id(&agent.id);
            match personas.get(id) {
                Some(p) if p.content_hash() != agent.persona_hash => self.warnings.push(format!(
                    "persona {id} has changed since the run (its hash differs from the log's)"
                )),
                Some(_) => {}
                None => self.warnings.push(format!(
                    "persona {id} is not in {}: its author and work place are unknown",
                    dir.display()
                )),
            }
        }
        self.warnings.dedup();
        self.personas = personas;
    }

    /// The persona an agent of the log was made from.
    pub fn persona_of(&self, agent: &str) -> Option<&Persona> {
        self.personas.get(persona_id(agent))
    }
}

/// The value at `path` inside `json`.
fn field<'a>(json: Option<&'a Value>, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(json?, |value, key| value.get(key))
}

/// The persona id of an agent: copies in big runs are `id#2`, `id#3`, ...
pub fn persona_id(agent: &str) -> &str {
    agent.split('#').next().unwrap_or(agent)
}

fn read_json(path: &Path) -> Result<Option<Value>, String> {
    let Ok(metadata) = std::fs::metadata(path) else {
        return Ok(None);
    };
    if metadata.len() > MAX_JSON_BYTES {
        return Err(format!(
            "{}: {} bytes, more than a run writes ({MAX_JSON_BYTES})",
            path.display(),
            metadata.len()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

/// Each tile's colour: the top-most non-empty tile of the map's tile layers, as the average
/// of its tileset image's pixels.
fn tile_colours(path: &Path) -> Result<Vec<Option<[u8; 3]>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let tiled: TiledMap =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let sets = (tiled.tilesets.iter())
        .filter(|set| set.image.is_some())
        .map(|set| TilesetImage::read(set, dir))
        .collect::<Result<Vec<_>, _>>()?;
    let means: Vec<Vec<[u8; 3]>> = (sets.iter())
        .map(|s| (0..s.tiles()).map(|i| mean_colour(s, i)).collect())
        .collect();
    let cells = tiled.width as usize * tiled.height as usize;
    let mut colours = vec![None; cells];
    for layer in tiled.tile_layers() {
        for (cell, gid) in layer.iter().enumerate().take(cells) {
            let colour = (sets.iter().zip(&means))
                .find_map(|(set, means)| means.get(set.index_of(*gid)? as usize));
            if let Some(colour) = colour {
                colours[cell] = Some(*colour);
            }
        }
    }
    Ok(colours)
}

/// The mean colour of one tile of a tileset.
fn mean_colour(set: &TilesetImage, index: u32) -> [u8; 3] {
    let mut sum = [0u64; 3];
    for y in 0..set.tile_height {
        for x in 0..set.tile_width {
            let pixel = set.pixel(index, x, y).unwrap_or_default();
            for c in 0..3 {
                sum[c] += u64::from(pixel[c]);
            }
        }
    }
    let n = u64::from(set.tile_width * set.tile_height).max(1);
    sum.map(|s| (s / n) as u8)
}
