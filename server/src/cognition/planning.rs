//! Planning: each morning an agent plans its day, and about an hour ahead it breaks each hour
//! into steps of 5 to 15 minutes.
//!
//! - **The day.** Its frame is the persona's routine ([`crate::agents::routine`]): when it
//!   wakes, its meals, its work and its usual visits, which the model is not trusted to move
//!   (a 270M model's free-written plans loop and drift; DESIGN.md). In the first free stretch
//!   of an hour or more, the agent does what it most wants to: the model writes that intent in
//!   a few words from `assets/prompts/plan.txt`, given the persona, its day and the memories it
//!   retrieves about plans ("have a drink with Leila at the bar"), and the place is chosen from
//!   the agent's spatial memory by similarity ([`super::spatial`]), never parsed from the text.
//!   The plan becomes a thought ("Marisol plans for day 1: ...") and a `plan_made` event.
//! - **The hour.** About an hour before each hour of the plan (or at once, for the hour under
//!   way), the model lists up to 6 steps for it from `assets/prompts/decompose.txt`; each step
//!   lasts the hour divided among them (5 to 15 minutes) and happens at the object of the place
//!   most like it; what the steps leave of the hour is the plan's own activity. A
//!   `steps_planned` event lists them.
//! - **Reactions.** What an agent perceives or hears from someone else, once embedded, is
//!   scored for urgency ([`super::deciding::ReactionRater`]): something that calls for doing
//!   something now (a call for help, an invitation to come along) makes it re-plan the next
//!   hour for it, at most once in two game hours. News and feelings only become memories.
//! - **Fallback.** Until a day's plan is made, when a call fails, or when the agent's budget is
//!   spent ([`super::budget`], planning stops at 80%), the agent follows its routine: the
//!   routine brain is its brain until a plan arrives, and again once the plan's day is over.
//!
//! Each answer takes effect like any model answer (in `sim`, the next step), so runs stay
//! reproducible; every choice that is not the model's is a pure function of the run's seed.

use super::budget::{Need, TokenBudget};
use super::conversation::Conversations;
use super::deciding::ReactionRater;
use super::model_queue::{ModelQueue, ModelResult};
use super::perception::display_name;
use super::spatial::{PlaceIndex, SpatialMemory};
use super::{CognitionSystems, DialogueSetup};
use crate::actors::{Action, Activity, ActorCommand};
use crate::agents::routine::{self, Target};
use crate::agents::{Agent, AgentPersona, AgentSeed, BrainSystems, RoutineBrain, stable_hash};
use crate::happenings::Happened;
use crate::memory::{MemoryId, MemoryKind, MemoryStream, NewMemory, RetrievalWeights, Triple};
use crate::time::GameClock;
use crate::world::{ActorId, Destination, Place, Position, TownMap, WorldSeed};
use agora_llm::worker::{JobId, JobOutput, JobRequest, Priority, Purpose};
use agora_llm::{GenerateRequest, SamplingParams};
use agora_shared::events::{Event, PlanItem};
use agora_shared::{GameTime, TilePos};
use bevy::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How agents plan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanningSettings {
    /// Tokens for the day's intent, at most.
    pub intent_tokens: u32,
    /// Tokens for an hour's steps, at most.
    pub step_tokens: u32,
    /// Steps in an hour, at most.
    pub max_steps: usize,
    /// A free stretch this long (minutes) or longer gets the day's intent.
    pub min_free_minutes: i64,
    /// The intent lasts this long at most (minutes).
    pub intent_minutes: i64,
    /// Memories the day's plan draws on.
    pub memories: usize,
    /// An hour is broken into steps this long (minutes) before it starts.
    pub ahead_minutes: i64,
    /// A memory the agent perceived or heard whose urgency is above this (a cosine contrast,
    /// -2 to 2; [`super::deciding::ReactionRater`]) makes it re-plan. Not 0: ordinary lines
    /// that many agents hear ("Ngozi is filling forms") score just above it, and a re-plan is
    /// worse when wrong than a missed one.
    pub react_urgency: f32,
    /// ... if it is also at least this important (1-10): the floor that keeps the thousands of
    /// ordinary sights of a day ("Jordan is attending classes", importance 3-5) from reacting.
    pub react_importance: u8,
    /// A reaction takes up to this long (minutes), from now.
    pub react_minutes: i64,
    /// An agent re-plans for what it noticed at most once in this long (minutes).
    pub react_cooldown_minutes: i64,
}

impl Default for PlanningSettings {
    fn default() -> Self {
        Self {
            intent_tokens: 20,
            step_tokens: 64,
            max_steps: 6,
            min_free_minutes: 60,
            intent_minutes: 90,
            memories: 5,
            ahead_minutes: 60,
            react_urgency: 0.03,
            react_importance: 6,
            react_minutes: 60,
            react_cooldown_minutes: 120,
        }
    }
}

const MINUTES_PER_HOUR: i64 = 60;
const INTENT_EMOJI: &str = "\u{2728}";
/// An hour with less than this left (minutes) is not broken into steps.
const MIN_BLOCK_MINUTES: i64 = 20;

