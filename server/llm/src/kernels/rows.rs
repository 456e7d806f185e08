//! Activations quantised per row for the integer matmul kernels, as ggml does for `Q5_0` and
//! `Q8_0` weights (`Q8_0`: per 32 values, scale `max|x| / 127`, round to nearest), so the
//! integer sums are llama.cpp's. Each row is quantised alone: its blocks do not depend on the
//! other rows of a batch.

use half::f16;

pub(super) const BLOCK: usize = 32;

/// Activations quantised per row into 32-value blocks.
pub(super) struct Int8Rows {
    pub(super) quants: Vec<[i8; BLOCK]>,
    pub(super) scales: Vec<f32>,
    /// Per block, `2 * sum(q)`: the weights' `+16` offset spread over the 8 lanes of a sum.
    pub(super) offsets: Vec<i32>,
}

impl Int8Rows {
    /// ggml's `quantize_row_q8_0`: per 32 values, scale `max|x| / 127`, round to nearest.
    pub(super) fn quantize(x: &[f32], m: usize, k: usize) -> Self {
        let blocks = m * k / BLOCK;
        let mut rows = Self {
            quants: Vec::with_capacity(blocks),
            scales: Vec::with_capacity(blocks),
            offsets: Vec::with_capacity(blocks),
        };
        for values in x.chunks_exact(BLOCK) {
            let amax = values.iter().fold(0f32, |a, v| a.max(v.abs()));
            // ggml stores the scale as f16; round-trip it so the sums match llama.cpp's.
            let scale = f16::from_f32(amax / 127.0).to_f32();
            let inverse = if amax > 0.0 { 127.0 / amax } else { 0.0 };
            let quants: [i8; BLOCK] = std::array::from_fn(|i| (values[i] * inverse).round() as i8);
            let sum: i32 = quants.iter().map(|&q| i32::from(q)).sum();
            rows.quants.push(quants);
            rows.scales.push(scale);
            rows.offsets.push(2 * sum);
        }
        rows
    }
}
