//! The `jobs` crate's integration tests: one binary, one module per area.
//!
//! - `pyrandom`: the Python-compatible generator against numbers CPython printed.
//! - `schedule`: parsing with the original's rules, and the next firing.
//! - `schedule_python`: `schedule_actual` of every macro against real Python for 1,000 names.
//! - `scheduler`: the scheduler's core driven by a simulated clock.

mod pyrandom;
mod schedule;
mod schedule_python;
mod scheduler;
