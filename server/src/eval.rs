//! Evaluations: the paper's own checks, run end to end.
//!
//! **Information diffusion** (`agora-server eval diffusion`): the shipped personas carry two
//! pieces of news in their seed memories, Marisol's harvest party and Gabriel's candidacy for
//! mayor. A day of the town runs with `--brain llm`; then every agent is interviewed about each
//! item (`cognition::interview`) and each answer is judged by a fixed rule:
//! - **informed**: the memory the answer draws on carries the news, and so does the answer;
//! - **hallucinated**: the answer carries the news, but the memory it draws on does not (or it
//!   draws on none).
//!
//! A text *carries* an item when what it says holds every one of the item's `all` words and at
//! least one of its `any` words (case-insensitive): the party is "party" with "harvest",
//! "marisol" or "willow"; the candidacy is "gabriel" with "mayor", "election", "campaign" or
//! "candida". What a text says is its words, less who said them: of a chat memory
//! (`Gabriel Reyes said: "..."`) or an answer quoting one, only the quoted words count, so
//! Gabriel talking about the mayor's office is not news of his candidacy.
//! The paper's figures: informed 4% at the start, 32% (party) and 52% (candidacy) after two
//! game days; hallucinated 1.3%.

use crate::agents::BrainKind;
use crate::cognition::Prompts;
use crate::cognition::interview::{self, LoggedAgent};
use crate::sim::{self, SimConfig};
use agora_llm::backends::embedded::{EmbeddedModel, EmbeddedOptions};
use agora_llm::backends::minilm::{self, Embedder};
use agora_llm::locate;
use serde::Serialize;

/// One piece of news and how to tell a text that carries it.
#[derive(Clone, Copy, Debug)]
pub struct NewsItem {
    pub name: &'static str,
    pub question: &'static str,
    pub all: &'static [&'static str],
    pub any: &'static [&'static str],
}

/// The news the shipped personas carry.
pub const NEWS: &[NewsItem] = &[
    NewsItem {
        name: "party",
        question: "Is there a party coming up?",
        all: &["party"],
        any: &["harvest", "marisol", "willow"],
    },
    NewsItem {
        name: "candidacy",
        question: "Is anyone running for mayor?",
        all: &["gabriel"],
        any: &["mayor", "election", "campaign", "candida"],
    },
];

impl NewsItem {
    /// Whether `text` carries this news (the rule in the module's docs).
    pub fn carried_by(&self, text: &str) -> bool {
        let text = what_it_says(text).to_lowercase();
        self.all.iter().all(|w| text.contains(w)) && self.any.iter().any(|w| text.contains(w))
    }
}

/// The words of `text` without who said them: after the first `said: "` (a chat memory, or an
/// answer quoting one), up to its closing quote.
pub fn what_it_says(text: &str) -> &str {
    match text.split_once(" said: \"") {
        Some((_, quoted)) => quoted.rsplit_once('"').map_or(quoted, |(words, _)| words),
        None => text,
    }
}

/// One interview, judged.
#[derive(Clone, Debug, Serialize)]
pub struct Judged {
    pub agent: String,
    pub item: &'static str,
    pub answer: String,
    pub drawn_from: Option<u32>,
    /// Knew it at the start (a seed memory carries it).
    pub seeded: bool,
    pub informed: bool,
    pub hallucinated: bool,
}

