//! The scale benchmark of issue 6: a real daemon with N tools (default 1,000), each with one
//! continuous job running a real sleeping process and five scheduled jobs (5 N schedules),
//! and what that costs: the daemon's RSS, its idle CPU, and how late cron runs start.
//!
//! Run it as root (jobs run isolated as their tool's uid only as root; otherwise it says why
//! and exits 0):
//!
//! ```text
//! cargo bench -p toolforged --bench scale                      # 1,000 tools
//! cargo bench -p toolforged --bench scale -- --tools 50        # a quick check first
//! cargo bench -p toolforged --bench scale -- --tools 50 2>daemon.log
//! ```
//!
//! `cargo bench` builds the daemon binary with the bench profile before the benchmark
//! (`target/release/toolforged`, the same binary `cargo build --release -p toolforged`
//! makes) and hands its path to the benchmark as `CARGO_BIN_EXE_toolforged`; `--daemon-bin`
//! runs another one. Progress and the tables go to standard output; the daemon's own log
//! goes to standard error, prefixed `[toolforged]` (redirect it: at scale it is long).
//!
//! What it does, in order:
//! 1. starts `toolforged serve` on a temporary data directory and creates one user and N
//!    tools with `toolforged admin` (timed);
//! 2. over the jobs API, with each tool's own certificate, defines per tool one continuous
//!    job (`sleep 100000`, image bookworm, 64Mi, 100m) and the scheduled jobs that stay quiet
//!    during the run (a day six months away), timed;
//! 3. waits until every continuous replica is `Running`, then reads the daemon's RSS
//!    (`/proc/<pid>/status` VmRSS) and its idle CPU (utime+stime of `/proc/<pid>/stat` over
//!    `--idle-secs`, as a percentage of one core) while nothing changes;
//! 4. defines the sampled scheduled jobs (`* * * * *`, `--sampled`, default 100; with the
//!    quiet ones that makes five per tool), which append `date +%s.%N` to a file in their
//!    tool's home, and measures over `--boundaries` minute boundaries how late each run
//!    started: in-job (sub-second; includes the sandbox's start) and as recorded in the run
//!    history (`started_at`, which has one-second resolution and is taken before the
//!    sandbox starts);
//! 5. prints the table, flushes every tool's jobs (`DELETE /jobs/v1/tool/<t>/jobs/`, timed),
//!    stops the daemon with SIGTERM and checks that none of its workloads (processes in its
//!    cgroups, network namespaces) are left, removing any that are and saying so.
//!
//! It asserts no timing: it measures and prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use serde_json::json;
use test_support::daemon::{Daemon, DaemonOptions};
use test_support::https::{HttpResponse, HttpsConnection};

/// Scheduled jobs per tool (the issue's 5,000 schedules for 1,000 tools).
const SCHEDULES_PER_TOOL: usize = 5;
/// The user who maintains every tool.
const MAINTAINER: &str = "bench";
/// The continuous job of every tool.
const CONTINUOUS_JOB: &str = "sleeper";
/// The continuous job's command: a real process that sleeps for the whole run.
const SLEEP_COMMAND: &str = "sleep 100000";
/// Where a sampled job appends its start time, relative to its tool's home.
const FIRED_FILE_PREFIX: &str = "scale-fired-";
/// The scheduler skips a firing it could not start within 30 s of its time; after this long
/// past the last boundary every sampled run has started, been skipped or been missed.
const SETTLE_AFTER_BOUNDARY: Duration = Duration::from_secs(40);
/// How often a request answered with a 5xx is sent again: under concurrent writes the store
/// answers SQLITE_BUSY ("database is locked") often, and one request can lose several times.
const MAX_RETRIES: u32 = 30;
/// How long to wait for every continuous replica to run.
const RUNNING_TIMEOUT: Duration = Duration::from_secs(300);

