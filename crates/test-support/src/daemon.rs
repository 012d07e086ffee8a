//! A real `toolforged` for integration tests, started on a temporary data directory.
//!
//! The harness codes to the interface in `design.md` ("Interfaces that tests, scripts and
//! benchmarks rely on"): `toolforged serve` on port 0 everywhere, the first start's
//! `admin password: <password>` line on standard output, `<data-dir>/run/addresses.json`
//! written once every listener accepts connections, `<data-dir>/pki/ca.crt`, and
//! `toolforged admin --data-dir D …` for administration.
//!
//! Invariants:
//! - the daemon never sees the test process's `TOOLFORGE_*` variables (a developer's shell
//!   must not change what a test runs against), only those the test passes in [`DaemonOptions`];
//! - its standard output and error are forwarded line by line to the test's standard error,
//!   prefixed `[toolforged]`, so a failing test shows what the daemon said, and are kept for
//!   assertions ([`Daemon::captured_stdout`], [`Daemon::captured_stderr`]);
//! - dropping a [`Daemon`] stops it (SIGTERM, then SIGKILL) and removes its temporary data
//!   directory, unless `TOOLFORGE_KEEP_TEST_DATA=1`.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use serde::Deserialize;
use tempfile::TempDir;

use crate::poll::eventually;

/// How long the daemon may take to start or to stop after SIGTERM.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(30);

/// The prefix of the line on which the first start prints the admin's password.
const ADMIN_PASSWORD_PREFIX: &str = "admin password: ";

/// The listeners' addresses, from `<data-dir>/run/addresses.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Addresses {
    /// The API gateway (HTTPS, client certificates).
    pub api: SocketAddr,
    /// The dashboard's web server.
    pub web: SocketAddr,
    /// The front proxy.
    pub proxy: SocketAddr,
}

impl Addresses {
    /// Parses the content of `addresses.json`; keys other than the three are ignored.
    pub fn parse(json: &str) -> Result<Addresses, String> {
        serde_json::from_str(json).map_err(|err| format!("not a valid addresses.json: {err}"))
    }
}

/// How to start a [`Daemon`]: extra flags, environment, an existing data directory.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    data_dir: Option<PathBuf>,
    homes_dir: Option<PathBuf>,
    run_as: Option<(u32, u32)>,
}

impl DaemonOptions {
    /// Adds a flag after the fixed ones, e.g. `--allow-unisolated-jobs`.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> DaemonOptions {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Sets an environment variable for the daemon.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> DaemonOptions {
        self.env
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Runs on `dir` instead of a fresh temporary directory; the caller owns `dir`, which is
    /// never removed. To restart on the same data, prefer [`Daemon::restart`].
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> DaemonOptions {
        self.data_dir = Some(dir.into());
        self
    }

    /// Passes `--homes-dir dir` (default `<data-dir>/project`).
    pub fn homes_dir(mut self, dir: impl Into<PathBuf>) -> DaemonOptions {
        self.homes_dir = Some(dir.into());
        self
    }

    /// Runs the daemon as `uid`/`gid` (the caller must be root, and the binary and the
    /// data directory must be usable by that user).
    pub fn run_as(mut self, uid: u32, gid: u32) -> DaemonOptions {
        self.run_as = Some((uid, gid));
        self
    }

    /// Starts `bin serve` with these options and waits until it is ready.
    pub fn start(self, bin: &Path) -> Daemon {
        let data_dir = match &self.data_dir {
            Some(dir) => DataDir::Given(dir.clone()),
            None => DataDir::Temporary(temporary_data_dir()),
        };
        let homes_dir = self
            .homes_dir
            .clone()
            .unwrap_or_else(|| data_dir.path().join("project"));
        let mut daemon = Daemon {
            bin: bin.to_path_buf(),
            options: self,
            data_dir,
            homes_dir,
            child: None,
            captured: Arc::default(),
            addresses: None,
            admin_password: None,
        };
        daemon.spawn();
        daemon
    }
}

/// A running (or stopped, restartable) `toolforged serve`.
#[derive(Debug)]
pub struct Daemon {
    bin: PathBuf,
    options: DaemonOptions,
    data_dir: DataDir,
    homes_dir: PathBuf,
    child: Option<Child>,
    /// What the current run printed.
    captured: Arc<Mutex<Captured>>,
    addresses: Option<Addresses>,
    /// From the first start; it is only ever printed then.
    admin_password: Option<String>,
}

