//! The jobs benchmark of issue 5, through the gateway of a real `toolforged serve`:
//!
//! - `GET jobs` latency with 50 jobs defined (scheduled yearly, so none runs meanwhile);
//! - `POST jobs` to finished: 200 one-off jobs (`echo hi`, image `bookworm`, no file log),
//!   one after the other, each timed from sending the POST until `GET jobs/{name}` shows
//!   `status_short` `Completed` (the run has ended with exit code 0 and its end is recorded;
//!   "running" is never reliably observable for a command this short). The POST's own
//!   answer (201) is timed too.
//!
//! Everything goes over one keep-alive mTLS connection presenting the tool's certificate,
//! made before any clock starts. Completion is polled every [`POLL_PAUSE`], which bounds
//! the resolution of the second measurement. The tool's quota is raised first with
//! `toolforged admin quota set` (pods, jobs, cronjobs, cpu, memory), so no run can be held
//! back by it.
//!
//! Run with `cargo bench -p toolforged --bench jobs`. Cargo builds the `toolforged` binary
//! in the same (`bench`, release-like) profile, `target/release/toolforged`, and hands its
//! path to the benchmark as `CARGO_BIN_EXE_toolforged`; that is the daemon measured.
//! Jobs run isolated as the tool's uid only as root: otherwise the benchmark says so and
//! exits 0. It prints a table and asserts nothing about timings; it exits 1 only when the
//! daemon does not answer as expected, since the numbers would then mean nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use test_support::daemon::{Daemon, DaemonOptions};
use test_support::https::{HttpResponse, HttpsConnection};

/// The tool whose jobs are measured.
const TOOL: &str = "benchtool";
/// Jobs defined while `GET jobs` is measured.
const N_DEFINED: usize = 50;
/// `GET jobs` requests measured (after [`N_WARM_UP`] unmeasured ones).
const N_LISTS: usize = 200;
/// Requests sent before measuring, to warm caches and the connection.
const N_WARM_UP: usize = 20;
/// One-off jobs run.
const N_RUNS: usize = 200;
/// Pause between two polls of a job's status.
const POLL_PAUSE: Duration = Duration::from_millis(5);
/// Longest wait for one job to complete.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// A schedule that does not fire while the benchmark runs (except at New Year).
const YEARLY: &str = "0 0 1 1 *";

