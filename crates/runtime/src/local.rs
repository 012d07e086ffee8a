//! The local runtime: each workload is a process tree on this machine, in its own
//! namespaces (bubblewrap, see `sandbox`), limited and accounted for by its own cgroup (see
//! `cgroup`) and, as root, on its own network namespace (see `network`).
//!
//! Start, as root: create the cgroup and the network namespace, then fork a child that joins
//! the cgroup and the network namespace, enters a private mount namespace (made private
//! before anything is mounted) in which it binds the tool home and the image root to a
//! staging directory and covers the daemon's data directory and the homes directory with
//! empty tmpfs mounts, sets rlimits, becomes the tool's user and execs bwrap.
//! Without root the same bwrap sandbox is built inside a user namespace, on the host network.
//!
//! Architecture Invariant: every workload has a watcher task owned by the runtime's
//! `TaskTracker`; when the workload ends the watcher kills whatever is left in its cgroup,
//! removes the cgroup and the network namespace, and only then reports the exit.
//! Dropping the runtime stops the watchers, never the workloads: a new runtime finds them
//! again through their cgroups ([`LocalRuntime::list`], [`LocalRuntime::adopt`]).

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cgroup::Cgroups;
use crate::images::ImageCatalog;
use crate::network::{self, Attachment, JobNetwork};
use crate::sandbox::{self, SandboxPlan};
use crate::{
    BoxFuture, Error, ExitStatus, Isolation, Result, Runtime, Usage, WorkloadEvent, WorkloadHandle,
    WorkloadId, WorkloadInfo, WorkloadSpec, WorkloadState,
};

/// Where jobs see their tool's home.
const PROJECT_DIR: &str = "/data/project";
/// `PATH` inside jobs.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How long a sandbox may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long killing may take before stop gives up.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an adopted workload (not our child) is checked for exit.
const ADOPTED_POLL: Duration = Duration::from_millis(200);

/// How the local runtime is set up.
#[derive(Debug, Clone)]
pub struct LocalRuntimeConfig {
    /// Paths jobs must never see, such as the daemon's data directory; each is covered by an
    /// empty read-only tmpfs inside every job.
    pub hidden_paths: Vec<PathBuf>,
    /// The directory holding every tool home; hidden as a whole, each job sees only its own
    /// tool's home (at `/data/project/<tool>`).
    pub homes_dir: PathBuf,
    /// The image catalog.
    pub images: ImageCatalog,
    /// Run workloads as plain processes when no isolation is possible
    /// (the daemon's `--allow-unisolated-jobs`).
    pub allow_unisolated: bool,
    /// Give jobs outbound network access through NAT (root only; changes the host's
    /// firewall rules, so off by default).
    pub job_nat: bool,
    /// The private network jobs live on as root.
    pub job_network: JobNetwork,
    /// Where cgroup hierarchies are mounted.
    pub cgroup_root: PathBuf,
    /// The cgroup directory every workload lives under (`<parent>/<tool>/<job>/<replica>`);
    /// also the prefix of network namespace names. Tests use their own.
    pub cgroup_parent: String,
    /// An empty directory, reachable by every tool user and outside every hidden path, on
    /// which each workload's private mount namespace stages its home and image root.
    pub stage_dir: PathBuf,
    /// The bubblewrap binary.
    pub bwrap_path: PathBuf,
    /// The init run as PID 1 of each workload; statically linked, so it runs on any image.
    pub init_path: PathBuf,
    /// `RLIMIT_CORE` for jobs, in bytes.
    pub core_limit_bytes: u64,
}

impl Default for LocalRuntimeConfig {
    fn default() -> LocalRuntimeConfig {
        LocalRuntimeConfig {
            hidden_paths: vec![PathBuf::from("toolforge-data")],
            homes_dir: PathBuf::from("toolforge-data/project"),
            images: ImageCatalog::builtin(),
            allow_unisolated: false,
            job_nat: false,
            job_network: JobNetwork::default(),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            cgroup_parent: "toolforge".to_owned(),
            stage_dir: PathBuf::from("/run/toolforge-runtime/stage"),
            bwrap_path: PathBuf::from("/usr/bin/bwrap"),
            init_path: PathBuf::from("/usr/bin/tini-static"),
            core_limit_bytes: 0,
        }
    }
}

