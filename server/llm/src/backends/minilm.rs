//! Sentence embeddings: all-MiniLM-L6-v2 through candle's BERT, mean-pooled and L2-normalised,
//! from the plain files (`config.json`, `tokenizer.json`, `model.safetensors`) that
//! `scripts/fetch-models` puts in the model cache.

use crate::{Embeddings, LlmError, TextEmbedder, Usage};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Texts per forward pass.
pub const BATCH: usize = 32;
/// Tokens per text, at most (MiniLM was trained on 128 and its position table has 512).
pub const MAX_TOKENS: usize = 256;

pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    pub dimensions: usize,
}

/// The embedding model folder in the cache.
pub fn default_folder() -> PathBuf {
    crate::locate::model_cache().join("all-MiniLM-L6-v2")
}

impl Embedder {
    pub fn load(folder: &Path) -> Result<Self, LlmError> {
        crate::priority::start_compute_pools();
        let file = |name: &str| {
            let path = folder.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(LlmError::Unavailable(format!(
                    "{} is missing: run scripts/fetch-models",
                    path.display()
                )))
            }
        };
        let config: Config = serde_json::from_str(
            &std::fs::read_to_string(file("config.json")?)
                .map_err(|e| LlmError::Model(format!("config.json: {e}")))?,
        )
        .map_err(|e| LlmError::Model(format!("config.json: {e}")))?;
        let mut tokenizer = Tokenizer::from_file(file("tokenizer.json")?)
            .map_err(|e| LlmError::Model(format!("tokenizer.json: {e}")))?;
        // The shipped tokenizer pads every text to 128 tokens; pad to the batch's longest.
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| LlmError::Model(format!("tokenizer truncation: {e}")))?;
        let weights = candle_core::safetensors::load(file("model.safetensors")?, &Device::Cpu)?;
        let vb = VarBuilder::from_tensors(weights, DType::F32, &Device::Cpu);
        let model = BertModel::load(vb, &config)?;
        Ok(Self {
            model,
            tokenizer,
            dimensions: config.hidden_size,
        })
    }

    /// One unit-length vector per text, in order, and the number of tokens read.
    fn vectors(&self, texts: &[&str]) -> Result<(Vec<Vec<f32>>, u32), LlmError> {
        let mut out = Vec::with_capacity(texts.len());
        let mut tokens = 0u32;
        for batch in texts.chunks(BATCH) {
            let encodings = self
                .tokenizer
                .encode_batch(batch.to_vec(), true)
                .map_err(|e| LlmError::Request(format!("tokenizing: {e}")))?;
            tokens += encodings
                .iter()
                .map(|e| e.get_attention_mask().iter().sum::<u32>())
                .sum::<u32>();
            let rows = encodings.len();
            let width = encodings.first().map_or(0, |e| e.get_ids().len());
            let flat = |get: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
                encodings
                    .iter()
                    .flat_map(|e| get(e).iter().copied())
                    .collect()
            };
            let ids = Tensor::from_vec(flat(&|e| e.get_ids()), (rows, width), &Device::Cpu)?;
            let types = Tensor::from_vec(flat(&|e| e.get_type_ids()), (rows, width), &Device::Cpu)?;
            let mask = Tensor::from_vec(
                flat(&|e| e.get_attention_mask()),
                (rows, width),
                &Device::Cpu,
            )?;
            let hidden = self.model.forward(&ids, &types, Some(&mask))?;
            // Mean over real tokens, then L2 normalisation (sentence-transformers' pipeline).
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
            let mean = summed.broadcast_div(&counts)?;
            let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
            out.extend(mean.broadcast_div(&norm)?.to_vec2::<f32>()?);
        }
        Ok((out, tokens))
    }
}

impl TextEmbedder for Embedder {
    fn name(&self) -> &str {
        "all-MiniLM-L6-v2"
    }

    fn embed(&self, texts: &[&str]) -> Result<Embeddings, LlmError> {
        let started = Instant::now();
        let (vectors, tokens) = self.vectors(texts)?;
        Ok(Embeddings {
            vectors,
            usage: Usage {
                prompt_tokens: tokens,
                elapsed: started.elapsed(),
                ..Usage::default()
            },
        })
    }
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
