//! Fixtures shared by agora-llm's integration tests.

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