/// Runs workloads on this machine. Dropping it leaves the workloads running.
#[derive(Debug)]
pub struct LocalRuntime {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: LocalRuntimeConfig,
    is_root: bool,
    isolation: Isolation,
    /// Why isolation is not full, for the daemon's start message.
    isolation_note: Option<String>,
    cgroups: Option<Cgroups>,
    /// Whether each replica gets a network namespace.
    network: bool,
    workloads: Mutex<HashMap<WorkloadId, Managed>>,
    events: broadcast::Sender<WorkloadEvent>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

#[derive(Debug)]
struct Managed {
    state: watch::Sender<WorkloadState>,
    /// Host pid of the workload's init.
    init_pid: Option<u32>,
    /// Unisolated workloads are a process group rather than a pid namespace.
    process_group: bool,
    attachment: Option<Attachment>,
}

impl LocalRuntime {
    /// Probes what this machine allows (root, bubblewrap, user namespaces, cgroups,
    /// network namespaces) and prepares the host side of the job network.
    pub async fn new(mut config: LocalRuntimeConfig) -> Result<LocalRuntime> {
        // The sandbox is set up from `/`, so relative paths would name the wrong places.
        for path in config
            .hidden_paths
            .iter_mut()
            .chain([&mut config.homes_dir, &mut config.stage_dir])
        {
            *path = absolute(path)?;
        }
        let is_root = nix::unistd::geteuid().is_root();
        let cgroups = Cgroups::detect(&config.cgroup_root, &config.cgroup_parent);
        let sandbox = probe_sandbox(&config, is_root).await;
        let network = is_root && sandbox.is_ok() && network::available().await;
        if network {
            network::prepare_host(config.job_network, config.job_nat).await?;
        }
        if is_root && sandbox.is_ok() {
            if let Some(hidden) = config
                .hidden_paths
                .iter()
                .chain([&config.homes_dir])
                .find(|h| config.stage_dir.starts_with(h))
            {
                return Err(Error::StageDirHidden {
                    stage_dir: config.stage_dir.clone(),
                    hidden: hidden.clone(),
                });
            }
            create_stage_dir(&config.stage_dir)?;
        }
        let (isolation, isolation_note) = match (&sandbox, is_root) {
            (Ok(()), true) if network => (Isolation::Full, None),
            (Ok(()), true) => (
                Isolation::Partial,
                Some("`ip` is missing: jobs share the host network".to_owned()),
            ),
            (Ok(()), false) => (
                Isolation::Partial,
                Some("not root: jobs run as the daemon's user on the host network".to_owned()),
            ),
            (Err(reason), _) => (Isolation::None, Some(reason.clone())),
        };
        let (events, _) = broadcast::channel(256);
        Ok(LocalRuntime {
            inner: Arc::new(Inner {
                config,
                is_root,
                isolation,
                isolation_note,
                cgroups,
                network,
                workloads: Mutex::new(HashMap::new()),
                events,
                tasks: TaskTracker::new(),
                cancel: CancellationToken::new(),
            }),
        })
    }

    /// `"v1"` or `"v2"`: the cgroup hierarchy limits are enforced with, if any.
    pub fn cgroup_version(&self) -> Option<&'static str> {
        self.inner
            .cgroups
            .as_ref()
            .map(|cgroups| match cgroups.version() {
                crate::cgroup::Version::V1 => "v1",
                crate::cgroup::Version::V2 => "v2",
            })
    }

    /// Why isolation is less than full, in words for the daemon's start message and `/healthz`.
    pub fn isolation_note(&self) -> Option<&str> {
        self.inner.isolation_note.as_deref()
    }

    /// The host's address on the job network, when jobs have network namespaces: the daemon
    /// listens there too, so jobs reach the API.
    pub fn job_network_host(&self) -> Option<Ipv4Addr> {
        self.inner
            .network
            .then_some(self.inner.config.job_network.host_address)
    }

    /// Stops watching (workloads keep running) and waits for the watchers to finish.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

impl Drop for LocalRuntime {
    fn drop(&mut self) {
        self.inner.cancel.cancel();
        self.inner.tasks.close();
        // `new` creates the cgroup parent; leave nothing behind when no workload is left
        // (a running workload keeps it, for the next daemon to find).
        if let Some(cgroups) = &self.inner.cgroups {
            cgroups.remove_parent_if_empty();
        }
    }
}

impl Runtime for LocalRuntime {
    fn isolation(&self) -> Isolation {
        self.inner.isolation
    }

    fn limits_enforced(&self) -> bool {
        self.inner.cgroups.is_some()
    }

    fn start(&self, spec: WorkloadSpec) -> BoxFuture<'_, Result<WorkloadHandle>> {
        Box::pin(start(&self.inner, spec))
    }

