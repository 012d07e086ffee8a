//! Running programs the way a tool's maintainer does, including the official Python clients.
//!
//! A tool's command gets a cleared environment with only what a shell on a bastion would give
//! the tool: `PATH`, `HOME` (the tool home), `KUBECONFIG`, `LANG`, and `REQUESTS_CA_BUNDLE`
//! pointing at the platform's CA (`api-contract.md` §1.5).
//! `REQUESTS_CA_BUNDLE` is set for that child only: set globally it would cut pip off PyPI.
//!
//! The official clients live in a venv that `cargo xtask test` makes; its directory is
//! `TOOLFORGE_CLIENTS_VENV`, by default `<workspace>/target/official-clients-venv`.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The programs the venv must have; kept in step with `xtask/src/prereqs.rs`.
const CLIENT_PROGRAMS: &[&str] = &[
    "toolforge",
    "toolforge-jobs",
    "toolforge-envvars",
    "toolforge-build",
    "toolforge-components",
];

/// `PATH` for tool commands when the test process has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The `bin` directory of the official clients' venv, or why it is unusable.
///
/// Tests pass the error to [`crate::skip::prerequisite_missing`].
pub fn clients_venv() -> Result<PathBuf, String> {
    let venv = match std::env::var_os("TOOLFORGE_CLIENTS_VENV") {
        Some(venv) if !venv.is_empty() => PathBuf::from(venv),
        _ => crate::workspace_root()
            .join("target")
            .join("official-clients-venv"),
    };
    venv_bin_dir(&venv)
}

/// The `openapi-spec-validator` program of the test tools' venv (`TOOLFORGE_TEST_TOOLS_VENV`,
/// by default `<workspace>/target/test-tools-venv`), or why it is unusable.
pub fn openapi_validator() -> Result<PathBuf, String> {
    let venv = match std::env::var_os("TOOLFORGE_TEST_TOOLS_VENV") {
        Some(venv) if !venv.is_empty() => PathBuf::from(venv),
        _ => crate::workspace_root()
            .join("target")
            .join("test-tools-venv"),
    };
    let program = venv.join("bin").join("openapi-spec-validator");
    if program.is_file() {
        Ok(program)
    } else {
        Err(format!(
            "{} is not installed; `cargo xtask test` installs it",
            program.display()
        ))
    }
}

/// `venv`'s `bin` directory, if every official client is installed there.
fn venv_bin_dir(venv: &Path) -> Result<PathBuf, String> {
    let bin = venv.join("bin");
    let missing: Vec<&str> = CLIENT_PROGRAMS
        .iter()
        .copied()
        .filter(|program| !bin.join(program).is_file())
        .collect();
    if missing.is_empty() {
        Ok(bin)
    } else {
        Err(format!(
            "the official Toolforge clients are not installed in {} (missing {}); \
             `cargo xtask test` installs them",
            venv.display(),
            missing.join(", ")
        ))
    }
}

/// A command running `program` as tool `tool` would from its home (see the module docs).
pub(crate) fn tool_command(
    homes_dir: &Path,
    ca_cert: &Path,
    tool: &str,
    program: &OsStr,
) -> Command {
    let home = homes_dir.join(tool);
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", inherited_path())
        .env("HOME", &home)
        .env("KUBECONFIG", home.join(".kube").join("config"))
        .env("REQUESTS_CA_BUNDLE", ca_cert)
        .env("LANG", "C.UTF-8")
        .current_dir(&home);
    cmd
}

/// [`tool_command`] for an official client, with the venv first on `PATH` so that the
/// umbrella `toolforge` finds its `toolforge-*` sub-commands.
pub(crate) fn official_client_command(
    homes_dir: &Path,
    ca_cert: &Path,
    tool: &str,
    program: &str,
) -> Result<Command, String> {
    let bin = clients_venv()?;
    let mut cmd = tool_command(homes_dir, ca_cert, tool, bin.join(program).as_os_str());
    let mut path = bin.into_os_string();
    path.push(":");
    path.push(inherited_path());
    cmd.env("PATH", path);
    Ok(cmd)
}

/// The test process's `PATH`, or [`DEFAULT_PATH`].
fn inherited_path() -> OsString {
    std::env::var_os("PATH")
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| OsString::from(DEFAULT_PATH))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::ffi::OsStr;
    use std::path::Path;

    use crate::clients::{CLIENT_PROGRAMS, tool_command, venv_bin_dir};

    #[test]
    fn a_tool_command_sees_only_the_tool_environment() {
        let cmd = tool_command(
            Path::new("/d/project"),
            Path::new("/d/pki/ca.crt"),
            "mytool",
            OsStr::new("toolforge-jobs"),
        );
        let env: BTreeMap<String, Option<String>> = cmd
            .get_envs()
            .map(|(key, value)| {
                let value = value.map(|value| value.to_string_lossy().into_owned());
                (key.to_string_lossy().into_owned(), value)
            })
            .collect();
        let keys: Vec<&str> = env.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["HOME", "KUBECONFIG", "LANG", "PATH", "REQUESTS_CA_BUNDLE"]
        );
        assert_eq!(env["HOME"].as_deref(), Some("/d/project/mytool"));
        assert_eq!(
            env["KUBECONFIG"].as_deref(),
            Some("/d/project/mytool/.kube/config")
        );
        assert_eq!(env["REQUESTS_CA_BUNDLE"].as_deref(), Some("/d/pki/ca.crt"));
        assert_eq!(env["LANG"].as_deref(), Some("C.UTF-8"));
        assert!(env["PATH"].as_ref().is_some_and(|path| !path.is_empty()));
        assert_eq!(cmd.get_current_dir(), Some(Path::new("/d/project/mytool")));
        assert_eq!(cmd.get_program(), "toolforge-jobs");
    }

    #[test]
    fn a_venv_without_the_clients_is_reported_with_what_is_missing() {
        let venv = tempfile::tempdir().expect("a temporary directory");
        let err = venv_bin_dir(venv.path()).expect_err("an empty venv is not usable");
        assert!(err.contains("missing toolforge, toolforge-jobs"), "{err}");
        assert!(err.contains("cargo xtask test"), "{err}");
    }

    #[test]
    fn a_venv_with_every_client_is_found() {
        let venv = tempfile::tempdir().expect("a temporary directory");
        let bin = venv.path().join("bin");
        std::fs::create_dir(&bin).expect("bin/ can be created");
        for program in CLIENT_PROGRAMS {
            std::fs::write(bin.join(program), "").expect("a stand-in program can be written");
        }
        assert_eq!(venv_bin_dir(venv.path()), Ok(bin));
    }
}
