//! Unit tests of following a job's log: no line twice at the seam between stored and
//! live lines, no line lost when a follower falls behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::logs::{Follower, LogLine, Logs};

fn store() -> (tempfile::TempDir, Arc<Logs>) {
    let dir = tempfile::tempdir().unwrap();
    let logs = Arc::new(Logs::new(dir.path().to_path_buf()));
    (dir, logs)
}

fn write(logs: &Logs, range: std::ops::Range<usize>) {
    for n in range {
        logs.offer("t", "j", "j-0", "stdout", format!("line {n}").as_bytes());
    }
}

/// Reads lines until the one saying `line {last}`.
async fn read_until(follower: &mut Follower, last: usize) -> Vec<LogLine> {
    let end = format!("line {last}");
    let mut lines = Vec::new();
    while let Some(line) = follower.next().await {
        let done = line.message == end;
        lines.push(line);
        if done {
            break;
        }
    }
    lines
}

/// Every line from `line {first}` to the last one, once each, in order.
fn assert_consecutive(lines: &[LogLine], first: usize) {
    let messages: Vec<&str> = lines.iter().map(|line| line.message.as_str()).collect();
    for (idx, message) in messages.iter().enumerate() {
        assert_eq!(
            *message,
            format!("line {}", first + idx),
            "line {idx} of {} out of place: {:?}",
            messages.len(),
            &messages[idx.saturating_sub(3)..(idx + 3).min(messages.len())]
        );
    }
    assert!(
        lines.windows(2).all(|pair| pair[0].seq < pair[1].seq),
        "seq not strictly increasing"
    );
}

#[tokio::test]
async fn a_line_written_between_subscribing_and_reading_the_stored_lines_is_sent_once() {
    let (_dir, logs) = store();
    write(&logs, 0..3);
    let mut follower = logs.follow_from_with("t", "j", None, || write(&logs, 3..6));
    write(&logs, 6..8);
    let lines = read_until(&mut follower, 7).await;
    assert_consecutive(&lines, 0);
    assert_eq!(lines.len(), 8, "lines missing or sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_starting_while_a_job_writes_get_every_line_once_and_in_order() {
    const LINES: usize = 4000;
    let (_dir, logs) = store();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (logs, done) = (logs.clone(), done.clone());
        std::thread::spawn(move || {
            write(&logs, 0..LINES);
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut followers = Vec::new();
    // Followers start all along the writes, each reading as the lines come.
    while !done.load(Ordering::SeqCst) && followers.len() < 64 {
        let mut follower = logs.follow_from("t", "j", None);
        followers.push(tokio::spawn(async move {
            read_until(&mut follower, LINES - 1).await
        }));
        tokio::task::yield_now().await;
    }
    writer.join().unwrap();
    assert!(followers.len() > 1, "the writer finished too early to race");
    for follower in followers {
        let lines = follower.await.unwrap();
        assert_eq!(lines.len(), LINES, "lines missing or sent twice");
        assert_consecutive(&lines, 0);
    }
}

#[tokio::test]
async fn a_follower_that_falls_behind_reads_the_missed_lines_back_and_loses_none() {
    // Three times the channel's capacity, written while the follower does not read.
    const LINES: usize = 3000;
    let (_dir, logs) = store();
    write(&logs, 0..10);
    let mut follower = logs.follow_from("t", "j", Some(4));
    write(&logs, 10..LINES);
    let lines = read_until(&mut follower, LINES - 1).await;
    assert_eq!(lines.len(), LINES - 6, "lines missing or sent twice");
    assert_consecutive(&lines, 6);
    // Live again after catching up.
    write(&logs, LINES..LINES + 2);
    let more = read_until(&mut follower, LINES + 1).await;
    assert_consecutive(&more, LINES);
    assert!(more[0].seq > lines[lines.len() - 1].seq);
}

#[tokio::test]
async fn a_follower_starts_with_the_requested_tail_and_skips_live_lines_it_already_read() {
    let (_dir, logs) = store();
    write(&logs, 0..5);
    let mut follower = logs.follow_from("t", "j", Some(2));
    write(&logs, 5..7);
    let lines = read_until(&mut follower, 6).await;
    assert_consecutive(&lines, 3);
    assert_eq!(lines.len(), 4);
    let mut empty = logs.follow_from("t", "other", Some(0));
    logs.offer("t", "other", "other-0", "stdout", b"line 0");
    assert_consecutive(&read_until(&mut empty, 0).await, 0);
}
