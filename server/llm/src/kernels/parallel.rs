//! Data parallelism on candle's thread pool.
//!
//! candle's CPU kernels run on its own pool, whose workers spin for a while after each
//! operation. Work of ours between candle's operations (our matmul kernel, attention) runs on
//! the same pool: a second pool (rayon's) on the same cores would fight those spinning workers
//! (decode was 40% slower that way).

use candle_core::utils::barrier_pool;
use std::sync::Mutex;

/// `(0..items).map(f)` computed in parallel, results in order.
pub fn map<T: Send>(items: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let slots: Vec<Mutex<Option<T>>> = (0..items).map(|_| Mutex::new(None)).collect();
    barrier_pool().execute_chunked(items, |range| {
        for item in range {
            let value = f(item);
            *slots[item].lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every item was computed")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_back_in_order() {
        let squares = super::map(1000, |i| i * i);
        assert_eq!(squares, (0..1000).map(|i| i * i).collect::<Vec<_>>());
        assert!(super::map(0, |i| i).is_empty());
    }
}
