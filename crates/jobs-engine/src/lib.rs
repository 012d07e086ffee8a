//! The jobs engine: keeps every tool's jobs in the state their definitions ask for.
//!
//! - Definitions and run history are in the store, written before a request is
//!   acknowledged and before a run is reported.
//! - One-off jobs run once when created (again on `restart`), retried up to `retry`
//!   times when they fail.
//! - Continuous jobs keep `replicas` replicas; a replica that exits is restarted with
//!   exponential back-off (10 s doubling to 5 min, reset after 10 min of health, as
//!   Kubernetes does); `restart` replaces replicas one at a time.
//! - Scheduled jobs are kept as definitions here; firing them belongs to the scheduler.
//! - Exits arrive as runtime events: there is no polling loop per job.
//!
//! Recovery (at start, [`JobsEngine::recover`]): workloads a previous daemon started are
//! found through the runtime. Replicas of continuous jobs that are still defined are
//! adopted (no downtime); anything else (one-off and scheduled runs, whose exit codes
//! went to the dead daemon, and workloads of deleted jobs) is stopped and its run recorded
//! as `interrupted`, so every run in the history has a known end. Missing replicas are
//! then started.

pub mod health;
pub mod logs;
pub mod quota;
pub mod status;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jobs::schedule::Schedule;
use jobs::scheduler::{
    Action, JobKey, KillReason, RunOutcome, ScheduledJob, Scheduler, SkipReason, Trigger,
};
use jobs::spec::{JobKind, JobSpec};
use runtime::{ExitStatus, Limits, Runtime, WorkloadId, WorkloadSpec};
use store::{RunEnd, Store};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::logs::Logs;
use crate::status::{JobStatus, LiveState};

/// Errors of the jobs engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such job (404).
    #[error("Job '{0}' does not exist")]
    NotFound(String),
    /// A job of that name exists and has not finished (409).
    #[error("A job with the name {0} already exists")]
    Conflict(String),
    /// Over the tool's quota (403 in the original's words).
    #[error("{0}")]
    Quota(String),
    /// Another job of the tool already has its web address (409).
    #[error(
        "Job '{holder}' already publishes this tool's web address (a tool publishes at most one job: its webservice or one job run with --publish); stop the webservice or delete job '{holder}' first"
    )]
    PublishConflict {
        /// The job that has the web address.
        holder: String,
    },
    /// The tool does not exist any more.
    #[error("tool '{0}' does not exist")]
    NoSuchTool(String),
    /// The store failed.
    #[error("store")]
    Store(#[from] store::Error),
    /// A stored definition could not be read.
    #[error("stored definition of job '{job}' is unreadable")]
    Corrupt {
        job: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where the engine finds extra environment variables for a tool's jobs (the envvars
/// service); the platform's own variables are added by the engine.
pub trait EnvSource: Send + Sync {
    /// The tool's variables, decrypted; `Err` says why they cannot be had, and the job
    /// does not start without them.
    fn env_for<'a>(&'a self, tool: &'a str) -> EnvFuture<'a>;
}

/// What [`EnvSource::env_for`] returns: the variables, or why they cannot be had.
pub type EnvFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Vec<(String, String)>, String>> + Send + 'a>,
>;

/// A run started or ended, as [`RunObserver`]s hear of it.
#[derive(Debug, Clone)]
pub struct RunEvent<'a> {
    pub tool: &'a str,
    /// The job's definition when the event happened.
    pub spec: &'a JobSpec,
    pub replica: u32,
    /// `None`: the run started; `Some`: how it ended.
    pub end: Option<&'a RunEnd<'a>>,
}

/// Told of every run's start and end (the job e-mails listen here); it must not block
/// for long, since the engine waits for it.
pub trait RunObserver: Send + Sync {
    fn run_event<'a>(
        &'a self,
        event: RunEvent<'a>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;
}

/// How the engine runs jobs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where tool homes live on the host.
    pub homes_dir: PathBuf,
    /// `TOOL_TOOLFORGE_API_URL` as jobs reach it.
    pub api_url_for_jobs: String,
    /// Where captured output is kept.
    pub logs_dir: PathBuf,
    /// How long a stopping job gets between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// First restart delay of a crashing continuous job.
    pub backoff_base: Duration,
    /// Longest restart delay.
    pub backoff_max: Duration,
    /// A replica that ran this long resets the back-off.
    pub healthy_after: Duration,
    /// Processes and threads a job may have.
    pub pids_limit: u32,
    /// Health check timing of continuous jobs.
    pub probes: health::ProbeTiming,
    /// How long a replica replaced by a rolling restart keeps running after it stopped
    /// taking new requests, so requests in flight finish.
    pub drain: Duration,
    /// How long the end of a run waits, after its workload exited, for the workload's
    /// output pipes to close and their last lines to reach the logs (a process the job
    /// left behind may hold them open).
    pub output_wait: Duration,
}

impl EngineConfig {
    /// The original's timings, for `homes_dir`, `logs_dir` and the jobs' API URL.
    pub fn new(homes_dir: PathBuf, logs_dir: PathBuf, api_url_for_jobs: String) -> Self {
        Self {
            homes_dir,
            api_url_for_jobs,
            logs_dir,
            stop_grace: Duration::from_secs(10),
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            healthy_after: Duration::from_secs(600),
            pids_limit: 1024,
            probes: health::ProbeTiming::default(),
            drain: Duration::from_secs(3),
            output_wait: Duration::from_secs(2),
        }
    }
}

/// The outcome of `apply` (PATCH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Updated,
    Unchanged,
}

/// A job with its status.
#[derive(Debug, Clone)]
pub struct JobView {
    pub spec: JobSpec,
    pub status: JobStatus,
}

/// Per-tool limits on job definitions and running workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolQuota {
    /// Running replicas of all jobs at once ("pods").
    pub pods: u32,
    /// One-off and scheduled runs at once.
    pub jobs: u32,
    /// Scheduled job definitions.
    pub cronjobs: u32,
    /// Continuous job definitions (webservice included).
    pub continuous: u32,
    /// Total cpu of running replicas, millicores.
    pub cpu_millis: u64,
    /// Total memory of running replicas, bytes.
    pub memory_bytes: u64,
    /// Largest cpu of one job.
    pub job_cpu_millis: u64,
    /// Largest memory of one job.
    pub job_memory_bytes: u64,
}

impl Default for ToolQuota {
    /// The original's defaults (toolforge-reference.md §4.2).
    fn default() -> Self {
        Self {
            pods: 10,
            jobs: 15,
            cronjobs: 50,
            continuous: 3,
            cpu_millis: 4000,
            memory_bytes: 8 << 30,
            job_cpu_millis: 1000,
            job_memory_bytes: 4 << 30,
        }
    }
}

/// Usage against a [`ToolQuota`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaUsage {
    pub pods: u32,
    pub jobs: u32,
    pub cronjobs: u32,
    pub continuous: u32,
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

#[derive(Debug, Default)]
struct JobState {
    /// Replicas running: run id, start time, the spec they run.
    running: BTreeMap<u32, Running>,
    restarts: u32,
    start_error: Option<String>,
    /// The replicas the engine itself is stopping, so their exits are not taken as
    /// crashes; the exit of any other replica (one that crashes while another is stopped,
    /// as in a rolling restart) is still seen.
    stopping: BTreeSet<u32>,
    /// Bumped when the definition changes or the job is restarted or deleted, so a
    /// pending delayed restart of an older generation does nothing.
    generation: u64,
}

