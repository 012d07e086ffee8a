//! The tables against the official client's output in the contract's transcripts
//! (J07, J08, J10, J16, X04, X08, X09, X10, X35, Y11).

use expect_test::expect;
use serde_json::json;

use crate::jobs::dict::Dict;
use crate::jobs::display::{
    HEADERS_LONG, HEADERS_SHORT, Unformattable, images_table, list_table, prepare_for_output,
    quota_tables, show_table,
};

const STATUS_LONG: &str = "Last run at 2025-06-19T12:00:00Z. Pod in 'Running' phase. State 'running'. Started at '2025-06-19T12:00:01Z'.";

fn jobs() -> Vec<Dict> {
    [
        json!({"name": "myjob", "cmd": "./script.sh", "image": "python3.11", "imagename": "python3.11", "image_state": "stable", "filelog": true, "filelog_stdout": "/data/project/mytool/myjob.out", "filelog_stderr": "/data/project/mytool/myjob.err", "status_short": "Running for 1s", "status_long": STATUS_LONG, "port": null, "replicas": null, "emails": "none", "retry": 0, "mount": "all", "health_check": null, "memory": "512Mi", "cpu": "500m"}),
        json!({"name": "web", "cmd": "python3 -m http.server 8000", "image": "tool-mytool/tool-mytool:latest", "imagename": "tool-mytool/tool-mytool:latest", "image_state": "stable", "filelog": false, "filelog_stdout": null, "filelog_stderr": null, "status_short": "Running", "status_long": STATUS_LONG, "port": 8000, "replicas": 2, "emails": "onfailure", "retry": 0, "mount": "none", "health_check": {"type": "http", "path": "/healthz"}, "memory": "1Gi", "cpu": "1", "continuous": true}),
        json!({"name": "cron1", "cmd": "date", "image": "bookworm", "imagename": "bookworm", "image_state": "stable", "filelog": true, "filelog_stdout": "logs/cron1.out", "filelog_stderr": "logs/cron1.err", "status_short": "Waiting for scheduled time", "status_long": STATUS_LONG, "port": null, "replicas": null, "emails": "none", "retry": 2, "mount": "all", "health_check": null, "memory": "512Mi", "cpu": "500m", "timeout": 300, "schedule": "@daily", "schedule_actual": "@daily"}),
    ]
    .into_iter()
    .map(|value| serde_json::from_value(value).unwrap())
    .collect()
}

fn list(mut jobs: Vec<Dict>, headers: &[(&str, &str)]) -> String {
    for job in &mut jobs {
        prepare_for_output(job, headers, true).unwrap();
    }
    list_table(&jobs, headers) + "\n"
}

fn show(value: serde_json::Value) -> String {
    let mut job: Dict = serde_json::from_value(value).unwrap();
    prepare_for_output(&mut job, HEADERS_LONG, false).unwrap();
    show_table(&job) + "\n"
}

