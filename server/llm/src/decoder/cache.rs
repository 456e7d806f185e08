//! Keys and values of one sequence: read-only blocks shared with other sequences (a prompt
//! prefix computed once), then the sequence's own entries.
//!
//! Entries are stored token-major, `kv_heads * head_dim` floats per entry and layer, so a
//! chunk's keys are appended without copying what is already there and a block is frozen
//! (made shareable) by moving it behind an `Arc`, not by copying it.

use std::sync::Arc;

/// Shared chains longer than this are copied into one block, so attention walks few blocks.
const MAX_SHARED_BLOCKS: usize = 4;

/// A run of cached entries: per layer, `positions.len()` rows of keys and of values.
#[derive(Clone, Debug, Default)]
pub struct KvBlock {
    pub(super) keys: Vec<Vec<f32>>,
    pub(super) values: Vec<Vec<f32>>,
    pub(super) positions: Vec<usize>,
}

impl KvBlock {
    fn empty(layers: usize) -> Self {
        Self {
            keys: vec![Vec::new(); layers],
            values: vec![Vec::new(); layers],
            positions: Vec::new(),
        }
    }

    pub(super) fn truncate(&mut self, len: usize, row: usize) {
        for buffer in self.keys.iter_mut().chain(&mut self.values) {
            buffer.truncate(len * row);
        }
        self.positions.truncate(len);
    }

    fn bytes(&self) -> usize {
        (self.keys.iter().chain(&self.values))
            .map(|b| b.capacity() * 4)
            .sum()
    }
}

/// Frozen blocks, root first, with how many entries of each are used: a prefix that any
/// number of sequences may read at once.
#[derive(Clone, Debug, Default)]
pub struct SharedKv {
    blocks: Vec<(Arc<KvBlock>, usize)>,
}

impl SharedKv {
    pub fn len(&self) -> usize {
        self.blocks.iter().map(|(_, n)| n).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `len` entries.
    pub fn prefix(&self, len: usize) -> SharedKv {
        let mut left = len;
        let mut blocks = Vec::new();
        for (block, used) in &self.blocks {
            if left == 0 {
                break;
            }
            let take = (*used).min(left);
            blocks.push((block.clone(), take));
            left -= take;
        }
        SharedKv { blocks }
    }

    /// Bytes of the blocks this prefix keeps alive, each counted once by `seen` (block
    /// addresses), so prefixes that share blocks are not counted twice.
    pub fn bytes_unseen(&self, seen: &mut Vec<usize>) -> usize {
        let mut total = 0;
        for (block, _) in &self.blocks {
            let address = Arc::as_ptr(block) as usize;
            if !seen.contains(&address) {
                seen.push(address);
                total += block.bytes();
            }
        }
        total
    }
}

/// The cache of one sequence.
#[derive(Clone, Debug)]
pub struct KvCache {
    shared: SharedKv,
    pub(super) own: KvBlock,
    /// Floats per entry and layer: `kv_heads * head_dim`.
    pub(super) row: usize,
}

/// One stretch of a cache as attention reads it, for one layer.
pub(super) struct Run<'a> {
    pub keys: &'a [f32],
    pub values: &'a [f32],
    pub positions: &'a [usize],
}

impl KvCache {
    pub(super) fn new(layers: usize, row: usize) -> Self {
        Self {
            shared: SharedKv::default(),
            own: KvBlock::empty(layers),
            row,
        }
    }

    /// A cache that starts with `prefix` (read, never copied).
    pub fn with_prefix(&self, prefix: SharedKv) -> Self {
        Self {
            shared: prefix,
            own: KvBlock::empty(self.own.keys.len()),
            row: self.row,
        }
    }

