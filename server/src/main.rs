use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    agora_server::cli::run(agora_server::cli::Cli::parse())
}
