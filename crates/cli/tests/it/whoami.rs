//! `toolforge whoami` and the global flags, in a real tool home.

use crate::{as_mytool, daemon_with_tool, run, toolforge};

#[test]
fn whoami_finds_the_api_tool_and_credentials_of_the_tool_home_and_the_gateway_answers() {
    let daemon = daemon_with_tool();
    let home = daemon.tool_home("mytool");
    let kubeconfig = home.join(".kube/config");
    let ran = run(&mut as_mytool(&daemon, &["whoami"]));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(ran.stderr, "");
    let expected = format!(
        "API URL:      {api} (from api_gateway.url in {home}/.toolforge.yaml)\n\
         Tool:         mytool (namespace tool-mytool of context toolforge in {kubeconfig})\n\
         Credentials:  client certificate {home}/.kube/../.toolskube/client.crt and key \
         {home}/.kube/../.toolskube/client.key, from user tf-mytool in {kubeconfig}\n\
         Server CA:    {ca} (from REQUESTS_CA_BUNDLE)\n",
        api = daemon.api_url(),
        home = home.display(),
        kubeconfig = kubeconfig.display(),
        ca = daemon.ca_cert_path().display(),
    );
    assert!(ran.stdout.starts_with(&expected), "{}", ran.stdout);
    // `degraded` while services are still `not-built`; either way the gateway answered.
    let gateway = ran.stdout.lines().last().unwrap();
    assert!(
        gateway.starts_with("Gateway:      ok (")
            || gateway.starts_with("Gateway:      degraded ("),
        "{gateway}"
    );
    assert!(gateway.contains("store: ok"), "{gateway}");

    // Without REQUESTS_CA_BUNDLE the platform's CA from the kubeconfig verifies the server.
    let ran = run(as_mytool(&daemon, &["whoami"]).env_remove("REQUESTS_CA_BUNDLE"));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stdout.contains(&format!(
            "Server CA:    certificate-authority-data of cluster toolforge in {}\n",
            kubeconfig.display()
        )),
        "{}",
        ran.stdout
    );
}

#[test]
fn the_tool_and_api_url_flags_and_the_environment_override_discovery() {
    let daemon = daemon_with_tool();
    let port = daemon.addresses().api.port();

    let ran = run(&mut as_mytool(&daemon, &["--tool", "other", "whoami"]));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stdout.contains(
            "Tool:         other (from --tool; the kubeconfig's namespace is tool-mytool)\n"
        ),
        "{}",
        ran.stdout
    );

    // `localhost` is in the gateway's certificate too.
    let localhost = format!("https://localhost:{port}");
    let ran = run(&mut as_mytool(
        &daemon,
        &["whoami", "--api-url", &localhost],
    ));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stdout
            .starts_with(&format!("API URL:      {localhost} (from --api-url)\n")),
        "{}",
        ran.stdout
    );

    let ran = run(as_mytool(&daemon, &["whoami"]).env("TOOL_TOOLFORGE_API_URL", &localhost));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stdout.starts_with(&format!(
            "API URL:      {localhost} (from TOOL_TOOLFORGE_API_URL)\n"
        )),
        "{}",
        ran.stdout
    );

    // The command line wins over the environment.
    let ran = run(
        as_mytool(&daemon, &["--api-url", &daemon.api_url(), "whoami"])
            .env("TOOL_TOOLFORGE_API_URL", "https://nowhere.invalid"),
    );
    assert_eq!(ran.code, Some(0), "{ran:?}");
}

