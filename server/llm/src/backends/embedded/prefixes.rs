//! Prompt prefixes already computed: a new prompt that starts like an earlier one reads the
//! earlier one's keys and values (shared, read-only) and computes only the rest. The town's
//! common prompt head and each persona's preamble are computed once this way.

use crate::decoder::SharedKv;

/// Prefixes shorter than this are not worth looking up.
pub const MIN_CACHED_PREFIX: usize = 8;

/// Recent prompts and their caches, least recently used first out, within a byte budget.
pub struct PrefixCache {
    entries: Vec<Entry>,
    budget: usize,
    clock: u64,
}

struct Entry {
    tokens: Vec<u32>,
    kv: SharedKv,
    used: u64,
}

impl PrefixCache {
    pub fn new(budget: usize) -> Self {
        Self {
            entries: Vec::new(),
            budget,
            clock: 0,
        }
    }

    /// The longest cached prefix of `ids`, at most `limit` tokens (and at least
    /// [`MIN_CACHED_PREFIX`]), shared, not copied.
    pub fn lookup(&mut self, ids: &[u32], limit: usize) -> Option<SharedKv> {
        self.clock += 1;
        let (index, shared) = (self.entries.iter().enumerate())
            .map(|(i, e)| (i, common_prefix(&e.tokens, ids).min(limit)))
            .max_by_key(|&(_, n)| n)?;
        if shared < MIN_CACHED_PREFIX {
            return None;
        }
        self.entries[index].used = self.clock;
        Some(self.entries[index].kv.prefix(shared))
    }

    /// Keeps `kv`, the cache of prompt `ids`, then evicts the least recently used prompts
    /// until the blocks kept alive fit the budget.
    pub fn store(&mut self, ids: &[u32], kv: SharedKv) {
        self.clock += 1;
        if ids.len() < MIN_CACHED_PREFIX {
            return;
        }
        if let Some(entry) = self.entries.iter_mut().find(|e| e.tokens == ids) {
            entry.used = self.clock;
            return;
        }
        self.entries.push(Entry {
            tokens: ids.to_vec(),
            kv,
            used: self.clock,
        });
        while self.bytes() > self.budget && !self.entries.is_empty() {
            let oldest = (0..self.entries.len())
                .min_by_key(|&i| self.entries[i].used)
                .unwrap_or(0);
            self.entries.swap_remove(oldest);
        }
    }

    /// Bytes of the blocks the entries keep alive, each block counted once.
    pub fn bytes(&self) -> usize {
        let mut seen = Vec::new();
        (self.entries.iter())
            .map(|e| e.kv.bytes_unseen(&mut seen))
            .sum()
    }
}

/// How many leading tokens `a` and `b` share.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
