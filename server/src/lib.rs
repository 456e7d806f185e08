//! The Agora world server: a town of generative agents in a Bevy ECS world.
//!
//! The module tree is the plugin tree, and the modules are layered: each imports only from
//! the layers below it (docs/architecture.md; the test at the end of this file checks it).
//! Bottom first:
//!
//! - [`schedule`] (the tick's sets), [`time`] (the game clock);
//! - [`happenings`]: what happened, as messages; the event log is one reader;
//! - [`world`]: the map, paths, walking, who stands where;
//! - [`actors`]: what players and agents both do (move, say, use, teams), one set of rules;
//! - [`agents`]: agents from personas, their brains; [`memory`], each agent's memory stream;
//!   then [`cognition`];
//! - adapters: [`net`] (players over UDP), [`persist`] (SQLite);
//! - [`app`], which builds the app for [`sim`] and [`serve`] (the runs); [`eval`], the paper's
//!   checks; [`report`], a run's pictures; and [`cli`].

/// The commit this server was built from, `-modified` when its code differed from it
/// (`build.rs`): what makes a run reproducible along with its inputs.
pub const COMMIT: &str = env!("AGORA_COMMIT");
/// `--version`: the release and the commit.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("AGORA_COMMIT"), ")");

pub mod actors;
pub mod agents;
pub mod app;
pub mod cli;
pub mod cognition;
pub mod eval;
pub mod happenings;
pub mod memory;
pub mod net;
pub mod persist;
pub mod report;
pub mod schedule;
pub mod serve;
pub mod sim;
pub mod time;
pub mod world;

pub use app::{ServerApp, WorldSetup};
pub use schedule::TickSystems;

use bevy::prelude::*;

/// The world's plugins: everything but the adapters (network, persistence), which
/// [`ServerApp`] adds on request.
pub fn plugin(app: &mut App) {
    app.add_plugins((
        schedule::plugin,
        time::plugin,
        happenings::plugin,
        world::plugin,
        actors::plugin,
        agents::plugin,
        cognition::plugin,
    ));
}

/// The dependency rule, checked: each top-level module imports only from layers below its
/// own (docs/architecture.md). A module's rank is its layer; equal ranks may not import each
/// other, so no two modules form a cycle.
#[cfg(test)]
mod layers {
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Every top-level module and its layer, bottom first.
    const LAYERS: &[(&str, u32)] = &[
        ("schedule", 0),
        ("time", 1),
        ("happenings", 2),
        ("world", 3),
        ("actors", 4),
        ("agents", 5),
        ("memory", 6),
        ("cognition", 7),
        ("net", 8),
        ("persist", 8),
        ("app", 9),
        ("sim", 10),
        ("eval", 11),
        ("serve", 10),
        ("report", 12),
        ("cli", 13),
    ];

    fn rank(module: &str) -> Option<u32> {
        LAYERS.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
    }

    fn identifier(text: &str) -> String {
        text.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    }

    /// The top-level modules a source text names with `crate::` (`crate::{a, b::C}` too).
    /// Paths that reach the root by `super::` are not seen; none exist, keep it so.
    fn imports(text: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for (at, _) in text.match_indices("crate::") {
            let rest = &text[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // The group's top-level items, up to its closing brace.
                let (mut depth, mut start) = (0, 0);
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            names.insert(identifier(&group[start..i]));
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            names.insert(identifier(&group[start..i]));
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
            } else {
                names.insert(identifier(rest));
            }
        }
        names.retain(|name| !name.is_empty() && name != "self");
        names
    }

    #[test]
    fn grouped_imports_are_seen() {
        let names = imports("use crate::{net, world::{A, B}, actors::X};\nuse crate::time::T;");
        let expected = ["actors", "net", "time", "world"].map(String::from);
        assert_eq!(names, BTreeSet::from(expected));
    }

    fn sources(path: &Path, out: &mut Vec<(String, String)>) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                sources(&entry.unwrap().path(), out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(path).unwrap();
            out.push((path.display().to_string(), text));
        }
    }

    #[test]
    fn modules_import_only_from_layers_below() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut broken = Vec::new();
        let mut seen = BTreeSet::new();
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let module = path.file_stem().unwrap().to_string_lossy().into_owned();
            if matches!(module.as_str(), "lib" | "main") {
                continue;
            }
            let own = rank(&module)
                .unwrap_or_else(|| panic!("module {module} has no layer: add it to LAYERS"));
            seen.insert(module.clone());
            let mut files = Vec::new();
            sources(&path, &mut files);
            for (file, text) in files {
                for import in imports(&text) {
                    // The crate root's own items: the world's plugin (for the app builder)
                    // and what the build is (for any layer).
                    let below = match rank(&import) {
                        Some(r) => r < own || import == module,
                        None => {
                            (import == "plugin" && module == "app")
                                || matches!(import.as_str(), "COMMIT" | "VERSION")
                        }
                    };
                    if !below {
                        broken.push(format!("{file}: crate::{import}"));
                    }
                }
            }
        }
        assert!(
            broken.is_empty(),
            "imports from the same or a higher layer:\n{}",
            broken.join("\n")
        );
        // The test sees every module it ranks.
        let ranked: BTreeSet<String> = LAYERS.iter().map(|(m, _)| m.to_string()).collect();
        assert_eq!(seen, ranked);
    }
}
