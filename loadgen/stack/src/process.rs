//! A child process with a log file and a `/metrics` port: what the sharder and the operator
//! processes share.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail};
use rustix::process::{Pid, Signal};

use crate::{metrics, usage::Usage};

/// How long a process gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Lines of the log quoted when a process exited unexpectedly.
const TAIL_LINES: usize = 20;

/// A running child process whose output goes to a log file. Dropping it kills it.
#[derive(Debug)]
pub(crate) struct ChildProcess {
    /// Names it in errors, e.g. `the sharder`.
    name: String,
    child: tokio::process::Child,
    pid: u32,
    log: PathBuf,
    metrics_port: u16,
}

impl ChildProcess {
    /// Starts `command` with its stdout and stderr appended to `log` (appended, so that a
    /// restarted process keeps the log of its predecessor).
    pub(crate) fn spawn(
        name: String,
        mut command: tokio::process::Command,
        log: PathBuf,
        metrics_port: u16,
    ) -> anyhow::Result<Self> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let program = command.as_std().get_program().to_owned();
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", Path::new(&program).display()))?;
        let pid = child
            .id()
            .with_context(|| format!("{name} exited at once"))?;
        Ok(Self {
            name,
            child,
            pid,
            log,
            metrics_port,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log
    }

    /// Fails with the tail of its log when the process has exited.
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); {} ends with:\n{}",
                self.name,
                self.log.display(),
                self.log_tail()
            );
        }
        Ok(())
    }

    /// The last lines of its log.
    pub(crate) fn log_tail(&self) -> String {
        testenv::log_tail(&self.log, TAIL_LINES)
    }

    /// Its CPU time and memory so far; fails if it has exited.
    pub(crate) fn usage(&mut self) -> anyhow::Result<Usage> {
        self.check_alive()?;
        Usage::of_pid(self.pid).with_context(|| format!("cannot read the usage of {}", self.name))
    }

    /// The body of its `/metrics`, if it answers with 200.
    pub(crate) async fn scrape(&self) -> Option<String> {
        match metrics::get(self.metrics_port, "/metrics").await {
            Ok((200, body)) => Some(body),
            _ => None,
        }
    }

    /// The sum over every series of metric `name` (0 without any series, since a counter has
    /// none before its first increment), if it can be scraped.
    pub(crate) async fn metric_sum(&self, name: &str) -> Option<f64> {
        let body = self.scrape().await?;
        Some(crate::exposition::metric_sum(&body, name).unwrap_or(0.0))
    }

    /// Sends SIGTERM and waits up to 10 s for it to exit, then kills it. Returns how it
    /// exited, if that could be observed.
    pub(crate) async fn stop(&mut self) -> Option<ExitStatus> {
        self.stop_within(STOP_GRACE).await
    }

    async fn stop_within(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        // Not reaped yet, so the pid is still ours (at worst a zombie), never a reused one.
        let terminated = i32::try_from(self.pid)
            .ok()
            .and_then(Pid::from_raw)
            .is_some_and(|pid| rustix::process::kill_process(pid, Signal::TERM).is_ok());
        if terminated && let Ok(Ok(status)) = tokio::time::timeout(grace, self.child.wait()).await {
            return Some(status);
        }
        self.kill().await
    }

    /// Sends SIGKILL and reaps it. Returns how it exited, if that could be observed.
    pub(crate) async fn kill(&mut self) -> Option<ExitStatus> {
        // Fails only when it has exited already; waiting then returns that status.
        let _ = self.child.start_kill();
        self.child.wait().await.ok()
    }
}

