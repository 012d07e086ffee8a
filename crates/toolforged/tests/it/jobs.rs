//! Issue 5: the jobs API driven by the official `toolforge jobs` client against a real
//! daemon whose jobs really run.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use test_support::daemon::Daemon;
use test_support::poll::eventually;
use test_support::skip::prerequisite_missing;

use crate::daemon_with_tool;

/// Runs `toolforge jobs <args>` as `tool`; `None` (after reporting the skip) when the
/// official clients or root are missing.
pub(crate) fn jobs(daemon: &Daemon, tool: &str, test: &str, args: &[&str]) -> Option<Output> {
    if !test_support::skip::is_root() {
        prerequisite_missing(test, "jobs run isolated as their tool's uid only as root");
        return None;
    }
    match daemon.official_client(tool, "toolforge") {
        Ok(mut cmd) => Some(cmd.arg("jobs").args(args).output().unwrap()),
        Err(reason) => {
            prerequisite_missing(test, &reason);
            None
        }
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[test]
fn a_one_off_job_runs_as_its_tool_and_wait_sees_it_complete_with_its_file_log() {
    const TEST: &str = "a_one_off_job_runs_as_its_tool_and_wait_sees_it_complete_with_its_file_log";
    let daemon = daemon_with_tool();
    let Some(out) = jobs(
        &daemon,
        "mytool",
        TEST,
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
    ) else {
        return;
    };
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("INFO: job 'hello' completed"), "{err}");
    let uid = daemon.admin_json(&["tool", "show", "mytool"])["uid"]
        .as_u64()
        .unwrap();
    let log = read(&daemon.tool_home("mytool").join("hello.out"));
    assert_eq!(log, format!("hello from /data/project/mytool\n{uid}\n"));

    let list = ok(jobs(&daemon, "mytool", TEST, &["list"]).unwrap());
    assert!(
        list.lines()
            .any(|line| line.contains(" hello ") && line.contains("Completed")),
        "{list}"
    );
    let show = ok(jobs(&daemon, "mytool", TEST, &["show", "hello"]).unwrap());
    for expected in [
        "| Job type:     | one-off",
        "| Output log:   | /data/project/mytool/hello.out",
        "| Resources:    | mem: 512Mi, cpu: 500m",
        "| Status:       | Completed",
    ] {
        assert!(show.contains(expected), "{expected} in\n{show}");
    }
}

#[test]
fn output_of_a_job_without_file_logs_is_read_back_with_logs() {
    const TEST: &str = "output_of_a_job_without_file_logs_is_read_back_with_logs";
    let daemon = daemon_with_tool();
    let Some(out) = jobs(
        &daemon,
        "mytool",
        TEST,
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
    ) else {
        return;
    };
    ok(out);
    let logs = eventually(Duration::from_secs(10), || {
        let text = ok(jobs(&daemon, "mytool", TEST, &["logs", "talk"]).unwrap());
        (text.lines().count() == 3).then_some(text)
    })
    .expect("three lines of output");
    let messages: Vec<&str> = logs
        .lines()
        .map(|line| line.rsplit("] ").next().unwrap())
        .collect();
    assert_eq!(messages.len(), 3);
    assert!(
        messages.contains(&"one") && messages.contains(&"two") && messages.contains(&"three"),
        "{logs}"
    );
    assert!(
        logs.lines().all(|line| line.contains(" [talk-0] [talk] ")),
        "{logs}"
    );
    let last = ok(jobs(&daemon, "mytool", TEST, &["logs", "talk", "-l", "1"]).unwrap());
    assert_eq!(last.lines().count(), 1, "{last}");

    let out = jobs(
        &daemon,
        "mytool",
        TEST,
        &["run", "filed", "--command", "true", "--image", "bookworm"],
    )
    .unwrap();
    ok(out);
    let out = jobs(&daemon, "mytool", TEST, &["logs", "filed"]).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("has file logging enabled, which is incompatible with the logs command"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn load_creates_then_is_up_to_date_and_dump_then_load_is_a_no_op() {
    const TEST: &str = "load_creates_then_is_up_to_date_and_dump_then_load_is_a_no_op";
    let daemon = daemon_with_tool();
    let file = daemon.tool_home("mytool").join("jobs.yaml");
    std::fs::write(
        &file,
        "- name: web\n  command: python3 -m http.server 8000\n  image: python3.11\n  continuous: true\n  port: 8000\n  replicas: 2\n  emails: onfailure\n\
         - name: cron1\n  command: ./nightly.sh\n  image: bookworm\n  schedule: '@daily'\n  timeout: 300\n  retry: 2\n  filelog-stdout: logs/cron1.out\n\
         - name: once\n  command: echo once\n  image: bookworm\n  mem: 256Mi\n  cpu: '0.25'\n",
    )
    .unwrap();
    let Some(out) = jobs(&daemon, "mytool", TEST, &["load", "jobs.yaml"]) else {
        return;
    };
    let text = ok(out);
    assert_eq!(
        text,
        "Job web created\nJob cron1 created\nJob once created\n"
    );
    let text = ok(jobs(&daemon, "mytool", TEST, &["load", "jobs.yaml"]).unwrap());
    assert_eq!(
        text,
        "Job web is already up to date\nJob cron1 is already up to date\nJob once is already up to date\n"
    );

    let dumped = ok(jobs(&daemon, "mytool", TEST, &["dump", "-f", "dump.yaml"]).unwrap());
    assert_eq!(dumped, "");
    let dump = read(&daemon.tool_home("mytool").join("dump.yaml"));
    for expected in [
        "schedule: '@daily'",
        "filelog-stdout: logs/cron1.out",
        "replicas: 2",
        "mem: 256Mi",
    ] {
        assert!(dump.contains(expected), "{expected} in\n{dump}");
    }
    let out = jobs(&daemon, "mytool", TEST, &["load", "dump.yaml"]).unwrap();
    assert!(!stderr(&out).contains("unexpected key"), "{}", stderr(&out));
    let text = ok(out);
    assert_eq!(text.matches("is already up to date").count(), 3, "{text}");

    let list = ok(jobs(&daemon, "mytool", TEST, &["list"]).unwrap());
    assert!(list.contains("schedule: @daily"), "{list}");
    assert!(list.contains("Waiting for scheduled time"), "{list}");
    let running = eventually(Duration::from_secs(20), || {
        let list = ok(jobs(&daemon, "mytool", TEST, &["list"]).unwrap());
        list.lines()
            .any(|line| line.contains("web") && line.contains("Running"))
            .then_some(list)
    });
    assert!(running.is_some(), "the web job runs");

    // A changed definition is updated.
    std::fs::write(
        &file,
        "- name: once\n  command: echo twice\n  image: bookworm\n",
    )
    .unwrap();
    assert_eq!(
        ok(jobs(&daemon, "mytool", TEST, &["load", "jobs.yaml"]).unwrap()),
        "Job once updated\n"
    );

    ok(jobs(&daemon, "mytool", TEST, &["restart", "web"]).unwrap());
    ok(jobs(&daemon, "mytool", TEST, &["delete", "cron1"]).unwrap());
    let names = ok(jobs(&daemon, "mytool", TEST, &["list", "-o", "name"]).unwrap());
    assert_eq!(names, "once\nweb\n");
    ok(jobs(&daemon, "mytool", TEST, &["flush"]).unwrap());
    assert_eq!(ok(jobs(&daemon, "mytool", TEST, &["list"]).unwrap()), "");
}

#[test]
fn images_and_quota_print_the_originals_tables() {
    const TEST: &str = "images_and_quota_print_the_originals_tables";
    let daemon = daemon_with_tool();
    let Some(out) = jobs(&daemon, "mytool", TEST, &["images"]) else {
        return;
    };
    let images = ok(out);
    assert!(images.contains("| Short name |"), "{images}");
    assert!(
        images.contains("bookworm")
            && images.contains("docker-registry.tools.wmflabs.org/toolforge-bookworm-sssd:latest"),
        "{images}"
    );
    let quota = ok(jobs(&daemon, "mytool", TEST, &["quota"]).unwrap());
    for expected in [
        "Running jobs",
        "Total running jobs at once (Kubernetes pods)",
        "Per-job limits",
        "Continuous jobs (including web services)",
        "8.0Gi",
    ] {
        assert!(quota.contains(expected), "{expected} in\n{quota}");
    }
}

#[test]
fn bad_input_gets_the_contracts_status_and_text_and_changes_nothing() {
    const TEST: &str = "bad_input_gets_the_contracts_status_and_text_and_changes_nothing";
    let daemon = daemon_with_tool();
    let Some(out) = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "Bad_Name",
            "--command",
            "true",
            "--image",
            "bookworm",
        ],
    ) else {
        return;
    };
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "Invalid job name. See the documentation for the naming rules: https://w.wiki/6YL8"
        ),
        "{}",
        stderr(&out)
    );
    let out = jobs(
        &daemon,
        "mytool",
        TEST,
        &["run", "x", "--command", "true", "--image", "nosuchimage"],
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("No such image 'nosuchimage'") && stderr(&out).contains("bookworm"),
        "{}",
        stderr(&out)
    );
    let out = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "x",
            "--command",
            "true",
            "--image",
            "bookworm",
            "--schedule",
            "61 * * * *",
        ],
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Unable to parse cron expression"),
        "{}",
        stderr(&out)
    );
    let out = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "x",
            "--command",
            "true",
            "--image",
            "bookworm",
            "--mem",
            "9Gi",
        ],
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("over the per-job limit"),
        "{}",
        stderr(&out)
    );
    std::fs::write(
        daemon.tool_home("mytool").join("bad.yaml"),
        "- name: [unclosed\n",
    )
    .unwrap();
    let out = jobs(&daemon, "mytool", TEST, &["load", "bad.yaml"]).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Unable to parse yaml file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        ok(jobs(&daemon, "mytool", TEST, &["list"]).unwrap()),
        "",
        "nothing was stored"
    );

    // A running job of the same name is a conflict; the first definition stays.
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
    let out = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "long",
            "--command",
            "echo other",
            "--image",
            "bookworm",
        ],
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("A job with the name long already exists"),
        "{}",
        stderr(&out)
    );
    let show = ok(jobs(&daemon, "mytool", TEST, &["show", "long"]).unwrap());
    assert!(show.contains("sleep 600"), "{show}");

    // The API refuses what the client would let through, with 400 and the rule.
    let mut conn = daemon.tool_connection("mytool");
    for (body, expected) in [
        (
            r#"{"name": "a", "imagename": "bookworm", "cmd": "x", "retry": 9}"#,
            "retry must be between 0 and 5",
        ),
        (
            r#"{"name": "a", "imagename": "bookworm", "cmd": "x", "port": 80}"#,
            "--port is only valid for continuous jobs",
        ),
        (
            r#"{"name": "a", "imagename": "bookworm", "cmd": "x", "continuous": true, "health_check": {"type": "http", "path": "/h"}}"#,
            "Port must be set for HTTP health checks",
        ),
        (
            r#"{"name": "a", "imagename": "bookworm""#,
            "Invalid job definition in the request body",
        ),
    ] {
        let res = conn
            .request(
                "POST",
                "/jobs/v1/tool/mytool/jobs/",
                &[("Content-Type", "application/json")],
                Some(body.as_bytes()),
            )
            .unwrap();
        assert_eq!(res.status, 400, "{body}: {}", res.text());
        assert!(
            res.json()["error"][0].as_str().unwrap().contains(expected),
            "{body}: {}",
            res.text()
        );
    }
    let res = conn.get("/jobs/v1/tool/mytool/jobs/nope").unwrap();
    assert_eq!(res.status, 404);
    assert_eq!(res.json()["error"][0], "Job 'nope' does not exist");
}

