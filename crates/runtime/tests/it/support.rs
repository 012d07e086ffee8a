//! Fixtures: a runtime with its own cgroup parent, data directory and tool homes, cleaned up
//! (processes, cgroups, network namespaces) when dropped, even after a failed assertion.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use runtime::images::ImageCatalog;
use runtime::local::{LocalRuntime, LocalRuntimeConfig};
use runtime::{
    ExitStatus, Isolation, Limits, Runtime, WorkloadHandle, WorkloadId, WorkloadSpec, WorkloadState,
};
use tempfile::TempDir;

static FIXTURES: AtomicU32 = AtomicU32::new(0);

/// The secret every data directory holds, which no job may read.
pub const SECRET: &str = "ca-key-material";

/// The images tests use: `bookworm` on the host's own system whatever Debian release it
/// runs (the built-in catalog checks the release), and one the host lacks.
const TEST_IMAGES: &str = "images:
  bookworm:
    image: docker-registry.tools.wmflabs.org/toolforge-bookworm-sssd:latest
    root: host
    requires: [/bin/sh]
  php7.3:
    image: docker-registry.tools.wmflabs.org/toolforge-php73-sssd-base:latest
    state: deprecated
    aliases: [tf-php73]
    root: host
    requires: [/usr/bin/php7.3]
";

/// [`TEST_IMAGES`], parsed.
pub fn test_images() -> ImageCatalog {
    ImageCatalog::parse(TEST_IMAGES, Path::new("test-images.yaml")).expect("test catalog parses")
}

/// A runtime whose cgroups and namespaces belong to one test.
pub struct Fixture {
    pub runtime: Option<LocalRuntime>,
    pub config: LocalRuntimeConfig,
    /// The daemon's data directory stand-in (under /var/tmp, which jobs would otherwise see).
    pub data_dir: TempDir,
}

impl Fixture {
    /// A runtime as root with full isolation, or `None` after reporting the missing
    /// prerequisite.
    pub async fn root(test: &str) -> Option<Fixture> {
        Fixture::root_adjusted(test, |_| {}).await
    }

    /// Like [`Fixture::root`], with `adjust` applied to the configuration.
    pub async fn root_adjusted(
        test: &str,
        adjust: impl FnOnce(&mut LocalRuntimeConfig),
    ) -> Option<Fixture> {
        if !test_support::skip::is_root() {
            test_support::skip::prerequisite_missing(
                test,
                "needs root (uids, cgroups, network namespaces)",
            );
            return None;
        }
        let fixture = Fixture::with_config(adjust).await;
        let runtime = fixture.runtime();
        if runtime.isolation() != Isolation::Full || !runtime.limits_enforced() {
            let reason = format!(
                "isolation is {} (limits enforced: {}): {}; install the Debian packages bubblewrap, tini and iproute2",
                runtime.isolation().as_str(),
                runtime.limits_enforced(),
                runtime.isolation_note().unwrap_or("")
            );
            test_support::skip::prerequisite_missing(test, &reason);
            return None;
        }
        Some(fixture)
    }

    /// Like [`Fixture::root`], for tests that also run `/usr/bin/python3` in jobs.
    pub async fn root_with_python(test: &str) -> Option<Fixture> {
        if !Path::new("/usr/bin/python3").exists() {
            test_support::skip::prerequisite_missing(
                test,
                "needs /usr/bin/python3 (Debian package python3)",
            );
            return None;
        }
        Fixture::root(test).await
    }

    /// A runtime for whoever runs this process.
    pub async fn new() -> Fixture {
        Fixture::with_config(|_| {}).await
    }

    /// A runtime for whoever runs this process, with `adjust` applied to its configuration.
    pub async fn with_config(adjust: impl FnOnce(&mut LocalRuntimeConfig)) -> Fixture {
        let data_dir = tempfile::Builder::new()
            .prefix("runtime-it-")
            .tempdir_in("/var/tmp")
            .expect("data dir");
        std::fs::write(data_dir.path().join("secret.key"), SECRET).expect("write secret");
        let homes_dir = data_dir.path().join("project");
        std::fs::create_dir(&homes_dir).expect("homes dir");
        let n = FIXTURES.fetch_add(1, Ordering::Relaxed);
        let mut config = LocalRuntimeConfig {
            hidden_paths: vec![data_dir.path().to_path_buf()],
            homes_dir,
            images: test_images(),
            cgroup_parent: format!("toolforge-it-{}-{n}", std::process::id()),
            ..LocalRuntimeConfig::default()
        };
        adjust(&mut config);
        let runtime = LocalRuntime::new(config.clone())
            .await
            .expect("runtime starts");
        Fixture {
            runtime: Some(runtime),
            config,
            data_dir,
        }
    }

