//! Unit tests of the log store: capture, forgery, rate limit, retention and pages.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::logs::{LogQuery, Logs, LogsConfig, MAX_LINE, Order, PLATFORM_STREAM, capture};

fn store() -> (tempfile::TempDir, Arc<Logs>) {
    let dir = tempfile::tempdir().unwrap();
    let logs = Arc::new(Logs::new(dir.path().to_path_buf()));
    (dir, logs)
}

async fn print(logs: &Arc<Logs>, job: &str, stream: &'static str, input: &[u8]) {
    capture(logs.clone(), "t".into(), job.into(), 0, stream, input).await;
}

#[tokio::test]
async fn lines_are_split_stored_and_read_back_in_order() {
    let (_dir, logs) = store();
    let mut follower = logs.follow("t", "j");
    let mut input = b"one\ntwo\r\n".to_vec();
    input.extend(vec![b'x'; MAX_LINE + 10]);
    input.extend(b"\n\xff\xfebad\n");
    print(&logs, "j", "stdout", &input).await;
    let lines = logs.tail("t", "j", None);
    let messages: Vec<_> = lines.iter().map(|l| l.message.len()).collect();
    assert_eq!(messages, [3, 3, MAX_LINE, 10, 9]);
    assert_eq!(lines[0].message, "one");
    assert_eq!(lines[4].message, "\u{fffd}\u{fffd}bad");
    assert_eq!(lines[0].pod, "j-0");
    assert_eq!(lines[0].container, "j");
    assert!(lines.windows(2).all(|pair| pair[0].seq < pair[1].seq));
    assert_eq!(logs.tail("t", "j", Some(2)).len(), 2);
    assert_eq!(follower.recv().await.unwrap().message, "one");
    assert!(
        lines[0].datetime.ends_with("+00:00"),
        "{}",
        lines[0].datetime
    );
    assert!(logs.has_logs("t", "j"));
    assert!(!logs.has_logs("t", "other"));
}

