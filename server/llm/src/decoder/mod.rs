//! A decoder-only transformer forward pass on candle-core's quantized matmuls, written for
//! this project: Gemma 3 (the default model), Llama (2 and 3) and Qwen3, as llama.cpp builds
//! their graphs from a GGUF file.
//!
//! Why our own: candle 0.11.1's `quantized_gemma3` uses SiLU where Gemma uses GELU (tanh),
//! builds RoPE tables for 131,072 positions per layer (~2.4 GB), cannot run a multi-token chunk
//! after a cached prefix, never applies the sliding window while decoding, and dequantises the
//! 262k x 640 embedding table to f32. This version fixes all five, and adds what agents need:
//! explicit positions and segments, so several candidate continuations of one prompt are scored
//! in one pass (each attends to the shared prefix and to itself only), and logits computed only
//! for the rows that are asked for.
//!
//! The families differ in a few places, all read from [`Family`]:
//! - Gemma 3: embeddings scaled by sqrt(hidden); q/k RMS-norm; NeoX RoPE; layers `i % 6 == 5`
//!   global (theta from the file), the others sliding over 512 positions (theta 10,000);
//!   GELU-tanh gated MLP; post-attention and post-FFN norms (GGUF norm weights already include
//!   Gemma's `+1`); output tied to the embedding.
//! - Qwen3: q/k RMS-norm; NeoX RoPE; SiLU gated MLP.
//! - Llama: interleaved RoPE (GGUF's q/k rows are permuted for it), with Llama 3.1's per-frequency
//!   factors (`rope_freqs.weight`) when present; SiLU gated MLP.

use crate::LlmError;
use crate::gguf::GgufFile;
use crate::kernels::activation;
use crate::kernels::int8::Int8Matrix;
use crate::kernels::linear::Linear;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Tensor};
use std::sync::Arc;

mod attention;
mod cache;

pub use cache::{KvBlock, KvCache, SharedKv};

/// The architectures this forward pass runs (`general.architecture`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Gemma3,
    Llama,
    Qwen3,
}

impl Family {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "gemma3" => Family::Gemma3,
            "llama" => Family::Llama,
            "qwen3" => Family::Qwen3,
            _ => return None,
        })
    }

    /// The metadata key prefix.
    fn name(self) -> &'static str {
        match self {
            Family::Gemma3 => "gemma3",
            Family::Llama => "llama",
            Family::Qwen3 => "qwen3",
        }
    }
}

/// Model shape, from the GGUF metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub family: Family,
    pub layers: usize,
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub eps: f64,
    pub rope_global: f64,
    pub rope_local: f64,
    pub sliding_window: usize,
    pub sliding_pattern: usize,
    /// Longest sequence this instance serves (bounds the RoPE tables and caches).
    pub max_context: usize,
}

impl Config {
    pub fn from_gguf(file: &GgufFile, max_context: usize) -> Result<Self, LlmError> {
        let arch = file.string("general.architecture")?;
        let family = Family::from_name(&arch).ok_or_else(|| {
            LlmError::Model(format!(
                "{}: architecture {arch:?} is not supported (gemma3, llama and qwen3 are)",
                file.path.display()
            ))
        })?;
        let key = |k: &str| format!("{}.{k}", family.name());
        let u = |k: &str| file.uint(&key(k)).map(|v| v as usize);
        let heads = u("attention.head_count")?;
        let kv_heads = u("attention.head_count_kv").unwrap_or(heads);
        let hidden = u("embedding_length")?;
        let head_dim = u("attention.key_length").unwrap_or(hidden / heads.max(1));
        let default_theta = match family {
            Family::Gemma3 | Family::Qwen3 => 1_000_000.0,
            Family::Llama => 10_000.0,
        };
        let rope_global = file.float(&key("rope.freq_base")).unwrap_or(default_theta);
        let gemma = family == Family::Gemma3;
        let config = Self {
            family,
            layers: u("block_count")?,
            hidden,
            heads,
            kv_heads,
            head_dim,
            vocab: 0,
            eps: file
                .float(&key("attention.layer_norm_rms_epsilon"))
                .unwrap_or(1e-6),
            rope_global,
            rope_local: if gemma {
                file.float(&key("rope.freq_base_swa")).unwrap_or(10_000.0)
            } else {
                rope_global
            },
            sliding_window: u("attention.sliding_window").unwrap_or(512),
            // Only Gemma 3 slides (every layer but each sixth); 1 means no sliding layer.
            sliding_pattern: if gemma {
                u("attention.sliding_window_pattern").unwrap_or(6).max(1)
            } else {
                1
            },
            max_context: max_context.min(u("context_length").unwrap_or(max_context)),
        };
        let sane = config.layers > 0
            && config.layers <= 512
            && config.heads > 0
            && config.kv_heads > 0
            && config.heads.is_multiple_of(config.kv_heads)
            && config.head_dim.is_multiple_of(2)
            && config.head_dim <= 1024
            && config.hidden > 0
            && config.max_context > 0;
        if !sane {
            return Err(LlmError::Model(format!(
                "{}: inconsistent shape {config:?}",
                file.path.display()
            )));
        }
        Ok(config)
    }

