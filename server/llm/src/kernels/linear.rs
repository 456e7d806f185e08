//! A projection by quantised weights, with the fastest kernel for each weight type.

use super::int5::Int5Matrix;
use super::int8::Int8Matrix;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Result, Tensor};
use std::sync::Arc;

/// `x @ W^T` for a GGUF weight: our tiled kernels for `Q5_0` and `Q8_0`, candle's for the rest.
///
/// Every row's result is the same bits whatever the other rows are and however many there
/// are (batched serving depends on it). candle's kernels compute each row alone, except its
/// single-row `Q6_K` path, whose sums differ from its several-row path: a single row is run
/// as two there.
pub enum Linear {
    Candle {
        matmul: QMatMul,
        pad_single_row: bool,
    },
    Int5(Int5Matrix),
    /// Shared: a tied output head is also the token embedding table.
    Int8(Arc<Int8Matrix>),
}

impl Linear {
    pub fn new(weights: QTensor) -> Result<Self> {
        Ok(match weights.dtype() {
            GgmlDType::Q5_0 => Linear::Int5(Int5Matrix::from_q5_0(&weights)?),
            GgmlDType::Q8_0 => Linear::Int8(Arc::new(Int8Matrix::from_q8_0(&weights)?)),
            dtype => Linear::Candle {
                pad_single_row: dtype == GgmlDType::Q6K,
                matmul: QMatMul::from_qtensor(weights)?,
            },
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Linear::Candle {
                matmul,
                pad_single_row: true,
            } if x.dims2()?.0 == 1 => matmul.forward(&Tensor::cat(&[x, x], 0)?)?.narrow(0, 0, 1),
            Linear::Candle { matmul, .. } => matmul.forward(x),
            Linear::Int5(m) => m.forward(x),
            Linear::Int8(m) => m.forward(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// A matrix like the model's (`Q6_K` down projections are 2048 -> 640), values in
    /// [-1, 1] with an outlier now and then, as activations have.
    fn values(rows: usize, cols: usize, seed: u64) -> Tensor {
        let mut state = seed;
        let data: Vec<f32> = (0..rows * cols)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
                if i % 97 == 0 { u * 100.0 } else { u }
            })
            .collect();
        Tensor::from_vec(data, (rows, cols), &Device::Cpu).unwrap()
    }

    #[test]
    fn a_row_gets_the_same_bits_alone_and_among_others() {
        for dtype in [
            GgmlDType::Q4K,
            GgmlDType::Q6K,
            GgmlDType::Q8_0,
            GgmlDType::Q5_0,
        ] {
            let weights = QTensor::quantize(&values(640, 2048, 1), dtype).unwrap();
            let linear = Linear::new(weights).unwrap();
            let x = values(17, 2048, 2);
            let alone = |r: usize| {
                (linear.forward(&x.narrow(0, r, 1).unwrap()).unwrap())
                    .to_vec2::<f32>()
                    .unwrap()
                    .remove(0)
            };
            for m in [2, 5, 17] {
                let together = (linear.forward(&x.narrow(0, 0, m).unwrap()).unwrap())
                    .to_vec2::<f32>()
                    .unwrap();
                for r in [0, m - 1] {
                    let differ = (alone(r).iter().zip(&together[r]))
                        .filter(|(a, b)| a.to_bits() != b.to_bits())
                        .count();
                    assert_eq!(
                        differ, 0,
                        "{dtype:?}: row {r} of {m} differs in {differ} outputs"
                    );
                }
            }
        }
    }
}
