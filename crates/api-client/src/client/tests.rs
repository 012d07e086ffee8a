//! Tests of the HTTP client: URL joining, the envelope, and requests to an in-process HTTPS
//! server that checks what a real gateway would (client certificate, bearer token).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use expect_test::{Expect, expect};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::client::{
    ApiClient, ClientOptions, Reply, Service, decode_reply, join_url, parse_error_body,
};
use crate::config::Config;
use crate::discovery::{ApiUrlSource, Discovery, Overrides};
use crate::env::Environment;
use crate::error::{Error, ErrorKind};
use crate::kubeconfig::{Credentials, Kubeconfig, KubeconfigLocation};
use crate::secret::Secret;

#[test]
fn urls_join_with_exactly_one_slash_but_keep_a_trailing_one() {
    let cases = [
        (
            "https://h/jobs/v1/tool/t",
            "/jobs/",
            "https://h/jobs/v1/tool/t/jobs/",
        ),
        (
            "https://h/jobs/v1/tool/t/",
            "jobs",
            "https://h/jobs/v1/tool/t/jobs",
        ),
        ("https://h/", "/healthz", "https://h/healthz"),
        ("https://h//", "//x", "https://h///x"),
    ];
    for (base, path, expected) in cases {
        assert_eq!(join_url(base, path), expected, "{base} + {path}");
    }
}

#[track_caller]
fn check_error_body(body: &str, expected: Expect) {
    let (message, messages) = parse_error_body(body);
    expected.assert_eq(&format!(
        "message: {message:?}\ninfo: {:?}\nwarning: {:?}",
        messages.info, messages.warning
    ));
}

