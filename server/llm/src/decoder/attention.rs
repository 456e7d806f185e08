//! Attention for every sequence of a pass at once, in a fixed summation order for every
//! (head, query) row, so a row's result depends only on its own sequence: the same request
//! gives the same bits alone, in a batch of 16, or continued from a cached prefix.
//!
//! (A BLAS-style matmul blocks its sums differently for different matrix sizes; the last-bit
//! differences then flip the rounding of quantised activations and grew to whole logits over
//! 18 layers, so a prompt run in one chunk and the same prompt continued from the prefix cache
//! once gave different text for one seed.)

use super::cache::Run;
use crate::kernels::{dot, parallel};

/// What one sequence's queries attend to in one layer.
pub(super) struct Attend<'a> {
    /// First row of this sequence among the pass's query rows, and how many it has.
    pub start: usize,
    pub len: usize,
    /// Entries cached before this chunk, in order.
    pub past: Vec<Run<'a>>,
    /// The chunk's own keys and values, one entry per query row.
    pub chunk: Run<'a>,
    /// Chunk rows see earlier chunk rows of their own segment only (candidate scoring).
    pub segments: Option<&'a [u32]>,
}

/// Shape of the pass: `q` is `(heads, rows, head_dim)`, already scaled.
pub(super) struct Shape {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub rows: usize,
    /// Keys older than this many positions are hidden (sliding layers).
    pub window: Option<usize>,
}

/// Returns `(rows, heads * head_dim)`.
///
/// One task per (sequence, key-value head, query): the query heads that share a key-value
/// head (grouped-query attention: Gemma 3 270M has 4 per key-value head) go through its keys
/// and values together, so each is read once, not once per query head.
pub(super) fn attend(q: &[f32], shape: &Shape, items: &[Attend<'_>]) -> Vec<f32> {
    let Shape {
        heads,
        kv_heads,
        head_dim: hd,
        rows,
        window,
    } = *shape;
    let group = heads / kv_heads;
    let tasks: Vec<(usize, usize, usize)> = (items.iter().enumerate())
        .flat_map(|(s, item)| {
            (0..kv_heads).flat_map(move |g| (0..item.len).map(move |local| (s, g, local)))
        })
        .collect();
    let results = parallel::map(tasks.len(), |t| {
        let (s, g, local) = tasks[t];
        let item = &items[s];
        let i = item.start + local;
        let queries: Vec<&[f32]> = (0..group)
            .map(|k| &q[((g * group + k) * rows + i) * hd..][..hd])
            .collect();
        let qp = item.chunk.positions[local];
        let visible = |kp: usize| kp <= qp && window.is_none_or(|w| qp - kp < w);
        let at = |j: usize| (j * kv_heads + g) * hd..(j * kv_heads + g + 1) * hd;
        // The keys this query sees, in cache order: (run, entry); the chunk is run `past.len()`.
        let chunk = item.past.len();
        let mut seen: Vec<(usize, usize)> = Vec::new();
        for (n, run) in item.past.iter().enumerate() {
            seen.extend(
                (run.positions.iter().enumerate())
                    .filter(|(_, kp)| visible(**kp))
                    .map(|(j, _)| (n, j)),
            );
        }
        seen.extend(
            (0..=local)
                .filter(|&j| {
                    item.segments.is_none_or(|s| s[j] == s[local])
                        && visible(item.chunk.positions[j])
                })
                .map(|j| (chunk, j)),
        );
        let run = |n: usize| item.past.get(n).unwrap_or(&item.chunk);
        // Scores, head-major: scores[k * seen.len() + e].
        let mut scores = vec![0f32; group * seen.len()];
        for (e, &(n, j)) in seen.iter().enumerate() {
            let key = &run(n).keys[at(j)];
            for (k, query) in queries.iter().enumerate() {
                scores[k * seen.len() + e] = dot(query, key);
            }
        }
        let mut sums = vec![0f32; group];
        for (k, sum) in sums.iter_mut().enumerate() {
            let head = &mut scores[k * seen.len()..(k + 1) * seen.len()];
            let max = head.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            for s in head.iter_mut() {
                *s = (*s - max).exp();
                *sum += *s;
            }
        }
        let mut out = vec![0f32; group * hd];
        for (e, &(n, j)) in seen.iter().enumerate() {
            let value = &run(n).values[at(j)];
            for k in 0..group {
                let w = scores[k * seen.len() + e] / sums[k];
                for (o, x) in out[k * hd..(k + 1) * hd].iter_mut().zip(value) {
                    *o += w * x;
                }
            }
        }
        out
    });
    // Per task, `group` heads of `hd` -> (rows, heads * hd)
    let mut out = vec![0f32; rows * heads * hd];
    for (&(s, g, local), values) in tasks.iter().zip(results) {
        let i = items[s].start + local;
        let first = (i * heads + g * group) * hd;
        out[first..first + group * hd].copy_from_slice(&values);
    }
    out
}
