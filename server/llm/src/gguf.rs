//! Reading a GGUF file: metadata with clear errors, the tokenizer, tensors.

use crate::LlmError;
use crate::tokenizers::{SpecialTokens, Token, TokenType, Tokenizer};
use candle_core::Device;
use candle_core::quantized::QTensor;
use candle_core::quantized::gguf_file::{Content, Value};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// An open GGUF file: its parsed header and a reader for tensor data.
pub struct GgufFile {
    pub path: PathBuf,
    pub content: Content,
    reader: BufReader<File>,
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self, LlmError> {
        let file = File::open(path)
            .map_err(|e| LlmError::Model(format!("cannot open {}: {e}", path.display())))?;
        let mut reader = BufReader::new(file);
        let content = Content::read(&mut reader).map_err(|e| {
            LlmError::Model(format!("{} is not a valid GGUF file: {e}", path.display()))
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            content,
            reader,
        })
    }

    fn value(&self, key: &str) -> Result<&Value, LlmError> {
        self.content.metadata.get(key).ok_or_else(|| {
            LlmError::Model(format!("{}: missing metadata {key}", self.path.display()))
        })
    }

    fn typed<T>(
        &self,
        key: &str,
        get: impl Fn(&Value) -> candle_core::Result<T>,
    ) -> Result<T, LlmError> {
        get(self.value(key)?)
            .map_err(|e| LlmError::Model(format!("{}: metadata {key}: {e}", self.path.display())))
    }

    pub fn string(&self, key: &str) -> Result<String, LlmError> {
        self.typed(key, |v| v.to_string().cloned())
    }

    /// An unsigned integer of any width.
    pub fn uint(&self, key: &str) -> Result<u64, LlmError> {
        self.typed(key, |v| match v {
            Value::U8(x) => Ok(u64::from(*x)),
            Value::U16(x) => Ok(u64::from(*x)),
            Value::U32(x) => Ok(u64::from(*x)),
            Value::U64(x) => Ok(*x),
            Value::I32(x) if *x >= 0 => Ok(*x as u64),
            Value::I64(x) if *x >= 0 => Ok(*x as u64),
            other => {
                candle_core::bail!("expected an unsigned integer, got {:?}", other.value_type())
            }
        })
    }

    pub fn float(&self, key: &str) -> Result<f64, LlmError> {
        self.typed(key, |v| match v {
            Value::F32(x) => Ok(f64::from(*x)),
            Value::F64(x) => Ok(*x),
            other => candle_core::bail!("expected a float, got {:?}", other.value_type()),
        })
    }

    pub fn flag(&self, key: &str) -> Option<bool> {
        self.content
            .metadata
            .get(key)
            .and_then(|v| v.to_bool().ok())
    }

    pub fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    pub fn tensor(&mut self, name: &str) -> Result<QTensor, LlmError> {
        self.content
            .tensor(&mut self.reader, name, &Device::Cpu)
            .map_err(|e| LlmError::Model(format!("{}: tensor {name}: {e}", self.path.display())))
    }

    /// The tokenizer stored in the file (`tokenizer.ggml.*`): SentencePiece (`llama`) or
    /// byte-level BPE (`gpt2`).
    pub fn tokenizer(&self) -> Result<Tokenizer, LlmError> {
        let model = self.string("tokenizer.ggml.model")?;
        if model != "llama" && model != "gpt2" {
            return Err(LlmError::Model(format!(
                "{}: tokenizer model {model:?} is not supported (SentencePiece \"llama\" and \
                 byte-level BPE \"gpt2\" are)",
                self.path.display()
            )));
        }
        let list = |key: &str| -> Result<&Vec<Value>, LlmError> {
            self.value(key)?
                .to_vec()
                .map_err(|e| LlmError::Model(format!("{key}: {e}")))
        };
        let texts = list("tokenizer.ggml.tokens")?;
        let scores = list("tokenizer.ggml.scores").ok();
        let types = list("tokenizer.ggml.token_type").ok();
        let vocab = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let text = t
                    .to_string()
                    .map_err(|e| LlmError::Model(format!("tokenizer.ggml.tokens[{i}]: {e}")))?
                    .clone();
                let score = scores
                    .and_then(|s| s.get(i))
                    .and_then(|v| v.to_f32().ok())
                    .unwrap_or(0.0);
                let kind = types
                    .and_then(|s| s.get(i))
                    .and_then(|v| v.to_i32().ok())
                    .map_or(TokenType::Normal, TokenType::from_gguf);
                Ok(Token { text, score, kind })
            })
            .collect::<Result<Vec<_>, LlmError>>()?;
        let id = |key: &str| self.uint(key).ok().and_then(|v| u32::try_from(v).ok());
        let bpe = model == "gpt2";
        let special = SpecialTokens {
            bos: id("tokenizer.ggml.bos_token_id"),
            eos: id("tokenizer.ggml.eos_token_id"),
            // llama.cpp's defaults: SentencePiece models add BOS and a space prefix, BPE none.
            add_bos: self.flag("tokenizer.ggml.add_bos_token").unwrap_or(!bpe),
            add_space_prefix: self.flag("tokenizer.ggml.add_space_prefix").unwrap_or(!bpe),
        };
        if !bpe {
            return Tokenizer::new(vocab, special);
        }
        let merges = list("tokenizer.ggml.merges")?
            .iter()
            .enumerate()
            .map(|(i, m)| {
                m.to_string()
                    .cloned()
                    .map_err(|e| LlmError::Model(format!("tokenizer.ggml.merges[{i}]: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // As llama.cpp: a missing or empty name means its default pre-tokenizer, with a warning
        // (such a file was converted without naming its pre-tokenizer).
        let pre = self.string("tokenizer.ggml.pre").unwrap_or_default();
        if pre.is_empty() {
            tracing::warn!(
                "{}: no tokenizer.ggml.pre; using llama.cpp's default BPE pre-tokenizer \
                 (text may be split as the model was not trained to see it)",
                self.path.display()
            );
        }
        Tokenizer::new_bpe(vocab, special, &pre, &merges)
    }
}
