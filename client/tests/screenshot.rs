//! The real client in a real window (Xvfb, Mesa's software Vulkan) against a real server over
//! UDP on loopback: it connects with a token file, and its saved frame shows the map where
//! the avatar stands, the avatar in the middle, agents where the server has them, and the HUD.
//! Needs `scripts/install-render-deps` (`scripts/test` runs it).

use agora_client::town::actors::tint;
use agora_client::town::daylight::{NIGHT, darkness};
use agora_net::keys::ServerKey;
use agora_server::actors::players::Player;
use agora_server::agents::Agent;
use agora_server::world::Position;
use agora_shared::TilePos;
use agora_shared::protocol::EntityKind;
use agora_shared::tiled::TiledMap;
use bevy::prelude::*;
use common::{HEIGHT, TILE, WIDTH, ZOOM, client_args, map_file, program, server, spawn_below};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

/// Everyone is asleep in bed: nobody walks, so the test knows where each agent is drawn.
const NIGHT_AT: &str = "03:00";

/// An RGB frame.
struct Frame {
    width: u32,
    rgb: Vec<u8>,
}

impl Frame {
    fn read(path: &Path) -> Frame {
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut rgb).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        Frame {
            width: info.width,
            rgb,
        }
    }

    fn at(&self, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * self.width + x) * 3) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

fn close(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}

fn srgb8(color: Color) -> [u8; 3] {
    let c = color.to_srgba();
    [c.red, c.green, c.blue].map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
}

