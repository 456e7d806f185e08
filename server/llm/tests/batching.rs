//! Continuous batching on the real default model: a request's answer is the same bits
//! whatever else shares its passes; requests join and leave a running batch; a cancelled or
//! failing request leaves the others running; prompts that start alike share their prefix.

use agora_llm::backends::embedded::batcher::{Outcome, Ticket};
use agora_llm::backends::embedded::{EmbeddedModel, EmbeddedOptions};
use agora_llm::decoder::{Chunk, Decoder};
use agora_llm::gguf::GgufFile;
use agora_llm::{GenerateRequest, LanguageModel, LlmError, SamplingParams, ScoreRequest};

mod common;

fn load(options: EmbeddedOptions) -> EmbeddedModel {
    EmbeddedModel::load(&common::default_model(), options).expect("model loads")
}

fn sampled(prompt: &str, seed: u64, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        prompt: prompt.into(),
        max_tokens,
        stop: vec![],
        sampling: SamplingParams {
            temperature: 0.9,
            top_p: 0.95,
            repetition_penalty: 1.1,
            seed,
        },
    }
}

fn text(ticket: Ticket) -> String {
    match ticket.wait().expect("generates") {
        Outcome::Generated(g) => g.text,
        Outcome::Scored(s) => panic!("scores for a generation: {s:?}"),
    }
}

const PROMPTS: [&str; 16] = [
    "Marisol opened the cafe at dawn. She",
    "The mayor of Maple Hollow reads the paper every morning and",
    "By the river, the gardener trims the roses while",
    "Jordan Lee studies late in the dormitory because",
    "The baker lights the oven before sunrise, then",
    "At the town hall, the clerk stamps the forms and",
    "Rain fell on Willow Cafe all afternoon, so",
    "The children ran across the green towards",
    "Old Mr. Haddad tells the same story every evening:",
    "The library closes at six, but tonight",
    "A stranger arrived in Maple Hollow with",
    "The pharmacist counted the pills twice because",
    "On Sundays the market square fills with",
    "The fisherman said the river had never",
    "Nobody in town knew why the clock tower",
    "The teacher wrote one word on the board:",
];

#[test]
fn logits_of_a_sequence_are_the_same_bits_alone_and_in_a_batch_of_16() {
    let mut file = GgufFile::open(&common::default_model()).unwrap();
    let tokenizer = file.tokenizer().unwrap();
    let decoder = Decoder::load(&mut file, 512).unwrap();
    let prompts: Vec<Vec<u32>> = PROMPTS
        .iter()
        .map(|p| tokenizer.encode(p, true, false))
        .collect();
    let prefill = |ids: &[u32]| {
        let mut cache = decoder.new_cache().unwrap();
        let positions: Vec<usize> = (0..ids.len()).collect();
        let logits = decoder
            .forward(
                &mut cache,
                &Chunk {
                    tokens: ids,
                    positions: &positions,
                    segments: None,
                    logits_for: &[ids.len() - 1],
                    keep: true,
                },
            )
            .unwrap();
        (cache, logits.to_vec2::<f32>().unwrap().remove(0))
    };
    // Alone: each prompt, then three decode steps of fixed tokens.
    let steps = [1000u32, 2000, 3000];
    let mut alone = Vec::new();
    for ids in &prompts {
        let (mut cache, first) = prefill(ids);
        let mut rows = vec![first];
        for (k, &token) in steps.iter().enumerate() {
            let logits = decoder
                .forward(
                    &mut cache,
                    &Chunk {
                        tokens: &[token],
                        positions: &[ids.len() + k],
                        segments: None,
                        logits_for: &[0],
                        keep: true,
                    },
                )
                .unwrap();
            rows.push(logits.to_vec2::<f32>().unwrap().remove(0));
        }
        alone.push(rows);
    }
    // Together: all 16 prompts in one pass, then the decode steps of all 16 in one pass each.
    let mut caches: Vec<_> = (0..16).map(|_| decoder.new_cache().unwrap()).collect();
    let positions: Vec<Vec<usize>> = prompts.iter().map(|p| (0..p.len()).collect()).collect();
    let last: Vec<[usize; 1]> = prompts.iter().map(|p| [p.len() - 1]).collect();
    let chunks: Vec<Chunk<'_>> = (0..16)
        .map(|i| Chunk {
            tokens: &prompts[i],
            positions: &positions[i],
            segments: None,
            logits_for: &last[i],
            keep: true,
        })
        .collect();
    let mut refs: Vec<_> = caches.iter_mut().collect();
    let mut together: Vec<Vec<Vec<f32>>> = (decoder.forward_batch(&mut refs, &chunks).unwrap())
        .iter()
        .map(|l| l.to_vec2::<f32>().unwrap())
        .collect();
    for (k, token) in steps.iter().enumerate() {
        let at: Vec<[usize; 1]> = prompts.iter().map(|p| [p.len() + k]).collect();
        let chunks: Vec<Chunk<'_>> = (0..16)
            .map(|i| Chunk {
                tokens: std::slice::from_ref(token),
                positions: &at[i],
                segments: None,
                logits_for: &[0],
                keep: true,
            })
            .collect();
        let mut refs: Vec<_> = caches.iter_mut().collect();
        let logits = decoder.forward_batch(&mut refs, &chunks).unwrap();
        for (i, l) in logits.iter().enumerate() {
            together[i].push(l.to_vec2::<f32>().unwrap().remove(0));
        }
    }
    for i in 0..16 {
        for step in 0..=steps.len() {
            let differ = (alone[i][step].iter().zip(&together[i][step]))
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(differ, 0, "prompt {i} step {step}: {differ} logits differ");
        }
    }
}

