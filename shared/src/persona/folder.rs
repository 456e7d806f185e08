//! Loading a whole folder of persona files, as the server and `persona check` do.

use super::{
    Context, Persona, PersonaError, Places, parse_persona, persona_id_from_path, schedule_warnings,
    shared_bed_warnings,
};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Persona files larger than this are refused unread (a persona is a few KB).
pub const MAX_PERSONA_FILE_BYTES: u64 = 64 * 1024;

/// The outcome of loading a folder: the valid personas and every problem found.
#[derive(Debug, Default)]
pub struct FolderReport {
    /// Valid personas, sorted by id, with the file each came from.
    pub personas: Vec<(Persona, PathBuf)>,
    pub errors: Vec<PersonaError>,
    /// What valid personas do that their authors may not expect ([`schedule_warnings`],
    /// [`shared_bed_warnings`]).
    pub warnings: Vec<PersonaError>,
}

/// The persona files in a folder: `*.toml`, not starting with `_` or `.`, sorted by name.
pub fn persona_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| is_persona_file(p))
        .collect();
    files.sort();
    Ok(files)
}

/// Whether a path looks like a persona file by its name.
pub fn is_persona_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    path.extension().is_some_and(|e| e == "toml")
        && !name.starts_with('_')
        && !name.starts_with('.')
}

/// Reads a persona file, refusing oversized ones and anything that is not a regular file
/// (a link to /dev/zero reports length 0 and never ends; opening a FIFO waits for a writer).
/// The read itself is bounded too, for a file that grows after it was measured.
pub fn read_persona_file(path: &Path) -> Result<String, PersonaError> {
    let whole_file = |message: String| PersonaError {
        file: path.to_path_buf(),
        line: 0,
        field: String::new(),
        message,
    };
    let metadata = std::fs::metadata(path).map_err(|e| whole_file(format!("cannot read: {e}")))?;
    if !metadata.is_file() {
        return Err(whole_file(
            "is not a regular file (a device, a pipe or a link to one)".into(),
        ));
    }
    let too_big = |len: u64| {
        whole_file(format!(
            "is {len} bytes, expected at most {MAX_PERSONA_FILE_BYTES}"
        ))
    };
    if metadata.len() > MAX_PERSONA_FILE_BYTES {
        return Err(too_big(metadata.len()));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(MAX_PERSONA_FILE_BYTES + 1)
                .read_to_string(&mut text)
        })
        .map_err(|e| whole_file(format!("cannot read: {e}")))?;
    if text.len() as u64 > MAX_PERSONA_FILE_BYTES {
        return Err(too_big(text.len() as u64));
    }
    Ok(text)
}

/// Loads and validates every persona file in `dir` against the map and against each other.
///
/// Fails only if the folder itself cannot be read; problems in files are in the report.
pub fn load_folder(dir: &Path, places: &dyn Places) -> Result<FolderReport, PersonaError> {
    let files = persona_files(dir).map_err(|e| PersonaError {
        file: dir.to_path_buf(),
        line: 0,
        field: String::new(),
        message: format!("cannot read persona folder: {e}"),
    })?;
    let persona_ids: BTreeSet<String> = files
        .iter()
        .filter_map(|f| persona_id_from_path(f).ok())
        .collect();
    let context = Context {
        places,
        persona_ids: &persona_ids,
    };
    let mut report = FolderReport::default();
    for file in files {
        match read_persona_file(&file)
            .map_err(|e| vec![e])
            .and_then(|text| parse_persona(&file, &text, context))
        {
            Ok(persona) => report.personas.push((persona, file)),
            Err(errors) => report.errors.extend(errors),
        }
    }
    report.personas.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    for (persona, file) in &report.personas {
        report.warnings.extend(schedule_warnings(persona, file));
    }
    (report.warnings).extend(shared_bed_warnings(&report.personas, places));
    Ok(report)
}
