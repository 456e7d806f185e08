//! A backend for any server that speaks OpenAI's HTTP API: vLLM, SGLang, llama.cpp's
//! `llama-server`, llama-cpp-python, Ollama. For users who outgrow one machine.
//!
//! - Generation: `POST {base}/completions` (the model continues the prompt, as a base model is
//!   prompted; no chat template).
//! - Scoring, exact: `echo` + `logprobs` returns the log-probability of every prompt token
//!   (vLLM, SGLang, llama-cpp-python). The prompt alone and the prompt + each candidate are
//!   sent; a candidate's score is the sum over the tokens after the prompt's.
//! - Scoring, fallback (`llama-server` and Ollama refuse `echo`): one generated token with its
//!   top 20 alternatives; a candidate scores the log-probability of the listed token that is
//!   the longest prefix of its text, or, if none is, 1 nat below the least likely one listed.
//!   Only the first token is judged: fine for distinct one-word options, approximate otherwise.
//!   Which mode a server gets is found by one probe at the first score call and logged.
//! - Embeddings: `POST {base}/embeddings`; per-token vectors (llama-cpp-python with a model
//!   that sets no pooling) are mean-pooled.
//!
//! Every call is bounded: a timeout per request, retries with exponential backoff on
//! connection errors, timeouts, 429 and 5xx, and a limit on requests in flight.

use crate::{
    Embeddings, GenerateRequest, Generation, LanguageModel, LlmError, ScoreRequest, Scores,
    TextEmbedder, Usage,
};
use serde_json::{Value, json};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Longest response body read (a 262k-vocabulary logprobs reply is far smaller).
const MAX_RESPONSE_BYTES: u64 = 16 << 20;
/// Alternatives asked for in fallback scoring (OpenAI's maximum).
const FALLBACK_TOP: u32 = 20;

/// Where the server is and how patiently to talk to it.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenAiConfig {
    /// Up to and including the version, e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    /// Per request, including reading the reply.
    pub timeout: Duration,
    /// Further attempts after a failure that may pass (connection, timeout, 429, 5xx).
    pub retries: u32,
    /// Wait before the first retry; doubled for each next one, at most 8 s.
    pub backoff: Duration,
    /// Requests in flight at once from this process.
    pub max_in_flight: usize,
}

impl OpenAiConfig {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            model: model.into(),
            api_key: None,
            timeout: Duration::from_secs(120),
            retries: 3,
            backoff: Duration::from_millis(250),
            max_in_flight: 8,
        }
    }

    /// From `AGORA_OPENAI_BASE_URL` and `AGORA_OPENAI_MODEL`, then [`Self::with_env`];
    /// `None` when no base URL is set.
    pub fn from_env() -> Result<Option<Self>, LlmError> {
        let Ok(base) = std::env::var("AGORA_OPENAI_BASE_URL") else {
            return Ok(None);
        };
        let model = std::env::var("AGORA_OPENAI_MODEL").unwrap_or_else(|_| "default".into());
        Self::new(base, model).with_env().map(Some)
    }

    /// Key and limits from the environment: `AGORA_OPENAI_API_KEY` (else `OPENAI_API_KEY`),
    /// `AGORA_OPENAI_TIMEOUT_S`, `AGORA_OPENAI_MAX_IN_FLIGHT`. Keys never come from code.
    pub fn with_env(mut self) -> Result<Self, LlmError> {
        self.api_key = std::env::var("AGORA_OPENAI_API_KEY")
            .or_else(|_| std::env::var("OPENAI_API_KEY"))
            .ok();
        let number = |key: &str| -> Result<Option<u64>, LlmError> {
            std::env::var(key)
                .ok()
                .map(|v| {
                    v.parse::<u64>().map_err(|_| {
                        LlmError::Request(format!("{key}={v:?} is not a whole number"))
                    })
                })
                .transpose()
        };
        if let Some(s) = number("AGORA_OPENAI_TIMEOUT_S")? {
            self.timeout = Duration::from_secs(s.max(1));
        }
        if let Some(n) = number("AGORA_OPENAI_MAX_IN_FLIGHT")? {
            self.max_in_flight = (n as usize).max(1);
        }
        Ok(self)
    }
}

/// How this server lets us score candidates; found by probing once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoringMode {
    /// Exact: prompt log-probabilities through `echo`.
    Echo,
    /// Approximate: the first token's log-probability among the top alternatives.
    FirstToken,
}

/// The HTTP backend. Shared by all worker threads; requests in flight are capped.
pub struct OpenAiModel {
    config: OpenAiConfig,
    name: String,
    agent: ureq::Agent,
    in_flight: Limit,
    scoring: OnceLock<ScoringMode>,
}

