//! What the test suite needs besides Rust, set up in one table: [`PREREQUISITES`].
//!
//! Each prerequisite is set up when it is missing and this process may do so (most need root),
//! and otherwise reported with the reason, so a developer knows what did not run and why.
//! Tests learn about prerequisites through environment variables that [`set_up_all`] collects;
//! a test whose prerequisite is missing calls `test_support::skip::prerequisite_missing`.
//!
//! To add a prerequisite, add an entry to [`PREREQUISITES`] whose set-up function returns what
//! it did (`Ok`) or why it could not (`Err`, shown to the developer), and exports what tests need
//! through [`Context::export`].
//! Debian packages go through [`Context::ensure_debian_packages`], which runs `apt-get update`
//! at most once per run.
//! Planned entries (not set up yet): PostgreSQL, MariaDB and Redis servers.

use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// Debian packages the suite needs on every machine: the local runtime's sandbox (`bwrap`, and
/// `tini-static` as the sandbox's PID 1), its network and process tools.
pub const DEBIAN_PACKAGES: &[&str] = &[
    "bubblewrap",
    "iproute2",
    "iptables",
    "procps",
    "tini",
    // Jobs on the `python3.11` image and the runtime's tests run Debian's /usr/bin/python3,
    // which a machine with another python3 on PATH may lack.
    "python3",
    // `nsenter` runs script health checks inside a job's namespaces.
    "util-linux",
];

/// The official Toolforge clients, at the versions `api-contract.md` was written against.
pub const OFFICIAL_CLIENTS: &[&str] = &[
    "toolforge-cli==0.3.4",
    "toolforge-jobs-framework-cli==16.1.14",
    "toolforge-envvars-cli==0.0.15",
    "toolforge-builds-cli==0.0.24",
    "toolforge-components-cli==0.0.15",
    "toolforge-weld==1.6.13",
];

/// Python tools the tests use to check our output against published specifications.
pub const TEST_TOOLS: &[&str] = &["openapi-spec-validator==0.9.0"];

/// The programs the official clients install, checked after every installation.
pub const OFFICIAL_CLIENT_PROGRAMS: &[&str] = &[
    "toolforge",
    "toolforge-jobs",
    "toolforge-envvars",
    "toolforge-build",
    "toolforge-components",
];

/// The unprivileged system user that runtime tests use to re-run checks without root.
pub const UNPRIV_USER: &str = "toolforge-unpriv";

/// One thing the suite needs, and how to set it up.
pub struct Prerequisite {
    /// Shown in the report.
    pub name: &'static str,
    /// Sets the prerequisite up (or checks it is there) and says what it did;
    /// an error says why it is missing.
    pub set_up: fn(&mut Context) -> anyhow::Result<String>,
}

/// Every prerequisite, set up in this order.
pub const PREREQUISITES: &[Prerequisite] = &[
    Prerequisite {
        name: "debian packages",
        set_up: set_up_debian_packages,
    },
    Prerequisite {
        name: "official clients venv",
        set_up: set_up_clients_venv,
    },
    Prerequisite {
        name: "test tools venv",
        set_up: set_up_test_tools_venv,
    },
    Prerequisite {
        name: "/etc/wmcs-project",
        set_up: set_up_wmcs_project,
    },
    Prerequisite {
        name: "unprivileged user",
        set_up: set_up_unpriv_user,
    },
    Prerequisite {
        name: "SMTP sink",
        set_up: set_up_smtp_sink,
    },
    Prerequisite {
        name: "chromium",
        set_up: set_up_chromium,
    },
];

