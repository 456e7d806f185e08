//! Interviews: ask an agent of a finished run a question, and it answers from its memory
//! stream, citing the memories it drew on. Grounded by construction: the memory most relevant
//! to the question (MiniLM cosine) is the one that answers, and the language model only words
//! that memory (`assets/prompts/interview.txt`, greedy). The 270M model
//! invents freely when it is given room (see the design notes), so its wording is kept only if
//! every content word in it comes from the memory or the question; otherwise the agent quotes
//! the memory. When no memory is relevant enough, the model is not asked and the agent says it
//! does not remember.
//!
//! What an agent knows comes before what it heard said: its own memories (its persona's, what
//! it saw, its thoughts) and news told it (a line worded from the teller's own memory) answer
//! first; a line someone merely said (small talk the model free-wrote, which may be untrue)
//! answers only when nothing the agent knows is relevant. A question it was asked never
//! answers.

use super::conversation::{is_question, spoken_line};
use super::perception::TOLD;
use super::prompts::Template;
use crate::memory::{Memory, MemoryId, MemoryKind, MemoryStream, RetrievalWeights, Triple};
use agora_llm::kernels::dot;
use agora_llm::{GenerateRequest, LanguageModel, LlmError, SamplingParams, TextEmbedder};
use agora_shared::GameTime;
use agora_shared::events::{Event, EventRecord};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

/// A memory must be at least this similar to the question (cosine, MiniLM) to answer it.
pub const MIN_RELEVANCE: f32 = 0.35;
/// Memories recalled and listed with an answer.
const RECALLED: usize = 5;
/// What an agent says when no memory answers the question.
pub const NOTHING_REMEMBERED: &str = "I don't remember anything about that.";

/// A memory as a run's log tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedAgent {
    pub name: String,
    pub memories: Vec<Memory>,
}

/// An answer and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Interview {
    pub answer: String,
    /// The memory the answer words; `None` when nothing was remembered.
    pub drawn_from: Option<MemoryId>,
    /// Whether the answer is the model's wording (else the memory quoted, or nothing).
    pub worded: bool,
    /// What the question recalled, best first: the memory, its retrieval score and its
    /// relevance to the question.
    pub recalled: Vec<(Memory, f32, f32)>,
}

/// Every agent's memories from a run's `events.jsonl` (`memory` events, any run with memory),
/// by agent id, and the game time the log ends at. Reads line by line; a last line cut short
/// (a killed run) is skipped.
pub fn agents_from_log(path: &Path) -> Result<(BTreeMap<String, LoggedAgent>, GameTime), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut agents: BTreeMap<String, LoggedAgent> = BTreeMap::new();
    let mut end = GameTime(0);
    // Line by line: a long run's log is never held whole.
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        let record: EventRecord = match serde_json::from_str(&line) {
            Ok(record) => record,
            // A newer log's kinds are not ours to read; a cut last line is a killed run's.
            Err(_) => continue,
        };
        end = end.max(record.time);
        match record.event {
            Event::AgentSpawned { agent, name, .. } => {
                agents.entry(agent).or_insert(LoggedAgent {
                    name,
                    memories: vec![],
                });
            }
            Event::Memory {
                agent,
                memory,
                memory_kind,
                created,
                description,
                importance,
                evidence,
                told,
                ..
            } => {
                let Some(logged) = agents.get_mut(&agent) else {
                    return Err(format!(
                        "{}:{}: a memory of unknown agent {agent}",
                        path.display(),
                        i + 1
                    ));
                };
                let kind = MemoryKind::from_name(&memory_kind).unwrap_or(MemoryKind::Thought);
                // News told, as the stream keeps it: the teller told the agent.
                let triple = told.then(|| Triple {
                    subject: (description.split_once(" said: "))
                        .map_or_else(String::new, |(who, _)| who.to_string()),
                    predicate: TOLD.into(),
                    object: logged.name.clone(),
                });
                logged.memories.push(Memory {
                    id: MemoryId(memory),
                    kind,
                    created,
                    last_accessed: created,
                    description,
                    triple,
                    importance: Some(importance),
                    keywords: vec![],
                    evidence: evidence.into_iter().map(MemoryId).collect(),
                });
            }
            _ => {}
        }
    }
    Ok((agents, end))
}