/// Flags of the benchmark; each can also be set in the environment.
#[derive(Debug, Parser)]
#[command(about = "The scale benchmark of issue 6 (see the file's header).")]
struct Args {
    /// Tools to create; each gets one continuous job and five scheduled jobs.
    #[arg(long, env = "SCALE_BENCH_TOOLS", default_value_t = 1000)]
    tools: usize,
    /// Scheduled jobs that fire every minute, for lateness (at most five per tool); the
    /// other schedules do not fire during the run.
    #[arg(long, env = "SCALE_BENCH_SAMPLED", default_value_t = 100)]
    sampled: usize,
    /// Minute boundaries over which lateness is measured.
    #[arg(long, env = "SCALE_BENCH_BOUNDARIES", default_value_t = 2)]
    boundaries: u32,
    /// Seconds over which idle CPU is measured.
    #[arg(long, env = "SCALE_BENCH_IDLE_SECS", default_value_t = 20)]
    idle_secs: u64,
    /// Concurrent clients (admin commands and API connections) during setup and flush.
    #[arg(long, env = "SCALE_BENCH_CLIENTS", default_value_t = 4)]
    clients: usize,
    /// The daemon binary [default: the one cargo built for this benchmark].
    #[arg(long, env = "SCALE_BENCH_DAEMON_BIN")]
    daemon_bin: Option<PathBuf>,
    /// Passed by `cargo bench` to every benchmark; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !test_support::skip::is_root() {
        println!(
            "scale benchmark not run: jobs run isolated as their tool's uid only as root \
             (run `cargo bench -p toolforged --bench scale` as root)"
        );
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            println!("scale benchmark failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<()> {
    if args.tools == 0 {
        bail!("--tools must be at least 1");
    }
    let sampled = args.sampled.min(args.tools * SCHEDULES_PER_TOOL);
    let bin = args
        .daemon_bin
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_toolforged")));
    println!(
        "scale benchmark: {} tools, {} continuous jobs, {} schedules ({} firing every minute); daemon {}",
        args.tools,
        args.tools,
        args.tools * SCHEDULES_PER_TOOL,
        sampled,
        bin.display()
    );
    let mut daemon = DaemonOptions::default().start(&bin);
    let pid =
        daemon_pid(daemon.data_dir()).context("while looking for the daemon's pid in /proc")?;
    let tools: Vec<String> = (0..args.tools)
        .map(|idx| format!("scale-{idx:04}"))
        .collect();
    let samples = samples(args.tools, sampled);
    let mut report = Report::default();
    let (measured, cgroup_parent) = {
        let bench = Bench {
            daemon: &daemon,
            ca: std::fs::read_to_string(daemon.ca_cert_path()).context("while reading the CA")?,
            tools: &tools,
            samples: &samples,
            clients: args.clients.max(1),
            pid,
            retried: AtomicUsize::new(0),
        };
        let measured = bench.measure(args, &mut report);
        if let Err(err) = &measured {
            println!("measurement stopped: {err:#}");
        }
        // Whatever happened, leave nothing running: the daemon leaves workloads running when
        // it stops (a new daemon adopts them), so they are deleted through the API first.
        let cgroup_parent = cgroup_parent(pid);
        let flush = bench.flush_all();
        report.flush = Some(flush.elapsed);
        report.flush_errors = flush.errors;
        report.retried = bench.retried.load(Ordering::Relaxed);
        (measured, cgroup_parent)
    };
    report.log = LogSummary::of(&daemon.captured_stderr());
    report.daemon_exit = Some(daemon.shut_down().to_string());
    report.leftovers = Some(match &cgroup_parent {
        Some(parent) => remove_leftovers(parent),
        None => "unknown (no workload was found to learn the daemon's cgroup from)".to_owned(),
    });
    // The run history is read once the daemon has stopped, so the benchmark never opens (and
    // migrates) a database the daemon is using; flushing deletes jobs, not their runs.
    if let Some(lateness) = &mut report.lateness {
        let db = daemon.data_dir().join("toolforge.sqlite");
        match recorded_runs(&db, &tools, &samples) {
            Ok(runs) => lateness.add_recorded(&runs),
            Err(err) => println!("run history not read: {err:#}"),
        }
    }
    drop(daemon);
    report.print(args, sampled);
    measured
}

/// Which tool and schedule slot each sampled job takes: spread over the tools, at most
/// five per tool; per tool, the sampled jobs take the first slots.
fn samples(n_tools: usize, n_sampled: usize) -> Vec<(usize, usize)> {
    let mut per_tool = vec![0usize; n_tools];
    let mut samples = Vec::with_capacity(n_sampled);
    for sample_idx in 0..n_sampled {
        let tool_idx = sample_idx * n_tools / n_sampled;
        // More samples than tools: a tool takes several.
        let tool_idx = (tool_idx..n_tools)
            .chain(0..tool_idx)
            .find(|idx| per_tool[*idx] < SCHEDULES_PER_TOOL)
            .expect("at most five samples per tool were asked for");
        samples.push((tool_idx, per_tool[tool_idx]));
        per_tool[tool_idx] += 1;
    }
    samples
}

impl Lateness {
    /// Adds the recorded starts of the runs due at the measured boundaries.
    fn add_recorded(&mut self, runs: &[store::RunRecord]) {
        for run in runs {
            let started_at = run.started_at.unix_timestamp();
            let due = started_at.div_euclid(60) * 60;
            if run.trigger != "schedule" || !self.boundaries.contains(&due) {
                continue;
            }
            match run.outcome.as_deref() {
                Some("skipped") => {
                    let message = run.message.as_deref().unwrap_or("");
                    let reason = if message.contains("still going") {
                        "previous run still going"
                    } else if message.contains("within 30 seconds") {
                        "missed by more than 30 s"
                    } else {
                        "other"
                    };
                    *self.skipped.entry(reason).or_default() += 1;
                }
                Some("start-failed") => self.start_failed += 1,
                Some("succeeded") | None => self.recorded.push((started_at - due) as f64),
                Some(other) => {
                    self.recorded.push((started_at - due) as f64);
                    *self.other_outcomes.entry(other.to_owned()).or_default() += 1;
                }
            }
        }
    }
}

/// The sampled jobs' runs, from the store at `db`.
fn recorded_runs(
    db: &Path,
    tools: &[String],
    samples: &[(usize, usize)],
) -> Result<Vec<store::RunRecord>> {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("while building a tokio runtime")?;
    tokio.block_on(async {
        let store = store::Store::open(db)
            .await
            .context("while opening the store")?;
        let mut runs = Vec::new();
        for (tool_idx, slot) in samples {
            let mut recent = store
                .recent_runs(&tools[*tool_idx], &cron_name(*slot), 20)
                .await
                .context("while reading the run history")?;
            runs.append(&mut recent);
        }
        store.close().await;
        Ok(runs)
    })
}

/// What one run measured; printed at the end, also after a failure.
#[derive(Debug, Default)]
struct Report {
    isolation: Option<String>,
    create_tools: Option<Duration>,
    define_jobs: Option<Duration>,
    all_running: Option<Duration>,
    running: Option<usize>,
    not_running: BTreeMap<String, usize>,
    quiet_schedules: usize,
    idle: Option<Idle>,
    after_cron: Option<Snapshot>,
    lateness: Option<Lateness>,
    flush: Option<Duration>,
    flush_errors: Vec<String>,
    /// API requests answered with a 5xx and retried.
    retried: usize,
    log: LogSummary,
    daemon_exit: Option<String>,
    leftovers: Option<String>,
}

/// The daemon at rest.
#[derive(Debug)]
struct Idle {
    before: Snapshot,
    cpu_percent: f64,
    window: Duration,
}

/// What `/proc` says about the daemon at one moment.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    rss_kib: u64,
    hwm_kib: u64,
    threads: u64,
    fds: usize,
}

