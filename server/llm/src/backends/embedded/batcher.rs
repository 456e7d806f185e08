//! Continuous batching: the embedded model as a small inference server.
//!
//! Callers (the worker pool's threads) hand in requests and wait for their answers; one
//! scheduler thread runs forward passes over every sequence in flight. A request joins the
//! running batch at the next pass and leaves it when it is done. Each pass carries one decode
//! step of every generating sequence first, then the candidates of scoring requests, then
//! chunks of newcomers' prompts, up to a cap of tokens per pass, so a long prompt cannot
//! starve decoding. Decoding m sequences together reads the weights once instead of m times.
//!
//! Every row of a pass gets the bits it would get alone (see `decoder::attention` and the
//! row-by-row quantised matmuls), so an answer never depends on what else is in the batch.

use super::EmbeddedOptions;
use super::prefixes::{MIN_CACHED_PREFIX, PrefixCache, common_prefix};
use crate::decoder::{Chunk, Decoder, KvCache};
use crate::sampling::{Sampler, log_softmax};
use crate::tokenizers::Tokenizer;
use crate::{BatchStats, Generation, LlmError, SamplingParams, Scores, Usage};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// Decode-only pass times kept for percentiles.
const RECENT_STEPS: usize = 4096;

/// What the scheduler is asked to do, already tokenised and checked against the context.
pub enum Task {
    Generate {
        ids: Vec<u32>,
        max_tokens: usize,
        stop: Vec<String>,
        sampling: SamplingParams,
    },
    Score {
        ids: Vec<u32>,
        candidates: Vec<Vec<u32>>,
    },
}

impl Task {
    fn prompt(&self) -> &[u32] {
        match self {
            Task::Generate { ids, .. } | Task::Score { ids, .. } => ids,
        }
    }
}

/// A finished request.
#[derive(Debug)]
pub enum Outcome {
    Generated(Generation),
    Scored(Scores),
}

type Reply = Result<Outcome, LlmError>;

/// A request in flight. Dropping it cancels the request: it leaves the batch at the next
/// pass, and the others go on.
pub struct Ticket {
    answer: Receiver<Reply>,
    cancelled: Arc<AtomicBool>,
}

