//! Issue 8 with our CLI: `toolforge envvars …` against a real daemon, the scenarios of the
//! official client's transcripts (contract-transcripts/envvars.clean.txt).
//!
//! Our tool `mytool` and the official client's tool `officialtool` live on the same
//! daemon and get the same commands in the same order: where the official client is
//! installed, our standard output, standard error and exit status must equal its own.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use test_support::daemon::Daemon;
use test_support::skip::prerequisite_missing;

use crate::{Ran, daemon_with_tool, toolforge};

const REPORT_LINE: &str =
    "Please report this issue to the Toolforge admins if it persists: https://w.wiki/6Zuu";

/// The tool the official client acts as.
const OFFICIAL_TOOL: &str = "officialtool";

/// Runs `cmd` with `stdin` written to its standard input (then closed).
fn run_with_stdin(cmd: &mut Command, stdin: &str) -> Ran {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the command starts");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    // The command may end without reading (e.g. `delete --yes-im-sure`).
    let _ = pipe.write_all(stdin.as_bytes());
    drop(pipe);
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("the command ends");
    Ran {
        code: status.code(),
        stdout: String::from_utf8(stdout).expect("UTF-8 output"),
        stderr: String::from_utf8(stderr).expect("UTF-8 output"),
    }
}

/// `toolforge envvars <args>` with our binary, as `mytool`.
fn ours(daemon: &Daemon, args: &[&str], stdin: &str) -> Ran {
    let mut cmd = daemon.tool_command("mytool", toolforge());
    cmd.arg("envvars").args(args);
    run_with_stdin(&mut cmd, stdin)
}

/// A daemon with `mytool` and `officialtool`, both `alice`'s.
fn daemon_with_two_tools() -> Daemon {
    let daemon = daemon_with_tool();
    daemon.create_tool(OFFICIAL_TOOL, "alice");
    daemon
}

/// Runs `envvars <args>` with ours and, when `official` is set, with the official
/// umbrella client, and asserts they printed the same; returns ours.
#[track_caller]
fn same(daemon: &Daemon, official: bool, args: &[&str], stdin: &str) -> Ran {
    let ran = ours(daemon, args, stdin);
    if official {
        let mut cmd = daemon
            .official_client(OFFICIAL_TOOL, "toolforge")
            .expect("checked before");
        cmd.arg("envvars").args(args);
        let theirs = run_with_stdin(&mut cmd, stdin);
        assert_eq!(
            (&ran.stdout, &ran.stderr, ran.code),
            (&theirs.stdout, &theirs.stderr, theirs.code),
            "envvars {args:?} with stdin {stdin:?}: ours (left) and the official client's"
        );
    }
    ran
}

/// Whether the official client can run; reports the skip of its half when not.
fn official_client_available(test: &str) -> bool {
    match test_support::clients::clients_venv() {
        Ok(_) => true,
        Err(reason) => {
            prerequisite_missing(&format!("{test} (the official client's half)"), &reason);
            false
        }
    }
}

#[track_caller]
fn assert_printed(ran: &Ran, code: i32, stdout: &str) {
    assert_eq!(ran.stdout, stdout, "{ran:?}");
    assert_eq!(ran.stderr, "", "{ran:?}");
    assert_eq!(ran.code, Some(code), "{ran:?}");
}

const MESSAGES_JSON: &str = "    \"messages\": {\n        \"info\": [],\n        \"warning\": [],\n        \"error\": []\n    }";

