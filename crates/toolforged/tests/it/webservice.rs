//! Issue 9: real webservices started with our `toolforge webservice` against the real
//! daemon (as root, where jobs run isolated as their tool), fetched through the daemon's
//! front proxy by host name (`Host: mytool.localhost`, the proxy's address from
//! `run/addresses.json`): generic and the Python layout serve, `stop` brings back the
//! "not running" page, a rolling `restart` of two replicas under continuous requests loses
//! none, `restart` applies new replicas and memory, and bad input is refused with the
//! rule it broke while the webservice keeps serving.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use test_support::daemon::Daemon;
use test_support::poll::eventually;
use test_support::skip::{is_root, prerequisite_missing};

use crate::{bin, daemon_with_tool};

/// How long a webservice may take to serve after `start`.
const SERVE_TIMEOUT: Duration = Duration::from_secs(60);

/// A generic webservice: Python's http.server on `$PORT`, serving the tool's home.
const HTTP_SERVER: &str = "python3 -m http.server $PORT";

/// Our `toolforge` binary, built beside `toolforged` (`cargo build -p cli`; `cargo xtask
/// test` builds every binary).
fn toolforge_bin() -> Result<PathBuf, String> {
    let path = bin().with_file_name("toolforge");
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} is not built (cargo build -p cli)",
            path.display()
        ))
    }
}

/// A daemon with `mytool` and our CLI, or `None` after reporting the skip.
fn setup(test: &str) -> Option<(Daemon, PathBuf)> {
    if !is_root() {
        prerequisite_missing(
            test,
            "webservices run isolated as their tool's uid only as root",
        );
        return None;
    }
    match toolforge_bin() {
        Ok(cli) => Some((daemon_with_tool(), cli)),
        Err(reason) => {
            prerequisite_missing(test, &reason);
            None
        }
    }
}

