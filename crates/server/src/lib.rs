//! The `steward` command: CLI, configuration, wiring of ports to adapters, start-up, demo
//! data and graceful shutdown. No business rules live here.

pub mod audit_cli;
pub mod cli;
pub mod config;
pub mod demo;
pub mod serve;
pub mod tls;
pub mod worker;

use std::process::ExitCode;

use clap::Parser;

/// Runs the command line; errors are printed for a human and turned into exit code 1.
pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