#[test]
fn every_subcommand_prints_what_the_official_client_prints() {
    let test = "every_subcommand_prints_what_the_official_client_prints";
    let daemon = daemon_with_two_tools();
    let official = official_client_available(test);
    let run = |args: &[&str], stdin: &str| same(&daemon, official, args, stdin);
    let long = "x".repeat(60);

    // E01
    assert_printed(&run(&["list"], ""), 0, "name    value\n");
    // E02, E03 (the value from stdin keeps its newline), Y07, E04
    assert_printed(
        &run(&["create", "MY_VAR", "secret-value"], ""),
        0,
        "name    value\nMY_VAR  secret-value\n",
    );
    assert_printed(
        &run(&["create", "OTHER_VAR"], "from-stdin\n"),
        0,
        "name       value\nOTHER_VAR  from-stdin\n",
    );
    assert_printed(
        &run(&["create", "EMPTY_VAR"], ""),
        0,
        "name       value\nEMPTY_VAR\n",
    );
    assert_printed(
        &run(&["create", "LONG_VAR", &long, "--json"], ""),
        0,
        &format!(
            "{{\n    \"envvar\": {{\n        \"name\": \"LONG_VAR\",\n        \"value\": \"{long}\"\n    }},\n{MESSAGES_JSON}\n}}\n"
        ),
    );
    // Numbers are aligned right, multi-line values spread over lines, as tabulate does.
    assert_printed(
        &run(&["create", "PORT", "8000"], ""),
        0,
        "name      value\nPORT       8000\n",
    );
    assert_printed(
        &run(&["create", "MULTI_LINE"], "line one\nline two\n"),
        0,
        "name        value\nMULTI_LINE  line one\n            line two\n",
    );
    // E05, E06, E07
    assert_printed(
        &run(&["list"], ""),
        0,
        "name        value\n\
         EMPTY_VAR   ****************\n\
         LONG_VAR    ****************\n\
         MULTI_LINE  ****************\n\
         MY_VAR      ****************\n\
         OTHER_VAR   ****************\n\
         PORT        ****************\n",
    );
    assert_printed(
        &run(&["list", "--show-values", "--truncate"], ""),
        0,
        &format!(
            "name        value\n\
             EMPTY_VAR\n\
             LONG_VAR    {}...\n\
             MULTI_LINE  line one\n            \
             line two\n\
             MY_VAR      secret-value\n\
             OTHER_VAR   from-stdin\n\
             PORT        8000\n",
            "x".repeat(50)
        ),
    );
    let whole = run(&["list", "--show-values"], "");
    assert!(
        whole.stdout.contains(&format!("LONG_VAR    {long}\n")),
        "{whole:?}"
    );
    let ran = run(&["list", "--json"], "");
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stdout.starts_with(
            "{\n    \"envvars\": [\n        {\n            \"name\": \"EMPTY_VAR\",\n            \"value\": \"\"\n        },\n"
        ),
        "{ran:?}"
    );
    assert!(
        ran.stdout.contains(
            "            \"name\": \"MULTI_LINE\",\n            \"value\": \"line one\\nline two\\n\"\n"
        ),
        "{ran:?}"
    );
    assert!(
        ran.stdout
            .ends_with(&format!("    ],\n{MESSAGES_JSON}\n}}\n")),
        "{ran:?}"
    );
    // E08, E09, E10, E11
    assert_printed(
        &run(&["show", "MY_VAR"], ""),
        0,
        "name    value\nMY_VAR  secret-value\n",
    );
    assert_printed(&run(&["show", "MY_VAR", "--raw"], ""), 0, "secret-value");
    assert_printed(&run(&["show", "OTHER_VAR", "--raw"], ""), 0, "from-stdin\n");
    assert_printed(
        &run(&["show", "MY_VAR", "--json"], ""),
        0,
        &format!(
            "{{\n    \"envvar\": {{\n        \"name\": \"MY_VAR\",\n        \"value\": \"secret-value\"\n    }},\n{MESSAGES_JSON}\n}}\n"
        ),
    );
    assert_printed(
        &run(&["show", "NOPE_VAR"], ""),
        1,
        "Error: Envvar NOPE_VAR not found\n\n",
    );
    // E12, E13 (the daemon's quota is 100).
    assert_printed(
        &run(&["quota"], ""),
        0,
        "  quota    used    available\n    100       6           94\n",
    );
    assert_printed(
        &run(&["quota", "--json"], ""),
        0,
        &format!(
            "{{\n    \"quota\": {{\n        \"quota\": 100,\n        \"used\": 6\n    }},\n{MESSAGES_JSON}\n}}\n"
        ),
    );
    // E14, E15, E16, E17, and the end of input at the prompt.
    let question = "Are you sure you want to delete MY_VAR? (this can't be undone) [yN]: ";
    assert_printed(
        &run(&["delete", "MY_VAR"], "n\n"),
        1,
        &format!("{question}Aborting at user's request\n"),
    );
    assert_printed(
        &run(&["delete", "MY_VAR"], "\n"),
        1,
        &format!("{question}Aborting at user's request\n"),
    );
    let ran = run(&["delete", "MY_VAR"], "");
    assert_eq!(
        (ran.stdout.as_str(), ran.stderr.as_str(), ran.code),
        (question, "Aborted!\n", Some(1))
    );
    assert_printed(
        &run(&["delete", "MY_VAR"], "YES\n"),
        0,
        &format!(
            "{question}Deleted MY_VAR, here is its last value: \nname    value\nMY_VAR  secret-value\n"
        ),
    );
    assert_printed(
        &run(&["delete", "OTHER_VAR", "--yes-im-sure"], ""),
        0,
        "Deleted OTHER_VAR, here is its last value: \nname       value\nOTHER_VAR  from-stdin\n",
    );
    assert_printed(
        &run(&["delete", "LONG_VAR", "--yes-im-sure", "--json"], ""),
        0,
        &format!(
            "{{\n    \"envvar\": {{\n        \"name\": \"LONG_VAR\",\n        \"value\": \"{long}\"\n    }},\n{MESSAGES_JSON}\n}}\n"
        ),
    );
    assert_printed(
        &run(&["delete", "MY_VAR", "--yes-im-sure"], ""),
        1,
        "Error: Envvar MY_VAR not found\n\n",
    );
    // E18, with our server's rules.
    let ran = run(&["create", "bad", "v"], "");
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stdout
            .starts_with("Error: Invalid envvar name 'bad', must match ^[A-Z][A-Z_0-9]{2,}"),
        "{ran:?}"
    );
    assert!(ran.stdout.ends_with("\n\n"), "{ran:?}");
    assert_printed(
        &run(&["list"], ""),
        0,
        "name        value\n\
         EMPTY_VAR   ****************\n\
         MULTI_LINE  ****************\n\
         PORT        ****************\n",
    );
}

