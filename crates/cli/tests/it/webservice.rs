//! `toolforge webservice` against a real daemon: the original's messages, streams and exit
//! statuses for bad input, and that bad input starts nothing. Webservices that really
//! serve through the front proxy are tested in `crates/toolforged/tests/it/webservice.rs`.

use test_support::daemon::Daemon;

use crate::{Ran, as_mytool, daemon_with_tool, run};

/// `toolforge webservice <args>` as `mytool`.
fn webservice(daemon: &Daemon, args: &[&str]) -> Ran {
    let mut full = vec!["webservice"];
    full.extend_from_slice(args);
    run(&mut as_mytool(daemon, &full))
}

/// What `toolforge webservice status` says when nothing runs.
const NOT_RUNNING: &str = "Your webservice is not running\n";

#[test]
fn an_unknown_type_lists_the_types_as_the_original_and_starts_nothing() {
    let daemon = daemon_with_tool();
    let ran = webservice(&daemon, &["--backend", "kubernetes", "python2", "start"]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert_eq!(ran.stdout, "");
    assert_eq!(ran.stderr, format!("type must be one of:\n{TYPES}\n"));
    let status = webservice(&daemon, &["--backend", "kubernetes", "status"]);
    assert_eq!(
        (status.code, status.stdout.as_str()),
        (Some(0), NOT_RUNNING)
    );
    assert!(
        !daemon.tool_home("mytool").join("service.manifest").exists(),
        "nothing recorded"
    );
}

/// The types of the built-in image catalog, as the original formats them.
const TYPES: &str = "buildservice
  * generic
  * node10 (DEPRECATED)
  * node12 (DEPRECATED)
  * node16
  * node18
  * node20
  * php7.3 (DEPRECATED)
  * php7.4
  * php8.2
  * php8.4
  * python3.11
  * python3.13
  * python3.7 (DEPRECATED)
  * python3.9";

#[test]
fn a_template_with_unknown_keys_names_them_and_the_allowed_keys_and_starts_nothing() {
    let daemon = daemon_with_tool();
    let home = daemon.tool_home("mytool");
    std::fs::write(
        home.join("service.template"),
        "type: generic\nport: 8080\nextra_args: [python3, -m, http.server]\ncommand: x\n",
    )
    .unwrap();
    let ran = webservice(&daemon, &["start"]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert_eq!(ran.stdout, "");
    let path = home.join("service.template");
    assert_eq!(
        ran.stderr,
        format!(
            "Your template file ({}) contains unknown keys: port, command\n  \
             allowed keys: backend, cpu, mem, replicas, type, extra_args, buildservice-image, mount\n",
            path.display()
        )
    );
    std::fs::remove_file(&path).unwrap();
    let status = webservice(&daemon, &["--backend", "kubernetes", "status"]);
    assert_eq!(status.stdout, NOT_RUNNING, "{status:?}");

    std::fs::write(home.join("other.yaml"), "replicas: none\n").unwrap();
    let ran = webservice(&daemon, &["--template", "other.yaml", "generic", "start"]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert_eq!(
        ran.stderr,
        "Your template file (other.yaml) contains errors:\n  \
         replicas: none is not a valid number of replicas (a whole number, at least 1)\n"
    );
    let ran = webservice(&daemon, &["--template", "missing.yaml", "status"]);
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert_eq!(
        ran.stderr,
        "ERROR: argument --template: can't open 'missing.yaml': No such file or directory (os error 2)\n"
    );
}

#[test]
fn bad_replicas_are_a_usage_error_naming_the_option() {
    let daemon = daemon_with_tool();
    for value in ["0", "two", "-1"] {
        let ran = webservice(&daemon, &["--replicas", value, "generic", "start"]);
        assert_eq!(ran.code, Some(2), "{ran:?}");
        assert_eq!(ran.stdout, "");
        assert_eq!(
            ran.stderr,
            format!(
                "error: invalid value '{value}' for '--replicas <N>': {value} is not a valid number of replicas (a whole number, at least 1)\n\n\
                 For more information, try '--help'.\n"
            ),
            "{value}"
        );
    }
}

#[test]
fn the_gridengine_backend_is_refused_and_a_missing_backend_warns_as_the_original() {
    let daemon = daemon_with_tool();
    let ran = webservice(&daemon, &["--backend", "gridengine", "php7.4", "start"]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert_eq!(ran.stdout, "");
    assert_eq!(
        ran.stderr,
        "The grid engine backend is no longer available: Toolforge's grid engine was shut down.\n\
         Please run again with --backend=kubernetes (the default), or without --backend\n"
    );
    let ran = webservice(&daemon, &["status"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(ran.stdout, NOT_RUNNING);
    assert_eq!(
        ran.stderr,
        "WARNING: No explict backend provided.\n  Using default of 'kubernetes'\n  \
         For help refer to <https://wikitech.wikimedia.org/wiki/Help:Toolforge/Web>\n"
    );
}

#[test]
fn an_unknown_action_is_a_usage_error_and_shell_without_a_command_explains() {
    let daemon = daemon_with_tool();
    let ran = webservice(&daemon, &["python3.11", "begin"]);
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert_eq!(
        ran.stderr,
        "ERROR: toolforge webservice: argument ACTION: invalid choice: 'begin' (choose from 'start', 'stop', 'status', 'restart', 'shell', 'logs')\n"
    );
    let ran = webservice(&daemon, &["--backend", "kubernetes", "shell"]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert_eq!(
        ran.stderr,
        "Interactive shells are not available on this platform: `toolforge webservice shell` runs one command in the webservice's image and prints its output.\n\
         Give the command after --, for example:\n    toolforge webservice shell -- ls -l\n\
         For longer work, use `toolforge jobs run`.\n"
    );
    let ran = webservice(&daemon, &["--backend", "kubernetes", "stop"]);
    assert_eq!((ran.code, ran.stdout.as_str()), (Some(0), NOT_RUNNING));
    let ran = webservice(&daemon, &["--backend", "kubernetes", "logs"]);
    assert_eq!((ran.code, ran.stdout.as_str()), (Some(1), NOT_RUNNING));
}
