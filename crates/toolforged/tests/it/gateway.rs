//! Issue 3: identity from client certificates over real TLS, authorization, the
//! envelope and the path rules, and the unauthenticated endpoints.

use std::path::Path;

use test_support::daemon::Daemon;
use test_support::https::{HttpResponse, HttpsConnection};
use test_support::skip::prerequisite_missing;

use crate::daemon_with_tool;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// A connection presenting the credentials in `dir` (`client.crt`, `client.key`).
fn connect_with(daemon: &Daemon, cert_pem: Option<(&str, &str)>) -> HttpsConnection {
    let ca = read(&daemon.ca_cert_path());
    HttpsConnection::connect(daemon.addresses().api, "localhost", &ca, cert_pem).unwrap()
}

fn tool_creds(daemon: &Daemon, tool: &str) -> (String, String) {
    let home = daemon.tool_home(tool);
    (
        read(&home.join(".toolskube/client.crt")),
        read(&home.join(".toolskube/client.key")),
    )
}

fn user_creds(daemon: &Daemon, user: &str) -> (String, String) {
    let dir = daemon.data_dir().join("users").join(user);
    (read(&dir.join("client.crt")), read(&dir.join("client.key")))
}

fn get_as(daemon: &Daemon, creds: &(String, String), path: &str) -> HttpResponse {
    connect_with(daemon, Some((&creds.0, &creds.1)))
        .get(path)
        .unwrap()
}

/// The answer of a request that passed authentication and authorization: the jobs
/// service's list of the tool's jobs.
fn assert_admitted(res: &HttpResponse) {
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(res.json()["jobs"].is_array(), "{}", res.text());
}

fn assert_refused(res: &HttpResponse, status: u16, reason: &str) {
    assert_eq!(res.status, status, "{}", res.text());
    let body = res.json();
    let message = body["error"][0].as_str().unwrap();
    assert!(
        message.contains(reason),
        "{message:?} should contain {reason:?}"
    );
    assert_eq!(body["messages"]["error"][0], body["error"][0]);
}

const JOBS: &str = "/jobs/v1/tool/mytool/jobs/";

#[test]
fn the_tools_own_certificate_is_admitted_and_every_other_credential_is_refused_with_a_reason() {
    let daemon = daemon_with_tool();
    daemon.create_tool("other", "alice");
    daemon.create_user("bob", "bob@example.org");

    let own = get_as(&daemon, &tool_creds(&daemon, "mytool"), JOBS);
    assert_admitted(&own);
    assert!(own.header("x-request-id").is_some_and(|id| !id.is_empty()));

    let none = connect_with(&daemon, None).get(JOBS).unwrap();
    assert_refused(&none, 401, "no credentials");

    // A certificate from a CA of our own making, claiming to be the tool.
    let now = time::OffsetDateTime::now_utc();
    let forger = pki::CertificateAuthority::create(now, time::Duration::days(1)).unwrap();
    let forged = forger
        .issue_client(
            pki::SubjectKind::Tool,
            "mytool",
            now,
            time::Duration::days(1),
        )
        .unwrap();
    let res = get_as(&daemon, &(forged.cert_pem, forged.key_pem), JOBS);
    assert_refused(
        &res,
        401,
        "not issued by this platform's certificate authority",
    );

    // A certificate of our CA that has expired.
    let ca = pki::CertificateAuthority::load(
        &read(&daemon.data_dir().join("pki/ca.crt")),
        &read(&daemon.data_dir().join("pki/ca.key")),
    )
    .unwrap();
    let expired = ca
        .issue_client(
            pki::SubjectKind::Tool,
            "mytool",
            now - time::Duration::days(400),
            time::Duration::days(365),
        )
        .unwrap();
    let res = get_as(&daemon, &(expired.cert_pem, expired.key_pem), JOBS);
    assert_refused(&res, 401, "expired");

    let res = get_as(&daemon, &tool_creds(&daemon, "other"), JOBS);
    assert_refused(&res, 403, "tool 'other' may not act on tool 'mytool'");

    assert_admitted(&get_as(&daemon, &user_creds(&daemon, "alice"), JOBS));
    let res = get_as(&daemon, &user_creds(&daemon, "bob"), JOBS);
    assert_refused(&res, 403, "user 'bob' may not act on tool 'mytool'");

    // A non-admin learns nothing about tools that do not exist; an admin gets a 404.
    let res = get_as(
        &daemon,
        &user_creds(&daemon, "bob"),
        "/jobs/v1/tool/ghost/jobs",
    );
    assert_refused(&res, 403, "may not act on tool 'ghost'");
    let res = get_as(
        &daemon,
        &user_creds(&daemon, "admin"),
        "/jobs/v1/tool/ghost/jobs",
    );
    assert_refused(&res, 404, "tool 'ghost' does not exist");
    assert_admitted(&get_as(&daemon, &user_creds(&daemon, "admin"), JOBS));
}

