//! Running a measurement to its report: a runtime that Ctrl-C interrupts, and the report
//! written as a table or as JSON.

use std::{io::Write, time::Duration};

use anyhow::{Context as _, anyhow};
use serde::Serialize;

use crate::cli::ReportFormat;

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
    match format {
        ReportFormat::Table => out.write_all(report.table().as_bytes())?,
        ReportFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
    }
    Ok(())
}
