//! What is said in view: a bubble over the speaker for a few seconds, and a line in the chat
//! log that the HUD shows.

use super::actors::{Actor, Actors};
use super::{TILE, TownUpdate, z};
use crate::ClientSystems;
use agora_shared::protocol::ServerMessage;
use bevy::prelude::*;
use bevy::sprite::Anchor;
use bevy::text::TextBounds;
use std::collections::VecDeque;
use std::time::Duration;

/// How long a bubble stays.
pub const BUBBLE_TIME: Duration = Duration::from_secs(6);
/// Lines the chat log keeps.
pub const LOG_LINES: usize = 50;
/// Widest bubble, in world units (text wraps inside it).
const BUBBLE_WIDTH: f32 = 110.0;

/// Lines said in view, oldest first: (speaker, words).
#[derive(Resource, Default, Debug)]
pub struct ChatLog(pub VecDeque<(String, String)>);

impl ChatLog {
    pub fn push(&mut self, speaker: String, text: String) {
        if self.0.len() == LOG_LINES {
            self.0.pop_front();
        }
        self.0.push_back((speaker, text));
    }
}

/// A speech bubble and when it goes.
#[derive(Component)]
pub struct Bubble(Timer);

pub fn plugin(app: &mut App) {
    app.init_resource::<ChatLog>()
        // After the actors, so a line from one who just came into view finds its speaker.
        .add_systems(
            Update,
            hear.after(super::actors::apply)
                .in_set(ClientSystems::Apply),
        )
        .add_systems(Update, fade.in_set(ClientSystems::Present));
}

fn hear(
    mut commands: Commands,
    mut updates: MessageReader<TownUpdate>,
    actors: Res<Actors>,
    speakers: Query<(&Actor, Option<&Children>)>,
    bubbles: Query<(), With<Bubble>>,
    mut log: ResMut<ChatLog>,
) {
    for update in updates.read() {
        let TownUpdate::Server(ServerMessage::Said { id, text }) = update else {
            continue;
        };
        let Some(&speaker) = actors.0.get(id) else {
            continue;
        };
        let Ok((actor, children)) = speakers.get(speaker) else {
            continue;
        };
        log.push(actor.name.clone(), text.clone());
        // One bubble per speaker: the new line replaces the old.
        for child in children.into_iter().flatten() {
            if bubbles.contains(*child) {
                commands.entity(*child).despawn();
            }
        }
        commands.entity(speaker).with_child((
            Bubble(Timer::new(BUBBLE_TIME, TimerMode::Once)),
            Text2d::new(text.clone()),
            TextFont::from_font_size(12.0),
            TextColor(Color::srgb(0.08, 0.08, 0.1)),
            TextBackgroundColor(Color::srgba(1.0, 1.0, 0.95, 0.92)),
            TextBounds::new_horizontal(BUBBLE_WIDTH * 2.0),
            Anchor::BOTTOM_CENTER,
            Transform::from_xyz(0.0, TILE * 1.2, z::SPEECH).with_scale(Vec3::splat(0.5)),
        ));
    }
}

fn fade(
    mut commands: Commands,
    time: Res<Time>,
    mut bubbles: Query<(
        Entity,
        &mut Bubble,
        &mut TextColor,
        &mut TextBackgroundColor,
    )>,
) {
    for (entity, mut bubble, mut ink, mut paper) in &mut bubbles {
        bubble.0.tick(time.delta());
        if bubble.0.is_finished() {
            commands.entity(entity).despawn();
            continue;
        }
        // The last second fades out.
        let left = bubble.0.remaining_secs().min(1.0);
        ink.0.set_alpha(left);
        paper.0.set_alpha(0.92 * left);
    }
}