/// One step of an hour: 5 to 15 minutes at one spot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub start: i64,
    pub end: i64,
    pub description: String,
    pub tile: TilePos,
    pub location: String,
}

/// One stretch of the day's plan (minutes since day 1 00:00), where it happens, and the steps
/// its hours were broken into.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedSlot {
    pub start: i64,
    pub end: i64,
    pub description: String,
    pub emoji: String,
    pub place: Place,
    pub tile: TilePos,
    pub location: String,
    pub steps: Vec<Step>,
    sleep: bool,
}

/// An agent's plan for one agent-day (from waking to waking), which its brain follows.
#[derive(Component, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayPlan {
    /// The agent-day (0: the day that starts on day 1), as the routine counts them.
    pub day: i64,
    /// What the agent chose to do with its free time, if anything.
    pub intent: Option<String>,
    pub slots: Vec<PlannedSlot>,
    /// Starts of the hours already broken into steps (or asked for).
    decomposed: BTreeSet<i64>,
}

/// Plans a database kept, by agent id: an agent spawned with one of these ids follows it
/// instead of planning its day again.
#[derive(Resource, Debug, Default)]
pub struct RestoredPlans(pub BTreeMap<String, DayPlan>);

impl DayPlan {
    /// Whether every place and spot in the plan is on `map` (a saved plan may come from
    /// another map); hours asked for but never broken into steps are asked for again.
    pub fn fits(&mut self, map: &TownMap) -> bool {
        let place_fits = |p: Place| match p {
            Place::Sector(s) => s < map.sectors.len(),
            Place::Arena(a) => a < map.arenas.len(),
        };
        let fits = self.slots.iter().all(|s| {
            place_fits(s.place)
                && map.is_walkable(s.tile)
                && s.steps.iter().all(|step| map.is_walkable(step.tile))
        });
        let slots = &self.slots;
        self.decomposed.retain(|&start| {
            (slots.iter().flat_map(|s| &s.steps))
                .any(|s| s.start >= start && s.start < start + MINUTES_PER_HOUR)
        });
        fits
    }

    /// When the plan ends (minutes).
    pub fn end(&self) -> i64 {
        self.slots.last().map_or(i64::MIN, |s| s.end)
    }

    /// The slot under way at `minute`, and the step within it if there is one.
    pub fn at(&self, minute: i64) -> Option<(&PlannedSlot, Option<&Step>)> {
        let slot = self
            .slots
            .iter()
            .find(|s| s.start <= minute && minute < s.end)?;
        let step = slot
            .steps
            .iter()
            .find(|s| s.start <= minute && minute < s.end);
        Some((slot, step))
    }

    /// The next hour to break into steps, as of `minute`: (slot index, start, end).
    fn next_block(&self, minute: i64, ahead: i64) -> Option<(usize, i64, i64)> {
        for (i, slot) in self.slots.iter().enumerate() {
            if slot.sleep || slot.end <= minute {
                continue;
            }
            let mut start = slot.start;
            while start < slot.end && start <= minute + ahead {
                let end = (start + MINUTES_PER_HOUR).min(slot.end);
                if end - start.max(minute) >= MIN_BLOCK_MINUTES && !self.decomposed.contains(&start)
                {
                    return Some((i, start, end));
                }
                start = end;
            }
            if slot.start > minute + ahead {
                break;
            }
        }
        None
    }
}

/// A plan being made: for agent-day `day`, the slots of the day from now, whose stretch
/// `free` gets the intent; `because` is the memory a reaction re-plans for.
#[derive(Debug)]
struct Draft {
    day: i64,
    slots: Vec<PlannedSlot>,
    /// `None`: no free stretch, the plan is the routine's day.
    free: Option<usize>,
    because: Option<(MemoryId, String)>,
}

/// A planning call under way.
#[derive(Debug)]
enum Pending {
    /// The model writes the intent for the draft's free stretch.
    Intent(Draft),
    /// The intent is embedded, to choose its place.
    IntentPlace(Draft, String),
    /// The model lists the steps of the hour `start..end` of slot `slot`.
    Steps {
        day: i64,
        slot: usize,
        start: i64,
        end: i64,
    },
    /// The steps are embedded, to choose their objects.
    StepSpots {
        day: i64,
        slot: usize,
        start: i64,
        end: i64,
        steps: Vec<String>,
    },
}

/// An agent's planning: the call under way, and what it has reacted to.
#[derive(Component, Debug, Default)]
pub struct Planner {
    pending: Option<(JobId, Pending)>,
    /// Day plans made so far (reactions included).
    pub plans: u32,
    /// Memories before this id have been considered for a reaction.
    noticed: u32,
    /// When the agent last re-planned for something it noticed.
    reacted: Option<GameTime>,
}

