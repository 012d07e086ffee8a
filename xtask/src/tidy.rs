//! `cargo xtask tidy`: source rules that rustc and clippy do not check.
//!
//! The same check runs inside `cargo test` (the test at the bottom), so CI enforces it.
//! Rules, for every `.rs` file in the workspace (hidden directories and `target/` excluded):
//! - its first non-empty line is a `//!` module doc comment (what the module is, its invariants);
//! - it has no leftover `dbg!(` or `todo!(` (this file names them, so it is exempt).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

/// Directories never searched, besides hidden ones: build output, and the daemon's default
/// data directory, whose tool homes may hold anything.
const SKIPPED_DIRS: &[&str] = &["target", "toolforge-data"];

/// Macros that must not be committed.
const BANNED_MACROS: &[&str] = &["dbg!(", "todo!("];

pub fn run(root: &Path) -> anyhow::Result<ExitCode> {
    let problems = check(root)?;
    if !problems.is_empty() {
        bail!(
            "{} tidy problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
    println!("xtask: tidy: ok");
    Ok(ExitCode::SUCCESS)
}

/// Every rule broken in the workspace at `root`, one `path: problem` line each.
pub fn check(root: &Path) -> anyhow::Result<Vec<String>> {
    let this_file = Path::new("xtask/src/tidy.rs");
    let mut problems = Vec::new();
    for path in rust_files(root)? {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("while reading {}", path.display()))?;
        let relative = path.strip_prefix(root).unwrap_or(&path);
        let exempt_from_macros = relative == this_file;
        for problem in check_source(&text, exempt_from_macros) {
            problems.push(format!("{}: {problem}", relative.display()));
        }
    }
    Ok(problems)
}

/// The rules broken by one file's `text`.
fn check_source(text: &str, exempt_from_macros: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let first_line = text.lines().map(str::trim).find(|line| !line.is_empty());
    if !first_line.is_some_and(|line| line.starts_with("//!")) {
        problems.push("does not start with a `//!` module doc comment".to_owned());
    }
    if !exempt_from_macros {
        for banned in BANNED_MACROS {
            if text.contains(banned) {
                problems.push(format!("contains `{banned}`"));
            }
        }
    }
    problems
}

/// The `.rs` files under `root`, sorted, skipping hidden directories and [`SKIPPED_DIRS`].
fn rust_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("while listing {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("while listing {}", dir.display()))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                if !name.starts_with('.') && !SKIPPED_DIRS.contains(&name.as_ref()) {
                    dirs.push(entry.path());
                }
            } else if file_type.is_file() && name.ends_with(".rs") {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use crate::tidy::{check, check_source};

    #[test]
    fn the_workspace_is_tidy() {
        let problems = check(&crate::workspace_root()).expect("the workspace can be read");
        assert!(
            problems.is_empty(),
            "tidy found {} problem(s) (fix them, then run `cargo xtask tidy`):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }

    #[test]
    fn a_file_must_start_with_a_module_doc_comment() {
        assert_eq!(
            check_source("\n//! Doc.\nfn f() {}\n", false),
            Vec::<String>::new()
        );
        assert_eq!(
            check_source("/// Item doc.\nfn f() {}\n", false),
            ["does not start with a `//!` module doc comment"]
        );
        assert_eq!(
            check_source("", false),
            ["does not start with a `//!` module doc comment"]
        );
    }

    #[test]
    fn leftover_debugging_macros_are_reported() {
        let text = concat!("//! Doc.\nfn f() { ", "dbg", "!(1); ", "todo", "!() }\n");
        assert_eq!(
            check_source(text, false),
            ["contains `dbg!(`", "contains `todo!(`"]
        );
        assert!(check_source(text, true).is_empty());
    }
}
