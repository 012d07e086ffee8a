//! A daemon restart: workloads keep running and a new runtime finds them by their cgroups.

use std::time::Duration;

use runtime::{ExitStatus, Runtime, WorkloadState};

use crate::support::{Fixture, eventually, process_alive};

const TOOL_UID: u32 = 52031;

#[tokio::test]
async fn a_workload_started_before_a_daemon_restart_is_found_again() {
    let Some(mut fixture) =
        Fixture::root("a_workload_started_before_a_daemon_restart_is_found_again").await
    else {
        return;
    };
    let mut spec = fixture.spec(
        "mytool",
        TOOL_UID,
        "survivor",
        2,
        "echo up; exec sleep 1000",
    );
    spec.port = Some(8000);
    let handle = fixture
        .runtime()
        .start(spec.clone())
        .await
        .expect("started");
    let address = handle.address;
    assert!(
        eventually(Duration::from_secs(10), || async {
            fixture.stdout_of(&spec) == "up\n"
        })
        .await
    );

    fixture.restart().await;
    let runtime = fixture.runtime();
    assert!(process_alive(handle.pid), "the restart killed the workload");
    let found = runtime.list().await.expect("list");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].id, spec.id);
    assert_eq!(found[0].address, address);
    assert!(!found[0].managed);
    assert!(found[0].pids.contains(&handle.pid));

    let mut state = runtime.adopt(&spec.id).await.expect("adopted");
    assert!(runtime.list().await.expect("list")[0].managed);
    assert!(runtime.usage(&spec.id).expect("usage").pids >= 3);
    let status = runtime
        .stop(&spec.id, Duration::from_secs(5))
        .await
        .expect("stopped");
    // The exit code went to the previous daemon, which is gone.
    assert_eq!(status, ExitStatus::Unknown);
    assert!(
        state
            .wait_for(|s| *s != WorkloadState::Running)
            .await
            .is_ok()
    );
    assert!(!process_alive(handle.pid));
    assert!(runtime.list().await.expect("list").is_empty());
    assert!(fixture.network_namespaces().is_empty());
}

#[tokio::test]
async fn workloads_that_end_while_or_after_the_daemon_restarts_are_reported_and_cleaned_up() {
    let Some(mut fixture) = Fixture::root(
        "workloads_that_end_while_or_after_the_daemon_restarts_are_reported_and_cleaned_up",
    )
    .await
    else {
        return;
    };
    // One ends while no daemon runs; the other waits for a file, then exits on its own.
    let dies = fixture.spec("mytool", TOOL_UID, "dies", 0, "exec sleep 1000");
    let waits = fixture.spec(
        "mytool",
        TOOL_UID,
        "waits",
        0,
        "echo waiting; while [ ! -e go ]; do sleep 0.05; done",
    );
    let dies_handle = fixture
        .runtime()
        .start(dies.clone())
        .await
        .expect("started");
    fixture
        .runtime()
        .start(waits.clone())
        .await
        .expect("started");
    assert!(
        eventually(Duration::from_secs(10), || async {
            fixture.stdout_of(&waits) == "waiting\n"
        })
        .await
    );

    drop(fixture.runtime.take());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(dies_handle.pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the first workload while no daemon runs");
    assert!(
        eventually(Duration::from_secs(10), || async {
            !process_alive(dies_handle.pid)
        })
        .await
    );
    fixture.restart().await;
    let runtime = fixture.runtime();

    let found = runtime.list().await.expect("list");
    let ids: Vec<_> = found.iter().map(|w| w.id.clone()).collect();
    assert_eq!(ids, [dies.id.clone(), waits.id.clone()]);
    assert!(found[0].pids.is_empty(), "{found:?}");
    assert_eq!(fixture.network_namespaces().len(), 2);

    let mut events = runtime.events();
    let mut dead = runtime.adopt(&dies.id).await.expect("adopted");
    let mut waiting = runtime.adopt(&waits.id).await.expect("adopted");
    let ended = tokio::time::timeout(
        Duration::from_secs(10),
        dead.wait_for(|s| *s != WorkloadState::Running),
    )
    .await
    .expect("reported in time")
    .map(|s| *s)
    .unwrap_or(WorkloadState::Exited(ExitStatus::Unknown));
    assert_eq!(ended, WorkloadState::Exited(ExitStatus::Unknown));
    assert_eq!(*waiting.borrow_and_update(), WorkloadState::Running);

    std::fs::write(waits.tool_home.join("go"), "").expect("let it finish");
    let mut ended_ids = Vec::new();
    for _ in 0..2 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("an exit event in time")
            .expect("an event");
        assert_eq!(event.status, ExitStatus::Unknown);
        ended_ids.push(event.id);
    }
    assert_eq!(ended_ids, [dies.id.clone(), waits.id.clone()]);
    assert!(runtime.list().await.expect("list").is_empty());
    assert!(fixture.network_namespaces().is_empty());
    for dir in fixture
        .cgroup_dirs(&dies.id)
        .into_iter()
        .chain(fixture.cgroup_dirs(&waits.id))
    {
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
}