impl OpenAiModel {
    pub fn new(config: OpenAiConfig) -> Self {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .timeout_global(Some(config.timeout))
                .timeout_connect(Some(config.timeout.min(Duration::from_secs(10))))
                .http_status_as_error(false)
                .build(),
        );
        Self {
            name: format!("{} at {}", config.model, config.base_url),
            in_flight: Limit::new(config.max_in_flight.max(1)),
            config,
            agent,
            scoring: OnceLock::new(),
        }
    }

    /// How candidates are scored on this server (probes it the first time).
    pub fn scoring_mode(&self) -> ScoringMode {
        *self.scoring.get_or_init(|| {
            let probe = self.completion_logprobs("The sky is blue", 1);
            let mode = match probe {
                Ok((tokens, logprobs, _))
                    if tokens.len() >= 2 && logprobs.len() == tokens.len() =>
                {
                    ScoringMode::Echo
                }
                _ => ScoringMode::FirstToken,
            };
            if mode == ScoringMode::FirstToken {
                tracing::warn!(
                    "{}: the server does not return prompt log-probabilities (echo); candidate \
                     scores use the first token only (approximate)",
                    self.name
                );
            }
            mode
        })
    }

    /// The most requests that were in flight at once (for tests and metrics).
    pub fn peak_in_flight(&self) -> usize {
        self.in_flight.peak()
    }

    /// POST `body` to `{base}/{path}`, with retries; the reply's JSON.
    fn post(&self, path: &str, body: &Value) -> Result<Value, LlmError> {
        let url = format!("{}/{path}", self.config.base_url);
        let mut attempt = 0;
        loop {
            let outcome = {
                let _slot = self.in_flight.acquire();
                self.post_once(&url, body)
            };
            match outcome {
                Ok(value) => return Ok(value),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Transient(e)) if attempt >= self.config.retries => {
                    return Err(LlmError::Unavailable(format!(
                        "{url}: {e} (after {} attempts)",
                        attempt + 1
                    )));
                }
                Err(Failure::Transient(_)) => {
                    let wait = self.config.backoff.saturating_mul(1 << attempt.min(5));
                    std::thread::sleep(wait.min(Duration::from_secs(8)));
                    attempt += 1;
                }
            }
        }
    }

    fn post_once(&self, url: &str, body: &Value) -> Result<Value, Failure> {
        let mut request = self
            .agent
            .post(url)
            .header("Content-Type", "application/json");
        if let Some(key) = &self.config.api_key {
            request = request.header("Authorization", &format!("Bearer {key}"));
        }
        let mut response = request.send_json(body).map_err(|e| match e {
            ureq::Error::Timeout(_) | ureq::Error::Io(_) | ureq::Error::ConnectionFailed => {
                Failure::Transient(e.to_string())
            }
            other => Failure::Final(LlmError::Unavailable(format!("{url}: {other}"))),
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(|e| match e {
                ureq::Error::Timeout(_) | ureq::Error::Io(_) => Failure::Transient(e.to_string()),
                other => Failure::Final(LlmError::Model(format!("{url}: reply: {other}"))),
            })?;
        let server_message = || {
            serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| {
                    let e = &v["error"];
                    e["message"].as_str().or(e.as_str()).map(str::to_string)
                })
                .unwrap_or_else(|| text.chars().take(300).collect())
        };
        match status {
            200..=299 => serde_json::from_str(&text).map_err(|e| {
                Failure::Final(LlmError::Model(format!("{url}: reply is not JSON: {e}")))
            }),
            429 | 500..=599 => Err(Failure::Transient(format!(
                "HTTP {status}: {}",
                server_message()
            ))),
            _ => Err(Failure::Final(LlmError::Request(format!(
                "{url}: HTTP {status}: {}",
                server_message()
            )))),
        }
    }

    /// The prompt's tokens and their log-probabilities (the first has none and gets 0), and
    /// how many tokens the server counted as the prompt.
    fn completion_logprobs(
        &self,
        prompt: &str,
        generated: u32,
    ) -> Result<(Vec<String>, Vec<f32>, Usage), LlmError> {
        let reply = self.post(
            "completions",
            &json!({
                "model": self.config.model,
                "prompt": prompt,
                // 1, not 0: llama-cpp-python reads 0 as "no limit".
                "max_tokens": generated,
                "temperature": 0.0,
                "echo": true,
                "logprobs": 1,
            }),
        )?;
        let usage = usage(&reply);
        let logprobs = &reply["choices"][0]["logprobs"];
        let tokens: Vec<String> = logprobs["tokens"]
            .as_array()
            .ok_or_else(|| LlmError::Model("reply has no choices[0].logprobs.tokens".into()))?
            .iter()
            .map(|t| t.as_str().unwrap_or_default().to_string())
            .collect();
        let values: Vec<f32> = logprobs["token_logprobs"]
            .as_array()
            .ok_or_else(|| LlmError::Model("reply has no token_logprobs".into()))?
            .iter()
            .map(|v| v.as_f64().unwrap_or(0.0) as f32)
            .collect();
        // The reply lists the prompt, then what was generated.
        let prompt_len = tokens
            .len()
            .saturating_sub(usage.completion_tokens as usize);
        Ok((
            tokens[..prompt_len].to_vec(),
            values[..prompt_len.min(values.len())].to_vec(),
            usage,
        ))
    }

    fn score_echo(&self, request: &ScoreRequest) -> Result<Scores, LlmError> {
        let started = Instant::now();
        let (context, _, mut total) = self.completion_logprobs(&request.prompt, 1)?;
        let replies: Vec<Result<(Vec<String>, Vec<f32>, Usage), LlmError>> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = request
                    .candidates
                    .iter()
                    .map(|c| {
                        let text = format!("{}{c}", request.prompt);
                        scope.spawn(move || self.completion_logprobs(&text, 1))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(LlmError::Model("scoring thread panicked".into()))
                        })
                    })
                    .collect()
            });
        let mut scores = Scores {
            logprobs: Vec::with_capacity(replies.len()),
            tokens: Vec::with_capacity(replies.len()),
            usage: Usage::default(),
        };
        for reply in replies {
            let (tokens, logprobs, usage) = reply?;
            // Tokens after the longest common prefix with the prompt alone. Where the candidate
            // merges with the prompt's last token, that re-tokenised token is counted too.
            let shared = tokens
                .iter()
                .zip(&context)
                .take_while(|(a, b)| a == b)
                .count()
                .min(tokens.len().saturating_sub(1));
            scores.logprobs.push(logprobs[shared..].iter().sum());
            scores.tokens.push((tokens.len() - shared) as u32);
            total.prompt_tokens += usage.prompt_tokens;
            total.completion_tokens += usage.completion_tokens;
        }
        total.elapsed = started.elapsed();
        scores.usage = total;
        Ok(scores)
    }

    fn score_first_token(&self, request: &ScoreRequest) -> Result<Scores, LlmError> {
        let started = Instant::now();
        let reply = self.post(
            "completions",
            &json!({
                "model": self.config.model,
                "prompt": request.prompt,
                "max_tokens": 1,
                "temperature": 0.0,
                "logprobs": FALLBACK_TOP,
                "top_logprobs": FALLBACK_TOP,
            }),
        )?;
        let alternatives = top_alternatives(&reply["choices"][0]["logprobs"]).ok_or_else(|| {
            LlmError::Model("the server returned no log-probabilities at all".into())
        })?;
        let floor = alternatives.iter().map(|a| a.1).fold(0f32, f32::min) - 1.0;
        let logprobs = request
            .candidates
            .iter()
            .map(|c| {
                alternatives
                    .iter()
                    .filter(|(token, _)| !token.is_empty() && c.starts_with(token.as_str()))
                    .max_by_key(|(token, _)| token.len())
                    .map_or(floor, |a| a.1)
            })
            .collect();
        let mut usage = usage(&reply);
        usage.elapsed = started.elapsed();
        Ok(Scores {
            logprobs,
            tokens: vec![1; request.candidates.len()],
            usage,
        })
    }
}

