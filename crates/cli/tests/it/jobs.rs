//! Issue 5 with our CLI: `toolforge jobs …` against a real daemon whose jobs really run,
//! the same scenarios as the official client's (`crates/toolforged/tests/it/jobs.rs`).
//!
//! Where the official client can run the same command on the same daemon, our standard
//! output, standard error and exit status must equal its own ([`same`]).

use std::path::Path;
use std::time::Duration;

use test_support::daemon::Daemon;
use test_support::poll::eventually;
use test_support::skip::{is_root, prerequisite_missing};

use crate::{Ran, as_mytool, daemon_with_tool, run};

/// The coloured level names the official jobs client prints.
const ERROR: &str = "\x1b[1;31mERROR\x1b[1;0m";
const WARNING: &str = "\x1b[1;33mWARNING\x1b[1;0m";

/// A daemon with `mytool`, or `None` (after reporting the skip) when not root or when the
/// official clients are missing.
fn daemon_for(test: &str) -> Option<Daemon> {
    if !is_root() {
        prerequisite_missing(test, "jobs run isolated as their tool's uid only as root");
        return None;
    }
    if let Err(reason) = test_support::clients::clients_venv() {
        prerequisite_missing(test, &reason);
        return None;
    }
    Some(daemon_with_tool())
}

/// `toolforge jobs <args>` with our binary.
fn ours(daemon: &Daemon, args: &[&str]) -> Ran {
    let mut full = vec!["jobs"];
    full.extend_from_slice(args);
    run(&mut as_mytool(daemon, &full))
}

/// `toolforge jobs <args>` with the official client.
fn official(daemon: &Daemon, args: &[&str]) -> Ran {
    let mut cmd = daemon
        .official_client("mytool", "toolforge")
        .expect("the official clients are installed");
    cmd.arg("jobs").args(args);
    run(&mut cmd)
}

/// Runs `args` with ours then with the official client, asserts that both printed the same
/// and exited alike, and returns what ours did.
#[track_caller]
fn same(daemon: &Daemon, args: &[&str]) -> Ran {
    let mine = ours(daemon, args);
    let theirs = official(daemon, args);
    assert_eq!(
        mine.code, theirs.code,
        "exit status of {args:?}: {mine:?} vs {theirs:?}"
    );
    assert_eq!(mine.stdout, theirs.stdout, "standard output of {args:?}");
    assert_eq!(mine.stderr, theirs.stderr, "standard error of {args:?}");
    mine
}

#[track_caller]
fn ok(ran: Ran) -> String {
    assert_eq!(ran.code, Some(0), "{ran:?}");
    ran.stdout
}

