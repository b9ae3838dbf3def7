//! `loadgen`: load generation and what-if analysis for controller sharding.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match loadgen::run(loadgen::cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(loadgen::gate::exit_status(&err))
        }
    }
}
