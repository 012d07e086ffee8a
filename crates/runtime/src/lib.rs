//! Runs a tool's workloads: the [`Runtime`] interface the jobs service speaks to, and
//! [`local::LocalRuntime`], which runs each workload on this machine as an isolated,
//! limited and accounted-for process tree without a container engine.
//!
//! A workload is one replica of one job of one tool ([`WorkloadId`]).
//! The runtime holds no durable state of its own: the jobs service keeps the definitions
//! and, after a restart of the daemon, calls [`Runtime::list`] and then [`Runtime::adopt`]
//! or [`Runtime::stop`] for what it finds.
//!
//! Architecture Invariant: nothing here knows HTTP or the store; a Kubernetes runtime can
//! implement the same trait with the same types.

pub mod images;
pub mod local;

mod cgroup;
mod network;
mod sandbox;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use tokio::process::{ChildStderr, ChildStdout};
use tokio::sync::watch;

pub use crate::network::JobNetwork;

/// Everything that can go wrong while running workloads.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name in a spec is not acceptable (it ends up in paths and interface names).
    #[error(
        "invalid {kind} name {value:?}: use lowercase letters, digits, '-' and '.', at most 63 characters"
    )]
    InvalidName { kind: &'static str, value: String },
    /// A spec field is inconsistent, e.g. a relative tool home.
    #[error("invalid workload spec: {field} {problem}")]
    InvalidSpec {
        field: &'static str,
        problem: &'static str,
    },
    /// A workload with this id already runs.
    #[error("workload {0} is already running")]
    AlreadyRunning(WorkloadId),
    /// No workload with this id runs (or it was never adopted and is gone).
    #[error("no workload {0}")]
    NotFound(WorkloadId),
    /// The image name is not in the catalog.
    #[error("unknown image '{name}'")]
    UnknownImage { name: String },
    /// The image is in the catalog but this machine cannot provide it.
    #[error(
        "image '{name}' is not available on this machine: {reason}; an administrator can provide it by pointing its `root:` in the data directory's `images.yaml` at a root filesystem directory (a copy of a system, or one made with `debootstrap <release> <directory>`)"
    )]
    ImageUnavailable { name: String, reason: String },
    /// No isolation is possible here and unisolated workloads were not allowed.
    #[error(
        "this machine cannot isolate workloads ({reason}); refusing to start them (the daemon's --allow-unisolated-jobs allows it)"
    )]
    IsolationUnavailable { reason: String },
    /// The image catalog file could not be parsed.
    #[error("invalid image catalog {path}")]
    Catalog {
        path: PathBuf,
        #[source]
        source: serde_norway::Error,
    },
    /// A file system operation failed.
    #[error("while {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A helper command (`ip`, `iptables`) failed.
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    /// Every address of the job network is taken.
    #[error("no free address left in the job network")]
    NetworkExhausted,
    /// The sandbox was spawned but did not come up; `detail` is what bubblewrap said.
    #[error("the sandbox did not start: {detail}")]
    SandboxStart { detail: String },
    /// A workload's processes were still there after SIGKILL and the kill timeout.
    #[error("workload {0} did not end after SIGKILL")]
    StopFailed(WorkloadId),
    /// The stage directory lies inside a path jobs must not see, so staged mounts would be
    /// hidden too.
    #[error("the stage directory {stage_dir} is inside the hidden path {hidden}")]
    StageDirHidden { stage_dir: PathBuf, hidden: PathBuf },
    /// The sandbox process could not be spawned.
    #[error("while spawning the sandbox")]
    Spawn(#[source] std::io::Error),
    /// Usage was asked for but this runtime has no cgroups to account with.
    #[error("resource accounting is not available (no usable cgroups)")]
    NoAccounting,
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Identifies one workload: replica `replica` of job `job` of tool `tool`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadId {
    tool: String,
    job: String,
    replica: u32,
}

impl WorkloadId {
    /// Validates the names: lowercase letters, digits, `-` and `.`, not starting with `.`
    /// or `-`, at most 63 characters (they become cgroup paths and host names).
    pub fn new(tool: &str, job: &str, replica: u32) -> Result<WorkloadId> {
        validate_name("tool", tool)?;
        validate_name("job", job)?;
        Ok(WorkloadId {
            tool: tool.to_owned(),
            job: job.to_owned(),
            replica,
        })
    }

    /// The tool's name.
    pub fn tool(&self) -> &str {
        &self.tool
    }

    /// The job's name.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// The replica's index.
    pub fn replica(&self) -> u32 {
        self.replica
    }
}

impl fmt::Display for WorkloadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.tool, self.job, self.replica)
    }
}