    fn stop<'a>(
        &'a self,
        id: &'a WorkloadId,
        grace: Duration,
    ) -> BoxFuture<'a, Result<ExitStatus>> {
        Box::pin(async move {
            let mut state = match self.watch(id) {
                Ok(state) => state,
                Err(Error::NotFound(_)) => self.adopt(id).await?,
                Err(err) => return Err(err),
            };
            let (init_pid, process_group) = {
                let workloads = self.inner.lock();
                let managed = workloads.get(id);
                (
                    managed.and_then(|m| m.init_pid),
                    managed.is_some_and(|m| m.process_group),
                )
            };
            self.inner
                .signal(id, init_pid, process_group, Signal::SIGTERM);
            if let Some(status) = wait_exited(&mut state, grace).await {
                return Ok(status);
            }
            tracing::info!(workload = %id, "still running after the grace period; killing it");
            self.inner
                .signal(id, init_pid, process_group, Signal::SIGKILL);
            if let Some(cgroups) = &self.inner.cgroups {
                cgroups.kill_all(id, KILL_TIMEOUT).await;
            }
            wait_exited(&mut state, KILL_TIMEOUT)
                .await
                .ok_or_else(|| Error::StopFailed(id.clone()))
        })
    }

    fn watch(&self, id: &WorkloadId) -> Result<watch::Receiver<WorkloadState>> {
        self.inner
            .lock()
            .get(id)
            .map(|managed| managed.state.subscribe())
            .ok_or_else(|| Error::NotFound(id.clone()))
    }

    fn events(&self) -> broadcast::Receiver<WorkloadEvent> {
        self.inner.events.subscribe()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<WorkloadInfo>>> {
        Box::pin(async move {
            let mut ids: Vec<WorkloadId> = self
                .inner
                .cgroups
                .as_ref()
                .map(Cgroups::list)
                .unwrap_or_default();
            ids.extend(self.inner.lock().keys().cloned());
            ids.sort();
            ids.dedup();
            let mut infos = Vec::with_capacity(ids.len());
            for id in ids {
                let (managed, known_address) = {
                    let workloads = self.inner.lock();
                    let managed = workloads.get(&id);
                    (
                        managed.is_some(),
                        managed.and_then(|m| m.attachment.as_ref().map(|a| a.address)),
                    )
                };
                let address = match known_address {
                    Some(address) => Some(address),
                    None if self.inner.network => {
                        let (netns, veth) = self.inner.network_names(&id);
                        network::find(&netns, &veth).await.map(|a| a.address)
                    }
                    None => None,
                };
                let pids = self
                    .inner
                    .cgroups
                    .as_ref()
                    .map(|c| c.pids(&id))
                    .unwrap_or_default();
                infos.push(WorkloadInfo {
                    id,
                    pids,
                    address,
                    managed,
                });
            }
            Ok(infos)
        })
    }

    fn adopt<'a>(
        &'a self,
        id: &'a WorkloadId,
    ) -> BoxFuture<'a, Result<watch::Receiver<WorkloadState>>> {
        Box::pin(async move {
            if let Ok(state) = self.watch(id) {
                return Ok(state);
            }
            let cgroups = self
                .inner
                .cgroups
                .as_ref()
                .ok_or_else(|| Error::NotFound(id.clone()))?;
            if !cgroups.exists(id) {
                return Err(Error::NotFound(id.clone()));
            }
            let init_pid = cgroups
                .pids(id)
                .into_iter()
                .find(|pid| is_namespace_init(*pid));
            let attachment = if self.inner.network {
                let (netns, veth) = self.inner.network_names(id);
                network::find(&netns, &veth).await
            } else {
                None
            };
            let (state, receiver) = watch::channel(WorkloadState::Running);
            {
                let mut workloads = self.inner.lock();
                if let Some(managed) = workloads.get(id) {
                    return Ok(managed.state.subscribe());
                }
                workloads.insert(
                    id.clone(),
                    Managed {
                        state,
                        init_pid,
                        process_group: false,
                        attachment,
                    },
                );
            }
            tracing::info!(workload = %id, ?init_pid, "adopted a workload started before this daemon");
            let inner = Arc::clone(&self.inner);
            let id = id.clone();
            self.inner
                .tasks
                .spawn(async move { watch_adopted(inner, id).await });
            Ok(receiver)
        })
    }

    fn usage(&self, id: &WorkloadId) -> Result<Usage> {
        let cgroups = self.inner.cgroups.as_ref().ok_or(Error::NoAccounting)?;
        if !cgroups.exists(id) {
            return Err(Error::NotFound(id.clone()));
        }
        cgroups.usage(id)
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<WorkloadId, Managed>> {
        // A panic while holding this lock leaves a map that is still consistent.
        self.workloads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Network namespace and host veth names; derived from the cgroup parent and the id so
    /// that they are found again after a restart and differ between runtimes.
    fn network_names(&self, id: &WorkloadId) -> (String, String) {
        let hash = fnv1a(format!("{}/{id}", self.config.cgroup_parent).as_bytes()) & 0xff_ffff_ffff;
        (
            format!("{}-{hash:010x}", self.config.cgroup_parent),
            format!("tfv{hash:010x}"),
        )
    }

    fn signal(&self, id: &WorkloadId, init_pid: Option<u32>, process_group: bool, signal: Signal) {
        match init_pid {
            Some(pid) if process_group => {
                let _ = killpg(Pid::from_raw(pid as i32), signal);
            }
            // The init forwards the signal to the command's process group; SIGKILL of a
            // namespace's init makes the kernel kill every process in it.
            Some(pid) => {
                let _ = kill(Pid::from_raw(pid as i32), signal);
            }
            None => {
                if let Some(cgroups) = &self.cgroups {
                    cgroups.signal_all(id, signal);
                }
            }
        }
    }

    /// Kills what is left of a workload, removes its cgroup and network namespace (found by
    /// name, so one whose address could not be read after a restart goes too).
    async fn release(&self, id: &WorkloadId) {
        if let Some(cgroups) = &self.cgroups {
            if !cgroups.kill_all(id, KILL_TIMEOUT).await {
                tracing::error!(workload = %id, "processes survived SIGKILL; its cgroup stays");
            } else if let Err(err) = cgroups.remove(id).await {
                tracing::error!(workload = %id, error = %err, "could not remove the workload's cgroup");
            }
        }
        if self.network {
            let (netns, veth) = self.network_names(id);
            network::remove(&netns, &veth).await;
        }
    }

    /// Reports the end of a workload after releasing everything it held.
    async fn finish(&self, id: &WorkloadId, status: ExitStatus) {
        let oom = self.cgroups.as_ref().is_some_and(|c| c.oom_killed(id));
        let status = if oom && !status.success() {
            ExitStatus::OutOfMemory
        } else {
            status
        };
        // Released before the entry goes, so a start with the same id after the exit
        // finds neither the cgroup nor the network namespace.
        self.release(id).await;
        let managed = self.lock().remove(id);
        tracing::info!(workload = %id, ?status, "workload ended");
        if let Some(managed) = managed {
            managed.state.send_replace(WorkloadState::Exited(status));
        }
        let _ = self.events.send(WorkloadEvent {
            id: id.clone(),
            status,
        });
    }
}

async fn start(inner: &Arc<Inner>, spec: WorkloadSpec) -> Result<WorkloadHandle> {
    if !spec.tool_home.is_absolute() {
        return Err(Error::InvalidSpec {
            field: "tool_home",
            problem: "must be an absolute path",
        });
    }
    if !spec.tool_home.is_dir() {
        return Err(Error::InvalidSpec {
            field: "tool_home",
            problem: "does not exist",
        });
    }
    if inner.isolation == Isolation::None && !inner.config.allow_unisolated {
        let reason = inner.isolation_note.clone().unwrap_or_default();
        return Err(Error::IsolationUnavailable { reason });
    }
    let root = inner.config.images.resolve(&spec.image)?.to_path_buf();
    let id = spec.id.clone();
    let (state, receiver) = watch::channel(WorkloadState::Running);
    {
        let mut workloads = inner.lock();
        if workloads.contains_key(&id) {
            return Err(Error::AlreadyRunning(id));
        }
        let process_group = inner.isolation == Isolation::None;
        workloads.insert(
            id.clone(),
            Managed {
                state,
                init_pid: None,
                process_group,
                attachment: None,
            },
        );
    }
    match launch(inner, &spec, &root).await {
        Ok(launched) => {
            if let Some(managed) = inner.lock().get_mut(&id) {
                managed.init_pid = Some(launched.init_pid);
                managed.attachment = launched.attachment.clone();
            }
            let address = launched.attachment.as_ref().map(|a| a.address);
            let endpoint = launched
                .port
                .map(|port| SocketAddr::from((address.unwrap_or(Ipv4Addr::LOCALHOST), port)));
            let mut child = launched.child;
            let stdout = child.stdout.take();
            let stderr = child.stderr.take();
            let (stderr, drain) = if spec.stderr_file.is_some() {
                (None, stderr)
            } else {
                (stderr, None)
            };
            let isolated = inner.isolation != Isolation::None;
            let watcher_inner = Arc::clone(inner);
            let watcher_id = id.clone();
            inner.tasks.spawn(async move {
                watch_child(watcher_inner, watcher_id, child, drain, isolated).await
            });
            Ok(WorkloadHandle {
                id,
                pid: launched.init_pid,
                endpoint,
                address,
                stdout,
                stderr,
                state: receiver,
            })
        }
        Err(err) => {
            inner.lock().remove(&id);
            Err(err)
        }
    }
}

struct Launched {
    child: Child,
    init_pid: u32,
    attachment: Option<Attachment>,
    port: Option<u16>,
}

/// Creates the cgroup and network, spawns the sandbox and waits until its init runs; undoes
/// everything on failure.
async fn launch(inner: &Inner, spec: &WorkloadSpec, root: &Path) -> Result<Launched> {
    let id = &spec.id;
    if let Some(cgroups) = &inner.cgroups {
        cgroups.create(id, &spec.limits)?;
    }
    let attachment = if inner.network {
        let (netns, veth) = inner.network_names(id);
        let start = fnv1a(id.to_string().as_bytes());
        match network::attach(
            inner.config.job_network,
            inner.config.job_nat,
            &netns,
            &veth,
            start,
        )
        .await
        {
            Ok(attachment) => Some(attachment),
            Err(err) => {
                inner.release(id).await;
                return Err(err);
            }
        }
    } else {
        None
    };
    match spawn(inner, spec, root, attachment.as_ref()).await {
        Ok((child, init_pid, port)) => Ok(Launched {
            child,
            init_pid,
            attachment,
            port,
        }),
        Err(err) => {
            inner.release(id).await;
            Err(err)
        }
    }
}

async fn spawn(
    inner: &Inner,
    spec: &WorkloadSpec,
    root: &Path,
    attachment: Option<&Attachment>,
) -> Result<(Child, u32, Option<u16>)> {
    let config = &inner.config;
    let id = &spec.id;
    let isolated = inner.isolation != Isolation::None;
    let user = sandbox::tool_user(id.tool());
    // Without root, everything runs as the daemon's own user, whatever the spec says.
    let (uid, gid) = if inner.is_root {
        (spec.tool_uid, spec.tool_gid)
    } else {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    };
    let home_inside = if isolated {
        Path::new(PROJECT_DIR).join(id.tool())
    } else {
        spec.tool_home.clone()
    };
    // Without a network namespace, replicas share the host's ports: each gets its own.
    let port = match (spec.port, attachment) {
        (Some(port), Some(_)) => Some(port),
        (Some(_), None) => Some(free_port()?),
        (None, _) => None,
    };

    let mut env = BTreeMap::new();
    env.insert("PATH".to_owned(), DEFAULT_PATH.to_owned());
    env.insert("LANG".to_owned(), "C.UTF-8".to_owned());
    env.insert("HOME".to_owned(), home_inside.display().to_string());
    env.insert(
        "TOOL_DATA_DIR".to_owned(),
        home_inside.display().to_string(),
    );
    env.insert("USER".to_owned(), user.clone());
    env.insert("LOGNAME".to_owned(), user.clone());
    env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(port) = port {
        env.insert("PORT".to_owned(), port.to_string());
    }
    // Unisolated jobs have no `/data/project/<tool>`: their file logs go to the same files
    // through the host path of the home.
    let log_path = |path: &Option<String>| -> Option<String> {
        let path = path.as_deref()?;
        let inside = Path::new(PROJECT_DIR).join(id.tool());
        match Path::new(path).strip_prefix(&inside) {
            Ok(rest) if !isolated => Some(spec.tool_home.join(rest).display().to_string()),
            _ => Some(path.to_owned()),
        }
    };
    let script = sandbox::shell_script(
        &spec.command,
        log_path(&spec.stdout_file).as_deref(),
        log_path(&spec.stderr_file).as_deref(),
    );

    let mut setup = ChildSetup {
        cgroup_procs: Vec::new(),
        netns: None,
        mounts: None,
        nofile: spec.limits.nofile.map(nofile_within_reach),
        core_bytes: config.core_limit_bytes,
        user: inner.is_root.then_some((uid, gid)),
        inherit: Vec::new(),
        new_session: !isolated,
    };
    if let Some(cgroups) = &inner.cgroups {
        for path in cgroups.procs_files(id) {
            setup.cgroup_procs.push(open_fd(&path, libc::O_WRONLY)?);
        }
    }
    if let Some(attachment) = attachment {
        setup.netns = Some(open_fd(&attachment.netns_path(), libc::O_RDONLY)?);
    }

    // Files and pipes that must outlive the spawn call.
    let mut keep: Vec<OwnedFd> = Vec::new();
    let mut info_read = None;
    let mut command;
    if isolated {
        let (home_source, image_root, hide) = if inner.is_root {
            // The child binds these before it hides the data directory and becomes the
            // tool's user, so neither needs to be reachable by that user.
            let mut binds = vec![(
                cstring(&spec.tool_home)?,
                cstring(&config.stage_dir.join("home"))?,
            )];
            let image_root = if root == Path::new("/") {
                PathBuf::from("/")
            } else {
                binds.push((cstring(root)?, cstring(&config.stage_dir.join("root"))?));
                config.stage_dir.join("root")
            };
            let hide = paths_to_hide(config)
                .iter()
                .map(|path| cstring(path))
                .collect::<Result<Vec<_>>>()?;
            setup.mounts = Some(StageMounts { binds, hide });
            (config.stage_dir.join("home"), image_root, Vec::new())
        } else {
            let hide = paths_to_hide(config);
            (spec.tool_home.clone(), root.to_path_buf(), hide)
        };
        let read_etc =
            |name: &str| std::fs::read_to_string(root.join("etc").join(name)).unwrap_or_default();
        let passwd = sandbox::passwd_with(&read_etc("passwd"), &user, uid, gid, &home_inside);
        let group = sandbox::group_with(&read_etc("group"), &user, gid);
        let passwd_fd = data_fd(passwd.as_bytes())?;
        let group_fd = data_fd(group.as_bytes())?;
        let (info_reader, info_writer) = pipe()?;
        let plan = SandboxPlan {
            root: image_root,
            top_level: sandbox::top_level_entries(root)?,
            uid,
            gid,
            hostname: hostname(id),
            home_source,
            home_target: home_inside.clone(),
            hide,
            init: config.init_path.clone(),
            passwd_fd: passwd_fd.as_raw_fd(),
            group_fd: group_fd.as_raw_fd(),
            info_fd: info_writer.as_raw_fd(),
            argv: vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                "--".to_owned(),
                script,
            ],
        };
        setup.inherit = vec![
            passwd_fd.as_raw_fd(),
            group_fd.as_raw_fd(),
            info_writer.as_raw_fd(),
        ];
        keep.extend([passwd_fd, group_fd, info_writer]);
        info_read = Some(info_reader);
        command = Command::new(&config.bwrap_path);
        command.args(sandbox::bwrap_args(&plan)).current_dir("/");
    } else {
        command = Command::new("/bin/sh");
        command
            .args(["-c", "--", &script])
            .current_dir(&spec.tool_home);
    }
    command
        .env_clear()
        .envs(&env)
        .stdin(Stdio::null())
        .stdout(if spec.stdout_file.is_some() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stderr(Stdio::piped());
    // SAFETY: `ChildSetup::apply` only makes async-signal-safe system calls on memory
    // prepared before the fork.
    unsafe {
        command.pre_exec(move || setup.apply());
    }
    let mut child = command.spawn().map_err(Error::Spawn)?;
    drop(keep);
    let child_pid = child.id().unwrap_or(0);
    let init_pid = match info_read {
        None => child_pid,
        Some(info) => match read_info(info).await {
            Some(pid) => pid,
            None => return Err(start_failure(&mut child).await),
        },
    };
    Ok((child, init_pid, port))
}

/// The sandbox never came up: collect bwrap's complaint.
async fn start_failure(child: &mut Child) -> Error {
    let _ = child.start_kill();
    let mut message = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = tokio::time::timeout(
            KILL_TIMEOUT,
            (&mut stderr).take(4096).read_to_string(&mut message),
        )
        .await;
    }
    let _ = tokio::time::timeout(KILL_TIMEOUT, child.wait()).await;
    Error::SandboxStart {
        detail: message.trim().to_owned(),
    }
}