#[test]
fn a_request_that_joins_a_running_batch_gets_the_text_it_gets_alone() {
    let model = load(EmbeddedOptions::default());
    let joiner = sampled(PROMPTS[0], 7, 24);
    let solo = model.generate(&joiner).unwrap().text;
    // Three generations run; the joiner arrives while they decode, and a fourth after it.
    let running: Vec<Ticket> = (1..4)
        .map(|i| {
            model
                .submit_generate(&sampled(PROMPTS[i], i as u64, 40))
                .unwrap()
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let joined = model.submit_generate(&joiner).unwrap();
    let later = model.submit_generate(&sampled(PROMPTS[4], 4, 8)).unwrap();
    assert_eq!(text(joined), solo, "a batch changed the joiner's text");
    for ticket in running.into_iter().chain([later]) {
        assert!(!text(ticket).is_empty());
    }
    let stats = model.batching().unwrap();
    assert!(
        stats.max_sequences >= 4,
        "the requests never shared a pass: {stats:?}"
    );
}

#[test]
fn scores_inside_a_generation_batch_are_the_scores_alone() {
    let model = load(EmbeddedOptions::default());
    let request = ScoreRequest {
        prompt: "Maple Hollow is a small town by the river. Every morning Marisol".into(),
        candidates: vec![
            " opens the cafe early".into(),
            " sleeps".into(),
            " walks to the river and back".into(),
        ],
    };
    let alone = model.score(&request).unwrap();
    let generating: Vec<Ticket> = (5..9)
        .map(|i| model.submit_generate(&sampled(PROMPTS[i], 1, 32)).unwrap())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let inside = match model.submit_score(&request).unwrap().wait().unwrap() {
        Outcome::Scored(s) => s,
        Outcome::Generated(g) => panic!("text for scores: {g:?}"),
    };
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&inside.logprobs), bits(&alone.logprobs));
    for ticket in generating {
        assert!(!text(ticket).is_empty());
    }
}

#[test]
fn a_cancelled_or_failing_request_leaves_the_others_running() {
    let model = load(EmbeddedOptions::default());
    let keep = sampled(PROMPTS[9], 3, 20);
    let solo = model.generate(&keep).unwrap().text;
    let long = sampled(PROMPTS[10], 3, 160);
    let long_alone = model.generate(&long).unwrap().usage.completion_tokens;
    assert!(
        long_alone > 100,
        "the long request ends by itself: {long_alone} tokens"
    );
    model.reset_batching();
    let kept = model.submit_generate(&keep).unwrap();
    let cancelled = model.submit_generate(&long).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    drop(cancelled);
    // Refused before it joins: too long for the context.
    let too_long = model.submit_generate(&sampled(&"word ".repeat(5000), 1, 8));
    assert!(matches!(too_long, Err(LlmError::Request(_))));
    let blank = model.submit_score(&ScoreRequest {
        prompt: "x".into(),
        candidates: vec![String::new()],
    });
    assert!(matches!(blank, Err(LlmError::Request(_))));
    assert_eq!(text(kept), solo);
    // The cancelled one left the batch long before its end.
    let stats = model.batching().unwrap();
    let tokens = stats.decode_tokens + stats.other_tokens;
    assert!(
        tokens < u64::from(long_alone),
        "the cancelled request ran on: {tokens} tokens in {stats:?}"
    );
}

#[test]
fn prompts_that_start_alike_compute_their_shared_prefix_once() {
    let model = load(EmbeddedOptions::default());
    let head = "You are writing the diary of a town. The town is Maple Hollow, by a river, \
                with a cafe, a library, a market and a town hall. Each entry is one line. ";
    let requests: Vec<GenerateRequest> = (0..6)
        .map(|i| sampled(&format!("{head}{}", PROMPTS[i]), 5, 6))
        .collect();
    let solo: Vec<String> = {
        let fresh = load(EmbeddedOptions {
            prefix_cache_bytes: 0,
            ..EmbeddedOptions::default()
        });
        requests
            .iter()
            .map(|r| fresh.generate(r).unwrap().text)
            .collect()
    };
    // All at once, on a model that has seen none of them: the first computes the head, the
    // others wait for it and read it.
    let tickets: Vec<Ticket> = requests
        .iter()
        .map(|r| model.submit_generate(r).unwrap())
        .collect();
    let texts: Vec<String> = tickets.into_iter().map(text).collect();
    assert_eq!(texts, solo);
    let stats = model.batching().unwrap();
    assert_eq!(stats.prefix_lookups, 6);
    assert!(stats.prefix_hits >= 5, "{stats:?}");
    let head_tokens = model.tokenizer.encode(head, true, false).len() as u64;
    assert!(
        stats.reused_prompt_tokens >= 5 * (head_tokens - 1),
        "{} of {} prompt tokens reused; the head is {head_tokens}",
        stats.reused_prompt_tokens,
        stats.prompt_tokens
    );
}
