//! The map: the same Tiled file the server loads, drawn once into one texture (the town does
//! not change), with each sector's name over it.

use super::{TILE, z};
use agora_shared::tiled::TiledMap;
use bevy::asset::RenderAssetUsages;
use bevy::prelude::*;
use bevy::render::render_resource::{Extent3d, TextureDimension, TextureFormat};
use bevy::sprite::Anchor;
use std::path::{Path, PathBuf};

/// The map file to draw.
#[derive(Resource, Clone, Debug)]
pub struct MapFile(pub PathBuf);

/// The loaded map's size and places.
#[derive(Resource, Clone, Debug, Default)]
pub struct TownMap {
    /// In tiles.
    pub width: u32,
    pub height: u32,
    /// Each sector's name and its rectangle in world coordinates.
    pub sectors: Vec<(String, Rect)>,
}

/// A sector's name drawn on the map.
#[derive(Component)]
pub struct SectorLabel;

pub fn plugin(app: &mut App) {
    app.init_resource::<TownMap>()
        .add_systems(Startup, draw_map);
}

/// Reads the map and its tileset; a map that cannot be read ends the client with the reason.
fn draw_map(
    mut commands: Commands,
    file: Res<MapFile>,
    mut images: ResMut<Assets<Image>>,
    mut exit: MessageWriter<AppExit>,
) {
    let (town, picture) = match load(&file.0) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("agora-client: {e}");
            exit.write(AppExit::error());
            return;
        }
    };
    let size = Vec2::new(town.width as f32, town.height as f32) * TILE;
    commands.spawn((
        Name::new("map"),
        Sprite {
            image: images.add(picture),
            custom_size: Some(size),
            ..default()
        },
        Anchor::TOP_LEFT,
        Transform::from_xyz(0.0, 0.0, z::MAP),
    ));
    for (name, rect) in &town.sectors {
        commands.spawn((
            SectorLabel,
            Text2d::new(name.clone()),
            TextFont::from_font_size(20.0),
            TextColor(Color::srgba(1.0, 1.0, 1.0, 0.85)),
            crate::town::SHADOW,
            // Drawn at twice the size and shown at half: crisp when zoomed in.
            Transform::from_translation(Vec3::new(rect.center().x, rect.max.y - 6.0, z::LABELS))
                .with_scale(Vec3::splat(0.5)),
            Anchor::TOP_CENTER,
        ));
    }
    commands.insert_resource(town);
}

/// The map's size and sectors, and its picture as a texture.
pub fn load(path: &Path) -> Result<(TownMap, Image), String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the map {}: {e} (run from the repository's folder, or pass --map)",
            path.display()
        )
    })?;
    let tiled: TiledMap =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let tilesets = tiled.read_tilesets(path)?;
    let (width, height, rgba) = tiled.picture(&tilesets, TILE as u32);
    let image = Image::new(
        Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        TextureDimension::D2,
        rgba,
        TextureFormat::Rgba8UnormSrgb,
        RenderAssetUsages::RENDER_WORLD,
    );
    // Tiled gives rectangles in pixels of its own tile size, y down.
    let scale = Vec2::new(
        TILE / tiled.tilewidth.max(1) as f32,
        TILE / tiled.tileheight.max(1) as f32,
    );
    let sectors = (tiled.object_layer("sectors").into_iter())
        .flat_map(|layer| &layer.objects)
        .filter(|o| !o.name.is_empty() && o.width > 0.0 && o.height > 0.0)
        .map(|o| {
            let min = Vec2::new(o.x as f32, o.y as f32) * scale;
            let max = min + Vec2::new(o.width as f32, o.height as f32) * scale;
            (
                o.name.clone(),
                Rect::from_corners(Vec2::new(min.x, -max.y), Vec2::new(max.x, -min.y)),
            )
        })
        .collect();
    Ok((
        TownMap {
            width: tiled.width,
            height: tiled.height,
            sectors,
        },
        image,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/maps/maple_hollow.tmj")
    }

    #[test]
    fn the_shipped_map_loads_with_its_sectors() {
        let (town, image) = load(&shipped()).expect("the shipped map loads");
        assert_eq!((town.width, town.height), (120, 64));
        assert_eq!(image.width(), 120 * TILE as u32);
        assert!(
            town.sectors.iter().any(|(name, _)| name == "Willow Cafe"),
            "{:?}",
            town.sectors
        );
        // Every sector lies on the map (below y = 0, right of x = 0).
        for (name, rect) in &town.sectors {
            assert!(rect.min.x >= 0.0 && rect.max.y <= 0.0, "{name}: {rect:?}");
            assert!(
                rect.max.x <= 120.0 * TILE && rect.min.y >= -64.0 * TILE,
                "{name}"
            );
        }
    }

    #[test]
    fn a_missing_map_says_what_to_do() {
        let e = load(Path::new("no/such/map.tmj")).unwrap_err();
        assert!(e.contains("no/such/map.tmj") && e.contains("--map"), "{e}");
    }
}
