//! Types that the Agora server, the client and tools agree on.
//!
//! Everything here is plain data with no Bevy dependency, so a replay viewer, a research
//! notebook's helper or a modding tool can use it without pulling in the engine.

pub mod events;
pub mod persona;
pub mod protocol;
pub mod text;
pub mod tile;
pub mod tiled;
pub mod time;

pub use tile::TilePos;
pub use time::{ClockTime, GameTime};
