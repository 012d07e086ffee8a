//! System tests of the `toolforge` binary against a real `toolforged`.
//!
//! The daemon binary must be built first (`cargo build -p toolforged`, or
//! `cargo xtask test`, which builds every binary).

mod envvars;
mod jobs;
mod webservice;
mod whoami;

use std::path::Path;
use std::process::{Command, Output};

use test_support::daemon::{Daemon, daemon_bin};

/// The `toolforge` binary built for this test run.
fn toolforge() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_toolforge"))
}

/// A fresh daemon with user `alice` and her tool `mytool`.
fn daemon_with_tool() -> Daemon {
    let daemon = Daemon::start(&daemon_bin());
    daemon.create_user("alice", "alice@example.org");
    daemon.create_tool("mytool", "alice");
    daemon
}

/// `toolforge <args>` run as `mytool` would run it from its home.
fn as_mytool(daemon: &Daemon, args: &[&str]) -> Command {
    let mut cmd = daemon.tool_command("mytool", toolforge());
    cmd.args(args);
    cmd
}

/// What a finished command printed, and its exit status.
#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Ran {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("toolforge runs");
    Ran {
        code: status.code(),
        stdout: String::from_utf8(stdout).expect("UTF-8 output"),
        stderr: String::from_utf8(stderr).expect("UTF-8 output"),
    }
}