#[test]
fn the_client_draws_the_town_around_its_avatar_with_agents_and_the_hud() {
    let key = ServerKey::generate();
    let (mut app, addr) = server(&key, NIGHT_AT);
    spawn_below(&mut app, "Eleanor Price");
    let dir = tempfile::tempdir().unwrap();
    let token = common::token_file(&key, "ada", addr, dir.path());
    let frame_path = dir.path().join("frame.png");
    let mut client = Command::new(program("xvfb-run"))
        .args(["-a", "-s", &format!("-screen 0 {WIDTH}x{HEIGHT}x24")])
        .arg(env!("CARGO_BIN_EXE_agora-client"))
        .args(client_args(addr, &token))
        .arg("--screenshot")
        .arg(&frame_path)
        .args(["--frames", "240"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The server runs here, at its 20 Hz, until the client has saved its frame and quit. The
    // agents' tiles are kept as they were a few frames before the end (the client draws a
    // little behind, gliding).
    let started = Instant::now();
    let mut recent: Vec<Vec<(String, TilePos)>> = Vec::new();
    let status = loop {
        app.update();
        let agents: Vec<(String, TilePos)> = app
            .world_mut()
            .query_filtered::<(&Name, &Position), With<Agent>>()
            .iter(app.world())
            .map(|(name, p)| (name.to_string(), p.0))
            .collect();
        recent.push(agents);
        if recent.len() > 40 {
            recent.remove(0);
        }
        if let Some(status) = client.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(240) {
            let _ = client.kill();
            panic!("the client did not save its frame within 240 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::io::read_to_string(client.stderr.take().unwrap()).unwrap();
    assert!(status.success(), "client failed: {status}\n{stderr}");
    assert!(stderr.contains("saved"), "{stderr}");
    let frame = Frame::read(&frame_path);
    // Kept for a look (the note says what it shows).
    let _ = std::fs::copy(
        &frame_path,
        std::env::temp_dir().join("agora-client-frame.png"),
    );

    // The avatar stands in the middle of the screen (the camera follows it), drawn gold.
    let you = app
        .world_mut()
        .query_filtered::<&Position, With<Player>>()
        .single(app.world())
        .expect("ada's avatar is in the world")
        .0;
    let gold = srgb8(Color::srgb(1.0, 0.85, 0.25));
    let middle = (WIDTH / 2, HEIGHT / 2);
    let near_middle = (0..9)
        .flat_map(|dy| (0..9).map(move |dx| (middle.0 - 4 + dx, middle.1 - 4 + dy)))
        .filter(|&(x, y)| close(frame.at(x, y), gold, 40))
        .count();
    assert!(
        near_middle >= 20,
        "no gold avatar in the middle ({near_middle} of 81 pixels)"
    );

    // Around it, the map as the tileset draws it, at its place, under the night's shade:
    // sample a grid away from the HUD's panels and compare with the map's own picture.
    let night_time: agora_shared::ClockTime = NIGHT_AT.parse().unwrap();
    let dark = darkness(night_time.minutes());
    assert!(dark > 0.3, "03:00 is night");
    let under_shade = |[r, g, b]: [u8; 3]| {
        let (map, shade) = (
            LinearRgba::from(Srgba::rgb_u8(r, g, b)),
            LinearRgba::from(NIGHT),
        );
        srgb8(Color::from(map * (1.0 - dark) + shade * dark))
    };
    let tiled: TiledMap =
        serde_json::from_str(&std::fs::read_to_string(map_file()).unwrap()).unwrap();
    let sets = tiled.read_tilesets(&map_file()).unwrap();
    let (map_width, map_height, picture) = tiled.picture(&sets, TILE as u32);
    let centre = Vec2::new(
        (f32::from(you.x) + 0.5) * TILE,
        (f32::from(you.y) + 0.5) * TILE,
    );
    let (mut sampled, mut matched) = (0, 0);
    for sy in (120..HEIGHT - 240).step_by(23) {
        for sx in (60..WIDTH - 60).step_by(37) {
            let map_x = centre.x + (sx as f32 - middle.0 as f32) / ZOOM;
            let map_y = centre.y + (sy as f32 - middle.1 as f32) / ZOOM;
            if map_x < 0.0 || map_y < 0.0 || map_x >= map_width as f32 || map_y >= map_height as f32
            {
                continue;
            }
            let i = ((map_y as u32 * map_width + map_x as u32) * 4) as usize;
            let expected = under_shade([picture[i], picture[i + 1], picture[i + 2]]);
            sampled += 1;
            matched += usize::from(close(frame.at(sx, sy), expected, 24));
        }
    }
    assert!(sampled >= 100, "only {sampled} samples on the map");
    assert!(
        matched * 10 >= sampled * 7,
        "{matched} of {sampled} sampled pixels show the map where the avatar stands"
    );

    // Agents where the server had them, in their colours: of those that stood still for the
    // last 2 s (a walker is drawn a little behind), some in view and most of those drawn (one
    // may be under a label).
    let on_screen = |tile: TilePos| {
        let x = middle.0 as f32 + ((f32::from(tile.x) + 0.5) * TILE - centre.x) * ZOOM;
        let y = middle.1 as f32 + ((f32::from(tile.y) + 0.5) * TILE - centre.y) * ZOOM;
        (x >= 40.0 && y >= 100.0 && x < (WIDTH - 40) as f32 && y < (HEIGHT - 220) as f32)
            .then_some((x as u32, y as u32))
    };
    let agents: Vec<&(String, TilePos)> = (recent[0].iter())
        .filter(|agent| recent.iter().all(|then| then.contains(agent)))
        .collect();
    let (mut in_view, mut drawn) = (0, 0);
    let mut seen = Vec::new();
    for (name, tile) in agents.iter().copied() {
        let Some((x, y)) = on_screen(*tile) else {
            continue;
        };
        in_view += 1;
        let colour = srgb8(tint(EntityKind::Agent, name));
        let hits = (0..13)
            .flat_map(|dy| (0..13).map(move |dx| (x + dx - 6, y + dy - 6)))
            .filter(|&(px, py)| close(frame.at(px, py), colour, 40))
            .count();
        drawn += usize::from(hits >= 6);
        seen.push(format!(
            "{name} at {tile} -> ({x}, {y}): {:?}, drawn {:?}",
            colour,
            frame.at(x, y)
        ));
    }
    assert!(in_view >= 1, "no agent stood still in view: {agents:?}");
    assert!(
        drawn * 2 >= in_view,
        "{drawn} of {in_view} agents in view are drawn where the server has them: {seen:#?}"
    );

    // The HUD's clock panel, top left: a dark panel (the map shows through it a little) with
    // light text in it.
    let panel: Vec<[u8; 3]> = (14..40)
        .flat_map(|y| (14..200).map(move |x| (x, y)))
        .map(|(x, y)| frame.at(x, y))
        .collect();
    let darker = panel.iter().filter(|p| p.iter().all(|&c| c < 110)).count();
    let light = panel.iter().filter(|p| p.iter().all(|&c| c > 180)).count();
    assert!(
        darker * 2 > panel.len(),
        "no dark clock panel ({darker} of {}; {:?} {:?})",
        panel.len(),
        frame.at(16, 16),
        frame.at(150, 38)
    );
    assert!(
        light > 30,
        "no text in the clock panel ({light} light pixels)"
    );
}
