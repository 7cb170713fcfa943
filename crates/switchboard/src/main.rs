//! The `switchboard` binary: one program that is the daemon (`serve`,
//! `demo`), the client of a running daemon (`run`, `actions`, `executions`,
//! `logs`, `cancel`, `chat`, `link`, `catalog reload`), the offline runner (`run --local`)
//! and the tool of its database (`migrate`, `store copy`).
//!
//! This crate wires the others together: command-line parsing, configuration,
//! logging, signals and terminal output. It holds no automation logic; that
//! is the engine's. It is the only crate that uses `anyhow`.

mod chat;
mod cli;
mod client;
mod config;
mod daemon;
mod offline;
mod storage;
mod terminal;
mod workflows;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(terminal::EXIT_ERROR);
        }
    };
    match runtime.block_on(cli::dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(terminal::EXIT_ERROR)
        }
    }
}