#[test]
fn whoami_names_what_is_missing_and_where_it_looked() {
    let daemon = daemon_with_tool();
    let scratch = tempfile::tempdir().unwrap();

    let missing = scratch.path().join("no-such-kubeconfig");
    let ran = run(as_mytool(&daemon, &["whoami"]).env("KUBECONFIG", &missing));
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert_eq!(
        ran.stderr,
        format!(
            "ERROR: no kubeconfig at {} (from $KUBECONFIG); did you forget to run 'become <tool>'?\n",
            missing.display()
        )
    );
    assert!(ran.stdout.starts_with("API URL:      "), "{}", ran.stdout);

    let missing_bundle = scratch.path().join("ca.pem");
    let ran = run(as_mytool(&daemon, &["whoami"]).env("REQUESTS_CA_BUNDLE", &missing_bundle));
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert_eq!(
        ran.stderr,
        format!(
            "ERROR: cannot read the CA bundle {} named by REQUESTS_CA_BUNDLE: No such file or directory (os error 2)\n",
            missing_bundle.display()
        )
    );

    // An empty home: no .toolforge.yaml anywhere, so the default URL is used and named,
    // with the files that were probed; it cannot be reached from here.
    let home = scratch.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let ran = run(as_mytool(&daemon, &["whoami"]).env("HOME", &home).env(
        "KUBECONFIG",
        daemon.tool_home("mytool").join(".kube/config"),
    ));
    let default = "https://api.svc.tools.eqiad1.wikimedia.cloud:30003";
    assert!(
        ran.stdout.starts_with(&format!(
            "API URL:      {default} (the default: TOOL_TOOLFORGE_API_URL is unset and no \
             api_gateway.url in /etc/toolforge/toolforge.yaml, /etc/toolforge/common.yaml, \
             {home}/.toolforge.yaml, {home}/.config/toolforge.yaml, $XDG_CONFIG_HOME/toolforge.yaml)\n",
            home = home.display()
        )),
        "{}",
        ran.stdout
    );
    if ran.code == Some(2) {
        assert!(
            ran.stderr.starts_with(
                "ERROR: The API service seems to be down – please retry in a few minutes.: \
                 error sending request for url (https://api.svc.tools.eqiad1.wikimedia.cloud:30003/healthz)"
            ),
            "{}",
            ran.stderr
        );
    } else {
        // Only on a Toolforge bastion could the default answer.
        assert_eq!(ran.code, Some(0), "{ran:?}");
    }
}

#[test]
fn an_unreachable_gateway_is_exit_status_2_with_the_connection_error() {
    let daemon = daemon_with_tool();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let ran = run(&mut as_mytool(&daemon, &["whoami", "--api-url", &url]));
    assert_eq!(ran.code, Some(2), "{ran:?}");
    let mut lines = ran.stderr.lines();
    let first = lines.next().unwrap();
    assert!(
        first.starts_with(
            "ERROR: The API service seems to be down – please retry in a few minutes.: "
        ),
        "{first}"
    );
    assert!(first.contains("Connection refused"), "{first}");
    assert_eq!(
        lines.next(),
        Some(
            "ERROR: Please report this issue to the Toolforge admins if it persists: https://w.wiki/6Zuu"
        )
    );
    // With --debug (or TOOLFORGE_DEBUG=1), what the command was doing comes first.
    let debug_flag = as_mytool(&daemon, &["-d", "whoami", "--api-url", &url]);
    let mut debug_env = as_mytool(&daemon, &["whoami", "--api-url", &url]);
    debug_env.env("TOOLFORGE_DEBUG", "1");
    for mut cmd in [debug_flag, debug_env] {
        let ran = run(&mut cmd);
        assert_eq!(ran.code, Some(2), "{ran:?}");
        assert!(
            ran.stderr.starts_with(&format!(
                "ERROR: while asking {url} for its health: The API service seems to be down"
            )),
            "{}",
            ran.stderr
        );
    }
    let mut not_debug = as_mytool(&daemon, &["whoami", "--api-url", &url]);
    let ran = run(not_debug.env("TOOLFORGE_DEBUG", "0"));
    assert!(
        ran.stderr.starts_with("ERROR: The API service"),
        "{}",
        ran.stderr
    );
}

#[test]
fn command_groups_of_later_issues_say_they_are_not_available_and_exit_1() {
    for group in ["build", "components"] {
        let ran = run(std::process::Command::new(toolforge()).args([group, "list", "--json"]));
        assert_eq!(ran.code, Some(1), "{ran:?}");
        assert_eq!(
            ran.stderr,
            format!("ERROR: `toolforge {group}` is not available yet in this build of toolforge\n")
        );
        assert_eq!(ran.stdout, "");
    }
}

#[test]
fn version_prints_the_program_name_and_version() {
    let ran = run(std::process::Command::new(toolforge()).arg("--version"));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(
        ran.stdout,
        format!("toolforge {}\n", env!("CARGO_PKG_VERSION"))
    );
}