pub fn plugin(app: &mut App) {
    app.init_resource::<RestoredPlans>().add_systems(
        Update,
        (
            plan.run_if(resource_exists::<DialogueSetup>)
                .run_if(resource_exists::<PlaceIndex>)
                .in_set(CognitionSystems::Plan),
            follow_plan
                .run_if(resource_exists::<DialogueSetup>)
                .in_set(BrainSystems)
                .after(routine::follow_routine),
        ),
    );
}

/// "06:05" for a minute count.
fn clock(minute: i64) -> String {
    let m = minute.rem_euclid(1440);
    format!("{:02}:{:02}", m / 60, m % 60)
}

fn at_minute(minute: i64) -> GameTime {
    GameTime::from_minutes(minute.max(0) as u64)
}

/// The routine's day as plan slots from `minute` on, each placed on the map.
fn routine_slots(
    map: &TownMap,
    persona: &agora_shared::persona::Persona,
    seed: u64,
    day: i64,
    minute: i64,
) -> Vec<PlannedSlot> {
    let home = map.resolve(&persona.home).ok();
    (routine::day_plan(persona, seed, day).into_iter())
        .filter(|s| s.end > minute)
        .filter_map(|slot| {
            let (tile, location) = routine::place_slot(map, persona, seed, day, &slot)?;
            let place = match &slot.target {
                Target::Place(name) => map.resolve(name).ok()?,
                _ => Place::Sector(map.sector_of_place(home?)),
            };
            Some(PlannedSlot {
                sleep: slot.is_sleep(),
                start: slot.start,
                end: slot.end,
                description: slot.description,
                emoji: slot.emoji,
                place,
                tile,
                location,
                steps: Vec::new(),
            })
        })
        .collect()
}

/// The first free stretch (an evening or a gap at home) of `min` minutes or more after
/// `minute`.
fn free_stretch(slots: &[PlannedSlot], minute: i64, min: i64) -> Option<usize> {
    slots
        .iter()
        .position(|s| s.description == routine::AT_HOME && s.end - s.start.max(minute) >= min)
}

/// The intent in a few words: the first clause of the first line, without a list's marker,
/// quotes or a trailing stop, at most 12 words. `None` if nothing is left, or if it does not
/// go on from "wants to:" (it starts with a capital: the model began a sentence of its own,
/// or copied an example's).
pub fn intent_text(generated: &str) -> Option<String> {
    let line = generated.lines().next().unwrap_or("").trim();
    let line = line.trim_start_matches(['-', '*', ' ']);
    // "A) ", "1. ", "2) ": a list's marker.
    let line = match line.split_once([')', '.']) {
        Some((marker, rest)) if marker.len() <= 2 && marker.chars().all(char::is_alphanumeric) => {
            rest
        }
        _ => line,
    };
    let clause = line.split(['.', ';', '!', '?', '(']).next().unwrap_or("");
    let words: Vec<&str> = clause
        .split_whitespace()
        .map(|w| w.trim_matches(['"', '\u{201c}', '\u{201d}', '*']))
        .filter(|w| !w.is_empty())
        .take(12)
        .collect();
    let text = words.join(" ");
    let goes_on = text.chars().next().is_some_and(char::is_lowercase);
    (goes_on && text.chars().filter(|c| c.is_alphabetic()).count() >= 3).then_some(text)
}

/// An hour's steps from the model's list: one per `- ` line (the first line continues the
/// prompt's dash), cleaned, repeats dropped, at most `max`.
pub fn step_texts(generated: &str, max: usize) -> Vec<String> {
    let mut steps: Vec<String> = Vec::new();
    for (i, line) in generated.lines().enumerate() {
        let line = line.trim();
        let Some(step) = (if i == 0 {
            Some(line)
        } else {
            line.strip_prefix('-')
        }) else {
            break;
        };
        if let Some(step) = intent_text(step.trim_start_matches(['-', ' ']))
            && !steps.contains(&step)
        {
            steps.push(step);
        }
        if steps.len() == max {
            break;
        }
    }
    steps
}

/// Minutes per step when `n` steps share `minutes`: a multiple of 5 from 5 to 15.
fn step_minutes(minutes: i64, n: usize) -> i64 {
    let each = minutes / n.max(1) as i64;
    (each - each % 5).clamp(5, 15)
}

/// A stretch of a plan as the log shows it.
fn item(start: i64, end: i64, activity: &str, location: &str) -> PlanItem {
    PlanItem {
        start: at_minute(start),
        end: at_minute(end),
        activity: activity.to_string(),
        location: location.to_string(),
    }
}

impl PlannedSlot {
    /// The stretch as the log and the inspector show it.
    pub fn item(&self) -> PlanItem {
        item(self.start, self.end, &self.description, &self.location)
    }
}

impl Step {
    /// The step as the log and the inspector show it.
    pub fn item(&self) -> PlanItem {
        item(self.start, self.end, &self.description, &self.location)
    }
}