/// Reads bwrap's `{"child-pid": N}`; the fd stays open in the sandbox, so read up to the
/// closing brace rather than to the end.
async fn read_info(info: OwnedFd) -> Option<u32> {
    #[derive(serde::Deserialize)]
    struct Info {
        #[serde(rename = "child-pid")]
        child_pid: u32,
    }
    let mut file = tokio::fs::File::from_std(std::fs::File::from(info));
    let mut text = Vec::new();
    let read = async {
        let mut chunk = [0u8; 256];
        while !text.contains(&b'}') {
            match file.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => text.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(START_TIMEOUT, read).await.ok()?;
    let end = text.iter().position(|b| *b == b'}')? + 1;
    serde_json::from_slice::<Info>(&text[..end])
        .ok()
        .map(|info| info.child_pid)
}

/// Waits for a workload this runtime spawned.
async fn watch_child(
    inner: Arc<Inner>,
    id: WorkloadId,
    mut child: Child,
    mut drain: Option<ChildStderr>,
    isolated: bool,
) {
    let cancel = inner.cancel.clone();
    let mut captured = Vec::new();
    let status = loop {
        let mut chunk = [0u8; 1024];
        tokio::select! {
            status = child.wait() => break status,
            read = read_some(&mut drain, &mut chunk) => match read {
                Some(n) if captured.len() < 4096 => captured.extend_from_slice(&chunk[..n]),
                Some(_) => {}
                None => drain = None,
            },
            // The daemon is going away; the workload is left running for the next one.
            () = cancel.cancelled() => return,
        }
    };
    if !captured.is_empty() {
        tracing::warn!(workload = %id, output = %String::from_utf8_lossy(&captured).trim(), "sandbox wrote to standard error");
    }
    let status = match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) if isolated => ExitStatus::from_init_code(code),
            (Some(code), _) => ExitStatus::Code(code),
            (None, Some(signal)) => ExitStatus::Signal(signal),
            (None, None) => ExitStatus::Unknown,
        },
        Err(err) => {
            tracing::error!(workload = %id, error = %err, "could not wait for the workload");
            ExitStatus::Unknown
        }
    };
    inner.finish(&id, status).await;
}

