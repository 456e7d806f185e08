//! Llama and Qwen3 GGUF files, checked against llama.cpp itself. No such model ships with the
//! project (and tests download nothing), so each test writes a tiny model of that family with
//! random weights and a small byte-level BPE vocabulary, then compares our token ids and every
//! logit of a prompt with what llama.cpp (through llama-cpp-python) computes on the same file.
//! Needs `scripts/install-llama-cpp-python` (scripts/test runs it).

mod common;

use agora_llm::backends::embedded::{EmbeddedModel, EmbeddedOptions};
use agora_llm::decoder::{Chunk, Decoder};
use agora_llm::gguf::GgufFile;
use agora_llm::{GenerateRequest, LanguageModel, SamplingParams, ScoreRequest};
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::path::Path;

const HIDDEN: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 16;
const FFN: usize = 128;
const LAYERS: usize = 2;
const MERGES: usize = 80;

const CORPUS: &str = "the baker lights the oven before dawn and the mayor reads the paper \
    while the river carries mist past the park where the gardener trims the roses; \
    it's a quiet town, they'll say, and we're all neighbours here in 2024";

/// Texts whose token ids must equal llama.cpp's.
const SAMPLES: &[&str] = &[
    "the baker lights the oven",
    "The Gardener's roses, 12345 of them!",
    "  two  spaces\n\nand newlines\ttab",
    "café naïve — 日本 🎉",
    "they'll say it's we're",
    "in 2024 , a $5+3<=4 ~x | `y` €2",
];

/// A deterministic uniform stream in [-1, 1).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn tensor(&mut self, rows: usize, cols: usize, scale: f32) -> Tensor {
        let values: Vec<f32> = (0..rows * cols).map(|_| self.next() * scale).collect();
        Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap()
    }

    fn norm(&mut self, n: usize) -> Tensor {
        let values: Vec<f32> = (0..n).map(|_| 1.0 + 0.1 * self.next()).collect();
        Tensor::from_vec(values, n, &Device::Cpu).unwrap()
    }
}

/// GPT-2's byte alphabet, as in `llm::bpe`.
fn byte_alphabet() -> Vec<String> {
    agora_llm::tokenizers::bpe::byte_alphabet()
        .iter()
        .map(|c| c.to_string())
        .collect()
}

/// A byte-level BPE vocabulary: the 256 byte symbols, `MERGES` merges learned greedily from
/// `CORPUS` (most frequent pair first), and an end-of-text control token last.
fn vocabulary() -> (Vec<String>, Vec<String>) {
    let alphabet = byte_alphabet();
    let mut words: Vec<Vec<String>> = CORPUS
        .split(' ')
        .enumerate()
        .map(|(i, w)| {
            let text = if i == 0 {
                w.to_string()
            } else {
                format!(" {w}")
            };
            text.bytes().map(|b| alphabet[b as usize].clone()).collect()
        })
        .collect();
    let mut tokens = alphabet.clone();
    let mut merges = Vec::new();
    for _ in 0..MERGES {
        let mut counts: HashMap<(String, String), usize> = HashMap::new();
        for w in &words {
            for pair in w.windows(2) {
                *counts
                    .entry((pair[0].clone(), pair[1].clone()))
                    .or_default() += 1;
            }
        }
        let Some(((a, b), _)) = counts
            .into_iter()
            .max_by(|x, y| x.1.cmp(&y.1).then_with(|| y.0.cmp(&x.0)))
        else {
            break;
        };
        let merged = format!("{a}{b}");
        for w in &mut words {
            let mut i = 0;
            while i + 1 < w.len() {
                if w[i] == a && w[i + 1] == b {
                    w[i] = merged.clone();
                    w.remove(i + 1);
                }
                i += 1;
            }
        }
        merges.push(format!("{a} {b}"));
        if !tokens.contains(&merged) {
            tokens.push(merged);
        }
    }
    tokens.push("<|endoftext|>".into());
    (tokens, merges)
}

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| Value::String(s.clone())).collect())
}

