//! A daemon restart: workloads keep running and a new runtime finds them by their cgroups.

use std::time::Duration;

use runtime::{ExitStatus, Runtime};

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
            .wait_for(|s| *s != runtime::WorkloadState::Running)
            .await
            .is_ok()
    );
    assert!(!process_alive(handle.pid));
    assert!(runtime.list().await.expect("list").is_empty());
    assert!(fixture.network_namespaces().is_empty());
}