    pub fn runtime(&self) -> &LocalRuntime {
        self.runtime.as_ref().expect("runtime not dropped")
    }

    /// Simulates a daemon restart: drops the runtime and makes a new one on the same state.
    pub async fn restart(&mut self) {
        drop(self.runtime.take());
        self.runtime = Some(
            LocalRuntime::new(self.config.clone())
                .await
                .expect("runtime restarts"),
        );
    }

    /// Creates a tool home owned by `uid` (0770), as the accounts service would.
    pub fn tool_home(&self, tool: &str, uid: u32) -> PathBuf {
        let home = self.config.homes_dir.join(tool);
        std::fs::create_dir_all(&home).expect("tool home");
        if test_support::skip::is_root() {
            std::os::unix::fs::chown(&home, Some(uid), Some(uid)).expect("chown home");
        }
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o770))
            .expect("chmod home");
        home
    }

    /// A spec for `command` (bookworm image, stdout to `out.txt` in the home, stderr to
    /// `err.txt`).
    pub fn spec(
        &self,
        tool: &str,
        uid: u32,
        job: &str,
        replica: u32,
        command: &str,
    ) -> WorkloadSpec {
        WorkloadSpec {
            id: WorkloadId::new(tool, job, replica).expect("valid id"),
            tool_uid: uid,
            tool_gid: uid,
            tool_home: self.tool_home(tool, uid),
            image: "bookworm".to_owned(),
            command: command.to_owned(),
            env: BTreeMap::new(),
            port: None,
            limits: Limits::default(),
            stdout_file: Some(format!("/data/project/{tool}/{job}-{replica}.out")),
            stderr_file: Some(format!("/data/project/{tool}/{job}-{replica}.err")),
        }
    }

    /// What the job wrote to its stdout file.
    pub fn stdout_of(&self, spec: &WorkloadSpec) -> String {
        let name = format!("{}-{}.out", spec.id.job(), spec.id.replica());
        std::fs::read_to_string(spec.tool_home.join(name)).unwrap_or_default()
    }

    /// What the job wrote to its stderr file.
    pub fn stderr_of(&self, spec: &WorkloadSpec) -> String {
        let name = format!("{}-{}.err", spec.id.job(), spec.id.replica());
        std::fs::read_to_string(spec.tool_home.join(name)).unwrap_or_default()
    }

    /// The workload's cgroup directories.
    pub fn cgroup_dirs(&self, id: &WorkloadId) -> Vec<PathBuf> {
        ["memory", "cpu", "cpuacct", "pids"]
            .iter()
            .map(|c| {
                self.config
                    .cgroup_root
                    .join(c)
                    .join(&self.config.cgroup_parent)
                    .join(id.tool())
                    .join(id.job())
                    .join(id.replica().to_string())
            })
            .collect()
    }

    /// The network namespaces this runtime created that still exist.
    pub fn network_namespaces(&self) -> Vec<String> {
        let prefix = format!("{}-", self.config.cgroup_parent);
        std::fs::read_dir("/run/netns")
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|name| name.starts_with(&prefix))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        drop(self.runtime.take());
        // Kill whatever a failed test left, deepest cgroups first, then remove them.
        for controller in ["memory", "cpu", "cpuacct", "pids"] {
            let base = self
                .config
                .cgroup_root
                .join(controller)
                .join(&self.config.cgroup_parent);
            let mut dirs = Vec::new();
            collect_dirs(&base, &mut dirs);
            dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            for dir in dirs {
                let deadline = Instant::now() + Duration::from_secs(5);
                loop {
                    let procs =
                        std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                    if std::fs::remove_dir(&dir).is_ok()
                        || !dir.exists()
                        || Instant::now() > deadline
                    {
                        break;
                    }
                    std::thread::yield_now();
                }
            }
        }
        for netns in self.network_namespaces() {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &netns])
                .status();
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&entry.path(), out);
            }
        }
    }
    out.push(dir.to_path_buf());
}

/// Polls `condition` until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for the workload to end (panics after `timeout`).
pub async fn exit_of(handle: &mut WorkloadHandle, timeout: Duration) -> ExitStatus {
    let state = tokio::time::timeout(
        timeout,
        handle
            .state
            .wait_for(|s| matches!(s, WorkloadState::Exited(_))),
    )
    .await
    .expect("the workload ended in time")
    .map(|s| *s)
    .unwrap_or(WorkloadState::Exited(ExitStatus::Unknown));
    match state {
        WorkloadState::Exited(status) => status,
        WorkloadState::Running => unreachable!("waited for Exited"),
    }
}

/// Whether a host process exists (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}
