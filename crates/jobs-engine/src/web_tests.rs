//! Tests of published jobs and rolling restarts through [`JobsEngine`], over a real store
//! and a runtime whose workloads are in-process HTTP listeners (the runtime is the
//! boundary a Kubernetes runtime would sit behind, so it is the one thing faked here).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::spec::{Emails, JobKind, JobSpec, Mount};
use runtime::{
    BoxFuture, ExitStatus, Isolation, Runtime, Usage, WorkloadEvent, WorkloadHandle, WorkloadId,
    WorkloadInfo, WorkloadSpec, WorkloadState,
};
use store::Store;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{Error, JobsEngine, health};

/// A running listener workload: its accept loop and the state its watchers see.
type RunningListener = (tokio::task::JoinHandle<()>, watch::Sender<WorkloadState>);

/// Workloads that are HTTP listeners answering 200 to every connection.
struct ListenerRuntime {
    events: broadcast::Sender<WorkloadEvent>,
    running: Mutex<HashMap<WorkloadId, RunningListener>>,
    stop_hook: Mutex<Option<StopHook>>,
}

/// While the engine stops `when`, another workload crashes, and the stop does not return
/// before `release` fires: a crash in the middle of a stop the engine asked for.
struct StopHook {
    when: WorkloadId,
    crash: WorkloadId,
    release: tokio::sync::oneshot::Receiver<()>,
}

impl ListenerRuntime {
    fn new() -> Self {
        Self {
            events: broadcast::channel(64).0,
            running: Mutex::default(),
            stop_hook: Mutex::default(),
        }
    }

    /// The workload ends on its own with `status`, as a crash.
    fn crash(&self, id: &WorkloadId, status: ExitStatus) {
        let Some((task, state)) = self.running.lock().expect("lock").remove(id) else {
            return;
        };
        task.abort();
        let _ = state.send(WorkloadState::Exited(status));
        let _ = self.events.send(WorkloadEvent {
            id: id.clone(),
            status,
        });
    }
}

impl Runtime for ListenerRuntime {
    fn isolation(&self) -> Isolation {
        Isolation::Full
    }

    fn limits_enforced(&self) -> bool {
        true
    }

    fn start(&self, spec: WorkloadSpec) -> BoxFuture<'_, runtime::Result<WorkloadHandle>> {
        Box::pin(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(runtime::Error::Spawn)?;
            let endpoint = listener.local_addr().map_err(runtime::Error::Spawn)?;
            let task = tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .await;
                }
            });
            let (state, receiver) = watch::channel(WorkloadState::Running);
            self.running
                .lock()
                .expect("lock")
                .insert(spec.id.clone(), (task, state));
            Ok(WorkloadHandle {
                id: spec.id,
                pid: 0,
                endpoint: spec.port.map(|_| endpoint),
                address: None,
                stdout: None,
                stderr: None,
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
            let hook = {
                let mut hook = self.stop_hook.lock().expect("lock");
                if hook.as_ref().is_some_and(|hook| hook.when == *id) {
                    hook.take()
                } else {
                    None
                }
            };
            if let Some(hook) = hook {
                self.crash(&hook.crash, ExitStatus::Code(1));
                let _ = hook.release.await;
            }
            let (task, state) = self
                .running
                .lock()
                .expect("lock")
                .remove(id)
                .ok_or_else(|| runtime::Error::NotFound(id.clone()))?;
            task.abort();
            let status = ExitStatus::Signal(15);
            let _ = state.send(WorkloadState::Exited(status));
            let _ = self.events.send(WorkloadEvent {
                id: id.clone(),
                status,
            });
            Ok(status)
        })
    }

    fn watch(&self, id: &WorkloadId) -> runtime::Result<watch::Receiver<WorkloadState>> {
        self.running
            .lock()
            .expect("lock")
            .get(id)
            .map(|(_, state)| state.subscribe())
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
    runtime: Arc<ListenerRuntime>,
    store: Store,
    cancel: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = crate::test_fixture::store_with_tool(dir.path()).await;
    let mut config = crate::test_fixture::config_in(dir.path());
    config.probes = health::ProbeTiming {
        startup_period: Duration::from_millis(10),
        ..health::ProbeTiming::default()
    };
    config.drain = Duration::from_millis(50);
    config.stop_grace = Duration::from_millis(10);
    config.backoff_base = Duration::from_millis(10);
    let cancel = CancellationToken::new();
    let runtime = Arc::new(ListenerRuntime::new());
    let engine = JobsEngine::new(
        store.clone(),
        runtime.clone(),
        config,
        None,
        cancel.clone(),
        TaskTracker::new(),
    );
    Fixture {
        engine,
        runtime,
        store,
        cancel,
        _dir: dir,
    }
}

