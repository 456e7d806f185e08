//! The subset of the Tiled JSON map format (`.tmj`) that Agora reads.
//!
//! Only what the server and the client need is modelled; everything else in the file is
//! ignored, so maps saved by any recent Tiled version load. See `docs/maps.md` for the layers
//! a town needs. [`TiledMap::picture`] draws a map from its tilesets, for the client.

use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Deserialize)]
pub struct TiledMap {
    pub orientation: String,
    #[serde(default)]
    pub infinite: bool,
    pub width: u32,
    pub height: u32,
    pub tilewidth: u32,
    pub tileheight: u32,
    #[serde(default)]
    pub properties: Vec<Property>,
    pub layers: Vec<Layer>,
    /// Looks only (the server reads no tile's image); run reports colour the map with them.
    #[serde(default)]
    pub tilesets: Vec<Tileset>,
}

/// A tileset embedded in the map: its image and tile size (external `.tsx` sets have no
/// `image` here).
#[derive(Debug, Deserialize)]
pub struct Tileset {
    pub firstgid: u32,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub tilewidth: u32,
    #[serde(default)]
    pub tileheight: u32,
}

#[derive(Debug, Deserialize)]
pub struct Property {
    pub name: String,
    #[serde(default)]
    pub value: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Layer {
    #[serde(rename = "tilelayer")]
    Tiles(TileLayer),
    #[serde(rename = "objectgroup")]
    Objects(ObjectLayer),
    /// Image layers and groups are decoration for the client; the server skips them.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub struct TileLayer {
    pub name: String,
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
    /// Global tile ids, row by row; absent for base64-encoded layers, which we reject.
    #[serde(default)]
    pub data: Option<serde_json::Value>,
    #[serde(default)]
    pub encoding: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ObjectLayer {
    pub name: String,
    #[serde(default)]
    pub objects: Vec<TiledObject>,
}

#[derive(Debug, Deserialize)]
pub struct TiledObject {
    #[serde(default)]
    pub id: u32,
    #[serde(default)]
    pub name: String,
    pub x: f64,
    pub y: f64,
    #[serde(default)]
    pub width: f64,
    #[serde(default)]
    pub height: f64,
    #[serde(default)]
    pub point: bool,
}

impl TiledMap {
    pub fn string_property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.value.as_str())
    }

    pub fn tile_layer(&self, name: &str) -> Option<&TileLayer> {
        self.layers.iter().find_map(|l| match l {
            Layer::Tiles(t) if t.name == name => Some(t),
            _ => None,
        })
    }

    /// Each tile layer's global tile ids, bottom layer first (layers without a CSV data
    /// array are skipped).
    pub fn tile_layers(&self) -> impl Iterator<Item = Vec<u32>> + '_ {
        self.layers.iter().filter_map(|l| match l {
            Layer::Tiles(t) => Some(
                t.data
                    .as_ref()?
                    .as_array()?
                    .iter()
                    .map(|v| v.as_u64().unwrap_or(0) as u32)
                    .collect(),
            ),
            _ => None,
        })
    }

    pub fn object_layer(&self, name: &str) -> Option<&ObjectLayer> {
        self.layers.iter().find_map(|l| match l {
            Layer::Objects(o) if o.name == name => Some(o),
            _ => None,
        })
    }
}

/// Tiled keeps flip flags in the top bits of a gid; these are the id.
pub const GID_MASK: u32 = 0x0fff_ffff;

/// A tileset's image, decoded to 8-bit RGBA.
#[derive(Clone, Debug)]
pub struct TilesetImage {
    pub firstgid: u32,
    pub tile_width: u32,
    pub tile_height: u32,
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

impl TilesetImage {
    /// Decodes `set`'s PNG, named relative to the folder of the map (`map_dir`).
    pub fn read(set: &Tileset, map_dir: &Path) -> Result<Self, String> {
        let Some(image) = &set.image else {
            return Err(format!(
                "the tileset at gid {} has no image in the map (external .tsx tilesets are not read)",
                set.firstgid
            ));
        };
        let file = map_dir.join(image);
        let error = |e: &dyn std::fmt::Display| format!("tileset {}: {e}", file.display());
        let reader = std::fs::File::open(&file).map_err(|e| error(&e))?;
        let mut decoder = png::Decoder::new(std::io::BufReader::new(reader));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().map_err(|e| error(&e))?;
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| error(&"too big"))?;
        let mut pixels = vec![0; size];
        let frame = reader.next_frame(&mut pixels).map_err(|e| error(&e))?;
        if set.tilewidth == 0 || set.tileheight == 0 {
            return Err(error(&"the map gives it no tile size"));
        }
        let channels = frame.color_type.samples();
        let rgba = pixels[..frame.buffer_size()]
            .chunks_exact(channels)
            .flat_map(|p| match *p {
                [g] => [g, g, g, 255],
                [g, a] => [g, g, g, a],
                [r, g, b] => [r, g, b, 255],
                [r, g, b, a, ..] => [r, g, b, a],
                _ => [0, 0, 0, 0],
            })
            .collect();
        Ok(Self {
            firstgid: set.firstgid,
            tile_width: set.tilewidth,
            tile_height: set.tileheight,
            width: frame.width,
            height: frame.height,
            rgba,
        })
    }

