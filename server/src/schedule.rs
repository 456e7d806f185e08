//! The order of work inside one world tick.
//!
//! Every system of the server runs in `Update` inside one of these sets, which are chained,
//! so a tick always runs input -> clock -> reloads -> think -> act -> move -> record -> save ->
//! advance.
//! A fixed order is what makes simulation runs reproducible: two systems that both write to
//! the event log never race.

use bevy::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TickSystems {
    /// Decode and validate outside input (players, later).
    Input,
    /// Read the clock: day phase and anything keyed to the time of day.
    Clock,
    /// Apply edits to mod files (personas) that arrived since the last tick.
    Reload,
    /// Brains decide what each agent does next.
    Think,
    /// Decisions take effect: activities are logged, destinations set.
    Act,
    /// Walking along paths.
    Move,
    /// Hand this tick's events to the event log writer (off the tick thread), and send players
    /// what changed in their view.
    Record,
    /// Hand what this tick changed (players, memories, plans) to the database writer.
    Save,
    /// Advance the clock to the next tick.
    Advance,
}

pub fn plugin(app: &mut App) {
    app.configure_sets(
        Update,
        (
            TickSystems::Input,
            TickSystems::Clock,
            TickSystems::Reload,
            TickSystems::Think,
            TickSystems::Act,
            TickSystems::Move,
            TickSystems::Record,
            TickSystems::Save,
            TickSystems::Advance,
        )
            .chain(),
    );
}

/// Tick wall-clock statistics, in microseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TickStats {
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    /// Ticks by time, in power-of-two buckets: upper bound in microseconds -> ticks that took
    /// at most that long and more than half of it.
    pub histogram: BTreeMap<u64, u64>,
}

impl TickStats {
    pub fn from_durations(times: &[Duration]) -> Self {
        if times.is_empty() {
            return Self::default();
        }
        let mut us: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        us.sort_by(f64::total_cmp);
        let pick = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize];
        let mut histogram = BTreeMap::new();
        for t in &us {
            *histogram
                .entry((t.ceil() as u64).max(1).next_power_of_two())
                .or_default() += 1;
        }
        Self {
            histogram,
            mean: us.iter().sum::<f64>() / us.len() as f64,
            p50: pick(0.5),
            p99: pick(0.99),
            max: us[us.len() - 1],
        }
    }
}

/// The calling thread's time so far on a core (its CPU clock) and waiting in the run queue for
/// one (`/proc/thread-self/schedstat`): Linux only, `None` elsewhere or where the kernel keeps
/// no scheduler statistics (whose own run time lags for a running thread, hence the clock). A
/// tick's wall time less both is time it was blocked (on a lock, another thread, I/O).
#[allow(unsafe_code)]
pub fn thread_times() -> Option<ThreadTimes> {
    #[cfg(target_os = "linux")]
    {
        let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let queued = stat.split_whitespace().nth(1)?.parse().ok()?;
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid timespec for the call to fill.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
            return None;
        }
        Some(ThreadTimes {
            on_core: Duration::new(now.tv_sec as u64, now.tv_nsec as u32),
            queued: Duration::from_nanos(queued),
        })
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// See [`thread_times`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadTimes {
    pub on_core: Duration,
    pub queued: Duration,
}

impl std::ops::Sub for ThreadTimes {
    type Output = ThreadTimes;
    fn sub(self, earlier: ThreadTimes) -> ThreadTimes {
        ThreadTimes {
            on_core: self.on_core.saturating_sub(earlier.on_core),
            queued: self.queued.saturating_sub(earlier.queued),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn a_busy_thread_is_seen_on_a_core() {
        let before = thread_times().expect("Linux keeps scheduler statistics");
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let spent = thread_times().expect("still there") - before;
        assert!(spent.on_core >= Duration::from_millis(5), "{spent:?}");
        assert!(
            spent.on_core <= started.elapsed() + Duration::from_millis(5),
            "{spent:?}"
        );
    }
}
