//! `agora-bot`: headless players for tests and load. Each bot joins, wanders from agent to
//! agent and chats; the last line is `bots: joined=J dropped=D`.

use agora_net::bot;
use agora_net::keys::ServerKey;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Headless Agora players: each joins a server, walks from agent to agent and chats, for load
/// tests and for trying a server. The last line is `bots: joined=J dropped=D`; the exit status
/// is 0 only if every bot joined and stayed.
#[derive(Debug, Parser)]
#[command(name = "agora-bot", version)]
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
    /// How many bots join, each with its own connection and token.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// How long the bots play, in seconds of wall time; then they leave.
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
            for (trouble, bots) in &report.troubles {
                eprintln!("agora-bot: {bots} of {} bot(s): {trouble}", args.count);
            }
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
