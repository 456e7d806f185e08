//! `--replay DIR`: a saved run's `events.jsonl` (from `sim` or `serve`) played back into the
//! town, with no server: the log becomes the same [`TownUpdate`]s the network gives. Space
//! pauses, `+`/`-` change the speed (1x to 1000x game time), PageUp/PageDown jump an hour.

use crate::ClientSystems;
use crate::net::Link;
use crate::town::camera::fit_scale;
use crate::town::{TILE, TownMap, TownUpdate};
use agora_shared::events::{Event, EventRecord};
use agora_shared::protocol::{EntityKind, NetId, ServerMessage};
use agora_shared::{GameTime, TilePos};
use bevy::prelude::*;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// A line longer than this is no event (the run reports' bound too).
const MAX_LINE_BYTES: u64 = 4 << 20;
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
    /// Updates before this index have been applied.
    cursor: usize,
    /// The game time shown, in milliseconds.
    pub now: f64,
    pub speed: f64,
    pub playing: bool,
}

/// Reads a run's log; lines that are not events are skipped (and counted on stderr).
pub fn load(dir: &Path) -> Result<Replay, String> {
    let path = dir.join("events.jsonl");
    let file = std::fs::File::open(&path).map_err(|e| {
        format!(
            "cannot read {}: {e} (a run's folder holds events.jsonl)",
            path.display()
        )
    })?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut ids: HashMap<String, NetId> = HashMap::new();
    let mut id_of = |actor: &str| {
        let next = NetId(ids.len() as u32 + 1);
        *ids.entry(actor.to_string()).or_insert(next)
    };
    let mut replay = Replay {
        world: String::new(),
        start: GameTime(0),
        end: GameTime(0),
        updates: Vec::new(),
        cursor: 0,
        now: 0.0,
        speed: 60.0,
        playing: true,
    };
    let (mut line, mut number, mut skipped) = (String::new(), 0usize, 0usize);
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES)
            .read_line(&mut line)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        number += 1;
        if n as u64 == MAX_LINE_BYTES && !line.ends_with('\n') {
            return Err(format!(
                "{}:{number}: a line longer than {MAX_LINE_BYTES} bytes: not an event log",
                path.display()
            ));
        }
        let Ok(record) = serde_json::from_str::<EventRecord>(line.trim_end()) else {
            skipped += 1;
            continue;
        };
        let time = record.time;
        replay.end = replay.end.max(time);
        let message = match record.event {
            Event::RunStarted { map, start, .. } => {
                replay.world = map;
                replay.start = start;
                continue;
            }
            Event::AgentSpawned {
                agent, name, tile, ..
            } => spawned(id_of(&agent), EntityKind::Agent, name, tile),
            Event::PlayerJoined { player, name, tile } => {
                spawned(id_of(&player), EntityKind::Player, name, tile)
            }
            Event::PlayerLeft { player } => ServerMessage::Despawned { id: id_of(&player) },
            Event::Move { agent, to, .. } => ServerMessage::Positions {
                time,
                moved: vec![(id_of(&agent), to)],
            },
            Event::Activity {
                agent,
                description,
                emoji,
                ..
            } => ServerMessage::Activity {
                id: id_of(&agent),
                activity: description,
                emoji,
            },
            Event::Said { speaker, text, .. } => ServerMessage::Said {
                id: id_of(&speaker),
                text,
            },
            _ => continue,
        };
        replay.updates.push((time, message));
    }
    if number == 0 {
        return Err(format!("{} is empty: no run to replay", path.display()));
    }
    if skipped > 0 {
        eprintln!(
            "agora-client: {skipped} of {number} lines of {} are not events; skipped",
            path.display()
        );
    }
    if replay.updates.is_empty() {
        return Err(format!("{} has no agents to show", path.display()));
    }
    // A log is in time order; a stable sort keeps a tick's order if one was not.
    replay.updates.sort_by_key(|(time, _)| *time);
    replay.now = replay.start.0 as f64;
    Ok(replay)
}

fn spawned(id: NetId, kind: EntityKind, name: String, tile: TilePos) -> ServerMessage {
    ServerMessage::Spawned {
        id,
        kind,
        name,
        tile,
        activity: String::new(),
        emoji: String::new(),
        team: None,
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
        .add_systems(Startup, open)
        .add_systems(
            Update,
            (controls, play).chain().in_set(ClientSystems::Receive),
        )
        .add_systems(Update, (fit, show).in_set(ClientSystems::Present));
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
        "Replay {} to {}, {}x{}\nSpace pause, +/- speed, PageUp/PageDown an hour",
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
            if replay.seek(to) {
                updates.write(TownUpdate::Reset);
            }
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
