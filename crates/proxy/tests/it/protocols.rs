//! HTTP/2 with prior knowledge, and TLS termination with real certificates (ALPN h2
//! and http/1.1).

use std::sync::Arc;

use http::{Request, StatusCode, Version};
use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject;

use crate::support::{TestBody, http2, read, start_proxy, start_upstream};

#[tokio::test(flavor = "multi_thread")]
async fn http2_with_prior_knowledge_reaches_the_tool_over_http1_upstream() {
    let a = start_upstream("a", Arc::default()).await;
    let proxy = start_proxy(|_| {}, None, None).await;
    proxy.directory.set_upstreams("mytool", vec![a]);
    let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let mut sender = http2(tcp).await;
    let req = Request::get(format!(
        "http://mytool.localhost:{}/h2?x=1",
        proxy.addr.port()
    ))
    .version(Version::HTTP_2)
    .body(TestBody::Full(None))
    .unwrap();
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    let reply = read(response).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let doc = reply.json();
    assert_eq!(doc["path"], "/h2?x=1");
    assert_eq!(
        doc["headers"]["host"],
        format!("mytool.localhost:{}", proxy.addr.port())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_is_terminated_with_the_configured_certificate_for_h2_and_http1() {
    let now = time::OffsetDateTime::now_utc();
    let ca = pki::CertificateAuthority::create(now, time::Duration::days(1)).unwrap();
    let issued = ca
        .issue_server(
            &["mytool.localhost".to_owned()],
            now,
            time::Duration::days(1),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("proxy.crt");
    let key = dir.path().join("proxy.key");
    std::fs::write(&cert, &issued.cert_pem).unwrap();
    std::fs::write(&key, &issued.key_pem).unwrap();
    let tls = proxy::tls::server_config(&cert, &key).unwrap();
    let a = start_upstream("a", Arc::default()).await;
    let proxy = start_proxy(|_| {}, Some(tls), None).await;
    proxy.directory.set_upstreams("mytool", vec![a]);

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap())
        .unwrap();
    for (alpn, version) in [
        (&b"h2"[..], Version::HTTP_2),
        (&b"http/1.1"[..], Version::HTTP_11),
    ] {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        let stream = connector
            .connect(ServerName::try_from("mytool.localhost").unwrap(), tcp)
            .await
            .expect("the proxy's certificate verifies against the CA");
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn));
        let reply = if version == Version::HTTP_2 {
            let mut sender = http2(stream).await;
            let req = Request::get("https://mytool.localhost/")
                .body(TestBody::Full(None))
                .unwrap();
            read(sender.send_request(req).await.unwrap()).await
        } else {
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            let req = Request::get("/")
                .header("host", "mytool.localhost")
                .body(TestBody::Full(None))
                .unwrap();
            read(sender.send_request(req).await.unwrap()).await
        };
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.json()["headers"]["x-forwarded-proto"], "https");
    }
}

#[test]
fn a_key_that_does_not_match_or_a_missing_file_is_refused_with_the_reason() {
    let now = time::OffsetDateTime::now_utc();
    let ca = pki::CertificateAuthority::create(now, time::Duration::days(1)).unwrap();
    let one = ca
        .issue_server(&["a.localhost".to_owned()], now, time::Duration::days(1))
        .unwrap();
    let two = ca
        .issue_server(&["b.localhost".to_owned()], now, time::Duration::days(1))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("c.pem");
    let key = dir.path().join("k.pem");
    std::fs::write(&cert, &one.cert_pem).unwrap();
    std::fs::write(&key, &two.key_pem).unwrap();
    let err = proxy::tls::server_config(&cert, &key).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the certificate and key cannot be used together"
    );
    let err = proxy::tls::server_config(&dir.path().join("missing.pem"), &key).unwrap_err();
    assert!(err.to_string().starts_with("cannot read "), "{err}");
    std::fs::write(&key, "not a key").unwrap();
    std::fs::write(&cert, &one.cert_pem).unwrap();
    let err = proxy::tls::server_config(&cert, &key).unwrap_err();
    assert!(
        err.to_string().contains("holds no PEM private key"),
        "{err}"
    );
}