impl Daemon {
    /// Starts `bin serve` on a fresh temporary data directory and waits until it is ready.
    pub fn start(bin: &Path) -> Daemon {
        DaemonOptions::default().start(bin)
    }

    /// The data directory (`--data-dir`).
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The directory holding tool homes (`<data-dir>/project` unless `--homes-dir` was given).
    pub fn homes_dir(&self) -> &Path {
        &self.homes_dir
    }

    /// The home of `tool`.
    pub fn tool_home(&self, tool: &str) -> PathBuf {
        self.homes_dir.join(tool)
    }

    /// The listeners' addresses of the current run.
    pub fn addresses(&self) -> Addresses {
        self.addresses
            .expect("the daemon is running (addresses are known once it is ready)")
    }

    /// `https://127.0.0.1:PORT`, the API gateway's URL.
    pub fn api_url(&self) -> String {
        format!("https://{}", self.addresses().api)
    }

    /// `<data-dir>/pki/ca.crt`, the platform's CA certificate.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.data_dir().join("pki").join("ca.crt")
    }

    /// The admin's one-time password, printed at the first start.
    pub fn admin_password(&self) -> &str {
        self.admin_password.as_deref().expect(
            "the admin password is known only when this harness made the first start \
             (the daemon prints it once)",
        )
    }

    /// What the daemon printed on standard output since it last started.
    ///
    /// Output is read by another thread, so a line printed just before the daemon became ready
    /// may not be here yet: wait for it with [`eventually`].
    pub fn captured_stdout(&self) -> String {
        lock(&self.captured).stdout.clone()
    }

    /// What the daemon printed on standard error since it last started.
    pub fn captured_stderr(&self) -> String {
        lock(&self.captured).stderr.clone()
    }

    /// Stops the daemon cleanly (see [`Daemon::shut_down`]) and removes its data.
    pub fn stop(mut self) -> ExitStatus {
        self.shut_down()
    }

    /// Sends SIGTERM and waits for the exit (SIGKILL after 30 s); the data stays, so the
    /// daemon can be [`restart`](Daemon::restart)ed and its files inspected.
    pub fn shut_down(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the daemon is running");
        self.addresses = None;
        stop_child(&mut child, DAEMON_TIMEOUT)
    }

    /// Kills the daemon with SIGKILL, as a crash would; the data stays.
    pub fn kill9(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the daemon is running");
        self.addresses = None;
        signal_child(&child, Signal::SIGKILL);
        child.wait().expect("waiting for a killed child succeeds")
    }

    /// Starts the daemon again on the same data, with the same options; a running daemon is
    /// shut down first.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.shut_down();
        }
        self.spawn();
    }

    /// Like [`restart`](Daemon::restart), with other flags and environment.
    /// `options` must not name a data directory: the daemon keeps its own.
    pub fn restart_with(&mut self, options: DaemonOptions) {
        assert!(
            options.data_dir.is_none() && options.homes_dir.is_none(),
            "restart_with keeps the data and homes directories"
        );
        self.options.args = options.args;
        self.options.env = options.env;
        self.restart();
    }

    /// `toolforged admin --data-dir D`, to add arguments (or stdin) to.
    pub fn admin_command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("admin").arg("--data-dir").arg(self.data_dir());
        remove_toolforge_env(&mut cmd);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs `toolforged admin --data-dir D <args…>` and returns what it did.
    pub fn admin(&self, args: &[&str]) -> Output {
        self.admin_command()
            .args(args)
            .output()
            .unwrap_or_else(|err| panic!("could not run {} admin: {err}", self.bin.display()))
    }

    /// [`admin`](Daemon::admin), asserting success; returns standard output.
    #[track_caller]
    pub fn admin_ok(&self, args: &[&str]) -> String {
        let output = self.admin(args);
        assert!(
            output.status.success(),
            "`toolforged admin {}` failed ({})\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        String::from_utf8(output.stdout).expect("admin output is UTF-8")
    }

    /// [`admin_ok`](Daemon::admin_ok) with `--json` appended; returns the parsed document.
    #[track_caller]
    pub fn admin_json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        let stdout = self.admin_ok(&args);
        serde_json::from_str(&stdout).unwrap_or_else(|err| {
            panic!(
                "`toolforged admin {}` printed invalid JSON ({err}):\n{stdout}",
                args.join(" ")
            )
        })
    }

    /// `admin user create NAME --email EMAIL --json`.
    #[track_caller]
    pub fn create_user(&self, name: &str, email: &str) -> serde_json::Value {
        self.admin_json(&["user", "create", name, "--email", email])
    }

    /// `admin tool create NAME --maintainer USER --json`.
    #[track_caller]
    pub fn create_tool(&self, name: &str, maintainer: &str) -> serde_json::Value {
        self.admin_json(&["tool", "create", name, "--maintainer", maintainer])
    }

    /// One keep-alive HTTPS connection to the API gateway presenting `tool`'s client
    /// certificate, verifying the gateway against this daemon's CA.
    pub fn tool_connection(&self, tool: &str) -> crate::https::HttpsConnection {
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        };
        let home = self.tool_home(tool);
        let cert = read(home.join(".toolskube/client.crt"));
        let key = read(home.join(".toolskube/client.key"));
        let ca = read(self.ca_cert_path());
        crate::https::HttpsConnection::connect(
            self.addresses().api,
            "localhost",
            &ca,
            Some((&cert, &key)),
        )
        .unwrap_or_else(|err| panic!("connecting to the gateway as {tool}: {err}"))
    }

    /// A command running `program` as `tool` would, from its home, with only `PATH`, `HOME`,
    /// `KUBECONFIG`, `LANG` and `REQUESTS_CA_BUNDLE` (this daemon's CA) in its environment.
    pub fn tool_command(&self, tool: &str, program: impl AsRef<OsStr>) -> Command {
        crate::clients::tool_command(
            &self.homes_dir,
            &self.ca_cert_path(),
            tool,
            program.as_ref(),
        )
    }

    /// [`tool_command`](Daemon::tool_command) for an official client such as
    /// `toolforge-jobs`, with the clients' venv first on `PATH`; `Err` says why the clients
    /// are unavailable, for [`crate::skip::prerequisite_missing`].
    pub fn official_client(&self, tool: &str, program: &str) -> Result<Command, String> {
        crate::clients::official_client_command(
            &self.homes_dir,
            &self.ca_cert_path(),
            tool,
            program,
        )
    }

    /// Starts `serve` and waits for the admin password (on a first start) and a fresh
    /// `addresses.json`.
    fn spawn(&mut self) {
        let data_dir = self.data_dir().to_path_buf();
        let addresses_path = data_dir.join("run").join("addresses.json");
        // A file left by a crash must not be taken for this run's.
        let stale = AddressesFile::read(&addresses_path);
        let first_start = !self.ca_cert_path().exists();

        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve").arg("--data-dir").arg(&data_dir);
        if let Some(homes_dir) = &self.options.homes_dir {
            cmd.arg("--homes-dir").arg(homes_dir);
        }
        cmd.args(["--api-addr", "127.0.0.1:0"])
            .args(["--web-addr", "127.0.0.1:0"])
            .args(["--proxy-addr", "127.0.0.1:0"])
            .args(&self.options.args);
        remove_toolforge_env(&mut cmd);
        if let Some((uid, gid)) = self.options.run_as {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        cmd.envs(self.options.env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|err| panic!("could not start {}: {err}", self.bin.display()));

        self.captured = Arc::default();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        forward_lines(stdout, Stream::Stdout, Arc::clone(&self.captured));
        forward_lines(stderr, Stream::Stderr, Arc::clone(&self.captured));
        self.child = Some(child);

        let captured = Arc::clone(&self.captured);
        let child = self.child.as_mut().expect("just started");
        let mut last_problem = String::from("no addresses.json yet");
        let ready = eventually(DAEMON_TIMEOUT, || {
            if let Some(status) = child.try_wait().expect("waiting for the daemon succeeds") {
                return Some(Err(status));
            }
            let admin_password = lock(&captured).admin_password.clone();
            if first_start && admin_password.is_none() {
                last_problem = "no `admin password: …` line on standard output yet".to_owned();
                return None;
            }
            let current = AddressesFile::read(&addresses_path)?;
            if stale.as_ref() == Some(&current) {
                last_problem =
                    "addresses.json is still the one left by the previous run".to_owned();
                return None;
            }
            match Addresses::parse(&current.content) {
                Ok(addresses) => Some(Ok((addresses, admin_password))),
                Err(err) => {
                    last_problem = err;
                    None
                }
            }
        });
        match ready {
            Some(Ok((addresses, admin_password))) => {
                self.addresses = Some(addresses);
                if first_start {
                    self.admin_password = admin_password;
                }
            }
            Some(Err(status)) => {
                self.child = None;
                panic!(
                    "toolforged exited during start-up ({status}); its output is above, \
                     prefixed [toolforged]"
                );
            }
            None => panic!(
                "toolforged was not ready within {DAEMON_TIMEOUT:?}: {last_problem} \
                 (waiting for {}); its output is above, prefixed [toolforged]",
                addresses_path.display()
            ),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, Duration::from_secs(10));
        }
        // Workloads outlive their daemon on purpose (the next start adopts them); a test's
        // daemon has no next start, so its workloads go with it.
        kill_workloads(self.data_dir.path());
        if std::env::var("TOOLFORGE_KEEP_TEST_DATA").is_ok_and(|keep| keep == "1") {
            let dir = std::mem::replace(&mut self.data_dir, DataDir::Given(PathBuf::new()));
            let kept = match dir {
                DataDir::Temporary(dir) => dir.keep(),
                DataDir::Given(dir) => dir,
            };
            eprintln!(
                "TOOLFORGE_KEEP_TEST_DATA=1: kept the daemon's data in {}",
                kept.display()
            );
        }
    }
}

