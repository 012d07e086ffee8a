//! `dump` against what PyYAML wrote for the same jobs.
//!
//! `cases.json` is written by `make_cases.py` (run it with the official clients' venv
//! python, which has the PyYAML the jobs client uses); add a case there, rerun it.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::jobs::yaml_dump::dump;

#[derive(serde::Deserialize)]
struct Case {
    jobs: Vec<BTreeMap<String, Value>>,
    expected: String,
}

#[test]
fn every_case_is_written_as_pyyaml_wrote_it() {
    let cases: Vec<Case> =
        serde_json::from_str(include_str!("cases.json")).expect("cases.json is valid");
    for case in cases {
        let got = dump(&case.jobs);
        let expected_lines: Vec<&str> = case.expected.lines().collect();
        for (idx, line) in got.lines().enumerate() {
            assert_eq!(
                Some(&line),
                expected_lines.get(idx),
                "line {idx} of\n{got}\nexpected\n{}",
                case.expected
            );
        }
        assert_eq!(got, case.expected);
    }
}

#[test]
fn the_output_reads_back_as_the_same_values() {
    let cases: Vec<Case> =
        serde_json::from_str(include_str!("cases.json")).expect("cases.json is valid");
    let jobs = &cases[1].jobs;
    let read: Vec<BTreeMap<String, serde_norway::Value>> =
        serde_norway::from_str(&dump(jobs)).expect("valid YAML");
    for (job, back) in jobs.iter().zip(&read) {
        let command = job["command"].as_str().unwrap();
        // YAML 1.2 reads a few YAML 1.1 spellings differently; the strings round-trip.
        if let serde_norway::Value::String(text) = &back["command"] {
            assert_eq!(text, command);
        }
    }
}
