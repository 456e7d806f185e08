//! What joined players see: the agents and joined players within their area of interest.
//! An entity is described in full once, when it comes into view ([`ServerMessage::Spawned`]),
//! and forgotten when it leaves ([`ServerMessage::Despawned`]); in between only changes are
//! sent: positions that moved this tick on the unreliable channel (the next update supersedes
//! a lost one, and a keyframe every second repeats them all), activity and team changes on the
//! reliable one.
//!
//! The view is a square around the player's avatar ([`ViewRange`]). It is entered at one
//! radius and left only past a larger one, so someone pacing along the edge is not spawned and
//! despawned every step.

use super::server::Joined;
use crate::actors::{Activity, Player, Team};
use crate::agents::Agent;
use crate::happenings::Heard;
use crate::schedule::TickSystems;
use crate::time::GameClock;
use crate::world::Position;
use agora_shared::TilePos;
use agora_shared::protocol::{Channel, EntityKind, NetId, ServerMessage, encode};
use bevy::ecs::entity::{EntityHashMap, EntityHashSet};
use bevy::prelude::*;
use bevy_renet::RenetServer;

/// Tiles (Chebyshev) around a player within which entities come into view by default: a
/// little more than a 1280x720 screen of 32-pixel tiles shows (40x23) in every direction.
pub const VIEW_RADIUS: u16 = 24;
/// Entities in view stay in view until they are this much farther away.
pub const VIEW_MARGIN: u16 = 4;
/// By default, entities in view stay until they are this far away.
pub const VIEW_KEEP_RADIUS: u16 = VIEW_RADIUS + VIEW_MARGIN;

/// How far players see: entities come into view within `enter` tiles and leave past `keep`.
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewRange {
    pub enter: u16,
    pub keep: u16,
}

impl ViewRange {
    /// Entering at `radius`, leaving past `radius` + [`VIEW_MARGIN`].
    pub fn radius(radius: u16) -> Self {
        Self {
            enter: radius,
            keep: radius.saturating_add(VIEW_MARGIN),
        }
    }
}

impl Default for ViewRange {
    fn default() -> Self {
        Self::radius(VIEW_RADIUS)
    }
}
/// Every this many ticks each joined player gets the tiles of everything in its view, moved or
/// not (a keyframe), and the clock: positions travel unreliably, so a lost last step, or one
/// that overtook its `Spawned`, is put right within a second.
pub const KEYFRAME_EVERY_TICKS: u64 = 20;
/// Entries per `Positions` message: at most ~10 bytes each, well under the decode bound.
const POSITIONS_PER_MESSAGE: usize = 1024;

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

/// What a joined player's client has been told exists: entity and wire id.
#[derive(Component, Default, Debug)]
pub struct View(EntityHashMap<NetId>);

impl View {
    pub fn sees(&self, entity: Entity) -> bool {
        self.0.contains_key(&entity)
    }

