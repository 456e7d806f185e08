//! Memory: each agent's stream of what it perceived, heard and thought, and how it finds what
//! matters now: retrieval by recency, importance and relevance, as in "Generative Agents"
//! (Park et al. 2023). Data and scoring only; cognition decides what to write and when to
//! embed it, so this module needs no model and no system of its own.

mod importance;
mod retrieval;
mod stream;

pub use importance::{IMPORTANT_PROTOTYPES, ImportanceRater, MUNDANE_PROTOTYPES, best_similarity};
pub use retrieval::{RetrievalWeights, Retrieved};
pub use stream::{Memory, MemoryId, MemoryKind, MemoryStream, NewMemory, Triple};
