//! Issue 6: scheduled runs, the supervisor of continuous jobs, and recovery after the
//! daemon is killed.

use std::path::Path;
use std::time::Duration;

use test_support::daemon::{Daemon, DaemonOptions};
use test_support::poll::eventually;

use crate::bin;
use crate::jobs::{jobs, ok, read};

/// A daemon with fast restart back-off and a short stop grace, so supervision is
/// observable in seconds; with user alice and tool mytool.
fn fast_daemon(config_dir: &Path) -> Daemon {
    let config = config_dir.join("toolforged.toml");
    std::fs::write(
        &config,
        "job-restart-delay = \"1s\"\njob-restart-delay-max = \"4s\"\njob-stop-grace = \"2s\"\njob-startup-probe-failures = 3\njob-liveness-probe-period = \"1s\"\n",
    )
    .unwrap();
    let daemon = DaemonOptions::default()
        .arg("--config")
        .arg(&config)
        .start(bin());
    daemon.create_user("alice", "alice@example.org");
    daemon.create_tool("mytool", "alice");
    daemon
}

fn runs(daemon: &Daemon, job: &str) -> Vec<store::RunRecord> {
    let db = daemon.data_dir().join("toolforge.sqlite");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = store::Store::open(&db).await.unwrap();
        let mut runs = store.recent_runs("mytool", job, 100).await.unwrap();
        store.close().await;
        runs.reverse();
        runs
    })
}

#[test]
fn restarting_a_scheduled_job_runs_it_now() {
    const TEST: &str = "restarting_a_scheduled_job_runs_it_now";
    let daemon = crate::daemon_with_tool();
    let Some(out) = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "tick",
            "--command",
            "date >> ticks",
            "--image",
            "bookworm",
            "--schedule",
            "0 0 1 1 *",
        ],
    ) else {
        return;
    };
    ok(out);
    let list = ok(jobs(&daemon, "mytool", TEST, &["list"]).unwrap());
    assert!(list.contains("Waiting for scheduled time"), "{list}");
    ok(jobs(&daemon, "mytool", TEST, &["restart", "tick"]).unwrap());
    let ticks = daemon.tool_home("mytool").join("ticks");
    eventually(Duration::from_secs(20), || ticks.exists().then_some(()))
        .expect("the run wrote its file");
    let list = eventually(Duration::from_secs(20), || {
        let list = ok(jobs(&daemon, "mytool", TEST, &["list"]).unwrap());
        list.contains("Last schedule time").then_some(list)
    });
    assert!(list.is_some(), "the status names the last run");
    assert_eq!(read(&ticks).lines().count(), 1);
}

#[test]
fn a_crash_looping_job_is_restarted_with_doubling_delays() {
    const TEST: &str = "a_crash_looping_job_is_restarted_with_doubling_delays";
    let scratch = tempfile::tempdir().unwrap();
    let daemon = fast_daemon(scratch.path());
    let Some(out) = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "crash",
            "--command",
            "exit 3",
            "--image",
            "bookworm",
            "--continuous",
        ],
    ) else {
        return;
    };
    ok(out);
    let history = eventually(Duration::from_secs(40), || {
        let runs = runs(&daemon, "crash");
        (runs.len() >= 5 && runs[4].ended_at.is_some()).then_some(runs)
    })
    .expect("five runs of the crashing job");
    // Each restart waits at least the back-off after the previous end: 1, 2, 4, 4 s
    // (times in the store have one-second resolution).
    let gaps: Vec<i64> = history
        .windows(2)
        .take(4)
        .map(|pair| (pair[1].started_at - pair[0].ended_at.unwrap()).whole_seconds())
        .collect();
    for (gap, min) in gaps.iter().zip([0, 1, 3, 3]) {
        assert!(*gap >= min, "gaps {gaps:?}");
    }
    assert!(gaps[2] >= gaps[0] + 2, "the delay grows: {gaps:?}");
    assert!(
        history
            .iter()
            .all(|run| run.exit_code == Some(3) || run.ended_at.is_none()),
        "{history:?}"
    );
    let show = ok(jobs(&daemon, "mytool", TEST, &["show", "crash"]).unwrap());
    assert!(
        show.contains("Specified command fails to run") || show.contains("Not running"),
        "{show}"
    );
}

