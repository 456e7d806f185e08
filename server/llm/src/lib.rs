//! agora-llm: language models for Agora, with no game code and no Bevy in it.
//!
//! - [`LanguageModel`]: generate text, score candidate continuations by log-likelihood;
//!   [`TextEmbedder`]: sentence vectors for memory retrieval.
//! - [`backends`]: the embedded model (a GGUF run in-process by candle through the project's
//!   own forward pass, [`decoder`], on its own [`kernels`] and [`tokenizers`]), MiniLM
//!   embeddings, and any OpenAI-compatible server.
//! - [`worker`]: a bounded priority queue of calls served by worker threads.
//! - [`priority`]: model threads run at a lower priority than the game's tick.
//!
//! Calls block; callers run them on worker threads, never inside a game tick.

pub mod backends;
pub mod decoder;
pub mod gguf;
pub mod journal;
pub mod kernels;
pub mod locate;
pub mod priority;
pub mod sampling;
pub mod tokenizers;
pub mod worker;

use std::time::Duration;

pub use sampling::SamplingParams;

/// What went wrong in a model call. Callers keep their current plan and move on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    #[error("model: {0}")]
    Model(String),
    #[error("bad request: {0}")]
    Request(String),
    #[error("backend unavailable: {0}")]
    Unavailable(String),
}

impl From<candle_core::Error> for LlmError {
    fn from(e: candle_core::Error) -> Self {
        LlmError::Model(e.to_string())
    }
}

/// A text generation request.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateRequest {
    pub prompt: String,
    pub max_tokens: u32,
    /// Generation stops before the first occurrence of any of these.
    pub stop: Vec<String>,
    pub sampling: SamplingParams,
}

impl GenerateRequest {
    /// Cuts `text` before the first stop sequence in it; true if there was one.
    pub fn cut_at_stop(&self, text: &mut String) -> bool {
        cut_at_stop(&self.stop, text)
    }
}

/// Cuts `text` before the first of `stop` in it; true if there was one.
pub fn cut_at_stop(stop: &[String], text: &mut String) -> bool {
    match stop.iter().filter_map(|s| text.find(s.as_str())).min() {
        Some(cut) => {
            text.truncate(cut);
            true
        }
        None => false,
    }
}

/// Tokens in and out, and time: reported by every call.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub prompt_tokens: u32,
    /// Prompt tokens whose KV cache was reused from an earlier call.
    pub cached_tokens: u32,
    pub completion_tokens: u32,
    pub elapsed: Duration,
}

impl Usage {
    /// Prompt and output tokens together: what a token budget counts.
    pub fn tokens(&self) -> u32 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    pub text: String,
    pub usage: Usage,
}

/// Scoring request: which of these continuations of `prompt` is most likely?
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreRequest {
    pub prompt: String,
    pub candidates: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    /// Sum of the log-probabilities of each candidate's tokens, in request order.
    pub logprobs: Vec<f32>,
    /// Number of tokens of each candidate.
    pub tokens: Vec<u32>,
    pub usage: Usage,
}

impl Scores {
    /// Index of the most likely candidate (by total log-probability).
    pub fn best(&self) -> Option<usize> {
        (0..self.logprobs.len()).max_by(|&a, &b| self.logprobs[a].total_cmp(&self.logprobs[b]))
    }
}

/// Vectors for texts, in order, and what computing them cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    pub usage: Usage,
}

/// A sentence-embedding backend (memory retrieval): MiniLM in-process ([`backends::minilm::Embedder`])
/// or an OpenAI-compatible server ([`backends::openai::OpenAiModel`]). Shared across worker threads.
pub trait TextEmbedder: Send + Sync {
    fn name(&self) -> &str;
    fn embed(&self, texts: &[&str]) -> Result<Embeddings, LlmError>;
}

/// A language model backend. Implementations are shared across worker threads.
pub trait LanguageModel: Send + Sync {
    fn name(&self) -> &str;
    fn generate(&self, request: &GenerateRequest) -> Result<Generation, LlmError>;
    fn score(&self, request: &ScoreRequest) -> Result<Scores, LlmError>;

    /// Calls worth having in flight at once: the worker pool runs this many model workers.
    /// A backend that batches (the embedded model, a vLLM or llama.cpp server) serves them
    /// together; one that does not gains nothing from more than 1.
    fn concurrency(&self) -> usize {
        1
    }

    /// How the backend has batched its calls so far, if it batches them itself.
    fn batching(&self) -> Option<BatchStats> {
        None
    }
}

/// What continuous batching did: how full the passes were, what decoding cost per step, how
/// much of the prompts the prefix cache saved.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct BatchStats {
    /// Forward passes run.
    pub passes: u64,
    /// Passes by the number of sequences in them (index = sequences).
    pub sequences_per_pass: Vec<u64>,
    pub max_sequences: usize,
    /// Passes of decode steps only, their tokens and time: the steady decoding rate.
    pub decode_passes: u64,
    pub decode_tokens: u64,
    pub decode_seconds: f64,
    /// The other passes (with prompt chunks or candidates).
    pub other_tokens: u64,
    pub other_seconds: f64,
    /// The latest decode-only pass times, in ms (a bounded window, for percentiles).
    #[serde(skip)]
    pub recent_decode_ms: Vec<f32>,
    pub prompt_tokens: u64,
    /// Prompt tokens read from the prefix cache instead of computed.
    pub reused_prompt_tokens: u64,
    pub prefix_lookups: u64,
    pub prefix_hits: u64,
    pub prefix_cache_bytes: usize,
}

impl BatchStats {
    /// Sequences per pass, on average.
    pub fn mean_sequences(&self) -> f64 {
        let weighted: u64 = (self.sequences_per_pass.iter().enumerate())
            .map(|(n, &count)| n as u64 * count)
            .sum();
        weighted as f64 / self.passes.max(1) as f64
    }

    /// Decoded tokens per second over the decode-only passes.
    pub fn decode_tokens_per_s(&self) -> f64 {
        self.decode_tokens as f64 / self.decode_seconds.max(1e-9)
    }

    /// The `p`-th percentile (0-100) of the recent decode-only pass times, in ms.
    pub fn decode_step_ms(&self, p: f64) -> f64 {
        let mut times: Vec<f32> = self.recent_decode_ms.clone();
        if times.is_empty() {
            return 0.0;
        }
        times.sort_by(f32::total_cmp);
        let rank = ((p / 100.0) * (times.len() - 1) as f64).round() as usize;
        f64::from(times[rank.min(times.len() - 1)])
    }

    /// Share of lookups that found a cached prefix.
    pub fn prefix_hit_rate(&self) -> f64 {
        self.prefix_hits as f64 / self.prefix_lookups.max(1) as f64
    }
}