    fn is_sliding(&self, layer: usize) -> bool {
        layer % self.sliding_pattern < self.sliding_pattern - 1
    }
}

/// The token embedding table.
enum TokenTable {
    Int8(Arc<Int8Matrix>),
    Quantized(Arc<QTensor>),
}

struct Layer {
    attn_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    /// Gemma 3 and Qwen3.
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
    o: Linear,
    /// Gemma 3 only.
    post_attn_norm: Option<Tensor>,
    ffn_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
    post_ffn_norm: Option<Tensor>,
    sliding: bool,
}

/// The loaded model. Immutable and shareable; per-sequence state lives in [`KvCache`].
pub struct Decoder {
    pub config: Config,
    embedding: TokenTable,
    head: Linear,
    output_norm: Tensor,
    layers: Vec<Layer>,
    /// cos and sin, (max_context, head_dim / 2), for local and global layers.
    rope_local: (Tensor, Tensor),
    rope_global: (Tensor, Tensor),
    /// Gemma scales embeddings by sqrt(hidden).
    embed_scale: Option<f64>,
}

/// One chunk of tokens to run: their positions, and which segment each belongs to. Tokens
/// attend to the whole cache (by position and sliding window) and to earlier tokens of the
/// chunk in the same segment. One segment is ordinary decoding; several score alternatives.
pub struct Chunk<'a> {
    pub tokens: &'a [u32],
    pub positions: &'a [usize],
    pub segments: Option<&'a [u32]>,
    /// Rows of the chunk to return logits for.
    pub logits_for: &'a [usize],
    /// Keep the chunk's keys and values in the cache afterwards.
    pub keep: bool,
}

