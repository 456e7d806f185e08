//! The replay viewer in a real window (Xvfb, Mesa's software Vulkan), with no server: a
//! routine day of the shipped town is run, then its log is shown at two points of the day.
//! At each, agents are drawn where the log has them at that time, and they are not all where
//! they were at the other. Needs `scripts/install-render-deps` (`scripts/test` runs it).

use agora_client::town::actors::tint;
use agora_client::town::camera::fit_scale;
use agora_server::sim::{self, SimConfig};
use agora_shared::events::{Event, EventRecord};
use agora_shared::protocol::EntityKind;
use agora_shared::{GameTime, TilePos};
use bevy::math::Vec2;
use common::{HEIGHT, TILE, WIDTH, assets, map_file, program};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

mod common;

/// Every agent's name and tile at `at`, as the log has it.
fn tiles_at(log: &Path, at: GameTime) -> BTreeMap<String, TilePos> {
    let (mut names, mut tiles) = (BTreeMap::new(), BTreeMap::new());
    for line in std::fs::read_to_string(log).unwrap().lines() {
        let record: EventRecord = serde_json::from_str(line).unwrap();
        if record.time > at {
            break;
        }
        match record.event {
            Event::AgentSpawned {
                agent, name, tile, ..
            } => {
                names.insert(agent.clone(), name);
                tiles.insert(agent, tile);
            }
            Event::Move { agent, to, .. } => {
                tiles.insert(agent, to);
            }
            _ => {}
        }
    }
    tiles
        .into_iter()
        .map(|(agent, tile)| (names[&agent].clone(), tile))
        .collect()
}

/// Replays `run` from `at` (hardly moving: 1 game second per second) and saves a frame;
/// `extra`: more of the client's arguments.
fn frame_at(run: &Path, at: &str, out: &Path, extra: &[&str]) -> Vec<u8> {
    let output = Command::new(program("xvfb-run"))
        .args(["-a", "-s", &format!("-screen 0 {WIDTH}x{HEIGHT}x24")])
        .arg(env!("CARGO_BIN_EXE_agora-client"))
        .arg("--replay")
        .arg(run)
        .args(["--at", at, "--speed", "1"])
        .arg("--map")
        .arg(map_file())
        .arg("--window")
        .arg(format!("{WIDTH}x{HEIGHT}"))
        .arg("--screenshot")
        .arg(out)
        .args(["--frames", "200"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let name = out.file_name().unwrap().to_string_lossy();
    let _ = std::fs::copy(
        out,
        std::env::temp_dir().join(format!("agora-replay-{name}")),
    );
    assert!(
        output.status.success(),
        "replay at {at}: {}\n{stderr}",
        output.status
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(out).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut rgb).unwrap();
    assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
    rgb
}

/// Of the agents the log puts in the frame at `at`, how many are drawn there in their colour.
fn drawn(rgb: &[u8], tiles: &BTreeMap<String, TilePos>, map: (u32, u32)) -> (usize, usize) {
    // With no avatar, the camera looks at the map's middle, and a replay shows all of it.
    let centre = (map.0 as f32 * TILE / 2.0, map.1 as f32 * TILE / 2.0);
    let zoom = 1.0
        / fit_scale(
            Vec2::new(map.0 as f32, map.1 as f32) * TILE,
            Vec2::new(WIDTH as f32, HEIGHT as f32),
        );
    let (mut in_view, mut drawn) = (0, 0);
    for (name, tile) in tiles {
        let x = WIDTH as f32 / 2.0 + ((f32::from(tile.x) + 0.5) * TILE - centre.0) * zoom;
        let y = HEIGHT as f32 / 2.0 + ((f32::from(tile.y) + 0.5) * TILE - centre.1) * zoom;
        // Clear of the HUD's panels (top corners, bottom corners), the time bar (top middle)
        // and the frame's edge.
        let under_panel = (y < 70.0 && (x < 340.0 || x > WIDTH as f32 - 200.0))
            || (y < 40.0 && x > 0.3 * WIDTH as f32 - 10.0 && x < 0.7 * WIDTH as f32 + 10.0)
            || (y > HEIGHT as f32 - 70.0 && (x < 380.0 || x > WIDTH as f32 - 480.0));
        let inside =
            (8.0..(WIDTH - 8) as f32).contains(&x) && (8.0..(HEIGHT - 8) as f32).contains(&y);
        if !inside || under_panel {
            continue;
        }
        in_view += 1;
        let colour = tint(EntityKind::Agent, name).to_srgba();
        let colour = [colour.red, colour.green, colour.blue].map(|c| (c * 255.0).round() as u8);
        let hits = (0..9u32)
            .flat_map(|dy| (0..9u32).map(move |dx| (x as u32 + dx - 4, y as u32 + dy - 4)))
            .filter(|&(px, py)| {
                let i = ((py * WIDTH + px) * 3) as usize;
                (0..3).all(|c| rgb[i + c].abs_diff(colour[c]) <= 40)
            })
            .count();
        drawn += usize::from(hits >= 5);
    }
    (in_view, drawn)
}

#[test]
fn a_replay_shows_the_agents_where_the_log_has_them_at_two_times() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("day");
    sim::run(&SimConfig::routine_day(&assets(), run.clone())).expect("a routine day runs");
    let map = (120, 64);
    let (mut seen, mut frames) = (Vec::new(), Vec::new());
    // The day runs from 06:00 on day 1 to 06:00 on day 2: noon, then the night after.
    for (n, at) in ["12:30", "day 2 03:00"].into_iter().enumerate() {
        let rgb = frame_at(&run, at, &dir.path().join(format!("{n}.png")), &[]);
        let time: GameTime = at.parse().unwrap();
        let tiles = tiles_at(&run.join("events.jsonl"), time);
        let (in_view, drawn) = drawn(&rgb, &tiles, map);
        assert!(
            in_view >= 2,
            "at {at} only {in_view} agents in the frame: {tiles:?}"
        );
        assert!(
            drawn * 3 >= in_view * 2,
            "at {at}, {drawn} of {in_view} agents drawn where the log has them"
        );
        seen.push(tiles);
        frames.push(rgb);
    }
    let moved = seen[0]
        .iter()
        .filter(|(name, tile)| seen[1][*name] != **tile)
        .count();
    assert!(
        moved >= 5,
        "only {moved} agents stand elsewhere at noon than at night"
    );

    // The inspector on one agent at noon: its panel darkens the right of the frame, under the
    // round's panel, where the frame at noon without it shows the town.
    let plain = &frames[0];
    let inspected = frame_at(
        &run,
        "12:30",
        &dir.path().join("inspected.png"),
        &["--inspect", "Marisol Alvarez"],
    );
    let brightness = |rgb: &[u8]| {
        let (x0, x1, y0, y1) = (WIDTH - 300, WIDTH - 20, 75, 160);
        let sum: u64 = (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| ((y * WIDTH + x) * 3) as usize))
            .map(|i| u64::from(rgb[i]) + u64::from(rgb[i + 1]) + u64::from(rgb[i + 2]))
            .sum();
        sum as f64 / f64::from((x1 - x0) * (y1 - y0) * 3)
    };
    let (plain, inspected) = (brightness(plain), brightness(&inspected));
    assert!(
        inspected + 25.0 < plain,
        "no inspector panel: mean brightness {inspected:.0} with it, {plain:.0} without"
    );
}
