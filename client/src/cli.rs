//! The command line: `agora-client --server ADDR (--token FILE | --token-url URL --player NAME)`,
//! `agora-client --replay RUN_DIR`, or `agora-client [--server ADDR]` for the connect screen.

use crate::net::{ServerOptions, TokenSource};
use crate::replay::ReplayOptions;
use crate::screenshot::ScreenshotOptions;
use crate::{Options, Source, town};
use agora_shared::GameTime;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Play in an Agora town, or watch a saved run.
///
/// Connect with a token file (`agora-server token --player NAME --out FILE`) or the server's
/// token endpoint (what `serve` prints: `http://HOST:PORT/token?player=NAME`); or replay a run's
/// folder (`sim --out DIR`, `serve --out DIR`) with `--replay DIR`. With neither a token nor a
/// replay, a connect screen asks for the server, a name and the endpoint.
#[derive(Parser, Debug)]
#[command(name = "agora-client", version, about, long_about = None)]
pub struct Args {
    /// The server's game address (UDP), e.g. 127.0.0.1:5000.
    #[arg(long)]
    pub server: Option<SocketAddr>,
    /// Replay a saved run's folder (its events.jsonl) instead of joining a server.
    #[arg(long, conflicts_with_all = ["server", "token", "token_url", "player"])]
    pub replay: Option<PathBuf>,
    /// With --replay: where to start, "HH:MM" (day 1) or "day D HH:MM".
    #[arg(long, requires = "replay", value_parser = |s: &str| s.parse::<GameTime>())]
    pub at: Option<GameTime>,
    /// With --replay: game seconds per wall second, 1 to 1000.
    #[arg(long, default_value_t = 60.0, requires = "replay")]
    pub speed: f64,
    /// A connect token file for this server.
    #[arg(long, conflicts_with_all = ["token_url", "player"])]
    pub token: Option<PathBuf>,
    /// The server's token endpoint, e.g. http://127.0.0.1:5001.
    #[arg(long, requires = "player")]
    pub token_url: Option<String>,
    /// Your player name, with --token-url.
    #[arg(long, requires = "token_url")]
    pub player: Option<String>,
    /// The map the server runs (the same Tiled file).
    #[arg(long, default_value_os_t = town::default_map())]
    pub map: PathBuf,
    /// Save frame --frames to this PNG and exit.
    #[arg(long)]
    pub screenshot: Option<PathBuf>,
    /// Which frame --screenshot saves (the renderer needs some frames to warm up).
    #[arg(long, default_value_t = 120, requires = "screenshot")]
    pub frames: u32,
    /// Open the inspector on this agent (its full name) once it is in view.
    #[arg(long, value_name = "NAME")]
    pub inspect: Option<String>,
    /// Window size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720", value_parser = window_size)]
    pub window: (u32, u32),
}

fn window_size(text: &str) -> Result<(u32, u32), String> {
    let parsed = text
        .split_once(['x', 'X'])
        .and_then(|(w, h)| Some((w.trim().parse().ok()?, h.trim().parse().ok()?)));
    match parsed {
        Some((w, h)) if (160..=8192).contains(&w) && (120..=8192).contains(&h) => Ok((w, h)),
        _ => Err(format!(
            "{text:?} is no window size: WIDTHxHEIGHT, e.g. 1280x720"
        )),
    }
}

impl Args {
    /// The options, or what is missing.
    pub fn options(self) -> Result<Options, String> {
        let source = match (self.replay, self.server) {
            (Some(dir), _) => Source::Replay(ReplayOptions {
                dir,
                at: self.at,
                speed: self.speed,
            }),
            (None, addr) => match (self.token, self.token_url, self.player, addr) {
                (Some(file), None, None, Some(addr)) => Source::Server(ServerOptions {
                    addr,
                    tokens: TokenSource::File(file),
                }),
                (None, Some(url), Some(player), Some(addr)) => Source::Server(ServerOptions {
                    addr,
                    tokens: TokenSource::Url { url, player },
                }),
                (None, None, None, addr) => Source::Connect(addr),
                _ => return Err("--token and --token-url need --server ADDR".into()),
            },
        };
        if !(1.0..=1000.0).contains(&self.speed) {
            return Err(format!("--speed {} is not from 1 to 1000", self.speed));
        }
        Ok(Options {
            source,
            map: self.map,
            screenshot: self.screenshot.map(|path| ScreenshotOptions {
                path,
                frame: self.frames.max(1),
            }),
            window: self.window,
            inspect: self.inspect,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        let args =
            Args::try_parse_from(std::iter::once("agora-client").chain(args.iter().copied()))
                .map_err(|e| e.to_string())?;
        args.options()
    }

    #[test]
    fn a_token_or_an_endpoint_with_a_name() {
        let file = parse(&["--server", "127.0.0.1:5000", "--token", "ada.token"]).unwrap();
        assert!(matches!(
            file.source,
            Source::Server(ServerOptions {
                tokens: TokenSource::File(_),
                ..
            })
        ));
        let url = parse(&[
            "--server",
            "127.0.0.1:5000",
            "--token-url",
            "http://127.0.0.1:5001",
            "--player",
            "ada",
        ])
        .unwrap();
        assert!(matches!(
            url.source,
            Source::Server(ServerOptions {
                tokens: TokenSource::Url { .. },
                ..
            })
        ));
        // No way in given: the connect screen, with the address filled in.
        let screen = parse(&["--server", "127.0.0.1:5000"]).unwrap();
        assert!(matches!(screen.source, Source::Connect(Some(_))));
        assert!(matches!(parse(&[]).unwrap().source, Source::Connect(None)));
        let lost = parse(&["--token", "ada.token"]).unwrap_err();
        assert!(lost.contains("need --server"), "{lost}");
        assert!(parse(&["--server", "127.0.0.1:5000", "--token-url", "http://x"]).is_err());
        assert!(parse(&["--server", "nowhere", "--token", "t"]).is_err());
    }

    #[test]
    fn a_replay_needs_no_server() {
        let replay = parse(&[
            "--replay",
            "runs/day",
            "--at",
            "day 1 08:30",
            "--speed",
            "300",
        ]);
        let Source::Replay(options) = replay.unwrap().source else {
            panic!("not a replay");
        };
        assert_eq!(options.at, Some("08:30".parse().unwrap()));
        assert_eq!(options.speed, 300.0);
        assert!(parse(&["--replay", "runs/day", "--server", "127.0.0.1:5000"]).is_err());
        assert!(parse(&["--replay", "runs/day", "--speed", "5000"]).is_err());
        assert!(parse(&["--at", "08:00"]).is_err());
    }

    #[test]
    fn window_sizes() {
        assert_eq!(window_size("800x600"), Ok((800, 600)));
        assert!(window_size("800").is_err());
        assert!(window_size("0x0").is_err());
    }
}
