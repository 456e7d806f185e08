//! Decisions with two outcomes, scored, not the model's free text: whether two agents who meet
//! start talking, and whether what an agent noticed makes it change its plan.
//!
//! Each agent's activity is embedded (MiniLM) and compared with short descriptions of moments
//! when people are free to chat and of moments when they are not (asleep, teaching, in a
//! hurry): its *openness* is the best similarity to the first minus the best to the second.
//! Two agents talk when both are open, and people who know each other (a relationship in
//! either persona) need less. On a hand-labelled set of meetings this beat the 270M model's
//! own yes/no and the old 1-in-4 rule (`server/tests/cognition_labelled.rs`).
//!
//! Activities are embedded through the model queue as they appear (once per distinct text),
//! so in `sim` a meeting is decided at the step after both activities are known.
//!
//! Reacting is scored the same way on the memory's own embedding: its *urgency* is the best
//! similarity to moments that call for doing something now (someone needs help, an invitation
//! to come along) minus the best to moments that are only worth knowing (news of the past,
//! feelings, plans for another day). Importance alone made agents re-plan for every poignant
//! line they heard (46 of 71 plans in a 25-agent morning); it stays only as a floor
//! ([`super::planning`]), against the day's thousands of ordinary sights.

use super::CognitionSystems;
use super::model_queue::{ModelQueue, ModelResult};
use crate::actors::Activity;
use crate::agents::Agent;
use crate::memory::best_similarity as best;
use agora_llm::worker::{JobId, JobOutput, JobRequest, Priority, Purpose};
use bevy::prelude::*;
use std::collections::{BTreeSet, HashMap};

/// Moments when people are glad to chat.
pub const OPEN: &[&str] = &[
    "relaxing at home",
    "taking a walk in the park",
    "having a coffee at the cafe",
    "having a drink at the bar",
    "chatting with customers at the counter",
    "waiting around with nothing to do",
    "eating lunch",
    "browsing the shelves at the market",
];

/// Moments when they are not.
pub const CLOSED: &[&str] = &[
    "sleeping",
    "teaching a class",
    "concentrating hard on difficult work",
    "in a hurry to get somewhere",
    "in an important meeting",
    "grading a stack of essays",
    "waking up",
];

/// What calls for changing one's plans at once.
pub const URGENT: &[&str] = &[
    "someone needs my help right now",
    "an emergency: a fire, an accident, someone hurt",
    "someone asks me to come with them now",
    "someone invites me to join them now",
    "I must hurry somewhere before it is too late",
];

/// What is worth knowing but asks for nothing now.
pub const CALM: &[&str] = &[
    "news about something that already happened",
    "someone's feelings or opinions",
    "a story about the past",
    "plans for another day",
    "gossip about someone else",
    "small talk or a question",
    "someone busy with their usual work",
    "someone going about their day",
    "someone enjoying a walk, a view or a hobby",
    "someone getting ready or running an errand",
    "good news about someone's success",
];

/// How much less open two people who know each other need to be.
pub const ACQUAINTED_BONUS: f32 = 0.05;

/// Scores how open an activity is to a chat.
#[derive(Resource, Debug, Clone)]
pub struct TalkRater {
    open: Vec<Vec<f32>>,
    closed: Vec<Vec<f32>>,
}

impl TalkRater {
    /// From the embeddings of [`OPEN`] and [`CLOSED`], in that order.
    pub fn from_vectors(open: Vec<Vec<f32>>, closed: Vec<Vec<f32>>) -> Self {
        Self { open, closed }
    }

    /// Openness of an activity (a unit embedding): above 0 leans open.
    pub fn openness(&self, activity: &[f32]) -> f32 {
        best(&self.open, activity) - best(&self.closed, activity)
    }

    /// Whether two agents doing `a` and `b` start talking.
    pub fn talk(&self, a: &[f32], b: &[f32], acquainted: bool) -> bool {
        let bonus = if acquainted { ACQUAINTED_BONUS } else { 0.0 };
        self.openness(a).min(self.openness(b)) + bonus > 0.0
    }
}

/// Scores whether a memory calls for re-planning now.
#[derive(Resource, Debug, Clone)]
pub struct ReactionRater {
    urgent: Vec<Vec<f32>>,
    calm: Vec<Vec<f32>>,
}

impl ReactionRater {
    /// From the embeddings of [`URGENT`] and [`CALM`], in that order.
    pub fn from_vectors(urgent: Vec<Vec<f32>>, calm: Vec<Vec<f32>>) -> Self {
        Self { urgent, calm }
    }

    /// Urgency of a memory (a unit embedding): above 0 leans urgent. An agent reacts above
    /// `PlanningSettings::react_urgency` (0.03), if the memory is also important enough.
    pub fn urgency(&self, memory: &[f32]) -> f32 {
        best(&self.urgent, memory) - best(&self.calm, memory)
    }
}

