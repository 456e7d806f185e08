//! Making agents from the roster when the world starts.

use super::{Agent, AgentPersona, AgentSeed, BrainKind, Roster, RoutineBrain};
use crate::happenings::Happened;
use crate::world::{ActorId, Position, TownMap, WorldSeed};
use agora_shared::events::Event;
use bevy::prelude::*;

pub fn plugin(app: &mut App) {
    app.add_systems(Startup, spawn_agents);
}

/// A stable 64-bit hash (FNV-1a) of an id, for per-agent seeds that do not depend on the
/// standard library's randomised hasher.
pub fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn spawn_agents(
    mut commands: Commands,
    roster: Res<Roster>,
    map: Res<TownMap>,
    seed: Res<WorldSeed>,
    brain: Res<BrainKind>,
    mut happened: MessageWriter<Happened>,
) {
    for i in 0..roster.agents {
        let Some((entry, id)) = roster.agent(i) else {
            break;
        };
        let persona = &entry.persona;
        let home = map.resolve(&persona.home).ok();
        let Some(bed) = home.and_then(|h| map.find_object(h, "bed")) else {
            // Personas are validated against the map before a run, so this is a bug; say so.
            error!(
                "{id}: home {:?} has no bed on this map; agent not spawned",
                persona.home
            );
            continue;
        };
        let tile = map.objects[bed].tile;
        happened.write(Happened(Event::AgentSpawned {
            agent: id.clone(),
            name: persona.name.clone(),
            persona_hash: entry.hash.clone(),
            tile,
            home: map.arena_address(map.objects[bed].arena),
            about: Some(persona.about()),
        }));
        let mut agent = commands.spawn((
            Agent,
            Name::new(persona.name.clone()),
            AgentSeed(seed.0 ^ stable_hash(&id)),
            ActorId(id),
            AgentPersona {
                persona: entry.persona.clone(),
                hash: entry.hash.clone(),
                file: entry.file.clone(),
            },
            Position(tile),
        ));
        match *brain {
            // With the model, cognition swaps in the agent's own plan once it is made.
            BrainKind::Routine | BrainKind::Llm => agent.insert(RoutineBrain),
        };
    }
}
