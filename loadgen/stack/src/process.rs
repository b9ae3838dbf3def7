//! A child process with a log file and a `/metrics` port: what the sharder and the operator
//! processes share. It can be started again in place, as a kubelet restarts a container.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, bail};
use rustix::process::{Pid, Signal};

use crate::{metrics, usage::Usage};

/// How long a process gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Lines of the log quoted when a process exited unexpectedly.
const TAIL_LINES: usize = 20;

/// Builds the command of a process, once for each start.
pub(crate) type Launch = Arc<dyn Fn() -> tokio::process::Command + Send + Sync>;

/// A running child process whose output goes to a log file. Dropping it kills it.
pub(crate) struct ChildProcess {
    /// Names it in errors, e.g. `the sharder`.
    name: String,
    launch: Launch,
    child: tokio::process::Child,
    pid: u32,
    log: PathBuf,
    metrics_port: u16,
    /// Stopped by SIGSTOP and not yet continued: it answers no request.
    paused: bool,
}

impl std::fmt::Debug for ChildProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildProcess")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .field("log", &self.log)
            .field("metrics_port", &self.metrics_port)
            .field("paused", &self.paused)
            .finish_non_exhaustive()
    }
}

impl ChildProcess {
    /// Starts the command `launch` builds with its stdout and stderr appended to `log`
    /// (appended, so that a restarted process keeps the log of its predecessor).
    pub(crate) fn spawn(
        name: String,
        launch: Launch,
        log: PathBuf,
        metrics_port: u16,
    ) -> anyhow::Result<Self> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let child = start(&name, &launch, &log)?;
        let pid = child
            .id()
            .with_context(|| format!("{name} exited at once"))?;
        Ok(Self {
            name,
            launch,
            child,
            pid,
            log,
            metrics_port,
            paused: false,
        })
    }

    /// Starts the same command again in place of the process, which must have exited: same
    /// arguments, ports and log.
    pub(crate) fn restart(&mut self) -> anyhow::Result<()> {
        if self.exit_status().is_none() {
            bail!(
                "{} still runs: only an exited process is restarted",
                self.name
            );
        }
        self.child = start(&self.name, &self.launch, &self.log)?;
        self.paused = false;
        self.pid = self
            .child
            .id()
            .with_context(|| format!("{} exited at once", self.name))?;
        Ok(())
    }

    /// How it exited, if it has.
    pub(crate) fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `signal` unless it has exited: SIGSTOP and SIGCONT pause and resume it, SIGKILL
    /// kills it without reaping it, so that it shows as exited as a crash would.
    pub(crate) fn signal(&mut self, signal: Signal) -> anyhow::Result<()> {
        self.send(signal)?;
        if signal == Signal::STOP {
            self.paused = true;
        } else if signal == Signal::CONT {
            self.paused = false;
        }
        Ok(())
    }

    pub(crate) fn pause(&mut self) -> anyhow::Result<()> {
        self.signal(Signal::STOP)
    }

    pub(crate) fn resume(&mut self) -> anyhow::Result<()> {
        self.signal(Signal::CONT)
    }

    pub(crate) fn crash(&mut self) -> anyhow::Result<()> {
        self.signal(Signal::KILL)
    }

    fn send(&mut self, signal: Signal) -> anyhow::Result<()> {
        if let Some(status) = self.exit_status() {
            bail!("{} has exited ({status})", self.name);
        }
        // Not reaped yet, so the pid is still ours (at worst a zombie), never a reused one.
        let pid = i32::try_from(self.pid)
            .ok()
            .and_then(Pid::from_raw)
            .with_context(|| format!("{} has no valid pid", self.name))?;
        rustix::process::kill_process(pid, signal)
            .with_context(|| format!("cannot signal {} ({signal:?})", self.name))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn paused(&self) -> bool {
        self.paused
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

    /// The body of its `/metrics`, if it answers with 200; `None` at once while it is paused.
    pub(crate) async fn scrape(&self) -> Option<String> {
        if self.paused {
            return None;
        }
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
        // A paused process gets SIGTERM only once continued.
        if self.paused {
            let _ = self.signal(Signal::CONT);
        }
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

/// Starts the command `launch` builds, with its output appended to `log`.
fn start(name: &str, launch: &Launch, log: &Path) -> anyhow::Result<tokio::process::Child> {
    let file = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let mut command = launch();
    let program = command.as_std().get_program().to_owned();
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {name} ({})", Path::new(&program).display()))
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

        /// Pauses it (SIGSTOP): it holds its memory and connections but runs nothing, answers
        /// nothing and is not scraped, as a process stalled by its node would.
        ///
        /// # Errors
        /// It has exited.
        pub fn pause(&mut self) -> anyhow::Result<()> {
            self.process.pause()
        }

        /// Resumes it after [`Self::pause`] (SIGCONT).
        ///
        /// # Errors
        /// It has exited.
        pub fn resume(&mut self) -> anyhow::Result<()> {
            self.process.resume()
        }

        /// Whether it is paused.
        #[must_use]
        pub fn paused(&self) -> bool {
            self.process.paused()
        }

        /// Kills it with SIGKILL without reaping it, as a crash would: unlike [`Self::kill`],
        /// it stays with its owner, which sees it exit (and a supervisor restarts it).
        ///
        /// # Errors
        /// It has exited already.
        pub fn crash(&mut self) -> anyhow::Result<()> {
            self.process.crash()
        }

        /// How it exited, if it has.
        pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
            self.process.exit_status()
        }

        /// Starts its command again after it exited: same arguments, ports and log, a new pid.
        ///
        /// # Errors
        /// It still runs, or it cannot be started.
        pub fn restart(&mut self) -> anyhow::Result<()> {
            self.process.restart()
        }
    };
}

pub(crate) use delegate_to_child_process;

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    fn sleeper(dir: &Path, script: &str) -> ChildProcess {
        let script = script.to_owned();
        let launch: Launch = Arc::new(move || {
            let mut command = tokio::process::Command::new("/bin/sh");
            command.args(["-c", &script]);
            command
        });
        ChildProcess::spawn(
            "the sleeper".into(),
            launch,
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

    #[tokio::test]
    async fn a_restarted_process_runs_the_same_command_and_appends_to_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut process = sleeper(dir.path(), "echo run; exec sleep 60");
        testenv::eventually("the first start", Duration::from_secs(10), || async {
            (process.log_tail() == "run").then_some(())
        })
        .await;
        let first = process.pid();
        process.signal(Signal::KILL).unwrap();
        let status = testenv::eventually("the kill", Duration::from_secs(10), || {
            std::future::ready(process.exit_status())
        })
        .await;
        assert_eq!(status.signal(), Some(9), "{status}");
        assert!(process.signal(Signal::STOP).is_err(), "it has exited");
        process.restart().unwrap();
        assert_ne!(process.pid(), first);
        testenv::eventually("the second start", Duration::from_secs(10), || async {
            (process.log_tail() == "run\nrun").then_some(())
        })
        .await;
        process.check_alive().unwrap();
        process.kill().await;
    }

    #[tokio::test]
    async fn a_paused_process_has_not_exited_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let mut process = sleeper(dir.path(), "exec sleep 60");
        process.signal(Signal::STOP).unwrap();
        let pid = process.pid();
        let state = move || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            stat.split(") ").nth(1).unwrap().chars().next().unwrap()
        };
        testenv::eventually("the stop", Duration::from_secs(10), || {
            std::future::ready((state() == 'T').then_some(()))
        })
        .await;
        assert_eq!(process.exit_status(), None);
        process.signal(Signal::CONT).unwrap();
        testenv::eventually("the resume", Duration::from_secs(10), || {
            std::future::ready((state() == 'S').then_some(()))
        })
        .await;
        process.kill().await;
    }
}
