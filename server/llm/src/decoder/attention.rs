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
pub(super) fn attend(q: &[f32], shape: &Shape, items: &[Attend<'_>]) -> Vec<f32> {
    let Shape {
        heads,
        kv_heads,
        head_dim: hd,
        rows,
        window,
    } = *shape;
    let group = heads / kv_heads;
    // Which sequence each query row belongs to.
    let mut owner = vec![0usize; rows];
    for (s, item) in items.iter().enumerate() {
        owner[item.start..item.start + item.len].fill(s);
    }
    let results = parallel::map(heads * rows, |r| {
        let (h, i) = (r / rows, r % rows);
        let item = &items[owner[i]];
        let local = i - item.start;
        let g = h / group;
        let query = &q[r * hd..(r + 1) * hd];
        let qp = item.chunk.positions[local];
        let visible = |kp: usize| kp <= qp && window.is_none_or(|w| qp - kp < w);
        let at = |j: usize| (j * kv_heads + g) * hd..(j * kv_heads + g + 1) * hd;
        // (run index, entry, score); the chunk is run `past.len()`.
        let mut scores: Vec<(usize, usize, f32)> = Vec::new();
        for (n, run) in item.past.iter().enumerate() {
            for (j, &kp) in run.positions.iter().enumerate() {
                if visible(kp) {
                    scores.push((n, j, dot(query, &run.keys[at(j)])));
                }
            }
        }
        let chunk = item.past.len();
        for j in 0..=local {
            let same_segment = item.segments.is_none_or(|s| s[j] == s[local]);
            if same_segment && visible(item.chunk.positions[j]) {
                scores.push((chunk, j, dot(query, &item.chunk.keys[at(j)])));
            }
        }
        let max = scores.iter().map(|s| s.2).fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for s in &mut scores {
            s.2 = (s.2 - max).exp();
            sum += s.2;
        }
        let mut out = vec![0f32; hd];
        for (n, j, p) in scores {
            let run = item.past.get(n).unwrap_or(&item.chunk);
            let w = p / sum;
            for (o, x) in out.iter_mut().zip(&run.values[at(j)]) {
                *o += w * x;
            }
        }
        out
    });
    // (heads, rows, hd) -> (rows, heads * hd)
    let mut out = vec![0f32; rows * heads * hd];
    for (r, values) in results.into_iter().enumerate() {
        let (h, i) = (r / rows, r % rows);
        out[(i * heads + h) * hd..][..hd].copy_from_slice(&values);
    }
    out
}
