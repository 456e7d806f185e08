//! Importance (the paper's "poignancy", 1-10) from embeddings. The 270M model's own 1-10 rating
//! carries almost no signal (its expected rating moves by ~0.3 between wiping a counter and a
//! husband's collapse), while MiniLM's similarity to a few "important" prototypes minus the
//! similarity to "mundane" ones orders memories sensibly. The labelled set in
//! `server/tests/cognition_labelled.rs` measures both; the figures are in the note that
//! introduced this.

use agora_llm::kernels::dot;
use agora_llm::{LlmError, TextEmbedder};

/// What a memory that matters looks like: the kinds of life event the paper's scale calls
/// poignant, one short phrase each.
pub const IMPORTANT_PROTOTYPES: &[&str] = &[
    "someone was hurt, fell ill or died",
    "an emergency or danger, like a fire or an accident",
    "a wedding, a birth, or a new relationship",
    "a breakup, a quarrel or a betrayal",
    "someone lost their job or their home",
    "a big success: a prize, a promotion, an acceptance",
    "someone is moving away or arriving for good",
    "a life-changing announcement or decision",
    "an invitation to a special event",
    "big news about the town",
    "a secret or a confession",
];

/// What a memory that does not matter looks like.
pub const MUNDANE_PROTOTYPES: &[&str] = &[
    "a greeting or small talk",
    "a routine chore",
    "an ordinary everyday moment",
    "eating, drinking or sleeping as usual",
    "someone is idle or walking by",
    "someone is reading, working or busy with a hobby",
    "small talk about the weather or food",
    "routine work at one's job",
];

/// The signal (best important similarity minus best mundane similarity) that maps to a rating
/// of 1 and of 10; in between it is linear, and beyond it clamps.
const SIGNAL_AT_1: f32 = -0.15;
const SIGNAL_AT_10: f32 = 0.25;

/// Rates memories from their embeddings against the prototypes'.
#[derive(Clone, Debug)]
pub struct ImportanceRater {
    important: Vec<Vec<f32>>,
    mundane: Vec<Vec<f32>>,
}

/// The highest cosine between a unit vector and any of the prototypes (unit vectors): how close
/// it comes to the kind of thing they describe. Every prototype rater contrasts two of these.
pub fn best_similarity(prototypes: &[Vec<f32>], vector: &[f32]) -> f32 {
    prototypes
        .iter()
        .map(|p| dot(p, vector))
        .fold(f32::NEG_INFINITY, f32::max)
}

impl ImportanceRater {
    /// Embeds the prototypes once (at start-up, never in a tick).
    pub fn new(embedder: &dyn TextEmbedder) -> Result<Self, LlmError> {
        let mut vectors = embedder
            .embed(&[IMPORTANT_PROTOTYPES, MUNDANE_PROTOTYPES].concat())?
            .vectors;
        if vectors.len() != IMPORTANT_PROTOTYPES.len() + MUNDANE_PROTOTYPES.len() {
            return Err(LlmError::Model(format!(
                "{} gave {} vectors for {} prototypes",
                embedder.name(),
                vectors.len(),
                IMPORTANT_PROTOTYPES.len() + MUNDANE_PROTOTYPES.len()
            )));
        }
        let mundane = vectors.split_off(IMPORTANT_PROTOTYPES.len());
        Ok(Self {
            important: vectors,
            mundane,
        })
    }

    /// A rater from prototype vectors computed elsewhere (unit length, one embedder's).
    pub fn from_vectors(important: Vec<Vec<f32>>, mundane: Vec<Vec<f32>>) -> Self {
        Self { important, mundane }
    }

    /// How much more a memory resembles the important prototypes than the mundane ones.
    pub fn signal(&self, vector: &[f32]) -> f32 {
        best_similarity(&self.important, vector) - best_similarity(&self.mundane, vector)
    }

    /// The 1-10 rating of a memory with this unit embedding.
    pub fn rate(&self, vector: &[f32]) -> u8 {
        let t = (self.signal(vector) - SIGNAL_AT_1) / (SIGNAL_AT_10 - SIGNAL_AT_1);
        (1.0 + 9.0 * t.clamp(0.0, 1.0)).round() as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_run_from_1_to_10_with_the_signal() {
        // Scripted prototypes (not a real embedder): axis 0 is important, axis 1 mundane.
        let rater = ImportanceRater::from_vectors(vec![vec![1.0, 0.0]], vec![vec![0.0, 1.0]]);
        assert_eq!(rater.rate(&[1.0, 0.0]), 10);
        assert_eq!(rater.rate(&[0.0, 1.0]), 1);
        let middle = rater.rate(&[0.6, 0.6]);
        assert!((4..=6).contains(&middle), "{middle}");
    }
}
