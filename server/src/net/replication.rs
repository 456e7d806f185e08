//! What joined players see: every agent and joined player, once in full when it comes into
//! view ([`ServerMessage::Spawned`]), then only changes: positions that moved this tick on the
//! unreliable channel (the next update supersedes a lost one), activity and team changes on
//! the reliable one. The whole town is in view for now (25 agents fit the budget);
//! per-player areas of interest come with larger towns.

use super::server::{Joined, Player};
use crate::agents::Agent;
use crate::agents::brain::Activity;
use crate::world::{GameClock, Position};
use agora_shared::protocol::{Channel, EntityKind, NetId, ServerMessage, encode};
use bevy::prelude::*;
use bevy_renet::RenetServer;

/// An entity's id on the wire.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq, Deref)]
pub struct Net(pub NetId);

/// Hands out wire ids.
#[derive(Resource, Default, Debug)]
pub struct NetIds {
    next: u32,
}

impl NetIds {
    pub fn issue(&mut self) -> Net {
        self.next += 1;
        Net(NetId(self.next))
    }
}

/// A player's team, if any.
#[derive(Component, Clone, Debug, PartialEq, Eq)]
pub struct Team(pub String);

pub fn plugin(app: &mut App) {
    app.init_resource::<NetIds>().add_systems(
        Update,
        (
            name_agents,
            send_positions.in_set(crate::TickSystems::Record),
            send_activities.in_set(crate::TickSystems::Record),
        )
            .run_if(resource_exists::<RenetServer>),
    );
}

/// Gives every agent a wire id.
fn name_agents(
    mut commands: Commands,
    mut ids: ResMut<NetIds>,
    agents: Query<Entity, (With<Agent>, Without<Net>)>,
) {
    for agent in &agents {
        commands.entity(agent).insert(ids.issue());
    }
}

/// The full description of an entity, for a player who starts seeing it.
pub fn spawned(
    net: Net,
    name: &str,
    position: &Position,
    activity: Option<&Activity>,
    player: bool,
    team: Option<&Team>,
) -> ServerMessage {
    ServerMessage::Spawned {
        id: net.0,
        kind: if player {
            EntityKind::Player
        } else {
            EntityKind::Agent
        },
        name: name.to_string(),
        tile: position.0,
        activity: activity.map(|a| a.description.clone()).unwrap_or_default(),
        emoji: activity.map(|a| a.emoji.clone()).unwrap_or_default(),
        team: team.map(|t| t.0.clone()),
    }
}

/// Everything in view, for a player who has just joined.
pub fn world_for_newcomer(
    visible: &Query<
        (
            &Net,
            &Name,
            &Position,
            Option<&Activity>,
            Has<Player>,
            Option<&Team>,
        ),
        Or<(With<Agent>, With<Joined>)>,
    >,
) -> Vec<ServerMessage> {
    visible
        .iter()
        .map(|(net, name, position, activity, player, team)| {
            spawned(*net, name, position, activity, player, team)
        })
        .collect()
}

fn send_positions(
    mut server: ResMut<RenetServer>,
    clock: Res<GameClock>,
    moved: Query<(&Net, &Position), (Changed<Position>, Or<(With<Agent>, With<Joined>)>)>,
    joined: Query<&Player, With<Joined>>,
) {
    let moved: Vec<(NetId, agora_shared::TilePos)> =
        moved.iter().map(|(net, p)| (net.0, p.0)).collect();
    if moved.is_empty() {
        return;
    }
    // At most ~10 bytes an entry: 1,024 keep a message well under the decode bound.
    for batch in moved.chunks(1024) {
        let message = encode(&ServerMessage::Positions {
            time: clock.now,
            moved: batch.to_vec(),
        });
        for player in &joined {
            server.send_message(player.client_id, Channel::Unreliable, message.clone());
        }
    }
}

fn send_activities(
    mut server: ResMut<RenetServer>,
    changed: Query<(&Net, &Activity), Changed<Activity>>,
    joined: Query<&Player, With<Joined>>,
) {
    for (net, activity) in &changed {
        let message = encode(&ServerMessage::Activity {
            id: net.0,
            activity: activity.description.clone(),
            emoji: activity.emoji.clone(),
        });
        for player in &joined {
            server.send_message(player.client_id, Channel::Reliable, message.clone());
        }
    }
}