/// What a finished command printed, and its exit status.
#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `toolforge <args>` as `mytool`, from its home.
fn toolforge(daemon: &Daemon, cli: &PathBuf, args: &[&str]) -> Ran {
    let mut cmd: Command = daemon.tool_command("mytool", cli);
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.args(args).output().expect("toolforge runs");
    Ran {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

#[track_caller]
fn ok(ran: Ran) -> Ran {
    assert_eq!(ran.code, Some(0), "{ran:?}");
    ran
}

/// `GET path` with `Host: host` over a new connection: the status and the body, or the
/// I/O error.
fn try_get(proxy: SocketAddr, host: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(proxy)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

#[track_caller]
fn get(proxy: SocketAddr, path: &str) -> (u16, String) {
    try_get(proxy, "mytool.localhost", path).expect("the proxy answers")
}

/// Waits until `path` answers 200 through the proxy and returns the body.
#[track_caller]
fn served(proxy: SocketAddr, path: &str) -> String {
    let mut last = None;
    eventually(SERVE_TIMEOUT, || match get(proxy, path) {
        (200, body) => Some(body),
        other => {
            last = Some(other);
            None
        }
    })
    .unwrap_or_else(|| panic!("{path} was not served through the proxy; last answer {last:?}"))
}

/// The webservice as the API shows it (`GET /jobs/v1/tool/mytool/webservice`).
fn api_webservice(daemon: &Daemon) -> serde_json::Value {
    let mut connection = daemon.tool_connection("mytool");
    let response = connection
        .get("/jobs/v1/tool/mytool/webservice")
        .expect("the gateway answers");
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

fn manifest(daemon: &Daemon) -> String {
    std::fs::read_to_string(daemon.tool_home("mytool").join("service.manifest")).unwrap_or_default()
}

#[test]
fn a_generic_webservice_serves_through_the_proxy_and_stop_brings_back_the_not_running_page() {
    const TEST: &str =
        "a_generic_webservice_serves_through_the_proxy_and_stop_brings_back_the_not_running_page";
    let Some((daemon, cli)) = setup(TEST) else {
        return;
    };
    let proxy = daemon.addresses().proxy;
    std::fs::write(
        daemon.tool_home("mytool").join("hello.txt"),
        "hello from mytool\n",
    )
    .unwrap();

    let started = ok(toolforge(
        &daemon,
        &cli,
        &[
            "webservice",
            "--backend",
            "kubernetes",
            "generic",
            "start",
            "--",
            HTTP_SERVER,
        ],
    ));
    assert!(
        started.stdout.starts_with("Starting webservice"),
        "{started:?}"
    );
    assert_eq!(started.stderr, "");
    let recorded = manifest(&daemon);
    for line in [
        "backend: kubernetes\n",
        "web: generic\n",
        "- python3 -m http.server $PORT\n",
    ] {
        assert!(recorded.contains(line), "{line} in\n{recorded}");
    }
    assert_eq!(served(proxy, "/hello.txt"), "hello from mytool\n");

    // The backend comes from the manifest now; the type from the server.
    let status = ok(toolforge(&daemon, &cli, &["webservice", "status"]));
    assert_eq!(
        status.stdout,
        format!(
            "Your webservice of type generic is running on backend kubernetes\nURL: http://mytool.localhost:{}/\n",
            proxy.port()
        )
    );
    assert_eq!(status.stderr, "");
    let again = toolforge(
        &daemon,
        &cli,
        &["webservice", "generic", "start", "--", HTTP_SERVER],
    );
    assert_eq!(again.code, Some(1), "{again:?}");
    assert_eq!(again.stderr, "Your job is already running\n");
    let logs = eventually(SERVE_TIMEOUT, || {
        let logs = ok(toolforge(
            &daemon,
            &cli,
            &["webservice", "logs", "-l", "50"],
        ));
        logs.stdout
            .contains("GET /hello.txt")
            .then_some(logs.stdout)
    })
    .expect("http.server's access log line is in the webservice's logs");
    assert!(logs.contains("[mytool]"), "{logs}");

    let stopped = ok(toolforge(&daemon, &cli, &["webservice", "stop"]));
    assert_eq!(stopped.stdout, "Stopping webservice\n");
    assert!(!manifest(&daemon).contains("web:"), "{}", manifest(&daemon));
    let (status, body) = get(proxy, "/hello.txt");
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("<strong>mytool</strong> exists, but it is not running a webservice"),
        "{body}"
    );
    let status = ok(toolforge(
        &daemon,
        &cli,
        &["webservice", "--backend", "kubernetes", "status"],
    ));
    assert_eq!(status.stdout, "Your webservice is not running\n");
}

#[test]
fn the_python_layout_serves_the_wsgi_app_and_shell_runs_a_command_in_its_image() {
    const TEST: &str =
        "the_python_layout_serves_the_wsgi_app_and_shell_runs_a_command_in_its_image";
    let Some((daemon, cli)) = setup(TEST) else {
        return;
    };
    let types = {
        let mut connection = daemon.tool_connection("mytool");
        connection
            .get("/jobs/v1/tool/mytool/webservice/types")
            .expect("the gateway answers")
            .json()
    };
    let python = types["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|wstype| wstype["name"] == "python3.11")
        .cloned()
        .unwrap();
    if let Some(reason) = python["unavailable"].as_str() {
        prerequisite_missing(TEST, &format!("python3.11 cannot be served here: {reason}"));
        return;
    }
    let proxy = daemon.addresses().proxy;
    let src = daemon.tool_home("mytool").join("www/python/src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("app.py"),
        "def app(environ, start_response):\n    \
             body = ('wsgi says hello to ' + environ['PATH_INFO']).encode()\n    \
             start_response('200 OK', [('Content-Type', 'text/plain')])\n    \
             return [body]\n",
    )
    .unwrap();
    std::fs::write(
        daemon.tool_home("mytool").join("service.template"),
        "backend: kubernetes\ntype: python3.11\nmem: 1Gi\n",
    )
    .unwrap();

    let started = ok(toolforge(&daemon, &cli, &["webservice", "start"]));
    assert!(
        started.stdout.starts_with("Starting webservice"),
        "{started:?}"
    );
    assert_eq!(
        served(proxy, "/some/where"),
        "wsgi says hello to /some/where"
    );
    let webservice = api_webservice(&daemon);
    assert_eq!(webservice["webservice"]["type"], "python3.11");
    assert_eq!(webservice["webservice"]["memory"], "1Gi", "{webservice}");
    let recorded = manifest(&daemon);
    assert!(recorded.contains("web: python3.11\n"), "{recorded}");
    assert!(recorded.contains("memory: 1Gi\n"), "{recorded}");

    let shell = toolforge(
        &daemon,
        &cli,
        &[
            "webservice",
            "shell",
            "--",
            "sh -c 'echo from the shell; python3.11 --version; exit 3'",
        ],
    );
    assert_eq!(shell.code, Some(3), "{shell:?}");
    assert!(
        shell.stdout.starts_with("from the shell\nPython 3.11."),
        "{shell:?}"
    );
    assert_eq!(shell.stdout.lines().count(), 2, "{shell:?}");
    let shell = ok(toolforge(
        &daemon,
        &cli,
        &["webservice", "shell", "--", "true"],
    ));
    assert_eq!(shell.stdout, "");
    // The shell's one-off jobs are not left behind.
    let jobs = {
        let mut connection = daemon.tool_connection("mytool");
        connection.get("/jobs/v1/tool/mytool/jobs/").unwrap().json()
    };
    let names: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|job| job["name"].as_str())
        .collect();
    assert_eq!(names, ["mytool"]);
    ok(toolforge(&daemon, &cli, &["webservice", "stop"]));
}

#[test]
fn a_rolling_restart_of_two_replicas_under_continuous_requests_loses_none() {
    const TEST: &str = "a_rolling_restart_of_two_replicas_under_continuous_requests_loses_none";
    let Some((daemon, cli)) = setup(TEST) else {
        return;
    };
    let proxy = daemon.addresses().proxy;
    std::fs::write(daemon.tool_home("mytool").join("hello.txt"), "hello\n").unwrap();
    ok(toolforge(
        &daemon,
        &cli,
        &[
            "webservice",
            "--backend",
            "kubernetes",
            "--replicas",
            "2",
            "generic",
            "start",
            "--",
            HTTP_SERVER,
        ],
    ));
    eventually(SERVE_TIMEOUT, || {
        (api_webservice(&daemon)["webservice"]["serving_replicas"] == 2).then_some(())
    })
    .expect("both replicas serve");
    assert_eq!(served(proxy, "/hello.txt"), "hello\n");

    let stop = Arc::new(AtomicBool::new(false));
    let successes = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let requests = {
        let (stop, successes, failures) = (stop.clone(), successes.clone(), failures.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match try_get(proxy, "mytool.localhost", "/hello.txt") {
                    Ok((200, body)) if body == "hello\n" => {
                        successes.fetch_add(1, Ordering::SeqCst);
                    }
                    other => failures.lock().unwrap().push(format!("{other:?}")),
                }
            }
        })
    };
    let restarted = ok(toolforge(&daemon, &cli, &["webservice", "restart"]));
    // Requests go on a little after the restart, to the new replicas only.
    let after = successes.load(Ordering::SeqCst);
    eventually(SERVE_TIMEOUT, || {
        (successes.load(Ordering::SeqCst) > after + 20).then_some(())
    })
    .expect("requests keep being served after the restart");
    stop.store(true, Ordering::SeqCst);
    requests.join().unwrap();

    assert!(
        restarted.stdout.starts_with("Restarting webservice"),
        "{restarted:?}"
    );
    assert!(restarted.stdout.ends_with('\n'), "{restarted:?}");
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during the restart: {:?}",
        failures.len(),
        failures.len() + successes.load(Ordering::SeqCst),
        &failures[..failures.len().min(10)]
    );
    assert!(successes.load(Ordering::SeqCst) > 20);
    let webservice = api_webservice(&daemon);
    assert_eq!(
        webservice["webservice"]["serving_replicas"], 2,
        "{webservice}"
    );
    assert_eq!(webservice["webservice"]["replicas"], 2, "{webservice}");
    ok(toolforge(&daemon, &cli, &["webservice", "stop"]));
}

