//! The embedded backend: a GGUF model run in-process by candle, with a cache of prompt
//! prefixes (an agent's fixed preamble is computed once) and batched candidate scoring.

use crate::decoder::{Chunk, Decoder, KvCache};
use crate::gguf::GgufFile;
use crate::sampling::{Sampler, log_softmax};
use crate::tokenizers::Tokenizer;
use crate::{GenerateRequest, Generation, LanguageModel, LlmError, ScoreRequest, Scores, Usage};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// Candidates per scoring call, at most.
pub const MAX_CANDIDATES: usize = 64;
/// Prefixes shorter than this are not worth caching.
const MIN_CACHED_PREFIX: usize = 8;

/// Settings of the embedded backend.
#[derive(Clone, Copy, Debug)]
pub struct EmbeddedOptions {
    /// Longest prompt + output, in tokens.
    pub max_context: usize,
    /// Memory for cached prompt prefixes.
    pub prefix_cache_bytes: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            max_context: 4096,
            prefix_cache_bytes: 256 << 20,
        }
    }
}

pub struct EmbeddedModel {
    name: String,
    pub tokenizer: Tokenizer,
    model: Decoder,
    prefixes: Mutex<PrefixCache>,
}

impl EmbeddedModel {
    pub fn load(path: &Path, options: EmbeddedOptions) -> Result<Self, LlmError> {
        let mut file = GgufFile::open(path)?;
        let tokenizer = file.tokenizer()?;
        let model = Decoder::load(&mut file, options.max_context)?;
        if tokenizer.vocab_size() > model.config.vocab {
            return Err(LlmError::Model(format!(
                "{}: tokenizer has {} tokens but the model only {}",
                path.display(),
                tokenizer.vocab_size(),
                model.config.vocab
            )));
        }
        let name = file.string("general.name").unwrap_or_else(|_| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        Ok(Self {
            name,
            tokenizer,
            model,
            prefixes: Mutex::new(PrefixCache::new(options.prefix_cache_bytes)),
        })
    }

    pub fn max_context(&self) -> usize {
        self.model.config.max_context
    }

    /// Runs the prompt, reusing a cached prefix; returns the cache and the last row's logits.
    fn prefill(&self, ids: &[u32], usage: &mut Usage) -> Result<(KvCache, Vec<f32>), LlmError> {
        let reusable = ids.len().saturating_sub(1);
        let (mut cache, cached) = match self
            .prefixes
            .lock()
            .ok()
            .and_then(|mut p| p.take(ids, reusable))
        {
            Some(hit) => hit,
            None => (self.model.new_cache()?, 0),
        };
        usage.cached_tokens = cached as u32;
        let rest = &ids[cached..];
        let positions: Vec<usize> = (cached..ids.len()).collect();
        let logits = self.model.forward(
            &mut cache,
            &Chunk {
                tokens: rest,
                positions: &positions,
                segments: None,
                logits_for: &[rest.len() - 1],
                keep: true,
            },
        )?;
        if ids.len() >= MIN_CACHED_PREFIX
            && let Ok(mut prefixes) = self.prefixes.lock()
        {
            prefixes.store(ids, &cache)?;
        }
        Ok((cache, logits.get(0)?.to_vec1::<f32>()?))
    }

    fn encode_prompt(&self, prompt: &str, extra: usize) -> Result<Vec<u32>, LlmError> {
        let ids = self.tokenizer.encode(prompt, true, false);
        if ids.is_empty() {
            return Err(LlmError::Request("empty prompt".into()));
        }
        if ids.len() + extra > self.max_context() {
            return Err(LlmError::Request(format!(
                "prompt of {} tokens plus {extra} more exceeds the context of {}",
                ids.len(),
                self.max_context()
            )));
        }
        Ok(ids)
    }
}

impl LanguageModel for EmbeddedModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(&self, request: &GenerateRequest) -> Result<Generation, LlmError> {
        let started = Instant::now();
        let ids = self.encode_prompt(&request.prompt, request.max_tokens as usize)?;
        let mut usage = Usage {
            prompt_tokens: ids.len() as u32,
            ..Usage::default()
        };
        let (mut cache, mut logits) = self.prefill(&ids, &mut usage)?;
        let mut sampler = Sampler::new(request.sampling);
        let mut recent: Vec<u32> = ids.iter().rev().take(64).copied().collect();
        let mut output: Vec<u32> = Vec::new();
        let mut text = String::new();
        while output.len() < request.max_tokens as usize {
            let next = sampler.sample(&mut logits, &recent);
            if Some(next) == self.tokenizer.special.eos {
                break;
            }
            output.push(next);
            recent.push(next);
            text = self.tokenizer.decode(&output);
            if request.cut_at_stop(&mut text) {
                break;
            }
            let position = cache.positions.last().map_or(0, |p| p + 1);
            let row = self.model.forward(
                &mut cache,
                &Chunk {
                    tokens: &[next],
                    positions: &[position],
                    segments: None,
                    logits_for: &[0],
                    keep: true,
                },
            )?;
            logits = row.get(0)?.to_vec1::<f32>()?;
        }
        usage.completion_tokens = output.len() as u32;
        usage.elapsed = started.elapsed();
        Ok(Generation { text, usage })
    }