#[test]
fn a_value_replaced_by_create_is_the_one_shown_and_counted_once() {
    let daemon = daemon_with_tool();
    assert_printed(
        &ours(&daemon, &["create", "MY_VAR", "first"], ""),
        0,
        "name    value\nMY_VAR  first\n",
    );
    assert_printed(
        &ours(&daemon, &["create", "MY_VAR"], "second"),
        0,
        "name    value\nMY_VAR  second\n",
    );
    assert_printed(
        &ours(&daemon, &["show", "MY_VAR", "--raw"], ""),
        0,
        "second",
    );
    let ran = ours(&daemon, &["quota"], "");
    assert!(ran.stdout.ends_with("      1           99\n"), "{ran:?}");
}

#[test]
fn an_unreachable_service_is_the_official_message_and_the_report_line_on_stdout() {
    let test = "an_unreachable_service_is_the_official_message_and_the_report_line_on_stdout";
    let daemon = daemon_with_two_tools();
    let official = official_client_available(test);
    let args = ["list"];
    let mut cmd = daemon.tool_command("mytool", toolforge());
    cmd.env("TOOL_TOOLFORGE_API_URL", "https://127.0.0.1:1")
        .arg("envvars")
        .args(args);
    let ran = run_with_stdin(&mut cmd, "");
    assert_printed(
        &ran,
        1,
        &format!(
            "EnvvarsClientError: The envvars service seems to be down – please retry in a few minutes.\n{REPORT_LINE}\n"
        ),
    );
    if official {
        let mut cmd = daemon
            .official_client(OFFICIAL_TOOL, "toolforge")
            .expect("checked before");
        cmd.env("TOOL_TOOLFORGE_API_URL", "https://127.0.0.1:1")
            .arg("envvars")
            .args(args);
        let theirs = run_with_stdin(&mut cmd, "");
        assert_eq!(
            (&ran.stdout, &ran.stderr, ran.code),
            (&theirs.stdout, &theirs.stderr, theirs.code)
        );
    }
}

#[test]
fn another_tools_envvars_are_refused_with_the_gateways_message() {
    let daemon = daemon_with_two_tools();
    let ran = ours(&daemon, &["list"], "");
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let mut cmd = daemon.tool_command("mytool", toolforge());
    cmd.args(["--tool", OFFICIAL_TOOL, "envvars", "list"]);
    let ran = run_with_stdin(&mut cmd, "");
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(ran.stdout.starts_with("Error: "), "{ran:?}");
    assert!(ran.stdout.ends_with("\n\n"), "{ran:?}");
    assert_eq!(ran.stderr, "", "{ran:?}");
}
