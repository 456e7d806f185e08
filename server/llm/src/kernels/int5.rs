//! Matrix multiplication for `Q5_0` weights, in register tiles, on AVX2.
//!
//! Gemma 3 270M's `Q4_K_M` file stores most projections as `Q5_0`, because 640 is not a
//! multiple of the 256-wide k-quant blocks, and candle 0.11 multiplies `Q5_0` with generic
//! scalar code (65% of prefill time). A `Q5_0` block is a scale and 32 five-bit integers `q`
//! (value `d * (q - 16)`), kept here as in the file: 16 bytes of low nibbles and 32 high bits.
//! Activations are quantised per row into 32-value blocks of signed bytes, as ggml does for
//! `Q5_0` (`Q8_0`: scale `max|x| / 127`), so the integer sums are llama.cpp's.
//!
//! Unpacked, `q` is an unsigned byte (0..=31), which makes AVX2's `maddubs` (u8 x i8 pairs into
//! i16) exact: 31 * 127 * 2 is far from i16 overflow; the `-16` is taken out with the
//! activation block's sum. Decoding (one row) unpacks in registers, so it reads the 5.5-bit
//! blocks from memory and no more. Several rows (prefill, candidate scoring) unpack each task's
//! 64 weight rows once into a small buffer and run 4x2 tiles over it, so each weight load
//! serves 4 rows and each activation load 2 weight rows. Without AVX2 at compile time a scalar
//! version with the same arithmetic runs.

use super::by_weight_rows;
use super::rows::{BLOCK, Int8Rows};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Result, Tensor, bail};
use half::f16;

const Q5_0_BYTES: usize = 22;
/// Weight rows per parallel task: 64 rows of 640 weights unpack to 40 KiB, resident in L2.
const ROWS_PER_TASK: usize = 64;

/// A `Q5_0` weight matrix `(n, k)` (candle's layout: one row per output), block by block.
pub struct Int5Matrix {
    n: usize,
    k: usize,
    /// Per block: weight `j` in the low nibble of byte `j`, weight `j + 16` in the high one.
    low: Vec<[u8; BLOCK / 2]>,
    /// Per block: bit `j` is weight `j`'s fifth bit.
    high: Vec<u32>,
    scales: Vec<f32>,
}

impl Int5Matrix {
    /// Reads a `Q5_0` tensor; other types are refused.
    pub fn from_q5_0(tensor: &QTensor) -> Result<Self> {
        if tensor.dtype() != GgmlDType::Q5_0 {
            bail!("Int5Matrix needs Q5_0 weights, got {:?}", tensor.dtype());
        }
        let (n, k) = tensor.shape().dims2()?;
        if !k.is_multiple_of(BLOCK) {
            bail!("Q5_0 rows of {k} values are not whole blocks");
        }
        let data = tensor.data()?;
        let blocks = n * k / BLOCK;
        if data.len() != blocks * Q5_0_BYTES {
            bail!(
                "Q5_0 tensor holds {} bytes, expected {}",
                data.len(),
                blocks * Q5_0_BYTES
            );
        }
        let mut matrix = Self {
            n,
            k,
            low: Vec::with_capacity(blocks),
            high: Vec::with_capacity(blocks),
            scales: Vec::with_capacity(blocks),
        };
        for block in data.chunks_exact(Q5_0_BYTES) {
            // ggml's block_q5_0: f16 scale, 32 fifth bits, 16 bytes of low nibbles.
            matrix
                .scales
                .push(f16::from_le_bytes([block[0], block[1]]).to_f32());
            matrix
                .high
                .push(u32::from_le_bytes([block[2], block[3], block[4], block[5]]));
            matrix
                .low
                .push(block[6..].try_into().expect("16 bytes of nibbles"));
        }
        Ok(matrix)
    }

    fn blocks_per_row(&self) -> usize {
        self.k / BLOCK
    }

