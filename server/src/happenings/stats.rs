use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// What a sink has written: counts by kind and a hash of the exact bytes of the stream.
#[derive(Clone, Debug, Default)]
pub struct LogStats {
    pub events: u64,
    pub by_kind: BTreeMap<String, u64>,
    pub bytes: u64,
    hasher: Sha256,
}

impl LogStats {
    /// Accounts for one serialised line (without its newline).
    pub fn add_line(&mut self, kind: &str, line: &[u8]) {
        self.events += 1;
        *self.by_kind.entry(kind.to_string()).or_default() += 1;
        self.bytes += line.len() as u64 + 1;
        self.hasher.update(line);
        self.hasher.update(b"\n");
    }

    /// SHA-256 (hex) of every line so far: equal for equal event streams, byte for byte.
    pub fn determinism_hash(&self) -> String {
        self.hasher
            .clone()
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
