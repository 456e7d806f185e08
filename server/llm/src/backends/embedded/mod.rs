//! The embedded backend: a GGUF model run in-process by candle, as a small inference server:
//! concurrent calls are batched into shared forward passes ([`batcher`]), prompts that start
//! alike share their prefix's keys and values ([`prefixes`]), and candidates of a scoring call
//! run in one chunk.

pub mod batcher;
pub mod prefixes;

use crate::decoder::Decoder;
use crate::gguf::GgufFile;
use crate::tokenizers::Tokenizer;
use crate::{
    BatchStats, GenerateRequest, Generation, LanguageModel, LlmError, ScoreRequest, Scores,
};
use batcher::{Batcher, Outcome, Task, Ticket};
use std::path::Path;
use std::sync::Arc;

/// Candidates per scoring call, at most.
pub const MAX_CANDIDATES: usize = 64;

/// Settings of the embedded backend.
#[derive(Clone, Copy, Debug)]
pub struct EmbeddedOptions {
    /// Longest prompt + output, in tokens.
    pub max_context: usize,
    /// Memory for cached prompt prefixes.
    pub prefix_cache_bytes: usize,
    /// Sequences decoded together, at most (the worker pool keeps this many calls in flight).
    pub max_batch: usize,
    /// Tokens in one forward pass, at most: newcomers' prompts go in chunks within it, so
    /// decoding sequences keep stepping.
    pub max_pass_tokens: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            max_context: 4096,
            prefix_cache_bytes: 256 << 20,
            max_batch: 16,
            max_pass_tokens: 256,
        }
    }
}

impl EmbeddedOptions {
    /// The defaults, with `AGORA_LLM_MAX_BATCH` (sequences decoded together, 1-256) and
    /// `AGORA_LLM_MAX_PASS_TOKENS` (tokens per forward pass, 16-4096) read from the
    /// environment when set; a value out of range or not a number is an error.
    pub fn from_env() -> Result<Self, LlmError> {
        let read = |name: &str,
                    range: std::ops::RangeInclusive<usize>|
         -> Result<Option<usize>, LlmError> {
            let Ok(value) = std::env::var(name) else {
                return Ok(None);
            };
            match value.trim().parse::<usize>() {
                Ok(n) if range.contains(&n) => Ok(Some(n)),
                _ => Err(LlmError::Request(format!(
                    "{name}={value:?}: expected a whole number from {} to {}",
                    range.start(),
                    range.end()
                ))),
            }
        };
        let mut options = Self::default();
        if let Some(n) = read("AGORA_LLM_MAX_BATCH", 1..=256)? {
            options.max_batch = n;
        }
        if let Some(n) = read("AGORA_LLM_MAX_PASS_TOKENS", 16..=4096)? {
            options.max_pass_tokens = n;
        }
        Ok(options)
    }
}

pub struct EmbeddedModel {
    name: String,
    pub tokenizer: Arc<Tokenizer>,
    max_context: usize,
    max_batch: usize,
    batcher: Batcher,
}

impl EmbeddedModel {
    pub fn load(path: &Path, options: EmbeddedOptions) -> Result<Self, LlmError> {
        crate::priority::start_compute_pools();
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
        let tokenizer = Arc::new(tokenizer);
        let max_context = model.config.max_context;
        let batcher = Batcher::start(Arc::new(model), tokenizer.clone(), &options)?;
        Ok(Self {
            name,
            tokenizer,
            max_context,
            max_batch: options.max_batch.max(1),
            batcher,
        })
    }

    pub fn max_context(&self) -> usize {
        self.max_context
    }

    /// Starts a generation without waiting for it: it joins the running batch.
    pub fn submit_generate(&self, request: &GenerateRequest) -> Result<Ticket, LlmError> {
        let ids = self.encode_prompt(&request.prompt, request.max_tokens as usize)?;
        Ok(self.batcher.submit(Task::Generate {
            ids,
            max_tokens: request.max_tokens as usize,
            stop: request.stop.clone(),
            sampling: request.sampling,
        }))
    }

    /// Starts a scoring call without waiting for it.
    pub fn submit_score(&self, request: &ScoreRequest) -> Result<Ticket, LlmError> {
        if request.candidates.is_empty() || request.candidates.len() > MAX_CANDIDATES {
            return Err(LlmError::Request(format!(
                "{} candidates, expected 1-{MAX_CANDIDATES}",
                request.candidates.len()
            )));
        }
        let candidates: Vec<Vec<u32>> = (request.candidates.iter())
            .map(|c| self.tokenizer.encode(c, false, false))
            .collect();
        if let Some(i) = candidates.iter().position(Vec::is_empty) {
            return Err(LlmError::Request(format!("candidate {i} is empty")));
        }
        let longest = candidates.iter().map(Vec::len).max().unwrap_or(0);
        let ids = self.encode_prompt(&request.prompt, longest)?;
        Ok(self.batcher.submit(Task::Score { ids, candidates }))
    }

    /// Starts the batching figures afresh.
    pub fn reset_batching(&self) {
        self.batcher.reset_stats();
    }

    fn encode_prompt(&self, prompt: &str, extra: usize) -> Result<Vec<u32>, LlmError> {
        let ids = self.tokenizer.encode(prompt, true, false);
        if ids.is_empty() {
            return Err(LlmError::Request("empty prompt".into()));
        }
        if ids.len() + extra > self.max_context {
            return Err(LlmError::Request(format!(
                "prompt of {} tokens plus {extra} more exceeds the context of {}",
                ids.len(),
                self.max_context
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
        match self.submit_generate(request)?.wait()? {
            Outcome::Generated(generation) => Ok(generation),
            Outcome::Scored(_) => Err(LlmError::Model("a generation came back as scores".into())),
        }
    }

    fn score(&self, request: &ScoreRequest) -> Result<Scores, LlmError> {
        match self.submit_score(request)?.wait()? {
            Outcome::Scored(scores) => Ok(scores),
            Outcome::Generated(_) => Err(LlmError::Model("scores came back as text".into())),
        }
    }

    fn concurrency(&self) -> usize {
        self.max_batch
    }

    fn batching(&self) -> Option<BatchStats> {
        Some(self.batcher.stats())
    }
}
