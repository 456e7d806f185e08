//! `--replay DIR`: a saved run's `events.jsonl` (from `sim` or `serve`) played back into the
//! town, with no server: the log becomes the same [`TownUpdate`]s the network gives ([`log`]),
//! and the inspector's questions are answered from it ([`minds`]). Space pauses, `+`/`-`
//! change the speed (1x to 1000x game time), PageUp/PageDown jump an hour, and the bar at the
//! top ([`scrubber`]) goes to any time of the run.

mod log;
pub mod minds;
pub mod scrubber;

use crate::ClientSystems;
use crate::net::{Link, Outgoing};
use crate::town::camera::fit_scale;
use crate::town::speech::ChatLog;
use crate::town::{TILE, TownMap, TownUpdate};
use agora_shared::GameTime;
use agora_shared::protocol::{ClientMessage, Inspection, ServerMessage};
use bevy::prelude::*;
use std::path::PathBuf;

pub use log::load;

/// Slowest and fastest playback, in game seconds per wall second.
pub const SPEEDS: [f64; 7] = [1.0, 10.0, 30.0, 60.0, 120.0, 300.0, 1000.0];
const HOUR_MS: u64 = 3_600_000;

/// What to play.
#[derive(Resource, Clone, Debug)]
pub struct ReplayOptions {
    pub dir: PathBuf,
    /// Where to start (default: the run's start).
    pub at: Option<GameTime>,
    /// Game seconds per wall second (default 60).
    pub speed: f64,
}

/// The run, as updates in game-time order, and where playback stands.
#[derive(Resource, Debug)]
pub struct Replay {
    pub world: String,
    pub start: GameTime,
    pub end: GameTime,
    updates: Vec<(GameTime, ServerMessage)>,
    minds: minds::Minds,
    /// Updates before this index have been applied.
    cursor: usize,
    /// The game time shown, in milliseconds.
    pub now: f64,
    pub speed: f64,
    pub playing: bool,
}

impl Default for Replay {
    /// Nothing to play yet, at 60x, playing.
    fn default() -> Self {
        Self {
            world: String::new(),
            start: GameTime(0),
            end: GameTime(0),
            updates: Vec::new(),
            minds: minds::Minds::default(),
            cursor: 0,
            now: 0.0,
            speed: 60.0,
            playing: true,
        }
    }
}

impl Replay {
    /// The updates due by the time shown, from the cursor on.
    fn due(&mut self) -> &[(GameTime, ServerMessage)] {
        let from = self.cursor;
        while self.cursor < self.updates.len() && self.updates[self.cursor].0.0 as f64 <= self.now {
            self.cursor += 1;
        }
        &self.updates[from..self.cursor]
    }

    /// Moves the time shown to `time` (clamped to the run); going back replays from the start.
    pub fn seek(&mut self, time: f64) -> bool {
        let time = time.clamp(self.start.0 as f64, self.end.0 as f64);
        let back = time < self.now;
        self.now = time;
        if back {
            self.cursor = 0;
        }
        back
    }

    /// The agent `id` as the log has it at `time` (what the inspector is answered).
    pub fn inspect(&self, id: agora_shared::protocol::NetId, time: GameTime) -> Option<Inspection> {
        self.minds.inspect(id, time)
    }

    /// How far through the run the time shown is, 0 to 1.
    pub fn progress(&self) -> f64 {
        let span = self.end.0.saturating_sub(self.start.0);
        if span == 0 {
            return 1.0;
        }
        ((self.now - self.start.0 as f64) / span as f64).clamp(0.0, 1.0)
    }

    /// The time `fraction` (0 to 1) of the way through the run.
    pub fn time_at(&self, fraction: f64) -> f64 {
        let span = self.end.0.saturating_sub(self.start.0) as f64;
        self.start.0 as f64 + fraction.clamp(0.0, 1.0) * span
    }

    pub fn faster(&mut self, steps: i32) {
        let at = SPEEDS
            .iter()
            .position(|s| *s >= self.speed)
            .unwrap_or(SPEEDS.len() - 1) as i32;
        self.speed = SPEEDS[(at + steps).clamp(0, SPEEDS.len() as i32 - 1) as usize];
    }
}

/// The replay's panel: where it stands, and its keys.
#[derive(Component)]
pub struct ReplayText;

pub fn plugin(app: &mut App) {
    app.init_resource::<Link>()
        .add_plugins(scrubber::plugin)
        .add_systems(Startup, open)
        .add_systems(
            Update,
            (controls, play).chain().in_set(ClientSystems::Receive),
        )
        .add_systems(Update, (fit, show).in_set(ClientSystems::Present))
        .add_systems(Update, answer_inspections.in_set(ClientSystems::Send));
}

/// Moves playback to `time`. Going back starts the town over, and its chat with it: the
/// updates up to `time` are played again from the start.
pub fn seek(
    replay: &mut Replay,
    time: f64,
    updates: &mut MessageWriter<TownUpdate>,
    chat: &mut ChatLog,
) {
    if replay.seek(time) {
        updates.write(TownUpdate::Reset);
        chat.0.clear();
    }
}

