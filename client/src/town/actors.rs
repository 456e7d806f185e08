//! Agents and players in view: one sprite each, with a name tag and what they are doing,
//! gliding between the tiles the server reports (20 times a second, unreliably, so a lost
//! update is only a longer glide).

use super::{TILE, TownUpdate, tile_center, z};
use crate::ClientSystems;
use crate::net::Link;
use agora_shared::TilePos;
use agora_shared::protocol::{EntityKind, NetId, ServerMessage};
use bevy::asset::RenderAssetUsages;
use bevy::platform::collections::HashMap;
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};
use bevy::sprite::Anchor;

/// Someone in view, as the server described them.
#[derive(Component, Clone, Debug)]
pub struct Actor {
    pub id: NetId,
    pub kind: EntityKind,
    pub name: String,
    pub tile: TilePos,
    pub activity: String,
    pub team: Option<String>,
}

/// The player's own avatar.
#[derive(Component)]
pub struct You;

/// The text under an actor: what it is doing.
#[derive(Component)]
pub struct ActivityTag;

/// The text over an actor: its name (and team).
#[derive(Component)]
pub struct NameTag;

/// Actors by wire id.
#[derive(Resource, Default)]
pub struct Actors(pub HashMap<NetId, Entity>);

/// The disc every actor is drawn with, tinted per actor.
#[derive(Resource)]
pub struct ActorArt {
    pub disc: Handle<Image>,
}

/// Farther than this from where it is drawn, an actor jumps instead of gliding (it was out of
/// view, or the update is the first).
const JUMP_TILES: f32 = 4.0;
/// How fast drawn positions close on reported ones: about 90% of the way in 150 ms.
const GLIDE_RATE: f32 = 15.0;
/// Longest activity text shown under an actor.
const ACTIVITY_CHARS: usize = 28;

pub fn plugin(app: &mut App) {
    app.init_resource::<Actors>()
        .add_systems(Startup, make_art)
        .add_systems(Update, apply.in_set(ClientSystems::Apply))
        .add_systems(
            Update,
            (mark_you, glide).chain().in_set(ClientSystems::Present),
        );
}

fn make_art(mut commands: Commands, mut images: ResMut<Assets<Image>>) {
    commands.insert_resource(ActorArt {
        disc: images.add(disc(32)),
    });
}

/// A white disc with a dark rim and soft edge, `size` pixels across.
pub fn disc(size: u32) -> Image {
    let r = size as f32 / 2.0;
    let mut rgba = Vec::with_capacity((size * size * 4) as usize);
    for y in 0..size {
        for x in 0..size {
            let d = Vec2::new(x as f32 + 0.5 - r, y as f32 + 0.5 - r).length();
            let alpha = (r - d).clamp(0.0, 1.0);
            let shade = if d > r - 3.0 { 40 } else { 255 };
            rgba.extend_from_slice(&[shade, shade, shade, (alpha * 255.0) as u8]);
        }
    }
    Image::new(
        Extent3d {
            width: size,
            height: size,
            depth_or_array_layers: 1,
        },
        TextureDimension::D2,
        rgba,
        TextureFormat::Rgba8UnormSrgb,
        RenderAssetUsages::RENDER_WORLD,
    )
}

/// An actor's colour: players blue-white, agents each their own hue (from the name, so it is
/// the same in every session and in replays).
pub fn tint(kind: EntityKind, name: &str) -> Color {
    match kind {
        EntityKind::Player => Color::srgb(0.55, 0.75, 1.0),
        EntityKind::Agent => {
            let hash = name.bytes().fold(2166136261u32, |h, b| {
                (h ^ u32::from(b)).wrapping_mul(16777619)
            });
            Color::hsl((hash % 360) as f32, 0.65, 0.6)
        }
    }
}

/// How near (world units) a click must be to an agent's drawn centre to pick it.
const PICK_RADIUS: f32 = TILE * 0.6;

/// The agent drawn under `point` (world units), if any: the nearest within [`PICK_RADIUS`].
pub fn agent_at<'a>(
    point: Vec2,
    actors: impl IntoIterator<Item = (&'a Actor, &'a Transform)>,
) -> Option<NetId> {
    (actors.into_iter())
        .filter(|(actor, _)| actor.kind == EntityKind::Agent)
        .map(|(actor, at)| (actor.id, at.translation.truncate().distance(point)))
        .filter(|(_, d)| *d <= PICK_RADIUS)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(id, _)| id)
}

