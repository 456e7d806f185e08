//! The camera: it follows the player's avatar; the mouse wheel zooms, the arrow keys pan (and
//! stop the following until Home is pressed or the player walks).

use super::actors::You;
use super::{TILE, TownMap};
use crate::ClientSystems;
use bevy::input::mouse::{MouseScrollUnit, MouseWheel};
use bevy::prelude::*;

/// World units per screen pixel at start: two screen pixels per texel.
pub const START_SCALE: f32 = 0.5;
const MIN_SCALE: f32 = 0.15;
const MAX_SCALE: f32 = 2.0;
/// Tiles per second the arrow keys pan at, at the starting zoom.
const PAN_TILES_PER_SECOND: f32 = 24.0;

/// Whether the camera follows the avatar.
#[derive(Resource)]
pub struct Follow(pub bool);

pub fn plugin(app: &mut App) {
    app.insert_resource(Follow(true))
        .add_systems(Startup, spawn_camera)
        .add_systems(
            Update,
            (zoom, pan, follow).chain().in_set(ClientSystems::Present),
        );
}

/// The zoom (world units per screen pixel) that shows a whole `map` (world units) in a
/// `window` (pixels), with a small margin.
pub fn fit_scale(map: Vec2, window: Vec2) -> f32 {
    ((map.x / window.x).max(map.y / window.y) * 1.05).clamp(MIN_SCALE, MAX_SCALE)
}

fn spawn_camera(mut commands: Commands) {
    commands.spawn((
        Camera2d,
        Projection::Orthographic(OrthographicProjection {
            scale: START_SCALE,
            ..OrthographicProjection::default_2d()
        }),
    ));
}

fn zoom(mut wheel: MessageReader<MouseWheel>, mut cameras: Query<&mut Projection>) {
    let notches: f32 = wheel
        .read()
        .map(|w| match w.unit {
            MouseScrollUnit::Line => w.y,
            MouseScrollUnit::Pixel => w.y / 40.0,
        })
        .sum();
    if notches == 0.0 {
        return;
    }
    for mut projection in &mut cameras {
        if let Projection::Orthographic(ortho) = &mut *projection {
            ortho.scale = (ortho.scale * 0.85f32.powf(notches)).clamp(MIN_SCALE, MAX_SCALE);
        }
    }
}

fn pan(
    time: Res<Time>,
    keys: Res<ButtonInput<KeyCode>>,
    mut follow: ResMut<Follow>,
    mut cameras: Query<(&mut Transform, &Projection), With<Camera2d>>,
) {
    let mut direction = Vec2::ZERO;
    for (key, step) in [
        (KeyCode::ArrowLeft, Vec2::NEG_X),
        (KeyCode::ArrowRight, Vec2::X),
        (KeyCode::ArrowUp, Vec2::Y),
        (KeyCode::ArrowDown, Vec2::NEG_Y),
    ] {
        if keys.pressed(key) {
            direction += step;
        }
    }
    if keys.just_pressed(KeyCode::Home) {
        follow.0 = true;
    }
    if direction == Vec2::ZERO {
        return;
    }
    follow.0 = false;
    for (mut transform, projection) in &mut cameras {
        let scale = match projection {
            Projection::Orthographic(o) => o.scale / START_SCALE,
            _ => 1.0,
        };
        let step = direction.normalize() * PAN_TILES_PER_SECOND * TILE * scale;
        transform.translation += (step * time.delta_secs()).extend(0.0);
    }
}

/// Keeps the avatar in the middle, or the map's middle before there is one.
fn follow(
    time: Res<Time>,
    follow: Res<Follow>,
    map: Res<TownMap>,
    you: Query<&Transform, (With<You>, Without<Camera2d>)>,
    mut cameras: Query<&mut Transform, With<Camera2d>>,
) {
    if !follow.0 {
        return;
    }
    let target = match you.single() {
        Ok(avatar) => avatar.translation.truncate(),
        Err(_) => Vec2::new(map.width as f32, -(map.height as f32)) * TILE / 2.0,
    };
    let step = 1.0 - (-6.0 * time.delta_secs()).exp();
    for mut transform in &mut cameras {
        let now = transform.translation.truncate();
        let next = if now.distance(target) > 20.0 * TILE {
            target
        } else {
            now.lerp(target, step)
        };
        transform.translation = next.extend(transform.translation.z);
    }
}