#[test]
fn a_tool_listed_as_maintainer_acts_on_the_tool_but_not_transitively() {
    let daemon = daemon_with_tool();
    daemon.create_tool("helper", "alice");
    daemon.create_tool("third", "alice");
    daemon.admin_ok(&["tool", "add-maintainer", "mytool", "helper"]);
    daemon.admin_ok(&["tool", "add-maintainer", "helper", "third"]);
    assert_admitted(&get_as(&daemon, &tool_creds(&daemon, "helper"), JOBS));
    let res = get_as(&daemon, &tool_creds(&daemon, "third"), JOBS);
    assert_refused(&res, 403, "tool 'third' may not act on tool 'mytool'");
}

#[test]
fn a_certificate_regenerated_away_is_refused_on_a_connection_that_stays_open() {
    let daemon = daemon_with_tool();
    let creds = tool_creds(&daemon, "mytool");
    let mut conn = connect_with(&daemon, Some((&creds.0, &creds.1)));
    assert_admitted(&conn.get(JOBS).unwrap());
    daemon.admin_ok(&["creds", "regenerate", "mytool"]);
    let res = conn.get(JOBS).unwrap();
    assert_refused(&res, 401, "was regenerated and is no longer valid");
    // A new connection with the new certificate is admitted.
    assert_admitted(&get_as(&daemon, &tool_creds(&daemon, "mytool"), JOBS));
}