/// The outcome of [`set_up_all`].
pub struct Setup {
    /// One entry per prerequisite, in table order.
    pub reports: Vec<Report>,
    /// Environment variables for the test run.
    pub env: Vec<(&'static str, OsString)>,
}

/// How setting up one prerequisite went.
pub struct Report {
    /// The prerequisite's [`Prerequisite::name`].
    pub name: &'static str,
    /// What was done, or why the prerequisite is missing.
    pub res: Result<String, String>,
}

/// What set-up functions share.
pub struct Context {
    /// The workspace root.
    pub root: PathBuf,
    /// Whether this process may install packages, create users and write to `/etc`.
    pub is_root: bool,
    apt_updated: bool,
    env: Vec<(&'static str, OsString)>,
}

/// Sets up every prerequisite in [`PREREQUISITES`]; never fails, it reports.
pub fn set_up_all(root: &Path) -> Setup {
    let mut ctx = Context {
        root: root.to_path_buf(),
        is_root: is_root(),
        apt_updated: false,
        env: Vec::new(),
    };
    let reports = PREREQUISITES
        .iter()
        .map(|prereq| {
            println!("xtask: setting up {}", prereq.name);
            let res = (prereq.set_up)(&mut ctx).map_err(|err| format!("{err:#}"));
            Report {
                name: prereq.name,
                res,
            }
        })
        .collect();
    Setup {
        reports,
        env: ctx.env,
    }
}

/// Prints one line per prerequisite: `ok` or `MISSING`, with the detail.
pub fn print_table(reports: &[Report]) {
    let width = reports
        .iter()
        .map(|report| report.name.len())
        .max()
        .unwrap_or(0);
    for report in reports {
        match &report.res {
            Ok(detail) => println!("  {:<width$}  ok       {detail}", report.name),
            Err(reason) => println!("  {:<width$}  MISSING  {reason}", report.name),
        }
    }
}

impl Context {
    /// Passes `key=value` to the test run.
    pub fn export(&mut self, key: &'static str, value: impl Into<OsString>) {
        self.env.push((key, value.into()));
    }

