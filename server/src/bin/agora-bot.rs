//! `agora-bot`: headless players for tests and load. Each bot joins, wanders from agent to
//! agent and chats; the last line is `bots: joined=J dropped=D`.

use agora_server::net::bot;
use agora_server::net::keys::ServerKey;
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
    /// The server's key file, to mint the bots' tokens (the same one `serve` uses);
    /// $AGORA_SERVER_KEY wins.
    #[arg(long, default_value = "server.key")]
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
    let key = match ServerKey::load_or_create(&args.key) {
        Ok((key, _)) => key,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let duration = Duration::from_secs_f64(args.seconds.max(0.0));
    match bot::run(args.server, &key, &args.prefix, args.count, duration) {
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