/// The activity as shown: short, on one line.
pub fn short_activity(activity: &str) -> String {
    one_line(activity, ACTIVITY_CHARS)
}

/// `text` on one line, at most `max` characters (cut ones end in three dots: the built-in
/// font has no ellipsis).
pub fn one_line(text: &str, max: usize) -> String {
    let line = text.replace(['\n', '\r'], " ");
    if line.chars().count() <= max {
        return line;
    }
    let cut: String = line.chars().take(max.saturating_sub(3)).collect();
    format!("{}...", cut.trim_end())
}

fn name_tag(name: &str, team: &Option<String>) -> String {
    match team {
        Some(team) => format!("{name} [{team}]"),
        None => name.to_string(),
    }
}

/// Spawns, moves, relabels and removes actors as the updates say. Actors that appear in this
/// batch are spawned at its end, so what the same batch says of them (a replay's first
/// frame, or a live frame in which one came into view and moved) is not lost.
pub(crate) fn apply(
    mut commands: Commands,
    mut updates: MessageReader<TownUpdate>,
    mut actors: ResMut<Actors>,
    art: Option<Res<ActorArt>>,
    mut query: Query<(&mut Actor, &Children)>,
    mut names: Query<&mut Text2d, (With<NameTag>, Without<ActivityTag>)>,
    mut activities: Query<&mut Text2d, (With<ActivityTag>, Without<NameTag>)>,
) {
    let disc = art.map(|a| a.disc.clone()).unwrap_or_default();
    let mut appearing: HashMap<NetId, Actor> = HashMap::default();
    for update in updates.read() {
        let message = match update {
            TownUpdate::Reset => {
                appearing.clear();
                for (_, entity) in actors.0.drain() {
                    commands.entity(entity).despawn();
                }
                continue;
            }
            TownUpdate::Server(message) => message,
        };
        match message {
            ServerMessage::Spawned {
                id,
                kind,
                name,
                tile,
                activity,
                team,
                ..
            } => {
                if let Some(old) = actors.0.remove(id) {
                    commands.entity(old).despawn();
                }
                let actor = Actor {
                    id: *id,
                    kind: *kind,
                    name: name.clone(),
                    tile: *tile,
                    activity: activity.clone(),
                    team: team.clone(),
                };
                appearing.insert(*id, actor);
            }
            ServerMessage::Despawned { id } => {
                appearing.remove(id);
                if let Some(entity) = actors.0.remove(id) {
                    commands.entity(entity).despawn();
                }
            }
            ServerMessage::Positions { moved, .. } => {
                for (id, tile) in moved {
                    if let Some(actor) = appearing.get_mut(id) {
                        actor.tile = *tile;
                    } else if let Some(mut actor) =
                        actors.0.get(id).and_then(|e| query.get_mut(*e).ok())
                    {
                        actor.0.tile = *tile;
                    }
                }
            }
            ServerMessage::Activity { id, activity, .. } => {
                if let Some(actor) = appearing.get_mut(id) {
                    actor.activity = activity.clone();
                    continue;
                }
                let Some((mut actor, children)) =
                    actors.0.get(id).and_then(|e| query.get_mut(*e).ok())
                else {
                    continue;
                };
                actor.activity = activity.clone();
                for child in children {
                    if let Ok(mut text) = activities.get_mut(*child) {
                        text.0 = short_activity(activity);
                    }
                }
            }
            ServerMessage::Team { id, team } => {
                if let Some(actor) = appearing.get_mut(id) {
                    actor.team = team.clone();
                    continue;
                }
                let Some((mut actor, children)) =
                    actors.0.get(id).and_then(|e| query.get_mut(*e).ok())
                else {
                    continue;
                };
                actor.team = team.clone();
                for child in children {
                    if let Ok(mut text) = names.get_mut(*child) {
                        text.0 = name_tag(&actor.name, team);
                    }
                }
            }
            _ => {}
        }
    }
    for (id, actor) in appearing {
        let entity = spawn_actor(&mut commands, actor, disc.clone());
        actors.0.insert(id, entity);
    }
}

