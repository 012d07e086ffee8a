//! Limits from cgroups and rlimits, and the accounting read back from the cgroup.

use std::time::{Duration, Instant};

use runtime::{ExitStatus, Limits, Runtime};

use crate::support::{Fixture, eventually, exit_of};

const TOOL_UID: u32 = 52011;

#[tokio::test]
async fn a_600mb_allocation_under_128mib_ends_as_out_of_memory() {
    let Some(fixture) =
        Fixture::root_with_python("a_600mb_allocation_under_128mib_ends_as_out_of_memory").await
    else {
        return;
    };
    // Multiplying bytes writes every page, unlike bytearray(n), whose pages stay untouched.
    let mut spec = fixture.spec(
        "mytool",
        TOOL_UID,
        "hungry",
        0,
        "/usr/bin/python3 -c 'x = b\"a\" * (600 << 20)'",
    );
    spec.limits = Limits {
        memory_bytes: Some(128 << 20),
        ..Limits::default()
    };
    let mut handle = fixture.runtime().start(spec).await.expect("started");
    assert_eq!(
        exit_of(&mut handle, Duration::from_secs(60)).await,
        ExitStatus::OutOfMemory
    );
}

#[tokio::test]
async fn a_small_allocation_under_the_same_limit_succeeds() {
    let Some(fixture) =
        Fixture::root_with_python("a_small_allocation_under_the_same_limit_succeeds").await
    else {
        return;
    };
    let mut spec = fixture.spec(
        "mytool",
        TOOL_UID,
        "modest",
        0,
        "/usr/bin/python3 -c 'x = b\"a\" * (32 << 20)'",
    );
    spec.limits = Limits {
        memory_bytes: Some(128 << 20),
        ..Limits::default()
    };
    let mut handle = fixture.runtime().start(spec).await.expect("started");
    assert_eq!(
        exit_of(&mut handle, Duration::from_secs(60)).await,
        ExitStatus::Code(0)
    );
}

#[tokio::test]
async fn a_fork_bomb_is_stopped_by_the_pids_limit_and_the_machine_stays_responsive() {
    let Some(fixture) =
        Fixture::root("a_fork_bomb_is_stopped_by_the_pids_limit_and_the_machine_stays_responsive")
            .await
    else {
        return;
    };
    let runtime = fixture.runtime();
    let mut spec = fixture.spec(
        "mytool",
        TOOL_UID,
        "bomb",
        0,
        // Every process keeps forking, so the bomb stays at the limit instead of dying out;
        // bash, unlike dash, survives a failed fork.
        "exec bash -c 'bomb() { while :; do bomb & done; }; bomb'",
    );
    spec.stderr_file = Some("/dev/null".to_owned());
    spec.limits = Limits {
        pids: Some(64),
        ..Limits::default()
    };
    let id = spec.id.clone();
    let mut handle = runtime.start(spec).await.expect("started");
    assert!(
        eventually(Duration::from_secs(20), || async {
            runtime.usage(&id).is_ok_and(|u| u.pids >= 60)
        })
        .await,
        "the bomb never reached the limit: {:?}",
        runtime.usage(&id)
    );
    // The host still starts processes quickly while the bomb is at its limit.
    let started = Instant::now();
    let status = tokio::process::Command::new("/bin/true")
        .status()
        .await
        .expect("spawn on the host");
    assert!(status.success());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the host took {:?} to run true",
        started.elapsed()
    );
    assert!(runtime.usage(&id).expect("usage").pids <= 64);

    runtime
        .stop(&id, Duration::from_millis(200))
        .await
        .expect("stopped");
    exit_of(&mut handle, Duration::from_secs(5)).await;
    for dir in fixture.cgroup_dirs(&id) {
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
}

#[tokio::test]
async fn a_cpu_bound_loop_under_a_fifth_of_a_cpu_uses_about_twenty_percent_of_a_core() {
    let Some(fixture) = Fixture::root(
        "a_cpu_bound_loop_under_a_fifth_of_a_cpu_uses_about_twenty_percent_of_a_core",
    )
    .await
    else {
        return;
    };
    let runtime = fixture.runtime();
    let mut spec = fixture.spec("mytool", TOOL_UID, "spin", 0, "while :; do :; done");
    spec.limits = Limits {
        cpu_millis: Some(200),
        ..Limits::default()
    };
    let id = spec.id.clone();
    runtime.start(spec).await.expect("started");
    assert!(
        eventually(Duration::from_secs(10), || async {
            runtime
                .usage(&id)
                .is_ok_and(|u| u.cpu_time > Duration::from_millis(50))
        })
        .await
    );
    let before = runtime.usage(&id).expect("usage");
    let window_start = Instant::now();
    // A measurement window, not synchronisation: cpu use is a rate.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = runtime.usage(&id).expect("usage");
    // Wide bounds: the quota caps it at 20 %, and a busy machine (the whole suite runs in
    // parallel on two cores) may give it less.
    let share =
        (after.cpu_time - before.cpu_time).as_secs_f64() / window_start.elapsed().as_secs_f64();
    assert!(
        (0.08..=0.35).contains(&share),
        "the loop used {:.0}% of a core",
        share * 100.0
    );
    assert!(after.memory_bytes > 0);
    runtime
        .stop(&id, Duration::from_secs(2))
        .await
        .expect("stopped");
}

#[tokio::test]
async fn open_files_and_core_size_are_limited_inside_the_job() {
    let Some(fixture) = Fixture::root("open_files_and_core_size_are_limited_inside_the_job").await
    else {
        return;
    };
    let mut spec = fixture.spec(
        "mytool",
        TOOL_UID,
        "rlimits",
        0,
        "echo nofile=$(ulimit -n) core=$(ulimit -c)",
    );
    spec.limits = Limits {
        nofile: Some(256),
        ..Limits::default()
    };
    let mut handle = fixture
        .runtime()
        .start(spec.clone())
        .await
        .expect("started");
    assert_eq!(
        exit_of(&mut handle, Duration::from_secs(30)).await,
        ExitStatus::Code(0)
    );
    assert_eq!(fixture.stdout_of(&spec), "nofile=256 core=0\n");
}
