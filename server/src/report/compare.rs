//! `--compare`: where two runs' logs part. Both logs are streamed side by side, line by
//! line, so the first differing event is found without holding either.

use super::page::escape;
use agora_shared::events::{Event, EventRecord, LogReader};
use std::path::Path;

/// How two logs relate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Divergence {
    /// Byte for byte the same, `lines` long.
    Identical { lines: usize },
    /// They part at `line` (1-based); `a` and `b` are that line of each (`None`: the log had
    /// ended).
    Differ {
        line: usize,
        a: Option<String>,
        b: Option<String>,
    },
}

impl Divergence {
    pub fn to_html(&self) -> String {
        match self {
            Divergence::Identical { lines } => {
                format!("<p>The two logs are identical ({lines} lines).</p>")
            }
            Divergence::Differ { line, a, b } => {
                let show = |l: &Option<String>| {
                    l.as_deref()
                        .map_or("(the log had ended)".into(), |l| escape(l.trim_end()))
                };
                format!(
                    "<p>The logs part at line {line}, the first event that differs:</p>\
                     <p>A: <code>{}</code></p><p>B: <code>{}</code></p>",
                    show(a),
                    show(b)
                )
            }
        }
    }
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Divergence::Identical { lines } => write!(f, "the logs are identical ({lines} lines)"),
            Divergence::Differ { line, a, b } => {
                let show = |l: &Option<String>| {
                    l.as_deref()
                        .map_or("(ended)".to_string(), |l| l.trim_end().to_string())
                };
                write!(
                    f,
                    "the logs part at line {line}:\n  A: {}\n  B: {}",
                    show(a),
                    show(b)
                )
            }
        }
    }
}

/// The first line where the logs at `a` and `b` differ. Two `run_started` lines are taken
/// as equal: they differ by the runs' inputs (the report's header shows those), and what an
/// A/B experiment asks is which event its change altered first.
pub fn first_difference(a: &Path, b: &Path) -> Result<Divergence, String> {
    let (mut ra, mut rb) = (LogReader::open(a)?, LogReader::open(b)?);
    let mut number = 0;
    loop {
        number += 1;
        let la = ra.next_raw()?.map(str::to_string);
        let lb = rb.next_raw()?.map(str::to_string);
        match (la, lb) {
            (None, None) => {
                return Ok(Divergence::Identical { lines: number - 1 });
            }
            (Some(la), Some(lb)) if number == 1 && is_run_started(&la) && is_run_started(&lb) => {}
            (la, lb) if la != lb => {
                return Ok(Divergence::Differ {
                    line: number,
                    a: la,
                    b: lb,
                });
            }
            _ => {}
        }
    }
}

fn is_run_started(line: &str) -> bool {
    serde_json::from_str::<EventRecord>(line)
        .is_ok_and(|r| matches!(r.event, Event::RunStarted { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_line_that_differs_or_ends() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let a = write("a", "one\ntwo\nthree\n");
        let b = write("b", "one\ntwo\nTHREE\n");
        let c = write("c", "one\ntwo\n");
        assert_eq!(
            first_difference(&a, &b).unwrap(),
            Divergence::Differ {
                line: 3,
                a: Some("three\n".into()),
                b: Some("THREE\n".into())
            }
        );
        assert_eq!(
            first_difference(&a, &c).unwrap(),
            Divergence::Differ {
                line: 3,
                a: Some("three\n".into()),
                b: None
            }
        );
        assert_eq!(
            first_difference(&a, &a).unwrap(),
            Divergence::Identical { lines: 3 }
        );
    }
}