/// Writes a tiny model of `arch` ("llama" or "qwen3") to `path`, with the pre-tokenizer
/// `pre` (`None`: no `tokenizer.ggml.pre` at all).
fn write_model(path: &Path, arch: &str, seed: u64, pre: Option<&str>) {
    let (tokens, merges) = vocabulary();
    let vocab = tokens.len();
    let eot = (vocab - 1) as u32;
    let mut types = vec![Value::I32(1); vocab];
    types[vocab - 1] = Value::I32(3);
    let llama = arch == "llama";
    let key = |k: &str| format!("{arch}.{k}");
    let mut metadata: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String(arch.into())),
        ("general.name".into(), Value::String(format!("tiny-{arch}"))),
        (key("block_count"), Value::U32(LAYERS as u32)),
        (key("context_length"), Value::U32(256)),
        (key("embedding_length"), Value::U32(HIDDEN as u32)),
        (key("feed_forward_length"), Value::U32(FFN as u32)),
        (key("attention.head_count"), Value::U32(HEADS as u32)),
        (key("attention.head_count_kv"), Value::U32(KV_HEADS as u32)),
        (key("attention.key_length"), Value::U32(HEAD_DIM as u32)),
        (key("attention.value_length"), Value::U32(HEAD_DIM as u32)),
        (key("rope.dimension_count"), Value::U32(HEAD_DIM as u32)),
        (
            key("rope.freq_base"),
            Value::F32(if llama { 500_000.0 } else { 1_000_000.0 }),
        ),
        (key("attention.layer_norm_rms_epsilon"), Value::F32(1e-6)),
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.tokens".into(), strings(&tokens)),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.merges".into(), strings(&merges)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(eot)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(eot)),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(llama)),
    ];
    if let Some(pre) = pre {
        metadata.push(("tokenizer.ggml.pre".into(), Value::String(pre.into())));
    }
    let mut noise = Noise(seed);
    let f32q = |t: Tensor| QTensor::quantize(&t, GgmlDType::F32).unwrap();
    let scale = |fan_in: usize| 1.0 / (fan_in as f32).sqrt();
    let mut tensors: Vec<(String, QTensor)> = vec![
        (
            "token_embd.weight".into(),
            f32q(noise.tensor(vocab, HIDDEN, 1.0)),
        ),
        ("output_norm.weight".into(), f32q(noise.norm(HIDDEN))),
    ];
    if llama {
        // Untied output, and Llama 3.1's RoPE frequency factors.
        tensors.push((
            "output.weight".into(),
            f32q(noise.tensor(vocab, HIDDEN, scale(HIDDEN))),
        ));
        let factors: Vec<f32> = (0..HEAD_DIM / 2).map(|i| 1.0 + i as f32 * 0.5).collect();
        tensors.push((
            "rope_freqs.weight".into(),
            f32q(Tensor::from_vec(factors, HEAD_DIM / 2, &Device::Cpu).unwrap()),
        ));
    }
    for i in 0..LAYERS {
        let p = |n: &str| format!("blk.{i}.{n}.weight");
        let mut layer = vec![
            (p("attn_norm"), f32q(noise.norm(HIDDEN))),
            (
                p("attn_q"),
                f32q(noise.tensor(HEADS * HEAD_DIM, HIDDEN, scale(HIDDEN))),
            ),
            (
                p("attn_k"),
                f32q(noise.tensor(KV_HEADS * HEAD_DIM, HIDDEN, scale(HIDDEN))),
            ),
            (
                p("attn_v"),
                f32q(noise.tensor(KV_HEADS * HEAD_DIM, HIDDEN, scale(HIDDEN))),
            ),
            (
                p("attn_output"),
                f32q(noise.tensor(HIDDEN, HEADS * HEAD_DIM, scale(HEADS * HEAD_DIM))),
            ),
            (p("ffn_norm"), f32q(noise.norm(HIDDEN))),
            (
                p("ffn_gate"),
                f32q(noise.tensor(FFN, HIDDEN, scale(HIDDEN))),
            ),
            (p("ffn_up"), f32q(noise.tensor(FFN, HIDDEN, scale(HIDDEN)))),
            (p("ffn_down"), f32q(noise.tensor(HIDDEN, FFN, scale(FFN)))),
        ];
        if !llama {
            layer.push((p("attn_q_norm"), f32q(noise.norm(HEAD_DIM))));
            layer.push((p("attn_k_norm"), f32q(noise.norm(HEAD_DIM))));
        }
        tensors.extend(layer);
    }
    let metadata_refs: Vec<(&str, &Value)> =
        metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &metadata_refs, &tensor_refs).unwrap();
}

/// llama.cpp's token ids for `SAMPLES` and its logits at every position of the first one.
const REFERENCE: &str = r#"
import json, sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=128, logits_all=True, verbose=False,
            n_threads=2, n_batch=128, type_k=0, type_v=0)  # f32 KV cache: no f16 rounding
