//! The replay's time bar, at the top of the window: it fills as the run plays, and a click
//! (or a drag) along it goes to that point of the run.

use super::{Replay, seek};
use crate::ClientSystems;
use crate::town::TownUpdate;
use crate::town::speech::ChatLog;
use bevy::prelude::*;
use bevy::ui::RelativeCursorPosition;

/// The bar; pressing it seeks.
#[derive(Component)]
pub struct Scrubber;

/// The bar's filled part: the run played so far.
#[derive(Component)]
pub struct Played;

pub fn plugin(app: &mut App) {
    app.add_systems(Startup, spawn)
        .add_systems(Update, scrub.in_set(ClientSystems::Receive))
        .add_systems(Update, fill.in_set(ClientSystems::Present));
}

fn spawn(mut commands: Commands) {
    commands
        .spawn((
            Scrubber,
            Interaction::default(),
            RelativeCursorPosition::default(),
            BackgroundColor(Color::srgba(0.05, 0.06, 0.08, 0.85)),
            BorderColor::all(Color::srgba(0.93, 0.93, 0.9, 0.6)),
            Node {
                position_type: PositionType::Absolute,
                left: Val::Percent(30.0),
                right: Val::Percent(30.0),
                top: Val::Px(14.0),
                height: Val::Px(16.0),
                border: UiRect::all(Val::Px(1.0)),
                border_radius: BorderRadius::all(Val::Px(4.0)),
                ..default()
            },
        ))
        .with_child((
            Played,
            BackgroundColor(Color::srgba(1.0, 0.85, 0.25, 0.85)),
            Node {
                width: Val::Percent(0.0),
                height: Val::Percent(100.0),
                border_radius: BorderRadius::all(Val::Px(3.0)),
                ..default()
            },
        ));
}

/// Where along the bar (0 to 1) a cursor at `normalized` (bevy's: -0.5 to 0.5 from the
/// centre) points.
pub fn fraction(normalized: Vec2) -> f64 {
    f64::from(normalized.x + 0.5).clamp(0.0, 1.0)
}

fn scrub(
    bars: Query<(&Interaction, &RelativeCursorPosition), With<Scrubber>>,
    replay: Option<ResMut<Replay>>,
    mut updates: MessageWriter<TownUpdate>,
    mut chat: ResMut<ChatLog>,
) {
    let Some(mut replay) = replay else { return };
    for (interaction, cursor) in &bars {
        if *interaction == Interaction::Pressed
            && let Some(normalized) = cursor.normalized
        {
            let to = replay.time_at(fraction(normalized));
            seek(&mut replay, to, &mut updates, &mut chat);
        }
    }
}

fn fill(replay: Option<Res<Replay>>, mut played: Query<&mut Node, With<Played>>) {
    let Some(replay) = replay else { return };
    let width = Val::Percent((replay.progress() * 100.0) as f32);
    for mut node in &mut played {
        if node.width != width {
            node.width = width;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_shared::GameTime;

    fn replay() -> Replay {
        Replay {
            start: "08:00".parse().unwrap(),
            end: "10:00".parse().unwrap(),
            ..Replay::default()
        }
    }

    #[test]
    fn the_bar_maps_onto_the_run() {
        assert_eq!(fraction(Vec2::new(-0.5, 0.0)), 0.0);
        assert_eq!(fraction(Vec2::new(0.0, 0.1)), 0.5);
        assert_eq!(fraction(Vec2::new(0.7, 0.0)), 1.0, "past the end: the end");
        let mut replay = replay();
        let half = replay.time_at(0.5);
        assert_eq!(GameTime(half as u64), "09:00".parse().unwrap());
        replay.seek(half);
        assert_eq!(replay.progress(), 0.5);
    }

    /// Pressing the bar three quarters along plays from 09:30, and going back clears the chat.
    #[test]
    fn pressing_the_bar_seeks() {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .add_message::<TownUpdate>()
            .init_resource::<ChatLog>()
            .add_systems(Update, scrub);
        let mut at_nine_thirty = replay();
        at_nine_thirty.now = at_nine_thirty.time_at(0.9);
        app.insert_resource(at_nine_thirty);
        app.world_mut()
            .resource_mut::<ChatLog>()
            .push("Iris".into(), "hello".into());
        app.world_mut().spawn((
            Scrubber,
            Interaction::Pressed,
            RelativeCursorPosition {
                cursor_over: true,
                normalized: Some(Vec2::new(0.25, 0.0)),
            },
        ));
        app.update();
        let replay = app.world().resource::<Replay>();
        assert_eq!(GameTime(replay.now as u64), "09:30".parse().unwrap());
        assert!(app.world().resource::<ChatLog>().0.is_empty());
    }
}
