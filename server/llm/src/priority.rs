//! Where the model may run below the world: in `serve`, its threads take a core only when the
//! game's tick does not want it.
//!
//! On a server with two cores the model keeps both busy (the batcher and candle's pool
//! workers spin between operations), and a tick that wakes up queues for a core. Measured in
//! `serve` with 25 thinking agents: the tick's own work had a p99 of 1.0 ms, its wait in the
//! run queue a p99 of 4.3 ms. A niced model thread did not help (Linux lets the running
//! thread finish its slice first); one scheduled `SCHED_IDLE` is preempted the moment a
//! normal thread wakes, and still gets every cycle the world leaves.
//!
//! `sim` keeps the default, [`ModelPriority::Same`]: its tick waits for the model anyway, and
//! on a busy machine an idle-class model would wait for every other program.
//!
//! Linux sets the policy per thread, and a thread inherits its creator's, so every thread that
//! computes for a model lowers itself when it starts, and candle's two pools (its own for
//! quantised kernels, rayon's global one for f32 matmuls, which MiniLM runs on) are started
//! lowered before the first model is loaded. Elsewhere this is a no-op.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

/// How model threads are scheduled against the world's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelPriority {
    /// As every other thread (the default).
    Same,
    /// Below every normal thread (Linux's `SCHED_IDLE`): for `serve`, whose tick must not wait.
    BelowTheWorld,
}

static BELOW_THE_WORLD: AtomicBool = AtomicBool::new(false);

/// Sets how model threads started from now on are scheduled; call it before the first model is
/// loaded (the compute pools keep the priority they started with).
pub fn set_model_priority(priority: ModelPriority) {
    BELOW_THE_WORLD.store(priority == ModelPriority::BelowTheWorld, Ordering::Relaxed);
}

/// Puts the calling thread where [`set_model_priority`] said model threads go. Failures are
/// logged and otherwise ignored: the model still works, only the tick loses its head start.
#[allow(unsafe_code)]
pub fn lower_this_thread() {
    if !BELOW_THE_WORLD.load(Ordering::Relaxed) {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` outlives the call; thread id 0 is the calling thread.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
            tracing::warn!(
                "cannot schedule a model thread below the world: {}",
                std::io::Error::last_os_error()
            );
        }
        keep_off_the_first_core();
    }
}

/// On a machine of 2 or more cores, a model thread keeps off core 0, which is left to the
/// world. The idle class alone is not enough: on a 2-core machine (Linux 6.18, preemption
/// "none", HZ 250) the tick still waited for a core held by idle-class model threads, tick
/// p99 4.3 ms against the routine brain's 1.8 ms; with the model off core 0, 1.9 ms.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn keep_off_the_first_core() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        return;
    }
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes within it for the cores
    // below CPU_SETSIZE, and the call reads it for its size; thread id 0 is this thread.
    let pinned = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for core in 1..cores.min(libc::CPU_SETSIZE as usize) {
            libc::CPU_SET(core, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if pinned != 0 {
        tracing::warn!(
            "cannot keep a model thread off the world's core: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Starts candle's compute pools with lowered workers: its barrier pool from a lowered thread
/// (its workers inherit the policy), rayon's global pool with workers that lower themselves.
/// Called by every model loader before its first tensor operation; only the first call does
/// anything.
pub fn start_compute_pools() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let rayon = rayon::ThreadPoolBuilder::new()
            .thread_name(|n| format!("llm-rayon-{n}"))
            .start_handler(|_| lower_this_thread())
            .build_global();
        if let Err(e) = rayon {
            tracing::warn!("model matmuls run at the world's priority: {e}");
        }
        let started = std::thread::Builder::new()
            .name("llm-pool-start".into())
            .spawn(|| {
                lower_this_thread();
                candle_core::utils::barrier_pool();
            })
            .map(|thread| thread.join());
        if !matches!(started, Ok(Ok(()))) {
            tracing::warn!("model kernels run at the world's priority: cannot start their pool");
        }
    });
}

/// Linux's scheduling policy number for `SCHED_IDLE`, as [`thread_policies`] reports it.
pub const IDLE_POLICY: u32 = 5;

/// The scheduling policy (0 normal, [`IDLE_POLICY`] idle) of every thread of this process whose
/// name starts with `prefix`, for tests and diagnostics (Linux only; elsewhere empty).
#[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
pub fn thread_policies(prefix: &str) -> Vec<(String, u32)> {
    let mut found = Vec::new();
    #[cfg(target_os = "linux")]
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let path = task.path();
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let name = name.trim_end();
            if !name.starts_with(prefix) {
                continue;
            }
            // Field 41 of stat is the policy; the name (field 2) may hold spaces, so count from
            // the closing parenthesis (field 3 comes first after it).
            let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
            let policy = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(41 - 3))
                .and_then(|n| n.parse().ok());
            if let Some(policy) = policy {
                found.push((name.to_string(), policy));
            }
        }
    }
    found.sort();
    found
}
