//! Click a tile to walk there: the server finds the path (and refuses a tile nobody can
//! reach); a ring marks where the player asked to go. A click on an agent opens the inspector
//! instead, and one on a panel is the panel's.

use crate::ClientSystems;
use crate::inspect::over_ui;
use crate::net::Outgoing;
use crate::town::actors::{Actor, agent_at};
use crate::town::camera::Follow;
use crate::town::{TILE, TownMap, tile_at, tile_center, z};
use agora_shared::protocol::ClientMessage;
use bevy::prelude::*;

/// Where the player last asked to go.
#[derive(Component)]
pub struct Marker(Timer);

pub fn plugin(app: &mut App) {
    app.add_systems(Update, click.in_set(ClientSystems::Receive))
        .add_systems(Update, fade_marker.in_set(ClientSystems::Present));
}

fn click(
    mut commands: Commands,
    buttons: Res<ButtonInput<MouseButton>>,
    windows: Query<&Window>,
    cameras: Query<(&Camera, &GlobalTransform)>,
    map: Res<TownMap>,
    mut follow: ResMut<Follow>,
    mut outgoing: MessageWriter<Outgoing>,
    markers: Query<Entity, With<Marker>>,
    actors: Query<(&Actor, &Transform)>,
    interactions: Query<&Interaction>,
) {
    if !buttons.just_pressed(MouseButton::Left) || over_ui(&interactions) {
        return;
    }
    let (Ok(window), Ok((camera, at))) = (windows.single(), cameras.single()) else {
        return;
    };
    let Some(point) = window
        .cursor_position()
        .and_then(|cursor| camera.viewport_to_world_2d(at, cursor).ok())
    else {
        return;
    };
    if agent_at(point, actors.iter()).is_some() {
        return;
    }
    let Some(tile) = tile_at(point, map.width, map.height) else {
        return;
    };
    outgoing.write(Outgoing(ClientMessage::MoveTo { tile }));
    follow.0 = true;
    for marker in &markers {
        commands.entity(marker).despawn();
    }
    commands.spawn((
        Marker(Timer::from_seconds(1.5, TimerMode::Once)),
        Sprite::from_color(Color::srgba(1.0, 0.85, 0.25, 0.6), Vec2::splat(TILE * 0.8)),
        Transform::from_translation(tile_center(tile).extend(z::MARKER)),
    ));
}

fn fade_marker(
    mut commands: Commands,
    time: Res<Time>,
    mut markers: Query<(Entity, &mut Marker, &mut Sprite)>,
) {
    for (entity, mut marker, mut sprite) in &mut markers {
        marker.0.tick(time.delta());
        if marker.0.is_finished() {
            commands.entity(entity).despawn();
        } else {
            sprite.color.set_alpha(0.6 * marker.0.fraction_remaining());
        }
    }
}
