//! A real WebSocket conversation (RFC 6455 handshake and frames, both directions) through
//! the proxy, with a WebSocket server upstream and a WebSocket client in front.

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::start_proxy;

/// Starts a WebSocket server that echoes every text and binary message, prefixed so the
/// test sees the answer came from the server, and answers a close with a close.
async fn start_echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    let answer = match message {
                        Message::Text(text) => Message::text(format!("echo: {text}")),
                        Message::Binary(data) => Message::binary(data),
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    if ws.send(answer).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_client_and_server_exchange_framed_messages_through_the_proxy() {
    let upstream = start_echo_server().await;
    let proxy = start_proxy(|_| {}, None, None).await;
    proxy.directory.set_upstreams("wstool", vec![upstream]);

    let mut request = format!("ws://wstool.localhost:{}/socket", proxy.addr.port())
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "origin",
        http::HeaderValue::from_static("http://wstool.localhost"),
    );
    // Connect to the proxy's address; the Host header (from the URL) picks the tool.
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut ws, response) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("the WebSocket handshake through the proxy succeeds");
    assert_eq!(response.status(), http::StatusCode::SWITCHING_PROTOCOLS);

    for text in ["hello", "a second message", &"long ".repeat(20_000)] {
        ws.send(Message::text(text)).await.unwrap();
        let answer = ws.next().await.expect("an answer").unwrap();
        assert_eq!(answer, Message::text(format!("echo: {text}")));
    }
    let blob: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    ws.send(Message::binary(blob.clone())).await.unwrap();
    assert_eq!(
        ws.next().await.expect("an answer").unwrap(),
        Message::binary(blob)
    );
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_handshake_for_a_tool_without_a_webservice_gets_the_404_page() {
    let proxy = start_proxy(|_| {}, None, None).await;
    let request = format!("ws://nothing.localhost:{}/socket", proxy.addr.port())
        .into_client_request()
        .unwrap();
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    match tokio_tungstenite::client_async(request, stream).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), http::StatusCode::NOT_FOUND);
        }
        other => panic!("expected a 404 answer, got {other:?}"),
    }
}