#[test]
fn a_flat_error_list_is_joined_with_its_top_level_context() {
    check_error_body(
        r#"{"error": ["Job 'x' does not exist", "second"], "info": ["i"], "warning": ["w"], "messages": {"warning": ["nested"]}}"#,
        expect![[r#"
            message: "Job 'x' does not exist\nsecond"
            info: ["i"]
            warning: ["w"]"#]],
    );
}

#[test]
fn a_nested_error_list_is_used_with_its_nested_context() {
    check_error_body(
        r#"{"messages": {"info": [], "warning": ["You are using a beta feature of Toolforge."], "error": ["no config"]}}"#,
        expect![[r#"
            message: "no config"
            info: []
            warning: ["You are using a beta feature of Toolforge."]"#]],
    );
}

#[test]
fn the_universal_error_body_gives_one_message() {
    check_error_body(
        r#"{"error": ["msg"], "messages": {"info": [], "warning": [], "error": ["msg"]}}"#,
        expect![[r#"
            message: "msg"
            info: []
            warning: []"#]],
    );
}

#[test]
fn a_json_string_is_the_message() {
    check_error_body(
        r#""Unauthorized""#,
        expect![[r#"
            message: "Unauthorized"
            info: []
            warning: []"#]],
    );
}

#[test]
fn anything_else_is_shown_as_the_raw_text() {
    for body in [
        "<html>Bad Gateway</html>",
        r#"{"detail": "x"}"#,
        r#"{"error": "a string, not a list"}"#,
        r#"{"error": []}"#,
        "[1, 2]",
        "",
    ] {
        assert_eq!(parse_error_body(body).0, body);
    }
}

#[track_caller]
fn check_reply(status: u16, body: &str, expected: Expect) {
    let actual =
        match decode_reply::<serde_json::Value>(status, body.as_bytes(), "https://h/x", "jobs") {
            Ok(Reply { body, messages }) => format!(
                "ok {body} info={:?} warning={:?}",
                messages.info, messages.warning
            ),
            Err(err) => format!("{:?}: {}", err.kind(), crate::tests::chain(&err)),
        };
    expected.assert_eq(&actual);
}

#[test]
fn statuses_map_to_the_contracts_outcomes() {
    check_reply(
        200,
        r#"{"jobs": [], "messages": {"info": ["hi"], "warning": ["careful"]}}"#,
        expect![[
            r#"ok {"jobs":[],"messages":{"info":["hi"],"warning":["careful"]}} info=["hi"] warning=["careful"]"#
        ]],
    );
    check_reply(201, "{}", expect!["ok {} info=[] warning=[]"]);
    check_reply(
        404,
        r#"{"error": ["Job 'x' does not exist"]}"#,
        expect!["User: Job 'x' does not exist"],
    );
    check_reply(500, r#"{"error": ["boom"]}"#, expect!["Server: boom"]);
    check_reply(504, "gateway timeout", expect!["Server: gateway timeout"]);
    for status in [502, 503] {
        check_reply(
            status,
            r#"{"error": ["ignored"]}"#,
            expect![
                "Unavailable: The jobs service seems to be down – please retry in a few minutes."
            ],
        );
    }
}

#[test]
fn a_success_body_must_be_a_json_object() {
    check_reply(
        200,
        "",
        expect![
            "Server: invalid answer from https://h/x (HTTP 200): the body is not JSON: EOF while parsing a value at line 1 column 0"
        ],
    );
    check_reply(
        200,
        "[]",
        expect![
            "Server: invalid answer from https://h/x (HTTP 200): the body is not a JSON object"
        ],
    );
    check_reply(
        200,
        r#"{"messages": {"info": "not a list"}}"#,
        expect![[
            r#"Server: invalid answer from https://h/x (HTTP 200): the body does not have the expected fields: invalid type: string "not a list", expected a sequence"#
        ]],
    );
}

/// A CA, a server certificate for `localhost`/`127.0.0.1` signed by it, and a client
/// certificate, all in PEM.
struct Pki {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["mytool".to_owned()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        server_cert_pem: server.pem(),
        server_key_pem: server_key.serialize_pem(),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// A status for [`serve`] that means: accept the request and never answer.
const NEVER_ANSWER: u16 = 0;

/// What the test server saw of one request.
#[derive(Debug, Default, Clone)]
struct Seen {
    head: String,
    client_certificate: bool,
}

/// Serves `responses` (one per connection, in order) over TLS on 127.0.0.1, asking for
/// an optional client certificate; returns the port and what it saw.
async fn serve(pki: &Pki, responses: Vec<(u16, &'static str)>) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.server_cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(
        CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()).map(Result::unwrap),
    );
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_by_server = Arc::clone(&seen);
    tokio::spawn(async move {
        for (status, body) in responses {
            let (tcp, _) = listener.accept().await.unwrap();
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let client_certificate = tls.get_ref().1.peer_certificates().is_some();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tls.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            seen_by_server.lock().unwrap().push(Seen {
                head: String::from_utf8_lossy(&head).into_owned(),
                client_certificate,
            });
            if status == NEVER_ANSWER {
                // Keep the connection open without answering, until the test ends.
                std::future::pending::<()>().await;
            }
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            tls.write_all(response.as_bytes()).await.unwrap();
            tls.shutdown().await.ok();
        }
    });
    (port, seen)
}

fn discovery(api_url: String, credentials: Credentials, ca_pem: Option<&str>) -> Discovery {
    let kubeconfig = Kubeconfig {
        path: PathBuf::from("/h/.kube/config"),
        location: KubeconfigLocation::Default,
        context: "toolforge".to_owned(),
        namespace: "tool-mytool".to_owned(),
        cluster: "toolforge".to_owned(),
        server: api_url.clone(),
        certificate_authority_pem: ca_pem.map(|pem| pem.as_bytes().to_vec()),
        user: "tf-mytool".to_owned(),
        credentials,
    };
    Discovery::assemble(
        &Environment::default().with_hostname("bastion"),
        Config::default(),
        api_url,
        ApiUrlSource::Override,
        kubeconfig,
        &Overrides::default(),
    )
}

fn inline_credentials(pki: &Pki) -> Credentials {
    Credentials::CertificateData {
        certificate_pem: pki.client_cert_pem.clone().into_bytes(),
        key_pem: Secret::new(pki.client_key_pem.clone().into_bytes()),
    }
}

#[tokio::test]
async fn a_request_presents_the_client_certificate_and_verifies_the_server_with_the_kubeconfig_ca()
{
    let pki = pki();
    let (port, seen) = serve(
        &pki,
        vec![
            (200, r#"{"jobs": [], "messages": {"warning": ["w"]}}"#),
            (
                404,
                r#"{"error": ["Job 'x' does not exist"], "info": ["see list"]}"#,
            ),
        ],
    )
    .await;
    let found = discovery(
        format!("https://localhost:{port}"),
        inline_credentials(&pki),
        Some(&pki.ca_pem),
    );
    let client = ApiClient::new(&found, &ClientOptions::default()).unwrap();
    let jobs = client.service(Service::Jobs);
    assert_eq!(
        jobs.base_url(),
        format!("https://localhost:{port}/jobs/v1/tool/mytool")
    );
    let reply: Reply<serde_json::Value> = jobs.get("/jobs/").await.unwrap();
    assert_eq!(reply.messages.warning, ["w"]);
    let err = jobs
        .delete::<serde_json::Value>("/jobs/x")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::User);
    assert_eq!(err.to_string(), "Job 'x' does not exist");
    assert_eq!(err.context_messages().unwrap().info, ["see list"]);

    let seen = seen.lock().unwrap().clone();
    assert!(
        seen[0]
            .head
            .starts_with("GET /jobs/v1/tool/mytool/jobs/ HTTP/1.1\r\n"),
        "{}",
        seen[0].head
    );
    assert!(
        seen[0]
            .head
            .contains("user-agent: tool-mytool@bastion:toolforge-cli toolforge-rs/"),
        "{}",
        seen[0].head
    );
    assert!(seen[0].client_certificate);
    assert!(
        seen[1]
            .head
            .starts_with("DELETE /jobs/v1/tool/mytool/jobs/x HTTP/1.1\r\n")
    );
    assert!(
        seen[1].head.contains("content-length: 0\r\n"),
        "{}",
        seen[1].head
    );
}

#[tokio::test]
async fn a_token_is_sent_as_a_bearer_header_without_a_client_certificate() {
    let pki = pki();
    let (port, seen) = serve(&pki, vec![(200, r#"{"status": "ok", "services": {}, "isolation": "none", "limits": false, "mail": false}"#)]).await;
    let found = discovery(
        format!("https://127.0.0.1:{port}"),
        Credentials::Token(Secret::new("s3cret".to_owned())),
        Some(&pki.ca_pem),
    );
    let client = ApiClient::new(&found, &ClientOptions::default()).unwrap();
    let health = client.health().await.unwrap();
    assert_eq!(health.status, "ok");
    let seen = seen.lock().unwrap().clone();
    assert!(seen[0].head.starts_with("GET /healthz HTTP/1.1\r\n"));
    assert!(
        seen[0].head.contains("authorization: Bearer s3cret\r\n"),
        "{}",
        seen[0].head
    );
    assert!(!seen[0].client_certificate);
}

#[tokio::test]
async fn a_degraded_gateway_reports_its_health_with_503() {
    let pki = pki();
    let (port, _seen) = serve(
        &pki,
        vec![(503, r#"{"status": "degraded", "services": {"store": "down"}, "isolation": "none", "limits": false, "mail": false}"#)],
    )
    .await;
    let found = discovery(
        format!("https://127.0.0.1:{port}"),
        inline_credentials(&pki),
        Some(&pki.ca_pem),
    );
    let client = ApiClient::new(&found, &ClientOptions::default()).unwrap();
    let health = client.health().await.unwrap();
    assert_eq!(health.status, "degraded");
    assert_eq!(health.services["store"], "down");
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_refused_as_the_service_being_down() {
    let pki = pki();
    let other = self::pki();
    let (port, _seen) = serve(&pki, vec![(200, "{}")]).await;
    let found = discovery(
        format!("https://localhost:{port}"),
        inline_credentials(&pki),
        Some(&other.ca_pem),
    );
    let client = ApiClient::new(&found, &ClientOptions::default()).unwrap();
    let err = client
        .service(Service::Envvars)
        .get::<serde_json::Value>("/envvars")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    let chain = crate::tests::chain(&err);
    assert!(
        chain
            .starts_with("The envvars service seems to be down – please retry in a few minutes.: "),
        "{chain}"
    );
    assert!(chain.contains("invalid peer certificate"), "{chain}");
}

#[tokio::test]
async fn a_refused_connection_is_the_service_being_down() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let pki = pki();
    let found = discovery(
        format!("https://127.0.0.1:{port}"),
        inline_credentials(&pki),
        Some(&pki.ca_pem),
    );
    let client = ApiClient::new(&found, &ClientOptions::default()).unwrap();
    let err = client
        .service(Service::Builds)
        .get::<serde_json::Value>("/builds")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ServiceDown {
                service: "build",
                status: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(crate::tests::chain(&err).contains("Connection refused"));
}

#[test]
fn an_api_url_that_is_not_http_is_an_error_naming_its_origin() {
    let pki = pki();
    for url in ["", "api.example.org:30003", "ftp://h"] {
        let mut found = discovery(url.to_owned(), inline_credentials(&pki), Some(&pki.ca_pem));
        found.api_url_source = ApiUrlSource::EnvVar;
        let err = ApiClient::new(&found, &ClientOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the API URL '{url}' (from TOOL_TOOLFORGE_API_URL) is not a valid http or https URL"
            )
        );
        assert_eq!(err.kind(), ErrorKind::Config);
    }
}

#[test]
fn service_endpoints_come_from_the_config() {
    let pki = pki();
    let mut found = discovery(
        "https://h:1/".to_owned(),
        inline_credentials(&pki),
        Some(&pki.ca_pem),
    );
    found
        .config
        .merge_text(
            "/etc/toolforge/common.yaml".as_ref(),
            "jobs: {jobs_endpoint: /jobs/v2}\n",
        )
        .unwrap();
    let client = ApiClient::new(&found, &ClientOptions::default()).unwrap();
    assert_eq!(
        client.service(Service::Jobs).url("/jobs/"),
        "https://h:1//jobs/v2/tool/mytool/jobs/"
    );
    assert_eq!(
        client.service(Service::Components).base_url(),
        "https://h:1//components/v1/tool/mytool"
    );
}

#[tokio::test]
async fn a_streamed_answer_is_read_line_by_line() {
    let pki = pki();
    let (port, seen) = serve(
        &pki,
        vec![
            (200, "{\"message\": \"a\"}\nb\r\n\nlast without newline"),
            (404, r#"{"error": ["Job 'x' does not exist"]}"#),
        ],
    )
    .await;
    let found = discovery(
        format!("https://localhost:{port}"),
        inline_credentials(&pki),
        Some(&pki.ca_pem),
    );
    let options = ClientOptions::default().without_read_timeout();
    let client = ApiClient::new(&found, &options).unwrap();
    let jobs = client.service(Service::Jobs);
    let mut lines = jobs.get_lines("/jobs/x/logs?follow=false").await.unwrap();
    let mut got = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        got.push(line);
    }
    assert_eq!(
        got,
        [r#"{"message": "a"}"#, "b", "", "last without newline"]
    );
    let err = jobs.get_lines("/jobs/x/logs").await.unwrap_err();
    assert_eq!(err.to_string(), "Job 'x' does not exist");
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen[0]
            .head
            .starts_with("GET /jobs/v1/tool/mytool/jobs/x/logs?follow=false HTTP/1.1\r\n"),
        "{}",
        seen[0].head
    );
}

#[test]
fn the_jobs_timeout_comes_from_the_config_and_the_others_are_20_seconds() {
    let mut config = Config::default();
    let jobs = ClientOptions::for_service(&config, Service::Jobs).unwrap();
    assert_eq!(jobs.read_timeout, Some(std::time::Duration::from_secs(60)));
    config
        .merge_text("/c".as_ref(), "jobs: {timeout: 5}\n")
        .unwrap();
    let jobs = ClientOptions::for_service(&config, Service::Jobs).unwrap();
    assert_eq!(jobs.connect_timeout, std::time::Duration::from_secs(5));
    assert_eq!(jobs.read_timeout, Some(std::time::Duration::from_secs(5)));
    let envvars = ClientOptions::for_service(&config, Service::Envvars).unwrap();
    assert_eq!(
        envvars.read_timeout,
        Some(std::time::Duration::from_secs(20))
    );
    assert_eq!(envvars.without_read_timeout().read_timeout, None);
}

#[tokio::test]
async fn a_server_that_accepts_but_never_answers_is_a_read_timeout_not_the_service_being_down() {
    let pki = pki();
    let (port, _seen) = serve(&pki, vec![(NEVER_ANSWER, "")]).await;
    let found = discovery(
        format!("https://localhost:{port}"),
        inline_credentials(&pki),
        Some(&pki.ca_pem),
    );
    let options = ClientOptions {
        read_timeout: Some(std::time::Duration::from_millis(200)),
        ..ClientOptions::default()
    };
    let client = ApiClient::new(&found, &options).unwrap();
    let err = client
        .service(Service::Jobs)
        .get::<serde_json::Value>("/jobs/")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(
        err.to_string(),
        format!("no answer from https://localhost:{port}/jobs/v1/tool/mytool/jobs/ within 200ms")
    );
}