/// "Marisol Alvarez plans for day 1: baking ... at Willow Cafe from 06:00; ...": the
/// outings and the intent, the parts of the day worth remembering.
fn plan_thought(name: &str, day: u32, slots: &[PlannedSlot], map: &TownMap, home: Place) -> String {
    let home = map.sector_of_place(home);
    let items: Vec<String> = (slots.iter())
        .filter(|s| !s.sleep && map.sector_of_place(s.place) != home)
        .map(|s| {
            let sector = &map.sectors[map.sector_of_place(s.place)].name;
            format!("{} at {sector} from {}", s.description, clock(s.start))
        })
        .collect();
    if items.is_empty() {
        format!("{name} plans to spend day {day} at home")
    } else {
        format!("{name} plans for day {day}: {}", items.join("; "))
    }
}

struct Context<'a> {
    map: &'a TownMap,
    index: &'a PlaceIndex,
    setup: &'a DialogueSetup,
    /// Absent until its prototypes are embedded: no reactions before that.
    reactions: Option<&'a ReactionRater>,
    now: GameTime,
    minute: i64,
    seed: u64,
}

/// The agent a planning step is for.
struct Who<'a> {
    entity: Entity,
    id: &'a ActorId,
    name: String,
    persona: &'a AgentPersona,
    stream: Mut<'a, MemoryStream>,
}

type PlanningAgent<'a> = (
    Entity,
    &'a ActorId,
    Option<&'a Name>,
    &'a AgentPersona,
    &'a AgentSeed,
    &'a SpatialMemory,
    Option<&'a Activity>,
    &'a mut MemoryStream,
    Option<&'a mut Planner>,
    Option<&'a mut DayPlan>,
);

