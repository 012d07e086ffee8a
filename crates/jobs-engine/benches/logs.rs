//! Throughput and follow latency of the job log store: lines/s and MB/s ingested by one
//! writer and by 100 concurrent writers (10 tools, 10 jobs each), and the delay from a
//! line being written into a job's pipe to a follower receiving it (p50/p99).
//! Prints a table, asserts nothing; the rate limit is lifted so the store itself is
//! measured. Run with `cargo bench -p jobs-engine --bench logs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_engine::logs::{Logs, LogsConfig, capture};
use tokio::io::AsyncWriteExt;

const LINE: &str =
    "2026-01-01 12:00:00 INFO a typical line of a bot's output, about one hundred bytes long...";

fn store(dir: &std::path::Path) -> Arc<Logs> {
    let logs = Arc::new(Logs::new(dir.to_path_buf()));
    logs.configure(LogsConfig {
        lines_per_second: u32::MAX,
        burst: u32::MAX,
        ..LogsConfig::default()
    });
    logs
}

async fn ingest(n_writers: usize, lines_each: usize) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let logs = store(dir.path());
    let input: Arc<Vec<u8>> = Arc::new(format!("{LINE}\n").repeat(lines_each).into_bytes());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for writer_idx in 0..n_writers {
        let (logs, input) = (logs.clone(), input.clone());
        tasks.spawn(async move {
            let tool = format!("tool{}", writer_idx / 10);
            let job = format!("job{writer_idx}");
            capture(logs, tool, job, 0, "stdout", &input[..]).await;
        });
    }
    while tasks.join_next().await.is_some() {}
    let secs = started.elapsed().as_secs_f64();
    let n_lines = (n_writers * lines_each) as f64;
    let bytes = n_lines * (LINE.len() + 1) as f64;
    (n_lines / secs, bytes / secs / 1e6)
}

async fn follow_latency(n_lines: usize) -> (Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let logs = store(dir.path());
    let mut follower = logs.follow("tool", "job");
    let (mut pipe, job_end) = tokio::io::duplex(64 * 1024);
    let reader = tokio::spawn(capture(
        logs.clone(),
        "tool".into(),
        "job".into(),
        0,
        "stdout",
        job_end,
    ));
    let base = Instant::now();
    let writer = tokio::spawn(async move {
        for _ in 0..n_lines {
            let sent = base.elapsed().as_nanos();
            pipe.write_all(format!("{sent}\n").as_bytes())
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    });
    let mut delays = Vec::with_capacity(n_lines);
    while delays.len() < n_lines {
        let Ok(line) = follower.recv().await else {
            break;
        };
        let received = base.elapsed().as_nanos();
        if let Ok(sent) = line.message.parse::<u128>() {
            delays.push(Duration::from_nanos((received - sent) as u64));
        }
    }
    writer.await.unwrap();
    reader.await.unwrap();
    delays.sort();
    let at = |q: f64| delays[((delays.len() as f64 * q) as usize).min(delays.len() - 1)];
    (at(0.50), at(0.99))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime for the benchmark");
    runtime.block_on(async {
        println!("{:<32} {:>14} {:>10}", "ingest", "lines/s", "MB/s");
        for (label, n_writers, lines_each) in [
            ("1 writer", 1, 200_000),
            ("100 concurrent writers", 100, 5_000),
        ] {
            let (lines_per_sec, mb_per_sec) = ingest(n_writers, lines_each).await;
            println!("{label:<32} {lines_per_sec:>14.0} {mb_per_sec:>10.1}");
        }
        let (p50, p99) = follow_latency(5_000).await;
        println!();
        println!("{:<32} {:>14} {:>10}", "pipe to follower", "p50", "p99");
        println!(
            "{:<32} {:>14?} {:>10?}",
            "5000 lines, 200 µs apart", p50, p99
        );
    });
}