impl LanguageModel for OpenAiModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(&self, request: &GenerateRequest) -> Result<Generation, LlmError> {
        let started = Instant::now();
        let s = &request.sampling;
        let mut body = json!({
            "model": self.config.model,
            "prompt": request.prompt,
            "max_tokens": request.max_tokens.max(1),
            "temperature": s.temperature,
            "top_p": s.top_p,
            "seed": s.seed,
            // llama.cpp and llama-cpp-python read the first name, vLLM and SGLang the second;
            // each ignores the other.
            "repeat_penalty": s.repetition_penalty,
            "repetition_penalty": s.repetition_penalty,
        });
        if !request.stop.is_empty() {
            body["stop"] = json!(request.stop);
        }
        let reply = self.post("completions", &body)?;
        let mut text = reply["choices"][0]["text"]
            .as_str()
            .ok_or_else(|| LlmError::Model("reply has no choices[0].text".into()))?
            .to_string();
        // Some servers include the stop text or ignore stops past their limit (OpenAI takes 4).
        request.cut_at_stop(&mut text);
        let mut usage = usage(&reply);
        usage.elapsed = started.elapsed();
        Ok(Generation { text, usage })
    }

    fn score(&self, request: &ScoreRequest) -> Result<Scores, LlmError> {
        if request.candidates.is_empty() {
            return Err(LlmError::Request("no candidates to score".into()));
        }
        match self.scoring_mode() {
            ScoringMode::Echo => self.score_echo(request),
            ScoringMode::FirstToken => self.score_first_token(request),
        }
    }

    /// The in-flight cap: a vLLM or llama.cpp server batches the calls it gets at once.
    fn concurrency(&self) -> usize {
        self.config.max_in_flight.max(1)
    }
}

