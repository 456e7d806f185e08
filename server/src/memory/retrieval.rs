//! Retrieval: which memories matter now. Each memory scores on recency (exponential decay per
//! game hour since it was last recalled), importance (1-10) and relevance (cosine similarity of
//! its embedding to the query's); each is min-max normalised over the stream, weighted and
//! summed, and the top `k` come back, best first. Ties go to the older memory, so results
//! never depend on anything but the stream and the query.

use super::stream::{MemoryId, MemoryStream};
use agora_llm::kernels::dot;
use agora_shared::GameTime;

/// How the three scores are weighed. The default is the paper's code (recency 0.5,
/// relevance 3, importance 2) with the paper's decay of 0.995 per game hour.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetrievalWeights {
    pub recency: f32,
    pub relevance: f32,
    pub importance: f32,
    /// Recency is `decay_per_hour ^ hours since last recalled`.
    pub decay_per_hour: f32,
}

impl Default for RetrievalWeights {
    fn default() -> Self {
        Self {
            recency: 0.5,
            relevance: 3.0,
            importance: 2.0,
            decay_per_hour: 0.995,
        }
    }
}

/// A retrieved memory and its combined score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Retrieved {
    pub id: MemoryId,
    pub score: f32,
}

/// Rescales `values` to 0..1 in place; all equal gives 0.5 each (the paper's code).
fn min_max(values: &mut [f32]) {
    let (lo, hi) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let range = hi - lo;
    for v in values.iter_mut() {
        *v = if range > f32::EPSILON {
            (*v - lo) / range
        } else {
            0.5
        };
    }
}