/// The path of `toolforged` in the target directory of the running test, for tests outside
/// the `toolforged` crate (which use `env!("CARGO_BIN_EXE_toolforged")`).
///
/// Panics with what to do when it has not been built; `cargo xtask test` builds it first.
pub fn daemon_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    // Test binaries are `target/<profile>/deps/<name>-<hash>`; binaries are in `<profile>/`.
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps");
    let bin = profile_dir.join("toolforged");
    assert!(
        bin.is_file(),
        "{} does not exist: build it with `cargo build --bins` (`cargo xtask test` does)",
        bin.display()
    );
    bin
}

/// The name of the cgroup directory under which the daemon on `data_dir` runs its
/// workloads: the rule of `cgroup_parent` in `crates/toolforged/src/serve.rs` (FNV-1a of
/// the absolute data directory path), which a test there keeps equal to this one.
pub fn cgroup_parent_of(data_dir: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in data_dir.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("toolforge-{:08x}", hash as u32)
}

/// Kills every process of the workloads of the daemon on `data_dir` and removes their
/// cgroups, in every cgroup v1 hierarchy and in the v2 one. Nothing to do without root.
fn kill_workloads(data_dir: &Path) {
    let name = cgroup_parent_of(data_dir);
    let mut parents = vec![Path::new("/sys/fs/cgroup").join(&name)];
    if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
        parents.extend(hierarchies.flatten().map(|entry| entry.path().join(&name)));
    }
    parents.retain(|dir| dir.is_dir());
    if parents.is_empty() {
        return;
    }
    let mut dirs = Vec::new();
    for parent in &parents {
        collect_dirs(parent, &mut dirs);
    }
    let pids = |dirs: &[PathBuf]| -> Vec<i32> {
        let mut pids: Vec<i32> = dirs
            .iter()
            .filter_map(|dir| std::fs::read_to_string(dir.join("cgroup.procs")).ok())
            .flat_map(|procs| {
                procs
                    .lines()
                    .filter_map(|line| line.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    };
    // Kill until the cgroups are empty: a process may fork while we kill its siblings.
    let emptied = eventually(Duration::from_secs(10), || {
        let left = pids(&dirs);
        for pid in &left {
            let _ = signal::kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        left.is_empty().then_some(())
    });
    if emptied.is_none() {
        eprintln!("test-support: processes are left in the cgroups {name}");
    }
    // Deepest first: a cgroup is removed only once its children are.
    dirs.sort_by_key(|dir| std::cmp::Reverse(dir.components().count()));
    for dir in &dirs {
        let _ = std::fs::remove_dir(dir);
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                collect_dirs(&entry.path(), out);
            }
        }
    }
}

#[derive(Debug)]
enum DataDir {
    Temporary(TempDir),
    Given(PathBuf),
}

impl DataDir {
    fn path(&self) -> &Path {
        match self {
            DataDir::Temporary(dir) => dir.path(),
            DataDir::Given(dir) => dir,
        }
    }
}

/// What one run of the daemon printed.
#[derive(Debug, Default)]
struct Captured {
    stdout: String,
    stderr: String,
    admin_password: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// One reading of `addresses.json`, to tell a stale file from a fresh one even when a new run
/// happens to get the same ports.
#[derive(Debug, PartialEq, Eq)]
struct AddressesFile {
    content: String,
    modified: Option<SystemTime>,
}

impl AddressesFile {
    fn read(path: &Path) -> Option<AddressesFile> {
        let modified = std::fs::metadata(path).ok()?.modified().ok();
        let content = std::fs::read_to_string(path).ok()?;
        Some(AddressesFile { content, modified })
    }
}

/// A fresh temporary data directory that tool uids can traverse to reach their homes.
fn temporary_data_dir() -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("toolforge-test-")
        .tempdir()
        .expect("a temporary data directory can be created");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))
        .expect("the temporary data directory's mode can be set");
    dir
}

