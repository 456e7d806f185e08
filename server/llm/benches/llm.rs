//! Embedded model speed and memory: prefill and decode tokens/s, peak RSS.
//!
//! `cargo bench -p agora-server --bench llm -- [MODEL.gguf]` prints one JSON line;
//! `scripts/bench-llm` runs it beside llama.cpp on the same file and prints the ratios.
//! Model calls are timed without the prefix cache (distinct prompts). Also reports MiniLM
//! embedding throughput (sentences/s at batch 32, ~7-token and ~14-token sentences), measured
//! after the language model.
//! `-- MODEL --prefill-only N` (or `--decode-only N`: N 64-token generations; `--embed-only N`)
//! runs that work alone, for a profiler.
//!
//! `-- MODEL --batched` measures continuous batching instead: 1, 4, 8 and 16 concurrent
//! streams of one shape (a ~230-token prompt whose first ~150 tokens all streams share, 64
//! greedy tokens each), then 16 streams of 512-token prompts for peak memory; one JSON line.

use agora_llm::backends::embedded::batcher::Ticket;
use agora_llm::backends::embedded::{EmbeddedModel, EmbeddedOptions};
use agora_llm::{GenerateRequest, LanguageModel, SamplingParams, TextEmbedder};
use std::path::PathBuf;
use std::time::Instant;

/// A prompt of about 256 tokens; `salt` makes each run's prompt distinct (no cache hits).
fn prompt(salt: usize) -> String {
    let mut text = format!("Run {salt}. ");
    while text.len() < 1100 {
        text.push_str(
            "Maple Hollow wakes slowly: the baker lights the oven, the mayor reads the paper, \
             and the river carries mist past the park where the gardener trims the roses. ",
        );
    }
    text
}

/// Text grown by `filler` sentences until it is at least `tokens` tokens long (the peer script
/// builds the same texts with the same tokenizer).
fn grow(
    model: &EmbeddedModel,
    start: String,
    tokens: usize,
    filler: &dyn Fn(usize) -> String,
) -> String {
    let mut text = start;
    let mut n = 0;
    while model.tokenizer.encode(&text, true, false).len() < tokens {
        text.push_str(&filler(n));
        n += 1;
    }
    text
}

/// Prompts of `streams` streams: a shared head of ~`shared` tokens, then each its own text up
/// to ~`total` tokens. `salt` keeps runs apart (no prefix cache hits between them).
fn stream_prompts(
    model: &EmbeddedModel,
    salt: usize,
    streams: usize,
    shared: usize,
    total: usize,
) -> Vec<String> {
    let head = grow(model, format!("Town log {salt}. "), shared, &|n| {
        format!(
            "Entry {n}: the baker lights the oven, the mayor reads the paper, and the river carries mist past the park. "
        )
    });
    (0..streams)
        .map(|s| {
            grow(model, format!("{head}Stream {s} says: "), total, &|n| {
                format!(
                    "agent {s} walks to place {n} and greets neighbour {}. ",
                    s * 7 + n
                )
            })
        })
        .collect()
}

/// Runs `prompts` at once, 64 greedy tokens each; returns (aggregate decode tokens/s, mean
/// and p99 decode step ms).
fn batched_run(model: &EmbeddedModel, prompts: &[String], max_tokens: u32) -> (f64, f64, f64) {
    let greedy = SamplingParams {
        temperature: 0.0,
        top_p: 1.0,
        repetition_penalty: 1.0,
        seed: 0,
    };
    model.reset_batching();
    let tickets: Vec<Ticket> = prompts
        .iter()
        .map(|prompt| {
            model
                .submit_generate(&GenerateRequest {
                    prompt: prompt.clone(),
                    max_tokens,
                    stop: vec![],
                    sampling: greedy,
                })
                .expect("submits")
        })
        .collect();
    for ticket in tickets {
        ticket.wait().expect("generates");
    }
    let stats = model.batching().expect("the embedded model batches");
    (
        stats.decode_tokens_per_s(),
        stats.decode_seconds * 1e3 / stats.decode_passes.max(1) as f64,
        stats.decode_step_ms(99.0),
    )
}

