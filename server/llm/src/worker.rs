//! Model calls off the caller's thread: a bounded priority queue feeding worker threads, and a
//! channel of results that the caller drains when it likes (the game server, once a tick). A
//! full queue, a slow or a failing backend gives the caller an error to handle (an agent keeps
//! its current plan); neither `submit` nor `drain` ever waits for a model.
//!
//! Each job carries a tag of the caller's type `T` (the game server: the agent's entity), handed
//! back with its result.

use super::{
    Embeddings, GenerateRequest, Generation, LanguageModel, LlmError, ScoreRequest, Scores,
    TextEmbedder, Usage,
};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What a call is for: metrics are kept per purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Purpose {
    Plan,
    Converse,
    Reflect,
    Importance,
    Decide,
    /// Embedding memories for retrieval.
    Memory,
    Other,
}

impl Purpose {
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Plan => "plan",
            Purpose::Converse => "converse",
            Purpose::Reflect => "reflect",
            Purpose::Importance => "importance",
            Purpose::Decide => "decide",
            Purpose::Memory => "memory",
            Purpose::Other => "other",
        }
    }
}

/// Queue order: all `High` jobs before any `Normal`, and so on; FIFO within a level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    High = 0,
    Normal = 1,
    Low = 2,
}

#[derive(Clone, Debug, PartialEq)]
pub enum JobRequest {
    Generate(GenerateRequest),
    Score(ScoreRequest),
    /// Needs an embedder: [`WorkerPool::start_with_embedder`].
    Embed(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum JobOutput {
    Generated(Generation),
    Scored(Scores),
    Embedded(Embeddings),
}

impl JobOutput {
    /// What the call cost.
    pub fn usage(&self) -> Usage {
        match self {
            JobOutput::Generated(g) => g.usage,
            JobOutput::Scored(s) => s.usage,
            JobOutput::Embedded(e) => e.usage,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

/// A finished call.
#[derive(Clone, Debug)]
pub struct JobResult<T> {
    pub id: JobId,
    /// Who asked (the tag given to [`WorkerPool::submit`]), so the asker can pick it up.
    pub requester: Option<T>,
    pub purpose: Purpose,
    pub output: Result<JobOutput, LlmError>,
    pub queue_wait: Duration,
}

struct Job<T> {
    id: JobId,
    requester: Option<T>,
    purpose: Purpose,
    request: JobRequest,
    submitted: Instant,
}

/// Which workers serve a job: language-model calls and embeddings have workers of their own,
/// so a batch of generations in flight never holds up the memories' vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lane {
    Model = 0,
    Embed = 1,
}

impl JobRequest {
    fn lane(&self) -> Lane {
        match self {
            JobRequest::Generate(_) | JobRequest::Score(_) => Lane::Model,
            JobRequest::Embed(_) => Lane::Embed,
        }
    }
}

struct Queue<T> {
    /// Per lane, per priority level.
    lanes: [[VecDeque<Job<T>>; 3]; 2],
    closed: bool,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self {
            lanes: Default::default(),
            closed: false,
        }
    }
}

impl<T> Queue<T> {
    fn len(&self) -> usize {
        self.lanes.iter().flatten().map(VecDeque::len).sum()
    }

    fn pop(&mut self, lane: Lane) -> Option<Job<T>> {
        self.lanes[lane as usize]
            .iter_mut()
            .find_map(VecDeque::pop_front)
    }
}

/// The worker pool; dropping it stops the workers after their current call.
pub struct WorkerPool<T = ()> {
    queue: Arc<(Mutex<Queue<T>>, Condvar)>,
    results: Mutex<Receiver<JobResult<T>>>,
    capacity: usize,
    next_id: AtomicU64,
    in_flight: Arc<AtomicU64>,
    pub metrics: Arc<Mutex<LlmMetrics>>,
    stopped: Arc<AtomicBool>,
    model: Option<Arc<dyn LanguageModel>>,
}

impl<T: Send + 'static> WorkerPool<T> {
    /// Starts `workers` threads serving `model`, with room for `capacity` queued jobs.
    pub fn start(model: Arc<dyn LanguageModel>, workers: usize, capacity: usize) -> Self {
        Self::start_with_embedder(Some(model), None, workers, capacity)
    }

    /// As [`Self::start`], and serving [`JobRequest::Embed`] with `embedder`. Without a
    /// `model`, generate and score calls fail (a world that only embeds memories).
    ///
    /// Model calls get `workers` threads, or as many as the model can serve at once
    /// ([`LanguageModel::concurrency`]: the embedded model batches that many); embeddings get
    /// one thread of their own.
    pub fn start_with_embedder(
        model: Option<Arc<dyn LanguageModel>>,
        embedder: Option<Arc<dyn TextEmbedder>>,
        workers: usize,
        capacity: usize,
    ) -> Self {
        let queue = Arc::new((Mutex::new(Queue::default()), Condvar::new()));
        let (sender, receiver) = channel();
        let metrics = Arc::new(Mutex::new(LlmMetrics::default()));
        let in_flight = Arc::new(AtomicU64::new(0));
        let stopped = Arc::new(AtomicBool::new(false));
        let model_workers = workers.max(model.as_ref().map_or(1, |m| m.concurrency()));
        let lanes = (0..model_workers.max(1))
            .map(|n| (Lane::Model, format!("llm-worker-{n}")))
            .chain(std::iter::once((Lane::Embed, "llm-embedder".to_string())));
        for (lane, name) in lanes {
            let (queue, sender, model, embedder, metrics, in_flight) = (
                queue.clone(),
                sender.clone(),
                model.clone(),
                embedder.clone(),
                metrics.clone(),
                in_flight.clone(),
            );
            let spawned = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    crate::priority::lower_this_thread();
                    let backends = (model.as_deref(), embedder.as_deref());
                    serve(&queue, lane, &sender, backends, &metrics, &in_flight)
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start model worker {name}: {e}");
            }
        }
        Self {
            queue,
            results: Mutex::new(receiver),
            capacity,
            next_id: AtomicU64::new(1),
            in_flight,
            metrics,
            stopped,
            model,
        }
    }
}

impl<T> WorkerPool<T> {
    /// Queues a call. Fails at once if the queue is full or the pool is stopped.
    pub fn submit(
        &self,
        requester: Option<T>,
        purpose: Purpose,
        priority: Priority,
        request: JobRequest,
    ) -> Result<JobId, LlmError> {
        let (lock, ready) = &*self.queue;
        let mut queue = lock
            .lock()
            .map_err(|_| LlmError::Unavailable("model queue poisoned".into()))?;
        if queue.closed || self.stopped.load(Ordering::Relaxed) {
            return Err(LlmError::Unavailable("model workers are stopped".into()));
        }
        if queue.len() >= self.capacity {
            if let Ok(mut m) = self.metrics.lock() {
                m.entry(purpose).rejected += 1;
            }
            return Err(LlmError::Unavailable(format!(
                "model queue full ({} jobs)",
                self.capacity
            )));
        }
        let id = JobId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let lane = request.lane() as usize;
        queue.lanes[lane][priority as usize].push_back(Job {
            id,
            requester,
            purpose,
            request,
            submitted: Instant::now(),
        });
        // Workers of both lanes wait on one condition: wake them all, the right one takes it.
        ready.notify_all();
        Ok(id)
    }

