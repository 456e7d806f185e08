//! Memory retrieval: top 30 of 10,000 memories (the target: <= 1 ms).
//!
//! `cargo bench -p agora-server --bench retrieval` (add `-- 1000 100000` for other sizes).
//! Fills one agent's stream with random unit 384-d embeddings (MiniLM's width), importances
//! and write times over 30 game days, then times `retrieve` for fresh random queries and
//! prints mean, p50, p99 and max per call. Each query runs against the same stream, so the
//! embedding matrix is warm in cache; the first call's time (cold) is printed too.

use agora_server::memory::{MemoryKind, MemoryStream, NewMemory, RetrievalWeights};
use agora_shared::GameTime;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

const DIMENSIONS: usize = 384;
const TOP: usize = 30;
const QUERIES: usize = 500;

fn unit(rng: &mut ChaCha8Rng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIMENSIONS)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000]
    } else {
        sizes
    };
    println!(
        "{:>9} {:>4} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "memories", "top", "queries", "cold_us", "mean_us", "p50_us", "p99_us", "max_us"
    );
    for n in sizes {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut stream = MemoryStream::new(DIMENSIONS);
        let span_ms = 30 * 24 * 3_600_000u64;
        for i in 0..n {
            let at = GameTime(i as u64 * span_ms / n as u64);
            let id = stream.write(
                NewMemory {
                    kind: MemoryKind::Event,
                    description: format!("memory {i}"),
                    triple: None,
                    evidence: vec![],
                },
                at,
            );
            stream.embed(id, &unit(&mut rng), rng.random_range(1..=10));
        }
        let now = GameTime(span_ms);
        let weights = RetrievalWeights::default();
        let queries: Vec<Vec<f32>> = (0..QUERIES).map(|_| unit(&mut rng)).collect();
        let mut times: Vec<Duration> = Vec::with_capacity(QUERIES);
        let mut found = 0;
        for query in &queries {
            let t0 = Instant::now();
            let top = stream.retrieve(query, now, TOP, &weights);
            times.push(t0.elapsed());
            found += top.len();
        }
        assert_eq!(found, QUERIES * TOP.min(n));
        let cold = times[0];
        times.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let mean = times.iter().map(|&d| us(d)).sum::<f64>() / times.len() as f64;
        println!(
            "{:>9} {:>4} {:>8} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0}",
            n,
            TOP,
            QUERIES,
            us(cold),
            mean,
            us(times[times.len() / 2]),
            us(times[times.len() * 99 / 100]),
            us(times[times.len() - 1]),
        );
    }
}
