//! The arithmetic under the forward pass: quantised matmuls, activations, the thread pool.

pub mod activation;
pub mod int5;
pub mod linear;
pub mod parallel;

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
