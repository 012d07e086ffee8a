//! The job network as root: a namespace per replica, reachable from the host, isolated from
//! other tools, with the host address (where the API listens) reachable.

use std::time::Duration;

use runtime::{ExitStatus, Runtime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Fixture, eventually, exit_of};

const TOOL_UID: u32 = 52021;
const OTHER_UID: u32 = 52022;

async fn http_get(endpoint: std::net::SocketAddr) -> Option<String> {
    let mut stream = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(endpoint),
    )
    .await
    .ok()?
    .ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await.ok()?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .ok()?
        .ok()?;
    Some(response)
}

#[tokio::test]
async fn two_replicas_of_an_http_server_on_the_same_port_both_answer_on_their_own_addresses() {
    let Some(fixture) = Fixture::root_with_python(
        "two_replicas_of_an_http_server_on_the_same_port_both_answer_on_their_own_addresses",
    )
    .await
    else {
        return;
    };
    let runtime = fixture.runtime();
    let mut handles = Vec::new();
    for replica in 0..2 {
        let mut spec = fixture.spec(
            "mytool",
            TOOL_UID,
            "web",
            replica,
            "/usr/bin/python3 -m http.server 8000",
        );
        spec.port = Some(8000);
        handles.push(runtime.start(spec).await.expect("started"));
    }
    let endpoints: Vec<_> = handles
        .iter()
        .map(|h| h.endpoint.expect("endpoint"))
        .collect();
    assert_ne!(endpoints[0].ip(), endpoints[1].ip());
    for endpoint in &endpoints {
        assert_eq!(endpoint.port(), 8000);
        let answered = eventually(Duration::from_secs(20), || async {
            http_get(*endpoint)
                .await
                .is_some_and(|r| r.starts_with("HTTP/1.0 200"))
        })
        .await;
        assert!(answered, "{endpoint} did not answer");
    }
    for handle in &handles {
        assert_eq!(
            runtime
                .stop(&handle.id, Duration::from_secs(5))
                .await
                .expect("stopped"),
            ExitStatus::Signal(15)
        );
    }
    assert!(fixture.network_namespaces().is_empty());
}

#[tokio::test]
async fn a_job_cannot_connect_to_another_tools_unpublished_port() {
    let Some(fixture) =
        Fixture::root_with_python("a_job_cannot_connect_to_another_tools_unpublished_port").await
    else {
        return;
    };
    let runtime = fixture.runtime();
    let mut server = fixture.spec(
        "othertool",
        OTHER_UID,
        "web",
        0,
        "/usr/bin/python3 -m http.server 8000",
    );
    server.port = Some(8000);
    let server = runtime.start(server).await.expect("server started");
    let endpoint = server.endpoint.expect("endpoint");
    assert!(
        eventually(Duration::from_secs(20), || async {
            http_get(endpoint).await.is_some()
        })
        .await,
        "the other tool's server never came up"
    );
    let probe = format!(
        "/usr/bin/python3 -c 'import socket,sys\ntry:\n socket.create_connection((\"{}\", 8000), timeout=3)\n print(\"connected\")\nexcept OSError as e:\n print(\"refused:\", type(e).__name__)\n sys.exit(1)'",
        endpoint.ip()
    );
    let spec = fixture.spec("mytool", TOOL_UID, "probe", 0, &probe);
    let mut handle = runtime.start(spec.clone()).await.expect("started");
    assert_eq!(
        exit_of(&mut handle, Duration::from_secs(30)).await,
        ExitStatus::Code(1),
        "{}",
        fixture.stdout_of(&spec)
    );
    assert!(
        fixture.stdout_of(&spec).starts_with("refused:"),
        "{}",
        fixture.stdout_of(&spec)
    );
    runtime
        .stop(&server.id, Duration::from_secs(5))
        .await
        .expect("stopped");
}

#[tokio::test]
async fn a_job_reaches_a_server_on_the_job_networks_host_address() {
    let Some(fixture) =
        Fixture::root_with_python("a_job_reaches_a_server_on_the_job_networks_host_address").await
    else {
        return;
    };
    let runtime = fixture.runtime();
    let host = runtime.job_network_host().expect("a job network as root");
    // Stands in for the API gateway, which also listens on this address.
    let listener = tokio::net::TcpListener::bind((host, 0))
        .await
        .expect("bind the host address");
    let api_url = format!("http://{}/", listener.local_addr().expect("addr"));
    let server = async {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request).await;
        stream
            .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .await
            .expect("answer");
    };
    let mut spec = fixture.spec(
        "mytool",
        TOOL_UID,
        "api-client",
        0,
        "/usr/bin/python3 -c 'import os,urllib.request; print(urllib.request.urlopen(os.environ[\"TOOL_TOOLFORGE_API_URL\"], timeout=5).read().decode())'",
    );
    spec.env
        .insert("TOOL_TOOLFORGE_API_URL".to_owned(), api_url);
    let mut handle = runtime.start(spec.clone()).await.expect("started");
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the job connected");
    assert_eq!(
        exit_of(&mut handle, Duration::from_secs(30)).await,
        ExitStatus::Code(0),
        "{}",
        fixture.stderr_of(&spec)
    );
    assert_eq!(fixture.stdout_of(&spec), "ok\n");
}

/// Removes a route when dropped.
struct RouteGuard(String);

impl Drop for RouteGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["route", "del", &self.0, "dev", "lo"])
            .status();
    }
}

#[tokio::test]
async fn a_replica_whose_first_address_is_taken_gets_another_free_one() {
    let Some(fixture) =
        Fixture::root("a_replica_whose_first_address_is_taken_gets_another_free_one").await
    else {
        return;
    };
    let runtime = fixture.runtime();
    let spec = fixture.spec("mytool", TOOL_UID, "claims", 0, "true");
    let mut handle = runtime.start(spec.clone()).await.expect("started");
    let first = handle.address.expect("an address");
    exit_of(&mut handle, Duration::from_secs(30)).await;

    // Someone else (another daemon) now holds that address: the same id hashes to it first.
    let route = format!("{first}/32");
    let status = std::process::Command::new("ip")
        .args(["route", "add", &route, "dev", "lo"])
        .status()
        .expect("ip");
    assert!(status.success());
    let _guard = RouteGuard(route);
    let mut handle = runtime.start(spec).await.expect("started again");
    let second = handle.address.expect("an address");
    assert_ne!(first, second);
    assert_eq!(
        exit_of(&mut handle, Duration::from_secs(30)).await,
        ExitStatus::Code(0)
    );
    assert!(fixture.network_namespaces().is_empty());
}
