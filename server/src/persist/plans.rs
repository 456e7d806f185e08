//! Plans across restarts: an agent's plan for the day is saved whenever it changes (made, or an
//! hour broken into steps) and deleted when the agent goes back to its routine, so a restarted
//! world resumes each agent's day where it was instead of planning it again.

use super::store::Write;
use super::writer::Persistence;
use crate::cognition::{DayPlan, RestoredPlans};
use crate::schedule::TickSystems;
use crate::world::{ActorId, TownMap};
use bevy::prelude::*;
use std::collections::BTreeMap;

/// The plans a database kept, for the agents they belong to. A plan that does not parse or
/// does not fit `map` (saved on another map) is dropped with a warning: the agent plans its
/// day again, as on a new day.
pub fn restored_plans(saved: BTreeMap<String, String>, map: &TownMap) -> RestoredPlans {
    let mut plans = RestoredPlans::default();
    for (agent, json) in saved {
        match serde_json::from_str::<DayPlan>(&json) {
            Ok(mut plan) => {
                if plan.fits(map) {
                    plans.0.insert(agent, plan);
                } else {
                    warn!("{agent}: the saved plan is not for this map; planning the day again");
                }
            }
            Err(e) => warn!("{agent}: the saved plan does not parse ({e}); planning the day again"),
        }
    }
    plans
}

pub fn plugin(app: &mut App) {
    app.add_systems(
        Update,
        save_plans
            .in_set(TickSystems::Save)
            .run_if(resource_exists::<Persistence>),
    );
}

fn row(agent: &ActorId, plan: Option<&DayPlan>) -> Write {
    Write::Plan {
        agent: agent.0.clone(),
        plan: plan.and_then(|p| serde_json::to_string(p).ok()),
    }
}

/// Every tick (plans change a few times an hour per agent), so that no removal is missed.
fn save_plans(
    persistence: Res<Persistence>,
    changed: Query<(&ActorId, &DayPlan), Changed<DayPlan>>,
    mut removed: RemovedComponents<DayPlan>,
    ids: Query<&ActorId, Without<DayPlan>>,
) {
    for entity in removed.read() {
        if let Ok(agent) = ids.get(entity) {
            persistence.save(row(agent, None));
        }
    }
    for (agent, plan) in &changed {
        persistence.save(row(agent, Some(plan)));
    }
}

/// Hands every plan to the writer (at shutdown).
pub(super) fn save_all(world: &mut World) {
    let mut plans = world.query::<(&ActorId, &DayPlan)>();
    let rows: Vec<Write> = plans.iter(world).map(|(a, p)| row(a, Some(p))).collect();
    if let Some(persistence) = world.get_resource::<Persistence>() {
        rows.into_iter().for_each(|r| persistence.save(r));
    }
}