#[test]
fn a_tool_cannot_list_show_change_restart_or_delete_another_tools_jobs() {
    const TEST: &str = "a_tool_cannot_list_show_change_restart_or_delete_another_tools_jobs";
    let daemon = daemon_with_tool();
    daemon.create_tool("other", "alice");
    let Some(out) = jobs(
        &daemon,
        "other",
        TEST,
        &[
            "run",
            "secret",
            "--command",
            "sleep 600",
            "--image",
            "bookworm",
        ],
    ) else {
        return;
    };
    ok(out);
    let mut conn = daemon.tool_connection("mytool");
    for (method, path) in [
        ("GET", "/jobs/v1/tool/other/jobs/"),
        ("GET", "/jobs/v1/tool/other/jobs/secret"),
        ("PATCH", "/jobs/v1/tool/other/jobs/"),
        ("POST", "/jobs/v1/tool/other/jobs/secret/restart"),
        ("DELETE", "/jobs/v1/tool/other/jobs/secret"),
        ("DELETE", "/jobs/v1/tool/other/jobs/"),
        ("GET", "/jobs/v1/tool/other/jobs/secret/logs?follow=false"),
    ] {
        let res = conn.request(method, path, &[], None).unwrap();
        assert_eq!(res.status, 403, "{method} {path}: {}", res.text());
        assert!(!res.text().contains("sleep"), "{}", res.text());
    }
    let list = ok(jobs(&daemon, "other", TEST, &["list"]).unwrap());
    assert!(list.contains("secret"), "{list}");
    let mine = ok(jobs(&daemon, "mytool", TEST, &["list"]).unwrap());
    assert_eq!(mine, "");
}

