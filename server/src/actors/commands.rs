//! Commands actors issue and the one system that carries them out, in the order they were
//! issued: players' (decoded by `net/` in the tick's `Input` set) before agents' (their brains,
//! in `Think`).

use super::activity::{Activity, ActivityKind};
use super::speech::{self, clean_text};
use super::{ActorSystems, Player, Team, objects};
use crate::happenings::{Happened, Heard};
use crate::time::GameClock;
use crate::world::{ActorId, Destination, Occupancy, Position, TownMap};
use agora_shared::TilePos;
use agora_shared::protocol::{MAX_NAME_CHARS, MAX_SAY_CHARS};
use bevy::ecs::entity::EntityHashMap;
use bevy::prelude::*;

/// `actor` wants to do `action`.
#[derive(Message, Clone, Debug, PartialEq, Eq)]
pub struct ActorCommand {
    pub actor: Entity,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Walk to a walkable tile (the server finds the path). `place` names it for the log
    /// (an object's address); `None` uses the tile's own address.
    MoveTo {
        tile: TilePos,
        place: Option<String>,
    },
    /// Say a line aloud to everyone in earshot.
    Say(String),
    /// Use the object called this in the arena the actor stands in.
    Use(String),
    JoinTeam(String),
    LeaveTeam,
}

/// A command the rules refused, and why (a player is told, and it counts against it).
#[derive(Message, Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub actor: Entity,
    pub reason: String,
}

pub fn plugin(app: &mut App) {
    app.add_message::<ActorCommand>()
        .add_message::<Refused>()
        .add_systems(Update, perform.in_set(ActorSystems::Perform));
}

/// What this tick's earlier commands made of an actor (their inserts apply after the system):
/// the object in use and the team. Repeating either changes nothing.
struct Pending {
    using: Option<String>,
    team: Option<String>,
}

fn perform(
    mut commands: Commands,
    mut orders: MessageReader<ActorCommand>,
    mut refused: MessageWriter<Refused>,
    mut happened: MessageWriter<Happened>,
    mut heard: MessageWriter<Heard>,
    map: Res<TownMap>,
    clock: Res<GameClock>,
    occupancy: Res<Occupancy>,
    actors: Query<(
        &ActorId,
        &Position,
        Option<&Activity>,
        Option<&Team>,
        Has<Player>,
    )>,
    listeners: Query<(&ActorId, Has<Player>)>,
) {
    let mut pending: EntityHashMap<Pending> = EntityHashMap::default();
    for ActorCommand { actor, action } in orders.read() {
        let actor = *actor;
        let Ok((id, position, activity, team, is_player)) = actors.get(actor) else {
            continue; // Gone since it asked.
        };
        let state = pending.entry(actor).or_insert_with(|| Pending {
            using: activity
                .filter(|a| a.kind == ActivityKind::Using)
                .map(|a| a.location.clone()),
            team: team.and_then(|t| t.0.clone()),
        });
        // A player is told (by `net/`); an agent's refused command is its brain's bug.
        let mut refuse = |reason: String| {
            if !is_player {
                warn!("{}: refused: {reason}", id.0);
            }
            refused.write(Refused { actor, reason });
        };
        match action {
            Action::MoveTo { tile, place } => {
                if !map.is_walkable(*tile) {
                    refuse(format!("tile {tile} is not walkable"));
                    continue;
                }
                let location = place.clone().unwrap_or_else(|| map.address_at(*tile));
                commands.entity(actor).insert(Destination {
                    tile: *tile,
                    location,
                });
                // Walking away ends whatever the actor was using.
                if state.using.take().is_some() {
                    commands.entity(actor).insert(Activity::idle(clock.now));
                }
            }
            Action::Say(text) => match clean_text(text, MAX_SAY_CHARS) {
                Some(text) => speech::say(
                    &occupancy,
                    &listeners,
                    &mut happened,
                    &mut heard,
                    (actor, id, position.0),
                    text,
                ),
                None => refuse(format!("say 1 to {MAX_SAY_CHARS} characters")),
            },
            Action::Use(object) => match objects::usable_at(&map, position.0, object) {
                // Using an object is the actor's activity until it walks away: others in view
                // see it, and the event log records it with the object's address.
                Some(found) => {
                    let address = map.object_address(found);
                    if state.using.as_ref() != Some(&address) {
                        commands.entity(actor).insert(Activity::using(
                            object,
                            address.clone(),
                            clock.now,
                        ));
                        state.using = Some(address);
                    }
                }
                None => refuse(format!("there is no {object:?} here")),
            },
            Action::JoinTeam(name) => match clean_text(name, MAX_NAME_CHARS) {
                Some(name) => {
                    if state.team.as_ref() != Some(&name) {
                        commands.entity(actor).insert(Team(Some(name.clone())));
                        state.team = Some(name);
                    }
                }
                None => refuse(format!("team names are 1 to {MAX_NAME_CHARS} characters")),
            },
            Action::LeaveTeam => {
                if state.team.take().is_some() {
                    commands.entity(actor).insert(Team(None));
                }
            }
        }
    }
}
