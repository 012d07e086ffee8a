//! Per-tool quota overrides (design.md: `toolforged admin quota set|show|reset`) against
//! the real daemon: the admin command's rules, and the jobs and envvars services
//! enforcing (and `toolforge jobs quota` showing) the effective quota.

use std::path::Path;

use serde_json::json;
use test_support::daemon::Daemon;
use test_support::https::{HttpResponse, HttpsConnection};
use test_support::skip::{is_root, prerequisite_missing};

use crate::daemon_with_tool;
use crate::jobs::{jobs, ok};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// A connection presenting `tool`'s certificate.
fn connect_as(daemon: &Daemon, tool: &str) -> HttpsConnection {
    let home = daemon.tool_home(tool);
    let cert = read(&home.join(".toolskube/client.crt"));
    let key = read(&home.join(".toolskube/client.key"));
    let ca = read(&daemon.ca_cert_path());
    HttpsConnection::connect(
        daemon.addresses().api,
        "localhost",
        &ca,
        Some((&cert, &key)),
    )
    .unwrap()
}

fn post(conn: &mut HttpsConnection, path: &str, body: &serde_json::Value) -> HttpResponse {
    let body = serde_json::to_vec(body).unwrap();
    conn.request(
        "POST",
        path,
        &[("Content-Type", "application/json")],
        Some(&body),
    )
    .unwrap()
}

