//! Issue 5's acceptance: `schedule_actual` equals Python's for 1,000 random tool and job names.
//!
//! The reference is real Python: a few lines that seed Python's own `random` module with
//! `"<tool> <job>"` and draw each macro's fields with `random.randint`, as the original jobs-api
//! (`tjf/core/cron.py`) does. All names go to one `python3` process as JSON on stdin.

use std::io::Write;
use std::process::{Command, Stdio};

use jobs::pyrandom::Random;
use jobs::schedule::{MACROS, Schedule};

/// The original's expansion, reduced to its random calls: for each template field that is not
/// `*`, `random.randint(min, max)` with the field's range, in field order.
const PYTHON_ORACLE: &str = r#"
import json, random, sys
TEMPLATES = ["0 * * * *", "0 0 * * *", "0 0 * * 0", "0 0 1 * *", "0 0 1 1 *"]
RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]
out = []
for tool, job in json.load(sys.stdin):
    row = []
    for template in TEMPLATES:
        random.seed(f"{tool} {job}")
        parts = template.split(" ")
        row.append(" ".join(p if p == "*" else str(random.randint(*r)) for p, r in zip(parts, RANGES)))
    out.append(row)
json.dump(out, sys.stdout)
"#;

const N_RANDOM_NAMES: usize = 1_000;

#[test]
fn schedule_actual_of_every_macro_equals_pythons_for_1000_random_tool_and_job_names() {
    let test = "schedule_actual_of_every_macro_equals_pythons_for_1000_random_tool_and_job_names";
    let Some(python) = find_python() else {
        test_support::skip::prerequisite_missing(test, "no python3 on PATH nor /usr/bin/python3");
        return;
    };
    let names = names();
    let expected = run_python(&python, &names);
    assert_eq!(expected.len(), names.len());
    let mut n_compared = 0;
    for ((tool, job), python_row) in names.iter().zip(&expected) {
        let rust_row: Vec<String> = MACROS
            .iter()
            .map(|(name, _)| {
                Schedule::parse(tool, job, name)
                    .unwrap()
                    .schedule_actual()
                    .to_owned()
            })
            .collect();
        assert_eq!(&rust_row, python_row, "tool {tool:?}, job {job:?}");
        n_compared += rust_row.len();
    }
    assert_eq!(n_compared, names.len() * MACROS.len());
}

/// 1,000 valid names from a fixed seed (so a failure reproduces), plus the extremes.
fn names() -> Vec<(String, String)> {
    let mut random = Random::from_str_seed("schedule_python names");
    let mut names = vec![
        ("a".to_owned(), "0".to_owned()),
        ("z".repeat(32), "9".repeat(52)),
        ("a-b".to_owned(), "a--b".to_owned()),
        ("tool1".to_owned(), "x".to_owned()),
    ];
    while names.len() < N_RANDOM_NAMES {
        let tool_len = random.randint(1, 32).unwrap() as usize;
        let job_len = random.randint(1, 52).unwrap() as usize;
        let tool = name(&mut random, tool_len, b"abcdefghijklmnopqrstuvwxyz");
        let job = name(
            &mut random,
            job_len,
            b"abcdefghijklmnopqrstuvwxyz0123456789",
        );
        names.push((tool, job));
    }
    for (tool, job) in &names {
        assert!(is_tool_name(tool), "{tool:?}");
        assert!(is_job_name(job), "{job:?}");
    }
    names
}

/// A name of `len` characters: `first` then `[-a-z0-9]`, ending with `[a-z0-9]`.
fn name(random: &mut Random, len: usize, first: &[u8]) -> String {
    const INNER: &[u8] = b"-abcdefghijklmnopqrstuvwxyz0123456789";
    const LAST: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut name = String::with_capacity(len);
    name.push(char::from(*random.choice(first).unwrap()));
    for idx in 1..len {
        let alphabet = if idx == len - 1 { LAST } else { INNER };
        name.push(char::from(*random.choice(alphabet).unwrap()));
    }
    name
}

/// `^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$`
fn is_tool_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=32).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[bytes.len() - 1] != b'-'
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, at most 52 characters.
fn is_job_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=52).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

fn find_python() -> Option<String> {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .map(str::to_owned)
        .find(|python| {
            Command::new(python)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })
}

fn run_python(python: &str, names: &[(String, String)]) -> Vec<Vec<String>> {
    let mut child = Command::new(python)
        .args(["-c", PYTHON_ORACLE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let input = serde_json::to_vec(names).unwrap();
    // Python reads all of stdin before writing, so writing first cannot deadlock.
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}