/// The inspector asks as it would ask a server; the log answers, as of the time shown.
fn answer_inspections(
    replay: Option<Res<Replay>>,
    mut asked: MessageReader<Outgoing>,
    mut updates: MessageWriter<TownUpdate>,
) {
    let Some(replay) = replay else { return };
    for Outgoing(message) in asked.read() {
        if let ClientMessage::Inspect { id } = message
            && let Some(inspection) = replay.inspect(*id, GameTime(replay.now as u64))
        {
            let answer = ServerMessage::Inspected(Box::new(inspection));
            updates.write(TownUpdate::Server(answer));
        }
    }
}

/// A replay starts with the whole town in view (the wheel zooms in).
fn fit(
    map: Res<TownMap>,
    windows: Query<&Window>,
    mut cameras: Query<&mut Projection>,
    mut done: Local<bool>,
) {
    let Ok(window) = windows.single() else { return };
    if *done || map.width == 0 {
        return;
    }
    let size = Vec2::new(map.width as f32, map.height as f32) * TILE;
    for mut projection in &mut cameras {
        if let Projection::Orthographic(ortho) = &mut *projection {
            ortho.scale = fit_scale(size, window.size());
            *done = true;
        }
    }
}

/// Where a replay stands, and its keys.
pub fn replay_line(replay: &Replay) -> String {
    format!(
        "Replay {} to {}, {}x{}\nSpace pause, +/- speed, PageUp/PageDown an hour\n\
         Click the bar at the top to go to any time",
        replay.start,
        replay.end,
        replay.speed,
        if replay.playing { "" } else { ", paused" }
    )
}

fn show(
    mut commands: Commands,
    replay: Option<Res<Replay>>,
    mut texts: Query<&mut Text, With<ReplayText>>,
) {
    let Some(replay) = replay else { return };
    let line = replay_line(&replay);
    match texts.single_mut() {
        Ok(mut text) if text.0 != line => text.0 = line,
        Ok(_) => {}
        Err(_) => {
            commands.spawn((
                ReplayText,
                Text::new(line),
                crate::hud::text(15.0),
                crate::hud::panel(),
                Node {
                    position_type: PositionType::Absolute,
                    right: Val::Px(10.0),
                    bottom: Val::Px(10.0),
                    padding: UiRect::axes(Val::Px(10.0), Val::Px(6.0)),
                    border_radius: BorderRadius::all(Val::Px(4.0)),
                    ..default()
                },
            ));
        }
    }
}

fn open(
    mut commands: Commands,
    options: Res<ReplayOptions>,
    mut link: ResMut<Link>,
    mut exit: MessageWriter<AppExit>,
) {
    match load(&options.dir) {
        Ok(mut replay) => {
            replay.speed = options.speed.clamp(SPEEDS[0], SPEEDS[SPEEDS.len() - 1]);
            if let Some(at) = options.at {
                replay.seek(at.0 as f64);
            }
            link.world = replay.world.clone();
            commands.insert_resource(replay);
        }
        Err(e) => {
            eprintln!("agora-client: {e}");
            exit.write(AppExit::error());
        }
    }
}

fn controls(
    keys: Res<ButtonInput<KeyCode>>,
    replay: Option<ResMut<Replay>>,
    mut updates: MessageWriter<TownUpdate>,
    mut chat: ResMut<ChatLog>,
) {
    let Some(mut replay) = replay else { return };
    if keys.just_pressed(KeyCode::Space) {
        replay.playing = !replay.playing;
    }
    if keys.just_pressed(KeyCode::Equal) || keys.just_pressed(KeyCode::NumpadAdd) {
        replay.faster(1);
    }
    if keys.just_pressed(KeyCode::Minus) || keys.just_pressed(KeyCode::NumpadSubtract) {
        replay.faster(-1);
    }
    for (key, hours) in [(KeyCode::PageUp, 1.0), (KeyCode::PageDown, -1.0)] {
        if keys.just_pressed(key) {
            let to = replay.now + hours * HOUR_MS as f64;
            seek(&mut replay, to, &mut updates, &mut chat);
        }
    }
}

/// Advances the time shown and hands on what happened by then, with the clock.
fn play(time: Res<Time>, replay: Option<ResMut<Replay>>, mut updates: MessageWriter<TownUpdate>) {
    let Some(mut replay) = replay else { return };
    if replay.playing {
        let next = replay.now + time.delta_secs_f64() * replay.speed * 1000.0;
        replay.now = next.min(replay.end.0 as f64);
    }
    let now = GameTime(replay.now as u64);
    let due: Vec<ServerMessage> = replay.due().iter().map(|(_, m)| m.clone()).collect();
    for message in due {
        updates.write(TownUpdate::Server(message));
    }
    updates.write(TownUpdate::Server(ServerMessage::Positions {
        time: now,
        moved: vec![],
    }));
}
