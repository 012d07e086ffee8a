//! Fixtures shared by the integration tests of every crate.
//!
//! Tests use [`skip::prerequisite_missing`] when something they need is absent,
//! so that the test command can list what did not run and why.

pub mod skip;