    pub fn len(&self) -> usize {
        self.shared.len() + self.own.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Position of the last entry.
    pub fn last_position(&self) -> Option<usize> {
        (self.own.positions.last())
            .or_else(|| {
                let (block, used) = self.shared.blocks.last()?;
                block.positions.get(used.checked_sub(1)?)
            })
            .copied()
    }

    /// Forgets everything after the first `len` entries.
    pub fn truncate(&mut self, len: usize) {
        let shared = self.shared.len();
        if len >= shared {
            self.own.truncate(len - shared, self.row);
        } else {
            self.shared = self.shared.prefix(len);
            self.own.truncate(0, self.row);
        }
    }

    /// Makes every entry shareable: the own entries become a frozen block (moved, not
    /// copied) and the cache goes on with an empty own part. Returns the shared prefix.
    pub fn freeze(&mut self) -> SharedKv {
        if !self.own.positions.is_empty() {
            let layers = self.own.keys.len();
            let own = std::mem::replace(&mut self.own, KvBlock::empty(layers));
            let used = own.positions.len();
            self.shared.blocks.push((Arc::new(own), used));
        }
        if self.shared.blocks.len() > MAX_SHARED_BLOCKS {
            self.shared = self.flattened();
        }
        self.shared.clone()
    }

    /// The shared chain copied into one block.
    fn flattened(&self) -> SharedKv {
        let layers = self.own.keys.len();
        let mut block = KvBlock::empty(layers);
        for (part, used) in &self.shared.blocks {
            for layer in 0..layers {
                block.keys[layer].extend_from_slice(&part.keys[layer][..used * self.row]);
                block.values[layer].extend_from_slice(&part.values[layer][..used * self.row]);
            }
            block.positions.extend_from_slice(&part.positions[..*used]);
        }
        let used = block.positions.len();
        SharedKv {
            blocks: vec![(Arc::new(block), used)],
        }
    }

    /// Bytes of the own entries' buffers (shared blocks are counted where they are kept).
    pub fn own_bytes(&self) -> usize {
        self.own.bytes()
    }

    /// The stretches of `layer` in entry order: shared blocks, then the own entries.
    pub(super) fn runs(&self, layer: usize) -> Vec<Run<'_>> {
        let row = self.row;
        (self.shared.blocks.iter().map(|(b, used)| (&**b, *used)))
            .chain(std::iter::once((&self.own, self.own.positions.len())))
            .map(|(block, used)| Run {
                keys: &block.keys[layer][..used * row],
                values: &block.values[layer][..used * row],
                positions: &block.positions[..used],
            })
            .collect()
    }

    /// Appends a chunk's keys and values for `layer` (`rows * row` floats each).
    pub(super) fn append(&mut self, layer: usize, keys: &[f32], values: &[f32]) {
        self.own.keys[layer].extend_from_slice(keys);
        self.own.values[layer].extend_from_slice(values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(layers: usize, row: usize, positions: std::ops::Range<usize>) -> KvCache {
        let mut cache = KvCache::new(layers, row);
        for p in positions {
            for layer in 0..layers {
                let value = vec![p as f32 + layer as f32 * 0.5; row];
                cache.append(layer, &value, &value);
            }
            cache.own.positions.push(p);
        }
        cache
    }

    fn keys(cache: &KvCache, layer: usize) -> Vec<f32> {
        cache
            .runs(layer)
            .iter()
            .flat_map(|r| r.keys.to_vec())
            .collect()
    }

    #[test]
    fn a_frozen_prefix_reads_the_same_as_the_cache_it_came_from() {
        let mut cache = filled(2, 3, 0..5);
        let before = keys(&cache, 1);
        let shared = cache.freeze();
        assert_eq!(shared.len(), 5);
        assert_eq!(
            keys(&cache, 1),
            before,
            "freezing moves, it does not change"
        );
        let other = cache.with_prefix(shared.prefix(3));
        assert_eq!(other.len(), 3);
        assert_eq!(keys(&other, 1), before[..9]);
        assert_eq!(other.last_position(), Some(2));
        let positions: Vec<usize> = (other.runs(0).iter())
            .flat_map(|r| r.positions.to_vec())
            .collect();
        assert_eq!(positions, [0, 1, 2]);
    }

    #[test]
    fn truncating_cuts_own_entries_then_shared_ones() {
        let mut cache = filled(1, 2, 0..4);
        cache.freeze();
        for layer in 0..1 {
            cache.append(layer, &[9.0, 9.0], &[9.0, 9.0]);
        }
        cache.own.positions.push(4);
        assert_eq!(cache.len(), 5);
        cache.truncate(4);
        assert_eq!((cache.len(), cache.last_position()), (4, Some(3)));
        cache.truncate(2);
        assert_eq!((cache.len(), cache.last_position()), (2, Some(1)));
        assert_eq!(keys(&cache, 0), [0.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn long_chains_are_flattened_without_changing_what_is_read() {
        let mut cache = filled(1, 1, 0..1);
        for p in 1..=MAX_SHARED_BLOCKS + 2 {
            cache.freeze();
            cache.append(0, &[p as f32], &[p as f32]);
            cache.own.positions.push(p);
        }
        let before = keys(&cache, 0);
        let shared = cache.freeze();
        assert!(shared.blocks.len() <= MAX_SHARED_BLOCKS);
        assert_eq!(keys(&cache, 0), before);
        let mut seen = Vec::new();
        let bytes = shared.bytes_unseen(&mut seen);
        assert!(bytes > 0);
        assert_eq!(
            shared.bytes_unseen(&mut seen),
            0,
            "each block is counted once"
        );
    }
}
