//! Checks whose failure is a finding rather than an error, and the exit status that tells them
//! apart: a CI job fails on a regression (status 3) differently than on a broken run (status 1).

use std::fmt;

/// The exit status of a failed check.
pub const CHECK_FAILED_STATUS: u8 = 3;

/// The exit status of any other error.
pub const ERROR_STATUS: u8 = 1;

/// The exit statuses, for the `--help` of the subcommands that check.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success, every check passed
  1  error: bad input, a failed run
  2  usage error: a bad flag or argument
  3  a check failed: a significant regression (compare --fail-on-regression), an SLO missed,
     an invalid measurement or an ownership violation (experiment --check), a target not
     reachable (plan)";

/// One or more checks failed, each with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailed {
    /// What failed, a sentence each, naming the figures.
    pub reasons: Vec<String>,
}

impl fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reasons.as_slice() {
            [reason] => write!(f, "a check failed: {reason}"),
            reasons => {
                write!(f, "{} checks failed:", reasons.len())?;
                for reason in reasons {
                    write!(f, "\n- {reason}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CheckFailed {}

/// `Err` with the `reasons` when there are any.
pub fn check(reasons: Vec<String>) -> Result<(), CheckFailed> {
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(CheckFailed { reasons })
    }
}

/// The exit status of `error`: [`CHECK_FAILED_STATUS`] when a [`CheckFailed`] is in its chain,
/// [`ERROR_STATUS`] otherwise.
#[must_use]
pub fn exit_status(error: &anyhow::Error) -> u8 {
    if error
        .chain()
        .any(<dyn std::error::Error>::is::<CheckFailed>)
    {
        CHECK_FAILED_STATUS
    } else {
        ERROR_STATUS
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;

    use super::*;

    #[test]
    fn no_reason_passes_the_check() {
        assert_eq!(check(Vec::new()), Ok(()));
    }

    #[test]
    fn a_failed_check_lists_its_reasons() {
        let one = check(vec!["p99 is 1.30× the baseline's".to_owned()]).unwrap_err();
        assert_eq!(
            one.to_string(),
            "a check failed: p99 is 1.30× the baseline's"
        );
        let two = CheckFailed {
            reasons: vec!["p99 worse".to_owned(), "capacity lower".to_owned()],
        };
        assert_eq!(
            two.to_string(),
            "2 checks failed:\n- p99 worse\n- capacity lower"
        );
    }

    #[test]
    fn a_failed_check_exits_with_3_even_under_context_and_any_other_error_with_1() {
        let failed = anyhow::Error::new(CheckFailed {
            reasons: vec!["x".to_owned()],
        });
        assert_eq!(exit_status(&failed), 3);
        let wrapped = Err::<(), _>(failed).context("compare").unwrap_err();
        assert_eq!(exit_status(&wrapped), 3);
        assert_eq!(exit_status(&anyhow::anyhow!("cannot read run.json")), 1);
    }
}
