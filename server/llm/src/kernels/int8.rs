//! Matrix multiplication for `Q8_0` weights, in register tiles, on AVX2.
//!
//! The default model's output head is `Q8_0` (262,144 x 640): in batched decoding it is most
//! of the work, and candle 0.11 multiplies `Q8_0` one (row, column) dot product at a time. A
//! `Q8_0` block is a scale and 32 signed bytes; activations are quantised per row into the
//! same blocks ([`Int8Rows`]), so the integer sums are llama.cpp's. Each block's product is
//! ggml's: `maddubs(|w|, sign(x, w))` into pairs, pairs into eight 32-bit lanes, times the two
//! scales, accumulated in eight float lanes and summed pairwise at the end. One row (decoding
//! one sequence) runs each weight row against it; several rows run 4x2 tiles, so each weight
//! load serves 4 rows and each activation load 2 weight rows. Both do the same arithmetic in
//! the same order, so a row's outputs are the same bits alone and in a batch.

use super::by_weight_rows;
use super::rows::{BLOCK, Int8Rows};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Result, Tensor, bail};
use half::f16;

const Q8_0_BYTES: usize = 34;
/// Weight rows per parallel task: 64 rows of 640 weights are 40 KiB, resident in L2.
const ROWS_PER_TASK: usize = 64;

/// A `Q8_0` weight matrix `(n, k)`: per block, 32 signed values and a scale.
pub struct Int8Matrix {
    n: usize,
    k: usize,
    quants: Vec<[i8; BLOCK]>,
    scales: Vec<f32>,
}

impl Int8Matrix {
    /// Reads a `Q8_0` tensor; other types are refused.
    pub fn from_q8_0(tensor: &QTensor) -> Result<Self> {
        if tensor.dtype() != GgmlDType::Q8_0 {
            bail!("Int8Matrix needs Q8_0 weights, got {:?}", tensor.dtype());
        }
        let (n, k) = tensor.shape().dims2()?;
        if !k.is_multiple_of(BLOCK) {
            bail!("Q8_0 rows of {k} values are not whole blocks");
        }
        let data = tensor.data()?;
        let blocks = n * k / BLOCK;
        if data.len() != blocks * Q8_0_BYTES {
            bail!(
                "Q8_0 tensor holds {} bytes, expected {}",
                data.len(),
                blocks * Q8_0_BYTES
            );
        }
        let mut matrix = Self {
            n,
            k,
            quants: Vec::with_capacity(blocks),
            scales: Vec::with_capacity(blocks),
        };
        for block in data.chunks_exact(Q8_0_BYTES) {
            // ggml's block_q8_0: f16 scale, 32 signed bytes.
            matrix
                .scales
                .push(f16::from_le_bytes([block[0], block[1]]).to_f32());
            matrix
                .quants
                .push(std::array::from_fn(|i| block[2 + i] as i8));
        }
        Ok(matrix)
    }

    fn blocks_per_row(&self) -> usize {
        self.k / BLOCK
    }

    /// Weight rows `ids`, dequantised (`q * scale`, as ggml does): a token embedding lookup
    /// when this is the embedding table.
    pub fn rows(&self, ids: &[u32]) -> Result<Tensor> {
        let blocks = self.blocks_per_row();
        let mut out = Vec::with_capacity(ids.len() * self.k);
        for &id in ids {
            let id = id as usize;
            if id >= self.n {
                bail!("row {id} of a {}-row matrix", self.n);
            }
            for b in id * blocks..(id + 1) * blocks {
                let scale = self.scales[b];
                out.extend(self.quants[b].iter().map(|&q| f32::from(q) * scale));
            }
        }
        Tensor::from_vec(out, (ids.len(), self.k), &candle_core::Device::Cpu)
    }