#[test]
fn a_job_reaches_the_api_at_tool_toolforge_api_url_with_its_tools_credentials() {
    const TEST: &str = "a_job_reaches_the_api_at_tool_toolforge_api_url_with_its_tools_credentials";
    let daemon = daemon_with_tool();
    // Inside the job, with the certificate in the tool's home, as a bot would (and as the
    // official clients do, without verifying the server unless REQUESTS_CA_BUNDLE is set).
    let script = r#"
import json, os, ssl, urllib.request
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
home = os.environ["HOME"]
ctx.load_cert_chain(home + "/.toolskube/client.crt", home + "/.toolskube/client.key")
url = os.environ["TOOL_TOOLFORGE_API_URL"] + "/jobs/v1/tool/mytool/jobs/"
with urllib.request.urlopen(url, context=ctx, timeout=10) as answer:
    print(" ".join(job["name"] for job in json.load(answer)["jobs"]))
"#;
    std::fs::write(daemon.tool_home("mytool").join("call.py"), script).unwrap();
    let Some(out) = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "caller",
            "--command",
            "/usr/bin/python3 call.py",
            "--image",
            "bookworm",
            "--wait",
            "60",
        ],
    ) else {
        return;
    };
    let home = daemon.tool_home("mytool");
    assert!(
        out.status.success(),
        "{}",
        std::fs::read_to_string(home.join("caller.err")).unwrap_or_default()
    );
    assert_eq!(read(&home.join("caller.out")), "caller\n");
}

#[test]
fn deleting_a_tool_stops_its_jobs_and_a_new_tool_of_the_same_name_inherits_nothing() {
    const TEST: &str =
        "deleting_a_tool_stops_its_jobs_and_a_new_tool_of_the_same_name_inherits_nothing";
    let daemon = daemon_with_tool();
    // A sleep no other test runs, to find this job's process among everyone's.
    let marker = format!("{}", 200_000 + std::process::id());
    let command = format!("exec sleep {marker}");
    let Some(out) = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "forever",
            "--command",
            &command,
            "--image",
            "bookworm",
            "--continuous",
        ],
    ) else {
        return;
    };
    ok(out);
    let running = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .any(|entry| {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                cmdline
                    .split(|b| *b == 0)
                    .any(|arg| arg == marker.as_bytes())
            })
    };
    eventually(Duration::from_secs(20), || running().then_some(())).expect("the job runs");
    daemon.admin_ok(&["tool", "delete", "mytool"]);
    assert!(
        eventually(Duration::from_secs(20), || (!running()).then_some(())).is_some(),
        "no process of the deleted tool is left"
    );
    daemon.create_tool("mytool", "alice");
    assert_eq!(ok(jobs(&daemon, "mytool", TEST, &["list"]).unwrap()), "");
}
