//! Tests that a run ends only after its captured output is in the logs, through
//! [`JobsEngine`] over a real store and a runtime whose workloads are real `/bin/sh`
//! processes with piped stdout and stderr (the runtime is the boundary a Kubernetes
//! runtime would sit behind; the sandbox itself is tested in the runtime crate).

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::spec::{Emails, JobKind, JobSpec, Mount};
use runtime::{
    BoxFuture, ExitStatus, Isolation, Runtime, Usage, WorkloadEvent, WorkloadHandle, WorkloadId,
    WorkloadInfo, WorkloadSpec, WorkloadState,
};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::JobsEngine;

/// Each running workload's process group and state.
type Workloads = HashMap<WorkloadId, (u32, watch::Receiver<WorkloadState>)>;

/// Workloads that are `/bin/sh -c CMD` in their own process group, their output piped.
struct ProcessRuntime {
    events: broadcast::Sender<WorkloadEvent>,
    running: Arc<Mutex<Workloads>>,
    /// Every process group started, killed when the test ends (a job may leave a
    /// process behind).
    groups: Mutex<Vec<u32>>,
}

impl ProcessRuntime {
    fn new() -> Self {
        Self {
            events: broadcast::channel(64).0,
            running: Arc::default(),
            groups: Mutex::default(),
        }
    }
}

/// Sends `signal` to every process of the group `pgid`.
fn kill_group(pgid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([signal, "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

impl ProcessRuntime {
    /// Kills every process group it started, with whatever is left in them.
    fn kill_all(&self) {
        for pgid in self.groups.lock().expect("lock").drain(..) {
            kill_group(pgid, "-KILL");
        }
    }
}

impl Runtime for ProcessRuntime {
    fn isolation(&self) -> Isolation {
        Isolation::None
    }

    fn limits_enforced(&self) -> bool {
        false
    }

    fn start(&self, spec: WorkloadSpec) -> BoxFuture<'_, runtime::Result<WorkloadHandle>> {
        Box::pin(async move {
            let mut child = tokio::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(&spec.command)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .spawn()
                .map_err(runtime::Error::Spawn)?;
            let pid = child.id().unwrap_or(0);
            self.groups.lock().expect("lock").push(pid);
            let (state, receiver) = watch::channel(WorkloadState::Running);
            self.running
                .lock()
                .expect("lock")
                .insert(spec.id.clone(), (pid, receiver.clone()));
            let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
            let (events, running, id) =
                (self.events.clone(), self.running.clone(), spec.id.clone());
            tokio::spawn(async move {
                let status = match child.wait().await {
                    Ok(status) => match (status.code(), status.signal()) {
                        (Some(code), _) => ExitStatus::Code(code),
                        (None, Some(signal)) => ExitStatus::Signal(signal),
                        (None, None) => ExitStatus::Unknown,
                    },
                    Err(_) => ExitStatus::Unknown,
                };
                running.lock().expect("lock").remove(&id);
                state.send_replace(WorkloadState::Exited(status));
                let _ = events.send(WorkloadEvent { id, status });
            });
            Ok(WorkloadHandle {
                id: spec.id,
                pid,
                endpoint: None,
                address: None,
                stdout,
                stderr,
                state: receiver,
            })
        })
    }

    fn stop<'a>(
        &'a self,
        id: &'a WorkloadId,
        _grace: Duration,
    ) -> BoxFuture<'a, runtime::Result<ExitStatus>> {
        Box::pin(async move {
            let (pgid, mut state) = self
                .running
                .lock()
                .expect("lock")
                .get(id)
                .cloned()
                .ok_or_else(|| runtime::Error::NotFound(id.clone()))?;
            kill_group(pgid, "-TERM");
            let exited = state
                .wait_for(|state| matches!(state, WorkloadState::Exited(_)))
                .await
                .map(|state| *state);
            match exited {
                Ok(WorkloadState::Exited(status)) => Ok(status),
                _ => Ok(ExitStatus::Unknown),
            }
        })
    }

    fn watch(&self, id: &WorkloadId) -> runtime::Result<watch::Receiver<WorkloadState>> {
        self.running
            .lock()
            .expect("lock")
            .get(id)
            .map(|(_, state)| state.clone())
            .ok_or_else(|| runtime::Error::NotFound(id.clone()))
    }

    fn events(&self) -> broadcast::Receiver<WorkloadEvent> {
        self.events.subscribe()
    }

    fn list(&self) -> BoxFuture<'_, runtime::Result<Vec<WorkloadInfo>>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn adopt<'a>(
        &'a self,
        id: &'a WorkloadId,
    ) -> BoxFuture<'a, runtime::Result<watch::Receiver<WorkloadState>>> {
        Box::pin(async move { Err(runtime::Error::NotFound(id.clone())) })
    }

    fn usage(&self, _id: &WorkloadId) -> runtime::Result<Usage> {
        Err(runtime::Error::NoAccounting)
    }
}