#[test]
fn after_a_sigkill_continuous_jobs_are_adopted_and_runs_in_flight_are_recorded_as_interrupted() {
    const TEST: &str = "after_a_sigkill_continuous_jobs_are_adopted_and_runs_in_flight_are_recorded_as_interrupted";
    let scratch = tempfile::tempdir().unwrap();
    let mut daemon = fast_daemon(scratch.path());
    let Some(out) = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "keeper",
            "--command",
            "echo $$ >> keeper.pids; exec sleep 100000",
            "--image",
            "bookworm",
            "--continuous",
        ],
    ) else {
        return;
    };
    ok(out);
    ok(jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "long",
            "--command",
            "sleep 600",
            "--image",
            "bookworm",
        ],
    )
    .unwrap());
    ok(jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "cron",
            "--command",
            "echo $$ > cron.pid; exec sleep 600",
            "--image",
            "bookworm",
            "--schedule",
            "@daily",
        ],
    )
    .unwrap());
    // A scheduled run in flight when the daemon dies.
    ok(jobs(&daemon, "mytool", TEST, &["restart", "cron"]).unwrap());
    let pids = daemon.tool_home("mytool").join("keeper.pids");
    eventually(Duration::from_secs(20), || pids.exists().then_some(())).expect("keeper started");
    let cron_pid = daemon.tool_home("mytool").join("cron.pid");
    eventually(Duration::from_secs(20), || cron_pid.exists().then_some(()))
        .expect("the scheduled run started");

    daemon.kill9();
    daemon.restart();

    let list = eventually(Duration::from_secs(30), || {
        let list = ok(jobs(&daemon, "mytool", TEST, &["list"]).unwrap());
        let keeper = list
            .lines()
            .any(|line| line.contains(" keeper ") && line.contains("Running"));
        let long = list
            .lines()
            .any(|line| line.contains(" long ") && line.contains("Failed"));
        (keeper && long).then_some(list)
    });
    assert!(list.is_some(), "keeper runs again and long is settled");
    // Adopted, not restarted: the replica the first daemon started is still the one running.
    assert_eq!(read(&pids).lines().count(), 1, "{}", read(&pids));
    let long = runs(&daemon, "long");
    assert_eq!(long.len(), 1);
    assert_eq!(long[0].outcome.as_deref(), Some("interrupted"));
    let cron = runs(&daemon, "cron");
    assert_eq!(cron.len(), 1, "{cron:?}");
    assert_eq!(cron[0].outcome.as_deref(), Some("interrupted"), "{cron:?}");
    let names = ok(jobs(&daemon, "mytool", TEST, &["list", "-o", "name"]).unwrap());
    assert_eq!(
        names, "cron\nkeeper\nlong\n",
        "every acknowledged job is still there"
    );
    let show = ok(jobs(&daemon, "mytool", TEST, &["show", "long"]).unwrap());
    assert!(show.contains("interrupted"), "{show}");
}

#[test]
fn a_failing_http_health_check_restarts_the_replica_and_a_passing_one_does_not() {
    const TEST: &str =
        "a_failing_http_health_check_restarts_the_replica_and_a_passing_one_does_not";
    let scratch = tempfile::tempdir().unwrap();
    let daemon = fast_daemon(scratch.path());
    let Some(out) = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "sick",
            "--command",
            "exec python3 -m http.server 8000",
            "--image",
            "python3.11",
            "--continuous",
            "--port",
            "8000",
            "--health-check-http",
            "/missing",
        ],
    ) else {
        return;
    };
    ok(out);
    ok(jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "well",
            "--command",
            "exec python3 -m http.server 8000",
            "--image",
            "python3.11",
            "--continuous",
            "--port",
            "8000",
            "--health-check-http",
            "/",
        ],
    )
    .unwrap());
    let sick = eventually(Duration::from_secs(40), || {
        let runs = runs(&daemon, "sick");
        (runs.len() >= 2).then_some(runs)
    })
    .expect("the unhealthy replica was restarted");
    assert_eq!(sick[0].outcome.as_deref(), Some("killed"), "{sick:?}");
    let well = runs(&daemon, "well");
    assert_eq!(well.len(), 1, "the healthy replica keeps running: {well:?}");
    assert!(well[0].ended_at.is_none(), "{well:?}");
}