    /// Block `at`'s 32 values `q` (0..=31), by plain bit arithmetic.
    #[cfg_attr(
        all(target_feature = "avx2", target_feature = "fma", not(test)),
        allow(dead_code, reason = "the scalar kernel's and the tests' reference")
    )]
    fn unpacked(&self, at: usize) -> [u8; BLOCK] {
        let (low, high) = (&self.low[at], self.high[at]);
        std::array::from_fn(|j| {
            let nibble = if j < BLOCK / 2 {
                low[j] & 0x0F
            } else {
                low[j - BLOCK / 2] >> 4
            };
            nibble | ((((high >> j) & 1) as u8) << 4)
        })
    }

    /// `x (m, k) -> (m, n)`, i.e. `x @ W^T`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (m, k) = x.dims2()?;
        if k != self.k {
            bail!("Int5Matrix: input has {k} columns, weights {}", self.k);
        }
        let x = x.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let rows = Int8Rows::quantize(&x, m, k);
        by_weight_rows(m, self.n, ROWS_PER_TASK, |cols| {
            self.multiply(&rows, m, cols)
        })
    }

    /// `(m, cols.len())` outputs for weight rows `cols`.
    fn multiply(&self, x: &Int8Rows, m: usize, cols: std::ops::Range<usize>) -> Vec<f32> {
        if m == 1 {
            return cols.map(|c| kernel::dot_packed(self, x, c)).collect();
        }
        let blocks = self.blocks_per_row();
        let tile = Tiles {
            weights: &kernel::unpack(self, cols.start * blocks..cols.end * blocks),
            scales: &self.scales[cols.start * blocks..cols.end * blocks],
            blocks,
        };
        let width = cols.len();
        let mut out = vec![0f32; m * width];
        let mut c = 0;
        while c < width {
            let two = c + 2 <= width;
            let mut r = 0;
            while r < m {
                let four = r + 4 <= m;
                match (four, two) {
                    (true, true) => tile.run::<4, 2>(x, r, c, &mut out, width),
                    (true, false) => tile.run::<4, 1>(x, r, c, &mut out, width),
                    (false, true) => tile.run::<1, 2>(x, r, c, &mut out, width),
                    (false, false) => tile.run::<1, 1>(x, r, c, &mut out, width),
                }
                r += if four { 4 } else { 1 };
            }
            c += if two { 2 } else { 1 };
        }
        out
    }
}

/// Unpacked weight rows of one task: `q` bytes and scales, `blocks` per row.
struct Tiles<'a> {
    weights: &'a [[u8; BLOCK]],
    scales: &'a [f32],
    blocks: usize,
}