impl Decoder {
    pub fn load(file: &mut GgufFile, max_context: usize) -> Result<Self, LlmError> {
        let mut config = Config::from_gguf(file, max_context)?;
        let table = file.tensor("token_embd.weight")?;
        let (vocab, hidden) = table.shape().dims2()?;
        if hidden != config.hidden {
            return Err(LlmError::Model(format!(
                "token_embd is {vocab}x{hidden}, expected hidden size {}",
                config.hidden
            )));
        }
        config.vocab = vocab;
        let untied = match file.has_tensor("output.weight") {
            true => Some(Linear::new(file.tensor("output.weight")?)?),
            false => None,
        };
        // A `Q8_0` table is kept once, in our kernel's layout, for lookups and a tied head.
        let (embedding, head) = if table.dtype() == GgmlDType::Q8_0 {
            let table = Arc::new(Int8Matrix::from_q8_0(&table)?);
            let head = untied.unwrap_or_else(|| Linear::Int8(table.clone()));
            (TokenTable::Int8(table), head)
        } else {
            let table = Arc::new(table);
            let head = match untied {
                Some(head) => head,
                None => Linear::Candle {
                    pad_single_row: table.dtype() == GgmlDType::Q6K,
                    matmul: QMatMul::from_arc(table.clone())?,
                },
            };
            (TokenTable::Quantized(table), head)
        };
        let dense = |file: &mut GgufFile, name: &str| -> Result<Tensor, LlmError> {
            Ok(file.tensor(name)?.dequantize(&Device::Cpu)?)
        };
        let optional = |file: &mut GgufFile, name: &str| -> Result<Option<Tensor>, LlmError> {
            if file.has_tensor(name) {
                dense(file, name).map(Some)
            } else {
                Ok(None)
            }
        };
        let matmul = |file: &mut GgufFile, name: &str| -> Result<Linear, LlmError> {
            Ok(Linear::new(file.tensor(name)?)?)
        };
        let mut layers = Vec::with_capacity(config.layers);
        for i in 0..config.layers {
            let p = |n: &str| format!("blk.{i}.{n}.weight");
            layers.push(Layer {
                attn_norm: dense(file, &p("attn_norm"))?,
                q: matmul(file, &p("attn_q"))?,
                k: matmul(file, &p("attn_k"))?,
                v: matmul(file, &p("attn_v"))?,
                q_norm: optional(file, &p("attn_q_norm"))?,
                k_norm: optional(file, &p("attn_k_norm"))?,
                o: matmul(file, &p("attn_output"))?,
                post_attn_norm: optional(file, &p("post_attention_norm"))?,
                ffn_norm: dense(file, &p("ffn_norm"))?,
                gate: matmul(file, &p("ffn_gate"))?,
                up: matmul(file, &p("ffn_up"))?,
                down: matmul(file, &p("ffn_down"))?,
                post_ffn_norm: optional(file, &p("post_ffw_norm"))?,
                sliding: config.is_sliding(i),
            });
        }
        let output_norm = dense(file, "output_norm.weight")?;
        // Llama 3.1's long-context frequency factors divide the rotation frequencies.
        let factors = match optional(file, "rope_freqs.weight")? {
            Some(t) => Some(t.flatten_all()?.to_vec1::<f32>()?),
            None => None,
        };
        let (dim, context) = (config.head_dim, config.max_context);
        let rope_local = rope_table(config.rope_local, dim, context, None)?;
        let rope_global = rope_table(config.rope_global, dim, context, factors.as_deref())?;
        Ok(Self {
            embed_scale: (config.family == Family::Gemma3)
                .then(|| (config.hidden as f32).sqrt() as f64),
            config,
            embedding,
            head,
            output_norm,
            layers,
            rope_local,
            rope_global,
        })
    }

    /// An empty cache for one sequence.
    pub fn new_cache(&self) -> Result<KvCache, LlmError> {
        let c = &self.config;
        Ok(KvCache::new(c.layers, c.kv_heads * c.head_dim))
    }

    /// Why `chunk` cannot run after `cache`, if it cannot: checked for every sequence of a
    /// pass before anything is computed, so one bad request never spoils the others'.
    pub fn check(&self, cache: &KvCache, chunk: &Chunk<'_>) -> Result<(), LlmError> {
        let c = &self.config;
        let t = chunk.tokens.len();
        if t == 0 || chunk.positions.len() != t || chunk.segments.is_some_and(|s| s.len() != t) {
            return Err(LlmError::Request(
                "chunk tokens, positions and segments differ in length".into(),
            ));
        }
        if let Some(&bad) = chunk.tokens.iter().find(|&&id| id as usize >= c.vocab) {
            return Err(LlmError::Request(format!(
                "token id {bad} outside the vocabulary of {}",
                c.vocab
            )));
        }
        if let Some(&bad) = chunk.positions.iter().find(|&&p| p >= c.max_context) {
            return Err(LlmError::Request(format!(
                "position {bad} is beyond the context of {} tokens",
                c.max_context
            )));
        }
        if let Some(&bad) = chunk.logits_for.iter().find(|&&r| r >= t) {
            return Err(LlmError::Request(format!(
                "logits row {bad} of a {t}-token chunk"
            )));
        }
        if cache.row != c.kv_heads * c.head_dim || cache.own.keys.len() != c.layers {
            return Err(LlmError::Request("a cache of another model".into()));
        }
        Ok(())
    }

    /// Runs one chunk; returns logits `(logits_for.len(), vocab)`.
    pub fn forward(&self, cache: &mut KvCache, chunk: &Chunk<'_>) -> Result<Tensor, LlmError> {
        let mut logits = self.forward_batch(&mut [cache], std::slice::from_ref(chunk))?;
        logits
            .pop()
            .ok_or_else(|| LlmError::Model("no logits".into()))
    }