    /// Results that have arrived since the last call; never waits.
    pub fn drain(&self) -> Vec<JobResult<T>> {
        self.results
            .lock()
            .map(|r| r.try_iter().collect())
            .unwrap_or_default()
    }

    /// Waits up to `timeout` for the next result, then returns every result that has arrived
    /// (none if the time ran out). For runs that must have an answer before going on (`sim`).
    pub fn drain_waiting(&self, timeout: Duration) -> Vec<JobResult<T>> {
        let Ok(results) = self.results.lock() else {
            return Vec::new();
        };
        match results.recv_timeout(timeout) {
            Ok(first) => std::iter::once(first).chain(results.try_iter()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Calls so far by purpose, as `sim`'s summary reports them.
    pub fn metrics_summary(&self) -> BTreeMap<&'static str, PurposeStats> {
        self.metrics.lock().map(|m| m.summary()).unwrap_or_default()
    }

    /// How the model has batched its calls, if it batches them itself.
    pub fn batching(&self) -> Option<crate::BatchStats> {
        self.model.as_ref().and_then(|m| m.batching())
    }

    /// Jobs waiting plus jobs running.
    pub fn pending(&self) -> usize {
        let queued = self.queue.0.lock().map(|q| q.len()).unwrap_or(0);
        queued + self.in_flight.load(Ordering::Relaxed) as usize
    }

    /// Stops taking jobs; workers finish their current call and exit.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        if let Ok(mut q) = self.queue.0.lock() {
            q.closed = true;
        }
        self.queue.1.notify_all();
    }
}

impl<T> Drop for WorkerPool<T> {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve<T>(
    queue: &(Mutex<Queue<T>>, Condvar),
    lane: Lane,
    sender: &Sender<JobResult<T>>,
    (model, embedder): (Option<&dyn LanguageModel>, Option<&dyn TextEmbedder>),
    metrics: &Mutex<LlmMetrics>,
    in_flight: &AtomicU64,
) {
    loop {
        let job = {
            let (lock, ready) = queue;
            let Ok(mut q) = lock.lock() else { return };
            loop {
                if q.closed {
                    return;
                }
                if let Some(job) = q.pop(lane) {
                    in_flight.fetch_add(1, Ordering::Relaxed);
                    break job;
                }
                q = match ready.wait(q) {
                    Ok(q) => q,
                    Err(_) => return,
                };
            }
        };
        let queue_wait = job.submitted.elapsed();
        let started = Instant::now();
        // A panic in a backend is a bug, but it must not take the server down with it.
        let output =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &job.request {
                JobRequest::Generate(r) => (model.ok_or_else(no_model)?)
                    .generate(r)
                    .map(JobOutput::Generated),
                JobRequest::Score(r) => (model.ok_or_else(no_model)?)
                    .score(r)
                    .map(JobOutput::Scored),
                JobRequest::Embed(texts) => match embedder {
                    Some(e) => {
                        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
                        e.embed(&texts).map(JobOutput::Embedded)
                    }
                    None => Err(LlmError::Unavailable(
                        "no embedding model configured".into(),
                    )),
                },
            }))
            .unwrap_or_else(|_| Err(LlmError::Model("the model backend panicked".into())));
        if let Ok(mut m) = metrics.lock() {
            m.record(job.purpose, &output, queue_wait, started.elapsed());
        }
        in_flight.fetch_sub(1, Ordering::Relaxed);
        let result = JobResult {
            id: job.id,
            requester: job.requester,
            purpose: job.purpose,
            output,
            queue_wait,
        };
        if sender.send(result).is_err() {
            return;
        }
    }
}