/// A free port on 127.0.0.1 (bound and released; another process may take it in between).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .context("cannot find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// Delegates the process methods shared by [`SharderProcess`](crate::SharderProcess),
/// [`ControllerProcess`](crate::ControllerProcess) and [`OperatorProcess`](crate::OperatorProcess)
/// to their `process` field: a [`ChildProcess`], or a `ControllerProcess` that has them.
macro_rules! delegate_to_child_process {
    () => {
        /// Its process id.
        #[must_use]
        pub fn pid(&self) -> u32 {
            self.process.pid()
        }

        /// The loopback port of its `/metrics`.
        #[must_use]
        pub fn metrics_port(&self) -> u16 {
            self.process.metrics_port()
        }

        /// Its log file (stdout and stderr).
        #[must_use]
        pub fn log_path(&self) -> &std::path::Path {
            self.process.log_path()
        }

        /// Fails, quoting the end of its log, when it has exited.
        pub fn check_alive(&mut self) -> anyhow::Result<()> {
            self.process.check_alive()
        }

        /// The last 20 lines of its log.
        #[must_use]
        pub fn log_tail(&self) -> String {
            self.process.log_tail()
        }

        /// Its CPU time since it started and its memory, from `/proc`; fails if it has exited.
        pub fn usage(&mut self) -> anyhow::Result<$crate::Usage> {
            self.process.usage()
        }

        /// The body of its `/metrics`, or `None` if it does not answer with 200.
        pub async fn scrape(&self) -> Option<String> {
            self.process.scrape().await
        }

        /// The sum over every series of metric `name` on its `/metrics` (0 when the family
        /// has no series yet), or `None` if it cannot be scraped.
        pub async fn metric_sum(&self, name: &str) -> Option<f64> {
            self.process.metric_sum(name).await
        }

        /// Stops it gracefully: SIGTERM, up to 10 s to exit, then SIGKILL. Returns its exit
        /// status, if it could be observed.
        pub async fn stop(&mut self) -> Option<std::process::ExitStatus> {
            self.process.stop().await
        }

        /// Kills it (SIGKILL) and reaps it, as a crash would end it. Returns its exit status,
        /// if it could be observed.
        pub async fn kill(&mut self) -> Option<std::process::ExitStatus> {
            self.process.kill().await
        }
    };
}

pub(crate) use delegate_to_child_process;

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    fn sleeper(dir: &Path, script: &str) -> ChildProcess {
        let mut command = tokio::process::Command::new("/bin/sh");
        command.args(["-c", script]);
        ChildProcess::spawn(
            "the sleeper".into(),
            command,
            dir.join("logs/sleeper.log"),
            1,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn stop_ends_a_process_with_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let mut process = sleeper(dir.path(), "echo started; exec sleep 60");
        testenv::eventually("the sleeper to start", Duration::from_secs(10), || async {
            process.log_tail().contains("started").then_some(())
        })
        .await;
        process.check_alive().unwrap();
        assert!(process.usage().unwrap().rss_bytes > 0);
        let status = process.stop().await.unwrap();
        assert_eq!(status.signal(), Some(15), "{status}");
        let error = process.check_alive().unwrap_err().to_string();
        assert!(error.contains("the sleeper exited"), "{error}");
        assert!(error.contains("started"), "{error}");
    }

    #[tokio::test]
    async fn stop_kills_a_process_that_ignores_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        // `exec` keeps one process, and an ignored signal stays ignored across it.
        let mut process = sleeper(dir.path(), "trap '' TERM; echo trapped; exec sleep 60");
        testenv::eventually("the trap to be set", Duration::from_secs(10), || async {
            process.log_tail().contains("trapped").then_some(())
        })
        .await;
        let status = process
            .stop_within(Duration::from_millis(300))
            .await
            .unwrap();
        assert_eq!(status.signal(), Some(9), "{status}");
    }

    #[tokio::test]
    async fn an_exited_process_names_itself_and_quotes_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut process = sleeper(dir.path(), "echo 'first line'; echo 'bad flag' >&2; exit 3");
        let error = testenv::eventually("the sleeper to exit", Duration::from_secs(10), || {
            std::future::ready(process.check_alive().err())
        })
        .await
        .to_string();
        assert!(error.contains("exit status: 3"), "{error}");
        assert!(error.contains("first line\nbad flag"), "{error}");
        assert!(process.usage().is_err());
        // Killing an exited process reports how it exited.
        assert_eq!(process.kill().await.unwrap().code(), Some(3));
    }
}
