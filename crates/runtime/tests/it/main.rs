//! Integration tests of the runtime crate: real workloads in real namespaces and cgroups.
//!
//! Tests that need root or bubblewrap report `SKIPPED: …` through `test_support` when it is
//! missing. Each test uses its own cgroup parent, so tests run in parallel and never touch
//! a real daemon's workloads.

mod images;
mod isolation;
mod limits;
mod network;
mod restart;
mod support;
mod unprivileged;
