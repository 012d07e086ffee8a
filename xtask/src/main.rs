//! Project automation, run as `cargo xtask <command>` (an alias in `.cargo/config.toml`).
//!
//! - `cargo xtask test [-- <args for the test runner>]`: sets up what the suite needs, builds the
//!   binaries, runs the whole workspace suite and reports what was skipped.
//! - `cargo xtask tidy`: checks the source rules that `cargo test` also checks.
//!
//! Everything here runs programs through `std::process::Command`; there are no shell scripts.

mod prereqs;
mod test;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test [-- <args>]  set up the prerequisites, build the binaries and run the whole test suite;
                    <args> go to `cargo nextest run` (or `cargo test`), e.g. `-- -p store`
  tidy              check that every .rs file starts with `//!` and has no dbg!/todo!";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    match command.as_deref() {
        Some("test") => test::run(&workspace_root(), runner_args(&rest)?),
        Some("tidy") => {
            if !rest.is_empty() {
                bail!("`tidy` takes no arguments\n{USAGE}");
            }
            tidy::run(&workspace_root())
        }
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("{USAGE}");
            Ok(ExitCode::FAILURE)
        }
        Some(other) => bail!("unknown command `{other}`\n{USAGE}"),
    }
}

/// The arguments after `--`, which go to the test runner unchanged.
fn runner_args(rest: &[String]) -> anyhow::Result<&[String]> {
    match rest.split_first() {
        None => Ok(&[]),
        Some((first, runner_args)) if first == "--" => Ok(runner_args),
        Some((first, _)) => {
            bail!(
                "unexpected argument `{first}`: put arguments for the test runner after `--`\n{USAGE}"
            )
        }
    }
}

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask's manifest directory has a parent, the workspace root")
        .to_path_buf()
}
