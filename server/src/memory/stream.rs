//! One agent's memory stream: every memory in the order it was written, with its embedding in
//! one contiguous matrix so that retrieval reads it in a single pass.

use agora_shared::GameTime;
use bevy::prelude::*;
use std::collections::BTreeSet;

/// A memory's place in its agent's stream (0 is the first memory written).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemoryId(pub u32);

/// The paper's three kinds of memory node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryKind {
    /// Something the agent perceived.
    Event,
    /// Something the agent concluded or decided: reflections, plans, and the persona's seeds.
    Thought,
    /// Something said in its hearing.
    Chat,
}

impl MemoryKind {
    pub fn name(self) -> &'static str {
        match self {
            MemoryKind::Event => "event",
            MemoryKind::Thought => "thought",
            MemoryKind::Chat => "chat",
        }
    }

    /// The kind [`Self::name`] names.
    pub fn from_name(name: &str) -> Option<Self> {
        [MemoryKind::Event, MemoryKind::Thought, MemoryKind::Chat]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// Subject-predicate-object: what a memory is about, for keyword lookups and for telling
/// whether an observation has changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Triple {
    pub subject: String,
    pub predicate: String,
    pub object: String,
}

/// What a writer supplies; the stream adds the id, the times and (later) the embedding.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMemory {
    pub kind: MemoryKind,
    pub description: String,
    pub triple: Option<Triple>,
    /// Memories a thought was drawn from.
    pub evidence: Vec<MemoryId>,
}

/// One memory node.
#[derive(Clone, Debug, PartialEq)]
pub struct Memory {
    pub id: MemoryId,
    pub kind: MemoryKind,
    pub created: GameTime,
    /// Retrieval refreshes it: what is recalled stays fresh (recency decays from here).
    pub last_accessed: GameTime,
    pub description: String,
    pub triple: Option<Triple>,
    /// 1 (mundane) to 10 (poignant); `None` until its embedding has arrived and been rated.
    pub importance: Option<u8>,
    /// Lower-case words a lookup by name finds it by: the triple's subject and object.
    pub keywords: Vec<String>,
    pub evidence: Vec<MemoryId>,
}

impl Memory {
    /// A reflection: a thought drawn from other memories that is not a plan (plans carry a
    /// "plans" triple, the persona's seeds no evidence).
    pub fn is_reflection(&self) -> bool {
        self.kind == MemoryKind::Thought && self.triple.is_none() && !self.evidence.is_empty()
    }
}

/// Where a memory's embedding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Embedding {
    /// Not yet asked for.
    Wanted,
    /// Asked for; the answer has not been applied.
    Requested,
    Ready,
}

/// An agent's memories. Ids are positions: memories are never removed or reordered.
#[derive(Component, Debug, Default)]
pub struct MemoryStream {
    memories: Vec<Memory>,
    embedding: Vec<Embedding>,
    /// Row `i` is memory `i`'s unit embedding (zeros until it is ready), `dimensions` wide.
    vectors: Vec<f32>,
    dimensions: usize,
    /// Memories written, embedded or recalled since the last [`MemoryStream::take_changed`].
    changed: BTreeSet<MemoryId>,
}

impl MemoryStream {
    /// A stream for embeddings `dimensions` wide (MiniLM: 384).
    pub fn new(dimensions: usize) -> Self {
        Self {
            dimensions,
            ..Self::default()
        }
    }

    /// A stream as saved: memories in id order (ids 0, 1, 2, ...), each with its embedding if
    /// it had one; memories without one are asked for again.
    pub fn restore(
        dimensions: usize,
        saved: Vec<(Memory, Option<Vec<f32>>)>,
    ) -> Result<Self, String> {
        let mut stream = Self::new(dimensions);
        for (i, (mut memory, vector)) in saved.into_iter().enumerate() {
            if memory.id.0 as usize != i {
                return Err(format!("memory {} found where {i} belongs", memory.id.0));
            }
            let embedded = match vector {
                Some(v) if v.len() == dimensions => {
                    stream.vectors.extend_from_slice(&v);
                    true
                }
                Some(v) => {
                    return Err(format!(
                        "memory {i} has a {}-wide embedding, expected {dimensions}",
                        v.len()
                    ));
                }
                None => {
                    stream.vectors.extend(std::iter::repeat_n(0.0, dimensions));
                    memory.importance = None;
                    false
                }
            };
            memory.keywords = keywords(memory.triple.as_ref());
            stream.embedding.push(if embedded {
                Embedding::Ready
            } else {
                Embedding::Wanted
            });
            stream.memories.push(memory);
        }
        Ok(stream)
    }