impl TextEmbedder for OpenAiModel {
    fn name(&self) -> &str {
        &self.name
    }

    /// Embeddings of `texts` from `{base}/embeddings`, in order.
    fn embed(&self, texts: &[&str]) -> Result<Embeddings, LlmError> {
        let started = Instant::now();
        let reply = self.post(
            "embeddings",
            &json!({"model": self.config.model, "input": texts}),
        )?;
        let mut rows: Vec<(usize, Vec<f32>)> = reply["data"]
            .as_array()
            .ok_or_else(|| LlmError::Model("embeddings reply has no data".into()))?
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let index = item["index"].as_u64().map_or(i, |x| x as usize);
                let vector = pooled(&item["embedding"]).unwrap_or_default();
                (index, vector)
            })
            .collect();
        rows.sort_by_key(|r| r.0);
        if rows.len() != texts.len() || rows.iter().any(|r| r.1.is_empty()) {
            return Err(LlmError::Model(format!(
                "asked for {} embeddings, got {} usable",
                texts.len(),
                rows.iter().filter(|r| !r.1.is_empty()).count()
            )));
        }
        let mut usage = usage(&reply);
        usage.elapsed = started.elapsed();
        Ok(Embeddings {
            vectors: rows.into_iter().map(|r| r.1).collect(),
            usage,
        })
    }
}

/// Why a request failed: worth another attempt, or not.
enum Failure {
    Transient(String),
    Final(LlmError),
}

fn usage(reply: &Value) -> Usage {
    let count = |key: &str| reply["usage"][key].as_u64().unwrap_or(0) as u32;
    Usage {
        prompt_tokens: count("prompt_tokens"),
        cached_tokens: reply["usage"]["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0) as u32,
        completion_tokens: count("completion_tokens"),
        elapsed: Duration::ZERO,
    }
}

/// An embedding from a reply: a vector, or one vector per token, mean-pooled (llama-cpp-python
/// returns those for models whose GGUF sets no pooling, such as Gemma).
fn pooled(embedding: &Value) -> Option<Vec<f32>> {
    let numbers = |v: &Value| -> Option<Vec<f32>> {
        v.as_array()?
            .iter()
            .map(|x| x.as_f64().map(|x| x as f32))
            .collect()
    };
    let items = embedding.as_array()?;
    if !items.first()?.is_array() {
        return numbers(embedding);
    }
    let rows: Vec<Vec<f32>> = items.iter().map(numbers).collect::<Option<_>>()?;
    let width = rows[0].len();
    if rows.iter().any(|r| r.len() != width) {
        return None;
    }
    let mut mean = vec![0f32; width];
    for row in &rows {
        for (m, x) in mean.iter_mut().zip(row) {
            *m += x / rows.len() as f32;
        }
    }
    Some(mean)
}

/// The first generated token's alternatives, from either reply shape: the completions API's
/// `top_logprobs: [{token: logprob}]` or the chat-style `content: [{top_logprobs: [{token,
/// logprob}]}]` that llama-server returns.
fn top_alternatives(logprobs: &Value) -> Option<Vec<(String, f32)>> {
    if let Some(first) = logprobs["top_logprobs"].get(0).and_then(Value::as_object) {
        return Some(
            first
                .iter()
                .filter_map(|(t, v)| Some((t.clone(), v.as_f64()? as f32)))
                .collect(),
        );
    }
    let first = logprobs["content"].get(0)?;
    let list = first["top_logprobs"].as_array()?;
    Some(
        list.iter()
            .filter_map(|a| {
                Some((
                    a["token"].as_str()?.to_string(),
                    a["logprob"].as_f64()? as f32,
                ))
            })
            .collect(),
    )
}

/// A counting semaphore that remembers its peak.
struct Limit {
    state: Mutex<(usize, usize)>,
    freed: Condvar,
    max: usize,
}

struct Slot<'a>(&'a Limit);

impl Limit {
    fn new(max: usize) -> Self {
        Self {
            state: Mutex::new((0, 0)),
            freed: Condvar::new(),
            max,
        }
    }

    fn acquire(&self) -> Slot<'_> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.0 >= self.max {
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.0 += 1;
        state.1 = state.1.max(state.0);
        Slot(self)
    }

    fn peak(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 -= 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests;
