//! `--screenshot PATH --frames N`: save frame N of the window to a PNG and exit, in any mode
//! (for docs and for tests). A frame that cannot be saved ends the client with an error.

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use std::path::PathBuf;

/// Which frame to save, and where.
#[derive(Resource, Clone, Debug)]
pub struct ScreenshotOptions {
    pub path: PathBuf,
    pub frame: u32,
}

pub fn plugin(app: &mut App) {
    app.add_systems(Last, capture);
}

fn capture(mut commands: Commands, options: Res<ScreenshotOptions>, mut frames: Local<u32>) {
    *frames += 1;
    if *frames != options.frame {
        return;
    }
    let path = options.path.clone();
    commands.spawn(Screenshot::primary_window()).observe(
        move |captured: On<ScreenshotCaptured>, mut exit: MessageWriter<AppExit>| match save(
            &captured.image,
            &path,
        ) {
            Ok(()) => {
                eprintln!("agora-client: saved {}", path.display());
                exit.write(AppExit::Success);
            }
            Err(e) => {
                eprintln!(
                    "agora-client: cannot save the screenshot {}: {e}",
                    path.display()
                );
                exit.write(AppExit::error());
            }
        },
    );
}

/// Writes the frame as an RGB PNG (its alpha is not transparency).
fn save(image: &Image, path: &std::path::Path) -> Result<(), String> {
    let rgba = image
        .clone()
        .try_into_dynamic()
        .map_err(|e| e.to_string())?
        .to_rgb8();
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), rgba.width(), rgba.height());
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer
        .write_image_data(rgba.as_raw())
        .map_err(|e| e.to_string())
}