fn spawn_actor(commands: &mut Commands, actor: Actor, disc: Handle<Image>) -> Entity {
    let at = tile_center(actor.tile);
    let label = |text: String, size: f32, colour: Color| {
        (
            Text2d::new(text),
            TextFont::from_font_size(size * 2.0),
            TextColor(colour),
            crate::town::SHADOW,
        )
    };
    commands
        .spawn((
            Name::new(actor.name.clone()),
            Sprite {
                image: disc,
                color: tint(actor.kind, &actor.name),
                custom_size: Some(Vec2::splat(TILE * 0.9)),
                ..default()
            },
            Transform::from_translation(at.extend(z::ACTORS)),
            children![
                (
                    NameTag,
                    label(name_tag(&actor.name, &actor.team), 6.0, Color::WHITE),
                    Anchor::BOTTOM_CENTER,
                    Transform::from_xyz(0.0, TILE * 0.55, 0.1).with_scale(Vec3::splat(0.5)),
                ),
                (
                    ActivityTag,
                    label(
                        short_activity(&actor.activity),
                        5.0,
                        Color::srgb(0.85, 0.9, 0.8)
                    ),
                    Anchor::TOP_CENTER,
                    Transform::from_xyz(0.0, -TILE * 0.55, 0.1).with_scale(Vec3::splat(0.5)),
                ),
            ],
            actor,
        ))
        .id()
}

/// Marks the player's own avatar (and outlines it) once the welcome says which it is.
fn mark_you(
    mut commands: Commands,
    link: Option<Res<Link>>,
    unmarked: Query<(Entity, &Actor, &mut Sprite), Without<You>>,
) {
    let Some(you) = link.and_then(|l| l.you) else {
        return;
    };
    for (entity, actor, mut sprite) in unmarked {
        if actor.id == you {
            sprite.color = Color::srgb(1.0, 0.85, 0.25);
            sprite.custom_size = Some(Vec2::splat(TILE * 1.1));
            commands.entity(entity).insert(You);
        }
    }
}

