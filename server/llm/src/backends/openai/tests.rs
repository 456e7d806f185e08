//! The HTTP client against a scripted server (a plain TCP listener that answers with canned
//! replies), for what a real server won't do on demand: fail, stall, refuse echo. The real
//! server is exercised in `tests/openai_backend.rs`.

use super::*;
use crate::SamplingParams;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

type Handler = dyn Fn(usize, &Value) -> (u16, String) + Send + Sync;

/// Answers each request with `handler(request number, JSON body)`; counts requests and the
/// most handled at once.
struct ScriptedServer {
    url: String,
    requests: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl ScriptedServer {
    fn start(
        delay: Duration,
        handler: impl Fn(usize, &Value) -> (u16, String) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let handler: Arc<Handler> = Arc::new(handler);
        let requests = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let active = Arc::new(AtomicUsize::new(0));
        let (r, p) = (requests.clone(), peak.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (handler, r, p, active) =
                    (handler.clone(), r.clone(), p.clone(), active.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                    p.fetch_max(now, Ordering::SeqCst);
                    let n = r.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(delay);
                    let (status, reply) =
                        handler(n, &serde_json::from_slice(&body).unwrap_or(Value::Null));
                    active.fetch_sub(1, Ordering::SeqCst);
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                        reply.len()
                    );
                });
            }
        });
        Self {
            url,
            requests,
            peak,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn config(url: &str) -> OpenAiConfig {
    let mut c = OpenAiConfig::new(url, "test-model");
    c.backoff = Duration::from_millis(10);
    c.retries = 2;
    c.timeout = Duration::from_secs(5);
    c
}

fn completion(text: &str) -> String {
    json!({"choices": [{"text": text}], "usage": {"prompt_tokens": 5, "completion_tokens": 2}})
        .to_string()
}

fn request(prompt: &str) -> GenerateRequest {
    GenerateRequest {
        prompt: prompt.into(),
        max_tokens: 8,
        stop: vec!["\n".into()],
        sampling: SamplingParams::default(),
    }
}

#[test]
fn sends_the_request_fields_and_cuts_at_the_stop() {
    let seen = Arc::new(Mutex::new(Value::Null));
    let s = seen.clone();
    let server = ScriptedServer::start(Duration::ZERO, move |_, body| {
        *s.lock().unwrap() = body.clone();
        (200, completion("to the cafe\nand then"))
    });
    let model = OpenAiModel::new(config(&server.url));
    let out = model.generate(&request("Marisol walks")).unwrap();
    assert_eq!(out.text, "to the cafe");
    assert_eq!(
        (out.usage.prompt_tokens, out.usage.completion_tokens),
        (5, 2)
    );
    let body = seen.lock().unwrap().clone();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["prompt"], "Marisol walks");
    assert_eq!(body["max_tokens"], 8);
    assert_eq!(body["stop"], json!(["\n"]));
    assert!(body["seed"].is_u64() && body["repeat_penalty"].is_f64());
}

