//! Routing, balancing, retries, headers, streaming, limits and bans.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use proxy::{Ban, BanList};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::support::{
    Control, TestBody, dead_address, get, http1, read, start_proxy, start_upstream,
};

#[tokio::test(flavor = "multi_thread")]
async fn requests_reach_the_tool_by_host_name_and_replicas_take_turns() {
    let control = Arc::new(Control::default());
    let a = start_upstream("a", control.clone()).await;
    let b = start_upstream("b", control.clone()).await;
    let other = start_upstream("other", control.clone()).await;
    let proxy = start_proxy(|_| {}, None, None).await;
    proxy.directory.set_upstreams("mytool", vec![a, b]);
    proxy.directory.set_upstreams("othertool", vec![other]);
    let mut names = Vec::new();
    for _ in 0..4 {
        let reply = get(
            proxy.addr,
            &format!("mytool.localhost:{}", proxy.addr.port()),
            "/x?y=1",
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.json()["path"], "/x?y=1");
        names.push(reply.json()["name"].as_str().unwrap().to_owned());
    }
    assert_eq!(names, ["a", "b", "a", "b"]);
    let reply = get(proxy.addr, "othertool.localhost", "/").await;
    assert_eq!(reply.json()["name"], "other");
    // Kept-alive: one client connection, requests still alternate between replicas.
    let mut sender = http1(proxy.addr).await;
    let mut names = Vec::new();
    for _ in 0..4 {
        sender.ready().await.unwrap();
        let req = Request::get("/")
            .header("host", "mytool.localhost")
            .body(TestBody::Full(None))
            .unwrap();
        let reply = read(sender.send_request(req).await.unwrap()).await;
        names.push(reply.json()["name"].as_str().unwrap().to_owned());
    }
    assert_eq!(names.iter().filter(|n| *n == "a").count(), 2, "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_that_refuses_connections_is_skipped_so_no_request_is_lost() {
    let control = Arc::new(Control::default());
    let live = start_upstream("live", control).await;
    let dead = dead_address().await;
    let proxy = start_proxy(|_| {}, None, None).await;
    proxy
        .directory
        .set_upstreams("mytool", vec![dead, live, dead]);
    for _ in 0..6 {
        let reply = get(proxy.addr, "mytool.localhost", "/").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.json()["name"], "live");
    }
    proxy.directory.set_upstreams("mytool", vec![dead]);
    let reply = get(proxy.addr, "mytool.localhost", "/").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert!(
        reply
            .body
            .contains("none of its replicas accepted a connection"),
        "{}",
        reply.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_that_went_away_after_keep_alive_is_replaced_by_the_next() {
    let control = Arc::new(Control::default());
    let a = start_upstream("a", control.clone()).await;
    let proxy = start_proxy(|_| {}, None, None).await;
    proxy.directory.set_upstreams("mytool", vec![a]);
    assert_eq!(
        get(proxy.addr, "mytool.localhost", "/").await.json()["name"],
        "a"
    );
    // A rolling restart: the old replica is gone, a new one serves.
    let b = start_upstream("b", control).await;
    proxy
        .directory
        .set_upstreams("mytool", vec![dead_address().await, b]);
    for _ in 0..3 {
        assert_eq!(
            get(proxy.addr, "mytool.localhost", "/").await.json()["name"],
            "b"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_headers_are_set_and_hop_by_hop_headers_removed_both_ways() {
    let a = start_upstream("a", Arc::default()).await;
    let proxy = start_proxy(|_| {}, None, None).await;
    proxy.directory.set_upstreams("mytool", vec![a]);
    let mut sender = http1(proxy.addr).await;
    let req = Request::get("/")
        .header("host", "mytool.localhost:8080")
        .header("x-forwarded-for", "203.0.113.5")
        .header("x-forwarded-proto", "https")
        .header("connection", "keep-alive, x-client-secret")
        .header("x-client-secret", "s")
        .header("proxy-authorization", "Basic eA==")
        .header("x-kept", "yes")
        .body(TestBody::Full(None))
        .unwrap();
    let reply = read(sender.send_request(req).await.unwrap()).await;
    let headers = &reply.json()["headers"];
    assert_eq!(headers["x-forwarded-for"], "203.0.113.5, 127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "mytool.localhost:8080");
    assert_eq!(headers["host"], "mytool.localhost:8080");
    assert_eq!(headers["x-kept"], "yes");
    assert!(headers.get("x-client-secret").is_none(), "{headers}");
    assert!(headers.get("proxy-authorization").is_none(), "{headers}");
    assert!(
        !reply.headers.contains_key("x-upstream-secret"),
        "{:?}",
        reply.headers
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn request_and_response_bodies_stream_through_without_buffering() {
    let control = Arc::new(Control::default());
    let a = start_upstream("a", control.clone()).await;
    let proxy = start_proxy(|_| {}, None, None).await;
    proxy.directory.set_upstreams("mytool", vec![a]);

    // The response: the first chunk arrives while the upstream still holds the second.
    let mut sender = http1(proxy.addr).await;
    let req = Request::get("/stream")
        .header("host", "mytool.localhost")
        .body(TestBody::Full(None))
        .unwrap();
    let mut body = sender.send_request(req).await.unwrap().into_body();
    let first = next_data(&mut body).await;
    assert_eq!(first, "first");
    control.release.notify_waiters();
    assert_eq!(next_data(&mut body).await, "second");

    // The request: each chunk comes back before the next one is sent.
    let mut sender = http1(proxy.addr).await;
    let (chunks, receiver) = mpsc::channel(1);
    let req = Request::post("/echo")
        .header("host", "mytool.localhost")
        .body(TestBody::Channel(receiver))
        .unwrap();
    let response = tokio::spawn(async move { sender.send_request(req).await.unwrap() });
    chunks.send(Bytes::from_static(b"ping-1")).await.unwrap();
    let mut body = response.await.unwrap().into_body();
    assert_eq!(next_data(&mut body).await, "ping-1");
    chunks.send(Bytes::from_static(b"ping-2")).await.unwrap();
    assert_eq!(next_data(&mut body).await, "ping-2");
}

async fn next_data(body: &mut hyper::body::Incoming) -> String {
    use http_body_util::BodyExt;
    loop {
        let frame = body.frame().await.expect("a frame").expect("no error");
        if let Ok(data) = frame.into_data() {
            return String::from_utf8_lossy(&data).into_owned();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgraded_websocket_connection_echoes_both_ways_through_the_proxy() {
    let a = start_upstream("a", Arc::default()).await;
    let proxy = start_proxy(|_| {}, None, None).await;
    proxy.directory.set_upstreams("mytool", vec![a]);
    let mut sender = http1(proxy.addr).await;
    let req = Request::get("/ws")
        .header("host", "mytool.localhost")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(TestBody::Full(None))
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()["upgrade"], "websocket");
    let upgraded = hyper::upgrade::on(response).await.unwrap();
    let mut io = hyper_util::rt::TokioIo::new(upgraded);
    for message in ["hello", "again"] {
        io.write_all(message.as_bytes()).await.unwrap();
        let mut buf = vec![0; message.len()];
        io.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, message.as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_that_does_not_answer_in_time_gets_the_504_page() {
    let a = start_upstream("a", Arc::default()).await;
    let proxy = start_proxy(
        |config| config.upstream_timeout = Duration::from_millis(300),
        None,
        None,
    )
    .await;
    proxy.directory.set_upstreams("mytool", vec![a]);
    let reply = get(proxy.addr, "mytool.localhost", "/never").await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(
        reply.body.contains("did not answer within"),
        "{}",
        reply.body
    );
    // The tool still works afterwards.
    assert_eq!(
        get(proxy.addr, "mytool.localhost", "/").await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_body_gets_413_with_and_without_content_length() {
    let a = start_upstream("a", Arc::default()).await;
    let proxy = start_proxy(|config| config.max_body = 1000, None, None).await;
    proxy.directory.set_upstreams("mytool", vec![a]);
    // Declared.
    let mut sender = http1(proxy.addr).await;
    let req = Request::post("/consume")
        .header("host", "mytool.localhost")
        .body(TestBody::Full(Some(Bytes::from(vec![b'x'; 1001]))))
        .unwrap();
    let reply = read(sender.send_request(req).await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reply.body.contains("limit of 1000 bytes"), "{}", reply.body);
    // Streamed (chunked): refused once the limit is crossed.
    let mut sender = http1(proxy.addr).await;
    let (chunks, receiver) = mpsc::channel(8);
    let req = Request::post("/consume")
        .header("host", "mytool.localhost")
        .body(TestBody::Channel(receiver))
        .unwrap();
    let feeder = tokio::spawn(async move {
        for _ in 0..4 {
            if chunks.send(Bytes::from(vec![b'y'; 400])).await.is_err() {
                break;
            }
        }
    });
    let reply = read(sender.send_request(req).await.unwrap()).await;
    feeder.await.unwrap();
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    // At the limit it passes.
    let mut sender = http1(proxy.addr).await;
    let req = Request::post("/consume")
        .header("host", "mytool.localhost")
        .body(TestBody::Full(Some(Bytes::from(vec![b'x'; 1000]))))
        .unwrap();
    let reply = read(sender.send_request(req).await.unwrap()).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "1000")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_per_tool_connection_limit_answers_503_naming_the_limit() {
    let control = Arc::new(Control::default());
    let (arrivals, mut arrived) = mpsc::unbounded_channel();
    *control.arrivals.lock().unwrap() = Some(arrivals);
    let a = start_upstream("a", control.clone()).await;
    let proxy = start_proxy(|config| config.max_connections_per_tool = 2, None, None).await;
    proxy.directory.set_upstreams("mytool", vec![a]);
    proxy.directory.set_upstreams("othertool", vec![a]);
    let held: Vec<_> = (0..2)
        .map(|_| {
            let addr = proxy.addr;
            tokio::spawn(async move { get(addr, "mytool.localhost", "/hold").await })
        })
        .collect();
    arrived.recv().await.unwrap();
    arrived.recv().await.unwrap();
    let reply = get(proxy.addr, "mytool.localhost", "/").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reply.body.contains("limit of 2 concurrent connections"),
        "{}",
        reply.body
    );
    // Another tool is not affected.
    assert_eq!(
        get(proxy.addr, "othertool.localhost", "/").await.status,
        StatusCode::OK
    );
    control.release.notify_waiters();
    for request in held {
        assert_eq!(request.await.unwrap().body, "held");
    }
    assert_eq!(
        get(proxy.addr, "mytool.localhost", "/").await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_banned_address_gets_403_before_anything_else_and_gets_through_once_unbanned() {
    let a = start_upstream("a", Arc::default()).await;
    let proxy = start_proxy(|_| {}, None, None).await;
    proxy.directory.set_upstreams("mytool", vec![a]);
    let mut kept_alive = http1(proxy.addr).await;
    proxy.proxy.set_bans(BanList::new(&[Ban {
        net: proxy::bans::parse_net("127.0.0.0/8").unwrap(),
        reason: "abuse <b>report</b>".to_owned(),
    }]));
    for host in ["mytool.localhost", "no such host!", "localhost"] {
        let reply = get(proxy.addr, host, "/").await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{host}");
        assert!(
            reply.body.contains("abuse &#60;b&#62;report&#60;/b&#62;"),
            "{}",
            reply.body
        );
    }
    // A connection opened before the ban is refused too.
    kept_alive.ready().await.unwrap();
    let req = Request::get("/")
        .header("host", "mytool.localhost")
        .body(TestBody::Full(None))
        .unwrap();
    assert_eq!(
        kept_alive.send_request(req).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    proxy.proxy.set_bans(BanList::new(&[Ban {
        net: proxy::bans::parse_net("192.0.2.0/24").unwrap(),
        reason: "other".to_owned(),
    }]));
    assert_eq!(
        get(proxy.addr, "mytool.localhost", "/").await.status,
        StatusCode::OK
    );
}