/// Moves each sprite towards its actor's tile; lower rows are drawn in front.
fn glide(time: Res<Time>, mut actors: Query<(&Actor, &mut Transform)>) {
    let step = 1.0 - (-GLIDE_RATE * time.delta_secs()).exp();
    for (actor, mut transform) in &mut actors {
        let target = tile_center(actor.tile);
        let now = transform.translation.truncate();
        let next = if now.distance(target) > JUMP_TILES * TILE {
            target
        } else {
            now.lerp(target, step)
        };
        let row = f32::from(actor.tile.y) / 1000.0;
        transform.translation = next.extend(z::ACTORS + row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bevy::time::TimeUpdateStrategy;
    use std::time::Duration;

    fn app() -> App {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(
                50,
            )))
            .add_message::<TownUpdate>()
            .configure_sets(
                Update,
                (ClientSystems::Apply, ClientSystems::Present).chain(),
            )
            .add_plugins(plugin);
        app.init_resource::<Assets<Image>>();
        app
    }

    fn spawned(id: u32, name: &str, tile: TilePos) -> TownUpdate {
        TownUpdate::Server(ServerMessage::Spawned {
            id: NetId(id),
            kind: EntityKind::Agent,
            name: name.into(),
            tile,
            activity: "baking bread for the morning rush at the counter".into(),
            emoji: String::new(),
            team: None,
        })
    }

    fn send(app: &mut App, update: TownUpdate) {
        app.world_mut().write_message(update);
        app.update();
    }

    fn drawn_at(app: &mut App, id: u32) -> Option<Vec2> {
        let entity = *app.world().resource::<Actors>().0.get(&NetId(id))?;
        Some(app.world().get::<Transform>(entity)?.translation.truncate())
    }

    #[test]
    fn a_click_picks_the_nearest_agent_under_it_and_never_a_player() {
        let actor = |id: u32, kind: EntityKind| Actor {
            id: NetId(id),
            kind,
            name: String::new(),
            tile: TilePos::new(0, 0),
            activity: String::new(),
            team: None,
        };
        let at = |x: f32| Transform::from_xyz(x, 0.0, 0.0);
        let (a, b, you) = (
            actor(1, EntityKind::Agent),
            actor(2, EntityKind::Agent),
            actor(3, EntityKind::Player),
        );
        let drawn = [(&a, at(0.0)), (&b, at(8.0)), (&you, at(5.0))];
        let pick = |x: f32| agent_at(Vec2::new(x, 0.0), drawn.iter().map(|(a, t)| (*a, t)));
        assert_eq!(pick(1.0), Some(NetId(1)));
        assert_eq!(
            pick(6.0),
            Some(NetId(2)),
            "the player is nearer, but not an agent"
        );
        assert_eq!(pick(40.0), None);
    }

    #[test]
    fn actors_appear_glide_to_their_tiles_and_leave() {
        let mut app = app();
        send(
            &mut app,
            spawned(7, "Marisol Alvarez", TilePos::new(10, 10)),
        );
        assert_eq!(
            drawn_at(&mut app, 7),
            Some(tile_center(TilePos::new(10, 10)))
        );
        send(
            &mut app,
            TownUpdate::Server(ServerMessage::Positions {
                time: agora_shared::GameTime(0),
                moved: vec![
                    (NetId(7), TilePos::new(11, 10)),
                    (NetId(99), TilePos::new(1, 1)),
                ],
            }),
        );
        // Part of the way after one 50 ms frame, there after a second.
        let first = drawn_at(&mut app, 7).unwrap();
        let (from, to) = (
            tile_center(TilePos::new(10, 10)),
            tile_center(TilePos::new(11, 10)),
        );
        assert!(
            first.x > from.x && first.x < to.x,
            "{first} between {from} and {to}"
        );
        for _ in 0..20 {
            app.update();
        }
        assert!(drawn_at(&mut app, 7).unwrap().distance(to) < 0.1);
        // An unknown id moved nothing into existence.
        assert!(drawn_at(&mut app, 99).is_none());
        // A far jump is not a glide.
        send(
            &mut app,
            TownUpdate::Server(ServerMessage::Positions {
                time: agora_shared::GameTime(0),
                moved: vec![(NetId(7), TilePos::new(40, 30))],
            }),
        );
        assert_eq!(
            drawn_at(&mut app, 7),
            Some(tile_center(TilePos::new(40, 30)))
        );
        send(
            &mut app,
            TownUpdate::Server(ServerMessage::Despawned { id: NetId(7) }),
        );
        assert!(drawn_at(&mut app, 7).is_none());
        send(&mut app, spawned(8, "Gabriel Reyes", TilePos::new(3, 3)));
        send(&mut app, TownUpdate::Reset);
        assert!(app.world().resource::<Actors>().0.is_empty());
        let left = app.world_mut().query::<&Actor>().iter(app.world()).count();
        assert_eq!(left, 0, "a reset leaves no actor behind");
    }

    #[test]
    fn what_a_batch_says_of_an_actor_it_brings_is_kept() {
        let mut app = app();
        app.world_mut()
            .write_message(spawned(7, "Marisol Alvarez", TilePos::new(10, 10)));
        app.world_mut()
            .write_message(TownUpdate::Server(ServerMessage::Positions {
                time: agora_shared::GameTime(0),
                moved: vec![(NetId(7), TilePos::new(30, 20))],
            }));
        app.update();
        let entity = app.world().resource::<Actors>().0[&NetId(7)];
        assert_eq!(
            app.world().get::<Actor>(entity).unwrap().tile,
            TilePos::new(30, 20)
        );
    }

    #[test]
    fn labels_follow_what_the_server_says() {
        let mut app = app();
        send(
            &mut app,
            spawned(7, "Marisol Alvarez", TilePos::new(10, 10)),
        );
        send(
            &mut app,
            TownUpdate::Server(ServerMessage::Activity {
                id: NetId(7),
                activity: "serving".into(),
                emoji: String::new(),
            }),
        );
        send(
            &mut app,
            TownUpdate::Server(ServerMessage::Team {
                id: NetId(7),
                team: Some("blue".into()),
            }),
        );
        let texts: Vec<String> = app
            .world_mut()
            .query::<&Text2d>()
            .iter(app.world())
            .map(|t| t.0.clone())
            .collect();
        assert!(texts.contains(&"serving".to_string()), "{texts:?}");
        assert!(
            texts.contains(&"Marisol Alvarez [blue]".to_string()),
            "{texts:?}"
        );
    }

    #[test]
    fn long_activities_are_cut_and_colours_are_stable() {
        assert_eq!(short_activity("serving"), "serving");
        let cut = short_activity("baking bread for the morning rush at the counter");
        assert!(
            cut.chars().count() <= ACTIVITY_CHARS && cut.ends_with("..."),
            "{cut}"
        );
        assert_eq!(short_activity("a\nb"), "a b");
        assert_eq!(
            tint(EntityKind::Agent, "Ada").to_srgba(),
            tint(EntityKind::Agent, "Ada").to_srgba()
        );
        assert_ne!(
            tint(EntityKind::Agent, "Ada").to_srgba(),
            tint(EntityKind::Agent, "Bo").to_srgba()
        );
    }
}