/// Reads from an optional pipe; pending forever without one, `None` at its end.
async fn read_some(pipe: &mut Option<ChildStderr>, chunk: &mut [u8]) -> Option<usize> {
    match pipe {
        Some(pipe) => read_chunk(pipe, chunk).await,
        None => std::future::pending().await,
    }
}

async fn read_chunk(pipe: &mut (impl AsyncRead + Unpin), chunk: &mut [u8]) -> Option<usize> {
    match pipe.read(chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

/// Waits for a workload a previous daemon spawned: it is not our child, so watch its cgroup.
async fn watch_adopted(inner: Arc<Inner>, id: WorkloadId) {
    let Some(cgroups) = inner.cgroups.clone() else {
        return;
    };
    let mut interval = tokio::time::interval(ADOPTED_POLL);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                if cgroups.pids(&id).is_empty() {
                    break;
                }
            }
            () = inner.cancel.cancelled() => return,
        }
    }
    inner.finish(&id, ExitStatus::Unknown).await;
}

async fn wait_exited(
    state: &mut watch::Receiver<WorkloadState>,
    timeout: Duration,
) -> Option<ExitStatus> {
    let exited = tokio::time::timeout(timeout, async {
        match state
            .wait_for(|s| matches!(s, WorkloadState::Exited(_)))
            .await
        {
            Ok(state) => Some(*state),
            // The sender is dropped only after the exit was sent.
            Err(_) => None,
        }
    })
    .await;
    match exited {
        Ok(Some(WorkloadState::Exited(status))) => Some(status),
        Ok(_) => match *state.borrow() {
            WorkloadState::Exited(status) => Some(status),
            WorkloadState::Running => Some(ExitStatus::Unknown),
        },
        Err(_) => None,
    }
}