/// Lateness of the sampled scheduled runs.
#[derive(Debug, Default)]
struct Lateness {
    boundaries: Vec<i64>,
    expected: usize,
    /// In-job `date +%s.%N` minus the due time, seconds.
    in_job: Vec<f64>,
    /// `started_at` minus the due time, whole seconds.
    recorded: Vec<f64>,
    /// Skipped runs by reason.
    skipped: BTreeMap<&'static str, usize>,
    start_failed: usize,
    other_outcomes: BTreeMap<String, usize>,
}

struct Bench<'a> {
    daemon: &'a Daemon,
    ca: String,
    tools: &'a [String],
    samples: &'a [(usize, usize)],
    clients: usize,
    pid: u32,
    /// Requests answered with a 5xx and sent again.
    retried: AtomicUsize,
}

impl Bench<'_> {
    fn measure(&self, args: &Args, report: &mut Report) -> Result<()> {
        report.isolation = Some(self.isolation()?);
        if report.isolation.as_deref() != Some("full") {
            println!(
                "warning: the daemon's isolation is {:?}, not full: jobs do not run as their tools' uids",
                report.isolation
            );
        }

        let started = Instant::now();
        self.daemon.create_user(MAINTAINER, "bench@example.org");
        // One at a time: concurrent `admin tool create` fail with SQLITE_BUSY ("database is
        // locked"), because the store's transactions read before they write (a deferred
        // BEGIN cannot wait for the write lock); found by this benchmark, left to the store.
        let errors = self.in_parallel_with(1, self.tools.len(), |tool_idx| {
            let tool = &self.tools[tool_idx];
            let out = self
                .daemon
                .admin(&["tool", "create", tool, "--maintainer", MAINTAINER]);
            if !out.status.success() {
                bail!(
                    "`toolforged admin tool create {tool}` failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            Ok(())
        });
        first_error(errors).context("while creating tools")?;
        report.create_tools = Some(started.elapsed());
        println!(
            "created {} tools in {:.1} s",
            self.tools.len(),
            started.elapsed().as_secs_f64()
        );

        let quiet_month = quiet_month();
        let started = Instant::now();
        let n_quiet = AtomicUsize::new(0);
        let errors = self.in_parallel(self.tools.len(), |tool_idx| {
            let tool = &self.tools[tool_idx];
            let mut conn = self.connect(tool)?;
            self.post_job(&mut conn, tool, &continuous_job())?;
            let n_sampled = self
                .samples
                .iter()
                .filter(|(idx, _)| *idx == tool_idx)
                .count();
            for slot in n_sampled..SCHEDULES_PER_TOOL {
                let schedule = quiet_schedule(tool_idx, slot, quiet_month);
                self.post_job(&mut conn, tool, &scheduled_job(slot, &schedule, "true"))?;
                n_quiet.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
        report.quiet_schedules = n_quiet.into_inner();
        first_error(errors).context("while defining jobs")?;
        report.define_jobs = Some(started.elapsed());
        println!(
            "defined {} continuous jobs and {} quiet schedules in {:.1} s",
            self.tools.len(),
            report.quiet_schedules,
            started.elapsed().as_secs_f64()
        );

        let (running, not_running) = self.wait_until_running()?;
        report.all_running = Some(started.elapsed());
        report.running = Some(running);
        report.not_running = not_running;
        println!(
            "{running} of {} continuous replicas running, {:.1} s after the first definition",
            self.tools.len(),
            started.elapsed().as_secs_f64()
        );
        if running < self.tools.len() {
            println!("not running, by status: {:?}", report.not_running);
        }

        // Let start-up work (log files, first probes) settle before measuring rest.
        std::thread::sleep(Duration::from_secs(5));
        let before = snapshot(self.pid)?;
        let window = Duration::from_secs(args.idle_secs);
        let (cpu_percent, window) = idle_cpu(self.pid, window)?;
        println!(
            "idle: RSS {:.1} MiB, CPU {cpu_percent:.2} % of a core over {:.1} s",
            mib(before.rss_kib),
            window.as_secs_f64()
        );
        report.idle = Some(Idle {
            before,
            cpu_percent,
            window,
        });

        report.lateness = Some(self.cron_lateness(args.boundaries)?);
        report.after_cron = Some(snapshot(self.pid)?);
        Ok(())
    }

    /// `/healthz`'s isolation: `full`, `partial` or `none`.
    fn isolation(&self) -> Result<String> {
        let mut conn =
            HttpsConnection::connect(self.daemon.addresses().api, "localhost", &self.ca, None)
                .context("while connecting to the API")?;
        let res = conn.get("/healthz").context("while asking /healthz")?;
        Ok(res.json()["isolation"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned())
    }

    /// Defines the sampled jobs, waits for `boundaries` minute boundaries and reads when
    /// their runs started.
    fn cron_lateness(&self, boundaries: u32) -> Result<Lateness> {
        let started = Instant::now();
        let errors = self.in_parallel(self.samples.len(), |sample_idx| {
            let (tool_idx, slot) = self.samples[sample_idx];
            let tool = &self.tools[tool_idx];
            let mut conn = self.connect(tool)?;
            let command = format!("date +%s.%N >> {FIRED_FILE_PREFIX}{}", cron_name(slot));
            self.post_job(&mut conn, tool, &scheduled_job(slot, "* * * * *", &command))
        });
        first_error(errors).context("while defining the sampled schedules")?;
        let defined_at = unix_now();
        println!(
            "defined {} schedules firing every minute in {:.1} s",
            self.samples.len(),
            started.elapsed().as_secs_f64()
        );
        // Every schedule defined before the next boundary fires at it.
        let first = (defined_at.floor() as i64 / 60 + 1) * 60;
        let boundaries: Vec<i64> = (0..i64::from(boundaries.max(1)))
            .map(|idx| first + 60 * idx)
            .collect();
        let last = *boundaries.last().expect("at least one boundary");
        let wait = (last as f64 - unix_now()).max(0.0) + SETTLE_AFTER_BOUNDARY.as_secs_f64();
        println!(
            "measuring lateness at {} minute boundaries; waiting {wait:.0} s",
            boundaries.len()
        );
        std::thread::sleep(Duration::from_secs_f64(wait));

        let mut lateness = Lateness {
            expected: self.samples.len() * boundaries.len(),
            boundaries: boundaries.clone(),
            ..Lateness::default()
        };
        for (tool_idx, slot) in self.samples {
            let tool = &self.tools[*tool_idx];
            let file = self
                .daemon
                .tool_home(tool)
                .join(format!("{FIRED_FILE_PREFIX}{}", cron_name(*slot)));
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for line in text.lines() {
                let Ok(at) = line.trim().parse::<f64>() else {
                    continue;
                };
                // Runs later than 30 s are skipped, so a run belongs to the minute it is in.
                let due = (at.floor() as i64).div_euclid(60) * 60;
                if boundaries.contains(&due) {
                    lateness.in_job.push(at - due as f64);
                }
            }
        }
        Ok(lateness)
    }

    /// Polls every tool's jobs until each continuous replica runs, or until nothing has
    /// changed for a while; returns how many run and the others' statuses.
    fn wait_until_running(&self) -> Result<(usize, BTreeMap<String, usize>)> {
        let deadline = Instant::now() + RUNNING_TIMEOUT;
        let running: Vec<Mutex<bool>> = self.tools.iter().map(|_| Mutex::new(false)).collect();
        loop {
            let statuses: Mutex<BTreeMap<String, usize>> = Mutex::default();
            let errors = self.in_parallel(self.tools.len(), |tool_idx| {
                if *running[tool_idx].lock().expect("not poisoned") {
                    return Ok(());
                }
                let tool = &self.tools[tool_idx];
                let mut conn = self.connect(tool)?;
                let res = conn
                    .get(&format!("/jobs/v1/tool/{tool}/jobs/"))
                    .with_context(|| format!("while listing {tool}'s jobs"))?;
                expect_status(&res, 200, tool)?;
                let jobs = res.json();
                let sleeper = jobs["jobs"]
                    .as_array()
                    .and_then(|jobs| jobs.iter().find(|job| job["name"] == CONTINUOUS_JOB))
                    .ok_or_else(|| anyhow!("{tool} has no job {CONTINUOUS_JOB}"))?;
                let short = sleeper["status_short"].as_str().unwrap_or("?");
                if short == "Running" {
                    *running[tool_idx].lock().expect("not poisoned") = true;
                } else {
                    let long = sleeper["status_long"].as_str().unwrap_or("");
                    *statuses
                        .lock()
                        .expect("not poisoned")
                        .entry(format!("{short}: {long}"))
                        .or_default() += 1;
                }
                Ok(())
            });
            first_error(errors).context("while waiting for continuous jobs")?;
            let n_running = running
                .iter()
                .filter(|flag| *flag.lock().expect("not poisoned"))
                .count();
            let statuses = statuses.into_inner().expect("not poisoned");
            if n_running == self.tools.len() || Instant::now() >= deadline {
                return Ok((n_running, statuses));
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// Deletes every tool's jobs, whatever state the run left them in.
    fn flush_all(&self) -> Flush {
        let started = Instant::now();
        let errors = self.in_parallel(self.tools.len(), |tool_idx| {
            let tool = &self.tools[tool_idx];
            // A tool the run never created has nothing to flush.
            if !self
                .daemon
                .tool_home(tool)
                .join(".toolskube/client.crt")
                .exists()
            {
                return Ok(());
            }
            let mut conn = self.connect(tool)?;
            let res = conn
                .request("DELETE", &format!("/jobs/v1/tool/{tool}/jobs/"), &[], None)
                .with_context(|| format!("while flushing {tool}'s jobs"))?;
            expect_status(&res, 200, tool)
        });
        let elapsed = started.elapsed();
        let errors: Vec<String> = errors.into_iter().map(|err| format!("{err:#}")).collect();
        println!(
            "flushed every tool's jobs in {:.1} s ({} errors)",
            elapsed.as_secs_f64(),
            errors.len()
        );
        Flush { elapsed, errors }
    }

    fn post_job(
        &self,
        conn: &mut HttpsConnection,
        tool: &str,
        body: &serde_json::Value,
    ) -> Result<()> {
        let body = body.to_string();
        let mut attempt = 0;
        loop {
            let res = conn
                .request(
                    "POST",
                    &format!("/jobs/v1/tool/{tool}/jobs/"),
                    &[("Content-Type", "application/json")],
                    Some(body.as_bytes()),
                )
                .with_context(|| format!("while creating a job of {tool}"))?;
            // A 5xx (its cause is in the daemon's log) is retried, and counted, so one
            // transient failure does not end a long run.
            if res.status >= 500 && attempt < MAX_RETRIES {
                attempt += 1;
                self.retried.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis((50 * u64::from(attempt)).min(1000)));
                continue;
            }
            return expect_status(&res, 201, tool);
        }
    }

    /// A connection to the API presenting `tool`'s certificate.
    fn connect(&self, tool: &str) -> Result<HttpsConnection> {
        let addr = self.daemon.addresses().api;
        let dir = self.daemon.tool_home(tool).join(".toolskube");
        let cert = std::fs::read_to_string(dir.join("client.crt"))
            .with_context(|| format!("while reading {tool}'s certificate"))?;
        let key = std::fs::read_to_string(dir.join("client.key"))
            .with_context(|| format!("while reading {tool}'s key"))?;
        HttpsConnection::connect(addr, "localhost", &self.ca, Some((&cert, &key)))
            .with_context(|| format!("while connecting to the API as {tool}"))
    }

    /// Runs `work(0..n)` on `self.clients` threads; returns every error.
    fn in_parallel(
        &self,
        n: usize,
        work: impl Fn(usize) -> Result<()> + Sync,
    ) -> Vec<anyhow::Error> {
        self.in_parallel_with(self.clients, n, work)
    }

    /// Runs `work(0..n)` on `clients` threads; returns every error.
    fn in_parallel_with(
        &self,
        clients: usize,
        n: usize,
        work: impl Fn(usize) -> Result<()> + Sync,
    ) -> Vec<anyhow::Error> {
        let next = AtomicUsize::new(0);
        let errors = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..clients.min(n).max(1) {
                scope.spawn(|| {
                    loop {
                        let idx = next.fetch_add(1, Ordering::Relaxed);
                        if idx >= n {
                            break;
                        }
                        if let Err(err) = work(idx) {
                            errors.lock().expect("not poisoned").push(err);
                        }
                    }
                });
            }
        });
        errors.into_inner().expect("not poisoned")
    }
}

struct Flush {
    elapsed: Duration,
    errors: Vec<String>,
}

/// Counts of the daemon's log lines by level, and the distinct warnings and errors.
#[derive(Debug, Default)]
struct LogSummary {
    lines: usize,
    warnings: usize,
    errors: usize,
    /// Distinct warning and error messages (their text after the level, without fields
    /// that vary from job to job), with counts.
    distinct: BTreeMap<String, usize>,
}

impl LogSummary {
    fn of(log: &str) -> LogSummary {
        let mut summary = LogSummary::default();
        for line in log.lines() {
            summary.lines += 1;
            // The daemon colors its log even on a pipe.
            let line = without_ansi_escapes(line);
            let line = line.as_str();
            let level = if line.contains(" WARN ") {
                summary.warnings += 1;
                " WARN "
            } else if line.contains(" ERROR ") {
                summary.errors += 1;
                " ERROR "
            } else {
                continue;
            };
            let text = line.split_once(level).map_or(line, |(_, rest)| rest);
            *summary.distinct.entry(without_fields(text)).or_default() += 1;
        }
        summary
    }
}

/// `line` without terminal escape sequences (`ESC [ … letter`).
fn without_ansi_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A log message without its `key=value` fields, so one message from many jobs counts once.
fn without_fields(text: &str) -> String {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        if word.contains('=') {
            continue;
        }
        out.push(word);
    }
    let mut text = out.join(" ");
    text.truncate(160);
    text
}

impl Report {
    fn print(&self, args: &Args, sampled: usize) {
        let secs =
            |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
        println!();
        println!(
            "scale benchmark (issue 6), isolation {}",
            self.isolation.as_deref().unwrap_or("unknown")
        );
        let mut rows: Vec<(String, String)> = vec![
            ("tools".into(), args.tools.to_string()),
            (
                "continuous jobs running".into(),
                self.running
                    .map_or("-".to_owned(), |n| format!("{n} of {}", args.tools)),
            ),
            (
                "cron schedules".into(),
                format!(
                    "{} ({} quiet, {sampled} every minute)",
                    self.quiet_schedules + sampled,
                    self.quiet_schedules
                ),
            ),
        ];
        if let Some(idle) = &self.idle {
            rows.push((
                "RSS, idle (MiB)".into(),
                format!(
                    "{:.1} (peak so far {:.1}; {} threads, {} fds)",
                    mib(idle.before.rss_kib),
                    mib(idle.before.hwm_kib),
                    idle.before.threads,
                    idle.before.fds
                ),
            ));
            rows.push((
                "idle CPU (% of a core)".into(),
                format!(
                    "{:.2} (over {:.0} s)",
                    idle.cpu_percent,
                    idle.window.as_secs_f64()
                ),
            ));
        }
        if let Some(after) = &self.after_cron {
            rows.push((
                "RSS after cron runs (MiB)".into(),
                format!(
                    "{:.1} (peak {:.1}; {} threads, {} fds)",
                    mib(after.rss_kib),
                    mib(after.hwm_kib),
                    after.threads,
                    after.fds
                ),
            ));
        }
        if let Some(lateness) = &self.lateness {
            let mut in_job = lateness.in_job.clone();
            let mut recorded = lateness.recorded.clone();
            rows.push((
                "cron lateness in job p50/p99/max (s)".into(),
                format!(
                    "{} ({} of {} runs expected at {} minute boundaries)",
                    percentiles(&mut in_job, 3),
                    lateness.in_job.len(),
                    lateness.expected,
                    lateness.boundaries.len()
                ),
            ));
            rows.push((
                "cron lateness recorded p50/p99/max (s)".into(),
                format!(
                    "{} (started_at, 1 s resolution; {} runs)",
                    percentiles(&mut recorded, 0),
                    lateness.recorded.len()
                ),
            ));
            let skipped: usize = lateness.skipped.values().sum();
            rows.push((
                "cron runs skipped / start-failed".into(),
                format!(
                    "{skipped}{} / {}{}",
                    if skipped == 0 {
                        String::new()
                    } else {
                        format!(" {:?}", lateness.skipped)
                    },
                    lateness.start_failed,
                    if lateness.other_outcomes.is_empty() {
                        String::new()
                    } else {
                        format!(" (other outcomes: {:?})", lateness.other_outcomes)
                    }
                ),
            ));
        }
        rows.push(("setup: create tools".into(), secs(self.create_tools)));
        rows.push(("setup: define jobs".into(), secs(self.define_jobs)));
        rows.push(("setup: until all running".into(), secs(self.all_running)));
        rows.push((
            "flush all jobs".into(),
            format!("{} ({} errors)", secs(self.flush), self.flush_errors.len()),
        ));
        rows.push(("API 5xx answers (retried)".into(), self.retried.to_string()));
        rows.push((
            "daemon log".into(),
            format!(
                "{} lines, {} warnings, {} errors",
                self.log.lines, self.log.warnings, self.log.errors
            ),
        ));
        rows.push((
            "daemon exit".into(),
            self.daemon_exit.clone().unwrap_or_else(|| "-".to_owned()),
        ));
        rows.push((
            "left behind".into(),
            self.leftovers.clone().unwrap_or_else(|| "-".to_owned()),
        ));
        let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        for (name, value) in &rows {
            println!("  {name:<width$}  {value}");
        }
        if !self.not_running.is_empty() {
            println!("continuous jobs not running, by status:");
            for (status, count) in &self.not_running {
                println!("  {count:>5}  {status}");
            }
        }
        if !self.log.distinct.is_empty() {
            println!("daemon warnings and errors, by message:");
            for (message, count) in &self.log.distinct {
                println!("  {count:>5}  {message}");
            }
        }
        for err in self.flush_errors.iter().take(5) {
            println!("flush error: {err}");
        }
    }
}

/// `p50 / p99 / max` of `samples`, sorted in place, with `decimals` decimals.
fn percentiles(samples: &mut [f64], decimals: usize) -> String {
    if samples.is_empty() {
        return "-".to_owned();
    }
    samples.sort_by(f64::total_cmp);
    let at = |percent: usize| samples[((samples.len() - 1) * percent).div_ceil(100)];
    format!(
        "{:.decimals$} / {:.decimals$} / {:.decimals$}",
        at(50),
        at(99),
        samples[samples.len() - 1]
    )
}

fn continuous_job() -> serde_json::Value {
    job_body(CONTINUOUS_JOB, SLEEP_COMMAND, true, None)
}

fn scheduled_job(slot: usize, schedule: &str, command: &str) -> serde_json::Value {
    job_body(&cron_name(slot), command, false, Some(schedule))
}

fn cron_name(slot: usize) -> String {
    format!("cron-{slot}")
}

/// The body the official client sends for `toolforge jobs run` (api-contract.md §3.1.4).
fn job_body(name: &str, cmd: &str, continuous: bool, schedule: Option<&str>) -> serde_json::Value {
    json!({
        "name": name,
        "imagename": "bookworm",
        "cmd": cmd,
        "filelog": true,
        "filelog_stdout": null,
        "filelog_stderr": null,
        "memory": "64Mi",
        "cpu": "100m",
        "emails": "none",
        "retry": 0,
        "continuous": continuous,
        "schedule": schedule,
        "replicas": null,
        "port": null,
        "health_check": null,
        "mount": "all",
    })
}

/// A month six months from now: quiet schedules never fire during the run.
fn quiet_month() -> u32 {
    let days = unix_now() as i64 / 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), month only.
    let z = days + 719_468;
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (month + 5) % 12 + 1
}

/// A schedule in `month`, its minute, hour and day spread over the tools and slots, so
/// the scheduler holds many distinct wake-up times as it would in production.
fn quiet_schedule(tool_idx: usize, slot: usize, month: u32) -> String {
    let minute = (tool_idx * 7 + slot * 13) % 60;
    let hour = (tool_idx / 60 + slot * 5) % 24;
    let day = 1 + (tool_idx + slot) % 28;
    format!("{minute} {hour} {day} {month} *")
}

fn expect_status(res: &HttpResponse, expected: u16, tool: &str) -> Result<()> {
    if res.status != expected {
        bail!(
            "{tool}: HTTP {} instead of {expected}: {}",
            res.status,
            res.text().trim()
        );
    }
    Ok(())
}

fn first_error(errors: Vec<anyhow::Error>) -> Result<()> {
    let n = errors.len();
    match errors.into_iter().next() {
        None => Ok(()),
        Some(err) if n == 1 => Err(err),
        Some(err) => Err(err.context(format!("{n} operations failed; the first"))),
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The pid of `toolforged serve --data-dir <data_dir>`.
fn daemon_pid(data_dir: &Path) -> Result<u32> {
    let wanted = data_dir.as_os_str().as_encoded_bytes();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|byte| *byte == 0).collect();
        if args.get(1) == Some(&&b"serve"[..]) && args.contains(&wanted) {
            return Ok(pid);
        }
    }
    bail!(
        "no `toolforged serve --data-dir {}` process",
        data_dir.display()
    )
}

fn snapshot(pid: u32) -> Result<Snapshot> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("while reading the daemon's /proc status")?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0);
    Ok(Snapshot {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        threads: field("Threads:"),
        fds,
    })
}

/// The daemon's CPU time (utime + stime, all threads) over `window`, as a percentage of one
/// core, and the window as measured.
fn idle_cpu(pid: u32, window: Duration) -> Result<(f64, Duration)> {
    let ticks_per_sec = clock_ticks();
    let before = cpu_ticks(pid)?;
    let started = Instant::now();
    std::thread::sleep(window);
    let after = cpu_ticks(pid)?;
    let elapsed = started.elapsed();
    let cpu = (after - before) as f64 / ticks_per_sec;
    Ok((cpu / elapsed.as_secs_f64() * 100.0, elapsed))
}

fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .context("while reading the daemon's /proc stat")?;
    // The command name may contain spaces: fields are counted after its closing parenthesis.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name.
    let utime: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
    Ok(utime + stime)
}