    fn score(&self, request: &ScoreRequest) -> Result<Scores, LlmError> {
        let started = Instant::now();
        if request.candidates.is_empty() || request.candidates.len() > MAX_CANDIDATES {
            return Err(LlmError::Request(format!(
                "{} candidates, expected 1-{MAX_CANDIDATES}",
                request.candidates.len()
            )));
        }
        let candidates: Vec<Vec<u32>> = request
            .candidates
            .iter()
            .map(|c| self.tokenizer.encode(c, false, false))
            .collect();
        if let Some(i) = candidates.iter().position(Vec::is_empty) {
            return Err(LlmError::Request(format!("candidate {i} is empty")));
        }
        let longest = candidates.iter().map(Vec::len).max().unwrap_or(0);
        let ids = self.encode_prompt(&request.prompt, longest)?;
        let mut usage = Usage {
            prompt_tokens: ids.len() as u32,
            ..Usage::default()
        };
        let (mut cache, last) = self.prefill(&ids, &mut usage)?;
        let first = log_softmax(&last);

        // All candidates in one chunk: same positions after the prompt, one segment each.
        let mut tokens = Vec::new();
        let mut positions = Vec::new();
        let mut segments = Vec::new();
        let mut rows = Vec::new();
        for (s, candidate) in candidates.iter().enumerate() {
            for (k, &id) in candidate.iter().enumerate() {
                if k + 1 < candidate.len() {
                    rows.push(tokens.len());
                }
                tokens.push(id);
                positions.push(ids.len() + k);
                segments.push(s as u32);
            }
        }
        let logits = if rows.is_empty() {
            None
        } else {
            Some(self.model.forward(
                &mut cache,
                &Chunk {
                    tokens: &tokens,
                    positions: &positions,
                    segments: Some(&segments),
                    logits_for: &rows,
                    keep: false,
                },
            )?)
        };
        let mut logprobs = Vec::with_capacity(candidates.len());
        let mut row = 0;
        for candidate in &candidates {
            let mut total = first[candidate[0] as usize];
            for &id in &candidate[1..] {
                let logits = logits
                    .as_ref()
                    .ok_or_else(|| LlmError::Model("missing logits".into()))?;
                let lp = log_softmax(&logits.get(row)?.to_vec1::<f32>()?);
                total += lp[id as usize];
                row += 1;
            }
            logprobs.push(total);
        }
        usage.completion_tokens = tokens.len() as u32;
        usage.elapsed = started.elapsed();
        Ok(Scores {
            logprobs,
            tokens: candidates.iter().map(|c| c.len() as u32).collect(),
            usage,
        })
    }
}

/// Snapshots of the KV cache after recent prompts, reused by prompts that share their start.
struct PrefixCache {
    entries: Vec<(Vec<u32>, KvCache, u64)>,
    budget: usize,
    clock: u64,
}

impl PrefixCache {
    fn new(budget: usize) -> Self {
        Self {
            entries: Vec::new(),
            budget,
            clock: 0,
        }
    }

    /// A copy of the cache for the longest cached prefix of `ids` (at most `limit` tokens).
    fn take(&mut self, ids: &[u32], limit: usize) -> Option<(KvCache, usize)> {
        self.clock += 1;
        let (index, shared) = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, (tokens, _, _))| (i, common_prefix(tokens, ids).min(limit)))
            .max_by_key(|&(_, n)| n)?;
        if shared < MIN_CACHED_PREFIX {
            return None;
        }
        self.entries[index].2 = self.clock;
        let snapshot = self.entries[index].1.snapshot(shared).ok()?;
        Some((snapshot, shared))
    }

    fn store(&mut self, ids: &[u32], cache: &KvCache) -> Result<(), LlmError> {
        self.clock += 1;
        if let Some(entry) = self
            .entries
            .iter_mut()
            .find(|(t, _, _)| t.as_slice() == ids)
        {
            entry.2 = self.clock;
            return Ok(());
        }
        let snapshot = cache.snapshot(ids.len())?;
        if snapshot.bytes() > self.budget {
            return Ok(());
        }
        self.entries.push((ids.to_vec(), snapshot, self.clock));
        while self.entries.iter().map(|e| e.1.bytes()).sum::<usize>() > self.budget {
            let oldest = (0..self.entries.len())
                .min_by_key(|&i| self.entries[i].2)
                .unwrap_or(0);
            self.entries.swap_remove(oldest);
        }
        Ok(())
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
