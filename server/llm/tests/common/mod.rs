//! Fixtures shared by agora-llm's integration tests.
// Each test crate uses some of these.
#![allow(dead_code)]

use std::path::PathBuf;

/// The python of the llama-cpp-python venv that scripts/install-llama-cpp-python makes
/// (`$AGORA_LLAMA_CPP_PYTHON` overrides it).
pub fn llama_cpp_python() -> PathBuf {
    let python = std::env::var_os("AGORA_LLAMA_CPP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| agora_llm::locate::model_cache().join(".venv-llama-cpp/bin/python"));
    assert!(
        python.exists(),
        "no llama-cpp-python at {}: run scripts/install-llama-cpp-python",
        python.display()
    );
    python
}

/// The default model file (`$AGORA_MODEL` overrides it); `scripts/fetch-models` puts it there.
pub fn default_model() -> PathBuf {
    if let Some(p) = std::env::var_os("AGORA_MODEL") {
        return PathBuf::from(p);
    }
    let path = agora_llm::locate::model_cache().join("gemma-3-270m-q4_k_m.gguf");
    assert!(
        path.exists(),
        "no model at {}: run scripts/fetch-models first",
        path.display()
    );
    path
}