/// Each agent's planning, one call at a time: an answer takes it a step further; otherwise it
/// plans a new day, re-plans for something important it noticed, or breaks the next hour
/// into steps.
fn plan(
    mut commands: Commands,
    clock: Res<GameClock>,
    seed: Res<WorldSeed>,
    map: Res<TownMap>,
    index: Res<PlaceIndex>,
    setup: Res<DialogueSetup>,
    reactions: Option<Res<ReactionRater>>,
    conversations: Res<Conversations>,
    mut budget: ResMut<TokenBudget>,
    mut queue: ModelQueue,
    mut results: MessageReader<ModelResult>,
    mut happened: MessageWriter<Happened>,
    mut restored: ResMut<RestoredPlans>,
    mut agents: Query<PlanningAgent, With<Agent>>,
) {
    let cx = Context {
        map: &map,
        index: &index,
        setup: &setup,
        reactions: reactions.as_deref(),
        now: clock.now,
        minute: clock.now.total_minutes() as i64,
        seed: seed.0,
    };
    let answers: BTreeMap<JobId, &ModelResult> = results.read().map(|r| (r.id, r)).collect();
    let mut order: Vec<_> = agents.iter_mut().collect();
    order.sort_by(|a, b| a.1.0.cmp(&b.1.0));
    for (entity, id, name, persona, agent_seed, known, activity, stream, planner, plan) in order {
        let Some(mut planner) = planner else {
            // What it remembers already (its seeds, or a restored stream) is not news.
            commands.entity(entity).insert(Planner {
                noticed: u32::try_from(stream.len()).unwrap_or(u32::MAX),
                ..Planner::default()
            });
            if let Some(plan) = restored.0.remove(&id.0) {
                (commands.entity(entity))
                    .remove::<RoutineBrain>()
                    .insert(plan);
            }
            continue;
        };
        let mut agent = Who {
            entity,
            id,
            name: display_name(id, name),
            persona,
            stream,
        };
        let mut plan = plan;
        // 1. An answer to the call under way takes planning a step further; the next call
        // waits for the next tick, when what this one changed (a new plan) is in place.
        if let Some((job, _)) = &planner.pending
            && let Some(answer) = answers.get(job)
        {
            let (_, pending) = planner.pending.take().expect("checked");
            match &answer.output {
                Ok(JobOutput::Generated(g)) => {
                    budget.spend(entity, cx.now, g.usage.tokens());
                }
                Ok(_) => {}
                Err(e) => warn!("{}: planning failed ({e}); the routine goes on", id.0),
            }
            let mut made = |draft: Draft, intent: Option<String>, planner: &mut Planner| {
                adopt(
                    &cx,
                    &mut commands,
                    &mut happened,
                    &mut agent,
                    planner,
                    draft,
                    intent,
                );
            };
            planner.pending = match (pending, &answer.output) {
                (Pending::Intent(draft), Ok(JobOutput::Generated(g))) => {
                    match intent_text(&g.text) {
                        Some(intent) => {
                            let request = JobRequest::Embed(vec![intent.clone()]);
                            submit(
                                &mut queue,
                                entity,
                                request,
                                Pending::IntentPlace(draft, intent),
                            )
                        }
                        None => {
                            made(draft, None, &mut planner);
                            None
                        }
                    }
                }
                (Pending::IntentPlace(mut draft, intent), Ok(JobOutput::Embedded(e))) => {
                    let placed = e.vectors.first().and_then(|vector| {
                        let place = Place::Sector(cx.index.choose_sector(cx.map, vector, known));
                        let (tile, location) = cx.index.choose_spot(cx.map, vector, place)?;
                        insert_intent(&cx, &mut draft, &intent, place, tile, location);
                        Some(intent)
                    });
                    made(draft, placed, &mut planner);
                    None
                }
                (Pending::Intent(draft) | Pending::IntentPlace(draft, _), _) => {
                    made(draft, None, &mut planner);
                    None
                }
                (
                    Pending::Steps {
                        day,
                        slot,
                        start,
                        end,
                    },
                    Ok(JobOutput::Generated(g)),
                ) if plan.as_deref().is_some_and(|p| p.day == day) => {
                    let steps = step_texts(&g.text, setup.planning.max_steps);
                    let pending = Pending::StepSpots {
                        day,
                        slot,
                        start,
                        end,
                        steps: steps.clone(),
                    };
                    (!steps.is_empty())
                        .then(|| submit(&mut queue, entity, JobRequest::Embed(steps), pending))
                        .flatten()
                }
                (
                    Pending::StepSpots {
                        day,
                        slot,
                        start,
                        end,
                        steps,
                    },
                    Ok(JobOutput::Embedded(e)),
                ) => {
                    if let Some(plan) = plan.as_deref_mut()
                        && plan.day == day
                        && e.vectors.len() == steps.len()
                        && let Some(slot) = plan.slots.get_mut(slot)
                    {
                        place_steps(&cx, slot, start, end, &steps, &e.vectors);
                        let steps = (slot.steps.iter())
                            .filter(|s| s.start >= start && s.end <= end)
                            .map(Step::item)
                            .collect();
                        happened.write(Happened(Event::StepsPlanned {
                            agent: id.0.clone(),
                            steps,
                        }));
                    }
                    None
                }
                _ => None,
            };
            continue;
        }
        if planner.pending.is_some() {
            continue;
        }
        // 2. The plan's day is over: the routine takes over until the next plan.
        let minute = cx.minute;
        let (slot, day) = routine::slot_at(&persona.persona, agent_seed.0, minute);
        if let Some(current) = plan.as_deref()
            && (current.day != day || minute >= current.end())
        {
            commands
                .entity(entity)
                .remove::<DayPlan>()
                .insert(RoutineBrain);
            plan = None;
        }
        let awake = activity.is_some_and(|a| !a.is_sleeping());
        let talking = conversations.is_talking(entity);
        let noticed = (!talking && awake)
            .then(|| notice(&cx, &agent.name, &mut agent.stream, &mut planner))
            .flatten();
        // Reacting comes before planning in the budget (see `budget`).
        if !budget.allows(entity, cx.now, Need::React) {
            continue;
        }
        let may_plan = budget.allows(entity, cx.now, Need::Plan);
        let settings = setup.planning;
        let draft = match plan.as_deref() {
            // 3. A new day (not while asleep at the end of the last one): plan it.
            None if !slot.is_sleep() && may_plan => {
                let slots = routine_slots(cx.map, &persona.persona, agent_seed.0, day, minute);
                Some(Draft {
                    day,
                    free: free_stretch(&slots, minute, settings.min_free_minutes),
                    slots,
                    because: None,
                })
            }
            None => None,
            // 4. Something important noticed: re-plan the next while for it.
            Some(current) if noticed.is_some() => {
                planner.reacted = Some(cx.now);
                let (slots, free) = interrupt(&current.slots, minute, settings.react_minutes);
                free.map(|free| Draft {
                    day: current.day,
                    slots,
                    free: Some(free),
                    because: noticed,
                })
            }
            Some(_) if !may_plan => None,
            // 5. The next hour, broken into steps.
            Some(_) => {
                let plan = plan.as_deref_mut().expect("matched");
                if let Some((slot, start, end)) = plan.next_block(minute, settings.ahead_minutes) {
                    plan.decomposed.insert(start);
                    let request = steps_request(&cx, &agent, &plan.slots[slot], start, end);
                    let pending = Pending::Steps {
                        day: plan.day,
                        slot,
                        start,
                        end,
                    };
                    planner.pending = submit(&mut queue, entity, request, pending);
                }
                None
            }
        };
        match draft {
            Some(draft) if draft.free.is_some() => {
                let request = intent_request(&cx, &mut agent, &draft, planner.plans);
                planner.pending = submit(&mut queue, entity, request, Pending::Intent(draft));
            }
            Some(draft) => adopt(
                &cx,
                &mut commands,
                &mut happened,
                &mut agent,
                &mut planner,
                draft,
                None,
            ),
            None => {}
        }
    }
}

