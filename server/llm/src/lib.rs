//! agora-llm: language models for Agora, with no game code and no Bevy in it.
//!
//! - [`LanguageModel`]: generate text, score candidate continuations by log-likelihood;
//!   [`TextEmbedder`]: sentence vectors for memory retrieval.
//! - [`backends`]: the embedded model (a GGUF run in-process by candle through the project's
//!   own forward pass, [`decoder`], on its own [`kernels`] and [`tokenizers`]), MiniLM
//!   embeddings, and any OpenAI-compatible server.
//! - [`worker`]: a bounded priority queue of calls served by worker threads.
//!
//! Calls block; callers run them on worker threads, never inside a game tick.

pub mod backends;
pub mod decoder;
pub mod gguf;
pub mod journal;
pub mod kernels;
pub mod locate;
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
        match self.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
            Some(cut) => {
                text.truncate(cut);
                true
            }
            None => false,
        }
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
}