    /// `x (m, k) -> (m, n)`, i.e. `x @ W^T`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (m, k) = x.dims2()?;
        if k != self.k {
            bail!("Int8Matrix: input has {k} columns, weights {}", self.k);
        }
        let x = x.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let rows = Int8Rows::quantize(&x, m, k);
        by_weight_rows(m, self.n, ROWS_PER_TASK, |cols| {
            self.multiply(&rows, m, cols)
        })
    }

    /// `(m, cols.len())` outputs for weight rows `cols`, row-major.
    fn multiply(&self, x: &Int8Rows, m: usize, cols: std::ops::Range<usize>) -> Vec<f32> {
        let width = cols.len();
        let mut out = vec![0f32; m * width];
        let mut c = 0;
        while c < width {
            let two = c + 2 <= width;
            let mut r = 0;
            while r < m {
                let four = r + 4 <= m;
                let col = cols.start + c;
                match (four, two) {
                    (true, true) => self.run::<4, 2>(x, r, col, c, &mut out, width),
                    (true, false) => self.run::<4, 1>(x, r, col, c, &mut out, width),
                    (false, true) => self.run::<1, 2>(x, r, col, c, &mut out, width),
                    (false, false) => self.run::<1, 1>(x, r, col, c, &mut out, width),
                }
                r += if four { 4 } else { 1 };
            }
            c += if two { 2 } else { 1 };
        }
        out
    }

    /// Activation rows `row..row+R` times weight rows `col..col+C`, into `out` at column `at`.
    #[inline(always)]
    fn run<const R: usize, const C: usize>(
        &self,
        x: &Int8Rows,
        row: usize,
        col: usize,
        at: usize,
        out: &mut [f32],
        width: usize,
    ) {
        let sums = kernel::tile::<R, C>(self, x, row, col);
        for (r, sums) in sums.iter().enumerate() {
            out[(row + r) * width + at..][..C].copy_from_slice(sums);
        }
    }
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
#[allow(unsafe_code)]
mod kernel {
    //! SAFETY, for every `unsafe` call below: this module is compiled only when AVX2 and FMA
    //! are enabled for the whole crate (the `cfg` above), so every CPU the binary is built for
    //! has them.
    use super::{Int8Matrix, Int8Rows};
    use std::arch::x86_64::*;

    fn horizontal_sum(v: __m256) -> f32 {
        let lanes: [f32; 8] = bytemuck::cast(v);
        ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6]))
            + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]))
    }

    #[inline(always)]
    pub(super) fn tile<const R: usize, const C: usize>(
        w: &Int8Matrix,
        x: &Int8Rows,
        row: usize,
        col: usize,
    ) -> [[f32; C]; R] {
        unsafe { tile_avx2::<R, C>(w, x, row, col) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn tile_avx2<const R: usize, const C: usize>(
        w: &Int8Matrix,
        x: &Int8Rows,
        row: usize,
        col: usize,
    ) -> [[f32; C]; R] {
        let blocks = w.blocks_per_row();
        let weights: [&[[i8; 32]]; C] =
            std::array::from_fn(|c| &w.quants[(col + c) * blocks..][..blocks]);
        let weight_scales: [&[f32]; C] =
            std::array::from_fn(|c| &w.scales[(col + c) * blocks..][..blocks]);
        let inputs: [&[[i8; 32]]; R] =
            std::array::from_fn(|r| &x.quants[(row + r) * blocks..][..blocks]);
        let input_scales: [&[f32]; R] =
            std::array::from_fn(|r| &x.scales[(row + r) * blocks..][..blocks]);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_ps(); C]; R];
        for b in 0..blocks {
            let mut magnitude = [_mm256_setzero_si256(); C];
            let mut signs = [_mm256_setzero_si256(); C];
            let mut ws = [0f32; C];
            for c in 0..C {
                signs[c] = bytemuck::cast(weights[c][b]);
                magnitude[c] = _mm256_sign_epi8(signs[c], signs[c]);
                ws[c] = weight_scales[c][b];
            }
            for r in 0..R {
                let a: __m256i = bytemuck::cast(inputs[r][b]);
                let scale = input_scales[r][b];
                for c in 0..C {
                    let pairs = _mm256_maddubs_epi16(magnitude[c], _mm256_sign_epi8(a, signs[c]));
                    let sums = _mm256_madd_epi16(pairs, ones);
                    acc[r][c] = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(sums),
                        _mm256_set1_ps(scale * ws[c]),
                        acc[r][c],
                    );
                }
            }
        }
        acc.map(|row| row.map(horizontal_sum))
    }
}

#[cfg(not(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
)))]
mod kernel {
    use super::{Int8Matrix, Int8Rows};

