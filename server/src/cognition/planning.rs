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
//! - **Fallback.** Until a day's plan is made, when a call fails, or when the agent's budget is
//!   spent ([`super::budget`], planning stops at 80%), the agent follows its routine: the
//!   routine brain is its brain until a plan arrives, and again once the plan's day is over.
//!
//! Each answer takes effect like any model answer (in `sim`, the next step), so runs stay
//! reproducible; every choice that is not the model's is a pure function of the run's seed.

use super::budget::{Need, TokenBudget};
use super::model_queue::{ModelQueue, ModelResult};
use super::perception::display_name;
use super::spatial::{PlaceIndex, SpatialMemory};
use super::{CognitionSystems, DialogueSetup};
use crate::actors::{Action, Activity, ActorCommand};
use crate::agents::routine::{self, Target};
use crate::agents::{Agent, AgentPersona, AgentSeed, BrainSystems, RoutineBrain, stable_hash};
use crate::happenings::Happened;
use crate::memory::{MemoryKind, MemoryStream, NewMemory, RetrievalWeights};
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// A planning call under way.
#[derive(Debug)]
enum Pending {
    /// The model writes the day's intent for the free stretch `free` of `base`.
    Intent {
        day: i64,
        base: Vec<PlannedSlot>,
        free: usize,
    },
    /// The intent is embedded, to choose its place.
    IntentPlace {
        day: i64,
        base: Vec<PlannedSlot>,
        free: usize,
        intent: String,
    },
    /// The model lists an hour's steps.
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

/// An agent's planning: the call under way.
#[derive(Component, Debug, Default)]
pub struct Planner {
    pending: Option<(JobId, Pending)>,
    /// Day plans made so far.
    pub plans: u32,
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

/// The plan's lines for the log and the agent's own memory.
fn plan_items(slots: &[PlannedSlot]) -> Vec<PlanItem> {
    slots
        .iter()
        .map(|s| PlanItem {
            start: at_minute(s.start),
            end: at_minute(s.end),
            activity: s.description.clone(),
            location: s.location.clone(),
        })
        .collect()
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
    now: GameTime,
    seed: u64,
}

type PlanningAgent<'a> = (
    Entity,
    &'a ActorId,
    Option<&'a Name>,
    &'a AgentPersona,
    &'a AgentSeed,
    &'a SpatialMemory,
    &'a mut MemoryStream,
    Option<&'a mut Planner>,
    Option<&'a mut DayPlan>,
);

/// Each agent's planning, one call at a time: answers first, then the next call it needs.
fn plan(
    mut commands: Commands,
    clock: Res<GameClock>,
    seed: Res<WorldSeed>,
    map: Res<TownMap>,
    index: Res<PlaceIndex>,
    setup: Res<DialogueSetup>,
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
        now: clock.now,
        seed: seed.0,
    };
    let answers: BTreeMap<JobId, &ModelResult> = results.read().map(|r| (r.id, r)).collect();
    let minute = clock.now.total_minutes() as i64;
    let mut order: Vec<_> = agents.iter_mut().collect();
    order.sort_by(|a, b| a.1.0.cmp(&b.1.0));
    for (entity, id, name, persona, agent_seed, known, mut stream, planner, plan) in order {
        let Some(mut planner) = planner else {
            commands.entity(entity).insert(Planner::default());
            if let Some(plan) = restored.0.remove(&id.0) {
                commands
                    .entity(entity)
                    .remove::<RoutineBrain>()
                    .insert(plan);
            }
            continue;
        };
        let name = display_name(id, name);
        let mut plan = plan;
        // 1. An answer to the call under way.
        if let Some((job, _)) = &planner.pending
            && let Some(answer) = answers.get(job)
        {
            let (_, pending) = planner.pending.take().expect("checked");
            if let Ok(JobOutput::Generated(g)) = &answer.output {
                budget.spend(
                    entity,
                    cx.now,
                    g.usage.prompt_tokens + g.usage.completion_tokens,
                );
            }
            if let Err(e) = &answer.output {
                warn!("{}: planning failed ({e}); the routine goes on", id.0);
            }
            let next = match pending {
                Pending::Intent { day, base, free } => match &answer.output {
                    Ok(JobOutput::Generated(g)) => match intent_text(&g.text) {
                        Some(intent) => submit(
                            &mut queue,
                            entity,
                            JobRequest::Embed(vec![intent.clone()]),
                            Pending::IntentPlace {
                                day,
                                base,
                                free,
                                intent,
                            },
                        ),
                        None => {
                            finish_day(
                                &cx,
                                &mut commands,
                                &mut happened,
                                entity,
                                id,
                                &name,
                                persona,
                                &mut stream,
                                &mut planner,
                                day,
                                base,
                                None,
                            );
                            None
                        }
                    },
                    _ => {
                        finish_day(
                            &cx,
                            &mut commands,
                            &mut happened,
                            entity,
                            id,
                            &name,
                            persona,
                            &mut stream,
                            &mut planner,
                            day,
                            base,
                            None,
                        );
                        None
                    }
                },
                Pending::IntentPlace {
                    day,
                    mut base,
                    free,
                    intent,
                } => {
                    let chosen = match &answer.output {
                        Ok(JobOutput::Embedded(e)) => e.vectors.first().and_then(|vector| {
                            let sector = cx.index.choose_sector(cx.map, vector, known);
                            let place = Place::Sector(sector);
                            let (tile, location) = cx.index.choose_spot(cx.map, vector, place)?;
                            Some((place, tile, location))
                        }),
                        _ => None,
                    };
                    let intent = chosen.map(|(place, tile, location)| {
                        insert_intent(
                            &mut base, free, minute, &intent, place, tile, location, &setup,
                        );
                        intent
                    });
                    finish_day(
                        &cx,
                        &mut commands,
                        &mut happened,
                        entity,
                        id,
                        &name,
                        persona,
                        &mut stream,
                        &mut planner,
                        day,
                        base,
                        intent,
                    );
                    None
                }
                Pending::Steps {
                    day,
                    slot,
                    start,
                    end,
                } => match (&answer.output, plan.as_deref()) {
                    (Ok(JobOutput::Generated(g)), Some(current)) if current.day == day => {
                        let steps = step_texts(&g.text, setup.planning.max_steps);
                        (!steps.is_empty())
                            .then(|| {
                                submit(
                                    &mut queue,
                                    entity,
                                    JobRequest::Embed(steps.clone()),
                                    Pending::StepSpots {
                                        day,
                                        slot,
                                        start,
                                        end,
                                        steps,
                                    },
                                )
                            })
                            .flatten()
                    }
                    _ => None,
                },
                Pending::StepSpots {
                    day,
                    slot,
                    start,
                    end,
                    steps,
                } => {
                    if let (Ok(JobOutput::Embedded(e)), Some(plan)) =
                        (&answer.output, plan.as_deref_mut())
                        && plan.day == day
                        && e.vectors.len() == steps.len()
                        && let Some(slot) = plan.slots.get_mut(slot)
                    {
                        place_steps(&cx, slot, start, end, &steps, &e.vectors);
                        happened.write(Happened(Event::StepsPlanned {
                            agent: id.0.clone(),
                            steps: (slot.steps.iter())
                                .filter(|s| s.start >= start && s.end <= end)
                                .map(|s| PlanItem {
                                    start: at_minute(s.start),
                                    end: at_minute(s.end),
                                    activity: s.description.clone(),
                                    location: s.location.clone(),
                                })
                                .collect(),
                        }));
                    }
                    None
                }
            };
            // The next call waits for the next tick: what this answer changed (a new plan) is
            // in place by then.
            planner.pending = next;
            continue;
        }
        if planner.pending.is_some() {
            continue;
        }
        // 2. The plan's day is over: the routine takes over until the next plan.
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
        if !budget.allows(entity, cx.now, Need::Plan) {
            continue;
        }
        match plan {
            // 3. A new day (not while asleep at the end of the last one): plan it.
            None if !slot.is_sleep() => {
                let base = routine_slots(cx.map, &persona.persona, agent_seed.0, day, minute);
                let settings = setup.planning;
                match free_stretch(&base, minute, settings.min_free_minutes) {
                    None => finish_day(
                        &cx,
                        &mut commands,
                        &mut happened,
                        entity,
                        id,
                        &name,
                        persona,
                        &mut stream,
                        &mut planner,
                        day,
                        base,
                        None,
                    ),
                    Some(free) => {
                        let request = intent_request(
                            &cx,
                            &name,
                            id,
                            persona,
                            &mut stream,
                            &base,
                            free,
                            minute,
                            day,
                            planner.plans,
                        );
                        planner.pending = submit(
                            &mut queue,
                            entity,
                            request,
                            Pending::Intent { day, base, free },
                        );
                    }
                }
            }
            // 4. The next hour, broken into steps.
            Some(mut plan) => {
                let Some((slot, start, end)) =
                    plan.next_block(minute, setup.planning.ahead_minutes)
                else {
                    continue;
                };
                plan.decomposed.insert(start);
                let request = steps_request(&cx, &name, id, &plan.slots[slot], start, end);
                let day = plan.day;
                planner.pending = submit(
                    &mut queue,
                    entity,
                    request,
                    Pending::Steps {
                        day,
                        slot,
                        start,
                        end,
                    },
                );
            }
            None => {}
        }
    }
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
/// start (or from a few minutes from now, for the stretch under way).
#[allow(clippy::too_many_arguments)]
fn insert_intent(
    slots: &mut Vec<PlannedSlot>,
    free: usize,
    minute: i64,
    intent: &str,
    place: Place,
    tile: TilePos,
    location: String,
    setup: &DialogueSetup,
) {
    let stretch = slots[free].clone();
    let start = stretch.start.max(minute + 5);
    let end = (start + setup.planning.intent_minutes).min(stretch.end);
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
    slots.splice(free..=free, replaced);
}

/// The prompt for the day's intent.
#[allow(clippy::too_many_arguments)]
fn intent_request(
    cx: &Context,
    name: &str,
    id: &ActorId,
    persona: &AgentPersona,
    stream: &mut MemoryStream,
    base: &[PlannedSlot],
    free: usize,
    minute: i64,
    day: i64,
    plans: u32,
) -> JobRequest {
    let recalled = stream.retrieve(
        &cx.index.plans_query,
        cx.now,
        cx.setup.planning.memories,
        &RetrievalWeights::default(),
    );
    stream.touch(recalled.iter().map(|r| r.id), cx.now);
    let memories: Vec<String> = (recalled.iter())
        .filter_map(|r| stream.get(r.id))
        .map(|m| m.description.clone())
        .collect();
    let home = (cx.map.resolve(&persona.persona.home).ok()).map(|p| cx.map.sector_of_place(p));
    let outings: Vec<String> = (base.iter())
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
    let stretch = &base[free];
    let p = &persona.persona;
    let values = BTreeMap::from([
        ("agent", name.to_string()),
        ("age", p.age.to_string()),
        ("traits", p.traits.join(", ")),
        ("memories", memories.join("; ")),
        (
            "day",
            if outings.is_empty() {
                "at home".to_string()
            } else {
                outings.join("; ")
            },
        ),
        (
            "free",
            format!(
                "{}-{}",
                clock(stretch.start.max(minute)),
                clock(stretch.end)
            ),
        ),
    ]);
    JobRequest::Generate(GenerateRequest {
        prompt: cx.setup.prompts.plan.render(&values),
        max_tokens: cx.setup.planning.intent_tokens,
        stop: vec!["\n".into()],
        sampling: SamplingParams {
            seed: stable_hash(&format!("{}:{}:plan:{day}:{plans}", cx.seed, id.0)),
            ..SamplingParams::default()
        },
    })
}

/// The prompt for an hour's steps.
fn steps_request(
    cx: &Context,
    name: &str,
    id: &ActorId,
    slot: &PlannedSlot,
    start: i64,
    end: i64,
) -> JobRequest {
    let sector = &cx.map.sectors[cx.map.sector_of_place(slot.place)].name;
    let values = BTreeMap::from([
        ("agent", name.to_string()),
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
            seed: stable_hash(&format!("{}:{}:steps:{start}", cx.seed, id.0)),
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

/// A day's plan is made: the agent follows it, remembers it, and the log says so.
#[allow(clippy::too_many_arguments)]
fn finish_day(
    cx: &Context,
    commands: &mut Commands,
    happened: &mut MessageWriter<Happened>,
    entity: Entity,
    id: &ActorId,
    name: &str,
    persona: &AgentPersona,
    stream: &mut MemoryStream,
    planner: &mut Planner,
    day: i64,
    slots: Vec<PlannedSlot>,
    intent: Option<String>,
) {
    let Ok(home) = cx.map.resolve(&persona.persona.home) else {
        return;
    };
    let game_day = u32::try_from(day + 1).unwrap_or(0);
    stream.write(
        NewMemory {
            kind: MemoryKind::Thought,
            description: plan_thought(name, game_day, &slots, cx.map, home),
            triple: None,
            evidence: vec![],
        },
        cx.now,
    );
    happened.write(Happened(Event::PlanMade {
        agent: id.0.clone(),
        day: game_day,
        intent: intent.clone(),
        items: plan_items(&slots),
    }));
    planner.plans += 1;
    commands
        .entity(entity)
        .remove::<RoutineBrain>()
        .insert(DayPlan {
            day,
            intent,
            slots,
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
