//! Positions on the town's tile grid.

use serde::{Deserialize, Serialize};

/// A tile on the map grid; `(0, 0)` is the top-left tile, `y` grows downwards (as in Tiled).
///
/// Serialised as a two-element array `[x, y]` to keep event logs short.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(from = "[u16; 2]", into = "[u16; 2]")]
pub struct TilePos {
    pub x: u16,
    pub y: u16,
}

impl TilePos {
    pub const fn new(x: u16, y: u16) -> Self {
        Self { x, y }
    }

    /// Chebyshev distance: the number of king moves between two tiles.
    pub fn chebyshev(self, other: TilePos) -> u16 {
        self.x.abs_diff(other.x).max(self.y.abs_diff(other.y))
    }

    /// Manhattan distance: the number of 4-neighbour steps between two tiles.
    pub fn manhattan(self, other: TilePos) -> u32 {
        u32::from(self.x.abs_diff(other.x)) + u32::from(self.y.abs_diff(other.y))
    }
}

impl From<[u16; 2]> for TilePos {
    fn from([x, y]: [u16; 2]) -> Self {
        Self { x, y }
    }
}

impl From<TilePos> for [u16; 2] {
    fn from(t: TilePos) -> Self {
        [t.x, t.y]
    }
}

impl std::fmt::Display for TilePos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {})", self.x, self.y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_pair() {
        let json = serde_json::to_string(&TilePos::new(3, 9)).unwrap();
        assert_eq!(json, "[3,9]");
        let back: TilePos = serde_json::from_str(&json).unwrap();
        assert_eq!(back, TilePos::new(3, 9));
    }

    #[test]
    fn distances() {
        let a = TilePos::new(1, 1);
        let b = TilePos::new(4, 3);
        assert_eq!(a.chebyshev(b), 3);
        assert_eq!(a.manhattan(b), 5);
    }
}