/// The newest urgent memory the agent perceived or heard from someone else since it last
/// looked, if it is time to react again: the memory's id and description. Memories are
/// considered once they are embedded and rated, in order.
fn notice(
    cx: &Context,
    name: &str,
    stream: &mut MemoryStream,
    planner: &mut Planner,
) -> Option<(MemoryId, String)> {
    let settings = cx.setup.planning;
    let mut found = None;
    while let Some(memory) = stream.get(MemoryId(planner.noticed)) {
        let (Some(importance), Some(vector)) = (memory.importance, stream.embedding(memory.id))
        else {
            break;
        };
        planner.noticed += 1;
        let own = memory.triple.as_ref().is_some_and(|t| t.subject == name);
        let urgent = importance >= settings.react_importance
            && (cx.reactions).is_some_and(|r| r.urgency(vector) > settings.react_urgency);
        if memory.kind != MemoryKind::Thought && !own && urgent {
            found = Some((memory.id, memory.description.clone()));
        }
    }
    let cooled = planner.reacted.is_none_or(|t| {
        cx.now.0.saturating_sub(t.0) >= settings.react_cooldown_minutes as u64 * 60_000
    });
    found.filter(|_| cooled)
}

/// The plan's slots from now on, with the next `minutes` cut out as one stretch (keeping what
/// it was, until an intent replaces it): what a reaction re-plans. `None` for the stretch
/// when the agent's day has less than 10 minutes left.
fn interrupt(
    slots: &[PlannedSlot],
    minute: i64,
    minutes: i64,
) -> (Vec<PlannedSlot>, Option<usize>) {
    let start = minute;
    let mut out: Vec<PlannedSlot> = Vec::new();
    let Some(now) = slots
        .iter()
        .find(|s| s.start <= minute && minute < s.end)
        .cloned()
    else {
        return (slots.to_vec(), None);
    };
    let end = (start + minutes).min(
        slots
            .iter()
            .filter(|s| !s.sleep)
            .map(|s| s.end)
            .max()
            .unwrap_or(start),
    );
    if end - start < 10 {
        return (slots.to_vec(), None);
    }
    let mut free = None;
    for slot in slots.iter().filter(|s| s.end > minute) {
        if slot.end <= start || slot.start >= end {
            out.push(slot.clone());
            continue;
        }
        if slot.start < start {
            out.push(PlannedSlot {
                end: start,
                steps: Vec::new(),
                ..slot.clone()
            });
        }
        if free.is_none() {
            free = Some(out.len());
            out.push(PlannedSlot {
                start,
                end,
                steps: Vec::new(),
                ..now.clone()
            });
        }
        if slot.end > end {
            let steps = slot
                .steps
                .iter()
                .filter(|s| s.start >= end)
                .cloned()
                .collect();
            out.push(PlannedSlot {
                start: end,
                steps,
                ..slot.clone()
            });
        }
    }
    (out, free)
}

/// Queues a planning call; a refused one is a warning, and the routine goes on.
fn submit(
    queue: &mut ModelQueue,
    agent: Entity,
    request: JobRequest,
    pending: Pending,
) -> Option<(JobId, Pending)> {
    match queue.submit(Some(agent), Purpose::Plan, Priority::Normal, request) {
        Ok(job) => Some((job, pending)),
        Err(e) => {
            warn!("cannot plan ({e}); the routine goes on");
            None
        }
    }
}

/// The intent takes up to [`PlanningSettings::intent_minutes`] of the free stretch, from its
/// start (or from a few minutes from now, for the stretch under way; at once for a reaction).
fn insert_intent(
    cx: &Context,
    draft: &mut Draft,
    intent: &str,
    place: Place,
    tile: TilePos,
    location: String,
) {
    let Some(free) = draft.free else {
        return;
    };
    let stretch = draft.slots[free].clone();
    let lead = if draft.because.is_some() { 0 } else { 5 };
    let start = stretch.start.max(cx.minute + lead);
    let end = (start + cx.setup.planning.intent_minutes).min(stretch.end);
    if end <= start {
        return;
    }
    let mut replaced = Vec::new();
    if start > stretch.start {
        replaced.push(PlannedSlot {
            end: start,
            ..stretch.clone()
        });
    }
    replaced.push(PlannedSlot {
        start,
        end,
        description: intent.to_string(),
        emoji: INTENT_EMOJI.into(),
        place,
        tile,
        location,
        steps: Vec::new(),
        sleep: false,
    });
    if end < stretch.end {
        replaced.push(PlannedSlot {
            start: end,
            ..stretch
        });
    }
    draft.slots.splice(free..=free, replaced);
}