    pub(super) fn tile<const R: usize, const C: usize>(
        w: &Int8Matrix,
        x: &Int8Rows,
        row: usize,
        col: usize,
    ) -> [[f32; C]; R] {
        std::array::from_fn(|r| std::array::from_fn(|c| super::dot(w, x, row + r, col + c)))
    }
}

/// One output by plain integer arithmetic: the definition the kernels must reproduce.
#[cfg_attr(
    all(target_feature = "avx2", target_feature = "fma", not(test)),
    allow(dead_code, reason = "the scalar kernel's and the tests' reference")
)]
fn dot(w: &Int8Matrix, x: &Int8Rows, row: usize, col: usize) -> f32 {
    let blocks = w.blocks_per_row();
    (0..blocks)
        .map(|b| {
            let (wq, xq) = (&w.quants[col * blocks + b], &x.quants[row * blocks + b]);
            let sum: i32 = (wq.iter().zip(xq))
                .map(|(&a, &b)| i32::from(a) * i32::from(b))
                .sum();
            sum as f32 * x.scales[row * blocks + b] * w.scales[col * blocks + b]
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QMatMul;
    use candle_core::{Device, Module};

    fn random(rows: usize, cols: usize, seed: u64) -> Tensor {
        let mut state = seed;
        let values: Vec<f32> = (0..rows * cols)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
                if i % 53 == 0 { u * 50.0 } else { u }
            })
            .collect();
        Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap()
    }

    #[test]
    fn matches_candle_and_the_integer_definition_for_every_tile_shape() {
        for (m, n) in [(1, 96), (7, 67), (17, 130)] {
            let q8 = QTensor::quantize(&random(n, 640, n as u64), GgmlDType::Q8_0).unwrap();
            let ours = Int8Matrix::from_q8_0(&q8).unwrap();
            let input = random(m, 640, m as u64 + 100);
            let got = ours.forward(&input).unwrap().to_vec2::<f32>().unwrap();
            let candle = (QMatMul::from_qtensor(q8).unwrap().forward(&input).unwrap())
                .to_vec2::<f32>()
                .unwrap();
            let x = input.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let rows = Int8Rows::quantize(&x, m, 640);
            for r in 0..m {
                for c in 0..n {
                    let (value, theirs) = (got[r][c], candle[r][c]);
                    let defined = dot(&ours, &rows, r, c);
                    let tolerance = theirs.abs() * 1e-5 + 1e-4;
                    assert!(
                        (value - theirs).abs() <= tolerance,
                        "({r},{c}): {value} vs candle {theirs}"
                    );
                    assert!(
                        (value - defined).abs() <= tolerance,
                        "({r},{c}): {value} vs {defined}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_row_gets_the_same_bits_alone_and_in_any_tile() {
        let q8 = QTensor::quantize(&random(70, 640, 3), GgmlDType::Q8_0).unwrap();
        let w = Int8Matrix::from_q8_0(&q8).unwrap();
        let input = random(9, 640, 4);
        let together = w.forward(&input).unwrap().to_vec2::<f32>().unwrap();
        for (r, row) in together.iter().enumerate() {
            let alone = (w.forward(&input.narrow(0, r, 1).unwrap()).unwrap())
                .to_vec2::<f32>()
                .unwrap();
            let same = alone[0]
                .iter()
                .zip(row)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "row {r} differs alone");
        }
    }

    #[test]
    fn rows_are_the_dequantised_weights() {
        let q8 = QTensor::quantize(&random(5, 64, 8), GgmlDType::Q8_0).unwrap();
        let expected = q8
            .dequantize(&Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let w = Int8Matrix::from_q8_0(&q8).unwrap();
        let rows = w.rows(&[3, 0]).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(rows, [expected[3].clone(), expected[0].clone()]);
        assert!(w.rows(&[5]).is_err());
    }

    #[test]
    fn refuses_other_types_and_wrong_inputs() {
        let q4 = QTensor::quantize(&random(16, 256, 4), GgmlDType::Q4K).unwrap();
        assert!(Int8Matrix::from_q8_0(&q4).is_err());
        let q8 = QTensor::quantize(&random(4, 64, 5), GgmlDType::Q8_0).unwrap();
        let w = Int8Matrix::from_q8_0(&q8).unwrap();
        assert!(w.forward(&random(2, 32, 6)).is_err());
    }
}