/// Embeddings of the activities agents are doing, by text.
#[derive(Resource, Debug, Default)]
pub struct ActivityVectors {
    vectors: HashMap<String, Vec<f32>>,
    pending: Option<(JobId, Vec<String>)>,
    /// The raters' prototypes, asked for with the first call.
    rater_pending: bool,
}

impl ActivityVectors {
    pub fn get(&self, activity: &str) -> Option<&[f32]> {
        self.vectors.get(activity).map(Vec::as_slice)
    }
}

pub fn plugin(app: &mut App) {
    app.init_resource::<ActivityVectors>().add_systems(
        Update,
        (
            apply_vectors.in_set(CognitionSystems::Remember),
            request_vectors
                .in_set(CognitionSystems::Embed)
                .after(super::remembering::request_embeddings),
        )
            .run_if(resource_exists::<super::DialogueSetup>),
    );
}

fn apply_vectors(
    mut commands: Commands,
    mut cache: ResMut<ActivityVectors>,
    mut results: MessageReader<ModelResult>,
) {
    for result in results.read() {
        if (cache.pending.as_ref()).is_none_or(|(job, _)| *job != result.id) {
            continue;
        }
        let Some((_, texts)) = cache.pending.take() else {
            continue;
        };
        let Ok(JobOutput::Embedded(e)) = &result.output else {
            warn!("embedding activities failed; retrying");
            cache.rater_pending = false;
            continue;
        };
        let mut vectors = e.vectors.clone();
        if cache.rater_pending {
            cache.rater_pending = false;
            if vectors.len() < PROTOTYPES.iter().map(|p| p.len()).sum() {
                continue;
            }
            let mut take = |n: usize| vectors.drain(..n).collect::<Vec<_>>();
            let (open, closed) = (take(OPEN.len()), take(CLOSED.len()));
            let (urgent, calm) = (take(URGENT.len()), take(CALM.len()));
            commands.insert_resource(TalkRater::from_vectors(open, closed));
            commands.insert_resource(ReactionRater::from_vectors(urgent, calm));
        }
        for (text, vector) in texts.into_iter().zip(vectors) {
            cache.vectors.insert(text, vector);
        }
    }
}

/// The raters' prototypes, in the order the first call embeds them.
const PROTOTYPES: [&[&str]; 4] = [OPEN, CLOSED, URGENT, CALM];

/// Asks for the embeddings of activities not seen before, one call at a time, in a stable
/// order; the first call also embeds the raters' prototypes.
fn request_vectors(
    mut queue: ModelQueue,
    mut cache: ResMut<ActivityVectors>,
    rater: Option<Res<TalkRater>>,
    agents: Query<&Activity, With<Agent>>,
) {
    if cache.pending.is_some() {
        return;
    }
    // Every tick in `serve`: only texts not seen before are copied.
    let new: BTreeSet<String> = (agents.iter())
        .map(|a| &a.description)
        .filter(|d| !d.is_empty() && !cache.vectors.contains_key(*d))
        .cloned()
        .collect();
    let with_rater = rater.is_none();
    if new.is_empty() && !with_rater {
        return;
    }
    let texts: Vec<String> = new.into_iter().collect();
    let mut request: Vec<String> = Vec::new();
    if with_rater {
        request.extend(PROTOTYPES.concat().into_iter().map(str::to_string));
    }
    request.extend(texts.iter().cloned());
    match queue.submit(
        None,
        Purpose::Decide,
        Priority::Normal,
        JobRequest::Embed(request),
    ) {
        Ok(job) => {
            cache.pending = Some((job, texts));
            cache.rater_pending = with_rater;
        }
        Err(e) => warn!("cannot embed activities ({e}); retrying"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urgency_leans_to_the_urgent_prototypes() {
        // Scripted vectors (not a model): urgent along x, calm along y.
        let rater = ReactionRater::from_vectors(vec![vec![1.0, 0.0]], vec![vec![0.0, 1.0]]);
        assert!(rater.urgency(&[0.8, 0.6]) > 0.0);
        assert!(rater.urgency(&[0.6, 0.8]) < 0.0);
    }

    #[test]
    fn both_must_be_open_and_acquaintances_need_less() {
        // Scripted vectors (not a model): open along x, closed along y.
        let rater = TalkRater::from_vectors(vec![vec![1.0, 0.0]], vec![vec![0.0, 1.0]]);
        let open = [0.8, 0.6];
        let closed = [0.0, 1.0];
        let borderline = [0.69, 0.7238];
        assert!(rater.openness(&open) > 0.0 && rater.openness(&closed) < 0.0);
        assert!(rater.talk(&open, &open, false));
        assert!(!rater.talk(&open, &closed, true));
        assert!(!rater.talk(&open, &borderline, false));
        assert!(rater.talk(&open, &borderline, true));
    }
}