fn no_model() -> LlmError {
    LlmError::Unavailable("no language model configured".into())
}

/// Per-purpose counters and latency samples.
#[derive(Debug, Default)]
pub struct LlmMetrics {
    by_purpose: BTreeMap<Purpose, PurposeCounters>,
}

#[derive(Debug, Default)]
struct PurposeCounters {
    calls: u64,
    errors: u64,
    rejected: u64,
    tokens_in: u64,
    tokens_cached: u64,
    tokens_out: u64,
    queue_wait_ms: Vec<f64>,
    latency_ms: Vec<f64>,
}

/// What `sim`'s summary reports per purpose.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PurposeStats {
    pub calls: u64,
    pub errors: u64,
    pub rejected: u64,
    pub tokens_in: u64,
    pub tokens_cached: u64,
    pub tokens_out: u64,
    pub queue_wait_ms_p50: f64,
    pub queue_wait_ms_p99: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
}

impl LlmMetrics {
    fn entry(&mut self, purpose: Purpose) -> &mut PurposeCounters {
        self.by_purpose.entry(purpose).or_default()
    }

    fn record(
        &mut self,
        purpose: Purpose,
        output: &Result<JobOutput, LlmError>,
        wait: Duration,
        took: Duration,
    ) {
        let c = self.entry(purpose);
        c.calls += 1;
        c.queue_wait_ms.push(wait.as_secs_f64() * 1e3);
        c.latency_ms.push(took.as_secs_f64() * 1e3);
        match output {
            Ok(out) => {
                let u = out.usage();
                c.tokens_in += u64::from(u.prompt_tokens);
                c.tokens_cached += u64::from(u.cached_tokens);
                c.tokens_out += u64::from(u.completion_tokens);
            }
            Err(_) => c.errors += 1,
        }
    }