#[test]
fn restarting_two_replicas_replaces_them_one_at_a_time() {
    const TEST: &str = "restarting_two_replicas_replaces_them_one_at_a_time";
    let scratch = tempfile::tempdir().unwrap();
    let daemon = fast_daemon(scratch.path());
    let Some(out) = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "pair",
            "--command",
            "exec sleep 100000",
            "--image",
            "bookworm",
            "--continuous",
            "--replicas",
            "2",
        ],
    ) else {
        return;
    };
    ok(out);
    eventually(Duration::from_secs(20), || {
        (runs(&daemon, "pair").len() == 2).then_some(())
    })
    .expect("two replicas");
    ok(jobs(&daemon, "mytool", TEST, &["restart", "pair"]).unwrap());
    // A rolling restart: each old replica is stopped only after a new one runs (at the
    // lowest free replica index), one replica at a time.
    let history = eventually(Duration::from_secs(60), || {
        let history = runs(&daemon, "pair");
        let ended = history.iter().filter(|run| run.ended_at.is_some()).count();
        (history.len() == 4 && ended == 2).then_some(history)
    })
    .expect("two old replicas ended and two new ones run");
    let (old, new): (Vec<_>, Vec<_>) = history.iter().partition(|run| run.ended_at.is_some());
    assert!(
        new.iter().all(|run| run.trigger == "restart"),
        "{history:?}"
    );
    // Replay starts and ends after the first two replicas ran, ends first when they share a
    // timestamp (the pessimistic order): two replicas always ran, never more than three.
    let mut events: Vec<(time::OffsetDateTime, i32)> = old
        .iter()
        .map(|run| (run.ended_at.unwrap(), -1))
        .chain(new.iter().map(|run| (run.started_at, 1)))
        .collect();
    events.sort();
    let mut running = 2;
    for (at, change) in events {
        running += change;
        assert!(
            (2..=3).contains(&running),
            "{running} replicas at {at}: {history:?}"
        );
    }
    let first_new = new.iter().map(|run| run.started_at).min().unwrap();
    let first_end = old.iter().map(|run| run.ended_at.unwrap()).min().unwrap();
    assert!(first_new <= first_end, "{history:?}");
}

#[test]
fn a_cron_run_due_while_the_daemon_was_down_fires_once_after_the_restart() {
    const TEST: &str = "a_cron_run_due_while_the_daemon_was_down_fires_once_after_the_restart";
    let scratch = tempfile::tempdir().unwrap();
    let mut daemon = fast_daemon(scratch.path());
    let Some(out) = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "minutely",
            "--command",
            "date +%s >> fired",
            "--image",
            "bookworm",
            "--schedule",
            "* * * * *",
        ],
    ) else {
        return;
    };
    ok(out);
    // Go down a few seconds before a minute boundary and come back just after it, within
    // the 30 s a late firing may still start.
    let second = || time::OffsetDateTime::now_utc().second();
    eventually(Duration::from_secs(70), || {
        (50..=54).contains(&second()).then_some(())
    })
    .expect("a minute boundary approaches");
    let before = runs(&daemon, "minutely").len();
    daemon.kill9();
    eventually(Duration::from_secs(20), || {
        (3..=10).contains(&second()).then_some(())
    })
    .expect("the boundary passed");
    daemon.restart();
    let fired = daemon.tool_home("mytool").join("fired");
    eventually(Duration::from_secs(20), || fired.exists().then_some(()))
        .expect("the missed run fired after the restart");
    // At most once: the recovery decides about the missed minute once, so by the time every
    // run it started has ended, a duplicate would be in the records; a second run only comes
    // with the next minute, which is at least 50 s away.
    let after = eventually(Duration::from_secs(20), || {
        let after = runs(&daemon, "minutely");
        let all_ended = after[before..].iter().all(|run| run.ended_at.is_some());
        (all_ended && after.len() > before).then_some(after)
    })
    .expect("the run that fired after the restart ended");
    let new_runs: Vec<_> = after[before..]
        .iter()
        .filter(|run| run.outcome.as_deref() != Some("skipped"))
        .collect();
    assert_eq!(new_runs.len(), 1, "{after:?}");
    assert_eq!(read(&fired).lines().count(), 1);
}

#[test]
fn r6_a_cron_job_fires_at_every_minute_not_only_the_first() {
    const TEST: &str = "r6_a_cron_job_fires_at_every_minute_not_only_the_first";
    let daemon = crate::daemon_with_tool();
    let Some(out) = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "minutely",
            "--command",
            "date +%s >> fired",
            "--image",
            "bookworm",
            "--schedule",
            "* * * * *",
        ],
    ) else {
        return;
    };
    ok(out);
    // Each run must be reported to the scheduler when it ends; otherwise every firing
    // after the first is skipped as overlapping a run that is long over.
    let fired = daemon.tool_home("mytool").join("fired");
    let count = || {
        std::fs::read_to_string(&fired)
            .map(|text| text.lines().count())
            .unwrap_or(0)
    };
    let twice = eventually(Duration::from_secs(150), || (count() >= 2).then_some(()));
    assert!(twice.is_some(), "fired {} time(s) in 150 s", count());
}