/// Forwards `pipe` to standard error line by line and records it (and the admin password).
///
/// The thread ends when the daemon closes the pipe; nothing waits for it.
fn forward_lines(pipe: impl Read + Send + 'static, stream: Stream, captured: Arc<Mutex<Captured>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            eprintln!("[toolforged] {line}");
            let mut captured = lock(&captured);
            let text = match stream {
                Stream::Stdout => &mut captured.stdout,
                Stream::Stderr => &mut captured.stderr,
            };
            text.push_str(&line);
            text.push('\n');
            if let (Stream::Stdout, Some(password)) =
                (stream, line.strip_prefix(ADMIN_PASSWORD_PREFIX))
            {
                captured.admin_password = Some(password.trim().to_owned());
            }
        }
    });
}

/// Keeps the test process's `TOOLFORGE_*` variables from `cmd` (they configure the daemon).
fn remove_toolforge_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("TOOLFORGE_") {
            cmd.env_remove(key);
        }
    }
}

/// SIGTERM, then SIGKILL if `child` has not exited within `timeout`.
fn stop_child(child: &mut Child, timeout: Duration) -> ExitStatus {
    signal_child(child, Signal::SIGTERM);
    let exited = eventually(timeout, || {
        child.try_wait().expect("waiting for the daemon succeeds")
    });
    exited.unwrap_or_else(|| {
        eprintln!("toolforged did not exit within {timeout:?} of SIGTERM; killing it");
        signal_child(child, Signal::SIGKILL);
        child.wait().expect("waiting for a killed child succeeds")
    })
}