impl Tiles<'_> {
    /// Dot products of activation rows `row..row+R` with weight rows `col..col+C` into `out`.
    #[inline(always)]
    fn run<const R: usize, const C: usize>(
        &self,
        x: &Int8Rows,
        row: usize,
        col: usize,
        out: &mut [f32],
        width: usize,
    ) {
        let sums = kernel::tile::<R, C>(self, x, row, col);
        for (r, sums) in sums.iter().enumerate() {
            out[(row + r) * width + col..][..C].copy_from_slice(sums);
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
    use super::{BLOCK, Int5Matrix, Int8Rows, Tiles};
    use std::arch::x86_64::*;

    fn horizontal_sum(v: __m256) -> f32 {
        let lanes: [f32; 8] = bytemuck::cast(v);
        // Pairwise, so the order is fixed and independent of the tile shape.
        ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6]))
            + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]))
    }

    /// Block `at`'s 32 values `q` (0..=31) in one register (llama.cpp's `bytes_from_bits_32`
    /// and `bytes_from_nibbles_32`).
    #[target_feature(enable = "avx2,fma")]
    fn unpack_block(w: &Int5Matrix, at: usize) -> __m256i {
        let low: __m128i = bytemuck::cast(w.low[at]);
        let nibbles = _mm256_and_si256(
            _mm256_set_m128i(_mm_srli_epi16(low, 4), low),
            _mm256_set1_epi8(0x0F),
        );
        let byte_of_bit = _mm256_set_epi64x(
            0x0303_0303_0303_0303,
            0x0202_0202_0202_0202,
            0x0101_0101_0101_0101,
            0,
        );
        let spread = _mm256_shuffle_epi8(_mm256_set1_epi32(w.high[at] as i32), byte_of_bit);
        let all_but_bit = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe);
        let set = _mm256_cmpeq_epi8(_mm256_or_si256(spread, all_but_bit), _mm256_set1_epi64x(-1));
        _mm256_or_si256(nibbles, _mm256_and_si256(set, _mm256_set1_epi8(0x10)))
    }

    /// Blocks `range` of `w`, unpacked.
    pub(super) fn unpack(w: &Int5Matrix, range: std::ops::Range<usize>) -> Vec<[u8; BLOCK]> {
        unsafe { unpack_avx2(w, range) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn unpack_avx2(w: &Int5Matrix, range: std::ops::Range<usize>) -> Vec<[u8; BLOCK]> {
        range
            .map(|at| bytemuck::cast(unpack_block(w, at)))
            .collect()
    }

    /// One activation row (the only one) with weight row `col`, unpacking in registers.
    pub(super) fn dot_packed(w: &Int5Matrix, x: &Int8Rows, col: usize) -> f32 {
        unsafe { dot_packed_avx2(w, x, col) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn dot_packed_avx2(w: &Int5Matrix, x: &Int8Rows, col: usize) -> f32 {
        let blocks = w.blocks_per_row();
        let first = col * blocks;
        let (inputs, input_scales, offsets) = (
            &x.quants[..blocks],
            &x.scales[..blocks],
            &x.offsets[..blocks],
        );
        let weight_scales = &w.scales[first..][..blocks];
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_ps();
        for b in 0..blocks {
            let pairs = _mm256_maddubs_epi16(unpack_block(w, first + b), bytemuck::cast(inputs[b]));
            let sums = _mm256_sub_epi32(
                _mm256_madd_epi16(pairs, ones),
                _mm256_set1_epi32(offsets[b]),
            );
            acc = _mm256_fmadd_ps(
                _mm256_cvtepi32_ps(sums),
                _mm256_set1_ps(input_scales[b] * weight_scales[b]),
                acc,
            );
        }
        horizontal_sum(acc)
    }

    #[inline(always)]
    pub(super) fn tile<const R: usize, const C: usize>(
        t: &Tiles<'_>,
        x: &Int8Rows,
        row: usize,
        col: usize,
    ) -> [[f32; C]; R] {
        unsafe { tile_avx2::<R, C>(t, x, row, col) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn tile_avx2<const R: usize, const C: usize>(
        t: &Tiles<'_>,
        x: &Int8Rows,
        row: usize,
        col: usize,
    ) -> [[f32; C]; R] {
        let blocks = t.blocks;
        // Rows sliced to exactly `blocks` long, so indexing by `b < blocks` needs no checks.
        let weights: [&[[u8; BLOCK]]; C] =
            std::array::from_fn(|c| &t.weights[(col + c) * blocks..][..blocks]);
        let weight_scales: [&[f32]; C] =
            std::array::from_fn(|c| &t.scales[(col + c) * blocks..][..blocks]);
        let inputs: [&[[i8; BLOCK]]; R] =
            std::array::from_fn(|r| &x.quants[(row + r) * blocks..][..blocks]);
        let input_scales: [&[f32]; R] =
            std::array::from_fn(|r| &x.scales[(row + r) * blocks..][..blocks]);
        let offsets: [&[i32]; R] =
            std::array::from_fn(|r| &x.offsets[(row + r) * blocks..][..blocks]);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_ps(); C]; R];
        for b in 0..blocks {
            let mut w = [_mm256_setzero_si256(); C];
            let mut ws = [_mm256_setzero_ps(); C];
            for c in 0..C {
                w[c] = bytemuck::cast(weights[c][b]);
                ws[c] = _mm256_set1_ps(weight_scales[c][b]);
            }
            for r in 0..R {
                let a: __m256i = bytemuck::cast(inputs[r][b]);
                let offset = _mm256_set1_epi32(offsets[r][b]);
                let scale = _mm256_set1_ps(input_scales[r][b]);
                for c in 0..C {
                    let pairs = _mm256_maddubs_epi16(w[c], a);
                    let sums = _mm256_sub_epi32(_mm256_madd_epi16(pairs, ones), offset);
                    acc[r][c] = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(sums),
                        _mm256_mul_ps(scale, ws[c]),
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
    use super::{BLOCK, Int5Matrix, Int8Rows, Tiles};

    pub(super) fn unpack(w: &Int5Matrix, range: std::ops::Range<usize>) -> Vec<[u8; BLOCK]> {
        range.map(|at| w.unpacked(at)).collect()
    }

    pub(super) fn dot_packed(w: &Int5Matrix, x: &Int8Rows, col: usize) -> f32 {
        let blocks = w.blocks_per_row();
        let weights = unpack(w, col * blocks..(col + 1) * blocks);
        let scales = &w.scales[col * blocks..(col + 1) * blocks];
        super::dot(&weights, scales, x, 0)
    }

    pub(super) fn tile<const R: usize, const C: usize>(
        t: &Tiles<'_>,
        x: &Int8Rows,
        row: usize,
        col: usize,
    ) -> [[f32; C]; R] {
        let b = t.blocks;
        std::array::from_fn(|r| {
            std::array::from_fn(|c| {
                let at = (col + c) * b..(col + c + 1) * b;
                super::dot(&t.weights[at.clone()], &t.scales[at], x, row + r)
            })
        })
    }
}

/// One output by plain integer arithmetic: the definition the kernels must reproduce.
#[cfg_attr(
    all(target_feature = "avx2", target_feature = "fma", not(test)),
    allow(dead_code, reason = "the scalar kernel's and the tests' reference")
)]
fn dot(weights: &[[u8; BLOCK]], scales: &[f32], x: &Int8Rows, row: usize) -> f32 {
    let blocks = weights.len();
    (0..blocks)
        .map(|b| {
            let xq = &x.quants[row * blocks + b];
            let sum: i32 = weights[b]
                .iter()
                .zip(xq)
                .map(|(&w, &x)| (i32::from(w) - 16) * i32::from(x))
                .sum();
            sum as f32 * scales[b] * x.scales[row * blocks + b]
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
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect();
        Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap()
    }

    fn max_abs(t: &Tensor) -> f32 {
        t.abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn unpacking_keeps_every_weight() {
        let q5 = QTensor::quantize(&random(6, 640, 1), GgmlDType::Q5_0).unwrap();
        let expected = q5
            .dequantize(&Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let w = Int5Matrix::from_q5_0(&q5).unwrap();
        for (r, row) in expected.iter().enumerate() {
            for (i, &value) in row.iter().enumerate() {
                let at = r * 640 + i;
                let unpacked =
                    (f32::from(w.unpacked(at / BLOCK)[at % BLOCK]) - 16.0) * w.scales[at / BLOCK];
                assert_eq!(unpacked, value, "row {r} weight {i}");
            }
        }
    }

    #[test]
    fn matches_candle_for_every_tile_shape() {
        // m and n chosen so full 4x2 tiles and every edge case (1x2, 4x1, 1x1) occur, and
        // n spans two parallel tasks.
        for (m, n) in [(1, 96), (7, 67), (230, 130)] {
            let weights = random(n, 640, n as u64);
            let input = random(m, 640, m as u64 + 100);
            let q5 = QTensor::quantize(&weights, GgmlDType::Q5_0).unwrap();
            let ours = Int5Matrix::from_q5_0(&q5).unwrap().forward(&input).unwrap();
            let candle = QMatMul::from_qtensor(q5).unwrap().forward(&input).unwrap();
            assert_eq!(ours.dims(), &[m, n]);
            let diff = max_abs(&(ours - &candle).unwrap());
            let scale = max_abs(&candle);
            // The same integer sums; only the f32 accumulation order differs.
            assert!(
                diff <= scale * 1e-5,
                "m={m} n={n}: max difference {diff} of {scale}"
            );
        }
    }

    #[test]
    fn kernel_reproduces_the_integer_definition() {
        // m = 1 takes the in-register unpacking path, m = 9 the tiles.
        for m in [1, 9] {
            let n = 5;
            let q5 = QTensor::quantize(&random(n, 320, 7), GgmlDType::Q5_0).unwrap();
            let w = Int5Matrix::from_q5_0(&q5).unwrap();
            let input = random(m, 320, 8);
            let x = input.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let rows = Int8Rows::quantize(&x, m, 320);
            let got = w.forward(&input).unwrap().to_vec2::<f32>().unwrap();
            for (r, got) in got.iter().enumerate() {
                for (c, &value) in got.iter().enumerate() {
                    let blocks = c * 10..(c + 1) * 10;
                    let weights: Vec<[u8; BLOCK]> =
                        blocks.clone().map(|at| w.unpacked(at)).collect();
                    let expected = dot(&weights, &w.scales[blocks], &rows, r);
                    assert!(
                        (value - expected).abs() <= expected.abs() * 1e-5 + 1e-6,
                        "m={m} ({r},{c}): {value} vs {expected}"
                    );
                }
            }
        }
    }

    #[test]
    fn simd_unpacking_matches_the_bit_arithmetic() {
        let q5 = QTensor::quantize(&random(8, 640, 9), GgmlDType::Q5_0).unwrap();
        let w = Int5Matrix::from_q5_0(&q5).unwrap();
        let blocks = w.low.len();
        let expected: Vec<[u8; BLOCK]> = (0..blocks).map(|at| w.unpacked(at)).collect();
        assert_eq!(kernel::unpack(&w, 0..blocks), expected);
    }

    #[test]
    fn refuses_other_types_and_wrong_inputs() {
        let q4 = QTensor::quantize(&random(16, 256, 4), GgmlDType::Q4K).unwrap();
        assert!(Int5Matrix::from_q5_0(&q4).is_err());
        let q5 = QTensor::quantize(&random(4, 64, 5), GgmlDType::Q5_0).unwrap();
        let w = Int5Matrix::from_q5_0(&q5).unwrap();
        assert!(w.forward(&random(2, 32, 6)).is_err());
    }
}