#[tokio::test]
async fn a_job_printing_records_or_control_characters_cannot_forge_another_record() {
    let (dir, logs) = store();
    let forged = r#"{"datetime":"2020-01-01T00:00:00+00:00","pod":"victim-0","container":"victim","stream":"stdout","message":"forged","seq":1}"#;
    let mut input = format!("{forged}\nbefore\rafter\n").into_bytes();
    input.extend(b"with \\n escaped\x00nul\x1b[31m\n");
    input.extend(format!("{}\n{forged}\n", "y".repeat(MAX_LINE - 5)).into_bytes());
    print(&logs, "evil", "stdout", &input).await;
    let lines = logs.tail("t", "evil", None);
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert_eq!(lines[0].message, forged);
    assert_eq!(lines[1].message, "before\rafter");
    assert_eq!(lines[2].message, "with \\n escaped\0nul\x1b[31m");
    assert!(
        lines
            .iter()
            .all(|line| line.container == "evil" && line.stream == "stdout")
    );
    assert!(!logs.has_logs("t", "victim"));
    // One record per line on disk, and nothing else in the tool's directory.
    let text = std::fs::read_to_string(dir.path().join("t/evil.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 5);
    let page = logs.query(
        "t",
        &LogQuery {
            limit: 100,
            ..LogQuery::default()
        },
    );
    assert_eq!(page.lines.len(), 5);
}

#[tokio::test]
async fn past_the_rate_lines_are_dropped_and_one_marker_says_how_many() {
    let (_dir, logs) = store();
    logs.configure(LogsConfig {
        lines_per_second: 1,
        burst: 3,
        ..LogsConfig::default()
    });
    let input: String = (0..10).map(|idx| format!("line {idx}\n")).collect();
    print(&logs, "loud", "stdout", input.as_bytes()).await;
    let lines = logs.tail("t", "loud", None);
    let messages: Vec<&str> = lines.iter().map(|line| line.message.as_str()).collect();
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert_eq!(messages[..3], ["line 0", "line 1", "line 2"]);
    assert_eq!(lines[3].stream, PLATFORM_STREAM);
    assert_eq!(
        messages[3],
        "toolforge: 7 lines of output were dropped: the tool's jobs printed more than 1 lines per second"
    );
    assert_eq!(lines[3].pod, "loud-0");
}

#[tokio::test]
async fn a_flood_gets_one_marker_per_recovery_not_one_per_refilled_token() {
    let (_dir, logs) = store();
    logs.configure(LogsConfig {
        lines_per_second: 100,
        burst: 100,
        ..LogsConfig::default()
    });
    let flood = "x\n".repeat(5000);
    print(&logs, "loud", "stdout", flood.as_bytes()).await;
    let lines = logs.tail("t", "loud", None);
    let n_markers = lines
        .iter()
        .filter(|line| line.stream == PLATFORM_STREAM)
        .count();
    let n_kept = lines.len() - n_markers;
    // The burst, then per recovery (a second) a marker and up to a second's worth.
    assert!(n_kept >= 100, "{n_kept}");
    assert!(
        n_markers <= 1 + n_kept / 100,
        "{n_markers} markers, {n_kept} lines"
    );
    let dropped: usize = lines
        .iter()
        .filter(|line| line.stream == PLATFORM_STREAM)
        .map(|line| {
            line.message
                .split(' ')
                .nth(1)
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(dropped + n_kept, 5000);
}

#[tokio::test]
async fn a_tool_never_keeps_more_than_its_retention_size_and_drops_the_oldest_first() {
    let (dir, logs) = store();
    let config = LogsConfig {
        lines_per_second: 1_000_000,
        burst: 1_000_000,
        retention_size: 64 * 1024,
        ..LogsConfig::default()
    };
    logs.configure(config);
    let line = format!("{}\n", "z".repeat(200));
    for round in 0..20 {
        print(&logs, "a", "stdout", line.repeat(100).as_bytes()).await;
        print(&logs, "b", "stderr", format!("round {round}\n").as_bytes()).await;
        let size: u64 = std::fs::read_dir(dir.path().join("t"))
            .unwrap()
            .map(|entry| entry.unwrap().metadata().unwrap().len())
            .sum();
        assert!(size <= config.retention_size, "round {round}: {size} bytes");
    }
    let tail = logs.tail("t", "a", None);
    assert!(!tail.is_empty());
    assert!(tail.len() < 2000);
    // The newest lines are kept.
    let b = logs.tail("t", "b", None);
    assert_eq!(b.last().unwrap().message, "round 19");
}

#[tokio::test]
async fn the_sweep_removes_files_older_than_the_retention_age_even_of_deleted_jobs() {
    let (dir, logs) = store();
    print(&logs, "gone", "stdout", b"old\n").await;
    logs.configure(LogsConfig {
        retention_age: Duration::from_secs(3600),
        ..LogsConfig::default()
    });
    logs.sweep_once(SystemTime::now());
    assert!(logs.has_logs("t", "gone"));
    logs.sweep_once(SystemTime::now() + Duration::from_secs(7200));
    assert!(!logs.has_logs("t", "gone"));
    assert!(!dir.path().join("t").exists());
}

#[tokio::test]
async fn pages_return_every_line_exactly_once_in_both_orders_while_lines_are_appended() {
    let (_dir, logs) = store();
    for idx in 0..25 {
        let job = if idx % 2 == 0 { "even" } else { "odd" };
        print(&logs, job, "stdout", format!("{idx}\n").as_bytes()).await;
    }
    for order in [Order::OldestFirst, Order::NewestFirst] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = logs.query(
                "t",
                &LogQuery {
                    order,
                    limit: 4,
                    after,
                    ..LogQuery::default()
                },
            );
            // Appended lines come after everything in oldest-first order, and never
            // appear in a newest-first walk that started before them.
            print(&logs, "late", "stdout", b"late\n").await;
            let Some(last) = page.lines.last() else { break };
            after = Some(last.seq);
            seen.extend(page.lines.iter().map(|line| line.message.clone()));
            if !page.more && order == Order::NewestFirst {
                break;
            }
            if seen.len() > 200 {
                break;
            }
        }
        let numbers: Vec<&str> = seen
            .iter()
            .map(String::as_str)
            .filter(|m| *m != "late")
            .collect();
        let mut expected: Vec<String> = (0..25).map(|idx| idx.to_string()).collect();
        if order == Order::NewestFirst {
            expected.reverse();
        }
        assert_eq!(numbers, expected, "{order:?}");
    }
    let only_odd = logs.query(
        "t",
        &LogQuery {
            job: Some("odd".to_owned()),
            contains: Some("1".to_owned()),
            order: Order::OldestFirst,
            limit: 100,
            ..LogQuery::default()
        },
    );
    let messages: Vec<&str> = only_odd.lines.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(messages, ["1", "11", "13", "15", "17", "19", "21"]);
    let first = &logs.tail("t", "odd", None)[0];
    let window = logs.query(
        "t",
        &LogQuery {
            since: Some(first.seq),
            until: Some(first.seq + 1),
            limit: 100,
            ..LogQuery::default()
        },
    );
    assert_eq!(window.lines, std::slice::from_ref(first));
}