/// The prompt for an intent: the memories it draws on are those retrieved for the day's plans,
/// or, for a reaction, for what the agent noticed.
fn intent_request(cx: &Context, agent: &mut Who, draft: &Draft, plans: u32) -> JobRequest {
    let query = match &draft.because {
        Some((memory, _)) => agent.stream.embedding(*memory).map(<[f32]>::to_vec),
        None => None,
    };
    let query = query.as_deref().unwrap_or(&cx.index.plans_query);
    let stream = &mut agent.stream;
    let recalled = stream.retrieve(
        query,
        cx.now,
        cx.setup.planning.memories,
        &RetrievalWeights::default(),
    );
    stream.touch(recalled.iter().map(|r| r.id), cx.now);
    let memories: Vec<String> = (recalled.iter())
        .filter_map(|r| stream.get(r.id))
        .map(|m| m.description.clone())
        .collect();
    let home =
        (cx.map.resolve(&agent.persona.persona.home).ok()).map(|p| cx.map.sector_of_place(p));
    let outings: Vec<String> = (draft.slots.iter())
        .filter(|s| Some(cx.map.sector_of_place(s.place)) != home)
        .map(|s| {
            let sector = &cx.map.sectors[cx.map.sector_of_place(s.place)].name;
            format!(
                "{} at {sector} {}-{}",
                s.description,
                clock(s.start),
                clock(s.end)
            )
        })
        .collect();
    let stretch = &draft.slots[draft.free.unwrap_or(0)];
    let p = &agent.persona.persona;
    let day = if outings.is_empty() {
        "at home".to_string()
    } else {
        outings.join("; ")
    };
    let values = BTreeMap::from([
        ("agent", agent.name.clone()),
        ("age", p.age.to_string()),
        ("traits", p.traits.join(", ")),
        ("memories", memories.join("; ")),
        ("day", day),
        (
            "free",
            format!(
                "{}-{}",
                clock(stretch.start.max(cx.minute)),
                clock(stretch.end)
            ),
        ),
    ]);
    JobRequest::Generate(GenerateRequest {
        prompt: cx.setup.prompts.plan.render(&values),
        max_tokens: cx.setup.planning.intent_tokens,
        stop: vec!["\n".into()],
        sampling: SamplingParams {
            seed: stable_hash(&format!(
                "{}:{}:plan:{}:{plans}",
                cx.seed, agent.id.0, draft.day
            )),
            ..SamplingParams::default()
        },
    })
}

/// The prompt for an hour's steps.
fn steps_request(
    cx: &Context,
    agent: &Who,
    slot: &PlannedSlot,
    start: i64,
    end: i64,
) -> JobRequest {
    let sector = &cx.map.sectors[cx.map.sector_of_place(slot.place)].name;
    let values = BTreeMap::from([
        ("agent", agent.name.clone()),
        ("activity", slot.description.clone()),
        ("place", sector.clone()),
        ("start", clock(start)),
        ("end", clock(end)),
    ]);
    JobRequest::Generate(GenerateRequest {
        prompt: cx.setup.prompts.decompose.render(&values),
        max_tokens: cx.setup.planning.step_tokens,
        stop: vec!["\n\n".into()],
        sampling: SamplingParams {
            seed: stable_hash(&format!("{}:{}:steps:{start}", cx.seed, agent.id.0)),
            ..SamplingParams::default()
        },
    })
}

/// The steps of the hour `start..end` of `slot`, each at the object of the slot's place most
/// like it (the slot's own spot if the place has none).
fn place_steps(
    cx: &Context,
    slot: &mut PlannedSlot,
    start: i64,
    end: i64,
    steps: &[String],
    vectors: &[Vec<f32>],
) {
    let minutes = step_minutes(end - start, steps.len());
    slot.steps.retain(|s| s.end <= start || s.start >= end);
    let mut t = start;
    for (step, vector) in steps.iter().zip(vectors) {
        if t + minutes > end {
            break;
        }
        let (tile, location) = match cx.index.choose_object(cx.map, vector, slot.place) {
            Some(o) => (cx.map.objects[o].tile, cx.map.object_address(o)),
            None => (slot.tile, slot.location.clone()),
        };
        slot.steps.push(Step {
            start: t,
            end: t + minutes,
            description: step.clone(),
            tile,
            location,
        });
        t += minutes;
    }
    slot.steps.sort_by_key(|s| s.start);
}

/// A plan is made: the agent remembers it, the log says so, and the agent follows it.
fn adopt(
    cx: &Context,
    commands: &mut Commands,
    happened: &mut MessageWriter<Happened>,
    agent: &mut Who,
    planner: &mut Planner,
    draft: Draft,
    intent: Option<String>,
) {
    let home = cx
        .map
        .resolve(&agent.persona.persona.home)
        .ok()
        .map_or(Place::Sector(0), |p| p);
    let game_day = u32::try_from(draft.day + 1).unwrap_or(0);
    agent.stream.write(
        NewMemory {
            kind: MemoryKind::Thought,
            description: plan_thought(&agent.name, game_day, &draft.slots, cx.map, home),
            triple: Some(Triple {
                subject: agent.name.clone(),
                predicate: "plans".into(),
                object: intent.clone().unwrap_or_else(|| format!("day {game_day}")),
            }),
            evidence: draft.because.iter().map(|(m, _)| *m).collect(),
        },
        cx.now,
    );
    happened.write(Happened(Event::PlanMade {
        agent: agent.id.0.clone(),
        day: game_day,
        intent: intent.clone(),
        because: draft.because.map(|(_, d)| d),
        items: draft.slots.iter().map(PlannedSlot::item).collect(),
    }));
    planner.plans += 1;
    (commands.entity(agent.entity))
        .remove::<RoutineBrain>()
        .insert(DayPlan {
            day: draft.day,
            intent,
            slots: draft.slots,
            decomposed: BTreeSet::new(),
        });
}

