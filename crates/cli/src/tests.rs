//! Unit tests of argument validation and of how errors are reported.

use anyhow::Context;
use api_client::Error;
use api_types::envelope::Messages;
use clap::Parser;
use expect_test::{Expect, expect};

use crate::args::{Args, ArgsError, Command, LowArgs};
use crate::report;

fn parse(argv: &[&str]) -> Result<Args, ArgsError> {
    let low = LowArgs::try_parse_from(argv).expect("clap accepts the arguments");
    Args::from_low(low)
}

#[test]
fn global_flags_are_accepted_before_and_after_the_sub_command() {
    for argv in [
        &[
            "toolforge",
            "--tool",
            "other",
            "--api-url",
            "https://x",
            "whoami",
        ][..],
        &[
            "toolforge",
            "whoami",
            "--tool",
            "other",
            "--api-url",
            "https://x",
        ][..],
    ] {
        let args = parse(argv).unwrap();
        assert_eq!(args.overrides.tool.as_deref(), Some("other"));
        assert_eq!(args.overrides.api_url.as_deref(), Some("https://x"));
        assert_eq!(args.command, Command::Whoami);
        assert!(!args.debug);
    }
    assert!(parse(&["toolforge", "-d", "whoami"]).unwrap().debug);
}

#[test]
fn the_command_groups_of_later_issues_take_any_arguments_and_are_not_available() {
    let cases = [
        (&["toolforge", "build", "start", "https://g"][..], "build"),
        (&["toolforge", "components"][..], "components"),
    ];
    for (argv, group) in cases {
        assert_eq!(parse(argv).unwrap().command, Command::NotAvailable(group));
    }
    let Command::Webservice(webservice) =
        parse(&["toolforge", "webservice", "--backend=kubernetes", "start"])
            .unwrap()
            .command
    else {
        panic!("toolforge webservice is a command of its own");
    };
    assert_eq!(webservice.action, crate::webservice::Action::Start);
    assert_eq!(
        parse(&["toolforge", "webservice", "python3.11", "begin"])
            .unwrap_err()
            .to_string(),
        "toolforge webservice: argument ACTION: invalid choice: 'begin' (choose from 'start', 'stop', 'status', 'restart', 'shell', 'logs')"
    );
}

#[test]
fn an_empty_or_slashed_tool_and_an_empty_api_url_are_refused() {
    assert_eq!(
        parse(&["toolforge", "--tool", "", "whoami"])
            .unwrap_err()
            .to_string(),
        "--tool '' is not a tool name (empty, or it holds a '/')"
    );
    assert!(parse(&["toolforge", "--tool", "a/b", "whoami"]).is_err());
    assert_eq!(
        parse(&["toolforge", "--api-url", "", "whoami"]).unwrap_err(),
        ArgsError::EmptyApiUrl
    );
}

