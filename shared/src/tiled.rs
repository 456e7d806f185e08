//! The subset of the Tiled JSON map format (`.tmj`) that Agora reads.
//!
//! Only what the server needs is modelled; everything else in the file is ignored, so maps
//! saved by any recent Tiled version load. See `docs/maps.md` for the layers a town needs.

use serde::Deserialize;

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
