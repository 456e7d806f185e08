//! Playing through the real client, with real input: in a real window (Xvfb, Mesa's software
//! Vulkan), xdotool types a line and clicks a tile, as a player's hands would. Against a real
//! server on loopback, a bot beside the player hears the line, and the avatar walks to the
//! clicked tile. Needs `scripts/install-render-deps` (`scripts/test` runs it).

use agora_net::client::Client;
use agora_net::keys::ServerKey;
use agora_server::actors::players::Player;
use agora_server::world::{Position, TownMap};
use agora_shared::TilePos;
use agora_shared::protocol::{ClientMessage, PROTOCOL_VERSION, ServerMessage};
use bevy::prelude::*;
use common::{HEIGHT, WIDTH, client_args, on_screen, program, server, spawn_below};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

/// An X server with no screen, on a display it chose; stopped when dropped.
struct Display {
    server: Child,
    name: String,
}

impl Display {
    fn start() -> Display {
        let mut server = Command::new(program("Xvfb"))
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &format!("{WIDTH}x{HEIGHT}x24"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Xvfb writes the display's number, then a newline, once it accepts clients.
        let mut stdout = server.stdout.take().unwrap();
        let mut number = String::new();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            number.push(byte[0] as char);
        }
        assert!(!number.is_empty(), "Xvfb gave no display");
        Display {
            server,
            name: format!(":{}", number.trim()),
        }
    }

    /// Runs xdotool on this display; its output.
    fn xdotool(&self, args: &[&str]) -> String {
        let out = Command::new(program("xdotool"))
            .args(args)
            .env("DISPLAY", &self.name)
            .output()
            .unwrap();
        assert!(out.status.success(), "xdotool {args:?}: {}", out.status);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Kills the client when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ada(app: &mut App) -> Option<TilePos> {
    app.world_mut()
        .query::<(&Player, &Position)>()
        .iter(app.world())
        .find(|(p, _)| p.name == "ada")
        .map(|(_, at)| at.0)
}

/// Runs the server and the bot until `done` holds; fails after `limit`.
fn run_until(
    app: &mut App,
    bot: &mut Client,
    what: &str,
    limit: Duration,
    mut done: impl FnMut(&mut App, &mut Client) -> bool,
) {
    let started = Instant::now();
    let mut last = Instant::now();
    while !done(app, bot) {
        assert!(started.elapsed() < limit, "timed out: {what}");
        app.update();
        bot.pump(last.elapsed());
        last = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_typed_line_reaches_a_bot_and_a_click_walks_the_avatar() {
    let key = ServerKey::generate();
    // Daytime: nothing shades the map; Ada and the bot appear together in the street.
    let (mut app, addr) = server(&key, "10:00");
    let spawn = spawn_below(&mut app, "Eleanor Price");
    let dir = tempfile::tempdir().unwrap();
    let token = common::token_file(&key, "ada", addr, dir.path());
    let display = Display::start();
    let mut client = Running(
        Command::new(env!("CARGO_BIN_EXE_agora-client"))
            .env("DISPLAY", &display.name)
            .args(client_args(addr, &token))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut bot = Client::connect(
        agora_net::tokens::mint(
            &key,
            "bot",
            vec![addr],
            Duration::from_secs(300),
            agora_net::config::unix_now(),
        )
        .unwrap(),
    )
    .unwrap();
    let mut said_hello = false;
    run_until(
        &mut app,
        &mut bot,
        "ada and the bot join",
        Duration::from_secs(60),
        |app, bot| {
            if bot.is_connected() && !said_hello {
                bot.send(&ClientMessage::Hello {
                    version: PROTOCOL_VERSION,
                });
                said_hello = true;
            }
            ada(app).is_some() && bot.welcome().is_some()
        },
    );
    // Let the client draw the town and settle its camera on the avatar.
    let settle = Instant::now() + Duration::from_secs(4);
    run_until(
        &mut app,
        &mut bot,
        "the client settles",
        Duration::from_secs(10),
        |_, _| Instant::now() >= settle,
    );
    assert!(
        client.0.try_wait().unwrap().is_none(),
        "the client quit: {}",
        std::io::read_to_string(client.0.stderr.take().unwrap()).unwrap()
    );
    let you = ada(&mut app).unwrap();
    assert_eq!(you, spawn);

    // Typed into the window (given the focus: there is no window manager to give it): Enter
    // opens the chat line, the words, Enter sends.
    let window = display.xdotool(&["search", "--sync", "--name", "^Agora$"]);
    let window = window
        .lines()
        .next()
        .expect("the client's window")
        .to_string();
    display.xdotool(&["windowfocus", "--sync", &window]);
    display.xdotool(&["key", "Return"]);
    display.xdotool(&["type", "--delay", "30", "hello from the window"]);
    display.xdotool(&["key", "Return"]);
    run_until(
        &mut app,
        &mut bot,
        "the bot hears ada's line",
        Duration::from_secs(20),
        |_, bot| {
            bot.inbox.iter().any(|m| {
                matches!(m, ServerMessage::Said { text, .. } if text == "hello from the window")
            })
        },
    );

    // A click on a walkable tile a few steps away: the avatar walks there.
    let target = {
        let map = app.world().resource::<TownMap>();
        (3..=6u16)
            .flat_map(|d| {
                [
                    TilePos::new(you.x + d, you.y),
                    TilePos::new(you.x.saturating_sub(d), you.y),
                ]
            })
            .find(|t| map.is_walkable(*t))
            .expect("a walkable tile beside ada")
    };
    let (x, y) = on_screen(target, you);
    display.xdotool(&[
        "mousemove",
        &(x as u32).to_string(),
        &(y as u32).to_string(),
    ]);
    display.xdotool(&["click", "1"]);
    run_until(
        &mut app,
        &mut bot,
        "ada walks to the clicked tile",
        Duration::from_secs(30),
        |app, _| ada(app) == Some(target),
    );
}