    /// The entity the client knows by `id`, if it is in view.
    pub fn entity_of(&self, id: NetId) -> Option<Entity> {
        self.0.iter().find(|(_, i)| **i == id).map(|(e, _)| *e)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Replication's steps, in order, at the end of the tick.
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReplicationSystems {
    /// Spawn and despawn what came into or left each view.
    Views,
    /// Send the changes of what stays in view.
    Changes,
    /// Answer what players asked about agents in view ([`super::inspect`]).
    Inspections,
    /// Tell players how many are online ([`super::online`]).
    Online,
}

pub fn plugin(app: &mut App) {
    app.add_message::<Heard>()
        .init_resource::<NetIds>()
        .init_resource::<ViewRange>()
        .configure_sets(
            Update,
            (
                ReplicationSystems::Views,
                ReplicationSystems::Changes,
                ReplicationSystems::Inspections,
                ReplicationSystems::Online,
            )
                .chain()
                .in_set(TickSystems::Record)
                .run_if(resource_exists::<RenetServer>),
        )
        .add_systems(
            Update,
            (
                name_agents.in_set(TickSystems::Act),
                update_views.in_set(ReplicationSystems::Views),
                (send_positions, send_activities, send_teams, send_speech)
                    .chain()
                    .in_set(ReplicationSystems::Changes),
            ),
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

/// Everything that can be seen: agents and joined players.
type Visible<'w, 's> = Query<
    'w,
    's,
    (
        Entity,
        &'static Net,
        &'static Name,
        &'static Position,
        Option<&'static Activity>,
        Has<Player>,
        Option<&'static Team>,
    ),
    Or<(With<Agent>, With<Joined>)>,
>;

fn within(a: TilePos, b: TilePos, radius: u16) -> bool {
    a.chebyshev(b) <= radius
}

fn update_views(
    mut server: ResMut<RenetServer>,
    range: Res<ViewRange>,
    visible: Visible,
    mut viewers: Query<(&Player, &Position, &mut View), With<Joined>>,
) {
    for (viewer, at, mut view) in &mut viewers {
        // Leaving first: out of range, offline, or gone from the world. An id that comes back
        // in the same tick (a player's avatar returning) is then despawned before it is
        // spawned again, never the other way round.
        view.0.retain(|&entity, id| {
            let stays = visible
                .get(entity)
                .is_ok_and(|(_, _, _, position, ..)| within(at.0, position.0, range.keep));
            if !stays {
                let gone = encode(&ServerMessage::Despawned { id: *id });
                server.send_message(viewer.client_id, Channel::Reliable, gone);
            }
            stays
        });
        for (entity, net, name, position, activity, player, team) in &visible {
            if view.0.contains_key(&entity) || !within(at.0, position.0, range.enter) {
                continue;
            }
            view.0.insert(entity, net.0);
            let kind = if player {
                EntityKind::Player
            } else {
                EntityKind::Agent
            };
            let message = ServerMessage::Spawned {
                id: net.0,
                kind,
                name: name.to_string(),
                tile: position.0,
                activity: activity.map(|a| a.description.clone()).unwrap_or_default(),
                emoji: activity.map(|a| a.emoji.clone()).unwrap_or_default(),
                team: team.and_then(|t| t.0.clone()),
            };
            server.send_message(viewer.client_id, Channel::Reliable, encode(&message));
        }
    }
}

/// Sends `message` to every joined player whose view holds `entity`.
fn to_viewers(
    server: &mut RenetServer,
    viewers: &Query<(&Player, &View), With<Joined>>,
    channel: Channel,
    entity: Entity,
    message: &ServerMessage,
) {
    let mut bytes = None;
    for (player, view) in viewers {
        if view.sees(entity) {
            let bytes = bytes.get_or_insert_with(|| encode(message));
            server.send_message(player.client_id, channel, bytes.clone());
        }
    }
}

fn send_positions(
    mut server: ResMut<RenetServer>,
    clock: Res<GameClock>,
    moved: Query<Entity, (Changed<Position>, Or<(With<Agent>, With<Joined>)>)>,
    positions: Query<&Position>,
    viewers: Query<(&Player, &View), With<Joined>>,
    mut ticks: Local<u64>,
) {
    *ticks += 1;
    let keyframe = ticks.is_multiple_of(KEYFRAME_EVERY_TICKS);
    let moved: EntityHashSet = moved.iter().collect();
    if moved.is_empty() && !keyframe {
        return;
    }
    for (player, view) in &viewers {
        let tiles: Vec<(NetId, TilePos)> = view
            .0
            .iter()
            .filter(|(entity, _)| keyframe || moved.contains(*entity))
            .filter_map(|(entity, id)| positions.get(*entity).ok().map(|p| (*id, p.0)))
            .collect();
        if tiles.is_empty() && !keyframe {
            continue;
        }
        // An empty keyframe still carries the clock.
        let batches: Vec<&[(NetId, TilePos)]> = if tiles.is_empty() {
            vec![&[]]
        } else {
            tiles.chunks(POSITIONS_PER_MESSAGE).collect()
        };
        for batch in batches {
            let message = ServerMessage::Positions {
                time: clock.now,
                moved: batch.to_vec(),
            };
            server.send_message(player.client_id, Channel::Unreliable, encode(&message));
        }
    }
}

fn send_activities(
    mut server: ResMut<RenetServer>,
    changed: Query<(Entity, &Net, &Activity), Changed<Activity>>,
    viewers: Query<(&Player, &View), With<Joined>>,
) {
    for (entity, net, activity) in &changed {
        let message = ServerMessage::Activity {
            id: net.0,
            activity: activity.description.clone(),
            emoji: activity.emoji.clone(),
        };
        to_viewers(&mut server, &viewers, Channel::Reliable, entity, &message);
    }
}

/// What a joined player hears, from a speaker in its view (no client hears from an id it was
/// never shown), the speaker's own line included.
fn send_speech(
    mut server: ResMut<RenetServer>,
    mut heard: MessageReader<Heard>,
    listeners: Query<(&Player, &View), With<Joined>>,
    speakers: Query<&Net>,
) {
    // A line's listeners come one after another: it is encoded once for all of them.
    let mut last: Option<(Entity, &str, Vec<u8>)> = None;
    for Heard {
        listener,
        speaker,
        text,
    } in heard.read()
    {
        let Ok((player, view)) = listeners.get(*listener) else {
            continue;
        };
        let Ok(net) = speakers.get(*speaker) else {
            continue;
        };
        if !view.sees(*speaker) {
            continue;
        }
        if last
            .as_ref()
            .is_none_or(|(s, t, _)| s != speaker || t != text)
        {
            let message = ServerMessage::Said {
                id: net.0,
                text: text.clone(),
            };
            last = Some((*speaker, text, encode(&message)));
        }
        if let Some((_, _, bytes)) = &last {
            server.send_message(player.client_id, Channel::Reliable, bytes.clone());
        }
    }
}

fn send_teams(
    mut server: ResMut<RenetServer>,
    changed: Query<(Entity, &Net, &Team), Changed<Team>>,
    viewers: Query<(&Player, &View), With<Joined>>,
) {
    for (entity, net, team) in &changed {
        let message = ServerMessage::Team {
            id: net.0,
            team: team.0.clone(),
        };
        to_viewers(&mut server, &viewers, Channel::Reliable, entity, &message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_net::config::connection_config;
    use agora_shared::GameTime;
    use agora_shared::protocol::decode;
    use bevy_renet::renet::RenetClient;

    const VIEWER: u64 = 1;

    /// What the server has queued for the viewer, in order, as a client would receive it.
    fn received(app: &mut App, client: &mut RenetClient) -> Vec<ServerMessage> {
        let mut server = app.world_mut().resource_mut::<RenetServer>();
        for packet in server.get_packets_to_send(VIEWER).unwrap() {
            client.process_packet(&packet);
        }
        let mut messages = Vec::new();
        while let Some(bytes) = client.receive_message(Channel::Reliable) {
            messages.push(decode(&bytes).unwrap());
        }
        messages
    }

    fn player(app: &mut App, client_id: u64, net: u32, tile: TilePos) -> Entity {
        app.world_mut()
            .spawn((
                Player {
                    client_id,
                    name: format!("p{client_id}"),
                },
                Name::new(format!("p{client_id}")),
                Position(tile),
                Net(NetId(net)),
                Joined,
            ))
            .id()
    }

    #[test]
    fn entities_enter_and_leave_views_and_a_returning_id_ends_spawned() {
        let mut app = App::new();
        let mut server = RenetServer::new(connection_config());
        server.add_connection(VIEWER);
        app.add_plugins(MinimalPlugins)
            .insert_resource(server)
            .insert_resource(GameClock::new(GameTime(0), 1_000))
            .add_plugins(plugin);
        let mut client = RenetClient::new(connection_config());
        let viewer = player(&mut app, VIEWER, 1, TilePos::new(10, 10));
        app.world_mut().entity_mut(viewer).insert(View::default());
        let near = player(&mut app, 2, 2, TilePos::new(10 + VIEW_RADIUS, 10));
        player(&mut app, 3, 3, TilePos::new(11 + VIEW_RADIUS, 10));
        app.update();
        let spawned = |messages: &[ServerMessage]| -> Vec<u32> {
            messages
                .iter()
                .filter_map(|m| match m {
                    ServerMessage::Spawned { id, .. } => Some(id.0),
                    _ => None,
                })
                .collect()
        };
        // Itself and the one at the edge; not the one a tile beyond.
        assert_eq!(spawned(&received(&mut app, &mut client)).len(), 2);
        assert!(app.world().get::<View>(viewer).unwrap().sees(near));

        // Inside the margin it stays; past it, it leaves.
        app.world_mut().get_mut::<Position>(near).unwrap().0 =
            TilePos::new(10 + VIEW_KEEP_RADIUS, 10);
        app.update();
        assert!(app.world().get::<View>(viewer).unwrap().sees(near));
        app.world_mut().get_mut::<Position>(near).unwrap().0 =
            TilePos::new(11 + VIEW_KEEP_RADIUS, 10);
        app.update();
        let messages = received(&mut app, &mut client);
        assert!(messages.contains(&ServerMessage::Despawned { id: NetId(2) }));

        // Player 3 walks in, leaves the world and comes back with the same id within one
        // tick: the client must end up seeing it.
        let third = app
            .world_mut()
            .query_filtered::<Entity, With<Joined>>()
            .iter(app.world())
            .find(|&e| app.world().get::<Net>(e) == Some(&Net(NetId(3))))
            .unwrap();
        app.world_mut().get_mut::<Position>(third).unwrap().0 = TilePos::new(12, 10);
        app.update();
        app.world_mut().despawn(third);
        player(&mut app, 3, 3, TilePos::new(12, 10));
        app.update();
        let about_3: Vec<ServerMessage> = received(&mut app, &mut client)
            .into_iter()
            .filter(|m| {
                matches!(
                    m,
                    ServerMessage::Spawned { id: NetId(3), .. }
                        | ServerMessage::Despawned { id: NetId(3) }
                )
            })
            .collect();
        assert!(
            matches!(about_3.last(), Some(ServerMessage::Spawned { .. })),
            "{about_3:?}"
        );
    }
}