#[test]
fn list_is_the_pretty_table_of_j07_and_j08() {
    expect![[r#"
        +-----------+------------------+----------------------------+
        | Job name: |    Job type:     |          Status:           |
        +-----------+------------------+----------------------------+
        |   myjob   |     one-off      |       Running for 1s       |
        |    web    |    continuous    |          Running           |
        |   cron1   | schedule: @daily | Waiting for scheduled time |
        +-----------+------------------+----------------------------+
    "#]]
    .assert_eq(&list(jobs(), HEADERS_SHORT));
    expect![[r#"
        +-----------+-----------------------------+------------------+--------------------------------+-------+-----------+--------------------------------+--------------------------------+-----------+-----------------------+-----------+---------+----------------+-----------+----------------+----------------------------+
        | Job name: |          Command:           |    Job type:     |             Image:             | Port: | File log: |          Output log:           |           Error log:           |  Emails:  |      Resources:       | Replicas: | Mounts: |     Retry:     | Timeout:  | Health check:  |          Status:           |
        +-----------+-----------------------------+------------------+--------------------------------+-------+-----------+--------------------------------+--------------------------------+-----------+-----------------------+-----------+---------+----------------+-----------+----------------+----------------------------+
        |   myjob   |         ./script.sh         |     one-off      |           python3.11           | none  |    yes    | /data/project/mytool/myjob.out | /data/project/mytool/myjob.err |   none    | mem: 512Mi, cpu: 500m |           |   all   |       no       |    no     |      none      |       Running for 1s       |
        |    web    | python3 -m http.server 8000 |    continuous    | tool-mytool/tool-mytool:latest | 8000  |    no     |                                |                                | onfailure |   mem: 1Gi, cpu: 1    |     2     |  none   |       no       |    no     | http: /healthz |          Running           |
        |   cron1   |            date             | schedule: @daily |            bookworm            | none  |    yes    |         logs/cron1.out         |         logs/cron1.err         |   none    | mem: 512Mi, cpu: 500m |           |   all   | yes: 2 time(s) | yes: 300s |      none      | Waiting for scheduled time |
        +-----------+-----------------------------+------------------+--------------------------------+-------+-----------+--------------------------------+--------------------------------+-----------+-----------------------+-----------+---------+----------------+-----------+----------------+----------------------------+
    "#]]
    .assert_eq(&list(jobs(), HEADERS_LONG));
}

#[test]
fn odd_jobs_are_shown_as_the_official_client_shows_them() {
    // X08: any non-null `continuous` makes a continuous job, a deprecated image says so in
    // `show` only.
    let x08: Dict = serde_json::from_value(json!({"name": "a", "cmd": "c", "imagename": "bookworm", "image_state": "deprecated", "status_short": "Running", "continuous": false, "schedule": null, "retry": 0})).unwrap();
    expect![[r#"
        +-----------+------------+---------+
        | Job name: | Job type:  | Status: |
        +-----------+------------+---------+
        |     a     | continuous | Running |
        +-----------+------------+---------+
    "#]]
    .assert_eq(&list(vec![x08], HEADERS_SHORT));
    // X09: a minimal job.
    let x09: Dict = serde_json::from_value(
        json!({"name": "a", "imagename": "bookworm", "image_state": "stable"}),
    )
    .unwrap();
    expect![[r#"
        +-----------+----------+-----------+----------+-------+-----------+-------------+------------+---------+------------+-----------+---------+-------------------+----------+---------------+---------+
        | Job name: | Command: | Job type: |  Image:  | Port: | File log: | Output log: | Error log: | Emails: | Resources: | Replicas: | Mounts: |      Retry:       | Timeout: | Health check: | Status: |
        +-----------+----------+-----------+----------+-------+-----------+-------------+------------+---------+------------+-----------+---------+-------------------+----------+---------------+---------+
        |     a     | Unknown  |  one-off  | bookworm | none  |    no     |   Unknown   |  Unknown   | Unknown |  default   |  Unknown  | Unknown | yes: None time(s) |    no    |     none      | Unknown |
        +-----------+----------+-----------+----------+-------+-----------+-------------+------------+---------+------------+-----------+---------+-------------------+----------+---------------+---------+
    "#]]
    .assert_eq(&list(vec![x09], HEADERS_LONG));
    // X10: no image_state cannot be formatted.
    let mut x10: Dict =
        serde_json::from_value(json!({"name": "a", "imagename": "bookworm"})).unwrap();
    assert_eq!(
        prepare_for_output(&mut x10, HEADERS_SHORT, true),
        Err(Unformattable("no image_state"))
    );
}

#[test]
fn show_is_the_grid_of_j10_and_y11_with_hints_wrapped_at_70() {
    expect![[r#"
        +---------------+-----------------------------------------------------------------+
        | Job name:     | web                                                             |
        +---------------+-----------------------------------------------------------------+
        | Command:      | python3 -m http.server 8000                                     |
        +---------------+-----------------------------------------------------------------+
        | Job type:     | continuous                                                      |
        +---------------+-----------------------------------------------------------------+
        | Image:        | tool-mytool/tool-mytool:latest                                  |
        +---------------+-----------------------------------------------------------------+
        | Port:         | 8000                                                            |
        +---------------+-----------------------------------------------------------------+
        | File log:     | no                                                              |
        +---------------+-----------------------------------------------------------------+
        | Output log:   |                                                                 |
        +---------------+-----------------------------------------------------------------+
        | Error log:    |                                                                 |
        +---------------+-----------------------------------------------------------------+
        | Emails:       | onfailure                                                       |
        +---------------+-----------------------------------------------------------------+
        | Resources:    | mem: 1Gi, cpu: 1                                                |
        +---------------+-----------------------------------------------------------------+
        | Replicas:     | 2                                                               |
        +---------------+-----------------------------------------------------------------+
        | Mounts:       | none                                                            |
        +---------------+-----------------------------------------------------------------+
        | Retry:        | no                                                              |
        +---------------+-----------------------------------------------------------------+
        | Timeout:      | no                                                              |
        +---------------+-----------------------------------------------------------------+
        | Health check: | http: /healthz                                                  |
        +---------------+-----------------------------------------------------------------+
        | Status:       | Running                                                         |
        +---------------+-----------------------------------------------------------------+
        | Hints:        | Last run at 2025-06-19T12:00:00Z. Pod in 'Running' phase. State |
        |               | 'running'. Started at '2025-06-19T12:00:01Z'.                   |
        +---------------+-----------------------------------------------------------------+
    "#]]
    .assert_eq(&show(json!({"name": "web", "cmd": "python3 -m http.server 8000", "image": "tool-mytool/tool-mytool:latest", "imagename": "tool-mytool/tool-mytool:latest", "image_state": "stable", "filelog": false, "filelog_stdout": null, "filelog_stderr": null, "status_short": "Running", "status_long": STATUS_LONG, "port": 8000, "replicas": 2, "emails": "onfailure", "retry": 0, "mount": "none", "health_check": {"type": "http", "path": "/healthz"}, "memory": "1Gi", "cpu": "1", "continuous": true, "status": {"messages": ["exitcode 0"]}})));
    let y11 = show(
        json!({"name": "hc", "cmd": "c", "imagename": "bookworm", "image_state": "deprecated", "continuous": true, "health_check": {"health_check_type": "script", "script": "/bin/true"}, "retry": 0, "filelog": true, "filelog_stdout": null, "filelog_stderr": null, "emails": "all", "mount": "all", "replicas": 1, "port": null, "status_short": "Running", "status_long": "x".repeat(150)}),
    );
    for expected in [
        "| Image:        | bookworm (deprecated)                                                  |",
        "| Resources:    | default                                                                |",
        "| Health check: | script: /bin/true                                                      |",
        "|               | xxxxxxxxxx                                                             |",
    ] {
        assert!(y11.contains(expected), "{expected} in\n{y11}");
    }
}

#[test]
fn our_servers_notes_of_trouble_are_added_to_the_hints() {
    let table = show(
        json!({"name": "w", "cmd": "c", "imagename": "bookworm", "image_state": "stable", "retry": 0, "status_short": "Running", "status_long": "Running since 2025-06-19T12:00:01Z.", "status": {"messages": ["restarted (2)", "exitcode 1"]}}),
    );
    assert!(
        table.contains("| Hints:        | Running since 2025-06-19T12:00:01Z. Notes: restarted (2), exitcode 1. |"),
        "{table}"
    );
}

#[test]
fn images_and_quota_are_the_tables_of_j01_x04_j16_and_x35() {
    // From the text, so that the server's key order (shortname first) is kept.
    let images: Vec<Dict> = serde_json::from_str(
        r#"[{"shortname": "bookworm", "image": "docker-registry.tools.wmflabs.org/toolforge-bookworm-sssd:latest"},
            {"shortname": "python3.11", "image": "docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest"},
            {"shortname": "tool-mytool/tool-mytool:latest", "image": "tools-harbor.wmcloud.org/tool-mytool/tool-mytool:latest"}]"#,
    )
    .unwrap();
    expect![[r#"
        +--------------------------------+------------------------------------------------------------------------+
        |           Short name           |                                 image                                  |
        +--------------------------------+------------------------------------------------------------------------+
        |            bookworm            |    docker-registry.tools.wmflabs.org/toolforge-bookworm-sssd:latest    |
        |           python3.11           | docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest |
        | tool-mytool/tool-mytool:latest |        tools-harbor.wmcloud.org/tool-mytool/tool-mytool:latest         |
        +--------------------------------+------------------------------------------------------------------------+
    "#]]
    .assert_eq(&(images_table(&images) + "\n"));
    let x04: Vec<Dict> = serde_json::from_str(r#"[{"shortname": "bookworm", "imagename": "docker-registry.tools.wmflabs.org/toolforge-bookworm-sssd:latest"}]"#).unwrap();
    assert!(images_table(&x04).contains(
        "| Short name |                       Container image URL                        |"
    ));

    let categories = json!([
        {"name": "Running jobs", "items": [
            {"name": "Total running jobs at once (Kubernetes pods)", "limit": "10", "used": "1"},
            {"name": "Running one-off and cron jobs", "limit": "15", "used": "0"},
            {"name": "CPU", "limit": "4.0", "used": "0.5"},
            {"name": "Memory", "limit": "8.0Gi", "used": "0.5Gi"}]},
        {"name": "Per-job limits", "items": [
            {"name": "CPU", "limit": "1.0", "used": null},
            {"name": "Memory", "limit": "4.0Gi", "used": null}]},
        {"name": "Job definitions", "items": [
            {"name": "Cron jobs", "limit": "50", "used": "5"},
            {"name": "Continuous jobs (including web services)", "limit": "3", "used": "1"}]}]);
    expect![[r#"
        Running jobs                                  Used    Limit
        --------------------------------------------  ------  -------
        Total running jobs at once (Kubernetes pods)  1       10
        Running one-off and cron jobs                 0       15
        CPU                                           0.5     4.0
        Memory                                        0.5Gi   8.0Gi

        Per-job limits    Used    Limit
        ----------------  ------  -------
        CPU                       1.0
        Memory                    4.0Gi

        Job definitions                             Used    Limit
        ----------------------------------------  ------  -------
        Cron jobs                                      5       50
        Continuous jobs (including web services)       1        3
    "#]]
    .assert_eq(&(quota_tables(categories.as_array().unwrap()).unwrap() + "\n"));
    let x35 = json!([{"name": "Per-job limits", "items": [{"name": "CPU", "limit": "1.0"}]}]);
    expect![[r#"
        Per-job limits      Limit
        ----------------  -------
        CPU                     1
    "#]]
    .assert_eq(&(quota_tables(x35.as_array().unwrap()).unwrap() + "\n"));
}