/// `getconf CLK_TCK`, the unit of `/proc/<pid>/stat` times (100 almost everywhere).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The cgroup directory the daemon's workloads live under (`toolforge-<hash>`), learned from
/// one of its children: a workload's cgroup path ends in `<parent>/<tool>/<job>/<replica>`.
fn cgroup_parent(daemon_pid: u32) -> Option<String> {
    for pid in processes() {
        if parent_pid(pid) != Some(daemon_pid) {
            continue;
        }
        let Ok(cgroups) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
            continue;
        };
        for line in cgroups.lines() {
            let path = line.splitn(3, ':').nth(2).unwrap_or("");
            let parts: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
            if parts.len() >= 4 && parts[parts.len() - 3].starts_with("scale-") {
                return Some(parts[parts.len() - 4].to_owned());
            }
        }
    }
    None
}

/// Kills what is left in the daemon's cgroups and deletes its network namespaces and
/// cgroup directories; says what there was.
fn remove_leftovers(parent: &str) -> String {
    let marker = format!("/{parent}/");
    let pids: Vec<u32> = processes()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|cgroups| cgroups.contains(&marker))
        })
        .collect();
    for pid in &pids {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(*pid).expect("pids fit in i32"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
    let namespaces: Vec<String> = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(parent))
        .map(str::to_owned)
        .collect();
    for name in &namespaces {
        let _ = Command::new("ip").args(["netns", "delete", name]).status();
    }
    if !pids.is_empty() {
        // Killed processes leave their cgroups a moment later.
        std::thread::sleep(Duration::from_secs(1));
    }
    let mut n_cgroups = 0;
    if let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") {
        for controller in controllers.flatten() {
            n_cgroups += remove_cgroup_tree(&controller.path().join(parent));
        }
        // cgroup v2 keeps everything in one hierarchy at the root.
        n_cgroups += remove_cgroup_tree(&Path::new("/sys/fs/cgroup").join(parent));
    }
    if pids.is_empty() && namespaces.is_empty() {
        format!(
            "no process in cgroup {parent}, no network namespace {parent}-*; \
             {n_cgroups} empty cgroup directories removed"
        )
    } else {
        format!(
            "{} processes (killed), {} network namespaces and {n_cgroups} cgroups (removed)",
            pids.len(),
            namespaces.len()
        )
    }
}

/// Removes the cgroup directory `dir` and those below it, deepest first; returns how many.
fn remove_cgroup_tree(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            n += remove_cgroup_tree(&entry.path());
        }
    }
    n + usize::from(std::fs::remove_dir(dir).is_ok())
}

fn processes() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
}

fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}