fn main() {
    if !test_support::skip::is_root() {
        println!(
            "jobs bench: not run: jobs run isolated as their tool's uid only when toolforged runs as root; run `cargo bench -p toolforged --bench jobs` as root"
        );
        return;
    }
    if let Err(message) = run() {
        eprintln!("jobs bench: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let bin = Path::new(env!("CARGO_BIN_EXE_toolforged"));
    let started = Instant::now();
    // The daemon's info lines (one per job start) would drown the table.
    let daemon = DaemonOptions::default()
        .env("TOOLFORGE_LOG", "warn")
        .start(bin);
    daemon.create_user("alice", "alice@example.org");
    daemon.create_tool(TOOL, "alice");
    daemon.admin_ok(&[
        "quota",
        "set",
        TOOL,
        "pods=1000",
        "jobs=1000",
        "cronjobs=1000",
        "cpu=1000",
        "memory=1000Gi",
    ]);
    let mut conn = connect_as(&daemon, TOOL)?;
    let jobs_path = format!("/jobs/v1/tool/{TOOL}/jobs/");

    for idx in 0..N_DEFINED {
        let body = serde_json::json!({
            "name": format!("scheduled-{idx:02}"),
            "cmd": "echo hi",
            "imagename": "bookworm",
            "schedule": YEARLY,
            "filelog": false,
        });
        expect(
            post(&mut conn, &jobs_path, &body)?,
            201,
            "defining a scheduled job",
        )?;
    }

    let mut lists = Vec::with_capacity(N_LISTS);
    for idx in 0..N_WARM_UP + N_LISTS {
        let sent = Instant::now();
        let res = get(&mut conn, &jobs_path)?;
        let took = sent.elapsed();
        let res = expect(res, 200, "listing jobs")?;
        if idx == 0 {
            let n_listed = res.json()["jobs"].as_array().map_or(0, Vec::len);
            if n_listed != N_DEFINED {
                return Err(format!("GET jobs listed {n_listed} jobs, not {N_DEFINED}"));
            }
        }
        if idx >= N_WARM_UP {
            lists.push(took);
        }
    }
    let lists_window: Duration = lists.iter().sum();

    let mut answered = Vec::with_capacity(N_RUNS);
    let mut completed = Vec::with_capacity(N_RUNS);
    let mut n_polls = 0;
    let runs_started = Instant::now();
    for idx in 0..N_RUNS {
        let name = format!("once-{idx:03}");
        let body = serde_json::json!({
            "name": name,
            "cmd": "echo hi",
            "imagename": "bookworm",
            "filelog": false,
        });
        let sent = Instant::now();
        expect(
            post(&mut conn, &jobs_path, &body)?,
            201,
            "running a one-off job",
        )?;
        answered.push(sent.elapsed());
        let job_path = format!("{jobs_path}{name}");
        loop {
            let res = expect(get(&mut conn, &job_path)?, 200, "showing a job")?;
            n_polls += 1;
            let job = res.json();
            let status = job["job"]["status_short"].as_str().unwrap_or_default();
            if status == "Completed" {
                completed.push(sent.elapsed());
                break;
            }
            if status.starts_with("Failed") || sent.elapsed() > RUN_TIMEOUT {
                return Err(format!(
                    "job {name} did not complete: {status}: {}",
                    job["job"]["status_long"]
                ));
            }
            std::thread::sleep(POLL_PAUSE);
        }
    }
    let runs_window = runs_started.elapsed();

    let n_cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "jobs bench (issue 5): {} on {n_cores} cores, as root; one keep-alive mTLS connection through the gateway",
        bin.display()
    );
    println!(
        "tool {TOOL}: quota raised to pods=1000 jobs=1000 cronjobs=1000 cpu=1000 memory=1000Gi; {N_DEFINED} scheduled jobs defined ({YEARLY})"
    );
    println!();
    println!(
        "{:<44} | {:>5} | {:>8} | {:>8} | {:>8} | {:>8}",
        "measurement", "n", "per s", "p50 ms", "p99 ms", "max ms"
    );
    println!("{}", "-".repeat(44 + 5 + 8 * 4 + 5 * 3));
    row(
        &format!("GET jobs ({N_DEFINED} defined)"),
        &mut lists,
        lists_window,
    );
    row("POST jobs: answered (201)", &mut answered, runs_window);
    row(
        "POST jobs until status_short is Completed",
        &mut completed,
        runs_window,
    );
    println!();
    println!(
        "per s: requests per second of the GETs measured (back to back); jobs per second for the POST rows (one at a time, polls included)"
    );
    println!(
        "completion polled every {POLL_PAUSE:?} with GET jobs/{{name}} ({:.1} polls per job); whole run {:.1} s",
        n_polls as f64 / N_RUNS as f64,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn row(label: &str, latencies: &mut [Duration], window: Duration) {
    latencies.sort();
    println!(
        "{label:<44} | {:>5} | {:>8.1} | {:>8} | {:>8} | {:>8}",
        latencies.len(),
        latencies.len() as f64 / window.as_secs_f64(),
        percentile_ms(latencies, 50.0),
        percentile_ms(latencies, 99.0),
        percentile_ms(latencies, 100.0),
    );
}

/// The nearest-rank percentile of sorted latencies, in milliseconds.
fn percentile_ms(sorted: &[Duration], percent: f64) -> String {
    if sorted.is_empty() {
        return "-".to_owned();
    }
    let rank = (percent / 100.0 * sorted.len() as f64).ceil() as usize;
    let latency = sorted[rank.clamp(1, sorted.len()) - 1];
    format!("{:.2}", latency.as_secs_f64() * 1000.0)
}

/// A connection presenting `tool`'s certificate, from its home as the clients read it.
fn connect_as(daemon: &Daemon, tool: &str) -> Result<HttpsConnection, String> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|err| format!("reading {}: {err}", path.display()))
    };
    let home = daemon.tool_home(tool);
    let cert = read(&home.join(".toolskube/client.crt"))?;
    let key = read(&home.join(".toolskube/client.key"))?;
    let ca = read(&daemon.ca_cert_path())?;
    HttpsConnection::connect(
        daemon.addresses().api,
        "localhost",
        &ca,
        Some((&cert, &key)),
    )
    .map_err(|err| format!("connecting to the gateway: {err}"))
}

fn get(conn: &mut HttpsConnection, path: &str) -> Result<HttpResponse, String> {
    conn.get(path).map_err(|err| format!("GET {path}: {err}"))
}

fn post(
    conn: &mut HttpsConnection,
    path: &str,
    body: &serde_json::Value,
) -> Result<HttpResponse, String> {
    let body = serde_json::to_vec(body).map_err(|err| err.to_string())?;
    conn.request(
        "POST",
        path,
        &[("Content-Type", "application/json")],
        Some(&body),
    )
    .map_err(|err| format!("POST {path}: {err}"))
}

fn expect(res: HttpResponse, status: u16, doing: &str) -> Result<HttpResponse, String> {
    if res.status == status {
        Ok(res)
    } else {
        Err(format!(
            "while {doing}: expected {status}, got {}: {}",
            res.status,
            res.text()
        ))
    }
}
