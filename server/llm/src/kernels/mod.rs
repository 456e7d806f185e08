//! The arithmetic under the forward pass: quantised matmuls, activations, the thread pool.

pub mod activation;
pub mod int5;
pub mod int8;
pub mod linear;
pub mod parallel;
mod rows;

use candle_core::{Device, Result, Tensor};

/// `(m, n)` outputs of a matmul whose weight rows (outputs) are split into tasks of `per_task`
/// rows run in parallel; `task(cols)` gives the `(m, cols.len())` outputs of weight rows
/// `cols`, row-major.
pub(crate) fn by_weight_rows(
    m: usize,
    n: usize,
    per_task: usize,
    task: impl Fn(std::ops::Range<usize>) -> Vec<f32> + Sync,
) -> Result<Tensor> {
    let parts = parallel::map(n.div_ceil(per_task), |t| {
        task(t * per_task..((t + 1) * per_task).min(n))
    });
    if m == 1 {
        return Tensor::from_vec(parts.concat(), (1, n), &Device::Cpu);
    }
    let mut out = vec![0f32; m * n];
    for (t, part) in parts.iter().enumerate() {
        let first = t * per_task;
        let width = part.len() / m;
        for r in 0..m {
            out[r * n + first..r * n + first + width]
                .copy_from_slice(&part[r * width..(r + 1) * width]);
        }
    }
    Tensor::from_vec(out, (m, n), &Device::Cpu)
}

/// Dot product with eight independent accumulators: vectorised by the compiler, and summed in
/// a fixed order, so the same two vectors give the same result bit for bit wherever they are
/// (in the forward pass; in memory retrieval).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_lane_dot_product_matches_a_plain_one() {
        let a: Vec<f32> = (0..21).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..21).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((super::dot(&a, &b) - plain).abs() < 1e-5);
    }
}
