//! `agora-server serve` as a process, with a real player over UDP on loopback: the server is
//! killed outright (SIGKILL, no chance to save) and restarted on the same database; the player
//! comes back to the tile and team it had, the clock resumes, the first run's log is kept, a
//! second server on the same database is refused, and the end of a bounded run saves the last
//! changes.

mod common;

use agora_net::client::Client;
use agora_net::config::unix_now;
use agora_net::keys::ServerKey;
use agora_net::tokens;
use agora_server::persist::{SavedPlayer, Store};
use agora_shared::TilePos;
use agora_shared::protocol::{ClientMessage, NetId, PROTOCOL_VERSION, ServerMessage};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

/// A running `serve` and the lines it prints.
struct Server {
    child: Child,
    lines: Receiver<String>,
    printed: Vec<String>,
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Self {
        Self::spawn(Command::new(env!("CARGO_BIN_EXE_agora-server")), dir, extra)
    }

    /// Started as a script's `cmd &` or `nohup cmd` starts it: SIGINT and SIGHUP ignored
    /// (inherited through `exec`, so the child is the server itself).
    fn start_with_sigint_ignored(dir: &Path, extra: &[&str]) -> Self {
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            .arg("trap '' INT HUP; exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_agora-server"));
        Self::spawn(shell, dir, extra)
    }

    fn spawn(mut command: Command, dir: &Path, extra: &[&str]) -> Self {
        let mut child = command
            .args(["serve", "--bind", "127.0.0.1:0", "--no-token-endpoint"])
            .args(["--time-scale", "60", "--agents", "6"])
            .arg("--key")
            .arg(dir.join("server.key"))
            .arg("--out")
            .arg(dir.join("run"))
            // Last, so that they win over the defaults above (the last of a repeated flag does).
            .args(extra)
            .env("AGORA_ASSETS", common::assets())
            .env_remove("AGORA_SERVER_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("agora-server starts");
        let lines = read_lines(child.stdout.take().unwrap(), child.stderr.take().unwrap());
        Self {
            child,
            lines,
            printed: Vec::new(),
        }
    }

    /// Waits for a printed line containing `text`.
    fn line_with(&mut self, text: &str) -> String {
        self.try_line_with(text).unwrap_or_else(|| {
            panic!(
                "serve never printed {text:?}; it printed {:?}",
                self.printed
            )
        })
    }

    /// Waits up to a minute for a printed line containing `text`; `None` if the server
    /// stopped printing (or exited) first.
    fn try_line_with(&mut self, text: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(line) = self.printed.iter().find(|l| l.contains(text)) {
                return Some(line.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            self.printed.push(self.lines.recv_timeout(left).ok()?);
        }
    }

    /// Where the server listens, from its start-up line ("... on ADDR (...").
    fn addr(&mut self) -> SocketAddr {
        let line = self.line_with(" agents, ");
        let after = line.split(" on ").nth(1).unwrap();
        after.split(' ').next().unwrap().parse().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Both streams' lines, as they come.
fn read_lines(stdout: ChildStdout, stderr: ChildStderr) -> Receiver<String> {
    let (tx, rx) = channel();
    let forward = |stream: Box<dyn std::io::Read + Send>, tx: Sender<String>| {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
    };
    forward(Box::new(stdout), tx.clone());
    forward(Box::new(stderr), tx);
    rx
}

/// Sends `signal` (a name `kill` knows: TERM, INT) to the server.
fn signal(server: &Server, signal: &str) {
    let sent = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(server.child.id().to_string())
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{signal} failed");
}

/// A signal mask from /proc/PID/status (`SigIgn`, `SigCgt`: bit n-1 for signal n).
fn signal_mask(status: &str, field: &str) -> u64 {
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap()
        .trim();
    u64::from_str_radix(mask, 16).unwrap()
}

const SIGINT_BIT: u64 = 1 << (2 - 1);
const SIGTERM_BIT: u64 = 1 << (15 - 1);

/// The way [`Server::start_with_sigint_ignored`] starts a program leaves it with SIGINT
/// ignored, as a script's `&` does.
fn sigint_is_ignored_under_the_trap() -> bool {
    let out = Command::new("sh")
        .arg("-c")
        .arg("trap '' INT HUP; exec cat /proc/self/status")
        .output()
        .unwrap();
    signal_mask(&String::from_utf8_lossy(&out.stdout), "SigIgn:") & SIGINT_BIT != 0
}

/// Pumps the client until `done` holds, or fails after 30 s.
fn pump_until(client: &mut Client, what: &str, mut done: impl FnMut(&Client) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(client) {
        assert!(Instant::now() < deadline, "timed out: {what}");
        client.pump(Duration::from_millis(5));
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Connects as `name` and says hello; returns the avatar's id.
fn play(key: &ServerKey, name: &str, server: SocketAddr) -> (Client, NetId) {
    let token = tokens::mint(key, name, vec![server], Duration::from_secs(60), unix_now()).unwrap();
    let mut client = Client::connect(token).unwrap();
    pump_until(&mut client, "connect", Client::is_connected);
    client.send(&ClientMessage::Hello {
        version: PROTOCOL_VERSION,
    });
    pump_until(&mut client, "welcome", |c| {
        c.welcome().is_some_and(|me| c.tiles().contains_key(&me))
    });
    let me = client.welcome().unwrap();
    (client, me)
}

#[test]
fn a_killed_server_restarts_with_players_where_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Server::start(dir.path(), &[]);
    let addr = first.addr();
    let key = ServerKey::load_or_create(&dir.path().join("server.key"))
        .unwrap()
        .0;
    let (mut ada, me) = play(&key, "ada", addr);
    let spawn = ada.tiles()[&me];

    // Ada walks to a tile a dozen steps away, and joins a team.
    let (map, _) = agora_server::app::load_town(
        &common::shipped_map(),
        &common::assets().join("personas"),
        None,
    )
    .unwrap();
    let target = (0..map.height)
        .flat_map(|y| (0..map.width).map(move |x| TilePos::new(x, y)))
        .filter(|&t| map.is_walkable(t) && t.manhattan(spawn) == 12)
        .min()
        .expect("a walkable tile 12 steps away");
    assert_ne!(target, spawn);
    ada.send(&ClientMessage::MoveTo { tile: target });
    ada.send(&ClientMessage::JoinTeam {
        team: "lanterns".into(),
    });
    pump_until(&mut ada, "ada arrives", |c| {
        c.tiles().get(&me) == Some(&target)
    });
    // The running server commits as it goes; a second connection sees it (WAL). Then the
    // server is killed outright: nothing more is saved at exit.
    let db = dir.path().join("run/world.sqlite");
    let saved = |tile, team: &str| {
        Store::open(&db).unwrap().load().unwrap().players
            == [SavedPlayer {
                client_id: tokens::client_id("ada"),
                name: "ada".into(),
                tile,
                team: Some(team.into()),
            }]
    };
    pump_until(&mut ada, "ada's tile and team are saved", |_| {
        saved(target, "lanterns")
    });
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    drop(ada);
    let saved_clock = Store::open(&db).unwrap().load().unwrap().clock.unwrap();
    assert!(saved_clock > "08:00".parse().unwrap(), "{saved_clock}");

    let mut second = Server::start(dir.path(), &["--seconds", "15"]);
    let resumed = second.line_with("resuming from");
    assert!(resumed.contains("1 players"), "{resumed}");
    assert!(
        resumed.ends_with(&format!("game time {saved_clock}")),
        "the clock did not resume: {resumed}"
    );
    let addr = second.addr();
    let (mut ada, me) = play(&key, "ada", addr);
    assert_eq!(ada.tiles()[&me], target, "ada is not where she stood");
    let team = ada.inbox.iter().find_map(|m| match m {
        ServerMessage::Spawned { id, team, .. } if *id == me => Some(team.clone()),
        _ => None,
    });
    assert_eq!(team, Some(Some("lanterns".to_string())));

    // The first run's log is kept beside the new one, and the kill lost it no more than its
    // last moments: it has Ada's arrival and her walk.
    let logs: Vec<String> = std::fs::read_dir(dir.path().join("run"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("events"))
        .collect();
    assert_eq!(logs.len(), 2, "{logs:?}");
    let killed = logs.iter().find(|n| n.starts_with("events-")).unwrap();
    let killed = std::fs::read_to_string(dir.path().join("run").join(killed)).unwrap();
    assert!(killed.starts_with("{") && killed.contains("\"kind\":\"run_started\""));
    assert!(killed.contains("\"kind\":\"player_joined\",\"player\":\"player:ada\""));
    assert!(
        killed.contains("\"kind\":\"move\",\"agent\":\"player:ada\""),
        "the killed run's log lost ada's walk: {} bytes",
        killed.len()
    );

    // A second server on the same database is turned away.
    let third = Command::new(env!("CARGO_BIN_EXE_agora-server"))
        .args(["serve", "--bind", "127.0.0.1:0", "--no-token-endpoint"])
        .arg("--out")
        .arg(dir.path().join("run"))
        .arg("--key")
        .arg(dir.path().join("server.key"))
        .env("AGORA_ASSETS", common::assets())
        .output()
        .unwrap();
    assert!(!third.status.success());
    let err = String::from_utf8_lossy(&third.stderr);
    assert!(err.contains("another agora-server is using"), "{err}");

    // Ada takes one step back and leaves her team just before the bounded run ends: at the end
    // the server saves what changed since its last periodic save, and reports.
    ada.send(&ClientMessage::MoveTo { tile: spawn });
    ada.send(&ClientMessage::LeaveTeam);
    pump_until(&mut ada, "ada walks back", |c| {
        c.tiles().get(&me) == Some(&spawn)
    });
    let report = second.try_line_with(" ticks, tick mean ");
    let exit = second.child.wait().unwrap();
    assert!(
        report.is_some() && exit.success(),
        "no clean stop: {exit:?}; it printed {:?}",
        second.printed
    );
    let saved = Store::open(&db).unwrap().load().unwrap();
    assert_eq!(saved.players[0].tile, spawn);
    assert_eq!(saved.players[0].team, None);
}

/// Ctrl-C and SIGTERM stop `serve` cleanly however it was started: here as a script's `&`
/// starts it, with SIGINT (and SIGHUP) ignored, which made the earlier handler (ctrlc) refuse
/// to install. Each stop saves the player's last tile and team, ends the event log with
/// `run_finished`, prints the report and exits 0.
#[test]
fn ctrl_c_and_sigterm_save_and_exit_cleanly_with_sigint_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("run/world.sqlite");
    let key_file = dir.path().join("server.key");
    assert!(sigint_is_ignored_under_the_trap());
    let (map, _) = agora_server::app::load_town(
        &common::shipped_map(),
        &common::assets().join("personas"),
        None,
    )
    .unwrap();
    for (round, stop) in ["INT", "TERM"].into_iter().enumerate() {
        let mut server = Server::start_with_sigint_ignored(dir.path(), &[]);
        let addr = server.addr();
        // Started with SIGINT ignored, the server catches it (and SIGTERM) all the same.
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
        assert_eq!(
            signal_mask(&status, "SigCgt:") & (SIGINT_BIT | SIGTERM_BIT),
            SIGINT_BIT | SIGTERM_BIT,
            "serve does not catch SIGINT and SIGTERM: {status}"
        );
        let key = ServerKey::load_or_create(&key_file).unwrap().0;
        let (mut ada, me) = play(&key, "ada", addr);
        let start = ada.tiles()[&me];
        let team = format!("team{round}");
        let target = [(1, 0), (0, 1), (-1, 0), (0, -1)]
            .into_iter()
            .map(|(dx, dy)| {
                TilePos::new(
                    start.x.wrapping_add_signed(dx),
                    start.y.wrapping_add_signed(dy),
                )
            })
            .find(|&t| map.is_walkable(t))
            .expect("a walkable neighbour");
        ada.send(&ClientMessage::MoveTo { tile: target });
        ada.send(&ClientMessage::JoinTeam { team: team.clone() });
        pump_until(&mut ada, "ada takes a step", |c| {
            c.tiles().get(&me) == Some(&target)
        });
        signal(&server, stop);
        let report = server.try_line_with(" ticks, tick mean ");
        let exit = server.child.wait().unwrap();
        assert!(
            exit.success() && report.is_some(),
            "SIG{stop}: no clean stop ({exit:?}); it printed {:?}",
            server.printed
        );
        assert!(
            server
                .printed
                .iter()
                .any(|l| l.contains("stopping (saving first)")),
            "{:?}",
            server.printed
        );
        let saved = Store::open(&db).unwrap().load().unwrap();
        assert_eq!(saved.players.len(), 1);
        assert_eq!(
            (saved.players[0].tile, saved.players[0].team.as_deref()),
            (target, Some(team.as_str())),
            "SIG{stop}"
        );
        let log = std::fs::read_to_string(dir.path().join("run/events.jsonl")).unwrap();
        let last = log.lines().last().unwrap_or_default();
        assert!(
            last.contains("\"kind\":\"run_finished\""),
            "SIG{stop}: log ends {last:?}"
        );
        // The session's figures are kept beside its log, and its report draws them.
        let figures: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("run/serve.json")).unwrap(),
        )
        .unwrap();
        assert!(
            figures["tick_us"]["histogram"]
                .as_object()
                .is_some_and(|h| !h.is_empty())
        );
        // A tick's time on a core is at most its wall time.
        let (wall, on_core) = (&figures["tick_us"], &figures["tick_on_core_us"]);
        assert!(on_core["mean"].as_f64().unwrap() > 0.0, "{figures}");
        assert!(on_core["max"].as_f64() <= Some(wall["max"].as_f64().unwrap() + 100.0));
        assert!(
            figures["tick_queued_us"]["p99"].as_f64().is_some(),
            "{figures}"
        );
        assert!(
            (figures["bandwidth"].as_array().unwrap().iter())
                .any(|s| s[1] == 1 && s[2].as_f64().unwrap() > 0.0),
            "no sample with ada connected: {figures}"
        );
        let page = dir.path().join("report.html");
        agora_server::report::write(&agora_server::report::ReportOptions {
            runs: vec![dir.path().join("run")],
            out: page.clone(),
            map: common::shipped_map(),
            personas: common::assets().join("personas"),
            progress: false,
        })
        .unwrap();
        let html = std::fs::read_to_string(&page).unwrap();
        assert!(html.contains("bytes per second per player"), "SIG{stop}");
        assert!(html.contains("players online (game time)"), "SIG{stop}");
    }
}

/// Each agent's memories, as the database holds them: (id, kind, description, embedding).
fn saved_memories(db: &Path) -> BTreeMap<String, Vec<(u32, &'static str, String, Vec<f32>)>> {
    let saved = Store::open(db).unwrap().load().unwrap();
    saved
        .memories
        .into_iter()
        .map(|(agent, memories)| {
            let rows = memories
                .into_iter()
                .map(|(m, e)| (m.id.0, m.kind.name(), m.description, e.unwrap_or_default()))
                .collect();
            (agent, rows)
        })
        .collect()
}

/// `serve --memory`, killed outright and restarted on its database: every agent resumes the
/// stream it had (embeddings included) and goes on writing to it, instead of starting again
/// from its persona's seed memories.
#[test]
fn a_killed_server_with_memory_resumes_every_agents_memories() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("run/world.sqlite");
    let seeds: BTreeMap<String, usize> = agora_shared::persona::load_folder(
        &common::assets().join("personas"),
        &agora_server::world::TownMap::load(&common::shipped_map()).unwrap(),
    )
    .unwrap()
    .personas
    .into_iter()
    .map(|(p, _)| (p.id, p.memories.len()))
    .collect();
    let mut first = Server::start(dir.path(), &["--memory"]);
    first.addr();
    // Wait until the six agents' seed memories are saved, embedded.
    let deadline = Instant::now() + Duration::from_secs(60);
    let before = loop {
        assert!(Instant::now() < deadline, "memories were not saved");
        std::thread::sleep(Duration::from_millis(200));
        let Ok(store) = Store::open(&db) else {
            continue;
        };
        let Ok(saved) = store.load() else { continue };
        let complete = saved.memories.len() == 6
            && (saved.memories.iter()).all(|(agent, m)| {
                m.len() >= seeds[agent]
                    && m.iter()
                        .all(|(_, e)| e.as_ref().is_some_and(|v| v.len() == 384))
            });
        if complete {
            break saved_memories(&db);
        }
    };
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let mut second = Server::start(dir.path(), &["--memory", "--seconds", "3"]);
    let resumed = second.line_with("resuming from");
    assert!(resumed.contains("6 agents' memories"), "{resumed}");
    second.line_with(" ticks, tick mean ");
    assert!(second.child.wait().unwrap().success());

    let after = saved_memories(&db);
    for (agent, old) in &before {
        let new = &after[agent];
        assert_eq!(&new[..old.len()], &old[..], "{agent}: its memories changed");
        let thoughts = new.iter().filter(|m| m.1 == "thought").count();
        assert_eq!(thoughts, seeds[agent], "{agent} was seeded again");
    }
}

/// Before: `serve` without `--key` wrote `server.key` into the directory it was started in (a
/// checkout, typically), where it was not git-ignored: the key that signs every token could be
/// committed. Now it lives with the world.
/// Bound to every interface with no --public-addr, the server warns that remote players
/// cannot reach what tokens name, names loopback in them (not 0.0.0.0), and a player with such
/// a token joins.
#[test]
fn a_server_on_every_interface_warns_and_names_loopback_in_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--bind", "0.0.0.0:0"]);
    let warning = server.line_with("listening on every interface");
    assert!(warning.contains("give --public-addr HOST:"), "{warning}");
    let hint = server.line_with("tokens: agora-server token");
    let public: SocketAddr = (hint.rsplit("--server ").next().unwrap().trim())
        .parse()
        .unwrap();
    assert!(public.ip().is_loopback(), "{hint}");
    let key = ServerKey::load_or_create(&dir.path().join("server.key"))
        .unwrap()
        .0;
    play(&key, "ada", public);
    // With --public-addr, the host has said where players connect: no warning.
    let other = tempfile::tempdir().unwrap();
    let mut server = Server::start(
        other.path(),
        &["--bind", "0.0.0.0:0", "--public-addr", "192.0.2.7:5000"],
    );
    let hint = server.line_with("tokens: agora-server token");
    assert!(hint.ends_with("--server 192.0.2.7:5000"), "{hint}");
    assert!(
        !(server.printed.iter()).any(|l| l.contains("every interface")),
        "{:?}",
        server.printed
    );
}

