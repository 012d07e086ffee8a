//! What a job can see and do: its uid, a read-only system, its own home only, a private
//! `/tmp`, no capabilities; and that stopping it leaves nothing behind.

use std::time::Duration;

use runtime::{ExitStatus, Runtime};

use crate::support::{Fixture, SECRET, eventually, exit_of, process_alive};

const TOOL_UID: u32 = 52001;
const OTHER_UID: u32 = 52002;

#[tokio::test]
async fn a_job_runs_as_its_tool_with_a_read_only_system_its_own_home_and_a_private_tmp() {
    let Some(fixture) = Fixture::root(
        "a_job_runs_as_its_tool_with_a_read_only_system_its_own_home_and_a_private_tmp",
    )
    .await
    else {
        return;
    };
    let other_home = fixture.tool_home("othertool", OTHER_UID);
    std::fs::write(other_home.join("notes.txt"), "private").expect("write");
    let host_tmp_marker = tempfile::NamedTempFile::new().expect("host /tmp file");
    let data_dir = fixture.data_dir.path().display().to_string();
    let script = format!(
        r#"echo "uid=$(id -u) gid=$(id -g) user=$(id -un)"
touch /etc/x 2>/dev/null && echo etc=writable || echo etc=read-only
touch /usr/x 2>/dev/null && echo usr=writable || echo usr=read-only
touch {other}/x 2>/dev/null && echo other-home=writable || echo other-home=not-writable
touch /data/project/othertool/x 2>/dev/null && echo other-mount=writable || echo other-mount=not-writable
cat {data}/secret.key 2>/dev/null || echo data=unreadable
ls /data/project
test -e {marker} && echo tmp=host || echo tmp=private
touch /tmp/mine && echo tmp=writable
echo "home=$HOME data=$TOOL_DATA_DIR pwd=$(pwd)"
touch "$HOME/written" && echo home=writable
grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status
echo "pid1=$(cat /proc/1/comm) shell-pid=$$"
echo "group=$(id -gn) hostname=$(cat /proc/sys/kernel/hostname)"
test "$(readlink /proc/self/ns/ipc)" = "{host_ipc}" && echo ipc=host || echo ipc=own
sh -c 'sleep 0.1 & exit 0'
i=0
while [ $i -lt 100 ]; do
  zombies=$(grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l)
  orphans=$(grep -l '^Name:.*sleep' /proc/[0-9]*/status 2>/dev/null | wc -l)
  [ "$zombies$orphans" = 00 ] && break
  sleep 0.05; i=$((i+1))
done
echo "zombies=$zombies"
"#,
        other = other_home.display(),
        data = data_dir,
        marker = host_tmp_marker.path().display(),
        host_ipc = std::fs::read_link("/proc/self/ns/ipc")
            .expect("host ipc namespace")
            .display(),
    );
    let spec = fixture.spec("mytool", TOOL_UID, "checks", 0, &script);
    let mut handle = fixture
        .runtime()
        .start(spec.clone())
        .await
        .expect("started");
    let status = exit_of(&mut handle, Duration::from_secs(30)).await;
    let stdout = fixture.stdout_of(&spec);
    assert_eq!(
        status,
        ExitStatus::Code(0),
        "stderr: {}",
        fixture.stderr_of(&spec)
    );
    assert!(
        !stdout.contains(SECRET),
        "the data directory leaked: {stdout}"
    );
    assert_eq!(
        stdout,
        "uid=52001 gid=52001 user=tools.mytool\n\
         etc=read-only\n\
         usr=read-only\n\
         other-home=not-writable\n\
         other-mount=not-writable\n\
         data=unreadable\n\
         mytool\n\
         tmp=private\n\
         tmp=writable\n\
         home=/data/project/mytool data=/data/project/mytool pwd=/data/project/mytool\n\
         home=writable\n\
         CapPrm:\t0000000000000000\n\
         CapEff:\t0000000000000000\n\
         NoNewPrivs:\t1\n\
         pid1=init shell-pid=2\n\
         group=tools.mytool hostname=mytool-checks-0\n\
         ipc=own\n\
         zombies=0\n",
        "stderr: {}",
        fixture.stderr_of(&spec)
    );
    let written =
        std::fs::metadata(spec.tool_home.join("written")).expect("file written in the home");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&written), TOOL_UID);
    assert!(!other_home.join("x").exists());
}