    pub fn len(&self) -> usize {
        self.memories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.memories.is_empty()
    }

    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    pub fn get(&self, id: MemoryId) -> Option<&Memory> {
        self.memories.get(id.0 as usize)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Memory> + ExactSizeIterator {
        self.memories.iter()
    }

    /// Writes a memory at `now`; its embedding is wanted from the next [`Self::take_wanted`].
    pub fn write(&mut self, memory: NewMemory, now: GameTime) -> MemoryId {
        let id = MemoryId(self.memories.len() as u32);
        let keywords = keywords(memory.triple.as_ref());
        self.changed.insert(id);
        self.memories.push(Memory {
            id,
            kind: memory.kind,
            created: now,
            last_accessed: now,
            description: memory.description,
            triple: memory.triple,
            importance: None,
            keywords,
            evidence: memory.evidence,
        });
        self.embedding.push(Embedding::Wanted);
        self.vectors
            .extend(std::iter::repeat_n(0.0, self.dimensions));
        id
    }

    /// The memories whose embedding is wanted, oldest first, now marked as requested.
    pub fn take_wanted(&mut self) -> Vec<(MemoryId, String)> {
        let mut wanted = Vec::new();
        for (state, memory) in self.embedding.iter_mut().zip(&self.memories) {
            if *state == Embedding::Wanted {
                *state = Embedding::Requested;
                wanted.push((memory.id, memory.description.clone()));
            }
        }
        wanted
    }

    /// A request failed: ask again with the next batch.
    pub fn want_again(&mut self, id: MemoryId) {
        if let Some(state) = self.embedding.get_mut(id.0 as usize)
            && *state == Embedding::Requested
        {
            *state = Embedding::Wanted;
        }
    }

    /// Applies an embedding and the importance rated from it. A vector of the wrong width is
    /// refused (false), leaving the memory unembedded.
    pub fn embed(&mut self, id: MemoryId, vector: &[f32], importance: u8) -> bool {
        let i = id.0 as usize;
        if i >= self.memories.len() || vector.len() != self.dimensions {
            return false;
        }
        self.vectors[i * self.dimensions..(i + 1) * self.dimensions].copy_from_slice(vector);
        self.embedding[i] = Embedding::Ready;
        self.memories[i].importance = Some(importance.clamp(1, 10));
        self.changed.insert(id);
        true
    }

    pub fn is_embedded(&self, id: MemoryId) -> bool {
        self.embedding.get(id.0 as usize) == Some(&Embedding::Ready)
    }

    /// A memory's embedding, if it has arrived.
    pub fn embedding(&self, id: MemoryId) -> Option<&[f32]> {
        let i = id.0 as usize;
        (self.embedding.get(i) == Some(&Embedding::Ready))
            .then(|| &self.vectors[i * self.dimensions..(i + 1) * self.dimensions])
    }

    /// The memories written, embedded or recalled since the last call (what to save).
    pub fn take_changed(&mut self) -> Vec<MemoryId> {
        std::mem::take(&mut self.changed).into_iter().collect()
    }

    /// Marks memories as recalled at `now` (recency counts from the last recall).
    pub fn touch(&mut self, ids: impl IntoIterator<Item = MemoryId>, now: GameTime) {
        for id in ids {
            if let Some(memory) = self.memories.get_mut(id.0 as usize)
                && memory.last_accessed < now
            {
                memory.last_accessed = now;
                self.changed.insert(id);
            }
        }
    }

    /// The summed importance of rated memories written after `since`: what triggers reflection.
    pub fn importance_since(&self, since: GameTime) -> u32 {
        self.memories
            .iter()
            .rev()
            .take_while(|m| m.created > since)
            .filter_map(|m| m.importance)
            .map(u32::from)
            .sum()
    }
}

/// Lower-case words a lookup by name finds a memory by: its triple's subject and object.
fn keywords(triple: Option<&Triple>) -> Vec<String> {
    triple
        .iter()
        .flat_map(|t| [&t.subject, &t.object])
        .map(|word| word.to_lowercase())
        .filter(|word| !word.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(text: &str, subject: &str, object: &str) -> NewMemory {
        NewMemory {
            kind: MemoryKind::Event,
            description: text.into(),
            triple: Some(Triple {
                subject: subject.into(),
                predicate: "is".into(),
                object: object.into(),
            }),
            evidence: vec![],
        }
    }

    #[test]
    fn memories_get_ids_in_order_keywords_and_an_embedding_once() {
        let mut stream = MemoryStream::new(2);
        let a = stream.write(
            event("Iris is painting", "Iris Chen", "painting"),
            GameTime(5),
        );
        let b = stream.write(event("Gabriel is sawing", "Gabriel", "sawing"), GameTime(9));
        assert_eq!((a, b), (MemoryId(0), MemoryId(1)));
        assert_eq!(stream.get(a).unwrap().keywords, ["iris chen", "painting"]);
        assert_eq!(stream.get(b).unwrap().created, GameTime(9));

        let wanted = stream.take_wanted();
        assert_eq!(wanted.len(), 2);
        assert!(stream.take_wanted().is_empty(), "asked for twice");
        stream.want_again(b);
        assert_eq!(stream.take_wanted(), vec![(b, "Gabriel is sawing".into())]);

        assert!(
            !stream.embed(a, &[1.0, 0.0, 0.0], 5),
            "wrong width accepted"
        );
        assert!(!stream.is_embedded(a));
        assert!(stream.embed(a, &[1.0, 0.0], 12));
        assert!(stream.is_embedded(a));
        assert_eq!(stream.get(a).unwrap().importance, Some(10), "clamped to 10");
        assert_eq!(stream.embedding(a), Some(&[1.0, 0.0][..]));
        assert_eq!(stream.embedding(b), None);
        assert_eq!(stream.take_changed(), [a, b]);
        assert!(stream.take_changed().is_empty());
        stream.touch([b], GameTime(50));
        assert_eq!(stream.take_changed(), [b]);
    }

    #[test]
    fn a_restored_stream_is_the_saved_one_and_asks_again_for_missing_embeddings() {
        let mut stream = MemoryStream::new(2);
        let a = stream.write(event("Iris is painting", "Iris", "painting"), GameTime(5));
        let b = stream.write(event("Bo is here", "Bo", "here"), GameTime(6));
        stream.take_wanted();
        stream.embed(a, &[0.6, 0.8], 7);
        let saved: Vec<(Memory, Option<Vec<f32>>)> = stream
            .iter()
            .map(|m| (m.clone(), stream.embedding(m.id).map(<[f32]>::to_vec)))
            .collect();
        let mut restored = MemoryStream::restore(2, saved.clone()).unwrap();
        assert_eq!(
            restored.iter().collect::<Vec<_>>(),
            stream.iter().collect::<Vec<_>>()
        );
        assert_eq!(restored.embedding(a), Some(&[0.6, 0.8][..]));
        assert_eq!(restored.take_wanted(), [(b, "Bo is here".to_string())]);
        assert!(restored.take_changed().is_empty(), "nothing new to save");

        let mut gap = saved.clone();
        gap.remove(0);
        assert!(
            MemoryStream::restore(2, gap)
                .unwrap_err()
                .contains("found where 0")
        );
        let mut wide = saved;
        wide[0].1 = Some(vec![1.0; 3]);
        assert!(
            MemoryStream::restore(2, wide)
                .unwrap_err()
                .contains("3-wide")
        );
    }

    #[test]
    fn importance_since_sums_only_newer_rated_memories() {
        let mut stream = MemoryStream::new(1);
        for t in 1..=4 {
            let id = stream.write(event("x", "a", "b"), GameTime(t));
            if t != 3 {
                stream.embed(id, &[1.0], t as u8);
            }
        }
        // Memories at t=2 (2) and t=4 (4); t=3 is not rated yet.
        assert_eq!(stream.importance_since(GameTime(1)), 6);
        assert_eq!(stream.importance_since(GameTime(4)), 0);
    }

    #[test]
    fn touching_never_moves_a_memory_back_in_time() {
        let mut stream = MemoryStream::new(1);
        let id = stream.write(event("x", "a", "b"), GameTime(10));
        stream.touch([id], GameTime(3));
        assert_eq!(stream.get(id).unwrap().last_accessed, GameTime(10));
        stream.touch([id, MemoryId(99)], GameTime(20));
        assert_eq!(stream.get(id).unwrap().last_accessed, GameTime(20));
    }
}