#[derive(Debug, Clone)]
struct Running {
    run_id: i64,
    started: OffsetDateTime,
    attempt: u32,
    memory_bytes: u64,
    cpu_millis: u64,
    counts_as_job: bool,
    /// Stops the replica's health checks when it ends or is stopped.
    probe_cancel: Option<CancellationToken>,
    /// Where its port is reachable from the host.
    endpoint: Option<SocketAddr>,
    /// Whether it takes requests for the tool's web address: set once its port accepts
    /// connections (or its health check first passes), cleared when it is drained.
    serving: bool,
    /// Closed once every line of its captured stdout and stderr is in the logs (at once
    /// when nothing is captured).
    output: OutputDone,
}

/// Closed (its sender dropped) when the capture tasks of a replica's output are done.
type OutputDone = tokio::sync::watch::Receiver<()>;

/// A receiver that is closed already: nothing is captured.
fn no_output() -> OutputDone {
    tokio::sync::watch::channel(()).1
}

impl Running {
    fn stop_probing(&self) {
        if let Some(cancel) = &self.probe_cancel {
            cancel.cancel();
        }
    }
}

type Key = (String, String);

/// The jobs engine; cheap to clone.
#[derive(Clone)]
pub struct JobsEngine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    runtime: Arc<dyn Runtime>,
    config: EngineConfig,
    env: Option<Arc<dyn EnvSource>>,
    /// Set once at start ([`JobsEngine::set_run_observer`]).
    observer: std::sync::OnceLock<Arc<dyn RunObserver>>,
    logs: Arc<Logs>,
    state: Mutex<HashMap<Key, JobState>>,
    /// Each tool's published job (tool → job name), as stored.
    published: Mutex<HashMap<String, String>>,
    /// Fires when a replica becomes ready or exits (rolling restarts wait on it).
    replicas_changed: tokio::sync::Notify,
    /// Held while a definition is checked and stored, so two requests cannot both
    /// publish a job of one tool.
    define: tokio::sync::Mutex<()>,
    /// The scheduled jobs; its pure core decides, the scheduler task acts.
    scheduler: Mutex<Scheduler>,
    /// Wakes the scheduler task when schedules or runs change.
    wake: tokio::sync::Notify,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl JobsEngine {
    /// An engine over `store` and `runtime`; call [`JobsEngine::recover`] once, then
    /// serve requests. Exit events are handled by a task owned by `tracker`.
    pub fn new(
        store: Store,
        runtime: Arc<dyn Runtime>,
        config: EngineConfig,
        env: Option<Arc<dyn EnvSource>>,
        cancel: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        let logs = Arc::new(Logs::new(config.logs_dir.clone()));
        let engine = Self {
            inner: Arc::new(Inner {
                store,
                runtime,
                config,
                env,
                observer: std::sync::OnceLock::new(),
                logs,
                state: Mutex::default(),
                published: Mutex::default(),
                replicas_changed: tokio::sync::Notify::new(),
                define: tokio::sync::Mutex::new(()),
                scheduler: Mutex::default(),
                wake: tokio::sync::Notify::new(),
                cancel,
                tracker,
            }),
        };
        let events = engine.clone();
        engine
            .inner
            .tracker
            .spawn(async move { events.handle_events().await });
        let scheduler = engine.clone();
        engine
            .inner
            .tracker
            .spawn(async move { scheduler.run_scheduler().await });
        engine
    }

    /// Tells `observer` of every run's start and end from now on; only the first call
    /// takes effect.
    pub fn set_run_observer(&self, observer: Arc<dyn RunObserver>) {
        let _ = self.inner.observer.set(observer);
    }

    async fn notify(&self, tool: &str, spec: &JobSpec, replica: u32, end: Option<&RunEnd<'_>>) {
        if let Some(observer) = self.inner.observer.get() {
            let event = RunEvent {
                tool,
                spec,
                replica,
                end,
            };
            observer.run_event(event).await;
        }
    }

    /// Fires when the platform shuts down (for long-lived streams).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.cancel.clone()
    }

    /// The captured output of jobs.
    pub fn logs(&self) -> &Arc<Logs> {
        &self.inner.logs
    }

    /// How the engine runs jobs (where tool homes are, timings).
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The runtime jobs run on.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.inner.runtime
    }

    /// Where the tool's web address routes to: the endpoints of the running replicas of
    /// its published job that take requests (their port accepts connections, or their
    /// health check passed, and they are not being drained); empty when there are none.
    /// In memory only, cheap enough to call for every proxied request.
    pub fn web_upstreams(&self, tool: &str) -> Vec<SocketAddr> {
        let published = self
            .inner
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tool)
            .cloned();
        let Some(job) = published else {
            return Vec::new();
        };
        let state = self.lock();
        state
            .get(&key(tool, &job))
            .map(|job| {
                job.running
                    .values()
                    .filter(|running| running.serving)
                    .filter_map(|running| running.endpoint)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The effective quota of a tool: the defaults with the tool's overrides
    /// (`toolforged admin quota set`) applied.
    pub async fn quota(&self, tool: &str) -> Result<ToolQuota> {
        let overrides = self.inner.store.quota_overrides(tool).await?;
        Ok(ToolQuota::default().with_overrides(tool, &overrides))
    }

    /// Current use of the quota.
    pub async fn quota_usage(&self, tool: &str) -> Result<QuotaUsage> {
        let mut usage = QuotaUsage::default();
        for record in self.inner.store.list_jobs(tool).await? {
            let spec = parse_spec(&record)?;
            match spec.kind {
                JobKind::Scheduled { .. } => usage.cronjobs += 1,
                JobKind::Continuous { .. } => usage.continuous += 1,
                JobKind::OneOff => {}
            }
        }
        let state = self.lock();
        for ((job_tool, _), job) in state.iter() {
            if job_tool != tool {
                continue;
            }
            for running in job.running.values() {
                usage.pods += 1;
                usage.jobs += u32::from(running.counts_as_job);
                usage.cpu_millis += running.cpu_millis;
                usage.memory_bytes += running.memory_bytes;
            }
        }
        Ok(usage)
    }

    /// Creates a job (POST). A finished one-off job of the same name is replaced; any
    /// other existing job is a conflict.
    pub async fn create(&self, tool: &str, spec: JobSpec) -> Result<JobView> {
        let _define = self.inner.define.lock().await;
        if let Some(existing) = self.inner.store.get_job(tool, &spec.name).await? {
            let existing = parse_spec(&existing)?;
            let finished = existing.kind == JobKind::OneOff && !self.is_running(tool, &spec.name);
            if !finished {
                return Err(Error::Conflict(spec.name.clone()));
            }
        }
        self.check_definition_quota(tool, &spec).await?;
        self.check_publish(tool, &spec)?;
        self.define_and_start(tool, spec.clone(), "create").await?;
        self.view(tool, &spec.name).await
    }

    /// Creates, updates or leaves a job as it is (PATCH).
    pub async fn apply(&self, tool: &str, spec: JobSpec) -> Result<Applied> {
        let _define = self.inner.define.lock().await;
        match self.inner.store.get_job(tool, &spec.name).await? {
            Some(existing) if parse_spec(&existing)? == spec => Ok(Applied::Unchanged),
            Some(_) => {
                self.check_definition_quota(tool, &spec).await?;
                self.check_publish(tool, &spec)?;
                self.stop_job(tool, &spec.name).await;
                self.define_and_start(tool, spec, "update").await?;
                Ok(Applied::Updated)
            }
            None => {
                self.check_definition_quota(tool, &spec).await?;
                self.check_publish(tool, &spec)?;
                self.define_and_start(tool, spec, "create").await?;
                Ok(Applied::Created)
            }
        }
    }

    /// Deletes a job and stops its replicas.
    pub async fn delete(&self, tool: &str, name: &str) -> Result<()> {
        let _define = self.inner.define.lock().await;
        if self.inner.store.get_job(tool, name).await?.is_none() {
            return Err(Error::NotFound(name.to_owned()));
        }
        // The scheduler forgets the job first, so it cannot start a run while we stop it.
        self.scheduler().remove(&job_key(tool, name));
        self.stop_job(tool, name).await;
        self.inner.store.delete_job(tool, name).await?;
        self.unset_published(tool, name);
        self.lock().remove(&(tool.to_owned(), name.to_owned()));
        Ok(())
    }

    /// Deletes every job of a tool.
    pub async fn flush(&self, tool: &str) -> Result<()> {
        for record in self.inner.store.list_jobs(tool).await? {
            self.delete(tool, &record.name).await?;
        }
        Ok(())
    }

    /// Stops every workload of `tool` now and keeps it stopped (an admin disabled the
    /// tool): its scheduled jobs leave the scheduler, and the supervisor, the scheduler
    /// and [`JobsEngine::recover`] start nothing for a disabled tool (the store's tool
    /// status, checked at every start). Definitions are kept for
    /// [`JobsEngine::resume_tool`].
    pub async fn suspend_tool(&self, tool: &str) -> Result<()> {
        let mut names: Vec<String> = self
            .inner
            .store
            .list_jobs(tool)
            .await?
            .into_iter()
            .map(|record| record.name)
            .collect();
        for (job_tool, job) in self.lock().keys() {
            if job_tool == tool && !names.contains(job) {
                names.push(job.clone());
            }
        }
        for name in names {
            self.scheduler().remove(&job_key(tool, &name));
            self.stop_job(tool, &name).await;
        }
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Starts a re-enabled tool's continuous jobs and hands its scheduled jobs back to
    /// the scheduler (their next firing from now); one-off jobs stay finished. The
    /// tool's status must be active in the store first.
    pub async fn resume_tool(&self, tool: &str) -> Result<()> {
        let now = OffsetDateTime::now_utc();
        for record in self.inner.store.list_jobs(tool).await? {
            let spec = parse_spec(&record)?;
            match &spec.kind {
                JobKind::Continuous { replicas, .. } => {
                    {
                        let mut state = self.lock();
                        let job = state.entry(key(tool, &spec.name)).or_default();
                        job.generation += 1;
                        job.restarts = 0;
                        job.start_error = None;
                    }
                    for replica in 0..*replicas {
                        let up = self
                            .lock()
                            .get(&key(tool, &spec.name))
                            .is_some_and(|job| job.running.contains_key(&replica));
                        if !up {
                            self.start_replica(tool, &spec, replica, 0, "enable").await;
                        }
                    }
                }
                JobKind::Scheduled { .. } => self.schedule_job(tool, &spec, now),
                JobKind::OneOff => {}
            }
        }
        Ok(())
    }

    /// Restarts a job: a one-off job runs again, a continuous job's replicas are replaced
    /// one at a time (never all down at once when there are several), a scheduled job runs now.
    pub async fn restart(&self, tool: &str, name: &str) -> Result<()> {
        let record = self
            .inner
            .store
            .get_job(tool, name)
            .await?
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        let spec = parse_spec(&record)?;
        match &spec.kind {
            JobKind::Continuous { replicas, .. } => {
                self.roll(tool, &spec, *replicas).await;
            }
            JobKind::OneOff => {
                self.stop_job(tool, name).await;
                self.start_replica(tool, &spec, 0, 0, "restart").await;
            }
            JobKind::Scheduled { .. } => {
                let now = OffsetDateTime::now_utc();
                let key = job_key(tool, name);
                if self.scheduler().run_now(&key, now).is_err() {
                    self.schedule_job(tool, &spec, now);
                    let _ = self.scheduler().run_now(&key, now);
                }
                self.inner.wake.notify_one();
            }
        }
        Ok(())
    }

    /// Replaces a continuous job's definition with `spec` and rolls its replicas onto it
    /// as [`JobsEngine::restart`] does (one at a time, the old ones serving until each new
    /// one is ready); replicas beyond `spec`'s count are stopped at the end. A job of
    /// another kind, or a `spec` that is not continuous, is updated as PATCH does.
    pub async fn roll_update(&self, tool: &str, spec: JobSpec) -> Result<()> {
        let replicas = {
            let define = self.inner.define.lock().await;
            let record = self
                .inner
                .store
                .get_job(tool, &spec.name)
                .await?
                .ok_or_else(|| Error::NotFound(spec.name.clone()))?;
            let existing = parse_spec(&record)?;
            let (JobKind::Continuous { .. }, JobKind::Continuous { replicas, .. }) =
                (&existing.kind, &spec.kind)
            else {
                drop(define);
                self.apply(tool, spec).await?;
                return Ok(());
            };
            let replicas = *replicas;
            self.check_definition_quota(tool, &spec).await?;
            self.check_publish(tool, &spec)?;
            let text = serde_json::to_string(&spec).map_err(|source| Error::Corrupt {
                job: spec.name.clone(),
                source,
            })?;
            self.inner
                .store
                .put_job(tool, &spec.name, &text, OffsetDateTime::now_utc())
                .await?;
            self.set_published(tool, &spec);
            replicas
        };
        let name = spec.name.as_str();
        self.roll(tool, &spec, replicas).await;
        let surplus: Vec<u32> = {
            let state = self.lock();
            let mut running: Vec<u32> = state
                .get(&key(tool, name))
                .map(|job| job.running.keys().copied().collect())
                .unwrap_or_default();
            running.sort_unstable();
            running
                .into_iter()
                .skip(usize::try_from(replicas).unwrap_or(usize::MAX))
                .collect()
        };
        for replica in surplus {
            self.stop_replica(tool, name, replica).await;
        }
        Ok(())
    }

    /// Replaces a continuous job's replicas one at a time: a new replica starts (the
    /// quota allows one replica over the limit for it), and once its port accepts
    /// connections (or its health check passes) it takes requests; the old one stops
    /// taking new requests, gets [`EngineConfig::drain`] to finish those in flight, and
    /// is stopped. A new replica that never becomes ready is stopped and the roll ends
    /// there, the old replicas still serving. Missing replicas are started at the end.
    async fn roll(&self, tool: &str, spec: &JobSpec, replicas: u32) {
        let name = spec.name.as_str();
        let old: Vec<u32> = {
            let mut state = self.lock();
            let job = state.entry(key(tool, name)).or_default();
            job.generation += 1;
            job.restarts = 0;
            job.running.keys().copied().collect()
        };
        for old_replica in old {
            let Some((new_replica, run_id)) = self.start_surge_replica(tool, spec).await else {
                break;
            };
            if let Err(reason) = self.wait_ready(tool, name, new_replica, run_id).await {
                tracing::warn!(%tool, job = %name, replica = new_replica, %reason, "a replica of a rolling restart did not become ready; the old replicas keep running");
                self.stop_replica(tool, name, new_replica).await;
                let mut state = self.lock();
                state.entry(key(tool, name)).or_default().start_error = Some(format!(
                    "the restarted replica did not become ready ({reason}); the previous replicas keep running"
                ));
                return;
            }
            let draining = {
                let mut state = self.lock();
                let running = state
                    .get_mut(&key(tool, name))
                    .and_then(|job| job.running.get_mut(&old_replica));
                match running {
                    Some(running) => std::mem::replace(&mut running.serving, false),
                    None => false,
                }
            };
            if draining {
                tokio::select! {
                    () = self.inner.cancel.cancelled() => {}
                    () = tokio::time::sleep(self.inner.config.drain) => {}
                }
            }
            self.stop_replica(tool, name, old_replica).await;
        }
        loop {
            let missing = {
                let state = self.lock();
                let running = state
                    .get(&key(tool, name))
                    .map_or(0, |job| job.running.len());
                u32::try_from(running).unwrap_or(u32::MAX) < replicas
            };
            if !missing {
                break;
            }
            let replica = self.free_replica_index(tool, name);
            self.start_replica(tool, spec, replica, 0, "restart").await;
            if !self
                .lock()
                .get(&key(tool, name))
                .is_some_and(|job| job.running.contains_key(&replica))
            {
                break;
            }
        }
    }

    /// Starts one more replica of a continuous job for a rolling restart, at the lowest
    /// free index; `None` when it could not start (recorded in the job's status).
    async fn start_surge_replica(&self, tool: &str, spec: &JobSpec) -> Option<(u32, i64)> {
        let replica = self.free_replica_index(tool, &spec.name);
        match self
            .try_start_replica(tool, spec, replica, 0, "restart", true)
            .await
        {
            Ok(()) => {
                let state = self.lock();
                state
                    .get(&key(tool, &spec.name))
                    .and_then(|job| job.running.get(&replica))
                    .map(|running| (replica, running.run_id))
            }
            Err(message) => {
                tracing::warn!(%tool, job = %spec.name, replica, %message, "a rolling restart could not start a replica");
                let mut state = self.lock();
                state.entry(key(tool, &spec.name)).or_default().start_error = Some(message);
                None
            }
        }
    }

    /// The lowest replica index no running replica of the job has.
    fn free_replica_index(&self, tool: &str, name: &str) -> u32 {
        let state = self.lock();
        let taken = state.get(&key(tool, name));
        (0..)
            .find(|index| taken.is_none_or(|job| !job.running.contains_key(index)))
            .unwrap_or(0)
    }

    /// Waits until replica `replica` (run `run_id`) takes requests; `Err` when it exited
    /// or did not become ready within the startup probe's patience.
    async fn wait_ready(
        &self,
        tool: &str,
        name: &str,
        replica: u32,
        run_id: i64,
    ) -> Result<(), String> {
        let timing = self.inner.config.probes;
        let patience = timing
            .startup_period
            .saturating_mul(timing.startup_failures.saturating_add(1))
            .saturating_add(timing.timeout);
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let changed = self.inner.replicas_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let state = self.lock();
                match state
                    .get(&key(tool, name))
                    .and_then(|job| job.running.get(&replica))
                {
                    Some(running) if running.run_id == run_id && running.serving => return Ok(()),
                    Some(running) if running.run_id == run_id => {}
                    _ => return Err("it exited".to_owned()),
                }
            }
            tokio::select! {
                () = self.inner.cancel.cancelled() => return Err("the platform is shutting down".to_owned()),
                () = tokio::time::sleep_until(deadline) => return Err(format!("not ready within {patience:?}")),
                () = &mut changed => {}
            }
        }
    }

    /// One job with its status.
    pub async fn view(&self, tool: &str, name: &str) -> Result<JobView> {
        let record = self
            .inner
            .store
            .get_job(tool, name)
            .await?
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        let spec = parse_spec(&record)?;
        self.with_status(tool, spec).await
    }

    /// Every job of a tool with its status, by name.
    pub async fn list(&self, tool: &str) -> Result<Vec<JobView>> {
        let mut views = Vec::new();
        for record in self.inner.store.list_jobs(tool).await? {
            let spec = parse_spec(&record)?;
            views.push(self.with_status(tool, spec).await?);
        }
        Ok(views)
    }

    async fn with_status(&self, tool: &str, spec: JobSpec) -> Result<JobView> {
        let runs = self.inner.store.recent_runs(tool, &spec.name, 20).await?;
        let live = {
            let state = self.lock();
            state
                .get(&key(tool, &spec.name))
                .map(|job| LiveState {
                    running: job
                        .running
                        .iter()
                        .map(|(replica, run)| (*replica, run.started))
                        .collect(),
                    restarts: job.restarts,
                    start_error: job.start_error.clone(),
                })
                .unwrap_or_default()
        };
        let status = status::job_status(&spec, &live, &runs, OffsetDateTime::now_utc());
        Ok(JobView { spec, status })
    }

    fn is_running(&self, tool: &str, name: &str) -> bool {
        self.lock()
            .get(&key(tool, name))
            .is_some_and(|job| !job.running.is_empty())
    }

    async fn check_definition_quota(&self, tool: &str, spec: &JobSpec) -> Result<()> {
        let quota = self.quota(tool).await?;
        let mut cron = 0;
        let mut continuous = 0;
        for record in self.inner.store.list_jobs(tool).await? {
            if record.name == spec.name {
                continue;
            }
            match parse_spec(&record)?.kind {
                JobKind::Scheduled { .. } => cron += 1,
                JobKind::Continuous { .. } => continuous += 1,
                JobKind::OneOff => {}
            }
        }
        match spec.kind {
            JobKind::Scheduled { .. } if cron >= quota.cronjobs => Err(Error::Quota(format!(
                "Out of quota: the tool already has {cron} scheduled jobs, the limit is {}",
                quota.cronjobs
            ))),
            JobKind::Continuous { .. } if continuous >= quota.continuous => {
                Err(Error::Quota(format!(
                    "Out of quota: the tool already has {continuous} continuous jobs (including web services), the limit is {}",
                    quota.continuous
                )))
            }
            _ => Ok(()),
        }
    }

    async fn define_and_start(&self, tool: &str, spec: JobSpec, trigger: &str) -> Result<()> {
        let text = serde_json::to_string(&spec).map_err(|source| Error::Corrupt {
            job: spec.name.clone(),
            source,
        })?;
        self.inner
            .store
            .put_job(tool, &spec.name, &text, OffsetDateTime::now_utc())
            .await?;
        self.set_published(tool, &spec);
        {
            let mut state = self.lock();
            let job = state.entry(key(tool, &spec.name)).or_default();
            job.generation += 1;
            job.restarts = 0;
            job.start_error = None;
        }
        match &spec.kind {
            JobKind::OneOff => self.start_replica(tool, &spec, 0, 0, trigger).await,
            JobKind::Continuous { replicas, .. } => {
                for replica in 0..*replicas {
                    self.start_replica(tool, &spec, replica, 0, trigger).await;
                }
            }
            // Scheduled jobs wait for their time.
            JobKind::Scheduled { .. } => self.schedule_job(tool, &spec, OffsetDateTime::now_utc()),
        }
        Ok(())
    }

    /// Hands a scheduled job to the scheduler, its next firing computed from `base`.
    fn schedule_job(&self, tool: &str, spec: &JobSpec, base: OffsetDateTime) {
        let JobKind::Scheduled {
            schedule,
            schedule_actual,
            timeout,
        } = &spec.kind
        else {
            return;
        };
        let parsed = match Schedule::from_stored(schedule, schedule_actual) {
            Ok(parsed) => parsed,
            Err(err) => {
                tracing::error!(%tool, job = %spec.name, error = %err, "a stored schedule does not parse");
                return;
            }
        };
        let job = ScheduledJob {
            schedule: parsed,
            retry: u32::from(spec.retry),
            timeout: timeout
                .map(|secs| time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))),
        };
        self.scheduler()
            .upsert(job_key(tool, &spec.name), job, base);
        self.inner.wake.notify_one();
    }

    /// Fires scheduled jobs: one task and one timer for every schedule of every tool.
    async fn run_scheduler(&self) {
        loop {
            let now = OffsetDateTime::now_utc();
            let actions = self.scheduler().tick(now);
            for action in actions {
                self.execute(action).await;
            }
            let next = self.scheduler().next_wakeup();
            let wait = next.map_or(Duration::from_secs(60), |at| {
                let secs = (at - OffsetDateTime::now_utc())
                    .as_seconds_f64()
                    .clamp(0.0, 60.0);
                Duration::from_secs_f64(secs)
            });
            tokio::select! {
                () = self.inner.cancel.cancelled() => return,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn execute(&self, action: Action) {
        match action {
            Action::Start {
                key,
                attempt,
                trigger,
                ..
            } => {
                let spec = match self.inner.store.get_job(&key.tool, &key.job).await {
                    Ok(Some(record)) => match parse_spec(&record) {
                        Ok(spec) => spec,
                        Err(_) => return,
                    },
                    _ => return,
                };
                let trigger = match trigger {
                    Trigger::Schedule { .. } => "schedule",
                    Trigger::Retry => "retry",
                    Trigger::RunNow => "restart",
                };
                self.start_replica(&key.tool, &spec, 0, attempt.saturating_sub(1), trigger)
                    .await;
                if !self.is_running(&key.tool, &key.job) {
                    let _ = self.scheduler().run_finished(
                        &key,
                        RunOutcome::Failed,
                        OffsetDateTime::now_utc(),
                    );
                    self.inner.wake.notify_one();
                }
            }
            Action::Kill { key, reason, .. } => {
                let outcome = match reason {
                    KillReason::Timeout => "timeout",
                    KillReason::RunNow | KillReason::Removed => "stopped",
                };
                self.stop_replica_as(&key.tool, &key.job, 0, outcome).await;
                let _ = self.scheduler().run_finished(
                    &key,
                    RunOutcome::Killed,
                    OffsetDateTime::now_utc(),
                );
                self.inner.wake.notify_one();
            }
            Action::Skipped { key, due, reason } => {
                let message = match reason {
                    SkipReason::Missed => format!(
                        "the run due at {} was skipped: it could not start within 30 seconds of its time",
                        status::rfc3339(due)
                    ),
                    SkipReason::Overlap => format!(
                        "the run due at {} was skipped: the previous run was still going",
                        status::rfc3339(due)
                    ),
                };
                tracing::info!(tool = %key.tool, job = %key.job, %message, "skipped a scheduled run");
                let store = &self.inner.store;
                let res = async {
                    let id = store
                        .start_run(&key.tool, &key.job, 0, 0, "schedule", due)
                        .await?;
                    let end = RunEnd {
                        outcome: "skipped",
                        exit_code: None,
                        signal: None,
                        message: Some(&message),
                        at: OffsetDateTime::now_utc(),
                    };
                    store.end_run(id, &end).await
                }
                .await;
                if let Err(err) = res {
                    tracing::error!(error = %err, "recording a skipped run failed");
                }
            }
        }
    }

    fn scheduler(&self) -> std::sync::MutexGuard<'_, Scheduler> {
        self.inner
            .scheduler
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts one replica; a failure to start is recorded in the run history and shown
    /// in the job's status, never returned: the definition stands, as on Kubernetes.
    async fn start_replica(
        &self,
        tool: &str,
        spec: &JobSpec,
        replica: u32,
        attempt: u32,
        trigger: &str,
    ) {
        if let Err(message) = self
            .try_start_replica(tool, spec, replica, attempt, trigger, false)
            .await
        {
            tracing::warn!(%tool, job = %spec.name, replica, %message, "a job could not start");
            let mut state = self.lock();
            state.entry(key(tool, &spec.name)).or_default().start_error = Some(message);
        }
    }

    async fn try_start_replica(
        &self,
        tool: &str,
        spec: &JobSpec,
        replica: u32,
        attempt: u32,
        trigger: &str,
        surge: bool,
    ) -> Result<(), String> {
        let store = &self.inner.store;
        let account = store
            .get_tool(tool)
            .await
            .map_err(|err| err.to_string())?
            .ok_or_else(|| format!("tool '{tool}' does not exist"))?;
        if account.status == store::ToolStatus::Disabled {
            return Err(format!(
                "tool '{tool}' is disabled; nothing of it runs until an admin enables it"
            ));
        }
        let quota = self.quota(tool).await.map_err(|err| err.to_string())?;
        let usage = self
            .quota_usage(tool)
            .await
            .map_err(|err| err.to_string())?;
        let counts_as_job = !spec.is_continuous();
        // The extra replica of a rolling restart replaces one that stops as soon as it is
        // ready: the pods, cpu and memory quota let it through (one per job at a time).
        if !surge {
            if usage.pods >= quota.pods {
                return Err(format!(
                    "out of quota for running jobs (limit {})",
                    quota.pods
                ));
            }
            if usage.memory_bytes + spec.memory_bytes() > quota.memory_bytes {
                return Err(format!(
                    "out of quota for memory ({})",
                    jobs::quantity::GibibytesDisplay(quota.memory_bytes)
                ));
            }
            if usage.cpu_millis + spec.cpu_millis() > quota.cpu_millis {
                return Err(format!(
                    "out of quota for cpu ({})",
                    jobs::quantity::CoresDisplay(quota.cpu_millis)
                ));
            }
        }
        if counts_as_job && usage.jobs >= quota.jobs {
            return Err(format!(
                "out of quota for one-off and cron jobs at once (limit {})",
                quota.jobs
            ));
        }
        let id = WorkloadId::new(tool, &spec.name, replica).map_err(|err| err.to_string())?;
        let now = OffsetDateTime::now_utc();
        let run_id = store
            .start_run(tool, &spec.name, replica, attempt, trigger, now)
            .await
            .map_err(|err| err.to_string())?;
        let mut env = BTreeMap::new();
        if let Some(source) = &self.inner.env {
            match source.env_for(tool).await {
                Ok(vars) => env.extend(vars),
                Err(reason) => {
                    let message = format!("the tool's envvars could not be read: {reason}");
                    let end = RunEnd {
                        outcome: "start-failed",
                        exit_code: None,
                        signal: None,
                        message: Some(&message),
                        at: OffsetDateTime::now_utc(),
                    };
                    let _ = store.end_run(run_id, &end).await;
                    return Err(message);
                }
            }
        }
        // The platform's own variables win over the tool's (those names are reserved).
        env.insert(
            "TOOL_TOOLFORGE_API_URL".to_owned(),
            self.inner.config.api_url_for_jobs.clone(),
        );
        env.insert("TOOL_DATA_DIR".to_owned(), format!("/data/project/{tool}"));
        let home_path = |path: &Option<String>| {
            path.as_ref().map(|path| {
                if path.starts_with('/') {
                    path.clone()
                } else {
                    format!("/data/project/{tool}/{path}")
                }
            })
        };
        let (stdout_file, stderr_file) = if spec.filelog {
            (
                home_path(&spec.filelog_stdout),
                home_path(&spec.filelog_stderr),
            )
        } else {
            (None, None)
        };
        let port = match &spec.kind {
            JobKind::Continuous { port, .. } => *port,
            _ => None,
        };
        let workload = WorkloadSpec {
            id: id.clone(),
            tool_uid: account.uid,
            tool_gid: account.uid,
            tool_home: self.inner.config.homes_dir.join(tool),
            image: spec.image.clone(),
            command: spec.cmd.clone(),
            env,
            port,
            limits: Limits {
                memory_bytes: Some(spec.memory_bytes()),
                cpu_millis: u32::try_from(spec.cpu_millis()).ok(),
                pids: Some(self.inner.config.pids_limit),
                nofile: Some(65536),
            },
            stdout_file,
            stderr_file,
        };
        let handle = match self.inner.runtime.start(workload).await {
            Ok(handle) => handle,
            Err(err) => {
                let message = error_chain(&err);
                let end = RunEnd {
                    outcome: "start-failed",
                    exit_code: None,
                    signal: None,
                    message: Some(&message),
                    at: OffsetDateTime::now_utc(),
                };
                if let Err(store_err) = store.end_run(run_id, &end).await {
                    tracing::error!(error = %store_err, "recording a failed start failed");
                }
                return Err(message);
            }
        };
        let probe = match &spec.kind {
            JobKind::Continuous {
                health_check, port, ..
            } => match (health_check, handle.endpoint) {
                (Some(jobs::spec::HealthCheck::Http { path }), Some(endpoint)) => {
                    Some(health::Probe::Http {
                        endpoint,
                        path: path.clone(),
                    })
                }
                (Some(jobs::spec::HealthCheck::Script { script }), _) => {
                    Some(health::Probe::Script {
                        pid: handle.pid,
                        uid: account.uid,
                        gid: account.uid,
                        script: script.clone(),
                    })
                }
                (None, Some(endpoint)) if port.is_some() => Some(health::Probe::Tcp { endpoint }),
                _ => None,
            },
            _ => None,
        };
        let probe_cancel = probe.as_ref().map(|_| self.inner.cancel.child_token());
        let (output_open, output) = tokio::sync::watch::channel(());
        let output_open = Arc::new(output_open);
        {
            let mut state = self.lock();
            let job = state.entry(key(tool, &spec.name)).or_default();
            job.start_error = None;
            job.running.insert(
                replica,
                Running {
                    run_id,
                    started: now,
                    attempt,
                    memory_bytes: spec.memory_bytes(),
                    cpu_millis: spec.cpu_millis(),
                    counts_as_job,
                    probe_cancel: probe_cancel.clone(),
                    endpoint: handle.endpoint,
                    // Without a probe nothing tells when it is ready; it has no port either.
                    serving: probe.is_none(),
                    output,
                },
            );
        }
        for (stream, pipe) in [
            ("stdout", handle.stdout.map(Pipe::Out)),
            ("stderr", handle.stderr.map(Pipe::Err)),
        ] {
            if let Some(pipe) = pipe {
                let logs = self.inner.logs.clone();
                let (tool, job) = (tool.to_owned(), spec.name.clone());
                let open = output_open.clone();
                self.inner.tracker.spawn(async move {
                    match pipe {
                        Pipe::Out(out) => {
                            logs::capture(logs, tool, job, replica, stream, out).await;
                        }
                        Pipe::Err(err) => {
                            logs::capture(logs, tool, job, replica, stream, err).await;
                        }
                    }
                    drop(open);
                });
            }
        }
        // From here only the capture tasks keep the output open.
        drop(output_open);
        // A tool disabled while this replica started: `suspend_tool` may have looked at the
        // running replicas before this one was among them, so it stops itself.
        if let Ok(Some(account)) = store.get_tool(tool).await
            && account.status == store::ToolStatus::Disabled
        {
            self.stop_replica(tool, &spec.name, replica).await;
            return Err(format!(
                "tool '{tool}' was disabled while the job started; nothing of it runs until an admin enables it"
            ));
        }
        self.notify(tool, spec, replica, None).await;
        if let (Some(probe), Some(cancel)) = (probe, probe_cancel) {
            let engine = self.clone();
            let timing = self.inner.config.probes;
            let id = id.clone();
            let ready = {
                let engine = self.clone();
                let (tool, job) = (tool.to_owned(), spec.name.clone());
                move || engine.mark_serving(&tool, &job, replica, run_id)
            };
            self.inner.tracker.spawn(async move {
                if let Some(reason) = health::watch(probe, timing, cancel, ready).await {
                    tracing::info!(workload = %id, %reason, "restarting an unhealthy replica");
                    // Stopped as a crash would be: its exit is seen by the supervisor.
                    if let Err(err) = engine.inner.runtime.stop(&id, engine.inner.config.stop_grace).await {
                        tracing::warn!(workload = %id, error = %err, "stopping an unhealthy replica failed");
                    }
                }
            });
        }
        Ok(())
    }

    /// Waits until a replica's captured output is all in the logs, at most
    /// [`EngineConfig::output_wait`]; `false` when it was still open then.
    async fn output_ended(&self, mut output: OutputDone) -> bool {
        // `changed` fails once every capture task has dropped its sender; none sends.
        let closed = async { while output.changed().await.is_ok() {} };
        tokio::time::timeout(self.inner.config.output_wait, closed)
            .await
            .is_ok()
    }

    /// Stops every replica of a job (their exits are not taken as crashes).
    async fn stop_job(&self, tool: &str, name: &str) {
        let replicas: Vec<u32> = {
            let mut state = self.lock();
            let job = state.entry(key(tool, name)).or_default();
            job.generation += 1;
            job.running.keys().copied().collect()
        };
        for replica in replicas {
            self.stop_replica(tool, name, replica).await;
        }
    }

    async fn stop_replica(&self, tool: &str, name: &str, replica: u32) {
        self.stop_replica_as(tool, name, replica, "stopped").await;
    }

    async fn stop_replica_as(&self, tool: &str, name: &str, replica: u32, outcome: &str) {
        let running = {
            let mut state = self.lock();
            let job = state.entry(key(tool, name)).or_default();
            let running = job.running.remove(&replica);
            if running.is_some() {
                job.stopping.insert(replica);
            }
            running
        };
        let Some(running) = running else {
            return;
        };
        let done_stopping = || {
            if let Some(job) = self.lock().get_mut(&key(tool, name)) {
                job.stopping.remove(&replica);
            }
        };
        running.stop_probing();
        let Ok(id) = WorkloadId::new(tool, name, replica) else {
            done_stopping();
            return;
        };
        let res = self
            .inner
            .runtime
            .stop(&id, self.inner.config.stop_grace)
            .await;
        let (exit_code, signal) = match res {
            Ok(ExitStatus::Code(code)) => (Some(code), None),
            Ok(ExitStatus::Signal(signal)) => (None, Some(signal)),
            _ => (None, None),
        };
        if !self.output_ended(running.output.clone()).await {
            tracing::warn!(workload = %id, "a stopped workload's output is still open (a process it left behind holds it); recording its end anyway");
        }
        let end = RunEnd {
            outcome,
            exit_code,
            signal,
            message: None,
            at: OffsetDateTime::now_utc(),
        };
        if let Err(err) = self.inner.store.end_run(running.run_id, &end).await {
            tracing::error!(error = %err, "recording a stopped run failed");
        }
        // A run killed at its timeout ended without success; a stop asked for did not.
        if outcome == "timeout"
            && let Ok(Some(record)) = self.inner.store.get_job(tool, name).await
            && let Ok(spec) = parse_spec(&record)
        {
            self.notify(tool, &spec, replica, Some(&end)).await;
        }
        done_stopping();
    }

    /// Handles every exit the runtime reports, until cancelled.
    async fn handle_events(&self) {
        let mut events = self.inner.runtime.events();
        loop {
            let event = tokio::select! {
                () = self.inner.cancel.cancelled() => return,
                event = events.recv() => event,
            };
            match event {
                // Each exit waits for its output on its own, so a workload whose output
                // stays open never holds up the exits of others.
                Ok(event) => {
                    let engine = self.clone();
                    self.inner
                        .tracker
                        .spawn(async move { engine.on_exit(event.id, event.status).await });
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "missed workload events; checking every running replica"
                    );
                    self.reconcile_exits().await;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    async fn reconcile_exits(&self) {
        let running: Vec<WorkloadId> = {
            let state = self.lock();
            state
                .iter()
                .flat_map(|((tool, job), s)| {
                    s.running
                        .keys()
                        .filter_map(|replica| WorkloadId::new(tool, job, *replica).ok())
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        for id in running {
            let exited = match self.inner.runtime.watch(&id) {
                Ok(receiver) => match *receiver.borrow() {
                    runtime::WorkloadState::Exited(status) => Some(status),
                    runtime::WorkloadState::Running => None,
                },
                Err(_) => Some(ExitStatus::Unknown),
            };
            if let Some(status) = exited {
                self.on_exit(id, status).await;
            }
        }
    }

    async fn on_exit(&self, id: WorkloadId, status: ExitStatus) {
        let (tool, name, replica) = (id.tool().to_owned(), id.job().to_owned(), id.replica());
        // It takes no requests and is not probed any more, but it counts as running
        // until its last lines are in the logs: a run's end (in the history and in the
        // job's status) comes after all its output.
        let (run_id, output) = {
            let mut state = self.lock();
            let Some(job) = state.get_mut(&key(&tool, &name)) else {
                return;
            };
            if job.stopping.contains(&replica) {
                return;
            }
            let Some(running) = job.running.get_mut(&replica) else {
                return;
            };
            running.serving = false;
            running.stop_probing();
            (running.run_id, running.output.clone())
        };
        self.inner.replicas_changed.notify_waiters();
        if !self.output_ended(output).await {
            tracing::warn!(workload = %id, "an exited workload's output is still open (a process it left behind holds it); recording its end anyway");
        }
        let (running, generation) = {
            let mut state = self.lock();
            let Some(job) = state.get_mut(&key(&tool, &name)) else {
                return;
            };
            // Stopped or replaced while its output drained: that stop recorded the end.
            if job
                .running
                .get(&replica)
                .is_none_or(|running| running.run_id != run_id)
            {
                return;
            }
            (job.running.remove(&replica), job.generation)
        };
        self.inner.replicas_changed.notify_waiters();
        let Some(running) = running else {
            return;
        };
        let (outcome, exit_code, signal) = match status {
            ExitStatus::Code(0) => ("succeeded", Some(0), None),
            ExitStatus::Code(code) => ("failed", Some(code), None),
            ExitStatus::Signal(signal) => ("killed", None, Some(signal)),
            ExitStatus::OutOfMemory => ("oom", None, None),
            ExitStatus::Unknown => ("failed", None, None),
        };
        let message = (status == ExitStatus::OutOfMemory).then_some("out of memory");
        let end = RunEnd {
            outcome,
            exit_code,
            signal,
            message,
            at: OffsetDateTime::now_utc(),
        };
        if let Err(err) = self.inner.store.end_run(running.run_id, &end).await {
            tracing::error!(error = %err, "recording a run's end failed");
        }
        let spec = match self.inner.store.get_job(&tool, &name).await {
            Ok(Some(record)) => match parse_spec(&record) {
                Ok(spec) => spec,
                Err(_) => return,
            },
            _ => return,
        };
        self.notify(&tool, &spec, replica, Some(&end)).await;
        match &spec.kind {
            JobKind::OneOff => {
                if !status.success() && running.attempt < u32::from(spec.retry) {
                    self.start_replica(&tool, &spec, replica, running.attempt + 1, "retry")
                        .await;
                }
            }
            // The scheduler decides retries of scheduled runs, and needs to know the run
            // ended before the next firing may start.
            JobKind::Scheduled { .. } => {
                let outcome = match status {
                    ExitStatus::Code(0) => RunOutcome::Succeeded,
                    ExitStatus::Signal(_) => RunOutcome::Killed,
                    _ => RunOutcome::Failed,
                };
                let _ = self.scheduler().run_finished(
                    &job_key(&tool, &name),
                    outcome,
                    OffsetDateTime::now_utc(),
                );
                self.inner.wake.notify_one();
            }
            JobKind::Continuous { .. } => {
                let ran_for = OffsetDateTime::now_utc() - running.started;
                let restarts = {
                    let mut state = self.lock();
                    let job = state.entry(key(&tool, &name)).or_default();
                    if ran_for >= self.inner.config.healthy_after {
                        job.restarts = 0;
                    }
                    job.restarts += 1;
                    job.restarts
                };
                let delay = backoff(
                    self.inner.config.backoff_base,
                    self.inner.config.backoff_max,
                    restarts,
                );
                tracing::info!(%tool, job = %name, replica, ?status, ?delay, restarts, "restarting a continuous job");
                let engine = self.clone();
                self.inner.tracker.spawn(async move {
                    tokio::select! {
                        () = engine.inner.cancel.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                    let JobKind::Continuous { replicas, .. } = spec.kind else {
                        return;
                    };
                    // A rolling restart may have filled the job up (or taken this index)
                    // meanwhile: the job never gets more than `replicas` replicas.
                    let (current, up, taken) =
                        engine
                            .lock()
                            .get(&key(&tool, &name))
                            .map_or((None, 0, false), |job| {
                                (
                                    Some(job.generation),
                                    job.running.len(),
                                    job.running.contains_key(&replica),
                                )
                            });
                    if current != Some(generation)
                        || up >= usize::try_from(replicas).unwrap_or(usize::MAX)
                    {
                        return;
                    }
                    let replica = if taken {
                        engine.free_replica_index(&tool, &name)
                    } else {
                        replica
                    };
                    engine
                        .start_replica(&tool, &spec, replica, 0, "supervisor")
                        .await;
                });
            }
        }
    }

    /// After a daemon restart: adopt or stop what the previous daemon left running, settle
    /// runs that never ended, and start missing replicas of continuous jobs.
    pub async fn recover(&self) -> Result<()> {
        let store = &self.inner.store;
        let mut definitions: HashMap<Key, JobSpec> = HashMap::new();
        for record in store.all_jobs().await? {
            let spec = parse_spec(&record)?;
            definitions.insert(key(&record.tool, &record.name), spec);
        }
        // Nothing of a disabled tool runs: its workloads are stopped, not adopted, and
        // its schedules and replicas are not started.
        let disabled: std::collections::HashSet<String> = store
            .list_tools()
            .await?
            .into_iter()
            .filter(|tool| tool.status == store::ToolStatus::Disabled)
            .map(|tool| tool.name)
            .collect();
        definitions.retain(|(tool, _), _| !disabled.contains(tool));
        let unfinished = store.unfinished_runs().await?;
        let workloads = match self.inner.runtime.list().await {
            Ok(workloads) => workloads,
            Err(err) => {
                tracing::warn!(error = %err, "could not list the previous daemon's workloads");
                Vec::new()
            }
        };
        let mut adopted: HashMap<(Key, u32), i64> = HashMap::new();
        for info in workloads {
            let id = info.id.clone();
            let job_key = key(id.tool(), id.job());
            let run = unfinished.iter().rev().find(|run| {
                run.tool == id.tool() && run.job == id.job() && run.replica == id.replica()
            });
            // Replica indices move during rolling restarts: keep up to `replicas` of them.
            let adopted_of_job = adopted.keys().filter(|(k, _)| *k == job_key).count();
            let keep = matches!(
                definitions.get(&job_key),
                Some(JobSpec { kind: JobKind::Continuous { replicas, .. }, .. })
                    if adopted_of_job < usize::try_from(*replicas).unwrap_or(usize::MAX)
            );
            // Without root a replica's port is not known after a restart of the daemon:
            // a published job's replica is started anew so its web address routes to it.
            let keep = keep
                && (info.address.is_some()
                    || !definitions.get(&job_key).is_some_and(JobSpec::is_published));
            if keep && let (Ok(_), Some(run)) = (self.inner.runtime.adopt(&id).await, run) {
                adopted.insert((job_key.clone(), id.replica()), run.id);
                let spec = &definitions[&job_key];
                let mut state = self.lock();
                state.entry(job_key).or_default().running.insert(
                    id.replica(),
                    Running {
                        run_id: run.id,
                        started: run.started_at,
                        attempt: 0,
                        memory_bytes: spec.memory_bytes(),
                        cpu_millis: spec.cpu_millis(),
                        counts_as_job: false,
                        probe_cancel: None,
                        endpoint: info.address.zip(spec_port(spec)).map(SocketAddr::from),
                        // It served before the daemon restarted.
                        serving: true,
                        // An adopted workload's output went to the previous daemon.
                        output: no_output(),
                    },
                );
                tracing::info!(workload = %id, "adopted a replica of a continuous job");
                continue;
            }
            tracing::info!(workload = %id, "stopping a workload of the previous daemon");
            if let Err(err) = self
                .inner
                .runtime
                .stop(&id, self.inner.config.stop_grace)
                .await
            {
                tracing::warn!(workload = %id, error = %err, "could not stop a leftover workload");
            }
        }
        for run in unfinished {
            if adopted.values().any(|id| *id == run.id) {
                continue;
            }
            let end = RunEnd {
                outcome: "interrupted",
                exit_code: None,
                signal: None,
                message: Some("interrupted by a restart of the platform"),
                at: OffsetDateTime::now_utc(),
            };
            store.end_run(run.id, &end).await?;
        }
        for ((tool, _), spec) in &definitions {
            self.set_published(tool, spec);
        }
        for record in store.all_jobs().await? {
            let Some(spec) = definitions.get(&key(&record.tool, &record.name)) else {
                continue;
            };
            if spec.is_scheduled() {
                // From the last run (or the definition): a firing due while the daemon was
                // down is then either started (within 30 s) or recorded as skipped, once.
                let last_run = store.recent_runs(&record.tool, &record.name, 1).await?;
                let base = last_run.first().map_or(record.updated_at, |run| {
                    run.started_at.max(record.updated_at)
                });
                self.schedule_job(&record.tool, spec, base);
            }
        }
        for ((tool, name), spec) in &definitions {
            if let JobKind::Continuous { replicas, .. } = spec.kind {
                let up = self
                    .lock()
                    .get(&key(tool, name))
                    .map_or(0, |job| job.running.len());
                let missing = usize::try_from(replicas)
                    .unwrap_or(usize::MAX)
                    .saturating_sub(up);
                for _ in 0..missing {
                    let replica = self.free_replica_index(tool, name);
                    self.start_replica(tool, spec, replica, 0, "recovery").await;
                }
            }
        }
        Ok(())
    }

    /// Refuses to publish a second job of a tool (the caller holds `define`).
    fn check_publish(&self, tool: &str, spec: &JobSpec) -> Result<()> {
        if !spec.is_published() {
            return Ok(());
        }
        let published = self
            .inner
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match published.get(tool) {
            Some(holder) if *holder != spec.name => Err(Error::PublishConflict {
                holder: holder.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// The tool's published job, if any.
    pub fn published_job(&self, tool: &str) -> Option<String> {
        self.inner
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tool)
            .cloned()
    }

    /// Records whether `spec` is its tool's published job.
    fn set_published(&self, tool: &str, spec: &JobSpec) {
        let mut published = self
            .inner
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if spec.is_published() {
            published.insert(tool.to_owned(), spec.name.clone());
        } else if published.get(tool) == Some(&spec.name) {
            published.remove(tool);
        }
    }

    /// Forgets `name` as its tool's published job.
    fn unset_published(&self, tool: &str, name: &str) {
        let mut published = self
            .inner
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if published.get(tool).is_some_and(|job| job == name) {
            published.remove(tool);
        }
    }

    /// A replica's port accepts connections: it takes requests from now on, unless it
    /// was replaced or drained meanwhile.
    fn mark_serving(&self, tool: &str, name: &str, replica: u32, run_id: i64) {
        let mut state = self.lock();
        if let Some(running) = state
            .get_mut(&key(tool, name))
            .and_then(|job| job.running.get_mut(&replica))
            && running.run_id == run_id
        {
            running.serving = true;
        }
        drop(state);
        self.inner.replicas_changed.notify_waiters();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, JobState>> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

enum Pipe {
    Out(tokio::process::ChildStdout),
    Err(tokio::process::ChildStderr),
}

/// An error with its causes, each once: `a: b: c`.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn job_key(tool: &str, name: &str) -> JobKey {
    JobKey {
        tool: tool.to_owned(),
        job: name.to_owned(),
    }
}

fn spec_port(spec: &JobSpec) -> Option<u16> {
    match &spec.kind {
        JobKind::Continuous { port, .. } => *port,
        _ => None,
    }
}

fn key(tool: &str, name: &str) -> Key {
    (tool.to_owned(), name.to_owned())
}

fn parse_spec(record: &store::JobRecord) -> Result<JobSpec> {
    serde_json::from_str(&record.spec).map_err(|source| Error::Corrupt {
        job: record.name.clone(),
        source,
    })
}

/// The delay before the `restarts`-th restart: `base`, doubling, at most `max`.
pub fn backoff(base: Duration, max: Duration, restarts: u32) -> Duration {
    let factor = 2u32.saturating_pow(restarts.saturating_sub(1).min(16));
    base.saturating_mul(factor).min(max)
}

#[cfg(test)]
mod output_tests;
#[cfg(test)]
mod test_fixture;
#[cfg(test)]
mod web_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delays_double_from_ten_seconds_to_five_minutes() {
        let delays: Vec<u64> = (1..=8)
            .map(|n| backoff(Duration::from_secs(10), Duration::from_secs(300), n).as_secs())
            .collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300, 300]);
    }
}