#[tokio::test]
async fn stopping_a_workload_leaves_no_process_cgroup_or_network_namespace_behind() {
    let Some(fixture) =
        Fixture::root("stopping_a_workload_leaves_no_process_cgroup_or_network_namespace_behind")
            .await
    else {
        return;
    };
    let runtime = fixture.runtime();
    let spec = fixture.spec(
        "mytool",
        TOOL_UID,
        "sleepers",
        0,
        "sleep 1000 & sleep 1000 & sh -c 'sleep 1000' & wait",
    );
    let mut handle = runtime.start(spec.clone()).await.expect("started");
    let id = spec.id.clone();
    // bwrap, tini, sh, two sleeps, the inner sh and its sleep.
    assert!(
        eventually(Duration::from_secs(10), || async {
            runtime.usage(&id).is_ok_and(|u| u.pids >= 7)
        })
        .await,
        "the processes did not all start: {:?}",
        runtime.usage(&id)
    );
    let pids = runtime
        .list()
        .await
        .expect("list")
        .into_iter()
        .find(|w| w.id == id)
        .expect("listed")
        .pids;
    assert_eq!(fixture.network_namespaces().len(), 1);

    let status = runtime
        .stop(&id, Duration::from_secs(5))
        .await
        .expect("stopped");
    assert_eq!(status, ExitStatus::Signal(15));
    assert_eq!(
        exit_of(&mut handle, Duration::from_secs(1)).await,
        ExitStatus::Signal(15)
    );
    for pid in pids {
        assert!(!process_alive(pid), "process {pid} survived the stop");
    }
    for dir in fixture.cgroup_dirs(&id) {
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
    assert_eq!(fixture.network_namespaces(), Vec::<String>::new());
    assert!(runtime.list().await.expect("list").is_empty());
}

#[tokio::test]
async fn a_workload_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let Some(fixture) =
        Fixture::root("a_workload_that_ignores_sigterm_is_killed_after_the_grace_period").await
    else {
        return;
    };
    let runtime = fixture.runtime();
    let spec = fixture.spec(
        "mytool",
        TOOL_UID,
        "stubborn",
        0,
        "trap '' TERM; echo ready; sleep 1000",
    );
    let handle = runtime.start(spec.clone()).await.expect("started");
    assert!(
        eventually(Duration::from_secs(10), || async {
            fixture.stdout_of(&spec) == "ready\n"
        })
        .await
    );
    let status = runtime
        .stop(&spec.id, Duration::from_millis(300))
        .await
        .expect("stopped");
    assert_eq!(status, ExitStatus::Signal(9));
    assert!(!process_alive(handle.pid));
    assert!(runtime.list().await.expect("list").is_empty());
}

#[tokio::test]
async fn exit_codes_and_environment_reach_the_caller_and_standard_output_can_be_a_pipe() {
    let Some(fixture) = Fixture::root(
        "exit_codes_and_environment_reach_the_caller_and_standard_output_can_be_a_pipe",
    )
    .await
    else {
        return;
    };
    let mut spec = fixture.spec(
        "mytool",
        TOOL_UID,
        "env",
        0,
        "echo \"$GREETING from $USER\"; exit 3",
    );
    spec.env.insert("GREETING".to_owned(), "hello".to_owned());
    spec.stdout_file = None;
    let mut handle = fixture.runtime().start(spec).await.expect("started");
    let mut stdout = handle.stdout.take().expect("stdout is a pipe");
    let mut text = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text)
        .await
        .expect("read");
    assert_eq!(text, "hello from tools.mytool\n");
    assert_eq!(
        exit_of(&mut handle, Duration::from_secs(30)).await,
        ExitStatus::Code(3)
    );
}

#[tokio::test]
async fn an_image_this_host_cannot_provide_is_refused_with_a_way_to_add_it() {
    let Some(fixture) =
        Fixture::root("an_image_this_host_cannot_provide_is_refused_with_a_way_to_add_it").await
    else {
        return;
    };
    let mut spec = fixture.spec("mytool", TOOL_UID, "old", 0, "true");
    spec.image = "tf-php73".to_owned();
    let err = fixture.runtime().start(spec).await.expect_err("refused");
    let message = err.to_string();
    assert!(
        message.starts_with(
            "image 'php7.3' is not available on this machine: /usr/bin/php7.3 is not installed"
        ),
        "{message}"
    );
    assert!(message.contains("debootstrap"), "{message}");
    assert!(fixture.runtime().list().await.expect("list").is_empty());
}

#[tokio::test]
async fn without_isolation_workloads_are_refused_unless_explicitly_allowed() {
    let test = "without_isolation_workloads_are_refused_unless_explicitly_allowed";
    if !test_support::skip::is_root() {
        test_support::skip::prerequisite_missing(test, "needs root (uids, cgroups)");
        return;
    }
    // A machine without bubblewrap.
    let without_bwrap = |config: &mut runtime::local::LocalRuntimeConfig| {
        config.bwrap_path = "/nonexistent/bwrap".into();
    };
    let refusing = Fixture::with_config(without_bwrap).await;
    assert_eq!(refusing.runtime().isolation(), runtime::Isolation::None);
    let note = refusing
        .runtime()
        .isolation_note()
        .expect("a reason")
        .to_owned();
    assert!(note.contains("bubblewrap"), "{note}");
    let err = refusing
        .runtime()
        .start(refusing.spec("mytool", TOOL_UID, "plain", 0, "true"))
        .await
        .expect_err("refused");
    assert!(
        matches!(err, runtime::Error::IsolationUnavailable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--allow-unisolated-jobs"), "{err}");

    let allowing = Fixture::with_config(|config| {
        without_bwrap(config);
        config.allow_unisolated = true;
    })
    .await;
    let runtime = allowing.runtime();
    assert!(runtime.limits_enforced());
    let mut events = runtime.events();
    let mut spec = allowing.spec(
        "mytool",
        TOOL_UID,
        "plain",
        0,
        "echo \"uid=$(id -u) home=$HOME\"; exit 4",
    );
    // As the jobs service writes it: the path inside a job, mapped to the home here.
    spec.stdout_file = Some("/data/project/mytool/plain-0.out".to_owned());
    spec.stderr_file = None;
    let mut handle = runtime
        .start(spec.clone())
        .await
        .expect("started unisolated");
    assert_eq!(
        exit_of(&mut handle, Duration::from_secs(30)).await,
        ExitStatus::Code(4)
    );
    assert_eq!(
        allowing.stdout_of(&spec),
        format!("uid={TOOL_UID} home={}\n", spec.tool_home.display())
    );
    let event = events.recv().await.expect("an exit event");
    assert_eq!(
        (event.id, event.status),
        (spec.id.clone(), ExitStatus::Code(4))
    );
    for dir in allowing.cgroup_dirs(&spec.id) {
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
}