struct Fixture {
    engine: JobsEngine,
    runtime: Arc<ProcessRuntime>,
    cancel: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.runtime.kill_all();
    }
}

async fn fixture(output_wait: Duration) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = crate::test_fixture::store_with_tool(dir.path()).await;
    let mut config = crate::test_fixture::config_in(dir.path());
    config.output_wait = output_wait;
    let cancel = CancellationToken::new();
    let runtime = Arc::new(ProcessRuntime::new());
    let engine = JobsEngine::new(
        store,
        runtime.clone(),
        config,
        None,
        cancel.clone(),
        TaskTracker::new(),
    );
    Fixture {
        engine,
        runtime,
        cancel,
        _dir: dir,
    }
}

fn one_off(name: &str, cmd: &str) -> JobSpec {
    JobSpec {
        name: name.to_owned(),
        image: "bookworm".to_owned(),
        cmd: cmd.to_owned(),
        kind: JobKind::OneOff,
        filelog: false,
        filelog_stdout: None,
        filelog_stderr: None,
        memory: "512Mi".to_owned(),
        cpu: "500m".to_owned(),
        emails: Emails::None,
        retry: 0,
        mount: Mount::All,
        webservice: None,
    }
}

/// Polls the job's status until it is no longer running; its `status_short` then.
fn finished_status(engine: &JobsEngine, name: &str) -> String {
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| {
        test_support::poll::eventually(Duration::from_secs(20), || {
            let view = handle.block_on(engine.view("mytool", name)).expect("view");
            let short = view.status.short;
            (!short.starts_with("Running") && short != "Starting").then_some(short)
        })
    })
    .unwrap_or_else(|| panic!("job '{name}' did not finish"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_off_job_is_reported_finished_only_once_every_line_it_printed_is_in_the_logs() {
    let fx = fixture(Duration::from_secs(10)).await;
    // About 50 KB: it all fits in the pipes, so the shell exits at once and the lines are
    // still being read and written to the logs when it is gone.
    let cmd = "i=0; while [ $i -lt 4000 ]; do echo \"out $i\"; i=$((i+1)); done; \
               i=0; while [ $i -lt 500 ]; do echo \"err $i\" >&2; i=$((i+1)); done";
    fx.engine
        .create("mytool", one_off("printer", cmd))
        .await
        .expect("create");
    assert_eq!(finished_status(&fx.engine, "printer"), "Completed");
    // Read once, right when the status says it finished.
    let lines = fx.engine.logs().tail("mytool", "printer", None);
    let count = |stream: &str| lines.iter().filter(|line| line.stream == stream).count();
    assert_eq!(
        (count("stdout"), count("stderr")),
        (4000, 500),
        "the job was reported finished before all its output was in the logs"
    );
    let last_out = lines
        .iter()
        .rfind(|line| line.stream == "stdout")
        .expect("a stdout line");
    assert_eq!(last_out.message, "out 3999");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_output_a_leftover_process_holds_open_still_finishes() {
    let fx = fixture(Duration::from_millis(200)).await;
    // The background sleep keeps the job's stdout open after the shell exits; the
    // fixture kills it when the test ends.
    fx.engine
        .create("mytool", one_off("leaver", "sleep 600 & echo started"))
        .await
        .expect("create");
    assert_eq!(finished_status(&fx.engine, "leaver"), "Completed");
    let lines = fx.engine.logs().tail("mytool", "leaver", None);
    assert!(
        lines.iter().any(|line| line.message == "started"),
        "{lines:?}"
    );
}
