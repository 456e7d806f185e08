use bevy::log::tracing_subscriber::{self, EnvFilter};
use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Warnings and errors from every part of the server reach stderr (an operator who sees
    // nothing assumes all is well); RUST_LOG=info (or debug, per module) shows more.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    agora_server::cli::run(agora_server::cli::Cli::parse())
}
