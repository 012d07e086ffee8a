//! Skipping a test whose prerequisite is missing.
//!
//! A skipped test prints `SKIPPED: <test>: <reason>` on standard error and returns.
//! When `TOOLFORGE_SKIP_LOG` names a file, the same line is appended to it, so the
//! test command can print every skip at the end of the run.
//! Under `CI=true` a missing prerequisite is a failure: CI must run everything.

use std::io::Write;

/// Reports that `test` cannot run because of `reason`.
///
/// Returns normally (the caller then returns from the test) unless `CI=true`,
/// in which case it panics so the run fails.
#[track_caller]
pub fn prerequisite_missing(test: &str, reason: &str) {
    let line = format!("SKIPPED: {test}: {reason}");
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{line} (CI=true: a missing prerequisite is a failure)");
    }
    eprintln!("{line}");
    if let Ok(path) = std::env::var("TOOLFORGE_SKIP_LOG") {
        let res = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| writeln!(file, "{line}"));
        if let Err(err) = res {
            eprintln!("could not record the skip in {path}: {err}");
        }
    }
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
