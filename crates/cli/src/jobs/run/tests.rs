//! `run`'s parsing, the client-side checks in the official order, and the request body.

use clap::Parser;
use expect_test::expect;

use crate::jobs::run::{Invalid, RunCommandLine};

#[track_caller]
fn parse(args: &[&str]) -> crate::jobs::run::RunArgs {
    let mut argv = vec!["x", "--command", "c", "--image", "bookworm"];
    argv.extend_from_slice(args);
    RunCommandLine::try_parse_from(argv)
        .unwrap_or_else(|err| panic!("{args:?}: {err}"))
        .run
}

#[track_caller]
fn body(args: &[&str]) -> String {
    serde_json::to_string(&parse(args).payload().expect("valid")).unwrap()
}

#[test]
fn the_body_has_every_key_in_the_official_order_with_nulls_and_defaults() {
    expect![[r#"{"name":"x","imagename":"bookworm","cmd":"c","filelog":true,"filelog_stdout":null,"filelog_stderr":null,"memory":null,"cpu":null,"emails":"none","retry":0,"continuous":false,"schedule":null,"replicas":null,"port":null,"health_check":null,"mount":"all"}"#]]
        .assert_eq(&body(&[]));
    expect![[r#"{"name":"x","imagename":"bookworm","cmd":"c","filelog":true,"filelog_stdout":"logs/x.out","filelog_stderr":"logs/x.err","memory":null,"cpu":null,"emails":"none","retry":2,"continuous":false,"schedule":"@daily","replicas":null,"port":null,"health_check":null,"mount":"all","timeout":300}"#]]
        .assert_eq(&body(&["--schedule", "@daily", "--timeout", "300", "--retry", "2", "-o", "logs/x.out", "-e", "logs/x.err", "--mount", "all"]));
    let web = RunCommandLine::try_parse_from([
        "web",
        "--command",
        "python3 -m http.server 8000",
        "--image",
        "tool-mytool/tool-mytool:latest",
        "--continuous",
        "--port",
        "8000",
        "--replicas",
        "2",
        "--health-check-http",
        "/healthz",
        "--cpu",
        "1",
        "--mem",
        "1Gi",
        "--emails",
        "onfailure",
    ])
    .unwrap()
    .run;
    // Byte for byte what the official client sent in transcript J04 (JSON separators aside).
    expect![[r#"{"name":"web","imagename":"tool-mytool/tool-mytool:latest","cmd":"python3 -m http.server 8000","filelog":false,"filelog_stdout":null,"filelog_stderr":null,"memory":"1Gi","cpu":"1","emails":"onfailure","retry":0,"continuous":true,"schedule":null,"replicas":2,"port":8000,"health_check":{"path":"/healthz","type":"http"},"mount":"none"}"#]]
        .assert_eq(&serde_json::to_string(&web.payload().unwrap()).unwrap());
}

#[test]
fn checks_fail_in_the_official_order_with_the_official_messages() {
    // Each case breaks its rule and every later one, so only the order makes it pass.
    let cases: [(&[&str], &str); 8] = [
        (
            &[
                "--health-check-http",
                "/h",
                "--port",
                "80",
                "--replicas",
                "2",
                "--mount",
                "none",
                "--timeout",
                "5",
            ],
            "Health checks are only supported for continuous jobs.",
        ),
        (
            &[
                "--continuous",
                "--health-check-http",
                "/h",
                "--mount",
                "none",
                "--timeout",
                "5",
            ],
            "--health-check-http requires --port to be set as well",
        ),
        (
            &[
                "--port",
                "80",
                "--replicas",
                "2",
                "--mount",
                "none",
                "--timeout",
                "5",
            ],
            "--port is only valid for continuous jobs",
        ),
        (
            &["--replicas", "2", "--mount", "none", "--timeout", "5"],
            "--replicas is only valid for continuous jobs",
        ),
        (
            &["--mount", "none", "--timeout", "5"],
            "Specifying --filelog requires --mount=all",
        ),
        (
            &["--no-filelog", "-e", "e.log", "--timeout", "5"],
            "Specifying --filelog-stdout or --filelog-stderr requires --filelog",
        ),
        (
            &["--timeout", "5"],
            "--timeout is only valid for scheduled jobs",
        ),
        (
            &["--filelog", "--mount", "none"],
            "Specifying --filelog requires --mount=all",
        ),
    ];
    for (args, message) in cases {
        assert_eq!(parse(args).payload(), Err(Invalid(message)), "{args:?}");
    }
    // Zero and empty values are Python-false: no rule applies to them.
    assert!(
        parse(&["--port", "0", "--replicas", "0", "--timeout", "0"])
            .payload()
            .is_ok()
    );
    assert!(parse(&["--health-check-script", ""]).payload().is_ok());
}

#[test]
fn build_service_images_default_to_no_file_log_and_no_mounts() {
    let args = RunCommandLine::try_parse_from([
        "bs",
        "--command",
        "web",
        "--image",
        "tool-a/tool-a:latest",
    ])
    .unwrap()
    .run;
    let payload = args.payload().unwrap();
    assert_eq!(payload.get("filelog"), Some(&serde_json::json!(false)));
    assert_eq!(payload.get("mount"), Some(&serde_json::json!("none")));
}

#[test]
fn argparse_rules_are_usage_errors() {
    for args in [
        &["--retry", "7"][..],
        &["--continuous", "--schedule", "* * * * *"],
        &["--wait", "--schedule", "@daily"],
        &["--filelog", "--no-filelog"],
        &["--health-check-script", "a", "--health-check-http", "/b"],
        &["--mount", "foo"],
        &["--emails", "sometimes"],
        &["--port", "eighty"],
    ] {
        let mut argv = vec!["x", "--command", "c", "--image", "bookworm"];
        argv.extend_from_slice(args);
        let err = RunCommandLine::try_parse_from(argv).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{args:?}");
    }
    assert_eq!(parse(&["--wait"]).wait, Some(600));
    assert_eq!(parse(&["--wait", "7"]).wait, Some(7));
    assert_eq!(parse(&[]).wait, None);
}

#[test]
fn publish_is_sent_only_when_given_and_needs_a_continuous_job_with_a_port() {
    expect![[r#"{"name":"x","imagename":"bookworm","cmd":"c","filelog":true,"filelog_stdout":null,"filelog_stderr":null,"memory":null,"cpu":null,"emails":"none","retry":0,"continuous":true,"schedule":null,"replicas":null,"port":8000,"health_check":null,"mount":"all","publish":true}"#]]
        .assert_eq(&body(&["--continuous", "--port", "8000", "--publish"]));
    let refused = |args: &[&str]| parse(args).payload().err().map(|Invalid(text)| text);
    assert_eq!(
        refused(&["--publish"]),
        Some("--publish is only valid for continuous jobs")
    );
    assert_eq!(
        refused(&["--continuous", "--publish"]),
        Some("--publish requires --port to be set as well")
    );
}
