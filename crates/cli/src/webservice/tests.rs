//! Unit tests of `toolforge webservice` argument handling.

use clap::Parser;

use super::*;

#[derive(Parser)]
struct Line {
    #[command(flatten)]
    args: WebserviceArgs,
}

fn command(words: &[&str]) -> Result<WebserviceCommand, String> {
    let mut argv = vec!["webservice"];
    argv.extend_from_slice(words);
    let line = Line::try_parse_from(argv).map_err(|err| err.to_string())?;
    WebserviceCommand::from_args(line.args)
}

#[test]
fn the_type_is_optional_before_the_action_and_extra_args_follow_it() {
    let start = command(&["generic", "start", "--", "python3 -m http.server $PORT"]).unwrap();
    assert_eq!(start.wstype.as_deref(), Some("generic"));
    assert_eq!(start.action, Action::Start);
    assert_eq!(start.extra_args, ["python3 -m http.server $PORT"]);
    let status = command(&["status"]).unwrap();
    assert_eq!((status.wstype, status.action), (None, Action::Status));
    let options = command(&["-r", "2", "python3.11", "restart", "--mem", "1Gi"]).unwrap();
    assert_eq!(options.args.replicas, Some(2));
    assert_eq!(options.args.memory.as_deref(), Some("1Gi"));
    assert_eq!(options.action, Action::Restart);
    let shell = command(&["shell", "--", "ls", "-l"]).unwrap();
    assert_eq!(shell.extra_args, ["ls", "-l"]);
    let logs = command(&["logs", "-f", "-l", "5"]).unwrap();
    assert!(logs.args.follow);
    assert_eq!(logs.args.last, Some(5));
    assert!(command(&["--canonical", "--backend", "kubernetes", "stop"]).is_ok());
}

#[test]
fn a_missing_or_unknown_action_is_a_usage_error() {
    assert_eq!(
        command(&["python3.11", "begin"]).unwrap_err(),
        "argument ACTION: invalid choice: 'begin' (choose from 'start', 'stop', 'status', 'restart', 'shell', 'logs')"
    );
    assert_eq!(
        command(&["python3.11"]).unwrap_err(),
        "the following arguments are required: ACTION"
    );
    let bad = command(&["-r", "0", "start"]).unwrap_err();
    assert!(bad.contains("0 is not a valid number of replicas"), "{bad}");
}

#[test]
fn the_command_line_wins_over_the_template_which_wins_over_the_manifest() {
    let cli = command(&["--cpu", "1", "start"]).unwrap();
    let template = Template {
        cpu: Some("250m".to_owned()),
        mem: Some("1Gi".to_owned()),
        wstype: Some("python3.11".to_owned()),
        replicas: Some(3),
        ..Template::default()
    };
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("service.manifest"),
        "web: php8.2\nbackend: kubernetes\nmemory: 2Gi\nreplicas: 2\n",
    )
    .unwrap();
    let manifest = Manifest::load(home.path()).unwrap();
    let settings = combine(&cli, &template, &manifest);
    assert_eq!(settings.cpu.as_deref(), Some("1"));
    assert_eq!(settings.memory.as_deref(), Some("1Gi"));
    assert_eq!(settings.wstype, "python3.11");
    assert_eq!(settings.replicas, 3);
    assert_eq!(settings.backend.as_deref(), Some("kubernetes"));
    let bare = combine(
        &command(&["start"]).unwrap(),
        &Template::default(),
        &manifest,
    );
    assert_eq!((bare.wstype.as_str(), bare.wstype_given), ("php8.2", false));
    assert_eq!(bare.replicas, 2);
    let empty = Manifest::load(tempfile::tempdir().unwrap().path()).unwrap();
    let default = combine(&command(&["start"]).unwrap(), &Template::default(), &empty);
    assert_eq!((default.wstype.as_str(), default.replicas), ("php7.4", 1));
    assert_eq!(default.backend, None);
}

#[test]
fn the_types_block_is_the_originals() {
    let types = [
        WebserviceTypeBody {
            name: "python3.11".to_owned(),
            deprecated: false,
            unavailable: None,
        },
        WebserviceTypeBody {
            name: "generic".to_owned(),
            deprecated: false,
            unavailable: None,
        },
        WebserviceTypeBody {
            name: "php7.3".to_owned(),
            deprecated: true,
            unavailable: None,
        },
    ];
    assert_eq!(
        types_block(&types),
        "generic\n  * php7.3 (DEPRECATED)\n  * python3.11"
    );
}

