//! The formats against what Python's `tabulate` 0.9 printed for the same input.
//!
//! `cases.json` is written by `make_cases.py` (run it with the official clients' venv
//! python, which has the `tabulate` the jobs client uses); add a case there, rerun it.

use crate::tabulate::{Format, tabulate};

#[derive(serde::Deserialize)]
struct Case {
    format: String,
    headers: Vec<String>,
    rows: Vec<Vec<serde_json::Value>>,
    expected: String,
}

#[test]
fn every_case_prints_what_python_tabulate_printed() {
    let cases: Vec<Case> =
        serde_json::from_str(include_str!("cases.json")).expect("cases.json is valid");
    assert!(cases.len() > 10);
    for case in cases {
        let format = match case.format.as_str() {
            "pretty" => Format::Pretty,
            "grid" => Format::Grid,
            "simple" => Format::Simple,
            other => panic!("unknown format {other}"),
        };
        let got = tabulate(&case.rows, &case.headers, format);
        assert_eq!(
            got, case.expected,
            "{} {:?} {:?}\ngot:\n{got}\nexpected:\n{}",
            case.format, case.headers, case.rows, case.expected
        );
    }
}

#[test]
fn no_rows_and_no_headers_is_an_empty_string() {
    assert_eq!(tabulate(&[], &[], Format::Pretty), "");
}