fn web_job(name: &str, replicas: u32, publish: bool) -> JobSpec {
    JobSpec {
        name: name.to_owned(),
        image: "bookworm".to_owned(),
        cmd: "serve".to_owned(),
        kind: JobKind::Continuous {
            replicas,
            port: Some(8000),
            health_check: None,
            publish,
        },
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

fn upstreams_become(engine: &JobsEngine, n: usize) -> Vec<SocketAddr> {
    tokio::task::block_in_place(|| {
        test_support::poll::eventually(Duration::from_secs(10), || {
            let upstreams = engine.web_upstreams("mytool");
            (upstreams.len() == n).then_some(upstreams)
        })
    })
    .unwrap_or_else(|| {
        panic!(
            "the tool's upstreams did not become {n}: {:?}",
            engine.web_upstreams("mytool")
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_publishes_at_most_one_job_and_the_refusal_names_the_holder() {
    let fx = fixture().await;
    fx.engine
        .create("mytool", web_job("web", 1, true))
        .await
        .expect("the first published job");
    let err = fx
        .engine
        .create("mytool", web_job("other", 1, true))
        .await
        .expect_err("a second published job");
    assert!(matches!(&err, Error::PublishConflict { holder } if holder == "web"));
    assert!(
        err.to_string().starts_with("Job 'web' already publishes"),
        "{err}"
    );
    assert!(
        fx.store
            .get_job("mytool", "other")
            .await
            .expect("store")
            .is_none(),
        "the refused job was stored"
    );
    // Unpublished jobs are not affected, and the address is free again once the holder goes.
    fx.engine
        .create("mytool", web_job("worker", 1, false))
        .await
        .expect("an unpublished continuous job");
    assert_eq!(fx.engine.published_job("mytool").as_deref(), Some("web"));
    fx.engine.delete("mytool", "web").await.expect("delete");
    assert!(fx.engine.web_upstreams("mytool").is_empty());
    fx.engine
        .create("mytool", web_job("other", 1, true))
        .await
        .expect("publishing after the holder was deleted");
    upstreams_become(&fx.engine, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_replaces_every_replica_and_never_leaves_the_tool_without_one() {
    let fx = fixture().await;
    // Two pods of quota, both used: the extra replica of the roll still starts.
    fx.store
        .set_quota_overrides("mytool", &[("pods", "2")], OffsetDateTime::now_utc())
        .await
        .expect("quota");
    fx.engine
        .create("mytool", web_job("web", 2, true))
        .await
        .expect("create");
    let before = upstreams_become(&fx.engine, 2);
    let watching = CancellationToken::new();
    let monitor = {
        let engine = fx.engine.clone();
        let watching = watching.clone();
        tokio::spawn(async move {
            let mut fewest = usize::MAX;
            while !watching.is_cancelled() {
                fewest = fewest.min(engine.web_upstreams("mytool").len());
                tokio::task::yield_now().await;
            }
            fewest
        })
    };
    fx.engine.restart("mytool", "web").await.expect("restart");
    watching.cancel();
    let fewest = monitor.await.expect("monitor");
    let after = upstreams_become(&fx.engine, 2);
    assert!(fewest >= 1, "the tool had no upstream during the roll");
    assert!(
        after.iter().all(|addr| !before.contains(addr)),
        "not every replica was replaced: before {before:?}, after {after:?}"
    );
    let view = fx.engine.view("mytool", "web").await.expect("view");
    assert_eq!(view.status.short, "Running", "{:?}", view.status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_crashes_while_a_rolling_restart_stops_another_is_recorded_and_restarted() {
    let fx = fixture().await;
    fx.engine
        .create("mytool", web_job("web", 2, true))
        .await
        .expect("create");
    upstreams_become(&fx.engine, 2);
    // The roll starts replica 2 first; while it stops replica 0, replica 2 crashes.
    let (release, released) = tokio::sync::oneshot::channel();
    *fx.runtime.stop_hook.lock().expect("lock") = Some(StopHook {
        when: WorkloadId::new("mytool", "web", 0).expect("id"),
        crash: WorkloadId::new("mytool", "web", 2).expect("id"),
        release: released,
    });
    let roll = {
        let engine = fx.engine.clone();
        tokio::spawn(async move { engine.restart("mytool", "web").await })
    };
    let crash_recorded = {
        let store = fx.store.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::block_in_place(|| {
            test_support::poll::eventually(Duration::from_secs(10), || {
                let runs = handle
                    .block_on(store.recent_runs("mytool", "web", 20))
                    .expect("runs");
                runs.into_iter().find(|run| {
                    run.replica == 2 && run.trigger == "restart" && run.outcome.is_some()
                })
            })
        })
    };
    // The stop of replica 0 goes on either way, so the roll ends.
    let _ = release.send(());
    let crashed = crash_recorded.expect(
        "the crash of the new replica, while the roll stopped an old one, was never recorded",
    );
    assert_eq!(crashed.outcome.as_deref(), Some("failed"), "{crashed:?}");
    assert_eq!(crashed.exit_code, Some(1), "{crashed:?}");
    roll.await.expect("roll task").expect("restart");
    // The crashed replica is replaced, and the job ends up with its two replicas, not more.
    upstreams_become(&fx.engine, 2);
    let restarted = tokio::task::block_in_place(|| {
        test_support::poll::eventually(Duration::from_secs(10), || {
            let handle = tokio::runtime::Handle::current();
            let view = handle
                .block_on(fx.engine.view("mytool", "web"))
                .expect("view");
            (view.status.short == "Running" && fx.engine.web_upstreams("mytool").len() == 2)
                .then_some(view)
        })
    });
    let view = restarted.expect("the job did not come back to two running replicas");
    assert_eq!(
        fx.engine.quota_usage("mytool").await.expect("usage").pods,
        2,
        "{view:?}"
    );
}
