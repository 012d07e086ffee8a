//! Start latency: the time from a start request until the command runs (its first byte of
//! output arrives), through the local runtime and as a bare `fork`+`exec` of the same command,
//! measured in the same run and interleaved so both see the same machine.
//!
//! Run with `cargo bench -p runtime`. It prints a table and asserts nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use runtime::images::ImageCatalog;
use runtime::local::{LocalRuntime, LocalRuntimeConfig};
use runtime::{Limits, Runtime, WorkloadId, WorkloadSpec, WorkloadState};
use tokio::io::AsyncReadExt;

const STARTS: usize = 200;
const COMMAND: &str = "echo ready";
const TOOL_UID: u32 = 53001;

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    tokio.block_on(bench());
}

async fn bench() {
    let data_dir = tempfile::Builder::new()
        .prefix("runtime-bench-")
        .tempdir_in("/var/tmp")
        .expect("data dir");
    let homes_dir = data_dir.path().join("project");
    let home = homes_dir.join("benchtool");
    std::fs::create_dir_all(&home).expect("tool home");
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&home, Some(TOOL_UID), Some(TOOL_UID)).expect("chown home");
    }
    let config = LocalRuntimeConfig {
        hidden_paths: vec![data_dir.path().to_path_buf()],
        homes_dir,
        cgroup_parent: format!("toolforge-bench-{}", std::process::id()),
        // The host's own system, whatever Debian release it runs.
        images: ImageCatalog::parse(
            "images:\n  bookworm:\n    image: toolforge-bookworm-sssd\n    root: host\n",
            Path::new("bench-images.yaml"),
        )
        .expect("bench catalog parses"),
        // Measure whatever this machine allows rather than nothing.
        allow_unisolated: true,
        ..LocalRuntimeConfig::default()
    };
    let runtime = LocalRuntime::new(config.clone())
        .await
        .expect("runtime starts");

    let mut through_runtime = Vec::with_capacity(STARTS);
    let mut bare = Vec::with_capacity(STARTS);
    for replica in 0..STARTS as u32 {
        bare.push(bare_start().await);
        let spec = WorkloadSpec {
            id: WorkloadId::new("benchtool", "echo", replica).expect("valid id"),
            tool_uid: TOOL_UID,
            tool_gid: TOOL_UID,
            tool_home: home.clone(),
            image: "bookworm".to_owned(),
            command: COMMAND.to_owned(),
            env: BTreeMap::new(),
            port: None,
            limits: Limits {
                memory_bytes: Some(256 << 20),
                cpu_millis: Some(1000),
                pids: Some(64),
                nofile: Some(1024),
            },
            stdout_file: None,
            stderr_file: None,
        };
        through_runtime.push(runtime_start(&runtime, spec).await);
    }

    println!();
    println!(
        "start latency over {STARTS} starts of `{COMMAND}` (isolation: {}, limits: {})",
        runtime.isolation().as_str(),
        runtime.cgroup_version().unwrap_or("none")
    );
    println!("{:<28} {:>10} {:>10} {:>10}", "", "p50", "p99", "max");
    for (name, samples) in [
        ("local runtime start", &mut through_runtime),
        ("bare fork+exec", &mut bare),
    ] {
        samples.sort();
        println!(
            "{:<28} {:>10} {:>10} {:>10}",
            name,
            millis(percentile(samples, 50)),
            millis(percentile(samples, 99)),
            millis(samples.last().copied().unwrap_or_default())
        );
    }
    runtime.shutdown().await;
    for controller in ["memory", "cpu", "cpuacct", "pids"] {
        let _ = std::fs::remove_dir(
            Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(&config.cgroup_parent),
        );
    }
}

async fn runtime_start(runtime: &LocalRuntime, spec: WorkloadSpec) -> Duration {
    let started = Instant::now();
    let mut handle = runtime.start(spec).await.expect("workload starts");
    let mut stdout = handle.stdout.take().expect("stdout pipe");
    let mut byte = [0u8; 1];
    stdout.read_exact(&mut byte).await.expect("first byte");
    let elapsed = started.elapsed();
    let mut rest = Vec::new();
    let _ = stdout.read_to_end(&mut rest).await;
    handle
        .state
        .wait_for(|s| matches!(s, WorkloadState::Exited(_)))
        .await
        .expect("workload ends");
    elapsed
}

async fn bare_start() -> Duration {
    let started = Instant::now();
    let mut child = tokio::process::Command::new("/bin/sh")
        .args(["-c", COMMAND])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout pipe");
    let mut byte = [0u8; 1];
    stdout.read_exact(&mut byte).await.expect("first byte");
    let elapsed = started.elapsed();
    child.wait().await.expect("wait");
    elapsed
}

fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) * percent).div_ceil(100)]
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}
