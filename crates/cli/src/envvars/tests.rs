//! Unit tests of `toolforge envvars`: masking, tables, JSON, prompts' decisions and errors.

use expect_test::{Expect, expect};
use serde_json::json;

use crate::envvars::plain_table::{format_g, plain_table, splitlines};
use crate::envvars::prompt::{Answer, ValueSource, delete_confirmed, value_answer, value_source};
use crate::envvars::{ListDisplay, Out, list_rows, py_json, truncated};

#[track_caller]
fn check_table(headers: &[&str], rows: &[&[&str]], expected: Expect) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| (*cell).to_owned()).collect())
        .collect();
    // `|` marks where lines begin and end, to show the spaces there.
    let table = plain_table(headers, &rows, false);
    let shown: String = table.lines().map(|line| format!("|{line}|\n")).collect();
    expected.assert_eq(&shown);
}

#[test]
fn tables_are_laid_out_as_tabulate_plain_lays_them_out() {
    // E01, E02, E03 (the trailing newline of a value from stdin is stripped).
    check_table(
        &["name", "value"],
        &[],
        expect![[r#"
            |name    value|
        "#]],
    );
    check_table(
        &["name", "value"],
        &[&["MY_VAR", "secret-value"]],
        expect![[r#"
            |name    value|
            |MY_VAR  secret-value|
        "#]],
    );
    check_table(
        &["name", "value"],
        &[&["OTHER_VAR", "from-stdin\n"]],
        expect![[r#"
            |name       value|
            |OTHER_VAR  from-stdin|
        "#]],
    );
    // Y07: an empty value leaves nothing after the name.
    check_table(
        &["name", "value"],
        &[&["EMPTY_VAR", ""]],
        expect![[r#"
            |name       value|
            |EMPTY_VAR|
        "#]],
    );
    // E12: numbers are right-aligned, under right-aligned headers.
    check_table(
        &["quota", "used", "available"],
        &[&["128", "3", "125"]],
        expect![[r#"
            |  quota    used    available|
            |    128       3          125|
        "#]],
    );
}

#[test]
fn number_looking_values_are_aligned_and_formatted_as_tabulate_does() {
    // All integers: right-aligned, whitespace kept inside the column.
    check_table(
        &["name", "value"],
        &[&["PORT", "8000"], &["WORKERS", "4"]],
        expect![[r#"
            |name       value|
            |PORT        8000|
            |WORKERS        4|
        "#]],
    );
    // Floats are re-formatted with "g" and aligned on the point.
    check_table(
        &["name", "value"],
        &[&["RATIO", "1.50"], &["BIG", "1e5"], &["TINY", "0.00001"]],
        expect![[r#"
            |name         value|
            |RATIO        1.5|
            |BIG     100000|
            |TINY         1e-05|
        "#]],
    );
    // One text cell makes the whole column text, left-aligned and as given.
    check_table(
        &["name", "value"],
        &[
            &["RATIO", "1.50"],
            &["HOST", "db.example"],
            &["FLAG", "True"],
        ],
        expect![[r#"
            |name    value|
            |RATIO   1.50|
            |HOST    db.example|
            |FLAG    True|
        "#]],
    );
}

#[test]
fn values_with_newlines_are_spread_over_lines() {
    check_table(
        &["name", "value"],
        &[&["CERT", "line one\nline two\n"], &["MY_VAR", "x"]],
        expect![[r#"
            |name    value|
            |CERT    line one|
            |        line two|
            |MY_VAR  x|
        "#]],
    );
}

#[test]
fn edge_cases_match_python_tabulate() {
    // Each expectation is what tabulate 0.9 printed for the same rows.
    check_table(
        &["name", "value"],
        &[&["A", " 5\n"], &["B", "12"]],
        expect![[r#"
            |name      value|
            |A             5|
            |B            12|
        "#]],
    );
    check_table(
        &["name", "value"],
        &[&["A", "a\r\nb"], &["B", ""]],
        expect![[r#"
            |name    value|
            |A       a|
            |        b|
            |B|
        "#]],
    );
    check_table(
        &["name", "value"],
        &[&["A", "1_000"], &["B", " 7 "]],
        expect![[r#"
            |name      value|
            |A         1_000|
            |B            7|
        "#]],
    );
    check_table(
        &["name", "value"],
        &[&["A", "inf"], &["B", "1e999"]],
        expect![[r#"
            |name    value|
            |A       inf|
            |B       1e999|
        "#]],
    );
}

#[test]
fn headers_are_bold_on_a_terminal() {
    let table = plain_table(&["name", "value"], &[], true);
    assert_eq!(table, "\x1b[1mname\x1b[0m    \x1b[1mvalue\x1b[0m");
}

#[test]
fn python_helpers_behave_as_python() {
    assert_eq!(splitlines("a\r\nb\rc\n"), ["a", "b", "c"]);
    assert_eq!(splitlines(""), Vec::<&str>::new());
    assert_eq!(splitlines("\n"), [""]);
    for (value, shown) in [
        (1.5, "1.5"),
        (100000.0, "100000"),
        (1000000.0, "1e+06"),
        (123456789.0, "1.23457e+08"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.0, "-2"),
    ] {
        assert_eq!(format_g(value), shown, "{value}");
    }
}

#[test]
fn list_masks_every_value_unless_shown_and_truncates_only_when_asked() {
    let envvars = [
        json!({"name": "LONG_VAR", "value": "x".repeat(60)}),
        json!({"name": "MY_VAR", "value": "secret-value"}),
        json!({"name": "EMPTY_VAR", "value": ""}),
    ];
    let rows = |show_values, truncate| {
        list_rows(
            &envvars,
            ListDisplay {
                show_values,
                truncate,
            },
        )
        .unwrap()
    };
    let masked = rows(false, false);
    assert!(masked.iter().all(|row| row[1] == "****************"));
    assert_eq!(rows(false, true), masked);
    assert_eq!(rows(true, false)[0][1], "x".repeat(60));
    assert_eq!(rows(true, true)[0][1], format!("{}...", "x".repeat(50)));
    assert_eq!(rows(true, true)[1][1], "secret-value");
    assert_eq!(rows(true, true)[2][1], "");
    // Exactly 50 characters is "long" (`>=`), 49 is not; characters, not bytes.
    assert_eq!(
        truncated(&"é".repeat(50), true),
        format!("{}...", "é".repeat(50))
    );
    assert_eq!(truncated(&"é".repeat(49), true), "é".repeat(49));
}

#[test]
fn json_is_printed_as_python_json_dumps_with_indent_4() {
    let body = json!({
        "quota": {"used": 3, "quota": 128},
        "messages": {"warning": [], "error": [], "info": ["héllo \"q\"\n😀"]},
        "extra": {},
    });
    expect![[r#"
        {
            "quota": {
                "quota": 128,
                "used": 3
            },
            "messages": {
                "info": [
                    "h\u00e9llo \"q\"\n\ud83d\ude00"
                ],
                "warning": [],
                "error": []
            },
            "extra": {}
        }"#]]
    .assert_eq(&py_json::dumps(&body));
}

#[test]
fn create_takes_the_argument_else_prompts_on_a_terminal_else_reads_stdin() {
    assert_eq!(value_source(Some("v"), true), ValueSource::Argument("v"));
    assert_eq!(value_source(Some(""), false), ValueSource::Argument(""));
    assert_eq!(value_source(None, true), ValueSource::Prompt);
    assert_eq!(value_source(None, false), ValueSource::Stdin);
    assert_eq!(
        value_answer(Some("s3cret")),
        Answer::Take("s3cret".to_owned())
    );
    assert_eq!(value_answer(Some("")), Answer::AskAgain);
    assert_eq!(value_answer(None), Answer::Abort);
}

#[test]
fn delete_is_confirmed_only_by_the_official_yes_words() {
    for yes in ["y", "Y", "yes", "YES", "Yes", "true", "True", "1"] {
        assert!(delete_confirmed(yes), "{yes:?}");
    }
    for no in [
        "", "n", "no", "N", "0", "false", " y", "y ", "yy", "ok", "sure",
    ] {
        assert!(!delete_confirmed(no), "{no:?}");
    }
}

#[track_caller]
fn check_report(err: anyhow::Error, debug: bool, expected: Expect) {
    let mut out = Out {
        stdout: Vec::new(),
        stderr: Vec::new(),
        stdout_styled: false,
        stderr_styled: false,
    };
    out.report(&err, debug).unwrap();
    expected.assert_eq(&format!(
        "stdout:\n{}stderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ));
}

#[test]
fn errors_are_printed_on_stdout_as_the_official_client_prints_them() {
    use api_client::Error;
    use api_types::envelope::Messages;

    // X24: info and warnings first, each error line ends with a newline.
    let refused = Error::User {
        status: 404,
        message: "Envvar NOPE_VAR does not exist\nsecond line".to_owned(),
        messages: Messages {
            info: vec!["i1".to_owned()],
            warning: vec!["w1".to_owned()],
            error: Vec::new(),
        },
    };
    check_report(
        anyhow::Error::new(refused).context("while getting envvar NOPE_VAR"),
        false,
        expect![[r#"
            stdout:
            i1
            Error: Envvar NOPE_VAR does not exist
            second line

            stderr:
            Warning: w1
        "#]],
    );
    let failed = Error::Server {
        status: 500,
        message: "mock failure".to_owned(),
        messages: Messages::default(),
    };
    check_report(
        failed.into(),
        false,
        expect![[r#"
            stdout:
            EnvvarsClientError: mock failure

            Please report this issue to the Toolforge admins if it persists: https://w.wiki/6Zuu
            stderr:
        "#]],
    );
    let down = Error::ServiceDown {
        service: "envvars",
        url: "https://api/envvars/v1/tool/t/envvars".to_owned(),
        status: Some(503),
        source: None,
    };
    check_report(
        down.into(),
        false,
        expect![[r#"
            stdout:
            EnvvarsClientError: The envvars service seems to be down – please retry in a few minutes.
            Please report this issue to the Toolforge admins if it persists: https://w.wiki/6Zuu
            stderr:
        "#]],
    );
    let missing = crate::envvars::field(&json!({}), "envvars").unwrap_err();
    check_report(
        missing.context("while listing envvars"),
        true,
        expect![[r#"
            stdout:
            KeyError: 'envvars'
            stderr:
            ERROR: while listing envvars: 'envvars'
        "#]],
    );
}