/// The `Replicas:` row of `toolforge jobs show mytool`.
fn shown_replicas(daemon: &Daemon, cli: &PathBuf) -> String {
    let shown = ok(toolforge(daemon, cli, &["jobs", "show", "mytool"]));
    shown
        .stdout
        .lines()
        .find(|line| line.starts_with("| Replicas:"))
        .map(|line| {
            line.trim_start_matches("| Replicas:")
                .trim_matches([' ', '|'])
                .to_owned()
        })
        .unwrap_or_else(|| panic!("no Replicas row in {shown:?}"))
}

#[test]
fn restart_applies_new_replicas_and_memory_with_a_rolling_restart_and_refuses_bad_ones() {
    const TEST: &str =
        "restart_applies_new_replicas_and_memory_with_a_rolling_restart_and_refuses_bad_ones";
    let Some((daemon, cli)) = setup(TEST) else {
        return;
    };
    let proxy = daemon.addresses().proxy;
    std::fs::write(daemon.tool_home("mytool").join("hello.txt"), "hello\n").unwrap();
    ok(toolforge(
        &daemon,
        &cli,
        &[
            "webservice",
            "--backend",
            "kubernetes",
            "generic",
            "start",
            "--",
            HTTP_SERVER,
        ],
    ));
    assert_eq!(served(proxy, "/hello.txt"), "hello\n");
    assert_eq!(api_webservice(&daemon)["webservice"]["serving_replicas"], 1);
    assert_eq!(shown_replicas(&daemon, &cli), "1");

    let restarted = ok(toolforge(
        &daemon,
        &cli,
        &["webservice", "restart", "--replicas", "2", "--mem", "1Gi"],
    ));
    assert!(
        restarted.stdout.starts_with("Restarting webservice") && restarted.stdout.ends_with('\n'),
        "{restarted:?}"
    );
    assert_eq!(restarted.stderr, "");
    // The proxy has two upstreams, the job two replicas with the new memory.
    eventually(SERVE_TIMEOUT, || {
        (api_webservice(&daemon)["webservice"]["serving_replicas"] == 2).then_some(())
    })
    .expect("two replicas serve after restart --replicas 2");
    let webservice = api_webservice(&daemon)["webservice"].clone();
    assert_eq!(webservice["replicas"], 2, "{webservice}");
    assert_eq!(webservice["memory"], "1Gi", "{webservice}");
    assert_eq!(webservice["type"], "generic", "{webservice}");
    assert_eq!(shown_replicas(&daemon, &cli), "2");
    assert_eq!(served(proxy, "/hello.txt"), "hello\n");
    let recorded = manifest(&daemon);
    for line in ["replicas: 2\n", "memory: 1Gi\n", "web: generic\n"] {
        assert!(recorded.contains(line), "{line} in\n{recorded}");
    }

    // A restart without options keeps what the manifest recorded.
    ok(toolforge(&daemon, &cli, &["webservice", "restart"]));
    let webservice = api_webservice(&daemon)["webservice"].clone();
    assert_eq!(
        (webservice["replicas"].clone(), webservice["memory"].clone()),
        (serde_json::json!(2), serde_json::json!("1Gi")),
        "{webservice}"
    );

    // Memory over the per-job limit: refused with the rule, nothing changes.
    let before = api_webservice(&daemon)["webservice"].clone();
    let ran = toolforge(&daemon, &cli, &["webservice", "restart", "--mem", "64Gi"]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert_eq!(
        (ran.stdout.as_str(), ran.stderr.as_str()),
        (
            "Restarting webservice\n",
            "ERROR: Requested memory 64Gi is over the per-job limit of 4.0Gi\n"
        ),
        "{ran:?}"
    );
    assert_eq!(api_webservice(&daemon)["webservice"], before);
    assert!(manifest(&daemon).contains("memory: 1Gi\n"));

    // Back to one replica: the surplus one stops, and the manifest forgets the count.
    ok(toolforge(
        &daemon,
        &cli,
        &["webservice", "restart", "-r", "1"],
    ));
    let webservice = api_webservice(&daemon)["webservice"].clone();
    assert_eq!(webservice["replicas"], 1, "{webservice}");
    assert_eq!(webservice["serving_replicas"], 1, "{webservice}");
    assert_eq!(shown_replicas(&daemon, &cli), "1");
    assert!(
        !manifest(&daemon).contains("replicas:"),
        "{}",
        manifest(&daemon)
    );
    assert_eq!(served(proxy, "/hello.txt"), "hello\n");
    ok(toolforge(&daemon, &cli, &["webservice", "stop"]));
}

#[test]
fn bad_input_is_refused_with_the_rule_and_the_running_webservice_keeps_serving() {
    const TEST: &str =
        "bad_input_is_refused_with_the_rule_and_the_running_webservice_keeps_serving";
    let Some((daemon, cli)) = setup(TEST) else {
        return;
    };
    let proxy = daemon.addresses().proxy;
    let home = daemon.tool_home("mytool");
    std::fs::write(home.join("hello.txt"), "still here\n").unwrap();
    ok(toolforge(
        &daemon,
        &cli,
        &[
            "webservice",
            "--backend",
            "kubernetes",
            "generic",
            "start",
            "--",
            HTTP_SERVER,
        ],
    ));
    assert_eq!(served(proxy, "/hello.txt"), "still here\n");
    let before = api_webservice(&daemon)["webservice"].clone();
    let manifest_before = manifest(&daemon);

    // An unknown type.
    let ran = toolforge(&daemon, &cli, &["webservice", "python2", "start"]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stderr
            .starts_with("type must be one of:\nbuildservice\n  * generic\n"),
        "{ran:?}"
    );
    // A type this platform cannot serve.
    let ran = toolforge(
        &daemon,
        &cli,
        &[
            "webservice",
            "buildservice",
            "start",
            "--buildservice-image",
            "tool-mytool/tool-mytool:latest",
        ],
    );
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert_eq!(ran.stderr, "Your job is already running\n");
    // A second published job: the web address (and its port) belongs to the webservice.
    let ran = toolforge(
        &daemon,
        &cli,
        &[
            "jobs",
            "run",
            "other",
            "--command",
            HTTP_SERVER,
            "--image",
            "bookworm",
            "--continuous",
            "--port",
            "8000",
            "--publish",
        ],
    );
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stderr.contains(
            "Job 'mytool' already publishes this tool's web address (a tool publishes at most one job"
        ),
        "{ran:?}"
    );
    // A job named after the tool is the webservice's name.
    let ran = toolforge(
        &daemon,
        &cli,
        &[
            "jobs",
            "run",
            "mytool",
            "--command",
            "sleep 1",
            "--image",
            "bookworm",
        ],
    );
    assert_eq!(ran.code, Some(1), "{ran:?}");
    // A template with unknown keys.
    std::fs::write(
        home.join("service.template"),
        "type: generic\nports: [80]\n",
    )
    .unwrap();
    let ran = toolforge(&daemon, &cli, &["webservice", "restart"]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stderr.contains("contains unknown keys: ports\n"),
        "{ran:?}"
    );
    std::fs::remove_file(home.join("service.template")).unwrap();
    // Bad replicas.
    let ran = toolforge(
        &daemon,
        &cli,
        &["webservice", "-r", "0", "generic", "start"],
    );
    assert_eq!(ran.code, Some(2), "{ran:?}");

    assert_eq!(get(proxy, "/hello.txt"), (200, "still here\n".to_owned()));
    let after = api_webservice(&daemon)["webservice"].clone();
    assert_eq!(after, before, "the webservice is untouched");
    assert_eq!(manifest(&daemon), manifest_before);
    let jobs = {
        let mut connection = daemon.tool_connection("mytool");
        connection.get("/jobs/v1/tool/mytool/jobs/").unwrap().json()
    };
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1, "{jobs}");
    ok(toolforge(&daemon, &cli, &["webservice", "stop"]));
}
