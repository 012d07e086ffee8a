//! `cargo xtask test`: the README's test command.
//!
//! It sets up the prerequisites ([`crate::prereqs`]), builds every binary (integration tests
//! start the real `toolforged`), runs the whole workspace suite with `cargo nextest run` (or
//! `cargo test` where nextest is not installed) and, after nextest, the doc tests it does not
//! run, then prints what could not be set up and which tests skipped, and why.
//! Arguments after `--` go to the runner and narrow the run; doc tests are then left out.
//! The exit status is the test runner's; under `CI=true` a prerequisite that could not be set up
//! also fails the run, since CI must run everything.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, ExitCode, ExitStatus, Stdio};

use anyhow::Context as _;

use crate::prereqs;

pub fn run(root: &Path, runner_args: &[String]) -> anyhow::Result<ExitCode> {
    let ci = std::env::var("CI").is_ok_and(|ci| ci == "true");

    println!("xtask: prerequisites");
    let setup = prereqs::set_up_all(root);
    prereqs::print_table(&setup.reports);

    println!("xtask: building the binaries");
    let status = cargo(root)
        .args(["build", "--workspace", "--bins"])
        .status()
        .context("while starting cargo build")?;
    if !status.success() {
        print_missing_prerequisites(&setup.reports);
        eprintln!("xtask: building the binaries failed ({status}); not running the tests");
        return Ok(exit_code(status));
    }

    let skip_log = root.join("target").join("xtask").join("skipped-tests.log");
    std::fs::create_dir_all(skip_log.parent().expect("the skip log is in a directory"))
        .context("while creating target/xtask")?;
    std::fs::write(&skip_log, "")
        .with_context(|| format!("while emptying {}", skip_log.display()))?;
    // Tests that re-run themselves as an unprivileged user record their skips too.
    std::fs::set_permissions(&skip_log, std::fs::Permissions::from_mode(0o666))
        .with_context(|| format!("while making {} writable by all", skip_log.display()))?;

    let nextest = nextest_is_installed(root);
    let mut runner = cargo(root);
    if nextest {
        runner.args(["nextest", "run", "--no-fail-fast"]);
    } else {
        println!("xtask: cargo-nextest is not installed; running `cargo test` instead");
        runner.args(["test", "--no-fail-fast"]);
    }
    // `--workspace` would override a `-p` given to narrow the run.
    if !selects_packages(runner_args) {
        runner.arg("--workspace");
    }
    runner.args(runner_args);
    let mut status = run_tests(&mut runner, &setup.env, &skip_log)?;
    // nextest does not run doc tests; a run narrowed by arguments is a developer's quick one.
    if nextest && runner_args.is_empty() {
        let mut doc_tests = cargo(root);
        doc_tests.args(["test", "--workspace", "--no-fail-fast", "--doc"]);
        let doc_status = run_tests(&mut doc_tests, &setup.env, &skip_log)?;
        if status.success() {
            status = doc_status;
        }
    }

    let skipped = std::fs::read_to_string(&skip_log)
        .with_context(|| format!("while reading {}", skip_log.display()))?;
    let n_missing = print_summary(&setup.reports, &skipped);

    if !status.success() {
        eprintln!("xtask: some tests failed ({status})");
        return Ok(exit_code(status));
    }
    if ci && n_missing > 0 {
        eprintln!("xtask: CI=true and {n_missing} prerequisite(s) could not be set up: failing");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `runner` with the prerequisites' environment and the skip log.
fn run_tests(
    runner: &mut Command,
    env: &[(&'static str, OsString)],
    skip_log: &Path,
) -> anyhow::Result<ExitStatus> {
    runner
        .envs(env.iter().map(|(key, value)| (key, value)))
        .env("TOOLFORGE_SKIP_LOG", skip_log);
    println!("xtask: $ {runner:?}");
    runner.status().context("while starting the test runner")
}

/// Prints the prerequisites that are missing and the skipped tests; returns how many are missing.
fn print_summary(reports: &[prereqs::Report], skip_log: &str) -> usize {
    let n_missing = print_missing_prerequisites(reports);
    let skipped = skipped_tests(skip_log);
    if skipped.is_empty() {
        println!("no tests skipped");
    } else {
        println!("skipped tests ({}):", skipped.len());
        for line in skipped {
            println!("  {line}");
        }
    }
    n_missing
}

/// Prints the prerequisites that could not be set up, with the reasons; returns how many.
fn print_missing_prerequisites(reports: &[prereqs::Report]) -> usize {
    println!();
    println!("xtask: summary");
    let mut n_missing = 0;
    for report in reports {
        if let Err(reason) = &report.res {
            if n_missing == 0 {
                println!("prerequisites that could not be set up:");
            }
            n_missing += 1;
            println!("  {}: {reason}", report.name);
        }
    }
    if n_missing == 0 {
        println!("all prerequisites set up");
    }
    n_missing
}

/// The distinct `SKIPPED: <test>: <reason>` lines of the skip log, in order.
fn skipped_tests(skip_log: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = Vec::new();
    for line in skip_log
        .lines()
        .filter(|line| line.starts_with("SKIPPED: "))
    {
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines
}

/// Whether the runner's arguments choose packages (`-p foo`, `-pfoo`, `--package[=]foo`).
fn selects_packages(runner_args: &[String]) -> bool {
    runner_args
        .iter()
        .take_while(|arg| *arg != "--")
        .any(|arg| {
            arg.starts_with("--package") || (arg.starts_with("-p") && !arg.starts_with("--"))
        })
}

/// `cargo`, the one running xtask when there is one, in the workspace root.
fn cargo(root: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root);
    cmd
}

fn nextest_is_installed(root: &Path) -> bool {
    cargo(root)
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The exit code to pass on: the child's, or 1 when a signal ended it.
fn exit_code(status: ExitStatus) -> ExitCode {
    match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use crate::test::{selects_packages, skipped_tests};

    #[test]
    fn skipped_tests_are_listed_once_each_in_order() {
        let log = "SKIPPED: b: no venv\nnoise\nSKIPPED: a: not root\nSKIPPED: b: no venv\n";
        assert_eq!(
            skipped_tests(log),
            ["SKIPPED: b: no venv", "SKIPPED: a: not root"]
        );
    }

    #[test]
    fn the_whole_workspace_is_tested_unless_packages_are_chosen() {
        let args = |args: &[&str]| args.iter().map(|arg| arg.to_string()).collect::<Vec<_>>();
        assert!(!selects_packages(&args(&[])));
        assert!(!selects_packages(&args(&[
            "-E",
            "test(r42)",
            "--",
            "--package"
        ])));
        assert!(selects_packages(&args(&["-p", "store"])));
        assert!(selects_packages(&args(&["-pstore"])));
        assert!(selects_packages(&args(&["--package=store"])));
    }

    #[test]
    fn an_empty_log_means_no_skips() {
        assert!(skipped_tests("").is_empty());
    }
}
