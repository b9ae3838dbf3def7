//! Polling until something happens, failing early when a process of the stack died.

use std::time::Duration;

use anyhow::bail;
use tokio::time::Instant;

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(200);

/// Polls `check` every 200 ms until it returns `Some`, and returns that value.
///
/// Unlike [`testenv::eventually`], which panics as tests want, it returns errors, and it calls
/// `alive` before each poll so that a wait on a process that has died fails at once with
/// that process's error (pass `|| Ok(())` when no process is involved).
///
/// # Errors
/// `check` or `alive` fails, or `patience` runs out: then the error says that `what` did not
/// happen in time.
pub async fn wait_for<T, A, F, Fut>(
    what: &str,
    patience: Duration,
    mut alive: A,
    mut check: F,
) -> anyhow::Result<T>
where
    A: FnMut() -> anyhow::Result<()>,
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + patience;
    loop {
        alive()?;
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("{what} did not happen within {patience:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_value_is_returned() {
        let mut polls = 0;
        let value = wait_for(
            "three polls",
            Duration::from_secs(5),
            || Ok(()),
            || {
                polls += 1;
                let done = polls == 3;
                async move { Ok(done.then_some(polls)) }
            },
        )
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn running_out_of_patience_names_what_did_not_happen() {
        let error = wait_for(
            "the impossible",
            Duration::ZERO,
            || Ok(()),
            || async { Ok(None::<()>) },
        )
        .await
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the impossible did not happen within 0ns"
        );
    }

    #[tokio::test]
    async fn a_dead_process_ends_the_wait_at_once() {
        let error = wait_for(
            "anything",
            Duration::from_secs(60),
            || bail!("the sharder exited"),
            || async { Ok(None::<()>) },
        )
        .await
        .unwrap_err();
        assert_eq!(error.to_string(), "the sharder exited");
    }
}