impl Ticket {
    /// Waits for the answer.
    pub fn wait(self) -> Reply {
        self.answer
            .recv()
            .unwrap_or_else(|_| Err(LlmError::Unavailable("the model has stopped".into())))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

struct Request {
    task: Task,
    reply: Sender<Reply>,
    cancelled: Arc<AtomicBool>,
    submitted: Instant,
}

#[derive(Default)]
struct Inbox {
    requests: VecDeque<Request>,
    closed: bool,
}

/// The scheduler thread and its inbox; dropping it stops the thread after its pass.
pub struct Batcher {
    inbox: Arc<(Mutex<Inbox>, Condvar)>,
    stats: Arc<Mutex<BatchStats>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Batcher {
    pub fn start(
        decoder: Arc<Decoder>,
        tokenizer: Arc<Tokenizer>,
        options: &EmbeddedOptions,
    ) -> Result<Self, LlmError> {
        let inbox: Arc<(Mutex<Inbox>, Condvar)> = Arc::default();
        let stats: Arc<Mutex<BatchStats>> = Arc::default();
        let mut scheduler = Scheduler {
            decoder,
            tokenizer,
            max_sequences: options.max_batch.max(1),
            max_pass_tokens: options.max_pass_tokens.max(1),
            prefixes: PrefixCache::new(options.prefix_cache_bytes),
            running: Vec::new(),
            next_id: 0,
            stats: stats.clone(),
        };
        let thread = {
            let inbox = inbox.clone();
            std::thread::Builder::new()
                .name("llm-batcher".into())
                .spawn(move || {
                    crate::priority::lower_this_thread();
                    scheduler.run(&inbox)
                })
                .map_err(|e| LlmError::Unavailable(format!("cannot start the batcher: {e}")))?
        };
        Ok(Self {
            inbox,
            stats,
            thread: Some(thread),
        })
    }

    /// Hands a request to the scheduler; the ticket gives its answer.
    pub fn submit(&self, task: Task) -> Ticket {
        let (reply, answer) = channel();
        let cancelled = Arc::new(AtomicBool::new(false));
        let (lock, ready) = &*self.inbox;
        match lock.lock() {
            Ok(mut inbox) if !inbox.closed => {
                inbox.requests.push_back(Request {
                    task,
                    reply,
                    cancelled: cancelled.clone(),
                    submitted: Instant::now(),
                });
                ready.notify_one();
            }
            _ => {
                let _ = reply.send(Err(LlmError::Unavailable("the model has stopped".into())));
            }
        }
        Ticket { answer, cancelled }
    }

    pub fn stats(&self) -> BatchStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Starts the figures afresh (benchmarks measure one shape at a time).
    pub fn reset_stats(&self) {
        if let Ok(mut stats) = self.stats.lock() {
            let bytes = stats.prefix_cache_bytes;
            *stats = BatchStats {
                prefix_cache_bytes: bytes,
                ..BatchStats::default()
            };
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        if let Ok(mut inbox) = self.inbox.0.lock() {
            inbox.closed = true;
        }
        self.inbox.1.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where a sequence is.
enum State {
    /// Its prompt is going in; `leader` is a sequence whose prompt starts like this one's:
    /// this one waits for it and then reads its prefix instead of computing it again.
    Prefill { leader: Option<u64> },
    /// Generating; `next` is the token to run in the next pass.
    Decode {
        sampler: Box<Sampler>,
        recent: Vec<u32>,
        output: Vec<u32>,
        next: u32,
    },
    /// Scoring: the prompt is in; its candidates run in the next pass.
    Candidates { first: Vec<f32> },
}

struct Sequence {
    id: u64,
    request: Request,
    cache: KvCache,
    /// Prompt tokens in the cache.
    done: usize,
    state: State,
    usage: Usage,
}

/// One sequence's part of a pass.
struct Part {
    sequence: usize,
    tokens: Vec<u32>,
    positions: Vec<usize>,
    segments: Option<Vec<u32>>,
    logits_for: Vec<usize>,
    keep: bool,
}

struct Scheduler {
    decoder: Arc<Decoder>,
    tokenizer: Arc<Tokenizer>,
    /// Sequences in one pass, at most; more requests wait for a place.
    max_sequences: usize,
    /// Tokens in one pass, at most (a single scoring request's candidates may exceed it in a
    /// pass of their own).
    max_pass_tokens: usize,
    prefixes: PrefixCache,
    running: Vec<Sequence>,
    next_id: u64,
    stats: Arc<Mutex<BatchStats>>,
}

impl Scheduler {
    fn run(&mut self, inbox: &(Mutex<Inbox>, Condvar)) {
        loop {
            if !self.admit(inbox) {
                return;
            }
            self.running
                .retain(|s| !s.request.cancelled.load(Ordering::Relaxed));
            self.release_followers();
            let parts = self.plan();
            if parts.is_empty() {
                continue;
            }
            self.pass(parts);
        }
    }

    /// Moves waiting requests into the batch while there is room; waits when there is
    /// nothing to do. False when the batcher is stopping.
    fn admit(&mut self, inbox: &(Mutex<Inbox>, Condvar)) -> bool {
        let (lock, ready) = inbox;
        let Ok(mut queue) = lock.lock() else {
            return false;
        };
        while self.running.is_empty() && queue.requests.is_empty() && !queue.closed {
            queue = match ready.wait(queue) {
                Ok(q) => q,
                Err(_) => return false,
            };
        }
        if queue.closed {
            for request in queue.requests.drain(..) {
                let _ = (request.reply)
                    .send(Err(LlmError::Unavailable("the model has stopped".into())));
            }
            return false;
        }
        while self.running.len() < self.max_sequences {
            let Some(request) = queue.requests.pop_front() else {
                break;
            };
            if request.cancelled.load(Ordering::Relaxed) {
                continue;
            }
            let cache = match self.decoder.new_cache() {
                Ok(cache) => cache,
                Err(e) => {
                    let _ = request.reply.send(Err(e));
                    continue;
                }
            };
            let usage = Usage {
                prompt_tokens: request.task.prompt().len() as u32,
                completion_tokens: match &request.task {
                    Task::Score { candidates, .. } => {
                        candidates.iter().map(|c| c.len() as u32).sum()
                    }
                    Task::Generate { .. } => 0,
                },
                ..Usage::default()
            };
            let mut sequence = Sequence {
                id: self.next_id,
                request,
                cache,
                done: 0,
                state: State::Prefill { leader: None },
                usage,
            };
            self.next_id += 1;
            self.start_prompt(&mut sequence, true);
            self.running.push(sequence);
        }
        true
    }

    /// Reads the longest known prefix of the sequence's prompt from the prefix cache, or,
    /// when `may_follow` and a sequence still computing its prompt shares a longer start,
    /// waits for that one.
    fn start_prompt(&mut self, sequence: &mut Sequence, may_follow: bool) {
        let ids = sequence.request.task.prompt();
        // At least the prompt's last token runs, for its logits.
        let limit = ids.len().saturating_sub(1);
        let cached = self.prefixes.lookup(ids, limit);
        let reused = cached.as_ref().map_or(0, |kv| kv.len());
        let leader = (self.running.iter())
            .filter(|s| matches!(s.state, State::Prefill { leader: None }))
            .map(|s| (s.id, common_prefix(s.request.task.prompt(), ids).min(limit)))
            .filter(|&(_, shared)| {
                shared >= MIN_CACHED_PREFIX && shared >= reused + MIN_CACHED_PREFIX
            })
            .max_by_key(|&(_, shared)| shared)
            .map(|(id, _)| id);
        if let (true, Some(leader)) = (may_follow, leader) {
            sequence.state = State::Prefill {
                leader: Some(leader),
            };
            return;
        }
        if let Ok(mut stats) = self.stats.lock() {
            stats.prefix_lookups += 1;
            stats.prefix_hits += u64::from(cached.is_some());
            stats.prompt_tokens += ids.len() as u64;
            stats.reused_prompt_tokens += reused as u64;
        }
        if let Some(kv) = cached {
            sequence.cache = sequence.cache.with_prefix(kv);
        }
        sequence.done = reused;
        sequence.usage.cached_tokens = reused as u32;
        sequence.state = State::Prefill { leader: None };
    }

    /// Followers whose leader has its prompt in (or has left) read the prefix now.
    fn release_followers(&mut self) {
        let computing: Vec<u64> = (self.running.iter())
            .filter(|s| matches!(s.state, State::Prefill { leader: None }))
            .map(|s| s.id)
            .collect();
        for i in 0..self.running.len() {
            let waiting = match self.running[i].state {
                State::Prefill {
                    leader: Some(leader),
                } => !computing.contains(&leader),
                _ => false,
            };
            if waiting {
                let mut sequence = self.running.remove(i);
                self.start_prompt(&mut sequence, false);
                self.running.insert(i, sequence);
            }
        }
    }

    /// This pass's work: decode steps first, then candidates, then prompt chunks, within the
    /// token cap.
    fn plan(&self) -> Vec<Part> {
        let mut budget = self.max_pass_tokens;
        let mut parts = Vec::new();
        for (i, s) in self.running.iter().enumerate() {
            if let State::Decode { next, .. } = s.state {
                let position = s.cache.last_position().map_or(0, |p| p + 1);
                parts.push(Part {
                    sequence: i,
                    tokens: vec![next],
                    positions: vec![position],
                    segments: None,
                    logits_for: vec![0],
                    keep: true,
                });
                budget = budget.saturating_sub(1);
            }
        }
        for (i, s) in self.running.iter().enumerate() {
            let (State::Candidates { .. }, Task::Score { ids, candidates }) =
                (&s.state, &s.request.task)
            else {
                continue;
            };
            let size: usize = candidates.iter().map(Vec::len).sum();
            if size > budget && !parts.is_empty() {
                continue;
            }
            budget = budget.saturating_sub(size);
            parts.push(candidates_part(i, ids.len(), candidates));
        }
        for (i, s) in self.running.iter().enumerate() {
            if budget == 0 {
                break;
            }
            if !matches!(s.state, State::Prefill { leader: None }) {
                continue;
            }
            let ids = s.request.task.prompt();
            let take = (ids.len() - s.done).min(budget);
            budget -= take;
            let end = s.done + take;
            parts.push(Part {
                sequence: i,
                tokens: ids[s.done..end].to_vec(),
                positions: (s.done..end).collect(),
                segments: None,
                logits_for: if end == ids.len() {
                    vec![take - 1]
                } else {
                    vec![]
                },
                keep: true,
            });
        }
        parts
    }

    /// Runs one pass and moves every sequence in it on.
    fn pass(&mut self, parts: Vec<Part>) {
        let started = Instant::now();
        let decode_only = parts.iter().all(|p| {
            p.tokens.len() == 1 && matches!(self.running[p.sequence].state, State::Decode { .. })
        });
        let result = {
            let chunks: Vec<Chunk<'_>> = (parts.iter())
                .map(|p| Chunk {
                    tokens: &p.tokens,
                    positions: &p.positions,
                    segments: p.segments.as_deref(),
                    logits_for: &p.logits_for,
                    keep: p.keep,
                })
                .collect();
            let mut caches: Vec<&mut KvCache> = Vec::with_capacity(parts.len());
            // Caches in the order of `parts`: borrow each running sequence's cache once.
            let mut by_index: Vec<Option<&mut KvCache>> = self
                .running
                .iter_mut()
                .map(|s| Some(&mut s.cache))
                .collect();
            for p in &parts {
                if let Some(cache) = by_index[p.sequence].take() {
                    caches.push(cache);
                }
            }
            let decoder = &self.decoder;
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                decoder.forward_batch(&mut caches, &chunks)
            }))
            .unwrap_or_else(|_| Err(LlmError::Model("the forward pass panicked".into())))
            .and_then(|logits| {
                logits
                    .iter()
                    .map(|l| Ok(l.to_vec2::<f32>()?))
                    .collect::<Result<Vec<_>, LlmError>>()
            })
        };
        let elapsed = started.elapsed();
        self.record(&parts, decode_only, elapsed);
        let logits = match result {
            Ok(logits) => logits,
            Err(e) => {
                // Nothing tells which sequence broke the pass: each is answered with the error.
                tracing::error!("a batched forward pass failed: {e}");
                let mut members: Vec<usize> = parts.iter().map(|p| p.sequence).collect();
                members.sort_unstable_by_key(|&i| std::cmp::Reverse(i));
                for i in members {
                    let s = self.running.remove(i);
                    let _ = s.request.reply.send(Err(e.clone()));
                }
                return;
            }
        };
        let mut finished: Vec<(usize, Reply)> = Vec::new();
        for (part, rows) in parts.iter().zip(logits) {
            if let Some(reply) = self.advance(part, rows) {
                finished.push((part.sequence, reply));
            }
        }
        finished.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
        for (i, reply) in finished {
            let mut s = self.running.remove(i);
            s.usage.elapsed = s.request.submitted.elapsed();
            let reply = reply.map(|outcome| with_usage(outcome, s.usage));
            let _ = s.request.reply.send(reply);
        }
    }

    /// Moves a sequence on with its part's logits; its answer when it is done.
    fn advance(&mut self, part: &Part, rows: Vec<Vec<f32>>) -> Option<Reply> {
        let s = &mut self.running[part.sequence];
        match &mut s.state {
            State::Prefill { .. } => {
                s.done += part.tokens.len();
                let ids = s.request.task.prompt();
                if s.done < ids.len() {
                    return None;
                }
                let last = rows.into_iter().next()?;
                let shared = s.cache.freeze();
                let ids = ids.to_vec();
                self.prefixes.store(&ids, shared);
                let bytes = self.prefixes.bytes();
                if let Ok(mut stats) = self.stats.lock() {
                    stats.prefix_cache_bytes = bytes;
                }
                let s = &mut self.running[part.sequence];
                match &s.request.task {
                    Task::Generate { sampling, .. } => {
                        let recent: Vec<u32> = ids.iter().rev().take(64).copied().collect();
                        let mut state = State::Decode {
                            sampler: Box::new(Sampler::new(*sampling)),
                            recent,
                            output: Vec::new(),
                            next: 0,
                        };
                        let done = step(&self.tokenizer, &s.request.task, &mut state, last);
                        s.state = state;
                        done
                    }
                    Task::Score { candidates, .. } => {
                        let first = log_softmax(&last);
                        if candidates.iter().all(|c| c.len() == 1) {
                            Some(Ok(scores(candidates, &first, &[])))
                        } else {
                            s.state = State::Candidates { first };
                            None
                        }
                    }
                }
            }
            State::Decode { .. } => {
                let last = rows.into_iter().next()?;
                step(&self.tokenizer, &s.request.task, &mut s.state, last)
            }
            State::Candidates { first } => {
                let Task::Score { candidates, .. } = &s.request.task else {
                    return Some(Err(LlmError::Model("candidates of a generation".into())));
                };
                Some(Ok(scores(candidates, first, &rows)))
            }
        }
    }

    fn record(&self, parts: &[Part], decode_only: bool, elapsed: std::time::Duration) {
        let Ok(mut stats) = self.stats.lock() else {
            return;
        };
        let sequences = parts.len();
        stats.passes += 1;
        if stats.sequences_per_pass.len() <= sequences {
            stats.sequences_per_pass.resize(sequences + 1, 0);
        }
        stats.sequences_per_pass[sequences] += 1;
        stats.max_sequences = stats.max_sequences.max(sequences);
        let tokens: usize = parts.iter().map(|p| p.tokens.len()).sum();
        if decode_only {
            stats.decode_passes += 1;
            stats.decode_tokens += tokens as u64;
            stats.decode_seconds += elapsed.as_secs_f64();
            if stats.recent_decode_ms.len() >= RECENT_STEPS {
                stats.recent_decode_ms.remove(0);
            }
            stats.recent_decode_ms.push(elapsed.as_secs_f32() * 1000.0);
        } else {
            stats.other_tokens += tokens as u64;
            stats.other_seconds += elapsed.as_secs_f64();
        }
    }
}

/// One generation step from `logits`: samples the next token; the answer if that ends it.
fn step(
    tokenizer: &Tokenizer,
    task: &Task,
    state: &mut State,
    mut logits: Vec<f32>,
) -> Option<Reply> {
    let (
        Task::Generate {
            max_tokens, stop, ..
        },
        State::Decode {
            sampler,
            recent,
            output,
            next,
        },
    ) = (task, state)
    else {
        return Some(Err(LlmError::Model(
            "a decode step of a scoring request".into(),
        )));
    };
    let token = sampler.sample(&mut logits, recent);
    let finish = |output: &[u32]| {
        let mut text = tokenizer.decode(output);
        crate::cut_at_stop(stop, &mut text);
        Some(Ok(Outcome::Generated(Generation {
            text,
            usage: Usage {
                completion_tokens: output.len() as u32,
                ..Usage::default()
            },
        })))
    };
    if Some(token) == tokenizer.special.eos {
        return finish(output);
    }
    output.push(token);
    recent.push(token);
    let text = tokenizer.decode(output);
    if stop.iter().any(|s| text.contains(s.as_str())) || output.len() >= *max_tokens {
        return finish(output);
    }
    *next = token;
    None
}

/// All candidates in one chunk: same positions after the prompt, one segment each; logits
/// for every token but each candidate's last.
fn candidates_part(sequence: usize, prompt: usize, candidates: &[Vec<u32>]) -> Part {
    let mut part = Part {
        sequence,
        tokens: Vec::new(),
        positions: Vec::new(),
        segments: Some(Vec::new()),
        logits_for: Vec::new(),
        keep: false,
    };
    for (s, candidate) in candidates.iter().enumerate() {
        for (k, &id) in candidate.iter().enumerate() {
            if k + 1 < candidate.len() {
                part.logits_for.push(part.tokens.len());
            }
            part.tokens.push(id);
            part.positions.push(prompt + k);
            if let Some(segments) = part.segments.as_mut() {
                segments.push(s as u32);
            }
        }
    }
    part
}

/// Each candidate's total log-probability: its first token from the prompt's last logits,
/// the rest from `rows` (in candidate order, every token but each candidate's last).
fn scores(candidates: &[Vec<u32>], first: &[f32], rows: &[Vec<f32>]) -> Outcome {
    let mut rows = rows.iter();
    let logprobs = (candidates.iter())
        .map(|candidate| {
            let mut total = first[candidate[0] as usize];
            for &id in &candidate[1..] {
                if let Some(row) = rows.next() {
                    total += log_softmax(row)[id as usize];
                }
            }
            total
        })
        .collect();
    Outcome::Scored(Scores {
        logprobs,
        tokens: candidates.iter().map(|c| c.len() as u32).collect(),
        usage: Usage::default(),
    })
}

/// The sequence's usage on its answer.
fn with_usage(outcome: Outcome, usage: Usage) -> Outcome {
    match outcome {
        Outcome::Generated(mut g) => {
            g.usage = Usage {
                completion_tokens: g.usage.completion_tokens,
                ..usage
            };
            Outcome::Generated(g)
        }
        Outcome::Scored(mut s) => {
            s.usage = usage;
            Outcome::Scored(s)
        }
    }
}
