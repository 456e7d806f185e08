//! `agora-bot`: headless players for tests and load. Each bot joins, wanders from agent to
//! agent and chats; the last line is `bots: joined=J dropped=D`.

use agora_net::bot;
use agora_net::keys::ServerKey;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Headless Agora players.
#[derive(Debug, Parser)]
#[command(name = "agora-bot", version, about)]
struct Args {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:5000")]
    server: std::net::SocketAddr,
    /// Get tokens from this endpoint: the URL `serve` prints
    /// (http://127.0.0.1:5001/token?player=NAME) or its base, http://127.0.0.1:5001.
    #[arg(long)]
    token_url: Option<String>,
    /// Or mint them with the server's key file (a local server; $AGORA_SERVER_KEY wins).
    #[arg(long, default_value = "server.key", conflicts_with = "token_url")]
    key: PathBuf,
    #[arg(long, default_value_t = 1)]
    count: usize,
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Bots are named PREFIX0, PREFIX1, ...
    #[arg(long, default_value = "bot")]
    prefix: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let tokens = match args.token_url {
        Some(url) => bot::Tokens::Url(url),
        None => match ServerKey::load_or_create(&args.key) {
            Ok((key, _)) => bot::Tokens::Key(key),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let duration = Duration::from_secs_f64(args.seconds.max(0.0));
    match bot::run(args.server, &tokens, &args.prefix, args.count, duration) {
        Ok(report) => {
            println!("bots: joined={} dropped={}", report.joined, report.dropped);
            if report.joined == args.count && report.dropped == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