fn signal_child(child: &Child, sig: Signal) {
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pids fit in i32"));
    // ESRCH: it has exited already (and is a zombie until waited for): nothing to do.
    if let Err(err) = signal::kill(pid, sig)
        && err != nix::errno::Errno::ESRCH
    {
        panic!("could not send {sig} to toolforged: {err}");
    }
}

/// Locks `captured`; a reader thread that panicked left it usable.
fn lock(captured: &Mutex<Captured>) -> std::sync::MutexGuard<'_, Captured> {
    captured.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use crate::daemon::{Addresses, AddressesFile, Daemon, DaemonOptions, temporary_data_dir};
    use crate::poll::eventually;

    #[test]
    fn addresses_json_is_parsed_into_socket_addresses() {
        let json =
            r#"{"api": "127.0.0.1:30003", "web": "127.0.0.1:8000", "proxy": "127.0.0.1:8080"}"#;
        let addresses = Addresses::parse(json).expect("valid");
        assert_eq!(addresses.api.to_string(), "127.0.0.1:30003");
        assert_eq!(addresses.web.port(), 8000);
        assert_eq!(addresses.proxy.port(), 8080);
    }

    #[test]
    fn keys_added_to_addresses_json_later_are_ignored() {
        let json =
            r#"{"api": "127.0.0.1:1", "web": "127.0.0.1:2", "proxy": "127.0.0.1:3", "admin": "x"}"#;
        assert!(Addresses::parse(json).is_ok());
    }

    #[test]
    fn an_incomplete_addresses_json_is_an_error() {
        let err = Addresses::parse(r#"{"api": "127.0.0.1:1"}"#).expect_err("web is missing");
        assert!(err.contains("missing field `web`"), "{err}");
        assert!(Addresses::parse(r#"{"api": "#).is_err());
        assert!(Addresses::parse(r#"{"api": "localhost", "web": "", "proxy": ""}"#).is_err());
    }

    #[test]
    fn a_rewritten_addresses_file_differs_from_the_stale_one() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("addresses.json");
        assert_eq!(AddressesFile::read(&path), None);
        std::fs::write(&path, "old").expect("writable");
        let stale = AddressesFile::read(&path).expect("present");
        assert_eq!(AddressesFile::read(&path).as_ref(), Some(&stale));
        std::fs::write(&path, "new").expect("writable");
        assert_ne!(AddressesFile::read(&path).as_ref(), Some(&stale));
    }

    /// A stand-in for `toolforged` that follows the interface the harness relies on.
    const FAKE_DAEMON: &str = r#"#!/bin/bash
set -eu
command=$1; shift
[ "$1" = --data-dir ] || { echo "expected --data-dir, got $*" >&2; exit 64; }
data_dir=$2; shift 2
if [ "$command" = admin ]; then
    printf '{"args": "%s", "unisolated": "%s"}\n' "$*" "${TOOLFORGE_ALLOW_UNISOLATED_JOBS:-}"
    exit 0
fi
mkdir -p "$data_dir/run" "$data_dir/pki"
if [ ! -e "$data_dir/pki/ca.crt" ]; then
    echo "admin password: s3cret"
    echo cert > "$data_dir/pki/ca.crt"
fi
echo "serving with: $*" >&2
sleeper=
# SIGTERM may arrive before the first sleeper exists: kill only one that does.
trap 'if [ -n "$sleeper" ]; then kill $sleeper 2>/dev/null || true; fi; rm -f "$data_dir/run/addresses.json"; exit 0' TERM
printf '{"api": "127.0.0.1:%s", "web": "127.0.0.1:2", "proxy": "127.0.0.1:3"}' $$ > "$data_dir/run/tmp"
mv "$data_dir/run/tmp" "$data_dir/run/addresses.json"
# Short sleeps in the background, so that SIGTERM is handled at once and a SIGKILL leaves
# no long-lived orphan.
while :; do
    sleep 2 & sleeper=$!
    wait $sleeper
done
"#;

    fn fake_daemon() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let bin = dir.path().join("toolforged");
        std::fs::write(&bin, FAKE_DAEMON).expect("writable");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        (dir, bin)
    }

    /// The stand-in's `serving with: <flags>` line, which may arrive after readiness.
    fn serving_line(daemon: &Daemon) -> String {
        eventually(Duration::from_secs(10), || {
            let stderr = daemon.captured_stderr();
            stderr
                .lines()
                .find(|line| line.starts_with("serving with:"))
                .map(str::to_owned)
        })
        .expect("the stand-in daemon says how it serves")
    }

    #[test]
    fn the_harness_starts_restarts_and_stops_a_daemon_that_follows_the_interface() {
        let (_bin_dir, bin) = fake_daemon();
        let mut daemon = DaemonOptions::default()
            .arg("--allow-unisolated-jobs")
            .start(&bin);
        assert_eq!(daemon.admin_password(), "s3cret");
        assert!(serving_line(&daemon).contains("--allow-unisolated-jobs"));
        assert_eq!(daemon.addresses().web.port(), 2);
        assert!(daemon.api_url().starts_with("https://127.0.0.1:"));
        assert_eq!(daemon.homes_dir(), daemon.data_dir().join("project"));
        let json = daemon.admin_json(&["tool", "show", "mytool"]);
        assert_eq!(json["args"], "tool show mytool --json");
        let first_api = daemon.addresses().api;

        // A crash leaves addresses.json behind; the restart must wait for the new one.
        daemon.kill9();
        assert!(daemon.data_dir().join("run/addresses.json").exists());
        daemon.restart();
        assert_ne!(daemon.addresses().api, first_api);
        assert_eq!(daemon.admin_password(), "s3cret");

        daemon.restart_with(DaemonOptions::default());
        assert!(!serving_line(&daemon).contains("--allow-unisolated-jobs"));

        let status = daemon.shut_down();
        assert!(status.success(), "{status}");
        assert!(!daemon.data_dir().join("run/addresses.json").exists());
        let data_dir = daemon.data_dir().to_path_buf();
        drop(daemon);
        assert!(
            !data_dir.exists(),
            "the temporary data directory is removed"
        );
    }

    #[test]
    fn the_admin_command_does_not_get_the_daemons_environment() {
        let (_bin_dir, bin) = fake_daemon();
        let daemon = DaemonOptions::default()
            .env("TOOLFORGE_ALLOW_UNISOLATED_JOBS", "yes")
            .start(&bin);
        let json = daemon.admin_json(&[]);
        assert_eq!(json["unisolated"], "");
    }

    #[test]
    fn the_temporary_data_dir_is_traversable_by_tool_users() {
        let dir = temporary_data_dir();
        let mode = std::fs::metadata(dir.path())
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o711);
    }
}
