//! Control groups: one per workload, at `<parent>/<tool>/<job>/<replica>`, holding its limits
//! and its accounting, and telling how it ended (out of memory or not).
//!
//! v2 is used where the unified hierarchy has the memory, cpu and pids controllers; v1
//! (separate `memory`, `cpu`, `cpuacct` and `pids` hierarchies) otherwise.
//! The cgroup path is also how workloads are found again after a daemon restart, so it is
//! the one place that encodes a workload's identity on the host.
//!
//! Architecture Invariant: a workload's processes join its cgroup before they exec the
//! sandbox, so nothing it forks escapes accounting or the kill at stop.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Error, Limits, Result, Usage, WorkloadId};

/// The v1 hierarchies a workload joins.
const V1_CONTROLLERS: [&str; 4] = ["memory", "cpu", "cpuacct", "pids"];
/// The v2 controllers a workload needs.
const V2_CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];
/// CFS period used for cpu limits, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

/// The cgroup tree of one runtime.
#[derive(Debug, Clone)]
pub(crate) struct Cgroups {
    version: Version,
    /// Each hierarchy's mount, once: v1 controllers mounted together (`cpu,cpuacct`, with
    /// `cpu` and `cpuacct` as symlinks) share one; v2 has the unified one.
    hierarchies: Vec<PathBuf>,
    /// v1: the mount of each controller; v2: empty.
    controllers: Vec<(&'static str, PathBuf)>,
    /// The name of the directory under which every workload lives (`toolforge`).
    parent: String,
}

impl Cgroups {
    /// Finds usable cgroups under `root` (normally `/sys/fs/cgroup`, or a delegated subtree):
    /// v2 when the unified hierarchy (at `root` or at `root/unified`) offers every
    /// controller, else v1 when every v1 hierarchy is mounted; either only when writable.
    pub(crate) fn detect(root: &Path, parent: &str) -> Option<Cgroups> {
        for unified in [root.to_path_buf(), root.join("unified")] {
            let Ok(controllers) = fs::read_to_string(unified.join("cgroup.controllers")) else {
                continue;
            };
            let available: Vec<&str> = controllers.split_whitespace().collect();
            if V2_CONTROLLERS.iter().all(|c| available.contains(c)) {
                let cgroups = Cgroups {
                    version: Version::V2,
                    hierarchies: vec![unified],
                    controllers: Vec::new(),
                    parent: parent.to_owned(),
                };
                return cgroups.writable().then_some(cgroups);
            }
        }
        let mut controllers = Vec::new();
        for controller in V1_CONTROLLERS {
            let mount = fs::canonicalize(root.join(controller)).ok()?;
            if !mount.join("cgroup.procs").exists() {
                return None;
            }
            controllers.push((controller, mount));
        }
        let mut hierarchies: Vec<PathBuf> =
            controllers.iter().map(|(_, mount)| mount.clone()).collect();
        hierarchies.sort();
        hierarchies.dedup();
        let cgroups = Cgroups {
            version: Version::V1,
            hierarchies,
            controllers,
            parent: parent.to_owned(),
        };
        cgroups.writable().then_some(cgroups)
    }

    /// Whether this process may create the parent directory.
    fn writable(&self) -> bool {
        self.base_dirs()
            .iter()
            .all(|dir| fs::create_dir_all(dir).is_ok())
    }

    pub(crate) fn version(&self) -> Version {
        self.version
    }

    /// The parent directory in each hierarchy.
    fn base_dirs(&self) -> Vec<PathBuf> {
        self.hierarchies
            .iter()
            .map(|mount| mount.join(&self.parent))
            .collect()
    }

    /// The workload's directory in each hierarchy.
    fn dirs(&self, id: &WorkloadId) -> Vec<PathBuf> {
        self.base_dirs()
            .into_iter()
            .map(|base| workload_dir(&base, id))
            .collect()
    }

    /// The workload's directory in the hierarchy of `controller` (v1) or the unified one (v2).
    fn dir(&self, id: &WorkloadId, controller: &str) -> PathBuf {
        let mount = self
            .controllers
            .iter()
            .find(|(name, _)| *name == controller)
            .map(|(_, mount)| mount)
            .or(self.hierarchies.first());
        let base = mount
            .map(|mount| mount.join(&self.parent))
            .unwrap_or_default();
        workload_dir(&base, id)
    }

    /// The unified hierarchy's root (v2), where controllers are delegated from.
    fn unified_root(&self) -> PathBuf {
        self.hierarchies.first().cloned().unwrap_or_default()
    }

