//! Reading an event log: line by line with a bound on each line, every line told apart as an
//! event, a kind from a newer version, a damaged line, or a last line cut off mid-write. The
//! run report, the log comparison and the replay viewer all read logs through this.

use super::{Event, EventRecord};
use serde::Deserialize;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// A line longer than this is no event: the log is refused rather than held in memory.
pub const MAX_LINE_BYTES: u64 = 4 << 20;

/// One line of a log.
#[derive(Debug)]
pub enum Line {
    Event(EventRecord),
    /// An event of a kind this version does not know (a newer log's).
    UnknownKind(String),
    /// Not an event.
    Malformed,
    /// The last line, without its newline and not an event: the run stopped mid-write.
    Cut,
}

/// A log being read.
pub struct LogReader {
    reader: BufReader<File>,
    path: PathBuf,
    line: String,
    /// Lines read so far.
    pub lines: usize,
    /// Bytes read so far.
    pub bytes: u64,
    /// The file's length when opened.
    pub total: u64,
}

#[derive(Deserialize)]
struct KindOnly {
    kind: String,
}

impl LogReader {
    pub fn open(path: &Path) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self {
            reader: BufReader::with_capacity(1 << 20, file),
            path: path.to_path_buf(),
            line: String::new(),
            lines: 0,
            bytes: 0,
            total,
        })
    }

    /// The next line as written (with its newline, if it has one); `None` at the end. A line
    /// over [`MAX_LINE_BYTES`] is an error naming the file and line.
    pub fn next_raw(&mut self) -> Result<Option<&str>, String> {
        self.line.clear();
        let n = (&mut self.reader)
            .take(MAX_LINE_BYTES)
            .read_line(&mut self.line)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        if n == 0 {
            return Ok(None);
        }
        self.lines += 1;
        self.bytes += n as u64;
        if n as u64 == MAX_LINE_BYTES && !self.line.ends_with('\n') {
            return Err(format!(
                "{}:{}: a line longer than {MAX_LINE_BYTES} bytes: not an event log",
                self.path.display(),
                self.lines
            ));
        }
        Ok(Some(&self.line))
    }

    /// The next line, told apart; `None` at the end.
    pub fn next_line(&mut self) -> Result<Option<Line>, String> {
        let Some(raw) = self.next_raw()? else {
            return Ok(None);
        };
        let complete = raw.ends_with('\n');
        let raw = raw.trim_end();
        Ok(Some(match serde_json::from_str::<EventRecord>(raw) {
            Ok(record) => Line::Event(record),
            Err(_) if !complete => Line::Cut,
            Err(_) => match serde_json::from_str::<KindOnly>(raw) {
                Ok(k) if !Event::KINDS.contains(&k.kind.as_str()) => Line::UnknownKind(k.kind),
                _ => Line::Malformed,
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let text = [
            r#"{"tick":0,"time":0,"kind":"day_phase","phase":"night"}"#,
            r#"{"tick":1,"time":0,"kind":"weather","rain":true}"#,
            "not json",
            r#"{"tick":2,"time":0,"kind":"day_ph"#,
        ]
        .join("\n");
        std::fs::write(&path, text).unwrap();
        let mut log = LogReader::open(&path).unwrap();
        let mut lines = Vec::new();
        while let Some(line) = log.next_line().unwrap() {
            lines.push(line);
        }
        assert!(matches!(&lines[0], Line::Event(r) if r.event.kind() == "day_phase"));
        assert!(matches!(&lines[1], Line::UnknownKind(k) if k == "weather"));
        assert!(matches!(lines[2], Line::Malformed));
        assert!(matches!(lines[3], Line::Cut));
        assert_eq!((log.lines, log.bytes), (4, log.total));
    }

    #[test]
    fn a_runaway_line_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, vec![b'x'; MAX_LINE_BYTES as usize + 10]).unwrap();
        let error = LogReader::open(&path).unwrap().next_raw().unwrap_err();
        assert!(error.contains(":1: a line longer than"), "{error}");
        let missing = LogReader::open(&dir.path().join("none")).err().unwrap();
        assert!(missing.starts_with("cannot read"), "{missing}");
    }
}
