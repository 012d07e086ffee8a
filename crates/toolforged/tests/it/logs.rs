//! Issue 7: captured job output through `/logs/v1/tool/{tool}/…` and `toolforge jobs
//! logs -f`, against a real daemon whose jobs really run: order, streams and times,
//! following, a flood that neither blocks the job nor outgrows the tool's retention,
//! tool isolation, pagination and bad parameters.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use test_support::daemon::{Daemon, DaemonOptions};
use test_support::https::{HttpResponse, HttpsConnection};
use test_support::poll::eventually;
use test_support::skip::prerequisite_missing;

use crate::jobs::{jobs, ok, read};
use crate::{bin, daemon_with_tool};

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

fn get(conn: &mut HttpsConnection, path: &str) -> HttpResponse {
    conn.get(path).unwrap()
}

fn ok_json(res: HttpResponse) -> Value {
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

fn messages(page: &Value) -> Vec<String> {
    page["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["message"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs a one-off job without file logs and waits for it to finish.
fn run_and_wait(daemon: &Daemon, tool: &str, test: &str, name: &str, command: &str) -> bool {
    let Some(out) = jobs(
        daemon,
        tool,
        test,
        &[
            "run",
            name,
            "--command",
            command,
            "--image",
            "bookworm",
            "--no-filelog",
            "--wait",
            "120",
        ],
    ) else {
        return false;
    };
    ok(out);
    true
}

#[test]
fn a_job_printing_to_both_streams_is_read_back_in_order_with_stream_and_time() {
    const TEST: &str = "a_job_printing_to_both_streams_is_read_back_in_order_with_stream_and_time";
    let daemon = daemon_with_tool();
    // The sleeps order lines of different pipes; the last two lines try to forge records.
    let command = r#"echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three; sleep 0.3; echo '{"pod":"x-0","container":"x","stream":"stdout","message":"forged"}'; printf 'a\\nb\n'"#;
    if !run_and_wait(&daemon, "mytool", TEST, "talk", command) {
        return;
    }
    let mut conn = connect_as(&daemon, "mytool");
    let expected = [
        "one",
        "two",
        "three",
        r#"{"pod":"x-0","container":"x","stream":"stdout","message":"forged"}"#,
        r"a\nb",
    ];
    let page = eventually(Duration::from_secs(10), || {
        let page = ok_json(get(&mut conn, "/logs/v1/tool/mytool/logs?order=oldest"));
        (messages(&page).len() == expected.len()).then_some(page)
    })
    .expect("five lines");
    assert_eq!(messages(&page), expected, "{page}");
    let lines = page["lines"].as_array().unwrap();
    let streams: Vec<&str> = lines
        .iter()
        .map(|l| l["stream"].as_str().unwrap())
        .collect();
    assert_eq!(streams, ["stdout", "stderr", "stdout", "stdout", "stdout"]);
    assert!(
        lines
            .iter()
            .all(|l| l["job"] == "talk" && l["pod"] == "talk-0"),
        "{page}"
    );
    let times: Vec<time::OffsetDateTime> = lines
        .iter()
        .map(|l| {
            let text = l["datetime"].as_str().unwrap();
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|err| panic!("{text}: {err}"))
        })
        .collect();
    assert!(times.windows(2).all(|pair| pair[0] < pair[1]), "{times:?}");
    let age = time::OffsetDateTime::now_utc() - times[0];
    assert!(age.whole_seconds() < 300, "{age}");
    assert_eq!(page["more"], false);
    assert!(page["messages"].is_object());

    // Newest first, one job, by text and time.
    let newest = ok_json(get(
        &mut conn,
        "/logs/v1/tool/mytool/jobs/talk/logs?limit=2",
    ));
    assert_eq!(messages(&newest), [r"a\nb", expected[3]]);
    assert_eq!(newest["more"], true);
    let found = ok_json(get(&mut conn, "/logs/v1/tool/mytool/logs?contains=tw"));
    assert_eq!(messages(&found), ["two"]);
    let since = lines[1]["datetime"].as_str().unwrap().replace('+', "%2B");
    let until = lines[3]["datetime"].as_str().unwrap().replace('+', "%2B");
    let window = ok_json(get(
        &mut conn,
        &format!("/logs/v1/tool/mytool/logs?order=oldest&since={since}&until={until}"),
    ));
    assert_eq!(messages(&window), ["two", "three"]);

    // A deleted job's logs: gone from the jobs API, still in the logs API.
    ok(jobs(&daemon, "mytool", TEST, &["delete", "talk"]).unwrap());
    let res = get(
        &mut conn,
        "/jobs/v1/tool/mytool/jobs/talk/logs?follow=false",
    );
    assert_eq!(res.status, 404, "{}", res.text());
    assert_eq!(res.json()["error"][0], "Job 'talk' does not exist");
    let after = ok_json(get(
        &mut conn,
        "/logs/v1/tool/mytool/jobs/talk/logs?order=oldest",
    ));
    assert_eq!(messages(&after), expected);
}

#[test]
fn follow_with_the_official_client_delivers_a_line_printed_after_it_started() {
    const TEST: &str = "follow_with_the_official_client_delivers_a_line_printed_after_it_started";
    let daemon = daemon_with_tool();
    // Bounded, so a failing test leaves no job behind for long.
    let command =
        "echo early; for i in $(seq 300); do [ -e go ] && break; sleep 0.1; done; echo late";
    let Some(out) = jobs(
        &daemon,
        "mytool",
        TEST,
        &[
            "run",
            "waiter",
            "--command",
            command,
            "--image",
            "bookworm",
            "--no-filelog",
        ],
    ) else {
        return;
    };
    ok(out);
    // `toolforge-jobs` itself, not the umbrella: killing the umbrella would leave its
    // child holding the pipe.
    let mut client = match daemon.official_client("mytool", "toolforge-jobs") {
        Ok(cmd) => cmd,
        Err(reason) => return prerequisite_missing(TEST, &reason),
    };
    let mut child = client
        .args(["logs", "-f", "waiter"])
        // Python buffers a pipe's output in blocks; each line must arrive as printed.
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = |timeout: Duration| receiver.recv_timeout(timeout).ok();
    let first = next_line(Duration::from_secs(20));
    if first.is_none() {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!("no line; stderr: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(
        first
            .as_deref()
            .is_some_and(|line| line.ends_with(" [waiter-0] [waiter] early")),
        "{first:?}"
    );
    std::fs::write(daemon.tool_home("mytool").join("go"), "").unwrap();
    let second = next_line(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    assert!(
        second
            .as_deref()
            .is_some_and(|line| line.ends_with(" [waiter-0] [waiter] late")),
        "{second:?}"
    );
}

#[test]
fn a_job_printing_200_mb_is_not_blocked_and_its_tool_stays_within_its_retention() {
    const TEST: &str =
        "a_job_printing_200_mb_is_not_blocked_and_its_tool_stays_within_its_retention";
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("toolforged.toml");
    std::fs::write(
        &config,
        "logs-retention-size = \"1Mi\"\nlogs-rate = 1000\nlogs-burst = 2000\nlogs-sweep-interval = \"1s\"\n",
    )
    .unwrap();
    let daemon = DaemonOptions::default()
        .arg("--config")
        .arg(&config)
        .start(bin());
    daemon.create_user("alice", "alice@example.org");
    daemon.create_tool("mytool", "alice");
    // 200,000 lines of 1,000 bytes as fast as `yes` goes, then a quiet line.
    let command =
        "yes \"$(head -c 999 /dev/zero | tr '\\0' x)\" | head -c 200000000; sleep 2; echo done";
    let started = Instant::now();
    if !run_and_wait(&daemon, "mytool", TEST, "flood", command) {
        return;
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(60),
        "the job took {elapsed:?}"
    );
    let logs_dir = daemon.data_dir().join("logs/mytool");
    let size: u64 = std::fs::read_dir(&logs_dir)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum();
    assert!(
        size <= 1024 * 1024,
        "{size} bytes in {}",
        logs_dir.display()
    );
    let mut conn = connect_as(&daemon, "mytool");
    let last = eventually(Duration::from_secs(10), || {
        let page = ok_json(get(&mut conn, "/logs/v1/tool/mytool/logs?limit=2"));
        (messages(&page).first().map(String::as_str) == Some("done")).then_some(page)
    })
    .expect("the last line");
    let marker = &last["lines"][1];
    assert_eq!(marker["stream"], "platform", "{last}");
    let text = marker["message"].as_str().unwrap();
    assert!(dropped_in(text) > 0, "{text}");
    // What retention kept: markers are rare (one per recovery, a second's worth of lines
    // apart), never one per line.
    let kept = ok_json(get(&mut conn, "/logs/v1/tool/mytool/logs?limit=10000"));
    let lines = kept["lines"].as_array().unwrap();
    let markers: Vec<&str> = lines
        .iter()
        .filter(|line| line["stream"] == "platform")
        .map(|line| line["message"].as_str().unwrap())
        .collect();
    assert!(
        markers.len() <= 2 + (lines.len() - markers.len()) / 1000,
        "{} markers among {} lines",
        markers.len(),
        lines.len()
    );
    assert!(
        markers.iter().all(|text| dropped_in(text) > 0),
        "{markers:?}"
    );
}

/// The count of a drop marker, which reads
/// `toolforge: N lines of output were dropped: the tool's jobs printed more than R lines per second`.
fn dropped_in(text: &str) -> u64 {
    assert!(
        text.ends_with(
            "lines of output were dropped: the tool's jobs printed more than 1000 lines per second"
        ),
        "{text}"
    );
    text.strip_prefix("toolforge: ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("{text}"))
}

#[test]
fn a_tools_logs_are_invisible_to_another_tool() {
    const TEST: &str = "a_tools_logs_are_invisible_to_another_tool";
    let daemon = daemon_with_tool();
    daemon.create_tool("other", "alice");
    if !run_and_wait(&daemon, "other", TEST, "secret", "echo the-secret-line") {
        return;
    }
    let mut theirs = connect_as(&daemon, "other");
    eventually(Duration::from_secs(10), || {
        let page = ok_json(get(&mut theirs, "/logs/v1/tool/other/logs"));
        (messages(&page) == ["the-secret-line"]).then_some(())
    })
    .expect("the line, for its own tool");
    let mut mine = connect_as(&daemon, "mytool");
    for path in [
        "/logs/v1/tool/other/logs",
        "/logs/v1/tool/other/logs?job=secret",
        "/logs/v1/tool/other/jobs/secret/logs",
    ] {
        let res = get(&mut mine, path);
        assert_eq!(res.status, 403, "{path}: {}", res.text());
        assert!(!res.text().contains("the-secret-line"), "{}", res.text());
    }
    for path in [
        "/logs/v1/tool/mytool/logs",
        "/logs/v1/tool/mytool/jobs/secret/logs",
    ] {
        let page = ok_json(get(&mut mine, path));
        assert_eq!(page["lines"], serde_json::json!([]), "{path}");
    }
}

#[test]
fn pages_return_every_line_exactly_once_in_both_orders() {
    const TEST: &str = "pages_return_every_line_exactly_once_in_both_orders";
    let daemon = daemon_with_tool();
    if !run_and_wait(&daemon, "mytool", TEST, "counter", "seq 1 57") {
        return;
    }
    let mut conn = connect_as(&daemon, "mytool");
    eventually(Duration::from_secs(10), || {
        let page = ok_json(get(&mut conn, "/logs/v1/tool/mytool/logs?limit=1"));
        (messages(&page) == ["57"]).then_some(())
    })
    .expect("the last line");
    for order in ["oldest", "newest"] {
        let mut seen: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        let mut n_pages = 0;
        loop {
            let mut path = format!("/logs/v1/tool/mytool/logs?order={order}&limit=10");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page = ok_json(get(&mut conn, &path));
            n_pages += 1;
            seen.extend(messages(&page));
            if page["more"] == false {
                // At the end the cursor stays usable: nothing after it yet.
                let cursor = page["cursor"].as_str().unwrap();
                let empty = ok_json(get(
                    &mut conn,
                    &format!("/logs/v1/tool/mytool/logs?order={order}&limit=10&cursor={cursor}"),
                ));
                assert_eq!(empty["lines"], serde_json::json!([]));
                assert_eq!(empty["cursor"], cursor);
                break;
            }
            cursor = Some(page["cursor"].as_str().unwrap().to_owned());
            assert!(n_pages < 20);
        }
        let mut expected: Vec<String> = (1..=57).map(|n| n.to_string()).collect();
        if order == "newest" {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{order}");
        assert_eq!(n_pages, 6, "{order}");
    }
}

#[test]
fn bad_parameters_are_refused_with_400_naming_the_parameter() {
    let daemon = daemon_with_tool();
    let mut conn = connect_as(&daemon, "mytool");
    for (query, message) in [
        (
            "since=yesterday",
            "invalid since 'yesterday': it must be an RFC 3339 time such as 2026-01-31T12:00:00Z",
        ),
        (
            "until=2026-13-01T00:00:00Z",
            "invalid until '2026-13-01T00:00:00Z': it must be an RFC 3339 time such as 2026-01-31T12:00:00Z",
        ),
        (
            "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            "invalid until: it must be later than since",
        ),
        (
            "order=sideways",
            "invalid order 'sideways': it must be newest or oldest",
        ),
        (
            "limit=0",
            "invalid limit '0': it must be a whole number from 1 to 10000",
        ),
        (
            "limit=many",
            "invalid limit 'many': it must be a whole number from 1 to 10000",
        ),
        (
            "cursor=nope",
            "invalid cursor 'nope': pass back the cursor of a previous answer",
        ),
        (
            "job=..%2Fother",
            "invalid job '../other': Invalid job name. See the documentation for the naming rules: https://w.wiki/6YL8",
        ),
    ] {
        let res = get(&mut conn, &format!("/logs/v1/tool/mytool/logs?{query}"));
        assert_eq!(res.status, 400, "{query}: {}", res.text());
        let body = res.json();
        assert_eq!(body["error"], serde_json::json!([message]), "{query}");
        assert_eq!(
            body["messages"]["error"],
            serde_json::json!([message]),
            "{query}"
        );
    }
    let res = get(&mut conn, "/logs/v1/tool/mytool/jobs/Bad_Job/logs");
    assert_eq!(res.status, 400, "{}", res.text());
    let res = get(&mut conn, "/logs/v1/tool/mytool/nothing-here");
    assert_eq!(res.status, 404, "{}", res.text());

    // The routes and their parameters are in the OpenAPI document.
    let doc = ok_json(get(&mut conn, "/logs/openapi.json"));
    for path in [
        "/logs/v1/tool/{tool}/logs",
        "/logs/v1/tool/{tool}/jobs/{job}/logs",
    ] {
        let params: Vec<(&str, &str)> = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} in {doc}"))
            .iter()
            .map(|p| (p["name"].as_str().unwrap(), p["in"].as_str().unwrap()))
            .collect();
        for expected in [
            ("tool", "path"),
            (
                "job",
                if path.contains("{job}") {
                    "path"
                } else {
                    "query"
                },
            ),
            ("since", "query"),
            ("until", "query"),
            ("contains", "query"),
            ("order", "query"),
            ("limit", "query"),
            ("cursor", "query"),
        ] {
            assert!(
                params.contains(&expected),
                "{expected:?} in {path}: {params:?}"
            );
        }
    }
}