/// Whether `pid` is PID 1 of a child pid namespace (its `NSpid` ends in 1).
fn is_namespace_init(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))
        .is_some_and(|ids| {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            ids.len() > 1 && ids.last() == Some(&"1")
        })
}

/// Checks that bwrap can build a sandbox here, as the user workloads will run as.
async fn probe_sandbox(
    config: &LocalRuntimeConfig,
    is_root: bool,
) -> std::result::Result<(), String> {
    if !config.init_path.exists() {
        return Err(format!(
            "{} is missing (Debian package tini)",
            config.init_path.display()
        ));
    }
    let mut command = Command::new(&config.bwrap_path);
    command.args([
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
    ]);
    // Only what `true` needs, never `/` as a whole: binding `/` recursively also remounts
    // every submount, and one that goes away meanwhile (a network namespace under
    // `/run/netns`, which workloads create and remove) fails the probe for nothing.
    for name in ["usr", "bin", "sbin", "lib", "lib32", "lib64"] {
        let path = Path::new("/").join(name);
        match std::fs::read_link(&path) {
            Ok(target) => {
                command.arg("--symlink").arg(target).arg(&path);
            }
            Err(_) if path.is_dir() => {
                command.arg("--ro-bind").arg(&path).arg(&path);
            }
            Err(_) => {}
        }
    }
    command
        .args(["--proc", "/proc", "--dev", "/dev", "--", "/bin/true"])
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if is_root {
        // Workloads run bwrap as their tool's user: probe as an unprivileged one.
        let setup = ChildSetup {
            user: Some((65534, 65534)),
            ..ChildSetup::default()
        };
        // SAFETY: as in `spawn`.
        unsafe {
            command.pre_exec(move || setup.apply());
        }
    }
    match command.output().await {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!(
            "bubblewrap cannot create namespaces here: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(err) => Err(format!(
            "{} cannot run ({err}; Debian package bubblewrap)",
            config.bwrap_path.display()
        )),
    }
}

