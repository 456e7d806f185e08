//! Bots: headless players that join, wander from agent to agent and chat, for tests and load.

use crate::client::Client;
use crate::config::unix_now;
use crate::keys::ServerKey;
use crate::{fetch, tokens};
use agora_shared::TilePos;
use agora_shared::protocol::{ClientMessage, EntityKind, PROTOCOL_VERSION, ServerMessage};
use renet_netcode::ConnectToken;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const LINES: &[&str] = &[
    "Good morning!",
    "Has anyone seen the mayor?",
    "Is the harvest party tonight?",
    "The bread smells wonderful.",
    "Lovely weather by the river.",
];

/// How a bot run went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BotReport {
    /// Bots the server welcomed.
    pub joined: usize,
    /// Welcomed bots whose connection ended before the run did.
    pub dropped: usize,
    /// Messages from the server that did not decode, over all bots.
    pub undecodable: u64,
    /// Why bots did not join or were dropped, and how many for each reason.
    pub troubles: BTreeMap<String, usize>,
}

struct Bot {
    client: Client,
    rng: u64,
    next_move: Instant,
    next_line: Instant,
    welcomed: bool,
}

impl Bot {
    fn roll(&mut self, n: usize) -> usize {
        self.rng = self
            .rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.rng >> 33) as usize) % n.max(1)
    }

    /// Tiles of the agents in view, as this bot last saw them (walkable: someone stands
    /// there).
    fn agent_tiles(&self) -> Vec<TilePos> {
        let mut agents: Vec<TilePos> = self
            .client
            .in_view(EntityKind::Agent)
            .into_values()
            .collect();
        agents.sort();
        agents.dedup();
        agents
    }
}

/// Where bots get their connect tokens.
pub enum Tokens {
    /// Minted here with the server's key (a local server).
    Key(ServerKey),
    /// From a token endpoint: its base URL (`http://127.0.0.1:5001`) or the URL `serve` prints
    /// (`http://127.0.0.1:5001/token?player=NAME`).
    Url(String),
}

impl Tokens {
    fn get(&self, player: &str, server: SocketAddr) -> Result<ConnectToken, String> {
        match self {
            Tokens::Key(key) => tokens::mint(
                key,
                player,
                vec![server],
                Duration::from_secs(300),
                unix_now(),
            )
            .map_err(|e| e.to_string()),
            Tokens::Url(url) => {
                let bytes = fetch::token(url, player)?;
                ConnectToken::read(&mut bytes.as_slice()).map_err(|e| format!("{url}: {e}"))
            }
        }
    }
}

/// Runs `count` bots named `{prefix}{i}` against `server` for `duration`.
pub fn run(
    server: SocketAddr,
    tokens: &Tokens,
    prefix: &str,
    count: usize,
    duration: Duration,
) -> Result<BotReport, String> {
    let mut bots = Vec::with_capacity(count);
    for i in 0..count {
        let token = tokens.get(&format!("{prefix}{i}"), server)?;
        let client = Client::connect(token).map_err(|e| e.to_string())?;
        let now = Instant::now();
        bots.push(Bot {
            client,
            rng: 0x9e37_79b9_7f4a_7c15 ^ i as u64,
            next_move: now,
            // Staggered over 3 s so a crowd does not speak at once.
            next_line: now + Duration::from_millis(200 * (i as u64 % 16)),
            welcomed: false,
        });
    }
    let started = Instant::now();
    let mut last = started;
    while started.elapsed() < duration {
        // Every bot gave up (no server, refused): nothing more will happen.
        if bots
            .iter()
            .all(|b| !b.client.is_connected() && b.client.trouble().is_some())
        {
            break;
        }
        let now = Instant::now();
        let dt = now - last;
        last = now;
        for bot in &mut bots {
            let was_connected = bot.client.is_connected();
            bot.client.pump(dt);
            if !was_connected && bot.client.is_connected() {
                bot.client.send(&ClientMessage::Hello {
                    version: PROTOCOL_VERSION,
                });
            }
            bot.welcomed |= bot.client.welcome().is_some();
            if !bot.welcomed || !bot.client.is_connected() {
                continue;
            }
            if now >= bot.next_move {
                let tiles = bot.agent_tiles();
                if !tiles.is_empty() {
                    let tile = tiles[bot.roll(tiles.len())];
                    bot.client.send(&ClientMessage::MoveTo { tile });
                }
                bot.next_move = now + Duration::from_secs(3);
            }
            if now >= bot.next_line {
                let line = LINES[bot.roll(LINES.len())];
                bot.client.send(&ClientMessage::Say { text: line.into() });
                bot.next_line = now + Duration::from_secs(10);
            }
            // Keep memory flat on long runs: only the latest view matters.
            if bot.client.inbox.len() > 4096 {
                compact(&mut bot.client);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut report = BotReport {
        joined: bots.iter().filter(|b| b.welcomed).count(),
        dropped: bots
            .iter()
            .filter(|b| b.welcomed && !b.client.is_connected())
            .count(),
        undecodable: bots.iter().map(|b| b.client.undecodable).sum(),
        troubles: BTreeMap::new(),
    };
    for bot in &bots {
        let trouble = match (bot.welcomed, bot.client.is_connected()) {
            (true, true) => continue,
            (true, false) => format!(
                "dropped: {}",
                (bot.client.trouble()).unwrap_or_else(|| "the connection ended".into())
            ),
            (false, _) => (bot.client.trouble()).unwrap_or_else(|| {
                format!(
                    "not welcomed within {:.0} s (still connecting)",
                    duration.as_secs_f64()
                )
            }),
        };
        *report.troubles.entry(trouble).or_default() += 1;
    }
    for bot in &mut bots {
        bot.client.disconnect();
    }
    Ok(report)
}

/// Replaces the inbox with the welcome and one spawn per entity in view, at its latest tile.
fn compact(client: &mut Client) {
    let tiles = client.tiles();
    let mut kept = Vec::new();
    let mut spawned = std::collections::HashSet::new();
    // The latest spawn of each entity still in view.
    for m in client.inbox.drain(..).rev() {
        match m {
            ServerMessage::Welcome { .. } => kept.push(m),
            ServerMessage::Spawned {
                id,
                kind,
                name,
                activity,
                emoji,
                team,
                ..
            } => {
                if let Some(&tile) = tiles.get(&id)
                    && spawned.insert(id)
                {
                    kept.push(ServerMessage::Spawned {
                        id,
                        kind,
                        name,
                        tile,
                        activity,
                        emoji,
                        team,
                    });
                }
            }
            _ => {}
        }
    }
    kept.reverse();
    client.inbox = kept;
}
