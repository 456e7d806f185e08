//! Night falls on the map: a blue shade over the ground, by the game clock (actors and their
//! words stay readable above it).

use super::{Clock, TILE, TownMap, z};
use crate::ClientSystems;
use bevy::prelude::*;
use bevy::sprite::Anchor;

/// The shade over the map.
#[derive(Component)]
pub struct NightShade;

/// Darkest the night gets (the shade's opacity).
const MIDNIGHT: f32 = 0.55;
/// The colour of the night; [`darkness`] gives its opacity.
pub const NIGHT: Color = Color::srgb(0.02, 0.03, 0.15);

pub fn plugin(app: &mut App) {
    app.add_systems(Update, shade.in_set(ClientSystems::Present));
}

/// How dark it is at `minutes` past midnight: dark until 05:00, dawn to 07:00, day, dusk from
/// 18:00 to 21:00, dark from 21:00.
pub fn darkness(minutes: u16) -> f32 {
    let hour = f32::from(minutes) / 60.0;
    let ramp = |from: f32, to: f32| ((hour - from) / (to - from)).clamp(0.0, 1.0);
    let light = ramp(5.0, 7.0) * (1.0 - ramp(18.0, 21.0));
    MIDNIGHT * (1.0 - light)
}

fn shade(
    mut commands: Commands,
    clock: Res<Clock>,
    map: Res<TownMap>,
    mut shades: Query<(&mut Sprite, &mut Visibility), With<NightShade>>,
) {
    let size = Vec2::new(map.width as f32, map.height as f32) * TILE;
    let alpha = clock.now().map_or(0.0, |t| darkness(t.clock().minutes()));
    let color = NIGHT.with_alpha(alpha);
    match shades.single_mut() {
        Ok((mut sprite, mut visibility)) => {
            sprite.color = color;
            sprite.custom_size = Some(size);
            *visibility = if alpha > 0.0 {
                Visibility::Inherited
            } else {
                Visibility::Hidden
            };
        }
        Err(_) if size.x > 0.0 => {
            commands.spawn((
                NightShade,
                Sprite::from_color(color, size),
                Anchor::TOP_LEFT,
                Transform::from_xyz(0.0, 0.0, z::NIGHT),
            ));
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nights_are_dark_and_days_are_not() {
        let at = |h: u16, m: u16| darkness(h * 60 + m);
        assert_eq!(at(0, 0), MIDNIGHT);
        assert_eq!(at(3, 30), MIDNIGHT);
        assert_eq!(at(12, 0), 0.0);
        assert_eq!(at(17, 59), 0.0);
        assert!(at(6, 0) > 0.0 && at(6, 0) < MIDNIGHT, "dawn");
        assert!(at(19, 30) > 0.0 && at(19, 30) < MIDNIGHT, "dusk");
        assert_eq!(at(22, 0), MIDNIGHT);
    }
}
