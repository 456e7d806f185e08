//! The town as the player sees it: the map, everyone in view, what they say, the light of the
//! hour. Its only input is [`TownUpdate`]s (from the server, or from a replayed log), so
//! everything drawn here is drawn the same live and in a replay.

pub mod actors;
pub mod camera;
pub mod daylight;
pub mod map;
pub mod speech;

use agora_shared::protocol::ServerMessage;
use agora_shared::{GameTime, TilePos};
use bevy::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

pub use map::{MapFile, TownMap};

/// Pixels per tile edge in world units: the shipped tileset's tile size. Maps with other tile
/// sizes are drawn scaled to it.
pub const TILE: f32 = 16.0;

/// The shadow under text on the map: one pixel, so small text stays readable on any ground.
pub const SHADOW: bevy::sprite::Text2dShadow = bevy::sprite::Text2dShadow {
    offset: Vec2::new(1.0, -1.0),
    color: Color::srgba(0.0, 0.0, 0.0, 0.8),
};

/// Draw order, back to front.
pub mod z {
    pub const MAP: f32 = 0.0;
    pub const LABELS: f32 = 1.0;
    pub const NIGHT: f32 = 2.0;
    pub const MARKER: f32 = 3.0;
    pub const ACTORS: f32 = 10.0;
    /// Speech above every actor (actors sit at 10 plus a small per-row offset).
    pub const SPEECH: f32 = 50.0;
}

/// Something that changes the town: a server message, or "forget everything" (the connection
/// was lost; a new one sends the view again).
#[derive(Message, Clone, Debug)]
pub enum TownUpdate {
    Server(ServerMessage),
    Reset,
}

/// The game clock as last heard, and when: it runs on between updates at the server's pace.
#[derive(Resource, Clone, Debug, Default)]
pub struct Clock {
    pub time: Option<GameTime>,
    heard_at: Option<Instant>,
    /// Game milliseconds per wall second (from the welcome's tick length and the 20 Hz tick).
    pub game_ms_per_second: f64,
}

impl Clock {
    /// The game time now, estimated from the last update.
    pub fn now(&self) -> Option<GameTime> {
        let time = self.time?;
        let since = self.heard_at.map_or(0.0, |t| t.elapsed().as_secs_f64());
        // Never more than a few seconds ahead of what the server said.
        let ahead = (since.min(5.0) * self.game_ms_per_second) as u64;
        Some(GameTime(time.0 + ahead))
    }

    pub fn heard(&mut self, time: GameTime) {
        self.time = Some(time);
        self.heard_at = Some(Instant::now());
    }
}

/// The server's tick rate (docs/protocol.md): positions and the clock arrive this often.
pub const SERVER_HZ: f64 = 20.0;

/// The centre of `tile` in world coordinates (Bevy's y points up, the map's down).
pub fn tile_center(tile: TilePos) -> Vec2 {
    Vec2::new(
        (f32::from(tile.x) + 0.5) * TILE,
        -(f32::from(tile.y) + 0.5) * TILE,
    )
}

/// The tile under a world point, if it is on a `width` x `height` map.
pub fn tile_at(point: Vec2, width: u32, height: u32) -> Option<TilePos> {
    let (x, y) = ((point.x / TILE).floor(), (-point.y / TILE).floor());
    (x >= 0.0 && y >= 0.0 && x < width as f32 && y < height as f32)
        .then(|| TilePos::new(x as u16, y as u16))
}

pub fn plugin(app: &mut App) {
    app.add_message::<TownUpdate>()
        .init_resource::<Clock>()
        .add_systems(Update, keep_time.in_set(crate::ClientSystems::Apply))
        .add_plugins((
            map::plugin,
            actors::plugin,
            speech::plugin,
            daylight::plugin,
            camera::plugin,
        ));
}

fn keep_time(mut clock: ResMut<Clock>, mut updates: MessageReader<TownUpdate>) {
    for update in updates.read() {
        match update {
            TownUpdate::Server(ServerMessage::Welcome { time, tick_ms, .. }) => {
                clock.game_ms_per_second = f64::from(*tick_ms) * SERVER_HZ;
                clock.heard(*time);
            }
            TownUpdate::Server(ServerMessage::Positions { time, .. }) => clock.heard(*time),
            TownUpdate::Reset => *clock = Clock::default(),
            _ => {}
        }
    }
}

/// Where the map file is, for [`map`].
pub fn default_map() -> PathBuf {
    PathBuf::from("assets/maps/maple_hollow.tmj")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_and_world_points_agree() {
        for tile in [
            TilePos::new(0, 0),
            TilePos::new(7, 3),
            TilePos::new(119, 63),
        ] {
            assert_eq!(tile_at(tile_center(tile), 120, 64), Some(tile));
        }
        assert_eq!(tile_at(Vec2::new(-1.0, -1.0), 120, 64), None);
        assert_eq!(tile_at(Vec2::new(1.0, 1.0), 120, 64), None, "above the map");
        assert_eq!(tile_at(Vec2::new(120.0 * TILE, -1.0), 120, 64), None);
        // Up on screen is up the map: tile (0, 1) is below tile (0, 0).
        assert!(tile_center(TilePos::new(0, 1)).y < tile_center(TilePos::new(0, 0)).y);
    }
}
