//! System tests of `toolforged`: the real binary on a temporary data directory.

mod admin;
mod admin_ops;
mod dashboard;
mod dashboard_admin;
mod dashboard_e2e;
mod dashboard_http;
mod envvars;
mod foundation;
mod gateway;
mod jobs;
mod logs;
mod mail;
mod official_clients;
mod proxy;
mod quotas;
mod supervision;
mod webservice;

use std::path::Path;

use test_support::daemon::Daemon;

/// The daemon binary built for this test run.
fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_toolforged"))
}

/// A fresh daemon with user `alice` and her tool `mytool`.
fn daemon_with_tool() -> Daemon {
    let daemon = Daemon::start(bin());
    daemon.create_user("alice", "alice@example.org");
    daemon.create_tool("mytool", "alice");
    daemon
}
