//! Fixtures shared by the integration tests of every crate.
//!
//! - [`skip`]: tests use [`skip::prerequisite_missing`] when something they need is absent,
//!   so that the test command can list what did not run and why.
//! - [`daemon`]: a real `toolforged` on a temporary data directory ([`daemon::Daemon`]),
//!   with its admin command and commands run as a tool.
//! - [`clients`]: where the official Python clients are ([`clients::clients_venv`]).
//! - [`poll`]: [`poll::eventually`], for waiting without fixed sleeps.
//! - [`smtp`]: a real SMTP server (aiosmtpd) that keeps what it receives ([`smtp::SmtpSink`]).
//! - [`browser`]: a real headless Chromium driven over the DevTools protocol
//!   ([`browser::Browser`], [`browser::Page`]), with screenshots for review.

pub mod browser;
pub mod clients;
pub mod daemon;
pub mod https;
pub mod poll;
pub mod skip;
pub mod smtp;

use std::path::{Path, PathBuf};

/// The workspace root (this crate is `crates/test-support`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("test-support lives two levels below the workspace root")
        .to_path_buf()
}
