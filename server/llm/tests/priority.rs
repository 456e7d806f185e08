//! Model threads can run below the world (see `agora_llm::priority`): asked to, every thread
//! that computes for the real embedded model, candle's pool workers included, is scheduled
//! idle-class, and the thread that loaded the model is not. Its own test binary, so no other
//! test has started candle's pools.

use agora_llm::backends::embedded::{EmbeddedModel, EmbeddedOptions};
use agora_llm::priority::{IDLE_POLICY, ModelPriority, set_model_priority, thread_policies};
use agora_llm::worker::{JobRequest, Priority, Purpose, WorkerPool};
use agora_llm::{GenerateRequest, SamplingParams};
use std::sync::Arc;
use std::time::Duration;

mod common;

#[test]
#[cfg(target_os = "linux")]
fn model_threads_run_below_the_world_and_the_world_does_not() {
    set_model_priority(ModelPriority::BelowTheWorld);
    let model = EmbeddedModel::load(&common::default_model(), EmbeddedOptions::default())
        .expect("model loads");
    let pool: WorkerPool<()> = WorkerPool::start(Arc::new(model), 1, 8);
    let request = GenerateRequest {
        prompt: "The baker of Maple Hollow".into(),
        max_tokens: 4,
        stop: vec![],
        sampling: SamplingParams::default(),
    };
    pool.submit(
        None,
        Purpose::Plan,
        Priority::Normal,
        JobRequest::Generate(request),
    )
    .expect("queued");
    let results = pool.drain_waiting(Duration::from_secs(120));
    assert_eq!(results.len(), 1, "one answer");
    assert!(results[0].output.is_ok(), "{:?}", results[0].output);

    let model_threads: Vec<_> = [
        "candle-bp-",
        "llm-rayon-",
        "llm-batcher",
        "llm-worker-",
        "llm-embedder",
    ]
    .into_iter()
    .flat_map(thread_policies)
    .collect();
    let names: Vec<&str> = model_threads.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"llm-batcher"), "{model_threads:?}");
    assert!(
        names.iter().any(|n| n.starts_with("llm-worker-")),
        "{model_threads:?}"
    );
    // candle's pool has one worker per core but the first; a one-core machine has none.
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        assert!(names.contains(&"candle-bp-0"), "{model_threads:?}");
        assert!(names.contains(&"llm-rayon-1"), "{model_threads:?}");
    }
    // With two or more cores, core 0 is the world's: no model thread may run on it.
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let name = std::fs::read_to_string(task.path().join("comm")).unwrap();
            if !names.contains(&name.trim_end()) {
                continue;
            }
            let status = std::fs::read_to_string(task.path().join("status")).unwrap();
            let cpus = (status.lines())
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .unwrap()
                .trim()
                .to_string();
            assert!(
                !cpus.split(',').any(|r| r.split('-').next() == Some("0")),
                "{} may run on core 0: {cpus}",
                name.trim_end()
            );
        }
    }
    for (name, policy) in &model_threads {
        assert_eq!(*policy, IDLE_POLICY, "{name} runs under policy {policy}");
    }
    // A thread the loader starts after all this is the world's: it is not lowered.
    assert_eq!(policy_of_a_new_thread("after-model"), 0);
    pool.stop();
}

/// The policy a thread started now from this one gets (it inherits this thread's).
fn policy_of_a_new_thread(name: &str) -> u32 {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let (started, running) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = started.send(()); // its name is set by now
            wait.recv()
        })
        .expect("thread starts");
    running.recv().expect("thread runs");
    let found = thread_policies(name);
    drop(done);
    let _ = thread.join();
    assert_eq!(found.len(), 1, "{name}: {found:?}");
    found[0].1
}