/// `key → (override, effective)` of `quota show TOOL --json`.
fn overrides(daemon: &Daemon, tool: &str) -> Vec<(String, serde_json::Value, String)> {
    let view = daemon.admin_json(&["quota", "show", tool]);
    assert_eq!(view["tool"], tool);
    view["quota"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["key"].as_str().unwrap().to_owned(),
                entry["override"].clone(),
                entry["effective"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Runs `toolforged admin <args>`, asserting it is refused with exit 1 and `message`.
#[track_caller]
fn assert_refused(daemon: &Daemon, args: &[&str], message: &str) {
    let out = daemon.admin(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(stderr.contains(message), "{args:?}: {stderr}");
}

#[test]
fn quota_set_show_and_reset_change_only_the_named_keys() {
    let daemon = daemon_with_tool();
    let table = daemon.admin_ok(&["quota", "show", "mytool"]);
    assert_eq!(
        table,
        "KEY         DEFAULT  OVERRIDE  EFFECTIVE
pods        10       -         10
jobs        15       -         15
cronjobs    50       -         50
continuous  3        -         3
cpu         4        -         4
memory      8Gi      -         8Gi
job-cpu     1        -         1
job-memory  4Gi      -         4Gi
envvars     100      -         100
"
    );

    let out = daemon.admin_ok(&[
        "quota",
        "set",
        "mytool",
        "pods=20",
        "cpu=0.5",
        "memory=16384Mi",
    ]);
    assert!(
        out.starts_with("Set pods, cpu, memory of mytool.\n"),
        "{out}"
    );
    assert!(
        out.contains("\ncpu         4        500m      500m\n"),
        "{out}"
    );
    let view = daemon.admin_json(&["quota", "set", "mytool", "job-cpu=250m"]);
    assert_eq!(view["changed"], json!(["job-cpu"]));
    assert_eq!(
        view["quota"][0],
        json!({"key": "pods", "default": "10", "override": "20", "effective": "20"})
    );
    assert_eq!(
        view["quota"][5],
        json!({"key": "memory", "default": "8Gi", "override": "16Gi", "effective": "16Gi"})
    );

    let out = daemon.admin_ok(&["quota", "reset", "mytool", "pods", "jobs"]);
    assert!(
        out.starts_with("Reset pods of mytool to the default.\n"),
        "{out}"
    );
    let out = daemon.admin_ok(&["quota", "reset", "mytool", "pods"]);
    assert!(
        out.starts_with("mytool had no override of these keys: nothing was changed.\n"),
        "{out}"
    );
    let set: Vec<(String, serde_json::Value, String)> = overrides(&daemon, "mytool")
        .into_iter()
        .filter(|(_, value, _)| !value.is_null())
        .collect();
    assert_eq!(
        set,
        [
            ("cpu".to_owned(), json!("500m"), "500m".to_owned()),
            ("memory".to_owned(), json!("16Gi"), "16Gi".to_owned()),
            ("job-cpu".to_owned(), json!("250m"), "250m".to_owned()),
        ]
    );

    // A deleted tool takes its overrides with it: a new tool of the name starts afresh.
    daemon.admin_ok(&["tool", "delete", "mytool"]);
    assert_refused(
        &daemon,
        &["quota", "show", "mytool"],
        "no tool named 'mytool'",
    );
    daemon.create_tool("mytool", "alice");
    assert!(
        overrides(&daemon, "mytool")
            .iter()
            .all(|(_, value, _)| value.is_null())
    );
}

#[test]
fn bad_keys_and_values_are_refused_naming_the_rule_and_nothing_is_stored() {
    let daemon = daemon_with_tool();
    for (args, message) in [
        (
            &["quota", "set", "mytool", "pods=20", "bogus=1"][..],
            "nothing was changed: unknown quota key 'bogus' (the keys are pods, jobs, cronjobs, continuous, cpu, memory, job-cpu, job-memory, envvars)",
        ),
        (
            &["quota", "set", "mytool", "pods=20", "cpu=lots"],
            "cpu: invalid cpu quantity 'lots': use a Kubernetes quantity such as 500m, 1 or 0.5",
        ),
        (
            &["quota", "set", "mytool", "memory=4GB", "continuous=5"],
            "memory: invalid memory quantity '4GB': use a Kubernetes quantity such as 512Mi, 1Gi or 1G",
        ),
        (
            &["quota", "set", "mytool", "jobs=2.5"],
            "jobs: invalid count '2.5': use a whole number from 0 to 4294967295",
        ),
        (
            &["quota", "set", "mytool", "pods=1", "pods=2"],
            "pods is given more than once",
        ),
        (
            &["quota", "set", "mytool", "pods=20", "continuous"],
            "'continuous' is not KEY=VALUE (for example pods=20, cpu=500m or memory=4Gi); nothing was changed",
        ),
        (
            &["quota", "set", "nosuchtool", "pods=20"],
            "no tool named 'nosuchtool'",
        ),
        (
            &["quota", "reset", "mytool", "pods", "bogus"],
            "unknown quota key 'bogus'",
        ),
        (
            &["quota", "show", "nosuchtool"],
            "no tool named 'nosuchtool'",
        ),
    ] {
        assert_refused(&daemon, args, message);
    }
    assert!(
        overrides(&daemon, "mytool")
            .iter()
            .all(|(_, value, _)| value.is_null())
    );
    let out = daemon.admin(&["quota", "set", "mytool", "bogus=1", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["refused"], true);
}

#[test]
fn a_raised_envvars_quota_admits_more_envvars_and_a_lowered_one_refuses_them() {
    let daemon = daemon_with_tool();
    daemon.admin_ok(&["quota", "set", "mytool", "envvars=2"]);
    let mut conn = connect_as(&daemon, "mytool");
    for name in ["VAR_A", "VAR_B"] {
        let res = post(
            &mut conn,
            "/envvars/v1/tool/mytool/envvars",
            &json!({"name": name, "value": "v"}),
        );
        assert_eq!(res.status, 200, "{}", res.text());
    }
    let res = post(
        &mut conn,
        "/envvars/v1/tool/mytool/envvars",
        &json!({"name": "VAR_C", "value": "v"}),
    );
    assert_eq!(res.status, 409, "{}", res.text());
    assert!(
        res.text()
            .contains("tool mytool already has 2 envvars and its quota is 2"),
        "{}",
        res.text()
    );
    let quota = conn.get("/envvars/v1/tool/mytool/quotas").unwrap();
    assert_eq!(quota.json()["quota"], json!({"quota": 2, "used": 2}));
    daemon.admin_ok(&["quota", "reset", "mytool", "envvars"]);
    let quota = conn.get("/envvars/v1/tool/mytool/quotas").unwrap();
    assert_eq!(quota.json()["quota"], json!({"quota": 100, "used": 2}));
}

#[test]
fn a_raised_continuous_quota_admits_a_fourth_continuous_job_that_the_default_refuses() {
    const TEST: &str =
        "a_raised_continuous_quota_admits_a_fourth_continuous_job_that_the_default_refuses";
    if !is_root() {
        return prerequisite_missing(TEST, "jobs run isolated as their tool's uid only as root");
    }
    let daemon = daemon_with_tool();
    let mut conn = connect_as(&daemon, "mytool");
    let continuous = |name: &str| json!({"name": name, "cmd": "sleep 600", "imagename": "bookworm", "continuous": true, "filelog": false});
    for name in ["one", "two", "three"] {
        let res = post(&mut conn, "/jobs/v1/tool/mytool/jobs/", &continuous(name));
        assert_eq!(res.status, 201, "{name}: {}", res.text());
    }
    let res = post(&mut conn, "/jobs/v1/tool/mytool/jobs/", &continuous("four"));
    assert_eq!(res.status, 403, "{}", res.text());
    assert_eq!(
        res.json()["error"][0],
        "Out of quota: the tool already has 3 continuous jobs (including web services), the limit is 3"
    );

    daemon.admin_ok(&["quota", "set", "mytool", "continuous=4"]);
    let res = post(&mut conn, "/jobs/v1/tool/mytool/jobs/", &continuous("four"));
    assert_eq!(res.status, 201, "{}", res.text());
    let res = post(&mut conn, "/jobs/v1/tool/mytool/jobs/", &continuous("five"));
    assert_eq!(res.status, 403, "{}", res.text());
    assert!(res.text().contains("the limit is 4"), "{}", res.text());
}

#[test]
fn a_lowered_job_memory_quota_refuses_a_1gi_job_and_toolforge_jobs_quota_shows_it() {
    const TEST: &str =
        "a_lowered_job_memory_quota_refuses_a_1gi_job_and_toolforge_jobs_quota_shows_it";
    let daemon = daemon_with_tool();
    let run_big = [
        "run",
        "big",
        "--command",
        "true",
        "--image",
        "bookworm",
        "--mem",
        "1Gi",
    ];
    // The default per-job limit (4Gi) admits it.
    let Some(out) = jobs(&daemon, "mytool", TEST, &run_big) else {
        return;
    };
    ok(out);
    ok(jobs(&daemon, "mytool", TEST, &["delete", "big"]).unwrap());

    daemon.admin_ok(&["quota", "set", "mytool", "job-memory=512Mi", "continuous=7"]);
    let out = jobs(&daemon, "mytool", TEST, &run_big).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Requested memory 1Gi is over the per-job limit of 0.5Gi"),
        "{stderr}"
    );
    let list = ok(jobs(&daemon, "mytool", TEST, &["list"]).unwrap());
    assert!(!list.contains("big"), "{list}");

    let quota = ok(jobs(&daemon, "mytool", TEST, &["quota"]).unwrap());
    let line = |label: &str| {
        quota
            .lines()
            .filter(|line| line.contains(label))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(line("Memory").contains("0.5Gi"), "{quota}");
    assert!(
        line("Continuous jobs (including web services)").contains('7'),
        "{quota}"
    );
}
