//! Running a measurement to its report: a runtime that Ctrl-C interrupts, progress lines on
//! stderr, and the report written as a table or as JSON.

use std::{io::Write, time::Duration};

use anyhow::{Context as _, anyhow};
use clap::ValueEnum;
use serde::Serialize;

pub mod table;

pub use table::TextTable;

/// Output formats of the reports of `sharder-bench`, `operator-cost` and `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Human-readable report.
    Table,
    /// The report as JSON.
    Json,
}

/// Progress lines of a subcommand on stderr, each prefixed with its name.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    command: &'static str,
}

impl Progress {
    /// The progress of `command`, e.g. `operator-cost`.
    #[must_use]
    pub const fn new(command: &'static str) -> Self {
        Self { command }
    }

    /// Prints `<command>: <message>`.
    pub fn note(self, message: &str) {
        eprintln!("{}: {message}", self.command);
    }
}

/// A report that prints as a table for people and as JSON for machines.
pub trait Report: Serialize {
    /// The report as a human-readable table.
    fn table(&self) -> String;
}

/// Runs `measure` on a fresh runtime until it completes or Ctrl-C, then writes its report
/// to `out` in `format`.
pub fn run<R: Report>(
    format: ReportFormat,
    out: &mut impl Write,
    measure: impl Future<Output = anyhow::Result<R>>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        tokio::select! {
            report = measure => report,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    })?;
    // Connections and Lease keepers still in the runtime have nothing left to do.
    runtime.shutdown_timeout(Duration::from_secs(1));
    write(format, out, &report)
}

/// Writes `report` to `out` in `format`.
pub fn write<R: Report>(
    format: ReportFormat,
    out: &mut impl Write,
    report: &R,
) -> anyhow::Result<()> {
    match format {
        ReportFormat::Table => out.write_all(report.table().as_bytes())?,
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            writeln!(out)?;
        }
    }
    Ok(())
}
