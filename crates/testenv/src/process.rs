//! Component processes, their log files, and the reaper that cleans up after a dead parent.
//!
//! Dropping a [`Component`] kills it. That does not run when the parent process is killed or
//! exits with the control plane in a `static`, so every control plane also starts a
//! [`Reaper`]: a small shell process that reads component process ids from a pipe. When the
//! pipe closes without a release (the parent is gone, whatever the cause), it kills the
//! components and removes the control plane's directory.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom, Write},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
};

use crate::error::{Error, Result};

/// One running component: a child process whose output goes to a log file.
#[derive(Debug)]
pub(crate) struct Component {
    pub(crate) name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Component {
    /// Starts `binary` with `args` in its own process group, so that a Ctrl-C meant for the
    /// parent does not hit it before the parent has decided how to tear down. Its output is
    /// appended to `log`, so that a component started again keeps its earlier log.
    pub(crate) fn spawn(
        name: &'static str,
        binary: &Path,
        args: &[String],
        log: PathBuf,
        reaper: &mut Reaper,
    ) -> Result<Self> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(Error::io(format!("open {}", log.display())))?;
        let stderr = file
            .try_clone()
            .map_err(Error::io(format!("open {}", log.display())))?;
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn {
                component: name,
                binary: binary.to_owned(),
                source,
            })?;
        reaper.watch(child.id());
        tracing::debug!(component = name, pid = child.id(), "started");
        Ok(Self { name, child, log })
    }

    /// The exit status, if the component has exited.
    pub(crate) fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// The last lines of the log, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        log_tail(&self.log, 30)
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        // The data directory is thrown away, so a graceful shutdown would only cost time.
        let _ = self.child.kill();
        let _ = self.child.wait();
        tracing::debug!(component = self.name, "stopped");
    }
}

/// The last `lines` lines of the log file at `path` (read from its last 64 KiB at most), for
/// error messages about a process that writes it; `(no log at <path>)` when it cannot be
/// opened.
#[must_use]
pub fn log_tail(path: &Path, lines: usize) -> String {
    const WINDOW: u64 = 64 * 1024;
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(WINDOW)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The watchdog process of one control plane (see the module docs).
#[derive(Debug)]
pub(crate) struct Reaper {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// Kills the ids it read and removes the directory, unless the last line says `released`.
const REAPER_SCRIPT: &str = r#"
pids=""
while read -r line; do
  [ "$line" = released ] && exit 0
  pids="$pids $line"
done
[ -n "$pids" ] && kill -9 $pids 2>/dev/null
i=0
while [ $i -lt 50 ] && kill -0 $pids 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
rm -rf "$1"
"#;

impl Reaper {
    /// Starts a reaper for the control plane in `dir`, in a process group of its own so that
    /// the Ctrl-C that kills the parent does not kill the reaper too.
    pub(crate) fn spawn(dir: &Path) -> Result<Self> {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(REAPER_SCRIPT)
            .arg("testenv-reaper")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn {
                component: "reaper",
                binary: "/bin/sh".into(),
                source,
            })?;
        let stdin = child.stdin.take();
        Ok(Self { child, stdin })
    }

    fn watch(&mut self, pid: u32) {
        if let Some(stdin) = &mut self.stdin {
            let _ = writeln!(stdin, "{pid}");
        }
    }
}

impl Drop for Reaper {
    /// The owner has cleaned up itself: tell the reaper not to touch ids that may be reused.
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "released");
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn wait_until(deadline: Duration, mut done: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        done()
    }

    fn alive(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    }

    #[test]
    fn a_reaper_whose_owner_vanished_kills_components_and_removes_the_directory() {
        let dir = tempfile::tempdir().unwrap().keep();
        let mut reaper = Reaper::spawn(&dir).unwrap();
        let mut sleeper = Command::new("sleep").arg("600").spawn().unwrap();
        reaper.watch(sleeper.id());
        // Closing the pipe without a release is what the death of the owner looks like.
        drop(reaper.stdin.take());
        assert!(wait_until(Duration::from_secs(10), || sleeper
            .try_wait()
            .unwrap()
            .is_some()));
        assert!(wait_until(Duration::from_secs(10), || !dir.exists()));
        let _ = reaper.child.wait();
    }

    #[test]
    fn a_released_reaper_leaves_everything_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut reaper = Reaper::spawn(dir.path()).unwrap();
        let mut sleeper = Command::new("sleep").arg("600").spawn().unwrap();
        reaper.watch(sleeper.id());
        drop(reaper);
        assert!(alive(sleeper.id()));
        assert!(dir.path().exists());
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }

    #[test]
    fn log_tail_returns_the_last_lines() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        for i in 0..100 {
            writeln!(file, "line {i}").unwrap();
        }
        assert_eq!(log_tail(file.path(), 2), "line 98\nline 99");
        assert!(log_tail(&file.path().with_extension("missing"), 2).starts_with("(no log at"));
    }
}