/// Agents with a plan do what it says now: the step under way, else the slot; they decide
/// again when it ends, at the next hour, or when the plan changes.
fn follow_plan(
    mut orders: MessageWriter<ActorCommand>,
    clock: Res<GameClock>,
    mut agents: Query<
        (
            Entity,
            Ref<DayPlan>,
            &Position,
            &mut Activity,
            Option<&Destination>,
        ),
        Without<RoutineBrain>,
    >,
) {
    let minute = clock.now.total_minutes() as i64;
    for (entity, plan, position, mut activity, destination) in &mut agents {
        // A conversation holds the agent until it ends (its activity lasts until then).
        if clock.now < activity.until
            && (!plan.is_changed() || activity.until == GameTime(u64::MAX))
        {
            continue;
        }
        let Some((slot, step)) = plan.at(minute) else {
            continue;
        };
        let next_hour =
            slot.start + ((minute - slot.start) / MINUTES_PER_HOUR + 1) * MINUTES_PER_HOUR;
        let (description, tile, location, until) = match step {
            Some(s) => (&s.description, s.tile, &s.location, s.end),
            None => {
                let next_step = (slot.steps.iter())
                    .map(|s| s.start)
                    .find(|&s| s > minute)
                    .unwrap_or(i64::MAX);
                (
                    &slot.description,
                    slot.tile,
                    &slot.location,
                    next_step.min(next_hour),
                )
            }
        };
        let until = at_minute(until.min(slot.end).max(minute + 1));
        if activity.description == *description && activity.location == *location {
            activity.bypass_change_detection().until = until;
        } else {
            *activity = Activity::doing(
                description.clone(),
                slot.emoji.clone(),
                location.clone(),
                until,
            );
        }
        if destination.is_none_or(|d| d.tile != tile) && position.0 != tile {
            orders.write(ActorCommand {
                actor: entity,
                action: Action::MoveTo {
                    tile,
                    place: Some(location.clone()),
                },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_and_steps_are_cleaned_from_what_the_model_wrote() {
        assert_eq!(
            intent_text(" have a drink with Leila at the bar. Then home.\nMore").as_deref(),
            Some("have a drink with Leila at the bar")
        );
        assert_eq!(
            intent_text(" \"go swimming\" (maybe)").as_deref(),
            Some("go swimming")
        );
        assert_eq!(intent_text(" ..."), None);
        assert_eq!(
            intent_text(" - spend time in the garden").as_deref(),
            Some("spend time in the garden")
        );
        assert_eq!(
            intent_text(" A) play a guitar").as_deref(),
            Some("play a guitar")
        );
        assert_eq!(
            intent_text(" When asked, he said"),
            None,
            "not a continuation"
        );
        let steps = step_texts(
            " preparing coffee\n- ordering food\n-preparing coffee\n- waiting for orders.\nRosa Diaz is",
            6,
        );
        assert_eq!(
            steps,
            ["preparing coffee", "ordering food", "waiting for orders"]
        );
        assert!(
            step_texts(" a\n- b\n- c\n- d", 2).is_empty(),
            "one-letter steps are dropped"
        );
        let many: String = (0..10).map(|i| format!("- step number {i}\n")).collect();
        assert_eq!(step_texts(&format!(" first step\n{many}"), 6).len(), 6);
    }

    fn slot(start: i64, end: i64, what: &str) -> PlannedSlot {
        PlannedSlot {
            start,
            end,
            description: what.into(),
            emoji: String::new(),
            place: Place::Sector(0),
            tile: TilePos::new(0, 0),
            location: String::new(),
            steps: Vec::new(),
            sleep: what == "sleeping",
        }
    }

    #[test]
    fn a_reaction_cuts_the_next_while_out_of_the_plan_and_keeps_the_rest() {
        let mut work = slot(60, 180, "working");
        work.steps = vec![Step {
            start: 120,
            end: 130,
            description: "filing".into(),
            tile: TilePos::new(0, 0),
            location: String::new(),
        }];
        let slots = vec![slot(0, 60, "reading"), work, slot(180, 300, "sleeping")];
        let (cut, free) = interrupt(&slots, 30, 60);
        let shape: Vec<(i64, i64, &str)> = (cut.iter())
            .map(|s| (s.start, s.end, s.description.as_str()))
            .collect();
        assert_eq!(
            shape,
            [
                (0, 30, "reading"),
                (30, 90, "reading"),
                (90, 180, "working"),
                (180, 300, "sleeping")
            ]
        );
        assert_eq!(free, Some(1));
        assert_eq!(cut[2].steps.len(), 1, "steps after the reaction stay");
        // Near the end of the day there is no room to react.
        assert_eq!(interrupt(&slots, 175, 60).1, None);
    }

    #[test]
    fn steps_last_five_to_fifteen_minutes() {
        assert_eq!(step_minutes(60, 6), 10);
        assert_eq!(step_minutes(60, 1), 15);
        assert_eq!(step_minutes(60, 4), 15);
        assert_eq!(step_minutes(60, 5), 10);
        assert_eq!(step_minutes(25, 6), 5);
        assert_eq!(step_minutes(60, 0), 15);
    }
}