/// What the forked child does before exec.
#[derive(Debug, Default)]
struct ChildSetup {
    /// `cgroup.procs` of each hierarchy, opened before the fork.
    cgroup_procs: Vec<OwnedFd>,
    netns: Option<OwnedFd>,
    mounts: Option<StageMounts>,
    nofile: Option<u64>,
    core_bytes: u64,
    /// Become this uid and gid (root only).
    user: Option<(u32, u32)>,
    /// Fds the sandbox must inherit (opened close-on-exec, cleared in the child only).
    inherit: Vec<RawFd>,
    new_session: bool,
}

#[derive(Debug, Default)]
struct StageMounts {
    /// (source, staging target) bind mounts.
    binds: Vec<(CString, CString)>,
    /// Paths covered with an empty tmpfs.
    hide: Vec<CString>,
}

impl ChildSetup {
    /// Runs in the forked child: only async-signal-safe system calls, no allocation.
    fn apply(&self) -> io::Result<()> {
        for fd in &self.cgroup_procs {
            // Writing 0 moves the writer itself (v1 and v2).
            // SAFETY: a valid fd and a static buffer.
            check(unsafe { libc::write(fd.as_raw_fd(), c"0".as_ptr().cast(), 1) } as i32)?;
        }
        if let Some(fd) = &self.netns {
            // SAFETY: a valid namespace fd.
            check(unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) })?;
        }
        if let Some(mounts) = &self.mounts {
            // SAFETY: plain system calls on NUL-terminated strings made before the fork.
            unsafe {
                check(libc::unshare(libc::CLONE_NEWNS))?;
                // Private first, so nothing below propagates back to the host.
                check(libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))?;
                for (source, target) in &mounts.binds {
                    check(libc::mount(
                        source.as_ptr(),
                        target.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    ))?;
                }
                for path in &mounts.hide {
                    check(libc::mount(
                        c"tmpfs".as_ptr(),
                        path.as_ptr(),
                        c"tmpfs".as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RDONLY,
                        c"size=4k,mode=0755".as_ptr().cast(),
                    ))?;
                }
            }
        }
        if let Some(nofile) = self.nofile {
            let limit = libc::rlimit {
                rlim_cur: nofile,
                rlim_max: nofile,
            };
            // SAFETY: a valid rlimit struct.
            check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) })?;
        }
        let core = libc::rlimit {
            rlim_cur: self.core_bytes,
            rlim_max: self.core_bytes,
        };
        // SAFETY: a valid rlimit struct.
        check(unsafe { libc::setrlimit(libc::RLIMIT_CORE, &core) })?;
        if self.new_session {
            // SAFETY: no arguments.
            check(unsafe { libc::setsid() })?;
        }
        if let Some((uid, gid)) = self.user {
            // SAFETY: a one-element array that lives across the call.
            unsafe {
                check(libc::setgroups(1, &gid))?;
                check(libc::setresgid(gid, gid, gid))?;
                check(libc::setresuid(uid, uid, uid))?;
            }
        }
        for fd in &self.inherit {
            // SAFETY: clearing FD_CLOEXEC on an fd this process owns.
            check(unsafe { libc::fcntl(*fd, libc::F_SETFD, 0) })?;
        }
        Ok(())
    }
}