#[test]
fn a_finished_shell_job_exits_with_its_commands_status() {
    let job = |short: &str, messages: &[&str]| JobState {
        status_short: short.to_owned(),
        status: Some(JobStatus {
            messages: messages.iter().map(|m| (*m).to_owned()).collect(),
        }),
    };
    assert_eq!(exit_status(&job("Completed", &["exitcode 0"])), Some(0));
    assert_eq!(exit_status(&job("Failed", &["exitcode 3"])), Some(3));
    assert_eq!(exit_status(&job("Failed", &[])), Some(1));
    assert_eq!(exit_status(&job("Running for 1s", &[])), None);
}

fn lines(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|text| (*text).to_owned()).collect()
}

#[test]
fn the_shell_prints_the_stored_lines_after_those_the_stream_delivered() {
    let stored = lines(&["a", "b", "c", "d"]);
    assert_eq!(resume_at(&stored, 2, &lines(&["a", "b"])), 2);
    assert_eq!(resume_at(&stored, 4, &lines(&["a", "b", "c", "d"])), 4);
    // Nothing printed yet: everything; the same line twice: counted, not searched.
    assert_eq!(resume_at(&stored, 0, &[]), 0);
    let repeated = lines(&["x", "x", "x", "x"]);
    assert_eq!(resume_at(&repeated, 3, &lines(&["x", "x", "x"])), 3);
}

#[test]
fn the_shell_neither_loses_nor_repeats_lines_when_the_stream_repeated_or_skipped_some() {
    let stored = lines(&["a", "b", "c", "d", "e", "f"]);
    // The stream sent "b" twice where its stored part met the followed lines.
    assert_eq!(resume_at(&stored, 4, &lines(&["a", "b", "b", "c"])), 3);
    // The stream fell behind and skipped "c" and "d".
    assert_eq!(resume_at(&stored, 3, &lines(&["a", "b", "e"])), 5);
}

#[test]
fn restart_asks_for_the_given_settings_and_keeps_the_running_ones_otherwise() {
    let running = WebserviceResponse {
        webservice: Some(api_types::jobs::WebserviceBody {
            kind: "python3.11".to_owned(),
            job: "mytool".to_owned(),
            image: "python3.11".to_owned(),
            cmd: "serve".to_owned(),
            replicas: 3,
            cpu: "250m".to_owned(),
            memory: "768Mi".to_owned(),
            mount: "all".to_owned(),
            state: "running".to_owned(),
            serving_replicas: 3,
        }),
        url: "http://mytool.localhost:8080/".to_owned(),
        messages: api_types::envelope::Messages::default(),
    };
    let empty = Manifest::load(tempfile::tempdir().unwrap().path()).unwrap();
    // Nothing given and no manifest: the running definition, not the defaults.
    let bare = combine(
        &command(&["restart"]).unwrap(),
        &Template::default(),
        &empty,
    );
    assert_eq!(
        restart_request(&bare, false, &running),
        WebserviceRequest {
            kind: "python3.11".to_owned(),
            extra_args: None,
            image: None,
            cpu: Some("250m".to_owned()),
            memory: Some("768Mi".to_owned()),
            replicas: Some(3),
            mount: Some("all".to_owned()),
            buildservice_image: None,
        }
    );
    // Given options win.
    let given = combine(
        &command(&["--replicas", "2", "--mem", "1Gi", "--cpu", "1", "restart"]).unwrap(),
        &Template::default(),
        &empty,
    );
    let asked = restart_request(&given, false, &running);
    assert_eq!(
        (
            asked.kind.as_str(),
            asked.replicas,
            asked.memory.as_deref(),
            asked.cpu.as_deref()
        ),
        ("python3.11", Some(2), Some("1Gi"), Some("1"))
    );
    // A type from the template (or the manifest) is applied too.
    let template = Template {
        wstype: Some("php8.2".to_owned()),
        replicas: Some(1),
        ..Template::default()
    };
    let from_template = combine(&command(&["restart"]).unwrap(), &template, &empty);
    let asked = restart_request(&from_template, false, &running);
    assert_eq!((asked.kind.as_str(), asked.replicas), ("php8.2", Some(1)));
}