    /// How many tiles the image holds.
    pub fn tiles(&self) -> u32 {
        (self.width / self.tile_width) * (self.height / self.tile_height)
    }

    /// Pixel (x, y) of tile `index` (row by row from the top left), if both exist.
    pub fn pixel(&self, index: u32, x: u32, y: u32) -> Option<[u8; 4]> {
        let columns = self.width / self.tile_width;
        if index >= self.tiles() || x >= self.tile_width || y >= self.tile_height {
            return None;
        }
        let px = (index % columns) * self.tile_width + x;
        let py = (index / columns) * self.tile_height + y;
        let at = (py as usize * self.width as usize + px as usize) * 4;
        let p = self.rgba.get(at..at + 4)?;
        Some([p[0], p[1], p[2], p[3]])
    }

    /// The tile a gid names in this set, if it is one of its.
    pub fn index_of(&self, gid: u32) -> Option<u32> {
        let gid = gid & GID_MASK;
        (gid >= self.firstgid && gid - self.firstgid < self.tiles()).then(|| gid - self.firstgid)
    }
}

impl TiledMap {
    /// Every tileset's image, read from beside the map at `map_path`.
    pub fn read_tilesets(&self, map_path: &Path) -> Result<Vec<TilesetImage>, String> {
        let dir = map_path.parent().unwrap_or(Path::new("."));
        self.tilesets
            .iter()
            .map(|set| TilesetImage::read(set, dir))
            .collect()
    }

    /// The whole map as one RGBA picture, `tile` pixels per tile edge: every tile layer drawn
    /// bottom first, each tile its tileset's pixels (scaled to `tile` by nearest pixel), alpha
    /// blended over what is below. Returns (width, height, pixels).
    pub fn picture(&self, tilesets: &[TilesetImage], tile: u32) -> (u32, u32, Vec<u8>) {
        let (width, height) = (self.width * tile, self.height * tile);
        let mut rgba = vec![0u8; width as usize * height as usize * 4];
        let cells = self.width as usize * self.height as usize;
        for layer in self.tile_layers() {
            for (cell, &gid) in layer.iter().enumerate().take(cells) {
                let Some((set, index)) = tilesets
                    .iter()
                    .find_map(|s| s.index_of(gid).map(|i| (s, i)))
                else {
                    continue;
                };
                let (cx, cy) = (cell as u32 % self.width, cell as u32 / self.width);
                for y in 0..tile {
                    for x in 0..tile {
                        let source =
                            set.pixel(index, x * set.tile_width / tile, y * set.tile_height / tile);
                        let Some([r, g, b, a]) = source else { continue };
                        let at = (((cy * tile + y) * width + cx * tile + x) * 4) as usize;
                        let below = &mut rgba[at..at + 4];
                        let alpha = u32::from(a);
                        for (c, value) in [r, g, b].into_iter().enumerate() {
                            below[c] = ((u32::from(value) * alpha
                                + u32::from(below[c]) * (255 - alpha))
                                / 255) as u8;
                        }
                        below[3] = below[3].max(a);
                    }
                }
            }
        }
        (width, height, rgba)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> (TiledMap, std::path::PathBuf) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/maps/maple_hollow.tmj");
        let text = std::fs::read_to_string(&path).unwrap();
        (serde_json::from_str(&text).unwrap(), path)
    }

    #[test]
    fn the_picture_of_a_tile_is_its_tileset_tile() {
        let (map, path) = shipped();
        let sets = map.read_tilesets(&path).unwrap();
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].tiles(), 5);
        let (w, h, rgba) = map.picture(&sets, 16);
        assert_eq!((w, h), (map.width * 16, map.height * 16));
        let layers: Vec<Vec<u32>> = map.tile_layers().collect();
        // Pixel (5, 9) of the top-most layer's tile in each of a few cells.
        for cell in [0usize, 77, 3_000, layers[0].len() - 1] {
            let gid = layers
                .iter()
                .rev()
                .map(|l| l[cell])
                .find(|&g| g & GID_MASK != 0);
            let Some(gid) = gid else { continue };
            let expected = sets[0].pixel(sets[0].index_of(gid).unwrap(), 5, 9).unwrap();
            let (cx, cy) = (cell as u32 % map.width, cell as u32 / map.width);
            let at = (((cy * 16 + 9) * w + cx * 16 + 5) * 4) as usize;
            if expected[3] == 255 {
                assert_eq!(&rgba[at..at + 4], &expected, "cell {cell}");
            }
        }
        // Nearest-pixel scaling: an 8-pixel picture samples every other source pixel.
        let (w8, _, small) = map.picture(&sets, 8);
        let (x, y) = (3u32, 2u32);
        assert_eq!(
            &small[((y * w8 + x) * 4) as usize..][..3],
            &rgba[(((y * 2) * w + x * 2) * 4) as usize..][..3]
        );
        assert!(sets[0].index_of(0).is_none(), "gid 0 is no tile");
        assert!(sets[0].index_of(6).is_none(), "past the set");
    }
}