#[test]
fn bearer_tokens_act_as_their_subject_within_their_scope_until_revoked() {
    let daemon = daemon_with_tool();
    let created = daemon.admin_json(&[
        "token",
        "create",
        "mytool",
        "--scope",
        "jobs",
        "--expires",
        "1h",
    ]);
    let token = created["token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    let mut conn = connect_with(&daemon, None);
    assert_admitted(
        &conn
            .request("GET", JOBS, &[("Authorization", &bearer)], None)
            .unwrap(),
    );
    let res = conn
        .request(
            "GET",
            "/envvars/v1/tool/mytool/envvars",
            &[("Authorization", &bearer)],
            None,
        )
        .unwrap();
    assert_refused(&res, 403, "scope (jobs) does not cover the envvars service");
    let res = conn
        .request(
            "GET",
            "/jobs/v1/tool/other/jobs",
            &[("Authorization", &bearer)],
            None,
        )
        .unwrap();
    assert_refused(&res, 403, "may not act on tool 'other'");

    let listed = daemon.admin_json(&["token", "list"]);
    assert_eq!(listed[0]["id"], created["id"]);
    assert!(
        listed[0].get("token").is_none(),
        "the secret is never listed: {listed}"
    );
    daemon.admin_ok(&["token", "revoke", created["id"].as_str().unwrap()]);
    let res = conn
        .request("GET", JOBS, &[("Authorization", &bearer)], None)
        .unwrap();
    assert_refused(&res, 401, "revoked");
    let res = conn
        .request(
            "GET",
            JOBS,
            &[("Authorization", "Bearer tft_nope_nope")],
            None,
        )
        .unwrap();
    assert_refused(&res, 401, "not known");
}

#[test]
fn paths_collapse_slashes_accept_both_spellings_decode_segments_and_never_redirect() {
    let daemon = daemon_with_tool();
    let creds = tool_creds(&daemon, "mytool");
    let mut conn = connect_with(&daemon, Some((&creds.0, &creds.1)));
    for path in [
        "/jobs/v1/tool/mytool/jobs",
        "/jobs/v1/tool/mytool/jobs/",
        "//jobs/v1/tool/mytool/jobs/",
        "/jobs//v1/tool//mytool/jobs",
        "/jobs/v1/tool/my%74ool/jobs/",
        "/jobs/v1/tool/mytool/jobs/?include_unset=true",
    ] {
        let res = conn.get(path).unwrap();
        assert_admitted(&res);
    }
    let res = conn.get("/jobs/v1/tool/my%20tool/jobs").unwrap();
    assert_refused(&res, 403, "may not act on tool 'my tool'");
}

#[test]
fn every_answer_is_a_json_object_even_for_unknown_routes_and_methods() {
    let daemon = daemon_with_tool();
    let mut conn = connect_with(&daemon, None);
    let res = conn.get("/nope").unwrap();
    assert_refused(&res, 404, "no such endpoint: /nope");
    let res = conn.request("POST", "/healthz", &[], None).unwrap();
    assert_refused(&res, 405, "method POST is not allowed on /healthz");
    let res = conn.get("/frobs/v1/tool/mytool/x").unwrap();
    assert_refused(&res, 404, "no such endpoint");
    let res = conn.get("/frobs/v1/healthz").unwrap();
    assert_refused(&res, 404, "no such service: frobs");
    for service in ["jobs", "envvars", "builds", "components", "logs"] {
        let res = conn
            .get(&format!("/{service}/v1/tool/mytool/anything"))
            .unwrap();
        assert_refused(&res, 401, "no credentials");
    }
}

#[test]
fn healthz_openapi_and_metrics_need_no_credentials() {
    let daemon = daemon_with_tool();
    let mut conn = connect_with(&daemon, None);
    let health = conn.get("/healthz").unwrap();
    assert_eq!(health.status, 200, "{}", health.text());
    let body = health.json();
    for key in ["status", "services", "isolation", "limits", "mail"] {
        assert!(body.get(key).is_some(), "{key} in {body}");
    }
    assert_eq!(body["services"]["store"], "ok");
    assert_eq!(body["services"]["jobs"], "ok");
    assert_eq!(body["services"]["envvars"], "ok");
    assert_eq!(body["services"]["builds"], "not-built");
    assert_eq!(body["mail"], false);
    let res = conn.get("/jobs/v1/healthz").unwrap();
    assert_eq!(res.status, 200);
    assert!(res.json()["services"].get("jobs").is_some());

    // A refused request and an admitted one show up in the metrics.
    conn.get(JOBS).unwrap();
    let metrics = conn.get("/metrics").unwrap();
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text();
    assert!(
        text.contains("toolforge_http_requests_total{service=\"jobs\",status=\"401\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "toolforge_http_request_duration_seconds_bucket{service=\"jobs\",le=\"+Inf\"}"
        ),
        "{text}"
    );

    let spec = conn.get("/openapi.json").unwrap();
    assert_eq!(spec.status, 200);
    let doc = spec.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/healthz",
        "/metrics",
        "/openapi.json",
        "/{service}/v1/healthz",
        "/{service}/v1/metrics",
        "/{service}/openapi.json",
        "/{service}/v1/tool/{tool}/{path}",
    ] {
        assert!(paths.contains_key(path), "{path} documented");
    }
    assert!(doc["components"]["schemas"].get("ErrorBody").is_some());
    assert!(conn.get("/jobs/openapi.json").unwrap().json()["paths"].is_object());

    let validator = match test_support::clients::openapi_validator() {
        Ok(validator) => validator,
        Err(reason) => {
            return prerequisite_missing(
                "healthz_openapi_and_metrics_need_no_credentials",
                &reason,
            );
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &spec.body).unwrap();
    let out = std::process::Command::new(validator)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_disabled_tool_is_refused_saying_so() {
    // `tool disable` arrives with the admin procedures (issue 10); the gateway's rule
    // is checked here with the status written to the store while the daemon is down.
    let mut daemon = daemon_with_tool();
    daemon.shut_down();
    let db = daemon.data_dir().join("toolforge.sqlite");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = store::Store::open(&db).await.unwrap();
        store
            .set_tool_status("mytool", store::ToolStatus::Disabled)
            .await
            .unwrap();
        store.close().await;
    });
    daemon.restart();
    let res = get_as(&daemon, &tool_creds(&daemon, "mytool"), JOBS);
    assert_refused(&res, 403, "tool 'mytool' is disabled");
    let res = get_as(&daemon, &user_creds(&daemon, "alice"), JOBS);
    assert_refused(&res, 403, "tool 'mytool' is disabled");
}

#[test]
fn healthz_reports_full_isolation_and_limits_as_root() {
    if !test_support::skip::is_root() {
        return prerequisite_missing(
            "healthz_reports_full_isolation_and_limits_as_root",
            "not root",
        );
    }
    let daemon = daemon_with_tool();
    let body = connect_with(&daemon, None).get("/healthz").unwrap().json();
    assert_eq!(body["isolation"], "full", "{body}");
    assert_eq!(body["limits"], true, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
}

#[test]
fn without_root_healthz_reports_partial_isolation_and_limits_off() {
    const TEST: &str = "without_root_healthz_reports_partial_isolation_and_limits_off";
    if !test_support::skip::is_root() {
        return prerequisite_missing(TEST, "not root, so no unprivileged user can be switched to");
    }
    let Ok(user) = std::env::var("TOOLFORGE_TEST_UNPRIV_USER") else {
        return prerequisite_missing(
            TEST,
            "TOOLFORGE_TEST_UNPRIV_USER is not set (cargo xtask test creates the user)",
        );
    };
    let account = nix::unistd::User::from_name(&user)
        .unwrap()
        .unwrap_or_else(|| panic!("user {user}"));
    let (uid, gid) = (account.uid.as_raw(), account.gid.as_raw());
    // The unprivileged user must be able to run the binary and own the data directory.
    let scratch = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = scratch.path().join("toolforged");
    std::fs::copy(crate::bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = scratch.path().join("data");
    std::fs::create_dir(&data).unwrap();
    nix::unistd::chown(&data, Some(account.uid), Some(account.gid)).unwrap();

    let daemon = test_support::daemon::DaemonOptions::default()
        .data_dir(&data)
        .run_as(uid, gid)
        .start(&bin);
    let body = connect_with(&daemon, None).get("/healthz").unwrap().json();
    assert_eq!(body["limits"], false, "{body}");
    assert_ne!(body["isolation"], "full", "{body}");
    let stderr = daemon.captured_stderr();
    assert!(stderr.contains("limits are not enforced"), "{stderr}");
}
