//! `agora-client`: see docs for the command line in `agora-client --help`.

use bevy::prelude::*;
use clap::Parser;

fn main() -> AppExit {
    let args = agora_client::cli::Args::parse();
    match args.options() {
        Ok(options) => agora_client::app(options).run(),
        Err(e) => {
            eprintln!("agora-client: {e}");
            AppExit::error()
        }
    }
}
