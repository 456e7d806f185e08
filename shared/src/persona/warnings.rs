//! What a valid persona does that its author may not expect, said as warnings by
//! `persona check` and at the start of every run: periods the routine moves because they
//! overlap, and personas who would sleep in one bed.

use super::{Persona, PersonaError, Places};
use crate::ClockTime;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn warning(file: &Path, field: String, message: String) -> PersonaError {
    PersonaError {
        file: file.to_path_buf(),
        line: 0,
        field,
        message,
    }
}

/// Periods (work and visits) that start before the one before them ends: the routine starts
/// such a period when the earlier one ends, keeping its length, and cuts it short at sleep (a
/// 12:30 lunch inside 08:00-17:00 work runs at 17:00).
pub fn schedule_warnings(persona: &Persona, file: &Path) -> Vec<PersonaError> {
    let after_wake = |clock: ClockTime| persona.wake.minutes_until(clock);
    let mut periods: Vec<(u16, u16, String)> = (persona.work.iter())
        .map(|w| {
            let minutes = w.start.minutes_until(w.end);
            (after_wake(w.start), minutes, "work".to_string())
        })
        .chain(
            persona
                .visits
                .iter()
                .enumerate()
                .map(|(i, v)| (after_wake(v.at), v.minutes, format!("visits[{i}]"))),
        )
        .collect();
    periods.sort_by_key(|p| p.0);
    let clock = |after: u16| ClockTime::from_minutes(persona.wake.minutes() + after);
    let awake = persona.awake_minutes();
    let mut warnings = Vec::new();
    // As the routine runs them: from, until, field.
    let mut previous: Option<(u16, u16, &str)> = None;
    for (start, minutes, field) in &periods {
        let mut from = *start;
        if let Some((earlier_from, earlier_until, earlier)) = previous
            && earlier_until > *start
        {
            from = earlier_until;
            let cut = if from + minutes > awake {
                format!(", cut short at sleep ({})", persona.sleep)
            } else {
                String::new()
            };
            warnings.push(warning(
                file,
                field.clone(),
                format!(
                    "starts at {} while {earlier} ({}-{}) is under way: it will run from {}{cut}; \
                     move it, or shorten {earlier}",
                    clock(*start),
                    clock(earlier_from),
                    clock(earlier_until),
                    clock(from),
                ),
            ));
        }
        previous = Some((from, (from + minutes).min(awake), field));
    }
    warnings
}

/// Kinds of relationship whose two people may share a bed.
const COUPLES: &[&str] = &["spouse", "partner", "husband", "wife"];

/// Whether `a` names `b` (or `b` names `a`) as its spouse or partner.
fn couple(a: &Persona, b: &Persona) -> bool {
    let names = |x: &Persona, y: &Persona| {
        (x.relationships.iter())
            .any(|r| r.with == y.id && COUPLES.iter().any(|k| r.kind.to_lowercase().contains(k)))
    };
    names(a, b) || names(b, a)
}

/// Personas whose homes hold the same bed (the first bed of the place, where the agent
/// sleeps) and who are not a couple: `home = "Maple Hill Dormitory"` puts a second persona in
/// the first room's bed.
pub fn shared_bed_warnings(
    personas: &[(Persona, PathBuf)],
    places: &dyn Places,
) -> Vec<PersonaError> {
    let mut first_in: BTreeMap<String, &Persona> = BTreeMap::new();
    let mut warnings = Vec::new();
    for (persona, file) in personas {
        let Some(bed) = places.bed_of(&persona.home) else {
            continue;
        };
        match first_in.get(&bed) {
            Some(other) if couple(persona, other) => {}
            Some(other) => warnings.push(warning(
                file,
                "home".into(),
                format!(
                    "{:?} puts {} in {}'s bed ({bed}): name a room of its own (only a spouse \
                     or partner shares one)",
                    persona.home, persona.id, other.id
                ),
            )),
            None => {
                first_in.insert(bed, persona);
            }
        }
    }
    warnings
}
