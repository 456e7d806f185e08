//! The OpenAI-compatible backend against a real server on loopback: llama-cpp-python's
//! (`python -m llama_cpp.server`) on the default GGUF, compared with the embedded model.
//! Needs `scripts/install-llama-cpp-python` (scripts/test runs it) and `scripts/fetch-models`.

mod common;

use agora_llm::backends::embedded::{EmbeddedModel, EmbeddedOptions};
use agora_llm::backends::openai::{OpenAiConfig, OpenAiModel, ScoringMode};
use agora_llm::{
    GenerateRequest, LanguageModel, LlmError, SamplingParams, ScoreRequest, TextEmbedder, locate,
};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A llama-cpp-python server process, killed when dropped.
struct Server {
    child: Child,
    base_url: String,
}

impl Server {
    fn start(extra: &[&str]) -> Self {
        let python = common::llama_cpp_python();
        let model = locate::language_model(None).expect("run scripts/fetch-models");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&python)
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(&model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--n_ctx",
                "1024",
                "--n_threads",
                "2",
                "--n_threads_batch",
                "2",
            ])
            .args(["--logits_all", "true", "--verbose", "false"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("llama-cpp-python starts");
        let server = Server {
            child,
            base_url: format!("http://127.0.0.1:{port}/v1"),
        };
        server.wait_ready();
        server
    }

    /// The server listens only once the model is loaded: poll `GET /v1/models`.
    fn wait_ready(&self) {
        let started = Instant::now();
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(2)))
                .build(),
        );
        while started.elapsed() < Duration::from_secs(120) {
            if agent
                .get(&format!("{}/models", self.base_url))
                .call()
                .is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("llama-cpp-python did not come up in 120 s");
    }

    fn model(&self, max_in_flight: usize) -> OpenAiModel {
        let mut config = OpenAiConfig::new(&self.base_url, "gemma");
        config.max_in_flight = max_in_flight;
        config.timeout = Duration::from_secs(60);
        OpenAiModel::new(config)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn greedy(prompt: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        prompt: prompt.into(),
        max_tokens,
        stop: vec!["\n".into()],
        sampling: SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed: 1,
        },
    }
}

#[test]
fn completions_server_generates_and_scores_like_the_embedded_model() {
    let server = Server::start(&[]);
    let remote = server.model(2);
    assert_eq!(remote.scoring_mode(), ScoringMode::Echo);

    // Generation: greedy is repeatable, stops where asked, and reports usage.
    let prompt = "Q: What do bakers bake?\nA:";
    let first = remote.generate(&greedy(prompt, 16)).unwrap();
    let again = remote.generate(&greedy(prompt, 16)).unwrap();
    assert_eq!(first.text, again.text);
    assert!(!first.text.trim().is_empty() && !first.text.contains('\n'));
    assert!(first.usage.prompt_tokens >= 8, "{:?}", first.usage);
    assert!(
        (1..=16).contains(&first.usage.completion_tokens),
        "{:?}",
        first.usage
    );

    // Scoring: the same ranking as the embedded model, and log-probs close to ours (both are
    // llama.cpp-style int8 pipelines; see llm_embedded.rs for how far they drift).
    let embedded = EmbeddedModel::load(
        &locate::language_model(None).unwrap(),
        EmbeddedOptions::default(),
    )
    .unwrap();
    // Short prompts: llama-cpp-python sorts the whole 262k vocabulary in Python for every
    // echoed token (~0.4 s each).
    let cases = [
        ("The capital of France is", vec![" Paris", " purple"]),
        (
            "The opposite of hot is",
            vec![" cold", " purple", " a banana"],
        ),
    ];
    for (prompt, candidates) in cases {
        let request = ScoreRequest {
            prompt: prompt.into(),
            candidates: candidates.iter().map(|c| c.to_string()).collect(),
        };
        let theirs = remote.score(&request).unwrap();
        let ours = embedded.score(&request).unwrap();
        assert_eq!(theirs.tokens, ours.tokens, "{prompt:?}: token counts");
        assert_eq!(
            theirs.best(),
            ours.best(),
            "{prompt:?}: {theirs:?} vs {ours:?}"
        );
        for (i, c) in candidates.iter().enumerate() {
            let tolerance = 0.6 * ours.tokens[i] as f32;
            assert!(
                (theirs.logprobs[i] - ours.logprobs[i]).abs() < tolerance,
                "{prompt:?} {c:?}: server {} vs embedded {}",
                theirs.logprobs[i],
                ours.logprobs[i]
            );
        }
    }

    // Concurrency: parallel callers share the two slots and all get answers.
    std::thread::scope(|s| {
        for i in 0..4 {
            let remote = &remote;
            s.spawn(move || {
                remote
                    .generate(&greedy(&format!("Day {i} in Maple Hollow:"), 4))
                    .unwrap()
            });
        }
    });
    assert!(remote.peak_in_flight() <= 2);

    // A prompt past the server's context is refused with its reason, not retried forever.
    let long = "Maple Hollow ".repeat(1500);
    let err = remote.generate(&greedy(&long, 4)).unwrap_err();
    assert!(matches!(err, LlmError::Request(_)), "{err}");

    // And a server that has gone is an error, promptly.
    let url = server.base_url.clone();
    drop(server);
    let mut config = OpenAiConfig::new(url, "gemma");
    config.retries = 1;
    config.backoff = Duration::from_millis(50);
    let err = OpenAiModel::new(config)
        .generate(&greedy("x", 1))
        .unwrap_err();
    assert!(matches!(err, LlmError::Unavailable(_)), "{err}");
}

/// The embeddings endpoint, driven for real. Gemma is no sentence encoder (its GGUF sets no
/// pooling, so the server returns one vector per token and the client mean-pools them), so
/// this checks the protocol: one vector per text, of the model's width, the same text giving
/// the same vector. llama-cpp-python 0.3.36 gets batches of several texts wrong for this
/// causal model (a text's vectors change with the texts batched before it), so equality is
/// checked across single-text calls.
#[test]
fn embeddings_server_returns_one_vector_per_text() {
    let server = Server::start(&["--embedding", "true"]);
    let remote = server.model(2);
    let texts = [
        "The baker lights the oven before dawn.",
        "The council votes on the new tax next week.",
    ];
    let batch = remote.embed(&texts).unwrap().vectors;
    assert_eq!(batch.len(), 2);
    assert!(
        batch.iter().all(|v| v.len() == 640),
        "Gemma 3 270M is 640 wide"
    );
    let one = |text: &str| remote.embed(&[text]).unwrap().vectors.remove(0);
    let cosine = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (norm(a) * norm(b))
    };
    let (baker, council) = (one(texts[0]), one(texts[1]));
    assert!(
        cosine(&baker, &batch[0]) > 0.9999,
        "a batch's first text, as alone"
    );
    assert!(cosine(&baker, &one(texts[0])) > 0.9999);
    assert!(cosine(&baker, &council) < 0.99);
}