fn check(ret: i32) -> io::Result<()> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn open_fd(path: &Path, flags: i32) -> Result<OwnedFd> {
    let c_path = cstring(path)?;
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(c_path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Error::Io {
            action: "opening",
            path: path.to_path_buf(),
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: a freshly opened fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|errno| Error::Io {
        action: "creating a pipe",
        path: PathBuf::new(),
        source: io::Error::from(errno),
    })
}

/// An unnamed file holding `data`, read by bwrap (`--ro-bind-data`).
fn data_fd(data: &[u8]) -> Result<OwnedFd> {
    use std::io::{Seek, Write};
    let io_err = |source| Error::Io {
        action: "writing a sandbox file",
        path: std::env::temp_dir(),
        source,
    };
    let mut file = tempfile::tempfile().map_err(io_err)?;
    file.write_all(data).map_err(io_err)?;
    file.rewind().map_err(io_err)?;
    Ok(OwnedFd::from(file))
}

fn cstring(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::InvalidSpec {
        field: "path",
        problem: "contains a NUL byte",
    })
}

fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|source| Error::Io {
            action: "finding a free port on",
            path: PathBuf::from("127.0.0.1"),
            source,
        })?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|source| Error::Io {
            action: "finding a free port on",
            path: PathBuf::from("127.0.0.1"),
            source,
        })
}

/// Creates the stage directory and its `home` and `root` mount points, each reachable by
/// every tool user (0755) whatever the daemon's umask, since bwrap, running as the tool's
/// user, reads the staged binds from there.
fn create_stage_dir(stage_dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let missing: Vec<&Path> = stage_dir
        .ancestors()
        .take_while(|dir| !dir.exists())
        .collect();
    for dir in [stage_dir.join("home"), stage_dir.join("root")] {
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            action: "creating",
            path: dir.clone(),
            source,
        })?;
    }
    let created = missing
        .into_iter()
        .map(Path::to_path_buf)
        .chain([stage_dir.join("home"), stage_dir.join("root")]);
    for dir in created {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).map_err(
            |source| Error::Io {
                action: "setting permissions of",
                path: dir.clone(),
                source,
            },
        )?;
    }
    Ok(())
}

/// At most the hard limit this process has: without root it cannot be raised, and even root
/// cannot raise it past the host's limit in some containers (this project's CI machines), so
/// a large `nofile` lowers nothing and never makes the start fail with `EPERM`.
fn nofile_within_reach(nofile: u64) -> u64 {
    match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        Ok((_, hard)) => nofile.min(hard),
        Err(_) => nofile,
    }
}

/// `path` made absolute, with symlinks resolved when it exists.
fn absolute(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .map_err(|source| Error::Io {
            action: "resolving",
            path: path.to_path_buf(),
            source,
        })
}

/// The hidden paths and the homes directory that exist, without those inside another
/// (covering the outer one hides them, and their mount point would be gone).
fn paths_to_hide(config: &LocalRuntimeConfig) -> Vec<PathBuf> {
    let candidates: Vec<&PathBuf> = config
        .hidden_paths
        .iter()
        .chain([&config.homes_dir])
        .filter(|path| path.exists())
        .collect();
    let mut hide: Vec<PathBuf> = candidates
        .iter()
        .filter(|path| {
            !candidates
                .iter()
                .any(|outer| outer != *path && path.starts_with(outer))
        })
        .map(|path| path.to_path_buf())
        .collect();
    hide.sort();
    hide.dedup();
    hide
}

fn hostname(id: &WorkloadId) -> String {
    let mut name = format!("{}-{}-{}", id.tool(), id.job(), id.replica());
    name.truncate(63);
    name
}

/// FNV-1a, to derive short stable names from ids.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