fn validate_name(kind: &'static str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && !value.starts_with(['.', '-'])
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            kind,
            value: value.to_owned(),
        })
    }
}

/// What to run: one replica of a job, as the jobs service asks for it.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    /// Which tool, job and replica this is.
    pub id: WorkloadId,
    /// The tool's Unix user id; processes run as it when the daemon is root.
    pub tool_uid: u32,
    /// The tool's Unix group id.
    pub tool_gid: u32,
    /// The tool home on the host (`<homes-dir>/<tool>`); jobs see it at `/data/project/<tool>`.
    pub tool_home: PathBuf,
    /// An image name or alias from the catalog ([`images::ImageCatalog`]).
    pub image: String,
    /// The shell command, run as `/bin/sh -c` like the original.
    pub command: String,
    /// Environment variables (envvars service, `TOOL_TOOLFORGE_API_URL`, …); they win over
    /// the defaults (`HOME`, `TOOL_DATA_DIR`, `PATH`, `PORT`, `USER`, `LOGNAME`).
    pub env: BTreeMap<String, String>,
    /// The port the job declared; see [`WorkloadHandle::endpoint`] for where it is reachable.
    pub port: Option<u16>,
    /// Resource limits.
    pub limits: Limits,
    /// Path, as seen inside the job, that standard output is appended to; when absent,
    /// standard output is handed to the caller in [`WorkloadHandle::stdout`].
    pub stdout_file: Option<String>,
    /// Path, as seen inside the job, that standard error is appended to; when absent,
    /// standard error is handed to the caller in [`WorkloadHandle::stderr`].
    pub stderr_file: Option<String>,
}

/// Per-workload resource limits; `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Memory (and memory plus swap, where swap exists) in bytes.
    pub memory_bytes: Option<u64>,
    /// CPU in thousandths of a core (Kubernetes' `100m` is 100).
    pub cpu_millis: Option<u32>,
    /// Number of processes and threads.
    pub pids: Option<u32>,
    /// Open files (`RLIMIT_NOFILE`).
    pub nofile: Option<u64>,
}

/// How a workload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// The command exited with this code.
    Code(i32),
    /// The command was killed by this signal.
    ///
    /// The sandbox's init reports a command killed by signal N as exit code 128+N, the way a
    /// shell does, so codes 129..=192 are reported as signals.
    Signal(i32),
    /// The cgroup's out-of-memory killer ended it.
    OutOfMemory,
    /// The workload was adopted after a daemon restart and ended; its exit code went to the
    /// previous daemon.
    Unknown,
}

impl ExitStatus {
    /// Decodes a raw exit code from the sandbox's init (see [`ExitStatus::Signal`]).
    pub fn from_init_code(code: i32) -> ExitStatus {
        if (129..=192).contains(&code) {
            ExitStatus::Signal(code - 128)
        } else {
            ExitStatus::Code(code)
        }
    }

    /// Whether the workload succeeded.
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

/// The state of one workload, as [`Runtime::watch`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadState {
    /// Processes are running.
    Running,
    /// Every process is gone and the workload's cgroup and network are removed.
    Exited(ExitStatus),
}

/// An exit, as [`Runtime::events`] broadcasts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadEvent {
    /// Which workload.
    pub id: WorkloadId,
    /// How it ended.
    pub status: ExitStatus,
}

/// What [`Runtime::start`] returns.
#[derive(Debug)]
pub struct WorkloadHandle {
    /// The workload's id.
    pub id: WorkloadId,
    /// Host process id of the workload's init (PID 1 inside its namespace).
    pub pid: u32,
    /// Where the workload's port is reachable from the host: its own address on the job
    /// network with the declared port (as root), or `127.0.0.1:$PORT` (without root).
    pub endpoint: Option<SocketAddr>,
    /// Its address on the job network, as root.
    pub address: Option<Ipv4Addr>,
    /// Standard output, when the spec named no file. Keep reading it: once it is dropped,
    /// the job's writes fail (`EPIPE`, or `SIGPIPE` for programs that do not ignore it).
    pub stdout: Option<ChildStdout>,
    /// Standard error, when the spec named no file; the same holds.
    pub stderr: Option<ChildStderr>,
    /// The workload's state; resolves to [`WorkloadState::Exited`] once everything is gone.
    pub state: watch::Receiver<WorkloadState>,
}

