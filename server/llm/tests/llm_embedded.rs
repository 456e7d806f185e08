//! The embedded backend on the real default model (gemma-3-270m Q4_K_M through candle).
//! Needs the model: `scripts/fetch-models` (CI runs it), or AGORA_MODEL=FILE.

use agora_llm::backends::embedded::{EmbeddedModel, EmbeddedOptions};
use agora_llm::{GenerateRequest, LanguageModel, LlmError, SamplingParams, ScoreRequest};
use serde_json::Value;

mod common;
use std::path::PathBuf;
use std::sync::OnceLock;

fn model() -> &'static EmbeddedModel {
    static MODEL: OnceLock<EmbeddedModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        EmbeddedModel::load(&common::default_model(), EmbeddedOptions::default())
            .expect("model loads")
    })
}

fn reference() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/llama_cpp_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn tokenizer_matches_llama_cpp_and_round_trips() {
    let tokenizer = &model().tokenizer;
    let cases = reference()["tokenize"].as_array().unwrap().clone();
    assert!(cases.len() >= 10);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let ids = tokenizer.encode(text, true, false);
        assert_eq!(
            ids, expected,
            "token ids differ from llama.cpp for {text:?}"
        );
        assert_eq!(tokenizer.decode(&ids), text, "round trip of {text:?}");
    }
}

/// Both engines quantise activations to 8 bits before every matmul, so a last-bit difference
/// in an f32 sum can flip a rounding and grow through 18 layers: single log-probs differ from
/// llama.cpp's by up to ~0.4 nats (mean ~0.12 on these 15), while the ranking holds.
#[test]
fn next_token_log_probs_match_llama_cpp() {
    let mut differences = Vec::new();
    for case in reference()["next_token"].as_array().unwrap() {
        let prompt = case["prompt"].as_str().unwrap();
        let top = case["top"].as_array().unwrap();
        let candidates: Vec<String> = top
            .iter()
            .map(|t| {
                model()
                    .tokenizer
                    .decode(&[t["id"].as_u64().unwrap() as u32])
            })
            .collect();
        let scores = model()
            .score(&ScoreRequest {
                prompt: prompt.into(),
                candidates: candidates.clone(),
            })
            .unwrap();
        for (i, t) in top.iter().enumerate() {
            // Each candidate must be exactly the one reference token for the comparison to hold.
            if scores.tokens[i] != 1 {
                continue;
            }
            let expected = t["logprob"].as_f64().unwrap() as f32;
            let got = scores.logprobs[i];
            assert!(
                (got - expected).abs() < 0.6,
                "{prompt:?} -> {:?}: candle {got:.3}, llama.cpp {expected:.3}",
                candidates[i]
            );
            differences.push((got - expected).abs());
        }
        assert_eq!(
            scores.best(),
            Some(0),
            "{prompt:?}: llama.cpp's top token is not ours: {candidates:?} {:?}",
            scores.logprobs
        );
    }
    assert!(differences.len() >= 10, "too few single-token candidates");
    let mean = differences.iter().sum::<f32>() / differences.len() as f32;
    assert!(
        mean < 0.2,
        "mean |difference| from llama.cpp {mean:.3} nats"
    );
}

#[test]
fn same_seed_same_text() {
    let request = |seed| GenerateRequest {
        prompt: "Marisol opened the cafe at dawn. She".into(),
        max_tokens: 16,
        stop: vec!["\n".into()],
        sampling: SamplingParams {
            temperature: 0.8,
            top_p: 0.95,
            repetition_penalty: 1.1,
            seed,
        },
    };
    let a = model().generate(&request(11)).unwrap();
    let b = model().generate(&request(11)).unwrap();
    assert_eq!(a.text, b.text);
    assert!(!a.text.trim().is_empty());
    assert!(!a.text.contains('\n'), "stop sequence kept: {:?}", a.text);
    assert!(a.usage.completion_tokens >= 1 && a.usage.completion_tokens <= 16);
    let others: Vec<String> = (12..16)
        .map(|s| model().generate(&request(s)).unwrap().text)
        .collect();
    assert!(
        others.iter().any(|t| *t != a.text),
        "seed changes nothing: {a:?} {others:?}"
    );
}

#[test]
fn scoring_ranks_the_obvious_continuation_first() {
    let cases: &[(&str, &[&str])] = &[
        (
            "Monday, Tuesday, Wednesday,",
            &[" Thursday", " Sunday", " banana"],
        ),
        ("1, 2, 3, 4,", &[" 5", " 9", " cat"]),
        ("The opposite of hot is", &[" cold", " purple", " seven"]),
        (
            "She unlocked the door with her",
            &[" key", " sandwich", " cloud"],
        ),
        (
            "The capital of France is",
            &[" Paris", " Tokyo", " a banana"],
        ),
    ];
    for (prompt, candidates) in cases {
        let scores = model()
            .score(&ScoreRequest {
                prompt: (*prompt).into(),
                candidates: candidates.iter().map(|c| c.to_string()).collect(),
            })
            .unwrap();
        assert_eq!(
            scores.best(),
            Some(0),
            "{prompt:?}: {candidates:?} scored {:?}",
            scores.logprobs
        );
    }
}

#[test]
fn batched_scores_equal_one_at_a_time_and_prefix_cache_is_reused() {
    let prompt = "Maple Hollow is a small town by the river. Marisol runs Willow Cafe, and every morning she".to_string();
    let candidates = vec![
        " opens the cafe early".to_string(),
        " sleeps".to_string(),
        " walks to the river and back".to_string(),
    ];
    let batched = model()
        .score(&ScoreRequest {
            prompt: prompt.clone(),
            candidates: candidates.clone(),
        })
        .unwrap();
    for (i, c) in candidates.iter().enumerate() {
        let alone = model()
            .score(&ScoreRequest {
                prompt: prompt.clone(),
                candidates: vec![c.clone()],
            })
            .unwrap();
        assert!(
            (alone.logprobs[0] - batched.logprobs[i]).abs() < 1e-2,
            "{c:?}: alone {} vs batched {}",
            alone.logprobs[0],
            batched.logprobs[i]
        );
        // The prompt was seen before: all of it but the last token comes from the cache.
        assert_eq!(alone.usage.cached_tokens, alone.usage.prompt_tokens - 1);
    }
}

#[test]
fn bad_requests_are_errors_not_panics() {
    let m = model();
    let empty = m.score(&ScoreRequest {
        prompt: "x".into(),
        candidates: vec![],
    });
    assert!(matches!(empty, Err(LlmError::Request(_))));
    let blank = m.score(&ScoreRequest {
        prompt: "x".into(),
        candidates: vec![String::new()],
    });
    assert!(matches!(blank, Err(LlmError::Request(_))));
    let huge = m.generate(&GenerateRequest {
        prompt: "word ".repeat(5000),
        max_tokens: 10,
        stop: vec![],
        sampling: SamplingParams::default(),
    });
    assert!(
        matches!(huge, Err(LlmError::Request(ref e)) if e.contains("exceeds the context")),
        "{huge:?}"
    );
}
