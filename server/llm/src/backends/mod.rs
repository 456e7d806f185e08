//! Where model calls go: the embedded GGUF model, MiniLM embeddings, an OpenAI-compatible server.

pub mod embedded;
pub mod minilm;
pub mod openai;