    /// Installs the `packages` that are not installed yet (as root), or says which are missing.
    pub fn ensure_debian_packages(&mut self, packages: &[&str]) -> anyhow::Result<String> {
        let missing = missing_debian_packages(packages)?;
        if missing.is_empty() {
            return Ok(format!("installed: {}", packages.join(" ")));
        }
        let missing = missing.join(" ");
        if !self.is_root {
            bail!(
                "not installed: {missing} (not root, so not installing; \
                 run `sudo apt-get install --no-install-recommends {missing}`)"
            );
        }
        if !self.apt_updated {
            run(Command::new("apt-get").args(["update", "-q"]))?;
            self.apt_updated = true;
        }
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(missing.split(' ')))?;
        let still_missing = missing_debian_packages(packages)?;
        if !still_missing.is_empty() {
            bail!(
                "still not installed after apt-get install: {}",
                still_missing.join(" ")
            );
        }
        Ok(format!("installed now: {missing}"))
    }
}

fn set_up_debian_packages(ctx: &mut Context) -> anyhow::Result<String> {
    ctx.ensure_debian_packages(DEBIAN_PACKAGES)
}

/// A venv with the official clients, at `target/official-clients-venv`.
///
/// A stamp file in the venv records the pins it was made with; the venv is made again from
/// scratch when the stamp is missing (an interrupted install) or differs (the pins changed).
fn set_up_clients_venv(ctx: &mut Context) -> anyhow::Result<String> {
    const STAMP_FILE: &str = "toolforge-pins.txt";
    let venv = ctx.root.join("target").join("official-clients-venv");
    ctx.export("TOOLFORGE_CLIENTS_VENV", &venv);
    let stamp = venv.join(STAMP_FILE);
    let pins = OFFICIAL_CLIENTS.join("\n") + "\n";
    if std::fs::read_to_string(&stamp).is_ok_and(|recorded| recorded == pins)
        && missing_client_programs(&venv).is_empty()
    {
        return Ok(format!("{} (up to date)", venv.display()));
    }

    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .with_context(|| format!("while removing the outdated venv {}", venv.display()))?;
    }
    create_venv(ctx, &venv)?;
    run(Command::new(venv.join("bin").join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .args(OFFICIAL_CLIENTS))?;
    let missing = missing_client_programs(&venv);
    if !missing.is_empty() {
        bail!(
            "pip installed the clients but these programs are missing: {}",
            missing.join(" ")
        );
    }
    std::fs::write(&stamp, pins).with_context(|| format!("while writing {}", stamp.display()))?;
    Ok(format!("{} (installed now)", venv.display()))
}

/// A venv with [`TEST_TOOLS`] (an OpenAPI validator), at `target/test-tools-venv`,
/// exported as `TOOLFORGE_TEST_TOOLS_VENV`; remade when its pins change.
fn set_up_test_tools_venv(ctx: &mut Context) -> anyhow::Result<String> {
    const STAMP_FILE: &str = "test-tools-pins.txt";
    let venv = ctx.root.join("target").join("test-tools-venv");
    ctx.export("TOOLFORGE_TEST_TOOLS_VENV", &venv);
    let stamp = venv.join(STAMP_FILE);
    let pins = TEST_TOOLS.join("\n") + "\n";
    let validator = venv.join("bin").join("openapi-spec-validator");
    if std::fs::read_to_string(&stamp).is_ok_and(|recorded| recorded == pins)
        && validator.is_file()
        && venv.join("bin").join("python").is_file()
    {
        return Ok(format!("{} (up to date)", venv.display()));
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .with_context(|| format!("while removing the outdated venv {}", venv.display()))?;
    }
    create_venv(ctx, &venv)?;
    run(Command::new(venv.join("bin").join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .args(TEST_TOOLS))?;
    if !validator.is_file() {
        bail!(
            "pip installed {} but {} is missing",
            TEST_TOOLS.join(" "),
            validator.display()
        );
    }
    std::fs::write(&stamp, pins).with_context(|| format!("while writing {}", stamp.display()))?;
    Ok(format!("{} (installed now)", venv.display()))
}

/// Creates a venv with the first Python that can: `python3` on `PATH`, else Debian's, which
/// needs `python3-venv` (installed here when root).
fn create_venv(ctx: &mut Context, venv: &Path) -> anyhow::Result<()> {
    let first_err = match run(Command::new("python3").arg("-m").arg("venv").arg(venv)) {
        Ok(()) => return Ok(()),
        Err(err) => err,
    };
    if !ctx.is_root {
        return Err(
            first_err.context("python3 cannot create a venv (on Debian, install python3-venv)")
        );
    }
    ctx.ensure_debian_packages(&["python3", "python3-venv"])?;
    if venv.exists() {
        std::fs::remove_dir_all(venv)
            .with_context(|| format!("while removing the half-made venv {}", venv.display()))?;
    }
    run(Command::new("/usr/bin/python3")
        .arg("-m")
        .arg("venv")
        .arg(venv))
}

/// The programs missing from the venv; `python` too, since it is a symbolic link that dangles
/// once the Python it was made with is gone.
fn missing_client_programs(venv: &Path) -> Vec<&'static str> {
    OFFICIAL_CLIENT_PROGRAMS
        .iter()
        .copied()
        .chain(["python"])
        .filter(|program| !venv.join("bin").join(program).is_file())
        .collect()
}

/// `/etc/wmcs-project`: without it the jobs client prints a warning on every run.
fn set_up_wmcs_project(ctx: &mut Context) -> anyhow::Result<String> {
    let path = Path::new("/etc/wmcs-project");
    if path.exists() {
        return Ok("present".to_owned());
    }
    if !ctx.is_root {
        bail!(
            "missing, and not root, so not created; toolforge-jobs will print a warning on \
             every run (create it with `echo tools | sudo tee /etc/wmcs-project`)"
        );
    }
    std::fs::write(path, "tools\n").with_context(|| format!("while writing {}", path.display()))?;
    Ok("created (tools)".to_owned())
}

/// The system user [`UNPRIV_USER`], exported as `TOOLFORGE_TEST_UNPRIV_USER` when it exists.
fn set_up_unpriv_user(ctx: &mut Context) -> anyhow::Result<String> {
    let exists = || {
        Command::new("getent")
            .args(["passwd", UNPRIV_USER])
            .output()
            .is_ok_and(|output| output.status.success())
    };
    let detail = if exists() {
        format!("{UNPRIV_USER} exists")
    } else if ctx.is_root {
        run(Command::new("useradd").args(["--system", "--no-create-home", UNPRIV_USER]))?;
        format!("{UNPRIV_USER} created")
    } else {
        bail!(
            "user {UNPRIV_USER} missing, and not root, so not created \
             (run `sudo useradd --system --no-create-home {UNPRIV_USER}`)"
        );
    };
    ctx.export("TOOLFORGE_TEST_UNPRIV_USER", UNPRIV_USER);
    Ok(detail)
}

/// The SMTP server the mail tests receive with: Debian's aiosmtpd, run as
/// `/usr/bin/python3 -m aiosmtpd`; that Python is exported as `TOOLFORGE_TEST_SMTP_SINK`.
fn set_up_smtp_sink(ctx: &mut Context) -> anyhow::Result<String> {
    const PYTHON: &str = "/usr/bin/python3";
    let detail = ctx.ensure_debian_packages(&["python3-aiosmtpd"])?;
    let status = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .status()
        .with_context(|| format!("while running {PYTHON}"))?;
    if !status.success() {
        bail!("python3-aiosmtpd is installed but {PYTHON} cannot import aiosmtpd");
    }
    ctx.export("TOOLFORGE_TEST_SMTP_SINK", PYTHON);
    Ok(detail)
}

/// The browser the dashboard's end-to-end tests drive: Debian's `chromium`, checked by loading
/// a page headless; its path is exported as `TOOLFORGE_TEST_CHROMIUM`.
fn set_up_chromium(ctx: &mut Context) -> anyhow::Result<String> {
    const CHROMIUM: &str = "/usr/bin/chromium";
    let detail = ctx.ensure_debian_packages(&["chromium"])?;
    // A profile of its own, so the check neither reads nor leaves a developer's settings.
    let profile = ctx
        .root
        .join("target")
        .join("xtask")
        .join("chromium-check-profile");
    if profile.exists() {
        std::fs::remove_dir_all(&profile)
            .with_context(|| format!("while removing {}", profile.display()))?;
    }
    // coreutils' `timeout`, so that a browser that hangs cannot hang the test command.
    let output = Command::new("timeout")
        .args(["60", CHROMIUM])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-proxy-server",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", "about:blank"])
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("while running {CHROMIUM}"))?;
    // A left-over profile is harmless (the next run removes it), so an error here is not one.
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !dom.contains("<body>") {
        let status = match output.status.code() {
            Some(124) => "it did not finish within 60 s".to_owned(),
            _ => output.status.to_string(),
        };
        bail!(
            "{CHROMIUM} --headless --dump-dom about:blank did not print a page ({status}): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    ctx.export("TOOLFORGE_TEST_CHROMIUM", CHROMIUM);
    Ok(detail)
}

/// The `packages` that dpkg does not list as installed.
fn missing_debian_packages<'a>(packages: &[&'a str]) -> anyhow::Result<Vec<&'a str>> {
    let mut missing = Vec::new();
    for &package in packages {
        let output = match Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", package])
            .output()
        {
            Ok(output) => output,
            Err(err) if err.kind() == ErrorKind::NotFound => bail!(
                "dpkg-query not found, so this is not Debian; install these yourself: {}",
                packages.join(" ")
            ),
            Err(err) => return Err(err).context("while running dpkg-query"),
        };
        // Statuses look like `install ok installed` or `deinstall ok config-files`.
        let installed = output.status.success()
            && String::from_utf8_lossy(&output.stdout).ends_with(" installed");
        if !installed {
            missing.push(package);
        }
    }
    Ok(missing)
}

/// Whether this process runs with effective uid 0, read from `/proc` to need no libc binding.
fn is_root() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    // `Uid:` is followed by the real, effective, saved and filesystem uids.
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|uids| uids.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0")
}

/// Runs `cmd` with inherited output, after echoing it; fails unless it exits with 0.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    println!("xtask: $ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("while starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::prereqs::{OFFICIAL_CLIENTS, missing_debian_packages};

    #[test]
    fn every_official_client_is_pinned_to_one_version() {
        for pin in OFFICIAL_CLIENTS {
            let (name, version) = pin.split_once("==").expect("pins are `name==version`");
            assert!(!name.is_empty() && !version.is_empty(), "bad pin {pin}");
        }
    }

    #[test]
    fn a_package_that_does_not_exist_is_reported_missing() {
        let res = missing_debian_packages(&["no-such-package-toolforge-xtask"]);
        match res {
            Ok(missing) => assert_eq!(missing, ["no-such-package-toolforge-xtask"]),
            // Not a Debian machine: the error names the package.
            Err(err) => assert!(format!("{err:#}").contains("no-such-package-toolforge-xtask")),
        }
    }
}
