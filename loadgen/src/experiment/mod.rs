//! Running a scenario (see `docs/experiments.md`). [`schedule`]: when each operation is due.

pub mod schedule;
