//! A journal of model calls: every request (by a hash of everything that decides its answer)
//! and its answer, one JSON line each. [`Recorder`] wraps real backends and writes the journal
//! as calls are made; [`Replayer`] answers from a journal alone, with no model loaded, as fast
//! as a lookup. A run whose model answers take effect at fixed points (`sim`) replays to the
//! same result from its journal: a recorded experiment can be re-run, inspected and shared
//! without the model, the machine or the time it took.
//!
//! Floats are stored as their bit patterns, so a replayed answer is the recorded one exactly.

use crate::{
    Embeddings, GenerateRequest, Generation, LanguageModel, LlmError, ScoreRequest, Scores,
    TextEmbedder, Usage,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One answer, as journaled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Answer {
    Generated {
        text: String,
        prompt_tokens: u32,
        cached_tokens: u32,
        completion_tokens: u32,
    },
    Scored {
        /// `f32::to_bits` of each log-probability.
        logprobs: Vec<u32>,
        tokens: Vec<u32>,
        prompt_tokens: u32,
    },
    Embedded {
        /// `f32::to_bits` of each component.
        vectors: Vec<Vec<u32>>,
        prompt_tokens: u32,
    },
    /// The call failed; a replay fails the same way.
    Failed { error: String, message: String },
}

impl Answer {
    fn failed(e: &LlmError) -> Self {
        let (error, message) = match e {
            LlmError::Model(m) => ("model", m),
            LlmError::Request(m) => ("request", m),
            LlmError::Unavailable(m) => ("unavailable", m),
        };
        Answer::Failed {
            error: error.into(),
            message: message.clone(),
        }
    }

    /// The recorded failure, if this answer is one.
    fn as_error(&self) -> Option<LlmError> {
        match self {
            Answer::Failed { error, message } => Some(match error.as_str() {
                "model" => LlmError::Model(message.clone()),
                "request" => LlmError::Request(message.clone()),
                _ => LlmError::Unavailable(message.clone()),
            }),
            _ => None,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Line {
    key: String,
    #[serde(flatten)]
    answer: Answer,
}

fn hash(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn generate_key(r: &GenerateRequest) -> String {
    let s = &r.sampling;
    let numbers = [
        u64::from(r.max_tokens),
        u64::from(s.temperature.to_bits()),
        u64::from(s.top_p.to_bits()),
        u64::from(s.repetition_penalty.to_bits()),
        s.seed,
    ];
    let numbers: Vec<u8> = numbers.iter().flat_map(|n| n.to_le_bytes()).collect();
    let mut parts: Vec<&[u8]> = vec![b"generate", r.prompt.as_bytes(), &numbers];
    parts.extend(r.stop.iter().map(|s| s.as_bytes()));
    hash(&parts)
}

fn score_key(r: &ScoreRequest) -> String {
    let mut parts: Vec<&[u8]> = vec![b"score", r.prompt.as_bytes()];
    parts.extend(r.candidates.iter().map(|c| c.as_bytes()));
    hash(&parts)
}

fn embed_key(texts: &[&str]) -> String {
    let mut parts: Vec<&[u8]> = vec![b"embed"];
    parts.extend(texts.iter().map(|t| t.as_bytes()));
    hash(&parts)
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

fn floats(bits: &[u32]) -> Vec<f32> {
    bits.iter().map(|b| f32::from_bits(*b)).collect()
}

/// The journal file being written.
struct Writer {
    file: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
    failed: bool,
}

impl Writer {
    /// Appends a line and flushes it (a killed run keeps every answer it got).
    fn append(&mut self, key: String, answer: Answer) {
        let line = Line { key, answer };
        let written = serde_json::to_string(&line)
            .map_err(std::io::Error::other)
            .and_then(|json| writeln!(self.file, "{json}"))
            .and_then(|()| self.file.flush());
        if let Err(e) = written
            && !std::mem::replace(&mut self.failed, true)
        {
            tracing::error!(
                "journal {}: cannot write ({e}); calls go unrecorded",
                self.path.display()
            );
        }
    }
}

/// Real backends whose every answer is also written to a journal.
pub struct Recorder {
    model: Option<Arc<dyn LanguageModel>>,
    embedder: Option<Arc<dyn TextEmbedder>>,
    writer: Mutex<Writer>,
}

impl Recorder {
    /// Starts a journal at `path` (replacing any file there).
    pub fn create(
        path: &Path,
        model: Option<Arc<dyn LanguageModel>>,
        embedder: Option<Arc<dyn TextEmbedder>>,
    ) -> Result<Arc<Self>, LlmError> {
        let file = std::fs::File::create(path).map_err(|e| {
            LlmError::Unavailable(format!("cannot create journal {}: {e}", path.display()))
        })?;
        Ok(Arc::new(Self {
            model,
            embedder,
            writer: Mutex::new(Writer {
                file: std::io::BufWriter::new(file),
                path: path.to_path_buf(),
                failed: false,
            }),
        }))
    }

    fn record(&self, key: String, answer: Answer) {
        if let Ok(mut writer) = self.writer.lock() {
            writer.append(key, answer);
        }
    }

    fn model(&self) -> Result<&dyn LanguageModel, LlmError> {
        self.model
            .as_deref()
            .ok_or_else(|| LlmError::Unavailable("no language model configured".into()))
    }
}

impl LanguageModel for Recorder {
    fn name(&self) -> &str {
        self.model.as_ref().map_or("none", |m| m.name())
    }

    fn generate(&self, r: &GenerateRequest) -> Result<Generation, LlmError> {
        let generation = self.model()?.generate(r).inspect_err(|e| {
            self.record(generate_key(r), Answer::failed(e));
        })?;
        let u = generation.usage;
        self.record(
            generate_key(r),
            Answer::Generated {
                text: generation.text.clone(),
                prompt_tokens: u.prompt_tokens,
                cached_tokens: u.cached_tokens,
                completion_tokens: u.completion_tokens,
            },
        );
        Ok(generation)
    }

    fn score(&self, r: &ScoreRequest) -> Result<Scores, LlmError> {
        let scores = self.model()?.score(r).inspect_err(|e| {
            self.record(score_key(r), Answer::failed(e));
        })?;
        self.record(
            score_key(r),
            Answer::Scored {
                logprobs: bits(&scores.logprobs),
                tokens: scores.tokens.clone(),
                prompt_tokens: scores.usage.prompt_tokens,
            },
        );
        Ok(scores)
    }

    fn concurrency(&self) -> usize {
        self.model.as_ref().map_or(1, |m| m.concurrency())
    }

    fn batching(&self) -> Option<crate::BatchStats> {
        self.model.as_ref().and_then(|m| m.batching())
    }
}

impl TextEmbedder for Recorder {
    fn name(&self) -> &str {
        self.embedder.as_ref().map_or("none", |e| e.name())
    }

    fn embed(&self, texts: &[&str]) -> Result<Embeddings, LlmError> {
        let embedder = (self.embedder.as_deref())
            .ok_or_else(|| LlmError::Unavailable("no embedding model configured".into()))?;
        let embeddings = embedder.embed(texts).inspect_err(|e| {
            self.record(embed_key(texts), Answer::failed(e));
        })?;
        self.record(
            embed_key(texts),
            Answer::Embedded {
                vectors: embeddings.vectors.iter().map(|v| bits(v)).collect(),
                prompt_tokens: embeddings.usage.prompt_tokens,
            },
        );
        Ok(embeddings)
    }
}

/// Answers from a journal, with no model at all.
pub struct Replayer {
    answers: HashMap<String, Answer>,
    path: PathBuf,
}

impl Replayer {
    /// Reads a journal. A line that is not one is an error naming it; a last line cut short
    /// (a killed run) is skipped with a warning.
    pub fn open(path: &Path) -> Result<Arc<Self>, LlmError> {
        let file = std::fs::File::open(path).map_err(|e| {
            LlmError::Unavailable(format!("cannot open journal {}: {e}", path.display()))
        })?;
        let lines: Vec<String> = BufReader::new(file)
            .lines()
            .collect::<Result<_, _>>()
            .map_err(|e| LlmError::Unavailable(format!("journal {}: {e}", path.display())))?;
        let mut answers = HashMap::new();
        for (i, text) in lines.iter().enumerate() {
            match serde_json::from_str::<Line>(text) {
                Ok(line) => {
                    answers.entry(line.key).or_insert(line.answer);
                }
                Err(_) if i + 1 == lines.len() => tracing::warn!(
                    "journal {}: the last line is cut short (a killed run?); skipped",
                    path.display()
                ),
                Err(e) => {
                    return Err(LlmError::Unavailable(format!(
                        "journal {}:{}: not a journal line: {e}",
                        path.display(),
                        i + 1
                    )));
                }
            }
        }
        Ok(Arc::new(Self {
            answers,
            path: path.to_path_buf(),
        }))
    }

    /// Calls the journal holds.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// The width of the journal's embeddings, if it has any.
    pub fn dimensions(&self) -> Option<usize> {
        self.answers.values().find_map(|a| match a {
            Answer::Embedded { vectors, .. } => vectors.first().map(Vec::len),
            _ => None,
        })
    }

    fn answer(&self, key: &str) -> Result<&Answer, LlmError> {
        let answer = self.answers.get(key).ok_or_else(|| {
            LlmError::Unavailable(format!(
                "journal {} has no answer for this call: the run differs from the recorded one",
                self.path.display()
            ))
        })?;
        match answer.as_error() {
            Some(e) => Err(e),
            None => Ok(answer),
        }
    }
}

impl LanguageModel for Replayer {
    fn name(&self) -> &str {
        "journal"
    }

    fn generate(&self, r: &GenerateRequest) -> Result<Generation, LlmError> {
        match self.answer(&generate_key(r))? {
            Answer::Generated {
                text,
                prompt_tokens,
                cached_tokens,
                completion_tokens,
            } => Ok(Generation {
                text: text.clone(),
                usage: Usage {
                    prompt_tokens: *prompt_tokens,
                    cached_tokens: *cached_tokens,
                    completion_tokens: *completion_tokens,
                    ..Usage::default()
                },
            }),
            _ => Err(LlmError::Model(
                "journal: a generation's key holds another kind".into(),
            )),
        }
    }

    fn score(&self, r: &ScoreRequest) -> Result<Scores, LlmError> {
        match self.answer(&score_key(r))? {
            Answer::Scored {
                logprobs,
                tokens,
                prompt_tokens,
            } => Ok(Scores {
                logprobs: floats(logprobs),
                tokens: tokens.clone(),
                usage: Usage {
                    prompt_tokens: *prompt_tokens,
                    ..Usage::default()
                },
            }),
            _ => Err(LlmError::Model(
                "journal: a score's key holds another kind".into(),
            )),
        }
    }
}

impl TextEmbedder for Replayer {
    fn name(&self) -> &str {
        "journal"
    }

    fn embed(&self, texts: &[&str]) -> Result<Embeddings, LlmError> {
        match self.answer(&embed_key(texts))? {
            Answer::Embedded {
                vectors,
                prompt_tokens,
            } => Ok(Embeddings {
                vectors: vectors.iter().map(|v| floats(v)).collect(),
                usage: Usage {
                    prompt_tokens: *prompt_tokens,
                    ..Usage::default()
                },
            }),
            _ => Err(LlmError::Model(
                "journal: an embedding's key holds another kind".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SamplingParams;

    /// A scripted stand-in for both models (not real ones), counting its calls.
    #[derive(Default)]
    struct Scripted(std::sync::atomic::AtomicU32);

    impl LanguageModel for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn generate(&self, r: &GenerateRequest) -> Result<Generation, LlmError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(Generation {
                text: format!("{} and more", r.prompt),
                usage: Usage {
                    prompt_tokens: 3,
                    completion_tokens: 2,
                    ..Usage::default()
                },
            })
        }
        fn score(&self, r: &ScoreRequest) -> Result<Scores, LlmError> {
            Ok(Scores {
                logprobs: r
                    .candidates
                    .iter()
                    .map(|c| -(c.len() as f32) / 3.0)
                    .collect(),
                tokens: vec![1; r.candidates.len()],
                usage: Usage::default(),
            })
        }
    }

    impl TextEmbedder for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn embed(&self, texts: &[&str]) -> Result<Embeddings, LlmError> {
            Ok(Embeddings {
                vectors: texts
                    .iter()
                    .map(|t| vec![0.1 + t.len() as f32, f32::MIN_POSITIVE])
                    .collect(),
                usage: Usage::default(),
            })
        }
    }

    fn request(prompt: &str, seed: u64) -> GenerateRequest {
        GenerateRequest {
            prompt: prompt.into(),
            max_tokens: 8,
            stop: vec!["\n".into()],
            sampling: SamplingParams {
                seed,
                ..SamplingParams::default()
            },
        }
    }

    #[test]
    fn a_replayed_journal_gives_the_recorded_answers_bit_for_bit_without_the_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let scripted = Arc::new(Scripted::default());
        let recorder =
            Recorder::create(&path, Some(scripted.clone()), Some(scripted.clone())).unwrap();
        let generated = recorder.generate(&request("hi", 1)).unwrap();
        let scores = recorder
            .score(&ScoreRequest {
                prompt: "p".into(),
                candidates: vec![" a".into(), " bcd".into()],
            })
            .unwrap();
        let embedded = recorder.embed(&["one", "three"]).unwrap();
        drop(recorder);

        let replay = Replayer::open(&path).unwrap();
        assert_eq!(replay.len(), 3);
        assert_eq!(replay.dimensions(), Some(2));
        assert_eq!(
            replay.generate(&request("hi", 1)).unwrap(),
            Generation {
                usage: Usage {
                    elapsed: Default::default(),
                    ..generated.usage
                },
                ..generated
            }
        );
        let replayed = replay
            .score(&ScoreRequest {
                prompt: "p".into(),
                candidates: vec![" a".into(), " bcd".into()],
            })
            .unwrap();
        assert_eq!(bits(&replayed.logprobs), bits(&scores.logprobs));
        let vectors = replay.embed(&["one", "three"]).unwrap().vectors;
        assert_eq!(vectors, embedded.vectors);
        assert_eq!(
            scripted.0.load(std::sync::atomic::Ordering::Relaxed),
            1,
            "replay called the model"
        );

        // Anything else (another seed, other texts) is not in it: a clear error.
        let e = replay.generate(&request("hi", 2)).unwrap_err().to_string();
        assert!(e.contains("no answer for this call"), "{e}");
        assert!(replay.embed(&["three", "one"]).is_err());
    }

    #[test]
    fn a_cut_last_line_is_skipped_and_a_broken_line_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let scripted = Arc::new(Scripted::default());
        let recorder = Recorder::create(&path, Some(scripted), None).unwrap();
        recorder.generate(&request("a", 1)).unwrap();
        drop(recorder);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"key\":\"abc\",\"kind\":\"gene");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(Replayer::open(&path).unwrap().len(), 1);
        std::fs::write(&path, format!("garbage\n{text}")).unwrap();
        let e = Replayer::open(&path).err().unwrap().to_string();
        assert!(e.contains("journal.jsonl:1: not a journal line"), "{e}");
    }
}