    pub fn summary(&self) -> BTreeMap<&'static str, PurposeStats> {
        self.by_purpose
            .iter()
            .map(|(p, c)| {
                (
                    p.name(),
                    PurposeStats {
                        calls: c.calls,
                        errors: c.errors,
                        rejected: c.rejected,
                        tokens_in: c.tokens_in,
                        tokens_cached: c.tokens_cached,
                        tokens_out: c.tokens_out,
                        queue_wait_ms_p50: percentile(&c.queue_wait_ms, 0.5),
                        queue_wait_ms_p99: percentile(&c.queue_wait_ms, 0.99),
                        latency_ms_p50: percentile(&c.latency_ms, 0.5),
                        latency_ms_p99: percentile(&c.latency_ms, 0.99),
                    },
                )
            })
            .collect()
    }
}

fn percentile(samples: &[f64], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() - 1) as f64 * q).round() as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SamplingParams;

    /// A scripted stand-in for a model (not a real one): answers with the prompt reversed after
    /// a fixed delay, fails on prompts starting with "fail", panics on "panic".
    struct ScriptedModel {
        delay: Duration,
    }

    impl LanguageModel for ScriptedModel {
        fn name(&self) -> &str {
            "scripted"
        }
        fn generate(&self, r: &GenerateRequest) -> Result<Generation, LlmError> {
            std::thread::sleep(self.delay);
            if r.prompt.starts_with("panic") {
                panic!("scripted panic");
            }
            if r.prompt.starts_with("fail") {
                return Err(LlmError::Unavailable("scripted failure".into()));
            }
            Ok(Generation {
                text: r.prompt.chars().rev().collect(),
                usage: Usage {
                    prompt_tokens: 3,
                    completion_tokens: 2,
                    ..Default::default()
                },
            })
        }
        fn score(&self, r: &ScoreRequest) -> Result<Scores, LlmError> {
            Ok(Scores {
                logprobs: vec![0.0; r.candidates.len()],
                tokens: vec![1; r.candidates.len()],
                usage: Usage::default(),
            })
        }
    }

    fn generate(prompt: &str) -> JobRequest {
        JobRequest::Generate(GenerateRequest {
            prompt: prompt.into(),
            max_tokens: 4,
            stop: vec![],
            sampling: SamplingParams::default(),
        })
    }

    fn wait_for(workers: &WorkerPool, n: usize) -> Vec<JobResult<()>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut out = Vec::new();
        while out.len() < n {
            assert!(Instant::now() < deadline, "results did not arrive");
            out.extend(workers.drain());
            std::thread::sleep(Duration::from_millis(2));
        }
        out
    }

    #[test]
    fn results_come_back_with_metrics() {
        let workers = WorkerPool::<()>::start(
            Arc::new(ScriptedModel {
                delay: Duration::ZERO,
            }),
            2,
            8,
        );
        let id = workers
            .submit(None, Purpose::Plan, Priority::Normal, generate("abc"))
            .unwrap();
        let results = wait_for(&workers, 1);
        assert_eq!(results[0].id, id);
        match &results[0].output {
            Ok(JobOutput::Generated(g)) => assert_eq!(g.text, "cba"),
            other => panic!("{other:?}"),
        }
        let summary = workers.metrics_summary();
        assert_eq!(summary["plan"].calls, 1);
        assert_eq!(
            (summary["plan"].tokens_in, summary["plan"].tokens_out),
            (3, 2)
        );
    }

    #[test]
    fn drain_waiting_waits_for_a_result_but_not_past_its_timeout() {
        let workers = WorkerPool::<()>::start(
            Arc::new(ScriptedModel {
                delay: Duration::from_millis(50),
            }),
            1,
            8,
        );
        let started = Instant::now();
        assert!(workers.drain_waiting(Duration::from_millis(20)).is_empty());
        assert!(started.elapsed() >= Duration::from_millis(20));
        let id = workers
            .submit(None, Purpose::Plan, Priority::Normal, generate("ab"))
            .unwrap();
        let results = workers.drain_waiting(Duration::from_secs(10));
        assert_eq!(results.iter().map(|r| r.id).collect::<Vec<_>>(), [id]);
    }

    #[test]
    fn full_queue_fails_at_once() {
        let workers = WorkerPool::<()>::start(
            Arc::new(ScriptedModel {
                delay: Duration::from_millis(300),
            }),
            1,
            2,
        );
        let mut outcomes = Vec::new();
        for _ in 0..6 {
            outcomes.push(workers.submit(None, Purpose::Decide, Priority::Normal, generate("x")));
        }
        assert!(
            outcomes
                .iter()
                .any(|o| matches!(o, Err(LlmError::Unavailable(e)) if e.contains("queue full")))
        );
        assert!(workers.metrics_summary()["decide"].rejected >= 3);
    }

    #[test]
    fn failing_or_panicking_backend_gives_errors_and_the_worker_lives_on() {
        let workers = WorkerPool::<()>::start(
            Arc::new(ScriptedModel {
                delay: Duration::ZERO,
            }),
            1,
            8,
        );
        for prompt in ["fail now", "panic now", "fine"] {
            workers
                .submit(None, Purpose::Converse, Priority::Normal, generate(prompt))
                .unwrap();
        }
        let results = wait_for(&workers, 3);
        assert!(matches!(results[0].output, Err(LlmError::Unavailable(_))));
        assert!(matches!(&results[1].output, Err(LlmError::Model(e)) if e.contains("panicked")));
        assert!(results[2].output.is_ok());
        assert_eq!(workers.metrics_summary()["converse"].errors, 2);
    }

    /// A scripted stand-in for an embedder: each text becomes `[length, 1]`.
    struct ScriptedEmbedder;

    impl TextEmbedder for ScriptedEmbedder {
        fn name(&self) -> &str {
            "scripted"
        }
        fn embed(&self, texts: &[&str]) -> Result<Embeddings, LlmError> {
            Ok(Embeddings {
                vectors: texts.iter().map(|t| vec![t.len() as f32, 1.0]).collect(),
                usage: Usage {
                    prompt_tokens: texts.len() as u32,
                    ..Usage::default()
                },
            })
        }
    }

    /// The scripted model, saying it serves `.1` calls at once (as a batching backend does),
    /// and counting how many it got at once.
    struct Batching(ScriptedModel, usize, AtomicU64, AtomicU64);

    impl LanguageModel for Batching {
        fn name(&self) -> &str {
            "scripted, batching"
        }
        fn generate(&self, r: &GenerateRequest) -> Result<Generation, LlmError> {
            let now = self.2.fetch_add(1, Ordering::SeqCst) + 1;
            self.3.fetch_max(now, Ordering::SeqCst);
            let answer = self.0.generate(r);
            self.2.fetch_sub(1, Ordering::SeqCst);
            answer
        }
        fn score(&self, r: &ScoreRequest) -> Result<Scores, LlmError> {
            self.0.score(r)
        }
        fn concurrency(&self) -> usize {
            self.1
        }
    }

    #[test]
    fn a_batching_model_gets_its_calls_at_once_and_embeddings_never_wait_behind_them() {
        let model = Arc::new(Batching(
            ScriptedModel {
                delay: Duration::from_millis(400),
            },
            4,
            AtomicU64::new(0),
            AtomicU64::new(0),
        ));
        let pool = WorkerPool::<()>::start_with_embedder(
            Some(model.clone()),
            Some(Arc::new(ScriptedEmbedder)),
            1,
            16,
        );
        for _ in 0..4 {
            pool.submit(None, Purpose::Plan, Priority::Normal, generate("slow"))
                .unwrap();
        }
        pool.submit(
            None,
            Purpose::Memory,
            Priority::Low,
            JobRequest::Embed(vec!["x".into()]),
        )
        .unwrap();
        let first = wait_for(&pool, 1);
        assert!(
            matches!(first[0].output, Ok(JobOutput::Embedded(_))),
            "the embedding waited behind the model calls: {first:?}"
        );
        let rest = wait_for(&pool, 4);
        assert!(rest.iter().all(|r| r.output.is_ok()));
        assert_eq!(model.3.load(Ordering::SeqCst), 4, "calls at once");
    }

    #[test]
    fn embedding_jobs_need_an_embedder() {
        let model = || {
            Arc::new(ScriptedModel {
                delay: Duration::ZERO,
            })
        };
        let embed = || JobRequest::Embed(vec!["ab".into(), "abcd".into()]);
        let with = WorkerPool::<()>::start_with_embedder(
            Some(model()),
            Some(Arc::new(ScriptedEmbedder)),
            1,
            8,
        );
        with.submit(None, Purpose::Memory, Priority::Low, embed())
            .unwrap();
        match &wait_for(&with, 1)[0].output {
            Ok(JobOutput::Embedded(e)) => {
                assert_eq!(e.vectors, vec![vec![2.0, 1.0], vec![4.0, 1.0]])
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(with.metrics_summary()["memory"].tokens_in, 2);

        let without = WorkerPool::<()>::start(model(), 1, 8);
        without
            .submit(None, Purpose::Memory, Priority::Low, embed())
            .unwrap();
        let result = &wait_for(&without, 1)[0];
        assert!(matches!(&result.output, Err(LlmError::Unavailable(e)) if e.contains("embedding")));

        let embed_only =
            WorkerPool::<()>::start_with_embedder(None, Some(Arc::new(ScriptedEmbedder)), 1, 8);
        embed_only
            .submit(None, Purpose::Plan, Priority::Normal, generate("x"))
            .unwrap();
        let result = &wait_for(&embed_only, 1)[0];
        assert!(
            matches!(&result.output, Err(LlmError::Unavailable(e)) if e.contains("no language model"))
        );
    }

    #[test]
    fn high_priority_jobs_overtake_queued_low_ones() {
        let workers = WorkerPool::<()>::start(
            Arc::new(ScriptedModel {
                delay: Duration::from_millis(50),
            }),
            1,
            8,
        );
        workers
            .submit(None, Purpose::Other, Priority::Normal, generate("first"))
            .unwrap();
        std::thread::sleep(Duration::from_millis(10)); // the worker is busy with "first"
        let low = workers
            .submit(None, Purpose::Other, Priority::Low, generate("low"))
            .unwrap();
        let high = workers
            .submit(None, Purpose::Other, Priority::High, generate("high"))
            .unwrap();
        let order: Vec<JobId> = wait_for(&workers, 3).iter().map(|r| r.id).collect();
        assert_eq!(&order[1..], &[high, low]);
    }
}
