//! Weight layouts that candle multiplies fast on x86, converted at load time.
//!
//! Gemma 3 270M's `Q4_K_M` file stores most of its projections as `Q5_0` (640 is not a multiple
//! of the 256-wide k-quant blocks). candle 0.11 has no SIMD kernel for `Q5_0`; its generic dot
//! product took 65% of prefill time. A `Q5_0` block is a scale and 32 five-bit integers, which
//! is exactly representable as a `Q8_0` block (the same scale, 32 eight-bit integers), and
//! candle's `Q8_0` dot product is AVX2. Both types multiply against `Q8_0`-quantised
//! activations, so the widened weights give the same integer sums: the conversion is lossless
//! and costs 12 bytes per 32 weights (+55% for those tensors).

use candle_core::quantized::{GgmlDType, QTensor, ggml_file::qtensor_from_ggml};
use candle_core::{Device, Result};

const BLOCK: usize = 32;
const Q5_0_BYTES: usize = 22;
const Q8_0_BYTES: usize = 34;

/// The tensor in a layout with a fast kernel: `Q5_0` becomes `Q8_0`, everything else is kept.
pub fn fast_layout(tensor: QTensor) -> Result<QTensor> {
    if tensor.dtype() != GgmlDType::Q5_0 {
        return Ok(tensor);
    }
    let widened = q5_0_to_q8_0(&tensor.data()?);
    qtensor_from_ggml(
        GgmlDType::Q8_0,
        &widened,
        tensor.shape().dims().to_vec(),
        &Device::Cpu,
    )
}

/// ggml's `block_q5_0` (f16 scale, 32 high bits, 16 bytes of low nibbles; value = q - 16)
/// to `block_q8_0` (f16 scale, 32 signed bytes).
fn q5_0_to_q8_0(q5: &[u8]) -> Vec<u8> {
    let mut q8 = Vec::with_capacity(q5.len() / Q5_0_BYTES * Q8_0_BYTES);
    for block in q5.chunks_exact(Q5_0_BYTES) {
        let (scale, rest) = block.split_at(2);
        let (high, low) = rest.split_at(4);
        let high = u32::from_le_bytes([high[0], high[1], high[2], high[3]]);
        q8.extend_from_slice(scale);
        let value = |j: usize, nibble: u8| {
            let fifth = ((high >> j) & 1) as u8;
            ((nibble | (fifth << 4)) as i8 - 16) as u8
        };
        q8.extend((0..BLOCK / 2).map(|j| value(j, low[j] & 0x0F)));
        q8.extend((0..BLOCK / 2).map(|j| value(j + BLOCK / 2, low[j] >> 4)));
    }
    q8
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;
    use candle_core::quantized::QMatMul;
    use candle_core::{DType, Module};

    fn random(rows: usize, cols: usize, seed: u64) -> Tensor {
        // A small LCG keeps the test free of a rand dependency on candle's side.
        let mut state = seed;
        let values: Vec<f32> = (0..rows * cols)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect();
        Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap()
    }

    #[test]
    fn widening_q5_0_keeps_every_weight() {
        let weights = random(64, 640, 1);
        let q5 = QTensor::quantize(&weights, GgmlDType::Q5_0).unwrap();
        let expected = q5.dequantize(&Device::Cpu).unwrap();
        let q8 = fast_layout(q5).unwrap();
        assert_eq!(q8.dtype(), GgmlDType::Q8_0);
        assert_eq!(q8.shape().dims(), &[64, 640]);
        let got = q8.dequantize(&Device::Cpu).unwrap();
        let diff = (got - expected)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(diff, 0.0, "every dequantised weight is identical");
    }

    #[test]
    fn widened_weights_multiply_like_the_original() {
        let weights = random(128, 640, 2);
        let input = random(7, 640, 3);
        let quantize = || QTensor::quantize(&weights, GgmlDType::Q5_0).unwrap();
        let slow = QMatMul::from_qtensor(quantize()).unwrap();
        let fast = QMatMul::from_qtensor(fast_layout(quantize()).unwrap()).unwrap();
        let a = slow.forward(&input).unwrap();
        let b = fast.forward(&input).unwrap();
        let scale = a
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let diff = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        // Same integer sums; only the order of the f32 accumulation differs.
        assert!(diff <= scale * 1e-5, "max difference {diff} of {scale}");
    }

    #[test]
    fn other_types_are_left_alone() {
        let q4 = QTensor::quantize(&random(16, 256, 4), GgmlDType::Q4K).unwrap();
        assert_eq!(fast_layout(q4).unwrap().dtype(), GgmlDType::Q4K);
    }
}