    /// Creates the workload's cgroup and writes its limits; fails with
    /// [`Error::AlreadyRunning`] when it exists (the cgroup is the reservation).
    pub(crate) fn create(&self, id: &WorkloadId, limits: &Limits) -> Result<()> {
        for dir in self.dirs(id) {
            if let Some(parent) = dir.parent() {
                fs::create_dir_all(parent)
                    .map_err(|source| io_error("creating cgroup", parent, source))?;
            }
            match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                    return Err(Error::AlreadyRunning(id.clone()));
                }
                Err(source) => return Err(io_error("creating cgroup", &dir, source)),
            }
        }
        if self.version == Version::V2 {
            self.enable_v2_controllers(id)?;
        }
        let res = self.write_limits(id, limits);
        if res.is_err() {
            self.remove_dirs(id);
        }
        res
    }

    /// v2 only delegates a controller to a child when every ancestor lists it in
    /// `cgroup.subtree_control`.
    fn enable_v2_controllers(&self, id: &WorkloadId) -> Result<()> {
        let enable = V2_CONTROLLERS
            .iter()
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(" ");
        let root = self.unified_root();
        let base = root.join(&self.parent);
        for dir in [
            root.clone(),
            base.clone(),
            base.join(id.tool()),
            base.join(id.tool()).join(id.job()),
        ] {
            write_file(&dir.join("cgroup.subtree_control"), &enable)?;
        }
        Ok(())
    }

    fn write_limits(&self, id: &WorkloadId, limits: &Limits) -> Result<()> {
        match self.version {
            Version::V1 => {
                if let Some(bytes) = limits.memory_bytes {
                    let memory = self.dir(id, "memory");
                    write_file(&memory.join("memory.limit_in_bytes"), &bytes.to_string())?;
                    // With swap accounting, limit memory plus swap too, or the limit only
                    // moves pages to swap.
                    let memsw = memory.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        write_file(&memsw, &bytes.to_string())?;
                    }
                }
                if let Some(millis) = limits.cpu_millis {
                    let cpu = self.dir(id, "cpu");
                    write_file(&cpu.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                    write_file(
                        &cpu.join("cpu.cfs_quota_us"),
                        &cpu_quota_us(millis).to_string(),
                    )?;
                }
                if let Some(pids) = limits.pids {
                    write_file(&self.dir(id, "pids").join("pids.max"), &pids.to_string())?;
                }
            }
            Version::V2 => {
                let dir = self.dir(id, "");
                if let Some(bytes) = limits.memory_bytes {
                    write_file(&dir.join("memory.max"), &bytes.to_string())?;
                    let swap = dir.join("memory.swap.max");
                    if swap.exists() {
                        write_file(&swap, "0")?;
                    }
                    // Out of memory ends the whole workload, as the kubelet sets it on v2,
                    // rather than leaving it running without its biggest process.
                    write_file(&dir.join("memory.oom.group"), "1")?;
                }
                if let Some(millis) = limits.cpu_millis {
                    write_file(
                        &dir.join("cpu.max"),
                        &format!("{} {CPU_PERIOD_US}", cpu_quota_us(millis)),
                    )?;
                }
                if let Some(pids) = limits.pids {
                    write_file(&dir.join("pids.max"), &pids.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// The `cgroup.procs` files a new process writes `0` to, to join the workload.
    pub(crate) fn procs_files(&self, id: &WorkloadId) -> Vec<PathBuf> {
        self.dirs(id)
            .into_iter()
            .map(|dir| dir.join("cgroup.procs"))
            .collect()
    }

    /// Whether the workload's cgroup exists.
    pub(crate) fn exists(&self, id: &WorkloadId) -> bool {
        self.dirs(id).iter().any(|dir| dir.exists())
    }

    /// Host process ids in the workload, from every hierarchy (a process could sit in one
    /// hierarchy only if it was moved by someone else).
    pub(crate) fn pids(&self, id: &WorkloadId) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .dirs(id)
            .iter()
            .filter_map(|dir| fs::read_to_string(dir.join("cgroup.procs")).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|line| line.trim().parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Whether the out-of-memory killer killed a process of the workload.
    pub(crate) fn oom_killed(&self, id: &WorkloadId) -> bool {
        let (file, key) = match self.version {
            Version::V1 => (
                self.dir(id, "memory").join("memory.oom_control"),
                "oom_kill",
            ),
            Version::V2 => (self.dir(id, "").join("memory.events"), "oom_kill"),
        };
        fs::read_to_string(file).is_ok_and(|text| keyed_value(&text, key).is_some_and(|n| n > 0))
    }

    /// Current memory, cpu time and process count.
    pub(crate) fn usage(&self, id: &WorkloadId) -> Result<Usage> {
        let read = |path: PathBuf| -> Result<String> {
            fs::read_to_string(&path).map_err(|source| io_error("reading", &path, source))
        };
        let number = |path: PathBuf| -> Result<u64> { Ok(read(path)?.trim().parse().unwrap_or(0)) };
        match self.version {
            Version::V1 => Ok(Usage {
                memory_bytes: number(self.dir(id, "memory").join("memory.usage_in_bytes"))?,
                cpu_time: Duration::from_nanos(number(
                    self.dir(id, "cpuacct").join("cpuacct.usage"),
                )?),
                pids: number(self.dir(id, "pids").join("pids.current"))?,
            }),
            Version::V2 => {
                let dir = self.dir(id, "");
                let cpu_stat = read(dir.join("cpu.stat"))?;
                Ok(Usage {
                    memory_bytes: number(dir.join("memory.current"))?,
                    cpu_time: Duration::from_micros(
                        keyed_value(&cpu_stat, "usage_usec").unwrap_or(0),
                    ),
                    pids: number(dir.join("pids.current"))?,
                })
            }
        }
    }

    /// Sends `signal` to every process of the workload.
    pub(crate) fn signal_all(&self, id: &WorkloadId, signal: nix::sys::signal::Signal) {
        for pid in self.pids(id) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
        }
    }

    /// Kills every process of the workload and waits (up to `timeout`) until none is left.
    pub(crate) async fn kill_all(&self, id: &WorkloadId, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.version == Version::V2 {
                // cgroup.kill (Linux 5.14) kills atomically, forks included.
                let _ = fs::write(self.dir(id, "").join("cgroup.kill"), "1");
            }
            self.signal_all(id, nix::sys::signal::Signal::SIGKILL);
            if self.pids(id).is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Removes the workload's cgroup (it must be empty), then its job and tool directories
    /// when they became empty.
    pub(crate) async fn remove(&self, id: &WorkloadId) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        for dir in self.dirs(id) {
            loop {
                match fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(err) if err.kind() == ErrorKind::NotFound => break,
                    // Busy while the last exited processes are still being released.
                    Err(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(10)).await
                    }
                    Err(source) => return Err(io_error("removing cgroup", &dir, source)),
                }
            }
            if let Some(job_dir) = dir.parent() {
                // Fails, as it should, while another replica of the job or another job lives.
                if fs::remove_dir(job_dir).is_ok()
                    && let Some(tool_dir) = job_dir.parent()
                {
                    let _ = fs::remove_dir(tool_dir);
                }
            }
        }
        Ok(())
    }

    /// Removes the parent directories if no workload is left under them.
    pub(crate) fn remove_parent_if_empty(&self) {
        for base in self.base_dirs() {
            // Fails, as it should, while any tool directory remains.
            let _ = fs::remove_dir(base);
        }
    }

    /// Best-effort removal after a failed start.
    fn remove_dirs(&self, id: &WorkloadId) {
        for dir in self.dirs(id) {
            let _ = fs::remove_dir(dir);
        }
    }

    /// Every workload cgroup under the parent.
    pub(crate) fn list(&self) -> Vec<WorkloadId> {
        let Some(base) = self.base_dirs().into_iter().next() else {
            return Vec::new();
        };
        let mut ids = Vec::new();
        for tool in subdirectories(&base) {
            for job in subdirectories(&base.join(&tool)) {
                for replica in subdirectories(&base.join(&tool).join(&job)) {
                    if let Ok(replica) = replica.parse()
                        && let Ok(id) = WorkloadId::new(&tool, &job, replica)
                    {
                        ids.push(id);
                    }
                }
            }
        }
        ids.sort();
        ids
    }
}

fn workload_dir(base: &Path, id: &WorkloadId) -> PathBuf {
    base.join(id.tool())
        .join(id.job())
        .join(id.replica().to_string())
}

fn cpu_quota_us(millis: u32) -> u64 {
    // The kernel refuses quotas under 1 ms.
    (u64::from(millis) * CPU_PERIOD_US / 1000).max(1000)
}

fn subdirectories(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect()
}

/// The number after `key` in a `key value` per line file (`memory.events`, `cpu.stat`).
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}

fn write_file(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).map_err(|source| io_error("writing", path, source))
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use crate::cgroup::{Cgroups, Version};
    use crate::{Limits, WorkloadId};

    #[test]
    fn v2_limits_are_written_to_the_unified_files_and_controllers_are_delegated() {
        let root = tempfile::tempdir().expect("temp dir");
        fs::write(
            root.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .expect("write");
        let cgroups = Cgroups::detect(root.path(), "toolforge").expect("v2 detected");
        assert_eq!(cgroups.version(), Version::V2);

        let id = WorkloadId::new("mytool", "web", 1).expect("valid id");
        let limits = Limits {
            memory_bytes: Some(512 << 20),
            cpu_millis: Some(250),
            pids: Some(64),
            nofile: None,
        };
        cgroups.create(&id, &limits).expect("created");

        let dir = root.path().join("toolforge/mytool/web/1");
        let read = |name: &str| fs::read_to_string(dir.join(name)).expect("limit file");
        assert_eq!(read("memory.max"), "536870912");
        assert_eq!(read("cpu.max"), "25000 100000");
        assert_eq!(read("pids.max"), "64");
        assert_eq!(read("memory.oom.group"), "1");
        for delegating in ["", "toolforge", "toolforge/mytool", "toolforge/mytool/web"] {
            let control =
                fs::read_to_string(root.path().join(delegating).join("cgroup.subtree_control"));
            assert_eq!(
                control.expect("subtree_control"),
                "+memory +cpu +pids",
                "in {delegating:?}"
            );
        }
        assert_eq!(cgroups.list(), vec![id.clone()]);
        assert!(matches!(
            cgroups.create(&id, &limits),
            Err(crate::Error::AlreadyRunning(_))
        ));
    }

    #[test]
    fn v2_out_of_memory_is_read_from_memory_events() {
        let root = tempfile::tempdir().expect("temp dir");
        fs::write(root.path().join("cgroup.controllers"), "cpu memory pids\n").expect("write");
        let cgroups = Cgroups::detect(root.path(), "toolforge").expect("v2 detected");
        let id = WorkloadId::new("mytool", "job", 0).expect("valid id");
        cgroups.create(&id, &Limits::default()).expect("created");
        let events = root.path().join("toolforge/mytool/job/0/memory.events");
        fs::write(&events, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n").expect("write");
        assert!(!cgroups.oom_killed(&id));
        fs::write(&events, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n").expect("write");
        assert!(cgroups.oom_killed(&id));
    }

    #[test]
    fn v1_controllers_mounted_together_share_one_cgroup() {
        let root = tempfile::tempdir().expect("temp dir");
        for mount in ["memory", "cpu,cpuacct", "pids"] {
            fs::create_dir_all(root.path().join(mount)).expect("mkdir");
            fs::write(root.path().join(mount).join("cgroup.procs"), "").expect("write");
        }
        for link in ["cpu", "cpuacct"] {
            std::os::unix::fs::symlink("cpu,cpuacct", root.path().join(link)).expect("symlink");
        }
        let cgroups = Cgroups::detect(root.path(), "toolforge").expect("v1 detected");
        let id = WorkloadId::new("mytool", "job", 0).expect("valid id");
        let limits = Limits {
            cpu_millis: Some(100),
            ..Limits::default()
        };
        cgroups
            .create(&id, &limits)
            .expect("created once per hierarchy");
        assert_eq!(cgroups.procs_files(&id).len(), 3);
        let quota = root
            .path()
            .join("cpu,cpuacct/toolforge/mytool/job/0/cpu.cfs_quota_us");
        assert_eq!(fs::read_to_string(quota).expect("quota"), "10000");
    }

    #[test]
    fn v1_is_chosen_when_the_unified_hierarchy_has_no_controllers() {
        let root = tempfile::tempdir().expect("temp dir");
        fs::create_dir_all(root.path().join("unified")).expect("mkdir");
        fs::write(root.path().join("unified/cgroup.controllers"), "").expect("write");
        for controller in ["memory", "cpu", "cpuacct", "pids"] {
            fs::create_dir_all(root.path().join(controller)).expect("mkdir");
            fs::write(root.path().join(controller).join("cgroup.procs"), "").expect("write");
        }
        let cgroups = Cgroups::detect(root.path(), "toolforge").expect("v1 detected");
        assert_eq!(cgroups.version(), Version::V1);
        let id = WorkloadId::new("mytool", "job", 0).expect("valid id");
        let limits = Limits {
            memory_bytes: Some(1 << 30),
            cpu_millis: Some(500),
            pids: Some(10),
            nofile: None,
        };
        cgroups.create(&id, &limits).expect("created");
        let read = |path: &str| fs::read_to_string(root.path().join(path)).expect("limit file");
        assert_eq!(
            read("memory/toolforge/mytool/job/0/memory.limit_in_bytes"),
            "1073741824"
        );
        assert_eq!(read("cpu/toolforge/mytool/job/0/cpu.cfs_quota_us"), "50000");
        assert_eq!(read("pids/toolforge/mytool/job/0/pids.max"), "10");
    }
}
