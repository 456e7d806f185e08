//! Parsing one persona file into a validated [`Persona`], collecting every error with its line.

use super::{Persona, PersonaError, Places, Relationship, Visit, Work};
use crate::ClockTime;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Earliest and latest allowed wake-up times.
const WAKE_RANGE: (u16, u16) = (3 * 60, 12 * 60);
/// A persona is awake at least this long.
const MIN_AWAKE_MINUTES: u16 = 8 * 60;

/// The file as written, with the byte span of every value so errors can name a line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPersona {
    name: Spanned<String>,
    age: Spanned<i64>,
    traits: Spanned<Vec<Spanned<String>>>,
    backstory: Spanned<String>,
    lifestyle: Spanned<String>,
    speech_style: Spanned<String>,
    wake: Spanned<String>,
    sleep: Spanned<String>,
    home: Spanned<String>,
    work: Option<RawWork>,
    visits: Spanned<Vec<RawVisit>>,
    #[serde(default)]
    relationships: Vec<RawRelationship>,
    memories: Option<Spanned<Vec<Spanned<String>>>>,
    author: Spanned<String>,
    license: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWork {
    place: Spanned<String>,
    start: Spanned<String>,
    end: Spanned<String>,
    activity: Spanned<String>,
    emoji: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVisit {
    place: Spanned<String>,
    at: Spanned<String>,
    minutes: Spanned<i64>,
    activity: Spanned<String>,
    emoji: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelationship {
    with: Spanned<String>,
    kind: Spanned<String>,
    notes: Spanned<String>,
}

/// The persona id for a file: its stem, if it is a valid id (`[a-z0-9_]`, 1-48 chars).
pub fn persona_id_from_path(path: &Path) -> Result<String, String> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| "file name is not valid UTF-8".to_string())?;
    let valid = !stem.is_empty()
        && stem.len() <= 48
        && stem
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(stem.to_string())
    } else {
        Err(format!(
            "file name {stem:?} is not a valid persona id: use 1-48 lowercase letters, digits or '_'"
        ))
    }
}

/// What a persona is checked against: the map's places and the ids of the other personas.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub places: &'a dyn Places,
    pub persona_ids: &'a BTreeSet<String>,
}

/// Parses and validates one persona file's text. Returns every problem found, not just the
/// first, each with its line.
pub fn parse_persona(
    path: &Path,
    text: &str,
    context: Context<'_>,
) -> Result<Persona, Vec<PersonaError>> {
    let mut check = Checker {
        file: path.to_path_buf(),
        text,
        errors: Vec::new(),
    };
    let id = match persona_id_from_path(path) {
        Ok(id) => id,
        Err(message) => {
            check.errors.push(PersonaError {
                file: path.to_path_buf(),
                line: 0,
                field: String::new(),
                message,
            });
            String::new()
        }
    };
    let raw: RawPersona = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let line = e.span().map_or(0, |s| line_of(text, s.start));
            check.errors.push(PersonaError {
                file: path.to_path_buf(),
                line,
                field: e
                    .span()
                    .map_or_else(String::new, |s| field_at(text, s.start)),
                message: with_suggestion(e.message().trim()),
            });
            return Err(check.errors);
        }
    };
    let persona = check.persona(id, raw, context);
    if check.errors.is_empty() {
        Ok(persona)
    } else {
        Err(check.errors)
    }
}

/// The field whose value starts at byte `offset` (where a type error points): the key before
/// it on its line, in the table above it: `traits`, `work.start`, `visits[1].at`. Empty when
/// the offset is not at a value (a syntax error, an unknown key).
fn field_at(text: &str, offset: usize) -> String {
    let Some(prefix) = text.get(..offset) else {
        return String::new();
    };
    let line_start = prefix.rfind('\n').map_or(0, |i| i + 1);
    let Some(before) = prefix[line_start..].trim_end().strip_suffix('=') else {
        return String::new();
    };
    let before = before.trim_end();
    let key_start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .map_or(0, |i| i + 1);
    let key = &before[key_start..];
    if key.is_empty() {
        return String::new();
    }
    let mut table = String::new();
    let mut arrays: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for line in prefix[..line_start].lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
            let seen = arrays.entry(name.trim()).or_default();
            table = format!("{}[{seen}]", name.trim());
            *seen += 1;
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = name.trim().to_string();
        }
    }
    if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    }
}

/// Adds "did you mean `wake`?" to serde's "unknown field `wak`, expected one of ..." message.
fn with_suggestion(message: &str) -> String {
    let names: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let Some((unknown, known)) = names
        .split_first()
        .filter(|_| message.starts_with("unknown field"))
    else {
        return message.to_string();
    };
    let closest = known
        .iter()
        .map(|k| (edit_distance(unknown, k), *k))
        .min()
        .filter(|(d, _)| *d <= 2);
    match closest {
        Some((_, k)) => format!("{message} (did you mean `{k}`?)"),
        None => message.to_string(),
    }
}

/// Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

struct Checker<'a> {
    file: PathBuf,
    text: &'a str,
    errors: Vec<PersonaError>,
}

impl Checker<'_> {
    fn error(&mut self, span: Range<usize>, field: &str, message: impl Into<String>) {
        self.errors.push(PersonaError {
            file: self.file.clone(),
            line: line_of(self.text, span.start),
            field: field.to_string(),
            message: message.into(),
        });
    }

    /// A string of 1..=max characters (after trimming); returns it trimmed.
    fn text(&mut self, value: &Spanned<String>, field: &str, max: usize) -> String {
        let s = value.get_ref().trim();
        let chars = s.chars().count();
        if chars == 0 {
            self.error(value.span(), field, "must not be empty");
        } else if chars > max {
            self.error(
                value.span(),
                field,
                format!("is {chars} characters long, expected at most {max}"),
            );
        }
        s.to_string()
    }

    /// An SPDX license expression ("CC-BY-4.0", "MIT OR Apache-2.0", "LicenseRef-mine"),
    /// as the docs ask.
    fn license(&mut self, value: &Spanned<String>) -> String {
        let text = self.text(value, "license", 64);
        // An empty one has its error already.
        if !text.is_empty()
            && let Err(e) = spdx::Expression::parse(&text)
        {
            let hint = spdx::imprecise_license_id(&text)
                .map(|(license, _)| format!(" (did you mean {:?}?)", license.name))
                .unwrap_or_default();
            self.error(
                value.span(),
                "license",
                format!(
                    "{text:?} is not an SPDX license expression ({}){hint}; expected an id from \
                     https://spdx.org/licenses such as \"CC-BY-4.0\" or \"CC0-1.0\", or \
                     \"LicenseRef-NAME\" for terms of your own",
                    e.reason
                ),
            );
        }
        text
    }

    fn optional_emoji(&mut self, value: Option<&Spanned<String>>, field: &str) -> Option<String> {
        value.map(|v| self.text(v, field, 8))
    }

    /// A time of day written as the docs say, `HH:MM` (two digits each: "06:30", not "6:30").
    fn clock(&mut self, value: &Spanned<String>, field: &str) -> ClockTime {
        let text = value.get_ref();
        let written_right = text.len() == 5
            && text.as_bytes()[2] == b':'
            && text
                .bytes()
                .enumerate()
                .all(|(i, b)| i == 2 || b.is_ascii_digit());
        match text.parse::<ClockTime>() {
            Ok(time) if written_right => time,
            Ok(time) => {
                self.error(
                    value.span(),
                    field,
                    format!("{text:?}: write times as HH:MM ({time})"),
                );
                time
            }
            Err(message) => {
                self.error(value.span(), field, message);
                ClockTime::default()
            }
        }
    }

    fn integer(&mut self, value: &Spanned<i64>, field: &str, min: i64, max: i64) -> i64 {
        let v = *value.get_ref();
        if !(min..=max).contains(&v) {
            self.error(
                value.span(),
                field,
                format!("{v} is out of range, expected {min}-{max}"),
            );
        }
        v.clamp(min, max)
    }

    fn place(&mut self, value: &Spanned<String>, field: &str, places: &dyn Places) -> String {
        let place = value.get_ref().trim().to_string();
        if let Err(message) = places.check_place(&place) {
            self.error(value.span(), field, message);
        }
        place
    }

    /// Checks that a period of `minutes` from `start` lies within the waking day
    /// `(wake, awake minutes)`, if that day is known.
    fn within_day(
        &mut self,
        span: Range<usize>,
        field: &str,
        start: ClockTime,
        minutes: u16,
        day: Option<(ClockTime, u16)>,
    ) {
        let Some((wake, awake)) = day else { return };
        let offset = wake.minutes_until(start);
        if offset + minutes > awake {
            let end = ClockTime::from_minutes(start.minutes() + minutes);
            let bedtime = ClockTime::from_minutes(wake.minutes() + awake);
            self.error(
                span,
                field,
                format!(
                    "{start}-{end} is not between wake ({wake}) and sleep ({bedtime}); \
                     expected a period within the waking day"
                ),
            );
        }
    }

    fn persona(&mut self, id: String, raw: RawPersona, context: Context<'_>) -> Persona {
        let places = context.places;
        let name = self.text(&raw.name, "name", 64);
        let age = self.integer(&raw.age, "age", 1, 120) as u8;
        if raw.traits.get_ref().is_empty() || raw.traits.get_ref().len() > 8 {
            self.error(
                raw.traits.span(),
                "traits",
                format!("has {} entries, expected 1-8", raw.traits.get_ref().len()),
            );
        }
        let traits = raw
            .traits
            .get_ref()
            .iter()
            .enumerate()
            .map(|(i, t)| self.text(t, &format!("traits[{i}]"), 40))
            .collect();
        let backstory = self.text(&raw.backstory, "backstory", 2000);
        let lifestyle = self.text(&raw.lifestyle, "lifestyle", 500);
        let speech_style = self.text(&raw.speech_style, "speech_style", 300);

        let errors_before = self.errors.len();
        let wake = self.clock(&raw.wake, "wake");
        let sleep = self.clock(&raw.sleep, "sleep");
        if self.errors.len() == errors_before
            && !(WAKE_RANGE.0..=WAKE_RANGE.1).contains(&wake.minutes())
        {
            self.error(
                raw.wake.span(),
                "wake",
                format!("{wake} is out of range, expected a time from 03:00 to 12:00"),
            );
        }
        let awake = wake.minutes_until(sleep);
        if self.errors.len() == errors_before && awake < MIN_AWAKE_MINUTES {
            self.error(
                raw.sleep.span(),
                "sleep",
                format!(
                    "{sleep} is only {}h{:02} after wake ({wake}), expected at least 8 hours later",
                    awake / 60,
                    awake % 60
                ),
            );
        }
        // Periods are checked against the waking day only when that day is itself valid,
        // so one bad `wake` gives one error, not one per visit.
        let day = (self.errors.len() == errors_before).then_some((wake, awake));

        let home = raw.home.get_ref().trim().to_string();
        if let Err(message) = places.check_home(&home) {
            self.error(raw.home.span(), "home", message);
        }

        let work = raw.work.as_ref().map(|w| {
            let place = self.place(&w.place, "work.place", places);
            let start = self.clock(&w.start, "work.start");
            let end = self.clock(&w.end, "work.end");
            let minutes = start.minutes_until(end);
            if minutes == 0 {
                self.error(
                    w.end.span(),
                    "work.end",
                    "equals work.start, expected a later time",
                );
            }
            self.within_day(w.start.span(), "work.start", start, minutes, day);
            Work {
                place,
                start,
                end,
                activity: self.text(&w.activity, "work.activity", 120),
                emoji: self.optional_emoji(w.emoji.as_ref(), "work.emoji"),
            }
        });

        let visits: Vec<Visit> = raw
            .visits
            .get_ref()
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let field = |name: &str| format!("visits[{i}].{name}");
                let at = self.clock(&v.at, &field("at"));
                let minutes = self.integer(&v.minutes, &field("minutes"), 10, 600) as u16;
                self.within_day(v.at.span(), &field("at"), at, minutes, day);
                Visit {
                    place: self.place(&v.place, &field("place"), places),
                    at,
                    minutes,
                    activity: self.text(&v.activity, &field("activity"), 120),
                    emoji: self.optional_emoji(v.emoji.as_ref(), &field("emoji")),
                }
            })
            .collect();

        let home_sector = places.sector_of(&home);
        let mut away: Vec<&str> = work
            .iter()
            .map(|w| w.place.as_str())
            .chain(visits.iter().map(|v| v.place.as_str()))
            .map(|p| places.sector_of(p))
            .filter(|s| *s != home_sector)
            .collect();
        away.sort_unstable();
        away.dedup();
        if away.len() < 2 {
            self.error(
                raw.visits.span(),
                "visits",
                format!(
                    "names {} place(s) other than home ({home_sector}), counting work; \
                     expected at least 2",
                    away.len()
                ),
            );
        }

        let relationships = raw
            .relationships
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let with = r.with.get_ref().trim().to_string();
                if with == id {
                    self.error(
                        r.with.span(),
                        &format!("relationships[{i}].with"),
                        "names this persona itself, expected another persona's id",
                    );
                } else if !context.persona_ids.contains(&with) {
                    self.error(
                        r.with.span(),
                        &format!("relationships[{i}].with"),
                        format!("no persona {with:?} in this folder, expected the id (file name) of another persona"),
                    );
                }
                Relationship {
                    with,
                    kind: self.text(&r.kind, &format!("relationships[{i}].kind"), 40),
                    notes: self.text(&r.notes, &format!("relationships[{i}].notes"), 300),
                }
            })
            .collect();

        let raw_memories = raw
            .memories
            .as_ref()
            .map(|m| m.get_ref().as_slice())
            .unwrap_or_default();
        if let Some(m) = raw.memories.as_ref().filter(|m| m.get_ref().len() > 20) {
            self.error(
                m.span(),
                "memories",
                format!("has {} entries, expected at most 20", m.get_ref().len()),
            );
        }
        let memories = raw_memories
            .iter()
            .enumerate()
            .map(|(i, m)| self.text(m, &format!("memories[{i}]"), 300))
            .collect();

        Persona {
            id,
            name,
            age,
            traits,
            backstory,
            lifestyle,
            speech_style,
            wake,
            sleep,
            home,
            work,
            visits,
            relationships,
            memories,
            author: self.text(&raw.author, "author", 100),
            license: self.license(&raw.license),
        }
    }
}