/// Asks `agent` `question` at `now`: embeds its memories and the question (one batch),
/// retrieves, and has the model word the best memory if it is relevant enough.
pub fn interview(
    agent: &LoggedAgent,
    question: &str,
    now: GameTime,
    embedder: &dyn TextEmbedder,
    model: &dyn LanguageModel,
    template: &Template,
) -> Result<Interview, LlmError> {
    let question = question.replace(['\n', '\r'], " ");
    let mut texts: Vec<&str> = agent
        .memories
        .iter()
        .map(|m| m.description.as_str())
        .collect();
    texts.push(&question);
    let mut vectors = embedder.embed(&texts)?.vectors;
    let query = vectors
        .pop()
        .ok_or_else(|| LlmError::Model("no vector for the question".into()))?;
    let dimensions = query.len();
    // Ids as logged; the stream needs them to be its positions.
    let mut memories = agent.memories.clone();
    memories.sort_by_key(|m| m.id);
    let saved: Vec<(Memory, Option<Vec<f32>>)> = memories
        .iter()
        .cloned()
        .zip(vectors.into_iter().map(Some))
        .enumerate()
        .map(|(i, (mut m, v))| {
            m.id = MemoryId(i as u32);
            (m, v)
        })
        .collect();
    let stream = MemoryStream::restore(dimensions, saved).map_err(LlmError::Request)?;
    let recalled: Vec<(Memory, f32, f32)> = stream
        .retrieve(&query, now, RECALLED, &RetrievalWeights::default())
        .into_iter()
        .filter_map(|r| {
            let memory = memories.get(r.id.0 as usize)?.clone();
            let vector = stream.embedding(r.id)?;
            let relevance = dot(vector, &query);
            Some((memory, r.score, relevance))
        })
        .collect();
    // The answer draws on the most relevant memory, whatever its age or importance (cosine
    // found the answering memory 13 times in 15 on the labelled set, retrieval's blend less
    // often once recent chatter crowds the stream), of what the agent knows before what it
    // heard said (see the module's docs); the retrieval list is shown beside it.
    let most_relevant = (memories.iter().enumerate())
        .filter(|(_, m)| !is_question(&m.description))
        .filter_map(|(i, m)| {
            let vector = stream.embedding(MemoryId(i as u32))?;
            Some((m, dot(vector, &query)))
        })
        .filter(|(_, relevance)| *relevance >= MIN_RELEVANCE)
        .max_by(|a, b| {
            (known(a.0).cmp(&known(b.0)))
                .then(a.1.total_cmp(&b.1))
                .then(b.0.id.cmp(&a.0.id))
        });
    let Some((best, _)) = most_relevant else {
        return Ok(Interview {
            answer: NOTHING_REMEMBERED.into(),
            drawn_from: None,
            worded: false,
            recalled,
        });
    };
    let values = BTreeMap::from([
        ("agent", agent.name.clone()),
        ("memory", best.description.clone()),
        ("question", question.clone()),
    ]);
    let generation = model.generate(&GenerateRequest {
        prompt: template.render(&values),
        max_tokens: 40,
        stop: vec!["\n".into()],
        sampling: SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
    })?;
    // Wording that adds anything, or no wording at all: the memory speaks for itself.
    let sources = [
        best.description.as_str(),
        question.as_str(),
        agent.name.as_str(),
    ];
    let worded = spoken_line(&generation.text, std::slice::from_ref(&agent.name))
        .filter(|answer| unsupported_words(answer, &sources).is_empty());
    Ok(Interview {
        answer: (worded.clone())
            .unwrap_or_else(|| format!("I remember this: {}", best.description)),
        drawn_from: Some(best.id),
        worded: worded.is_some(),
        recalled,
    })
}

/// Whether the agent knows what `memory` says (its own memory, or news told it), rather than
/// having heard someone say it.
fn known(memory: &Memory) -> bool {
    memory.kind != MemoryKind::Chat || memory.triple.as_ref().is_some_and(|t| t.predicate == TOLD)
}

/// Words of four letters or more that carry no content of their own.
const FUNCTION_WORDS: &[&str] = &[
    "about", "also", "been", "because", "being", "could", "does", "doing", "from", "have", "heard",
    "here", "into", "just", "know", "like", "maybe", "much", "only", "remember", "said", "should",
    "some", "that", "their", "them", "then", "there", "they", "this", "told", "very", "want",
    "were", "what", "when", "where", "which", "will", "with", "would", "your", "yes",
];

