//! A supervisor that restarts the stack's processes when they exit, as a kubelet restarts a
//! pod's containers: after a back-off that starts at a second and doubles with each restart up
//! to a cap, and starts over once a process has run for a while. Processes that keep exiting
//! are a crash loop, an error rather than a restart (docs/experiments.md#the-supervisor).
//!
//! The decisions are pure ([`Restarts::on_exit`], with the times passed in); [`supervise`]
//! polls the processes and carries them out.

use std::{collections::BTreeMap, time::Duration};

use tokio::time::Instant;

use crate::process::ChildProcess;

/// How exited processes are restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// The wait before the first restart, doubled for each restart after it.
    pub initial_backoff: Duration,
    /// The longest wait.
    pub max_backoff: Duration,
    /// A process that exits after running this long starts over at the initial wait.
    pub reset_after: Duration,
    /// This many restarts within [`Self::crash_loop_window`] are a crash loop.
    pub crash_loop_restarts: usize,
    /// See [`Self::crash_loop_restarts`].
    pub crash_loop_window: Duration,
}

impl Default for RestartPolicy {
    /// The kubelet's back-off (10 s doubling to 5 min, reset after 10 min) shortened for runs
    /// of minutes: 1 s doubling to 16 s, reset after 60 s; 5 restarts within a minute are a
    /// crash loop, which a process that exits at once reaches in 31 s.
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(16),
            reset_after: Duration::from_secs(60),
            crash_loop_restarts: 5,
            crash_loop_window: Duration::from_secs(60),
        }
    }
}

/// What to do about a process that exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start it again at this time.
    RestartAt(Instant),
    /// It restarted too often: stop restarting it and report it.
    CrashLoop,
}

/// The restarts of one process so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restarts {
    /// When each restart was due, oldest first.
    times: Vec<Instant>,
    /// The wait before the last restart.
    last_backoff: Option<Duration>,
}

impl Restarts {
    /// How many times the process was restarted.
    #[must_use]
    pub fn count(&self) -> usize {
        self.times.len()
    }

    /// The decision on the process, which `started` at that time and `exited` at this one
    /// (pure): a restart after the back-off, or a crash loop when it would be the
    /// `crash_loop_restarts`-th restart within the window.
    pub fn on_exit(
        &mut self,
        policy: &RestartPolicy,
        started: Instant,
        exited: Instant,
    ) -> Decision {
        let ran = exited.saturating_duration_since(started);
        let backoff = match self.last_backoff {
            Some(last) if ran < policy.reset_after => (last * 2).min(policy.max_backoff),
            _ => policy.initial_backoff,
        };
        let at = exited + backoff;
        let recent = self
            .times
            .iter()
            .filter(|&&time| at.saturating_duration_since(time) < policy.crash_loop_window)
            .count();
        if recent + 1 >= policy.crash_loop_restarts {
            return Decision::CrashLoop;
        }
        self.times.push(at);
        self.last_backoff = Some(backoff);
        Decision::RestartAt(at)
    }
}

/// One supervised process's state.
#[derive(Debug)]
struct Watched {
    /// When it was last started (or first seen).
    started: Instant,
    restarts: Restarts,
    /// When its pending restart is due.
    due: Option<Instant>,
}

/// The state of a supervisor over the polls: each process by name.
#[derive(Debug, Default)]
pub(crate) struct Supervision {
    watched: BTreeMap<String, Watched>,
}

impl Supervision {
    /// Looks at `process`, named `name`, at `now`: records an exit, restarts it when its
    /// restart is due. Returns its restarts when it restarted.
    ///
    /// # Errors
    /// It is crash-looping, or cannot be started again.
    pub(crate) fn poll(
        &mut self,
        policy: &RestartPolicy,
        (name, process): (&str, &mut ChildProcess),
        now: Instant,
    ) -> anyhow::Result<Option<usize>> {
        let watched = self.watched.entry(name.to_owned()).or_insert(Watched {
            started: now,
            restarts: Restarts::default(),
            due: None,
        });
        if watched.due.is_none()
            && let Some(status) = process.exit_status()
        {
            match watched.restarts.on_exit(policy, watched.started, now) {
                Decision::RestartAt(at) => watched.due = Some(at),
                Decision::CrashLoop => anyhow::bail!(
                    "{name} is crash-looping: it exited ({status}), which would be its restart \
                     number {} within {:?}; its log ends with:\n{}",
                    policy.crash_loop_restarts,
                    policy.crash_loop_window,
                    process.log_tail()
                ),
            }
        }
        match watched.due {
            Some(due) if now >= due => {
                process.restart()?;
                watched.started = now;
                watched.due = None;
                Ok(Some(watched.restarts.count()))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let policy = RestartPolicy {
            crash_loop_restarts: 100,
            ..RestartPolicy::default()
        };
        let t0 = Instant::now();
        let mut restarts = Restarts::default();
        // A process that exits 1 s after each start.
        let mut started = t0;
        let mut waits = Vec::new();
        for _ in 0..7 {
            let exited = started + secs(1);
            let Decision::RestartAt(at) = restarts.on_exit(&policy, started, exited) else {
                panic!("not a crash loop");
            };
            waits.push((at - exited).as_secs());
            started = at;
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 16, 16]);
        assert_eq!(restarts.count(), 7);
    }

    #[test]
    fn a_process_that_ran_long_enough_starts_over_at_the_initial_backoff() {
        let policy = RestartPolicy::default();
        let t0 = Instant::now();
        let mut restarts = Restarts::default();
        assert_eq!(
            restarts.on_exit(&policy, t0, t0 + secs(5)),
            Decision::RestartAt(t0 + secs(6))
        );
        assert_eq!(
            restarts.on_exit(&policy, t0 + secs(6), t0 + secs(10)),
            Decision::RestartAt(t0 + secs(12))
        );
        // Ran 60 s: the back-off starts over.
        assert_eq!(
            restarts.on_exit(&policy, t0 + secs(12), t0 + secs(72)),
            Decision::RestartAt(t0 + secs(73))
        );
    }

    #[test]
    fn the_fifth_restart_within_a_minute_is_a_crash_loop() {
        let policy = RestartPolicy::default();
        let t0 = Instant::now();
        let mut restarts = Restarts::default();
        // Exits at once: restarts due at 1, 3, 7 and 15 s; the fifth would be at 31 s.
        let mut started = t0;
        for expected in [1, 3, 7, 15] {
            assert_eq!(
                restarts.on_exit(&policy, started, started),
                Decision::RestartAt(t0 + secs(expected))
            );
            started = t0 + secs(expected);
        }
        assert_eq!(
            restarts.on_exit(&policy, started, started),
            Decision::CrashLoop
        );
        assert_eq!(restarts.count(), 4);
    }

    #[test]
    fn restarts_spread_over_more_than_a_minute_are_no_crash_loop() {
        let policy = RestartPolicy::default();
        let t0 = Instant::now();
        let mut restarts = Restarts::default();
        // Runs 30 s each time: waits 1, 2, 4, 8, 16 s, restarts at 31, 63, 97, 135, 181 s.
        let mut started = t0;
        for _ in 0..5 {
            let Decision::RestartAt(at) = restarts.on_exit(&policy, started, started + secs(30))
            else {
                panic!("restarts 30 s apart are no crash loop");
            };
            started = at;
        }
        assert_eq!(restarts.count(), 5);
    }
}
