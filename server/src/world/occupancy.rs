//! Who stands on which tile: the spatial index perception and crowding use.

use super::{Position, TownMap};
use agora_shared::TilePos;
use bevy::prelude::*;

/// Entities on each tile. Several may share a tile (agents pass through each other, as in
/// the paper's town); kept in sync by observers on [`Position`] and by the movement system.
#[derive(Resource, Debug, Default)]
pub struct Occupancy {
    width: u16,
    cells: Vec<Vec<Entity>>,
}

impl Occupancy {
    pub fn new(width: u16, height: u16) -> Self {
        Self {
            width,
            cells: vec![Vec::new(); width as usize * height as usize],
        }
    }

    /// Index of a tile in `cells`; `None` off the map.
    fn index(&self, t: TilePos) -> Option<usize> {
        let i = t.y as usize * self.width as usize + t.x as usize;
        (t.x < self.width && i < self.cells.len()).then_some(i)
    }

    fn cell(&mut self, t: TilePos) -> Option<&mut Vec<Entity>> {
        self.index(t).map(|i| &mut self.cells[i])
    }

    pub fn add(&mut self, e: Entity, t: TilePos) {
        if let Some(cell) = self.cell(t) {
            cell.push(e);
        }
    }

    pub fn remove(&mut self, e: Entity, t: TilePos) {
        if let Some(cell) = self.cell(t)
            && let Some(i) = cell.iter().position(|&x| x == e)
        {
            cell.swap_remove(i);
        }
    }

    pub fn relocate(&mut self, e: Entity, from: TilePos, to: TilePos) {
        self.remove(e, from);
        self.add(e, to);
    }

    /// Entities on a tile (unordered).
    pub fn at(&self, t: TilePos) -> &[Entity] {
        self.index(t).map_or(&[], |i| self.cells[i].as_slice())
    }

    /// Entities within `radius` tiles (Chebyshev) of `center`, e.g. an agent's vision.
    pub fn within(&self, center: TilePos, radius: u16) -> impl Iterator<Item = Entity> + '_ {
        let height = (self.cells.len() / self.width.max(1) as usize) as u16;
        let (x0, y0) = (
            center.x.saturating_sub(radius),
            center.y.saturating_sub(radius),
        );
        let x1 = center
            .x
            .saturating_add(radius)
            .min(self.width.saturating_sub(1));
        let y1 = center
            .y
            .saturating_add(radius)
            .min(height.saturating_sub(1));
        (y0..=y1)
            .flat_map(move |y| (x0..=x1).map(move |x| TilePos::new(x, y)))
            .flat_map(|t| self.at(t).iter().copied())
    }
}

pub fn plugin(app: &mut App) {
    let size = app
        .world()
        .get_resource::<TownMap>()
        .map(|m| (m.width, m.height));
    if let Some((w, h)) = size {
        app.insert_resource(Occupancy::new(w, h));
    } else {
        app.init_resource::<Occupancy>();
    }
    app.add_observer(enter_tile).add_observer(leave_tile);
}

fn enter_tile(
    on: On<Add, Position>,
    positions: Query<&Position>,
    mut occupancy: ResMut<Occupancy>,
) {
    if let Ok(p) = positions.get(on.entity) {
        occupancy.add(on.entity, p.0);
    }
}

fn leave_tile(
    on: On<Remove, Position>,
    positions: Query<&Position>,
    mut occupancy: ResMut<Occupancy>,
) {
    if let Ok(p) = positions.get(on.entity) {
        occupancy.remove(on.entity, p.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_spawns_moves_and_despawns() {
        let mut app = App::new();
        app.insert_resource(Occupancy::new(8, 8))
            .add_observer(enter_tile)
            .add_observer(leave_tile);
        let t = TilePos::new(2, 3);
        let e = app.world_mut().spawn(Position(t)).id();
        assert_eq!(app.world().resource::<Occupancy>().at(t), &[e]);
        let near: Vec<_> = app
            .world()
            .resource::<Occupancy>()
            .within(TilePos::new(4, 4), 2)
            .collect();
        assert_eq!(near, vec![e]);
        assert_eq!(
            app.world()
                .resource::<Occupancy>()
                .within(TilePos::new(6, 6), 2)
                .count(),
            0
        );
        app.world_mut().despawn(e);
        assert!(app.world().resource::<Occupancy>().at(t).is_empty());
    }
}