/// The content words of `answer` that none of `sources` has (a word counts as had when a
/// source word shares its first four letters or is its start: "running" for "run").
pub fn unsupported_words(answer: &str, sources: &[&str]) -> Vec<String> {
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let known: Vec<String> = sources.iter().flat_map(|s| words(s)).collect();
    let had = |word: &str| {
        let stem: String = word.chars().take(4).collect();
        known.iter().any(|k| {
            k.starts_with(&stem) || (k.chars().count() >= 3 && word.starts_with(k.as_str()))
        })
    };
    words(answer)
        .into_iter()
        .filter(|w| w.chars().count() >= 4 && !FUNCTION_WORDS.contains(&w.as_str()))
        .filter(|w| !had(w))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_llm::{Embeddings, Generation, ScoreRequest, Scores, Usage};

    const QUESTION: &str = "Is there a party coming up?";
    const SMALL_TALK: &str = r#"Hannah Weiss said: "She attends a party.""#;
    const NEWS: &str = r#"Marisol Alvarez said: "Marisol is planning a harvest party.""#;
    const ASKED: &str = r#"Kenji Nakamura said: "Was it your birthday party?""#;

    /// A scripted stand-in for MiniLM (not a real model): fixed vectors, so that the question
    /// is nearest the question it was asked, then the small talk, then the news.
    struct ScriptedEmbedder;

    impl TextEmbedder for ScriptedEmbedder {
        fn name(&self) -> &str {
            "scripted"
        }
        fn embed(&self, texts: &[&str]) -> Result<Embeddings, LlmError> {
            let vector = |t: &str| -> Vec<f32> {
                let v = match t {
                    QUESTION | ASKED => [1.0, 0.0],
                    SMALL_TALK => [0.9, 0.44],
                    NEWS => [0.6, 0.8],
                    _ => [0.0, 1.0],
                };
                v.to_vec()
            };
            Ok(Embeddings {
                vectors: texts.iter().map(|t| vector(t)).collect(),
                usage: Usage::default(),
            })
        }
    }

    /// A scripted stand-in for the language model (not a real one): says nothing, so the
    /// memory drawn on is quoted.
    struct Silent;

    impl LanguageModel for Silent {
        fn name(&self) -> &str {
            "silent"
        }
        fn generate(&self, _: &GenerateRequest) -> Result<Generation, LlmError> {
            Ok(Generation {
                text: String::new(),
                usage: Usage::default(),
            })
        }
        fn score(&self, _: &ScoreRequest) -> Result<Scores, LlmError> {
            Err(LlmError::Model("not scripted".into()))
        }
    }

    fn chat(id: u32, description: &str, told: bool) -> Memory {
        Memory {
            id: MemoryId(id),
            kind: MemoryKind::Chat,
            created: GameTime::from_minutes(600 + u64::from(id)),
            last_accessed: GameTime::from_minutes(600),
            description: description.into(),
            triple: told.then(|| Triple {
                subject: "Marisol Alvarez".into(),
                predicate: TOLD.into(),
                object: "Iris Chen".into(),
            }),
            importance: Some(6),
            keywords: vec![],
            evidence: vec![],
        }
    }

    #[test]
    fn news_told_answers_before_small_talk_and_a_question_never_does() {
        let template = Template::parse("{memory}", &["agent", "memory", "question"], &[]).unwrap();
        let ask = |news_told: bool| {
            let agent = LoggedAgent {
                name: "Iris Chen".into(),
                memories: vec![
                    chat(0, NEWS, news_told),
                    chat(1, SMALL_TALK, false),
                    chat(2, ASKED, false),
                ],
            };
            let now = GameTime::from_minutes(700);
            interview(&agent, QUESTION, now, &ScriptedEmbedder, &Silent, &template).unwrap()
        };
        let answer = ask(true);
        assert_eq!(answer.drawn_from, Some(MemoryId(0)), "{answer:?}");
        assert_eq!(answer.answer, format!("I remember this: {NEWS}"));
        // The same line merely said is small talk like any other: the most relevant answers,
        // and the question asked, the most relevant of all, is passed over.
        assert_eq!(ask(false).drawn_from, Some(MemoryId(1)));
    }

    #[test]
    fn wording_that_adds_content_is_caught() {
        let memory = "Gabriel Reyes has decided to run for mayor of Maple Hollow.";
        let question = "Are you running for mayor?";
        let ok = "I am running for mayor of Maple Hollow.";
        assert!(unsupported_words(ok, &[memory, question]).is_empty());
        let added = "I am running for Mayor because I want a better future for my family.";
        assert_eq!(
            unsupported_words(added, &[memory, question]),
            ["better", "future", "family"]
        );
    }
}
