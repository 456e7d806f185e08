//! The agent inspector's server side: a player asks about an agent in its view
//! ([`ClientMessage::Inspect`](agora_shared::protocol::ClientMessage::Inspect), rate-limited
//! in [`actions`](super::actions)) and is told who it is, what it is doing, its plan and its
//! latest memories and reflections, bounded to one message. An agent out of view is refused:
//! what a player cannot see, it cannot ask about.

use super::replication::{Net, ReplicationSystems, View};
use super::server::Joined;
use crate::actors::{Activity, Player};
use crate::agents::{Agent, AgentPersona};
use crate::cognition::DayPlan;
use crate::memory::{Memory, MemoryStream};
use crate::time::GameClock;
use agora_shared::GameTime;
use agora_shared::protocol::{Channel, Inspection, MemoryNote, NetId, ServerMessage, encode};
use bevy::prelude::*;
use bevy_renet::RenetServer;

/// A joined player asked about the agent with wire id `id`.
#[derive(Message, Clone, Copy, Debug)]
pub struct InspectAsked {
    pub player: Entity,
    pub id: NetId,
}

pub fn plugin(app: &mut App) {
    app.add_message::<InspectAsked>().add_systems(
        Update,
        // Once views are up to date: an agent that came into view this tick may be asked about.
        answer
            .in_set(ReplicationSystems::Inspections)
            .run_if(resource_exists::<RenetServer>),
    );
}

/// What the inspector reads of an agent.
type Minds<'w, 's> = Query<
    'w,
    's,
    (
        &'static Net,
        &'static Name,
        &'static AgentPersona,
        Option<&'static Activity>,
        Option<&'static DayPlan>,
        Option<&'static MemoryStream>,
    ),
    With<Agent>,
>;

fn answer(
    mut server: ResMut<RenetServer>,
    mut asked: MessageReader<InspectAsked>,
    clock: Res<GameClock>,
    players: Query<(&Player, &View), With<Joined>>,
    minds: Minds,
) {
    for &InspectAsked { player, id } in asked.read() {
        let Ok((player, view)) = players.get(player) else {
            continue; // Gone since it asked.
        };
        let mind = view.entity_of(id).and_then(|entity| minds.get(entity).ok());
        let reply = match mind {
            Some((net, name, persona, activity, plan, stream)) => {
                let mut inspection = inspection(net.0, name, persona, activity, plan, stream);
                if let Some(plan) = plan {
                    inspection.steps = steps_now(plan, clock.now);
                }
                inspection.bound();
                ServerMessage::Inspected(Box::new(inspection))
            }
            // An honest client may ask about an agent that has just walked out of view: told,
            // not counted against it.
            None => ServerMessage::Refused {
                reason: "no agent with that id is in your view".into(),
            },
        };
        server.send_message(player.client_id, Channel::Reliable, encode(&reply));
    }
}

/// An agent's inspection, unbounded (the caller bounds it): what the server has, and nothing
/// it does not.
pub fn inspection(
    id: NetId,
    name: &Name,
    persona: &AgentPersona,
    activity: Option<&Activity>,
    plan: Option<&DayPlan>,
    stream: Option<&MemoryStream>,
) -> Inspection {
    let about = persona.persona.about();
    let mut inspection = Inspection {
        id,
        name: name.to_string(),
        age: about.age,
        traits: about.traits,
        occupation: about.occupation,
        activity: activity.map(|a| a.description.clone()).unwrap_or_default(),
        emoji: activity.map(|a| a.emoji.clone()).unwrap_or_default(),
        location: activity.map(|a| a.location.clone()).unwrap_or_default(),
        intent: plan.and_then(|p| p.intent.clone()),
        plan: plan.map_or_else(Vec::new, |p| p.slots.iter().map(|s| s.item()).collect()),
        ..Inspection::default()
    };
    for memory in stream.iter().flat_map(|s| s.iter().rev()) {
        if !inspection.add_older(note(memory), memory.is_reflection()) {
            break;
        }
    }
    inspection
}

/// The steps of the plan's stretch under way at `now` that have not ended.
fn steps_now(plan: &DayPlan, now: GameTime) -> Vec<agora_shared::events::PlanItem> {
    let minute = now.total_minutes() as i64;
    plan.at(minute).map_or_else(Vec::new, |(slot, _)| {
        (slot.steps.iter())
            .filter(|s| s.end > minute)
            .map(|s| s.item())
            .collect()
    })
}

fn note(memory: &Memory) -> MemoryNote {
    MemoryNote {
        id: memory.id.0,
        created: memory.created,
        kind: memory.kind.name().into(),
        importance: memory.importance.unwrap_or(0),
        text: memory.description.clone(),
    }
}
