//! `load`'s conversion of YAML entries into `run` arguments and `dump`'s of API jobs.

use expect_test::expect;
use serde_json::json;

use crate::jobs::dict::Dict;
use crate::jobs::load::{entry_to_run_args, job_to_entry};

#[track_caller]
fn convert(yaml: &str) -> String {
    let entries: Vec<serde_norway::Mapping> = serde_norway::from_str(yaml).unwrap();
    entries
        .iter()
        .map(|entry| {
            let converted = entry_to_run_args(entry);
            let mut out = format!("{:?}\n", converted.args);
            for warning in converted.warnings {
                out.push_str(&format!("  WARNING: {warning}\n"));
            }
            out
        })
        .collect()
}

#[test]
fn entries_become_run_arguments_with_the_official_warnings() {
    // The variants of transcript X14 (load-variants.yaml), then other spellings.
    let variants = "\
- name: a-job
  command: ./a.sh
  image: bookworm
  no-filelog: \"true\"
  wait: false
- name: b-job
  command: ./b.sh
  image: tool-mytool/tool-mytool:latest
  filelog: \"yes\"
  mount: all
  schedule: \"*/5 * * * *\"
  emails: onfailure
- name: c-job
  command: ./c.sh
  image: bookworm
  continuous: true
  replicas: 3
  health-check-script: /bin/true
  filelog-stdout: /data/project/mytool/c.log
  mem: 2Gi
  cpu: 2
- command: x
  name: ''
  image: bookworm
  wait: true
  continuous: false
  filelog: 1
  port: null
  cpu: 0.5
  timeout: true
- command: x
  wait: 30
  name: late
  no-filelog: yes
";
    expect![[r#"
        ["a-job", "--command", "./a.sh", "--image", "bookworm", "--no-filelog"]
          WARNING: Assigning "true" to no-filelog will be deprecated in future releases. Please use True unquoted instead.
          WARNING: Invalid key: 'wait' expects True or integer but got "False". omitting key...
        ["b-job", "--command", "./b.sh", "--image", "tool-mytool/tool-mytool:latest", "--filelog", "--mount", "all", "--schedule", "*/5 * * * *", "--emails", "onfailure"]
          WARNING: Assigning "yes" to filelog will be deprecated in future releases. Please use True unquoted instead.
        ["c-job", "--command", "./c.sh", "--image", "bookworm", "--continuous", "--replicas", "3", "--health-check-script", "/bin/true", "--filelog-stdout", "/data/project/mytool/c.log", "--mem", "2Gi", "--cpu", "2"]
        ["--command", "x", "--name", "", "--image", "bookworm", "--wait", "--port", "None", "--cpu", "0.5", "--timeout", "True"]
          WARNING: Invalid key: continuous expects True but got "False". omitting key...
          WARNING: Invalid key: filelog expects True but got "1". omitting key...
        ["late", "--command", "x", "--wait", "30", "--no-filelog"]
    "#]]
    .assert_eq(&convert(variants));
}

/// `json!` sorts the keys, so the jobs here have theirs in alphabetical order.
fn job(value: serde_json::Value) -> Dict {
    serde_json::from_value(value).unwrap()
}

#[test]
fn api_jobs_become_load_entries_without_defaults() {
    // The three jobs of transcript J17 and what the official client dumped.
    let jobs = [
        json!({"name": "myjob", "cmd": "./script.sh", "image": "python3.11", "imagename": "python3.11", "image_state": "stable", "filelog": true, "filelog_stdout": "/data/project/mytool/myjob.out", "filelog_stderr": "/data/project/mytool/myjob.err", "status_short": "Running for 1s", "status_long": "x", "port": null, "replicas": null, "emails": "none", "retry": 0, "mount": "all", "health_check": null, "memory": "512Mi", "cpu": "500m"}),
        json!({"name": "web", "cmd": "python3 -m http.server 8000", "image": "tool-mytool/tool-mytool:latest", "imagename": "tool-mytool/tool-mytool:latest", "image_state": "stable", "filelog": false, "filelog_stdout": null, "filelog_stderr": null, "status_short": "Running", "status_long": "x", "port": 8000, "replicas": 2, "emails": "onfailure", "retry": 0, "mount": "none", "health_check": {"type": "http", "path": "/healthz"}, "memory": "1Gi", "cpu": "1", "continuous": true}),
        json!({"name": "cron1", "cmd": "date", "image": "bookworm", "imagename": "bookworm", "image_state": "stable", "filelog": true, "filelog_stdout": "logs/cron1.out", "filelog_stderr": "logs/cron1.err", "status_short": "Waiting for scheduled time", "status_long": "x", "port": null, "replicas": null, "emails": "none", "retry": 2, "mount": "all", "health_check": null, "memory": "512Mi", "cpu": "500m", "timeout": 300, "schedule": "@daily", "schedule_actual": "@daily"}),
    ];
    let entries: Vec<_> = jobs
        .into_iter()
        .map(|value| {
            let (entry, warnings) = job_to_entry(job(value), "mytool").unwrap();
            assert_eq!(warnings, Vec::<String>::new());
            entry
        })
        .collect();
    expect![[r#"
        - command: ./script.sh
          cpu: 500m
          image: python3.11
          mem: 512Mi
          name: myjob
        - command: python3 -m http.server 8000
          continuous: true
          cpu: '1'
          emails: onfailure
          health-check-http: /healthz
          image: tool-mytool/tool-mytool:latest
          mem: 1Gi
          name: web
          port: 8000
          replicas: 2
        - command: date
          cpu: 500m
          filelog-stderr: logs/cron1.err
          filelog-stdout: logs/cron1.out
          image: bookworm
          mem: 512Mi
          name: cron1
          retry: 2
          schedule: '@daily'
          timeout: 300
    "#]]
    .assert_eq(&crate::jobs::yaml_dump::dump(&entries));
}

#[test]
fn dump_keeps_explicit_file_logs_and_warns_about_unknown_keys() {
    let (entry, warnings) = job_to_entry(
        job(json!({"name": "b", "cmd": "web", "imagename": "tool-a/tool-a:latest", "filelog": true,
            "filelog_stdout": "$TOOL_DATA_DIR/b.out", "filelog_stderr": "/data/project/a/logs/b.err",
            "mount": "all", "retry": 0, "replicas": 3, "health_check": {"health_check_type": "tcp"},
            "status": {"short": "x"}, "job_type": "oneoff"})),
        "a",
    )
    .unwrap();
    expect![[r#"{"command": String("web"), "filelog": String("yes"), "filelog-stderr": String("logs/b.err"), "image": String("tool-a/tool-a:latest"), "mount": String("all"), "name": String("b")}"#]]
        .assert_eq(&format!("{entry:?}"));
    expect![[r#"
        [
            "unknown health_check from jobs-api: {'health_check_type': 'tcp'}",
            "unexpected key 'job_type' in job, omitting it from dump",
            "unexpected key 'status' in job, omitting it from dump",
        ]
    "#]]
    .assert_debug_eq(&warnings);
    assert!(job_to_entry(job(json!({"name": "x", "imagename": "b"})), "a").is_err());
}