#[test]
fn the_server_key_is_kept_with_the_world_not_where_serve_was_started() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_agora-server"))
        .current_dir(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0", "--no-token-endpoint"])
        .args(["--agents", "2", "--seconds", "0.5", "--out", "world"])
        .env("AGORA_ASSETS", common::assets())
        .env_remove("AGORA_SERVER_KEY")
        .output()
        .expect("agora-server runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("created one in world/server.key"),
        "{stderr}"
    );
    let key = dir.path().join("world/server.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "key mode {mode:o}");
    assert!(!dir.path().join("server.key").exists());
}

/// A disk that fills while serving, made with a file-size limit on the process (`ulimit -f`,
/// SIGXFSZ ignored so a write past it fails with EFBIG instead of killing the server). Before,
/// nothing was printed (no log subscriber; the event log's error surfaced only at the end).
/// Now each failing writer says so while the server runs (the database at its first failed
/// commit, then every 30 s, not every half second), and the stop exits non-zero with the
/// reason.
#[test]
fn a_full_disk_is_reported_at_once_and_fails_the_exit() {
    let dir = tempfile::tempdir().unwrap();
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg("ulimit -f 256; trap '' XFSZ; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_agora-server"));
    // 256 blocks of 512 bytes: room for the key and the database's first pages; at 3,600x,
    // 25 agents' moves fill the event log within seconds.
    let extra = ["--time-scale", "3600", "--agents", "25"];
    let mut server = Server::spawn(shell, dir.path(), &extra);
    server.addr();
    let missing = |server: &Server, what: &str| {
        panic!(
            "no {what} error while serving; printed {:?}",
            server.printed
        )
    };
    let log_error = server
        .try_line_with("writing the event log")
        .unwrap_or_else(|| missing(&server, "event log"));
    assert!(
        log_error.contains("events.jsonl") && log_error.contains("File too large"),
        "{log_error}"
    );
    let db_error = server
        .try_line_with("saving failed")
        .unwrap_or_else(|| missing(&server, "database"));
    assert!(db_error.contains("world.sqlite"), "{db_error}");
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server stopped on its own"
    );
    signal(&server, "TERM");
    let exit = server.child.wait().unwrap();
    while server
        .lines
        .recv_timeout(Duration::from_secs(5))
        .map(|l| server.printed.push(l))
        .is_ok()
    {}
    assert!(!exit.success(), "exit {exit:?} after failed writes");
    assert!(
        server
            .printed
            .iter()
            .any(|l| l.contains("cannot save to") && l.contains("world.sqlite")),
        "{:?}",
        server.printed
    );
    let repeats = server
        .printed
        .iter()
        .filter(|l| l.contains("saving failed"))
        .count();
    assert_eq!(repeats, 1, "{:?}", server.printed);
}