/// A workload as [`Runtime::list`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadInfo {
    /// The workload's id.
    pub id: WorkloadId,
    /// Host process ids in it.
    pub pids: Vec<u32>,
    /// Its address on the job network, if it has one.
    pub address: Option<Ipv4Addr>,
    /// Whether this runtime watches it (it started it or adopted it).
    pub managed: bool,
}

/// Current resource use of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Memory charged to the workload, in bytes.
    pub memory_bytes: u64,
    /// CPU time used since it started.
    pub cpu_time: Duration,
    /// Processes and threads in it.
    pub pids: u64,
}

/// How strongly workloads are isolated from the host and from each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Root: own namespaces (mount, pid, ipc, uts, network), the tool's uid, no capabilities.
    Full,
    /// No root: user and mount namespaces hide the host's data, the host network is shared.
    Partial,
    /// Plain processes; only started when explicitly allowed.
    None,
}

impl Isolation {
    /// `"full"`, `"partial"` or `"none"`, as `/healthz` reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Full => "full",
            Isolation::Partial => "partial",
            Isolation::None => "none",
        }
    }
}

/// A boxed future, so that [`Runtime`] can be used as `dyn Runtime`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the jobs service needs from a place that runs workloads.
///
/// Implemented by [`local::LocalRuntime`]; a Kubernetes runtime maps the same calls to pods.
/// Object safe: the jobs service can hold an `Arc<dyn Runtime>`.
pub trait Runtime: Send + Sync {
    /// How strongly workloads are isolated.
    fn isolation(&self) -> Isolation;

    /// Whether memory, cpu and pids limits are enforced.
    fn limits_enforced(&self) -> bool;

    /// Starts a workload; returns once its init runs.
    fn start(&self, spec: WorkloadSpec) -> BoxFuture<'_, Result<WorkloadHandle>>;

    /// Asks the workload to stop (SIGTERM to its init, which forwards it), kills whatever
    /// is left after `grace`, and returns how it ended once everything it held is released.
    /// A workload a previous daemon started is adopted first; [`Error::NotFound`] when
    /// there is no such workload (it already ended and was reported).
    fn stop<'a>(&'a self, id: &'a WorkloadId, grace: Duration)
    -> BoxFuture<'a, Result<ExitStatus>>;

    /// The state of a managed workload.
    fn watch(&self, id: &WorkloadId) -> Result<watch::Receiver<WorkloadState>>;

    /// Every exit of a managed workload.
    fn events(&self) -> tokio::sync::broadcast::Receiver<WorkloadEvent>;

    /// Every workload that runs, including ones a previous daemon started, and ones that
    /// ended while no daemon watched them (no pids left): adopt or stop those to have them
    /// reported and cleaned up.
    fn list(&self) -> BoxFuture<'_, Result<Vec<WorkloadInfo>>>;

    /// Starts watching a workload a previous daemon started (found by [`Runtime::list`]).
    fn adopt<'a>(
        &'a self,
        id: &'a WorkloadId,
    ) -> BoxFuture<'a, Result<watch::Receiver<WorkloadState>>>;

    /// Current resource use of a workload.
    fn usage(&self, id: &WorkloadId) -> Result<Usage>;
}

#[cfg(test)]
mod tests {
    use crate::{ExitStatus, Runtime, WorkloadId};

    #[test]
    fn the_runtime_trait_can_be_used_as_a_trait_object() {
        fn takes(_: Option<&dyn Runtime>) {}
        takes(None::<&crate::local::LocalRuntime>.map(|r| r as &dyn Runtime));
    }

    #[test]
    fn names_that_could_escape_a_path_are_refused() {
        for bad in ["", "..", ".x", "-x", "a/b", "A", "x y", &"a".repeat(64)] {
            assert!(
                WorkloadId::new(bad, "job", 0).is_err(),
                "{bad:?} was accepted"
            );
        }
        assert!(WorkloadId::new("my-tool", "job.v2", 3).is_ok());
    }

    #[test]
    fn init_codes_above_128_are_signals() {
        assert_eq!(ExitStatus::from_init_code(0), ExitStatus::Code(0));
        assert_eq!(ExitStatus::from_init_code(1), ExitStatus::Code(1));
        assert_eq!(ExitStatus::from_init_code(137), ExitStatus::Signal(9));
        assert_eq!(ExitStatus::from_init_code(143), ExitStatus::Signal(15));
        assert_eq!(ExitStatus::from_init_code(255), ExitStatus::Code(255));
    }
}