#[test]
fn version_is_printed_as_toolforge_and_the_version() {
    let err = LowArgs::try_parse_from(["toolforge", "--version"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("toolforge {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// Reports `err` and renders standard output, standard error and the exit status.
#[track_caller]
fn check_report(err: anyhow::Error, debug: bool, expected: Expect) {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let code = report(
        &err,
        debug,
        crate::ErrorStyle::PLAIN,
        &mut stdout,
        &mut stderr,
    );
    expected.assert_eq(&format!(
        "exit: {code:?}\nstdout:\n{}stderr:\n{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    ));
}

fn user_error() -> anyhow::Error {
    let err = Error::User {
        status: 404,
        message: "Job 'x' does not exist".to_owned(),
        messages: Messages {
            info: vec!["try `toolforge jobs list`".to_owned()],
            warning: vec!["beta".to_owned()],
            error: Vec::new(),
        },
    };
    anyhow::Error::new(err).context("while deleting job x")
}

#[test]
fn a_user_error_shows_its_context_messages_then_the_message_and_exits_1() {
    check_report(
        user_error(),
        false,
        expect![[r#"
            exit: ExitCode(unix_exit_status(1))
            stdout:
            try `toolforge jobs list`
            stderr:
            Warning: beta
            ERROR: Job 'x' does not exist
        "#]],
    );
}

#[test]
fn debug_adds_what_the_command_was_doing() {
    check_report(
        user_error(),
        true,
        expect![[r#"
            exit: ExitCode(unix_exit_status(1))
            stdout:
            try `toolforge jobs list`
            stderr:
            Warning: beta
            ERROR: while deleting job x: Job 'x' does not exist
        "#]],
    );
}

#[test]
fn a_configuration_error_shows_its_causes_and_exits_1() {
    let err = Error::ConfigRead {
        path: "/etc/toolforge/common.yaml".into(),
        source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
    };
    check_report(
        anyhow::Error::new(err).context("while reading the configuration files"),
        false,
        expect![[r#"
            exit: ExitCode(unix_exit_status(1))
            stdout:
            stderr:
            ERROR: cannot read config file /etc/toolforge/common.yaml: permission denied
        "#]],
    );
}

#[test]
fn an_unavailable_service_exits_2_with_the_report_line() {
    let err = Error::ServiceDown {
        service: "jobs",
        url: "https://h/jobs/v1/tool/t/jobs/".to_owned(),
        status: Some(503),
        source: None,
    };
    check_report(
        anyhow::Error::new(err),
        false,
        expect![[r#"
            exit: ExitCode(unix_exit_status(2))
            stdout:
            stderr:
            ERROR: The jobs service seems to be down – please retry in a few minutes.
            ERROR: Please report this issue to the Toolforge admins if it persists: https://w.wiki/6Zuu
        "#]],
    );
}

#[test]
fn an_error_outside_the_api_client_exits_1_with_its_chain() {
    let err: anyhow::Result<()> = Err(std::io::Error::other("disk on fire").into());
    check_report(
        err.context("while writing the dump").unwrap_err(),
        false,
        expect![[r#"
            exit: ExitCode(unix_exit_status(1))
            stdout:
            stderr:
            ERROR: while writing the dump: disk on fire
        "#]],
    );
}

#[test]
fn a_broken_pipe_exits_0_silently() {
    let err = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        .context("while printing");
    check_report(
        err,
        false,
        expect![[r#"
            exit: ExitCode(unix_exit_status(0))
            stdout:
            stderr:
        "#]],
    );
}

/// As [`check_report`], in the jobs client's style.
#[track_caller]
fn check_jobs_report(err: anyhow::Error, expected: Expect) {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let code = report(
        &err,
        false,
        crate::ErrorStyle::JOBS,
        &mut stdout,
        &mut stderr,
    );
    expected.assert_eq(&format!(
        "exit: {code:?}\nstdout:\n{}stderr:\n{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr).replace('\x1b', "<ESC>")
    ));
}

#[test]
fn jobs_errors_are_labelled_as_the_official_jobs_client_labels_them() {
    check_jobs_report(
        user_error(),
        expect![[r#"
            exit: ExitCode(unix_exit_status(1))
            stdout:
            try `toolforge jobs list`
            stderr:
            Warning: beta
            <ESC>[1;31mERROR<ESC>[1;0m: Job 'x' does not exist
        "#]],
    );
    let down = Error::ServiceDown {
        service: "jobs",
        url: "https://h/jobs/v1/tool/t/jobs/".to_owned(),
        status: None,
        source: None,
    };
    check_jobs_report(
        anyhow::Error::new(down),
        expect![[r#"
            exit: ExitCode(unix_exit_status(2))
            stdout:
            stderr:
            <ESC>[1;31mERROR<ESC>[1;0m: TjfCliError: The jobs service seems to be down – please retry in a few minutes.
            <ESC>[1;31mERROR<ESC>[1;0m: Please report this issue to the Toolforge admins if it persists: https://w.wiki/6Zuu
        "#]],
    );
    check_jobs_report(
        anyhow::Error::new(crate::Failure::User(
            "--port is only valid for continuous jobs".to_owned(),
        )),
        expect![[r#"
            exit: ExitCode(unix_exit_status(1))
            stdout:
            stderr:
            <ESC>[1;31mERROR<ESC>[1;0m: --port is only valid for continuous jobs
        "#]],
    );
    check_jobs_report(
        anyhow::Error::new(crate::Failure::internal_message(
            "ToolforgeError: Failed to format job table",
        )),
        expect![[r#"
            exit: ExitCode(unix_exit_status(2))
            stdout:
            stderr:
            <ESC>[1;31mERROR<ESC>[1;0m: ToolforgeError: Failed to format job table
            <ESC>[1;31mERROR<ESC>[1;0m: Please report this issue to the Toolforge admins if it persists: https://w.wiki/6Zuu
        "#]],
    );
}

#[test]
fn jobs_sub_commands_parse_into_the_jobs_command() {
    let args = parse(&["toolforge", "jobs", "list", "-l"]).unwrap();
    assert_eq!(
        args.command,
        Command::Jobs(crate::jobs::JobsCommand::List {
            output: crate::jobs::ListOutput::Normal,
            long: true,
        })
    );
    assert!(LowArgs::try_parse_from(["toolforge", "jobs"]).is_err());
}