/// What `eval diffusion` found; also written to `OUT/diffusion.json`.
#[derive(Clone, Debug, Serialize)]
pub struct DiffusionReport {
    pub agents: usize,
    pub hours: f64,
    pub seed: u64,
    /// Per item: agents informed at the start (seeded) and at the end.
    pub items: Vec<(&'static str, usize, usize)>,
    pub informed: usize,
    pub hallucinated: usize,
    pub interviews: usize,
    pub answers: Vec<Judged>,
}

/// Runs the day (`config`, with the brain forced to `llm`), then interviews and judges.
/// `rejudge`: no new day; the run already in `config.out` is interviewed and judged again
/// (after a change to the interview, its template or the rule).
pub fn diffusion(config: &SimConfig, rejudge: bool) -> Result<DiffusionReport, String> {
    let config = SimConfig {
        brain: BrainKind::Llm,
        ..config.clone()
    };
    let log = config.out.join("events.jsonl");
    if !rejudge {
        sim::run(&config).map_err(|e| e.to_string())?;
    } else if !log.is_file() {
        return Err(format!(
            "--rejudge: {} holds no run (no events.jsonl); run eval diffusion without it first",
            config.out.display()
        ));
    }
    let (agents, end) = interview::agents_from_log(&log)?;
    let prompts = Prompts::load(&config.prompts).map_err(|e| e.to_string())?;
    let embedder = Embedder::load(&minilm::default_folder()).map_err(|e| e.to_string())?;
    let path = locate::language_model(config.model.as_deref()).map_err(|e| e.to_string())?;
    let model = EmbeddedOptions::from_env()
        .and_then(|options| EmbeddedModel::load(&path, options))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // Each interview embeds the agent's whole stream: a minute or more for 25 agents.
    if config.progress {
        eprintln!(
            "diffusion: interviewing {} agents about {} items",
            agents.len(),
            NEWS.len()
        );
    }
    let mut answers = Vec::new();
    for (done, (id, agent)) in agents.iter().enumerate() {
        for item in NEWS {
            answers.push(judge(id, agent, item, end, &embedder, &model, &prompts)?);
        }
        if config.progress && (done + 1) % 5 == 0 {
            eprintln!("diffusion: interviewed {}/{}", done + 1, agents.len());
        }
    }
    let count = |f: &dyn Fn(&Judged) -> bool| answers.iter().filter(|j| f(j)).count();
    let items = NEWS
        .iter()
        .map(|item| {
            let of = |j: &&Judged| j.item == item.name;
            let seeded = answers.iter().filter(of).filter(|j| j.seeded).count();
            let informed = answers.iter().filter(of).filter(|j| j.informed).count();
            (item.name, seeded, informed)
        })
        .collect();
    let report = DiffusionReport {
        agents: agents.len(),
        hours: config.hours,
        seed: config.seed,
        items,
        informed: count(&|j| j.informed),
        hallucinated: count(&|j| j.hallucinated),
        interviews: answers.len(),
        answers,
    };
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    let out = config.out.join("diffusion.json");
    std::fs::write(&out, json + "\n").map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(report)
}

fn judge(
    id: &str,
    agent: &LoggedAgent,
    item: &NewsItem,
    end: agora_shared::GameTime,
    embedder: &Embedder,
    model: &EmbeddedModel,
    prompts: &Prompts,
) -> Result<Judged, String> {
    let answer = interview::interview(
        agent,
        item.question,
        end,
        embedder,
        model,
        &prompts.interview,
    )
    .map_err(|e| format!("interviewing {id}: {e}"))?;
    let drawn = answer
        .drawn_from
        .and_then(|d| agent.memories.iter().find(|m| m.id == d));
    let memory_carries = drawn.is_some_and(|m| item.carried_by(&m.description));
    let answer_carries = item.carried_by(&answer.answer);
    // Seeds are the persona's thoughts written at the start, before anything was perceived.
    let first = agent.memories.first().map(|m| m.created);
    let seeded = (agent.memories.iter())
        .take_while(|m| Some(m.created) == first && m.kind == crate::memory::MemoryKind::Thought)
        .any(|m| item.carried_by(&m.description));
    Ok(Judged {
        agent: id.to_string(),
        item: item.name,
        answer: answer.answer,
        drawn_from: answer.drawn_from.map(|d| d.0),
        seeded,
        informed: memory_carries && answer_carries,
        hallucinated: answer_carries && !memory_carries,
    })
}

/// The report's last line, as the issue defines it.
pub fn summary_line(report: &DiffusionReport) -> String {
    format!(
        "diffusion: informed={}/{} hallucinated={}/{}",
        report.informed, report.interviews, report.hallucinated, report.interviews
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_tells_texts_that_carry_the_news() {
        let [party, candidacy] = [NEWS[0], NEWS[1]];
        assert!(party.carried_by("Marisol is planning a harvest party at Willow Cafe."));
        assert!(party.carried_by("I heard about the Harvest Party."));
        assert!(
            !party.carried_by("Is there a party coming up?"),
            "the question alone"
        );
        assert!(!party.carried_by("Marisol is running the cafe."));
        assert!(candidacy.carried_by("Gabriel Reyes has decided to run for mayor."));
        assert!(!candidacy.carried_by("Maeve is the mayor."));
        assert!(!candidacy.carried_by("Gabriel is sanding a table."));
        // Who said it is not what was said.
        let chat =
            r#"Gabriel Reyes said: "Ngozi has filed a repair request with the mayor's office.""#;
        assert!(!candidacy.carried_by(chat));
        assert!(!candidacy.carried_by(&format!("I remember this: {chat}")));
        assert!(!party.carried_by(r#"Marisol Alvarez said: "Your holiday party would be fun.""#));
        assert!(
            candidacy
                .carried_by(r#"Iris Chen said: "Gabriel Reyes has decided to run for mayor.""#)
        );
        assert_eq!(
            what_it_says(r#"Ann said: "a "quoted" word""#),
            r#"a "quoted" word"#
        );
    }
}