samples = json.loads(sys.argv[2])
ids = [llm.tokenize(s.encode(), add_bos=False, special=False) for s in samples]
prompt = llm.tokenize(samples[0].encode(), add_bos=True, special=False)
llm.eval(prompt)
logits = [llm.scores[i].tolist() for i in range(len(prompt))]
print(json.dumps({"ids": ids, "prompt": prompt, "logits": logits}))
"#;

fn llama_cpp_reference(model: &Path) -> Json {
    let out = std::process::Command::new(common::llama_cpp_python())
        .arg("-c")
        .arg(REFERENCE)
        .arg(model)
        .arg(serde_json::to_string(SAMPLES).unwrap())
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "llama.cpp could not run {}: {}",
        model.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ids(json: &Json) -> Vec<u32> {
    json.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect()
}

fn matches_llama_cpp(arch: &str, seed: u64, pre: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("tiny-{arch}.gguf"));
    write_model(&path, arch, seed, pre);
    let reference = llama_cpp_reference(&path);

    let mut file = GgufFile::open(&path).unwrap();
    let tokenizer = file.tokenizer().unwrap();
    for (sample, expected) in SAMPLES.iter().zip(reference["ids"].as_array().unwrap()) {
        let ours = tokenizer.encode(sample, false, false);
        assert_eq!(ours, ids(expected), "{arch}: token ids of {sample:?}");
        assert_eq!(tokenizer.decode(&ours), *sample, "{arch}: round trip");
    }
    let prompt = ids(&reference["prompt"]);
    assert_eq!(
        tokenizer.encode(SAMPLES[0], true, false),
        prompt,
        "{arch}: BOS"
    );

    let model = Decoder::load(&mut file, 128).unwrap();
    let mut cache = model.new_cache().unwrap();
    let positions: Vec<usize> = (0..prompt.len()).collect();
    let rows: Vec<usize> = (0..prompt.len()).collect();
    let logits = model
        .forward(
            &mut cache,
            &Chunk {
                tokens: &prompt,
                positions: &positions,
                segments: None,
                logits_for: &rows,
                keep: true,
            },
        )
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let expected = reference["logits"].as_array().unwrap();
    let mut worst = 0f32;
    for (row, (ours, theirs)) in logits.iter().zip(expected).enumerate() {
        let theirs: Vec<f32> = theirs
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            worst = worst.max((a - b).abs());
        }
        let argmax = |v: &[f32]| (0..v.len()).max_by(|&i, &j| v[i].total_cmp(&v[j]));
        assert_eq!(
            argmax(ours),
            argmax(&theirs),
            "{arch}: top token at row {row}"
        );
    }
    assert!(
        worst < 1e-3,
        "{arch}: logits differ from llama.cpp's by up to {worst}"
    );

    // The whole backend runs the file: generation and scoring.
    let embedded = EmbeddedModel::load(&path, EmbeddedOptions::default()).unwrap();
    let text = embedded
        .generate(&GenerateRequest {
            prompt: SAMPLES[0].into(),
            max_tokens: 6,
            stop: vec![],
            sampling: SamplingParams::default(),
        })
        .unwrap();
    assert!(text.usage.completion_tokens > 0, "{arch}: {text:?}");
    let scores = embedded
        .score(&ScoreRequest {
            prompt: "the baker".into(),
            candidates: vec![" lights".into(), " roses".into()],
        })
        .unwrap();
    assert!(
        scores.logprobs.iter().all(|l| l.is_finite() && *l < 0.0),
        "{scores:?}"
    );
}

#[test]
fn llama_matches_llama_cpp() {
    matches_llama_cpp("llama", 11, Some("llama-bpe"));
}

#[test]
fn qwen3_matches_llama_cpp() {
    matches_llama_cpp("qwen3", 12, Some("qwen2"));
}

/// Files that say `default`, or name no pre-tokenizer at all, get llama.cpp's default set
/// (punctuation, GPT-2, numbers, digits in threes), not GPT-2's rule alone: the samples'
/// "Gardener's", "12345" and "2024" split differently under the two.
#[test]
fn default_and_missing_pre_tokenizers_match_llama_cpp() {
    matches_llama_cpp("llama", 13, Some("default"));
    matches_llama_cpp("llama", 14, None);
}