fn batched(model: &EmbeddedModel) {
    let mut rows = Vec::new();
    for (salt, streams) in [1usize, 4, 8, 16].into_iter().enumerate() {
        let prompts = stream_prompts(model, salt, streams, 150, 230);
        let tokens = model.tokenizer.encode(&prompts[0], true, false).len();
        let (tps, mean, p99) = batched_run(model, &prompts, 64);
        rows.push(format!(
            "{{\"streams\":{streams},\"prompt_tokens\":{tokens},\"aggregate_decode_tps\":{tps:.1},\"step_ms_mean\":{mean:.1},\"step_ms_p99\":{p99:.1}}}"
        ));
    }
    let long = stream_prompts(model, 99, 16, 16, 512);
    batched_run(model, &long, 1);
    println!(
        "{{\"engine\":\"candle\",\"threads\":{},\"batched\":[{}],\"peak_rss_mb_16x512\":{:.0}}}",
        candle_core::utils::get_num_threads(),
        rows.join(","),
        peak_rss_mb()
    );
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// MiniLM sentences per second for short (~7-token) and longer (~14-token) sentences: 320 of
/// each in batches of 32 (zeros without the model).
fn embed_throughput() -> (f64, f64) {
    let Ok(embedder) =
        agora_llm::backends::minilm::Embedder::load(&agora_llm::backends::minilm::default_folder())
    else {
        return (0.0, 0.0);
    };
    let rate = |make: &dyn Fn(usize) -> String| {
        let sentences: Vec<String> = (0..320).map(make).collect();
        let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
        let t = Instant::now();
        embedder.embed(&refs).expect("embeds");
        refs.len() as f64 / t.elapsed().as_secs_f64()
    };
    (
        rate(&|i| format!("Agent {i} went home.")),
        rate(&|i| format!("Agent {i} remembers walking to the cafe on a rainy morning.")),
    )
}

fn main() {
    let path = std::env::args()
        .skip(1)
        .find(|a| a.ends_with(".gguf"))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/agora/models/gemma-3-270m-q4_k_m.gguf")
        });
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--embed-only") {
        let n: usize = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(10);
        for _ in 0..n {
            let (short, long) = embed_throughput();
            println!("{short:.0} short, {long:.0} longer sentences/s");
        }
        return;
    }
    let load = Instant::now();
    let model = EmbeddedModel::load(&path, EmbeddedOptions::default()).expect("model loads");
    let load_s = load.elapsed().as_secs_f64();
    if let Some(i) = args.iter().position(|a| a == "--batched-only") {
        // N streams decoding 256 tokens each and nothing else, for a profiler.
        let n: usize = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(16);
        let prompts = stream_prompts(&model, 7, n, 150, 230);
        let (tps, mean, p99) = batched_run(&model, &prompts, 256);
        println!("{n} streams: {tps:.1} tokens/s, step {mean:.1} ms (p99 {p99:.1})");
        return;
    }
    if args.iter().any(|a| a == "--batched") {
        batched(&model);
        return;
    }
    let greedy = SamplingParams {
        temperature: 0.0,
        top_p: 1.0,
        repetition_penalty: 1.0,
        seed: 0,
    };
    // Warm-up, then prefill (1 generated token) and decode (64 more) as separate calls.
    let run = |salt: usize, max_tokens: u32| {
        model
            .generate(&GenerateRequest {
                prompt: prompt(salt),
                max_tokens,
                stop: vec![],
                sampling: greedy,
            })
            .expect("generates")
    };
    run(0, 2);
    // `--prefill-only N` / `--decode-only N`: that work N times and nothing else, for a profiler.
    for (flag, max_tokens) in [("--prefill-only", 1), ("--decode-only", 65)] {
        if let Some(i) = args.iter().position(|a| a == flag) {
            let n: usize = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(10);
            for salt in 0..n {
                run(100 + salt, max_tokens);
            }
            return;
        }
    }
    let (mut prefill_tokens, mut prefill_s) = (0u32, 0.0);
    for salt in 1..=3 {
        let g = run(salt, 1);
        prefill_tokens += g.usage.prompt_tokens;
        prefill_s += g.usage.elapsed.as_secs_f64();
    }
    let one = run(10, 1);
    let full = run(10 + 1000, 65);
    // Decode time: the 65-token call minus a 1-token call on a prompt of the same length.
    let decode_tokens = full.usage.completion_tokens.saturating_sub(1).max(1);
    let decode_s = (full.usage.elapsed.as_secs_f64() - one.usage.elapsed.as_secs_f64()).max(1e-9);
    // Peak memory of the language model alone, before the embedder is loaded.
    let peak_rss = peak_rss_mb();
    let (embed_short, embed_long) = embed_throughput();
    println!(
        "{{\"engine\":\"candle\",\"prompt_tokens\":{},\"prefill_tps\":{:.1},\"decode_tps\":{:.1},\"peak_rss_mb\":{:.0},\"load_s\":{:.2},\"threads\":{},\"embed_sentences_per_s\":{:.0},\"embed_sentences_per_s_14_tokens\":{:.0}}}",
        prefill_tokens / 3,
        f64::from(prefill_tokens) / prefill_s,
        f64::from(decode_tokens) / decode_s,
        peak_rss,
        load_s,
        candle_core::utils::get_num_threads(),
        embed_short,
        embed_long
    );
}
