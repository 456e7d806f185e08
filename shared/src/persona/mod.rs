//! Personas: the mod files that define agents (`assets/personas/*.toml`).
//!
//! The schema is documented for modders in `assets/personas/README.md`. Parsing and validation
//! live here, beside the types, so that the server, the `persona check` command and any
//! external tool agree on what a valid persona is.

mod error;
mod folder;
mod parse;
mod warnings;

pub use error::PersonaError;
pub use folder::{
    FolderReport, MAX_PERSONA_FILE_BYTES, is_persona_file, load_folder, persona_files,
    read_persona_file,
};
pub use parse::{Context, parse_persona, persona_id_from_path};
pub use warnings::{schedule_warnings, shared_bed_warnings};

use crate::ClockTime;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The map's side of validation: which places exist and where one can sleep.
///
/// A place is written `"Sector"` or `"Sector:arena"`. Implemented by the server's town map;
/// tests can implement it over a fixed list.
pub trait Places {
    /// `Ok` if the place names a location on the map, else what is wrong.
    fn check_place(&self, place: &str) -> Result<(), String>;
    /// `Ok` if an agent can sleep there (it contains a bed), else what is wrong.
    fn check_home(&self, place: &str) -> Result<(), String>;
    /// The bed an agent with this home sleeps in (its address), if the map knows one.
    fn bed_of(&self, _home: &str) -> Option<String> {
        None
    }
    /// The sector a valid place belongs to ("Willow Cafe:kitchen" -> "Willow Cafe").
    fn sector_of<'a>(&self, place: &'a str) -> &'a str {
        place.split(':').next().unwrap_or(place)
    }
}

/// A validated persona. Built only by [`parse_persona`], so its fields are known to be valid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Persona {
    /// The file stem; not part of the content hash.
    #[serde(skip)]
    pub id: String,
    pub name: String,
    pub age: u8,
    pub traits: Vec<String>,
    pub backstory: String,
    pub lifestyle: String,
    pub speech_style: String,
    pub wake: ClockTime,
    pub sleep: ClockTime,
    pub home: String,
    pub work: Option<Work>,
    pub visits: Vec<Visit>,
    pub relationships: Vec<Relationship>,
    pub memories: Vec<String>,
    pub author: String,
    pub license: String,
}

/// A persona's job: where, when and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Work {
    pub place: String,
    pub start: ClockTime,
    pub end: ClockTime,
    pub activity: String,
    pub emoji: Option<String>,
}

/// A place a persona goes to on a normal day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Visit {
    pub place: String,
    pub at: ClockTime,
    pub minutes: u16,
    pub activity: String,
    pub emoji: Option<String>,
}

/// How a persona relates to another one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Relationship {
    pub with: String,
    pub kind: String,
    pub notes: String,
}

impl Persona {
    /// SHA-256 (hex) of the persona's parsed content: the persona's identity for provenance.
    ///
    /// Computed over the canonical JSON of the fields, so comments, formatting and field order
    /// in the file do not change it; the id (file name) is not part of it.
    pub fn content_hash(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("persona serialises");
        let digest = Sha256::digest(&canonical);
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Minutes from waking to going to sleep.
    pub fn awake_minutes(&self) -> u16 {
        self.wake.minutes_until(self.sleep)
    }

    /// Who it is, as viewers show it: "baking bread at Willow Cafe" (the work's sector) for
    /// its occupation, empty if it has no work.
    pub fn about(&self) -> crate::events::About {
        let occupation = self.work.as_ref().map_or_else(String::new, |w| {
            let sector = w.place.split(':').next().unwrap_or(&w.place);
            format!("{} at {sector}", w.activity)
        });
        crate::events::About {
            age: self.age,
            traits: self.traits.clone(),
            occupation,
        }
    }
}

#[cfg(test)]
mod tests;