impl MemoryStream {
    /// The `k` memories that best answer `query` (a unit embedding) at `now`, best first.
    /// A memory whose embedding has not arrived yet counts as the least relevant and the
    /// least important. Does not mark them recalled: call [`MemoryStream::touch`] for those
    /// the agent goes on to use.
    pub fn retrieve(
        &self,
        query: &[f32],
        now: GameTime,
        k: usize,
        weights: &RetrievalWeights,
    ) -> Vec<Retrieved> {
        let n = self.len();
        if n == 0 || k == 0 {
            return Vec::new();
        }
        let ln_decay = weights.decay_per_hour.ln();
        let mut recency = Vec::with_capacity(n);
        let mut importance = Vec::with_capacity(n);
        let mut relevance = Vec::with_capacity(n);
        let mut ready = Vec::with_capacity(n);
        for memory in self.iter() {
            let hours = now.0.saturating_sub(memory.last_accessed.0) as f32 / 3_600_000.0;
            recency.push((ln_decay * hours).exp());
            importance.push(memory.importance.map_or(1.0, f32::from));
            let vector = (self.embedding(memory.id)).filter(|_| query.len() == self.dimensions());
            ready.push(vector.is_some());
            relevance.push(vector.map_or(f32::NAN, |v| dot(query, v)));
        }
        // Unembedded memories take the lowest relevance of the rest.
        let floor = relevance
            .iter()
            .copied()
            .filter(|r| !r.is_nan())
            .fold(f32::INFINITY, f32::min);
        for r in relevance.iter_mut().filter(|r| r.is_nan()) {
            *r = if floor.is_finite() { floor } else { 0.0 };
        }
        min_max(&mut recency);
        min_max(&mut importance);
        min_max(&mut relevance);
        let mut scored: Vec<Retrieved> = (0..n)
            .map(|i| Retrieved {
                id: MemoryId(i as u32),
                score: weights.recency * recency[i]
                    + weights.importance * importance[i]
                    + weights.relevance * relevance[i],
            })
            .collect();
        let order =
            |a: &Retrieved, b: &Retrieved| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id));
        if k < n {
            scored.select_nth_unstable_by(k - 1, order);
            scored.truncate(k);
        }
        scored.sort_unstable_by(order);
        scored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryKind, NewMemory};

    fn write(
        stream: &mut MemoryStream,
        at_hour: u64,
        vector: [f32; 2],
        importance: u8,
    ) -> MemoryId {
        let id = stream.write(
            NewMemory {
                kind: MemoryKind::Event,
                description: format!("at {at_hour}"),
                triple: None,
                evidence: vec![],
            },
            GameTime(at_hour * 3_600_000),
        );
        stream.embed(id, &vector, importance);
        id
    }

    const NOW: GameTime = GameTime(100 * 3_600_000);

    #[test]
    fn each_score_alone_picks_its_own_winner() {
        let mut stream = MemoryStream::new(2);
        let relevant = write(&mut stream, 0, [1.0, 0.0], 1);
        let important = write(&mut stream, 1, [0.0, 1.0], 10);
        let recent = write(&mut stream, 99, [0.0, 1.0], 1);
        let only = |recency, importance, relevance| RetrievalWeights {
            recency,
            importance,
            relevance,
            ..RetrievalWeights::default()
        };
        let top = |w: RetrievalWeights| stream.retrieve(&[1.0, 0.0], NOW, 1, &w)[0].id;
        assert_eq!(top(only(1.0, 0.0, 0.0)), recent);
        assert_eq!(top(only(0.0, 1.0, 0.0)), important);
        assert_eq!(top(only(0.0, 0.0, 1.0)), relevant);
    }

    #[test]
    fn scores_are_normalised_and_weighted_as_the_paper_code_does() {
        let mut stream = MemoryStream::new(2);
        write(&mut stream, 0, [1.0, 0.0], 1);
        write(&mut stream, 50, [0.6, 0.8], 10);
        let all = stream.retrieve(&[1.0, 0.0], NOW, 10, &RetrievalWeights::default());
        // Two memories: each score normalises to 0 or 1. The second is more recent (0.5) and
        // more important (2); the first is more relevant (3).
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].id, MemoryId(0));
        assert!((all[0].score - 3.0).abs() < 1e-6, "{all:?}");
        assert!((all[1].score - 2.5).abs() < 1e-6, "{all:?}");
    }

    #[test]
    fn top_k_is_sorted_best_first_with_ties_to_the_older() {
        let mut stream = MemoryStream::new(2);
        for _ in 0..5 {
            write(&mut stream, 10, [0.0, 1.0], 3);
        }
        write(&mut stream, 10, [1.0, 0.0], 3);
        let top = stream.retrieve(&[1.0, 0.0], NOW, 3, &RetrievalWeights::default());
        let ids: Vec<u32> = top.iter().map(|r| r.id.0).collect();
        assert_eq!(ids, [5, 0, 1]);
        assert!(top.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(
            stream
                .retrieve(&[1.0, 0.0], NOW, 0, &RetrievalWeights::default())
                .is_empty()
        );
    }

    #[test]
    fn an_unembedded_memory_is_least_relevant_but_still_found_by_recency() {
        let mut stream = MemoryStream::new(2);
        write(&mut stream, 0, [1.0, 0.0], 5);
        write(&mut stream, 0, [0.0, 1.0], 5);
        let pending = stream.write(
            NewMemory {
                kind: MemoryKind::Chat,
                description: "just heard".into(),
                triple: None,
                evidence: vec![],
            },
            NOW,
        );
        let by_relevance = RetrievalWeights {
            recency: 0.0,
            importance: 0.0,
            relevance: 1.0,
            ..Default::default()
        };
        let ranked = stream.retrieve(&[1.0, 0.0], NOW, 3, &by_relevance);
        assert_eq!(ranked[2].id, pending, "{ranked:?}");
        let by_recency = RetrievalWeights {
            recency: 1.0,
            importance: 0.0,
            relevance: 0.0,
            ..Default::default()
        };
        assert_eq!(
            stream.retrieve(&[1.0, 0.0], NOW, 1, &by_recency)[0].id,
            pending
        );
    }
}