/// The text of the `Hints:` row of a `show` table, its lines joined with spaces.
fn hints(table: &str) -> String {
    let mut lines = Vec::new();
    let mut in_hints = false;
    for line in table.lines() {
        in_hints = line.starts_with("| Hints:") || (in_hints && line.starts_with("|     "));
        if in_hints {
            let cell = line.split('|').nth(2).unwrap_or_default().trim();
            lines.push(cell.to_owned());
        }
    }
    lines.join(" ")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[test]
fn run_with_wait_sees_a_one_off_job_complete_with_its_file_log_and_lists_it_as_the_official_client()
{
    const TEST: &str = "run_with_wait_sees_a_one_off_job_complete_with_its_file_log_and_lists_it_as_the_official_client";
    let Some(daemon) = daemon_for(TEST) else {
        return;
    };
    let ran = ours(
        &daemon,
        &[
            "run",
            "hello",
            "--command",
            "echo hello from $TOOL_DATA_DIR; id -u",
            "--image",
            "bookworm",
            "--wait",
            "60",
        ],
    );
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(ran.stderr, "INFO: job 'hello' completed\n");
    assert_eq!(ran.stdout, "");
    let uid = daemon.admin_json(&["tool", "show", "mytool"])["uid"]
        .as_u64()
        .unwrap();
    let log = read(&daemon.tool_home("mytool").join("hello.out"));
    assert_eq!(log, format!("hello from /data/project/mytool\n{uid}\n"));

    let list = ok(same(&daemon, &["list"]));
    assert!(
        list.lines()
            .any(|line| line.contains(" hello ") && line.contains("Completed")),
        "{list}"
    );
    ok(same(&daemon, &["list", "-o", "long"]));
    assert_eq!(ok(same(&daemon, &["list", "-o", "name"])), "hello\n");
    let deprecated = same(&daemon, &["list", "-l"]);
    assert_eq!(
        deprecated.stderr,
        format!("{WARNING}: the `--long` flag is deprecated, use `--output long` instead\n")
    );
    let show = ok(same(&daemon, &["show", "hello"]));
    for expected in [
        "| Job type:     | one-off",
        "| Output log:   | /data/project/mytool/hello.out",
        "| Resources:    | mem: 512Mi, cpu: 500m",
        "| Status:       | Completed",
    ] {
        assert!(show.contains(expected), "{expected} in\n{show}");
    }
    let missing = same(&daemon, &["show", "nope"]);
    assert_eq!(missing.code, Some(1));
    assert_eq!(
        missing.stderr,
        format!("{ERROR}: Job 'nope' does not exist\n")
    );
}

#[test]
fn wait_exits_1_with_the_table_when_the_job_fails_and_2_when_it_times_out() {
    const TEST: &str = "wait_exits_1_with_the_table_when_the_job_fails_and_2_when_it_times_out";
    let Some(daemon) = daemon_for(TEST) else {
        return;
    };
    let ran = ours(
        &daemon,
        &[
            "run",
            "failer",
            "--command",
            "false",
            "--image",
            "bookworm",
            "--wait",
            "30",
        ],
    );
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert_eq!(ran.stderr, format!("{ERROR}: job 'failer' failed:\n"));
    assert!(
        ran.stdout.starts_with("+---------------+"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("| Status:       | Failed "),
        "{}",
        ran.stdout
    );
    // Our server's status notes the exit code in the hints.
    assert!(
        hints(&ran.stdout).ends_with(" Notes: exitcode 1."),
        "{}",
        ran.stdout
    );

    let ran = ours(
        &daemon,
        &[
            "run",
            "sleeper",
            "--command",
            "sleep 120",
            "--image",
            "bookworm",
            "--wait",
            "6",
        ],
    );
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert_eq!(
        ran.stderr,
        format!("{ERROR}: timed out 6 seconds waiting for job 'sleeper' to complete:\n")
    );
    assert!(
        ran.stdout.contains("| Job name:     | sleeper "),
        "{}",
        ran.stdout
    );
}

#[test]
fn logs_of_a_job_without_file_logs_are_printed_as_the_official_client_prints_them() {
    const TEST: &str =
        "logs_of_a_job_without_file_logs_are_printed_as_the_official_client_prints_them";
    let Some(daemon) = daemon_for(TEST) else {
        return;
    };
    ok(ours(
        &daemon,
        &[
            "run",
            "talk",
            "--command",
            "echo one; echo two >&2; echo three",
            "--image",
            "bookworm",
            "--no-filelog",
            "--wait",
            "60",
        ],
    ));
    let logs = eventually(Duration::from_secs(10), || {
        let text = ok(ours(&daemon, &["logs", "talk"]));
        (text.lines().count() == 3).then_some(text)
    })
    .expect("three lines of output");
    assert!(
        logs.lines().all(|line| line.contains(" [talk-0] [talk] ")),
        "{logs}"
    );
    let mut messages: Vec<&str> = logs
        .lines()
        .map(|line| line.rsplit("] ").next().unwrap())
        .collect();
    messages.sort_unstable();
    assert_eq!(messages, ["one", "three", "two"]);
    assert_eq!(ok(same(&daemon, &["logs", "talk"])), logs);
    assert_eq!(
        ok(same(&daemon, &["logs", "talk", "-l", "1"]))
            .lines()
            .count(),
        1
    );
    // (`--follow` is left out: the server keeps a followed stream open after the job ends.)

    ok(ours(
        &daemon,
        &["run", "filed", "--command", "true", "--image", "bookworm"],
    ));
    let ran = same(&daemon, &["logs", "filed"]);
    assert_eq!(ran.code, Some(1));
    assert!(
        ran.stderr
            .contains("has file logging enabled, which is incompatible with the logs command"),
        "{}",
        ran.stderr
    );
}

#[test]
fn load_creates_then_is_up_to_date_dump_then_load_is_a_no_op_and_restart_delete_flush_work() {
    const TEST: &str =
        "load_creates_then_is_up_to_date_dump_then_load_is_a_no_op_and_restart_delete_flush_work";
    let Some(daemon) = daemon_for(TEST) else {
        return;
    };
    let home = daemon.tool_home("mytool");
    let file = home.join("jobs.yaml");
    std::fs::write(
        &file,
        "- name: web\n  command: python3 -m http.server 8000\n  image: python3.11\n  continuous: true\n  port: 8000\n  replicas: 2\n  emails: onfailure\n\
         - name: cron1\n  command: ./nightly.sh\n  image: bookworm\n  schedule: '@daily'\n  timeout: 300\n  retry: 2\n  filelog-stdout: logs/cron1.out\n\
         - name: once\n  command: echo once\n  image: bookworm\n  mem: 256Mi\n  cpu: '0.25'\n",
    )
    .unwrap();
    let ran = ours(&daemon, &["load", "jobs.yaml"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(
        ran.stdout,
        "Job web created\nJob cron1 created\nJob once created\n"
    );
    assert_eq!(
        ran.stderr,
        "INFO: loading job 'web'...\nINFO: loading job 'cron1'...\nINFO: loading job 'once'...\n\
         INFO: 3 job(s) loaded successfully\n"
    );
    // Again, with ours then with the official client: nothing changes.
    let ran = same(&daemon, &["load", "jobs.yaml"]);
    assert_eq!(
        ran.stdout,
        "Job web is already up to date\nJob cron1 is already up to date\nJob once is already up to date\n"
    );
    let single = same(&daemon, &["load", "jobs.yaml", "--job", "cron1"]);
    assert_eq!(single.stdout, "Job cron1 is already up to date\n");
    assert_eq!(
        single.stderr,
        "INFO: loading job 'cron1'...\nINFO: 3 job(s) loaded successfully\n"
    );

    let dumped = ok(same(&daemon, &["dump"]));
    for expected in [
        "schedule: '@daily'",
        "filelog-stdout: logs/cron1.out",
        "replicas: 2",
        "mem: 256Mi",
        "cpu: '0.25'",
    ] {
        assert!(dumped.contains(expected), "{expected} in\n{dumped}");
    }
    assert_eq!(ok(ours(&daemon, &["dump", "-f", "ours.yaml"])), "");
    let theirs = official(&daemon, &["dump", "-f", "theirs.yaml"]);
    assert_eq!(theirs.code, Some(0), "{theirs:?}");
    let dump = read(&home.join("ours.yaml"));
    assert_eq!(dump, read(&home.join("theirs.yaml")));
    assert_eq!(format!("{dump}\n"), dumped);
    let ran = same(&daemon, &["load", "ours.yaml"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(!ran.stderr.contains("unexpected key"), "{}", ran.stderr);
    assert_eq!(
        ran.stdout.matches("is already up to date").count(),
        3,
        "{ran:?}"
    );

    let running = eventually(Duration::from_secs(20), || {
        let list = ok(ours(&daemon, &["list"]));
        list.lines()
            .any(|line| line.contains("web") && line.contains("Running"))
            .then_some(list)
    });
    assert!(running.is_some(), "the web job runs");
    let list = ok(same(&daemon, &["list"]));
    assert!(list.contains("schedule: @daily"), "{list}");
    ok(same(&daemon, &["show", "web"]));
    ok(same(&daemon, &["show", "cron1"]));

    // A changed definition is updated.
    std::fs::write(
        &file,
        "- name: once\n  command: echo twice\n  image: bookworm\n",
    )
    .unwrap();
    assert_eq!(
        ok(ours(&daemon, &["load", "jobs.yaml"])),
        "Job once updated\n"
    );

    assert_eq!(ok(ours(&daemon, &["restart", "web"])), "");
    assert_eq!(ok(ours(&daemon, &["delete", "cron1"])), "");
    let gone = same(&daemon, &["delete", "cron1"]);
    assert_eq!(gone.code, Some(1));
    assert_eq!(
        gone.stderr,
        format!("{ERROR}: Job 'cron1' does not exist\n")
    );
    assert_eq!(ok(ours(&daemon, &["list", "-o", "name"])), "once\nweb\n");
    assert_eq!(ok(ours(&daemon, &["flush"])), "");
    assert_eq!(ok(ours(&daemon, &["list"])), "");
    let empty = same(&daemon, &["dump", "-f", "never.yaml"]);
    assert_eq!(
        empty.stderr,
        format!("{WARNING}: no jobs defined, file never.yaml will not be created\n")
    );
    assert!(!home.join("never.yaml").exists());
}

#[test]
fn images_and_quota_print_the_official_clients_tables() {
    const TEST: &str = "images_and_quota_print_the_official_clients_tables";
    let Some(daemon) = daemon_for(TEST) else {
        return;
    };
    let images = ok(same(&daemon, &["images"]));
    assert!(images.contains("Short name"), "{images}");
    assert!(
        images.contains("docker-registry.tools.wmflabs.org/toolforge-bookworm-sssd:latest"),
        "{images}"
    );
    let quota = ok(same(&daemon, &["quota"]));
    for expected in [
        "Running jobs",
        "Total running jobs at once (Kubernetes pods)",
        "Per-job limits",
        "Continuous jobs (including web services)",
    ] {
        assert!(quota.contains(expected), "{expected} in\n{quota}");
    }
}

#[test]
fn bad_input_gets_the_official_clients_messages_and_exit_statuses_and_changes_nothing() {
    const TEST: &str =
        "bad_input_gets_the_official_clients_messages_and_exit_statuses_and_changes_nothing";
    let Some(daemon) = daemon_for(TEST) else {
        return;
    };
    let run = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["run", "x", "--command", "c", "--image", "bookworm"];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect()
    };
    // Client-side checks (no request) and the server's refusals: same text, exit 1.
    for (args, message) in [
        (
            run(&["--health-check-script", "true"]),
            "Health checks are only supported for continuous jobs.",
        ),
        (
            run(&["--port", "80"]),
            "--port is only valid for continuous jobs",
        ),
        (
            run(&["--replicas", "2"]),
            "--replicas is only valid for continuous jobs",
        ),
        (
            run(&["--timeout", "10"]),
            "--timeout is only valid for scheduled jobs",
        ),
        (
            run(&["--mount", "none"]),
            "Specifying --filelog requires --mount=all",
        ),
        (
            run(&["--no-filelog", "-o", "out.log"]),
            "Specifying --filelog-stdout or --filelog-stderr requires --filelog",
        ),
        (
            run(&["--continuous", "--health-check-http", "/h"]),
            "--health-check-http requires --port to be set as well",
        ),
        (
            vec![
                "run".into(),
                "bs2".into(),
                "--command".into(),
                "web".into(),
                "--image".into(),
                "tool-mytool/tool-mytool:latest".into(),
                "--filelog".into(),
            ],
            "Specifying --filelog requires --mount=all",
        ),
        (
            vec![
                "run".into(),
                "Bad_Name".into(),
                "--command".into(),
                "true".into(),
                "--image".into(),
                "bookworm".into(),
            ],
            "Invalid job name. See the documentation for the naming rules: https://w.wiki/6YL8",
        ),
        (
            run(&["--schedule", "61 * * * *"]),
            "Unable to parse cron expression",
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ran = same(&daemon, &args);
        assert_eq!(ran.code, Some(1), "{args:?}: {ran:?}");
        assert!(
            ran.stderr.starts_with(&format!("{ERROR}: {message}")),
            "{args:?}: {}",
            ran.stderr
        );
    }
    let ran = same(
        &daemon,
        &["run", "x", "--command", "true", "--image", "nosuchimage"],
    );
    assert!(
        ran.stderr.contains("No such image 'nosuchimage'"),
        "{ran:?}"
    );

    // Usage errors exit 2 without a request (the text is clap's, not argparse's).
    for args in [
        &run(&["--retry", "7"]),
        &run(&["--continuous", "--schedule", "* * * * *"]),
        &run(&["--mount", "foo"]),
        &run(&["--wait", "--continuous"]),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ran = ours(&daemon, &args);
        assert_eq!(ran.code, Some(2), "{args:?}: {ran:?}");
        assert_eq!(official(&daemon, &args).code, Some(2), "{args:?}");
    }

    std::fs::write(
        daemon.tool_home("mytool").join("bad.yaml"),
        "- name: [unclosed\n",
    )
    .unwrap();
    let ran = same(&daemon, &["load", "bad.yaml"]);
    assert_eq!(ran.code, Some(1));
    assert_eq!(
        ran.stderr,
        format!("{ERROR}: Unable to parse yaml file 'bad.yaml'\n")
    );
    let ran = same(&daemon, &["load", "missing.yaml"]);
    assert_eq!(ran.code, Some(1));
    assert_eq!(ok(same(&daemon, &["list"])), "", "nothing was stored");

    // A running job of the same name is a conflict; the first definition stays.
    ok(ours(
        &daemon,
        &[
            "run",
            "long",
            "--command",
            "sleep 600",
            "--image",
            "bookworm",
        ],
    ));
    let ran = same(
        &daemon,
        &[
            "run",
            "long",
            "--command",
            "echo other",
            "--image",
            "bookworm",
        ],
    );
    assert_eq!(ran.code, Some(1));
    assert_eq!(
        ran.stderr,
        format!("{ERROR}: A job with the name long already exists\n")
    );
    assert!(ok(ours(&daemon, &["show", "long"])).contains("sleep 600"));
}

#[test]
fn load_warns_about_legacy_and_invalid_keys_as_the_official_client() {
    const TEST: &str = "load_warns_about_legacy_and_invalid_keys_as_the_official_client";
    let Some(daemon) = daemon_for(TEST) else {
        return;
    };
    std::fs::write(
        daemon.tool_home("mytool").join("variants.yaml"),
        "- name: a-job\n  command: ./a.sh\n  image: bookworm\n  no-filelog: \"true\"\n  wait: false\n\
         - name: b-job\n  command: ./b.sh\n  image: bookworm\n  filelog: \"yes\"\n  schedule: \"*/5 * * * *\"\n  emails: onfailure\n  continuous: 3\n\
         - name: c-job\n  command: ./c.sh\n  image: bookworm\n  continuous: true\n  replicas: 3\n  health-check-script: /bin/true\n  filelog-stdout: /data/project/mytool/c.log\n  mem: 1Gi\n  cpu: 1\n",
    )
    .unwrap();
    let ran = ours(&daemon, &["load", "variants.yaml"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(
        ran.stdout,
        "Job a-job created\nJob b-job created\nJob c-job created\n"
    );
    assert_eq!(
        ran.stderr,
        format!(
            "{WARNING}: Assigning \"true\" to no-filelog will be deprecated in future releases. Please use True unquoted instead.\n\
             {WARNING}: Invalid key: 'wait' expects True or integer but got \"False\". omitting key...\n\
             INFO: loading job 'a-job'...\n\
             {WARNING}: Assigning \"yes\" to filelog will be deprecated in future releases. Please use True unquoted instead.\n\
             {WARNING}: Invalid key: continuous expects True but got \"3\". omitting key...\n\
             INFO: loading job 'b-job'...\n\
             INFO: loading job 'c-job'...\n\
             INFO: 3 job(s) loaded successfully\n"
        )
    );
    let again = same(&daemon, &["load", "variants.yaml"]);
    assert_eq!(
        again.stdout.matches("is already up to date").count(),
        3,
        "{again:?}"
    );
    ok(same(&daemon, &["list", "-o", "long"]));
    ok(same(&daemon, &["dump"]));
}