#[test]
fn retries_transient_failures_then_succeeds() {
    let server = ScriptedServer::start(Duration::ZERO, |n, _| {
        if n < 2 {
            (503, r#"{"error":{"message":"loading"}}"#.into())
        } else {
            (200, completion("ok"))
        }
    });
    let out = OpenAiModel::new(config(&server.url))
        .generate(&request("x"))
        .unwrap();
    assert_eq!(out.text, "ok");
    assert_eq!(server.requests(), 3);
}

#[test]
fn gives_up_after_the_retries_with_the_servers_message() {
    let server = ScriptedServer::start(Duration::ZERO, |_, _| {
        (500, r#"{"error":{"message":"out of memory"}}"#.into())
    });
    let err = OpenAiModel::new(config(&server.url))
        .generate(&request("x"))
        .unwrap_err();
    assert!(matches!(err, LlmError::Unavailable(_)), "{err}");
    assert!(
        err.to_string().contains("out of memory") && err.to_string().contains("3 attempts"),
        "{err}"
    );
    assert_eq!(server.requests(), 3);
}

#[test]
fn a_client_error_is_not_retried() {
    let server = ScriptedServer::start(Duration::ZERO, |_, _| {
        (
            400,
            r#"{"error":{"message":"prompt is longer than the context"}}"#.into(),
        )
    });
    let err = OpenAiModel::new(config(&server.url))
        .generate(&request("x"))
        .unwrap_err();
    assert!(matches!(err, LlmError::Request(_)), "{err}");
    assert!(err.to_string().contains("longer than the context"), "{err}");
    assert_eq!(server.requests(), 1);
}

#[test]
fn malformed_replies_are_model_errors() {
    let server = ScriptedServer::start(Duration::ZERO, |n, _| match n {
        0 => (200, "<html>not json</html>".into()),
        _ => (200, r#"{"choices": []}"#.into()),
    });
    let model = OpenAiModel::new(config(&server.url));
    for _ in 0..2 {
        let err = model.generate(&request("x")).unwrap_err();
        assert!(matches!(err, LlmError::Model(_)), "{err}");
    }
}

#[test]
fn a_dead_or_stalled_server_is_unavailable_not_a_hang() {
    // Nothing listens on a port we just closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = OpenAiModel::new(config(&format!("http://127.0.0.1:{port}/v1")))
        .generate(&request("x"))
        .unwrap_err();
    assert!(matches!(err, LlmError::Unavailable(_)), "{err}");

    let server = ScriptedServer::start(Duration::from_secs(3), |_, _| (200, completion("late")));
    let mut c = config(&server.url);
    c.timeout = Duration::from_millis(200);
    c.retries = 1;
    let started = Instant::now();
    let err = OpenAiModel::new(c).generate(&request("x")).unwrap_err();
    assert!(matches!(err, LlmError::Unavailable(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn requests_in_flight_are_capped() {
    let server = ScriptedServer::start(Duration::from_millis(100), |_, _| (200, completion("ok")));
    let mut c = config(&server.url);
    c.max_in_flight = 2;
    let model = OpenAiModel::new(c);
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| model.generate(&request("x")).unwrap());
        }
    });
    assert_eq!(server.requests(), 6);
    assert_eq!(model.peak_in_flight(), 2);
    assert!(server.peak.load(Ordering::SeqCst) <= 2);
}

/// An echo reply: `prompt` split into the given tokens with log-probs, plus one generated.
fn echo_reply(tokens: &[(&str, f64)]) -> String {
    let mut names: Vec<&str> = tokens.iter().map(|t| t.0).collect();
    let mut values: Vec<Value> = tokens.iter().map(|t| json!(t.1)).collect();
    values[0] = Value::Null;
    names.push(" gen");
    values.push(json!(-0.1));
    json!({
        "choices": [{"text": "", "logprobs": {"tokens": names, "token_logprobs": values}}],
        "usage": {"prompt_tokens": tokens.len(), "completion_tokens": 1}
    })
    .to_string()
}

#[test]
fn echo_scoring_sums_the_candidate_tokens() {
    let server = ScriptedServer::start(Duration::ZERO, |_, body| {
        let prompt = body["prompt"].as_str().unwrap_or_default();
        let reply = match prompt {
            "The sky is blue" => {
                echo_reply(&[("The", 0.0), (" sky", -5.0), (" is", -1.0), (" blue", -2.0)])
            }
            "The capital of France is" => echo_reply(&[
                ("The", 0.0),
                (" capital", -6.0),
                (" of", -1.0),
                (" France", -3.0),
                (" is", -1.0),
            ]),
            "The capital of France is Paris" => echo_reply(&[
                ("The", 0.0),
                (" capital", -6.0),
                (" of", -1.0),
                (" France", -3.0),
                (" is", -1.0),
                (" Paris", -0.5),
            ]),
            "The capital of France is purple" => echo_reply(&[
                ("The", 0.0),
                (" capital", -6.0),
                (" of", -1.0),
                (" France", -3.0),
                (" is", -1.0),
                (" pur", -7.0),
                ("ple", -0.25),
            ]),
            _ => return (400, "{}".into()),
        };
        (200, reply)
    });
    let model = OpenAiModel::new(config(&server.url));
    let scores = model
        .score(&ScoreRequest {
            prompt: "The capital of France is".into(),
            candidates: vec![" Paris".into(), " purple".into()],
        })
        .unwrap();
    assert_eq!(model.scoring_mode(), ScoringMode::Echo);
    assert_eq!(scores.logprobs, vec![-0.5, -7.25]);
    assert_eq!(scores.tokens, vec![1, 2]);
    assert_eq!(scores.best(), Some(0));
}

#[test]
fn without_echo_scoring_falls_back_to_the_first_token() {
    let server = ScriptedServer::start(Duration::ZERO, |_, body| {
        if body["echo"] == json!(true) {
            return (
                400,
                r#"{"error":{"message":"Only no echo is supported"}}"#.into(),
            );
        }
        // llama-server's chat-style shape.
        let reply = json!({
            "choices": [{"text": " Paris", "logprobs": {"content": [{"token": " Paris", "logprob": -0.4,
                "top_logprobs": [{"token": " Paris", "logprob": -0.4}, {"token": " the", "logprob": -1.5},
                                 {"token": " a", "logprob": -2.0}]}]}}],
            "usage": {"prompt_tokens": 6, "completion_tokens": 1}
        });
        (200, reply.to_string())
    });
    let model = OpenAiModel::new(config(&server.url));
    let scores = model
        .score(&ScoreRequest {
            prompt: "The capital of France is".into(),
            candidates: vec![" the city".into(), " Paris".into(), " purple".into()],
        })
        .unwrap();
    assert_eq!(model.scoring_mode(), ScoringMode::FirstToken);
    assert_eq!(scores.logprobs, vec![-1.5, -0.4, -3.0]);
    assert_eq!(scores.best(), Some(1));
}

#[test]
fn embeddings_come_back_in_input_order() {
    let server = ScriptedServer::start(Duration::ZERO, |_, body| {
        assert_eq!(body["input"], json!(["a", "b"]));
        let reply = json!({"data": [
            {"index": 1, "embedding": [0.0, 1.0]},
            {"index": 0, "embedding": [1.0, 0.0]}
        ]});
        (200, reply.to_string())
    });
    let vectors = OpenAiModel::new(config(&server.url))
        .embed(&["a", "b"])
        .unwrap();
    assert_eq!(vectors.vectors, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
}

#[test]
fn per_token_embeddings_are_mean_pooled() {
    let server = ScriptedServer::start(Duration::ZERO, |_, _| {
        let reply =
            json!({"data": [{"index": 0, "embedding": [[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]]}]});
        (200, reply.to_string())
    });
    let vectors = OpenAiModel::new(config(&server.url))
        .embed(&["abc"])
        .unwrap();
    assert_eq!(vectors.vectors, vec![vec![1.0, 1.0]]);
}