    /// Runs one chunk for each of several sequences in one pass: every projection multiplies
    /// the rows of all of them at once (the weights are read once per pass, not once per
    /// sequence), attention reads each sequence's own cache. Returns each chunk's logits,
    /// `(logits_for.len(), vocab)`, and gives every row the same bits it would get alone.
    pub fn forward_batch(
        &self,
        caches: &mut [&mut KvCache],
        chunks: &[Chunk<'_>],
    ) -> Result<Vec<Tensor>, LlmError> {
        let c = &self.config;
        if caches.len() != chunks.len() || chunks.is_empty() {
            return Err(LlmError::Request(
                "one chunk per cache, at least one".into(),
            ));
        }
        for (cache, chunk) in caches.iter().zip(chunks) {
            self.check(cache, chunk)?;
        }
        let starts: Vec<usize> = (chunks.iter())
            .scan(0, |next, chunk| {
                let start = *next;
                *next += chunk.tokens.len();
                Some(start)
            })
            .collect();
        let t: usize = chunks.iter().map(|chunk| chunk.tokens.len()).sum();
        let tokens: Vec<u32> = chunks.iter().flat_map(|ch| ch.tokens).copied().collect();
        let positions: Vec<usize> = chunks.iter().flat_map(|ch| ch.positions).copied().collect();
        let own_past: Vec<usize> = caches.iter().map(|c| c.own.positions.len()).collect();
        let row = c.kv_heads * c.head_dim;
        let ids = Tensor::new(tokens.as_slice(), &Device::Cpu)?;
        let pos_ids = index_tensor(&positions)?;
        let local = (
            self.rope_local.0.index_select(&pos_ids, 0)?,
            self.rope_local.1.index_select(&pos_ids, 0)?,
        );
        let global = (
            self.rope_global.0.index_select(&pos_ids, 0)?,
            self.rope_global.1.index_select(&pos_ids, 0)?,
        );

        let mut x = match &self.embedding {
            TokenTable::Int8(table) => table.rows(&tokens)?,
            TokenTable::Quantized(table) => table.embedding(&ids)?,
        };
        if let Some(scale) = self.embed_scale {
            x = (x * scale)?;
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let (cos, sin) = if layer.sliding { &local } else { &global };
            let h = rms(&x, &layer.attn_norm, c.eps)?;
            let q = layer.q.forward(&h)?.reshape((t, c.heads, c.head_dim))?;
            let k = layer.k.forward(&h)?.reshape((t, c.kv_heads, c.head_dim))?;
            let v = layer.v.forward(&h)?.contiguous()?;
            let q = maybe_rms(q, layer.q_norm.as_ref(), c.eps)?
                .transpose(0, 1)?
                .contiguous()?;
            let k = maybe_rms(k, layer.k_norm.as_ref(), c.eps)?
                .transpose(0, 1)?
                .contiguous()?;
            let q = self.rope(&q, cos, sin)?;
            let k = self.rope(&k, cos, sin)?;
            let q = (q * (1.0 / (c.head_dim as f64).sqrt()))?;
            // Token-major rows, as the caches keep them.
            let k = k
                .transpose(0, 1)?
                .contiguous()?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let v = v.flatten_all()?.to_vec1::<f32>()?;
            for ((cache, chunk), &start) in caches.iter_mut().zip(chunks).zip(&starts) {
                let rows = start * row..(start + chunk.tokens.len()) * row;
                cache.append(i, &k[rows.clone()], &v[rows]);
            }
            let items: Vec<attention::Attend<'_>> = (caches.iter())
                .zip(chunks)
                .zip(starts.iter().zip(&own_past))
                .map(|((cache, chunk), (&start, &past))| attention::Attend {
                    start,
                    len: chunk.tokens.len(),
                    past: cache.runs(i),
                    chunk: cache::Run {
                        keys: &cache.own.keys[i][past * row..],
                        values: &cache.own.values[i][past * row..],
                        positions: chunk.positions,
                    },
                    segments: chunk.segments,
                })
                .collect();
            let shape = attention::Shape {
                heads: c.heads,
                kv_heads: c.kv_heads,
                head_dim: c.head_dim,
                rows: t,
                window: layer.sliding.then_some(c.sliding_window),
            };
            let attended = attention::attend(&q.flatten_all()?.to_vec1::<f32>()?, &shape, &items);
            let attended = Tensor::from_vec(attended, (t, c.heads * c.head_dim), &Device::Cpu)?;
            let attended = maybe_rms(
                layer.o.forward(&attended)?,
                layer.post_attn_norm.as_ref(),
                c.eps,
            )?;
            x = (x + attended)?;
            let h = rms(&x, &layer.ffn_norm, c.eps)?;
            let (gate, up) = (layer.gate.forward(&h)?, layer.up.forward(&h)?);
            let gated = match c.family {
                Family::Gemma3 => activation::gelu_gated(&gate, &up)?,
                Family::Llama | Family::Qwen3 => activation::silu_gated(&gate, &up)?,
            };
            let ffn = maybe_rms(
                layer.down.forward(&gated)?,
                layer.post_ffn_norm.as_ref(),
                c.eps,
            )?;
            x = (x + ffn)?;
        }
        for ((cache, chunk), &past) in caches.iter_mut().zip(chunks).zip(&own_past) {
            if chunk.keep {
                cache.own.positions.extend_from_slice(chunk.positions);
            } else {
                cache.own.truncate(past, row);
            }
        }
        let rows: Vec<usize> = (chunks.iter().zip(&starts))
            .flat_map(|(chunk, &start)| chunk.logits_for.iter().map(move |r| start + r))
            .collect();
        let logits = if rows.is_empty() {
            Tensor::zeros((0, c.vocab), DType::F32, &Device::Cpu)?
        } else {
            let x = x.index_select(&index_tensor(&rows)?, 0)?;
            let x = rms(&x, &self.output_norm, c.eps)?;
            self.head.forward(&x)?
        };
        let mut first = 0;
        chunks
            .iter()
            .map(|chunk| {
                let n = chunk.logits_for.len();
                let part = logits.narrow(0, first, n)?;
                first += n;
                Ok(part)
            })
            .collect()
    }

    /// Rotates `x (heads, t, head_dim)`: NeoX halves (Gemma, Qwen) or interleaved pairs (Llama).
    fn rope(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor, LlmError> {
        let x = x.unsqueeze(0)?;
        let rotated = match self.config.family {
            Family::Gemma3 | Family::Qwen3 => candle_nn::rotary_emb::rope(&x, cos, sin)?,
            Family::Llama => candle_nn::rotary_emb::rope_i(&x, cos, sin)?,
        };
        Ok(rotated.squeeze(0)?)
    }
}

/// Indices as a u32 tensor for `index_select`.
fn index_tensor(indices: &[usize]) -> Result<Tensor, LlmError> {
    let indices: Vec<u32> = indices.iter().map(|&i| i as u32).collect();
    Ok(Tensor::new(indices, &Device::Cpu)?)
}

fn rms(x: &Tensor, weight: &Tensor, eps: f64) -> Result<Tensor, LlmError> {
    Ok(candle_nn::ops::rms_norm(
        &x.contiguous()?,
        weight,
        eps as f32,
    )?)
}

fn maybe_rms(x: Tensor, weight: Option<&Tensor>, eps: f64) -> Result<Tensor, LlmError> {
    match weight {
        Some(w) => rms(&x, w, eps),
        None => Ok(x),
    }
}

/// RoPE tables: cos and sin of `pos * theta^(-2i/d) / factor_i`, computed in f64.
fn rope_table(
    theta: f64,
    head_dim: usize,
    positions: usize,
    factors: Option<&[f32]>,
) -> Result<(Tensor, Tensor), LlmError> {
    let half = head_dim / 2;
    let mut cos = Vec::with_capacity(positions * half);
    let mut sin = Vec::with_capacity(positions * half);
    for p in 0..positions {
        for i in 0..half {
            let factor = factors
                .and_then(|f| f.get(i))
                .map_or(1.0, |&f| f64::from(f));
            let angle = p as f64 * theta.powf(-2.0 * i as f64 / head_dim as f64) / factor;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    Ok((
        Tensor::from_vec(cos, (positions, half), &Device::Cpu)?,
        Tensor::from_vec(sin, (positions, half), &Device::Cpu)?,
    ))
}
