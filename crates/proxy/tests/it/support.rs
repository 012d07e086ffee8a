//! Fixtures: a directory held in memory, real upstream HTTP servers on loopback, a
//! proxy on a free port, and a small HTTP/1.1 and HTTP/2 client.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use proxy::{BoxFuture, Directory, DirectoryError, Proxy, ProxyConfig, ToolInfo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Tools and their upstreams, changeable while the proxy runs.
#[derive(Debug, Default)]
pub struct TestDirectory {
    pub upstreams: Mutex<HashMap<String, Vec<SocketAddr>>>,
    pub tools: Mutex<HashMap<String, ToolInfo>>,
}

impl TestDirectory {
    pub fn add_tool(&self, name: &str, info: ToolInfo) {
        self.tools.lock().unwrap().insert(name.to_owned(), info);
    }

    pub fn set_upstreams(&self, tool: &str, addrs: Vec<SocketAddr>) {
        self.upstreams
            .lock()
            .unwrap()
            .insert(tool.to_owned(), addrs);
    }
}

impl Directory for TestDirectory {
    fn upstreams<'a>(&'a self, tool: &'a str) -> BoxFuture<'a, Vec<SocketAddr>> {
        let addrs = self
            .upstreams
            .lock()
            .unwrap()
            .get(tool)
            .cloned()
            .unwrap_or_default();
        Box::pin(async move { addrs })
    }

    fn tool<'a>(
        &'a self,
        tool: &'a str,
    ) -> BoxFuture<'a, Result<Option<ToolInfo>, DirectoryError>> {
        let info = self.tools.lock().unwrap().get(tool).cloned();
        Box::pin(async move { Ok(info) })
    }

    fn tool_names(&self) -> BoxFuture<'_, Result<Vec<String>, DirectoryError>> {
        let names = self.tools.lock().unwrap().keys().cloned().collect();
        Box::pin(async move { Ok(names) })
    }
}

/// A running proxy; stops when dropped.
pub struct TestProxy {
    pub addr: SocketAddr,
    pub proxy: Arc<Proxy>,
    pub directory: Arc<TestDirectory>,
    cancel: CancellationToken,
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Starts a proxy for `localhost` with `config` changes, plain or with TLS.
pub async fn start_proxy(
    configure: impl FnOnce(&mut ProxyConfig),
    tls: Option<Arc<rustls::ServerConfig>>,
    access_log: Option<proxy::AccessLog>,
) -> TestProxy {
    let mut config = ProxyConfig::new("localhost");
    configure(&mut config);
    let directory = Arc::new(TestDirectory::default());
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let proxy = Proxy::new(
        config,
        directory.clone(),
        access_log,
        tracker.clone(),
        cancel.clone(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(proxy::serve(
        proxy.clone(),
        listener,
        tls,
        cancel.clone(),
        tracker,
    ));
    TestProxy {
        addr,
        proxy,
        directory,
        cancel,
    }
}

/// What upstream servers share with the test: arrivals and releases.
#[derive(Debug, Default)]
pub struct Control {
    /// Released by the test: `/hold` answers and `/stream` sends its second chunk.
    pub release: Notify,
    /// One message per request that reached `/hold`.
    pub arrivals: Mutex<Option<mpsc::UnboundedSender<()>>>,
}

/// A real upstream: HTTP/1.1 with upgrades on a loopback port.
///
/// - `/`: `<name>` and the request's headers as JSON;
/// - `/echo`: streams the request body back as it arrives;
/// - `/consume`: reads the whole body, answers its length;
/// - `/stream`: sends `first`, waits for [`Control::release`], sends `second`;
/// - `/hold`: reports its arrival, waits for [`Control::release`], answers `held`;
/// - `/never`: never answers;
/// - `/ws`: answers 101 and echoes the upgraded connection.
pub async fn start_upstream(name: &'static str, control: Arc<Control>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let control = control.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let control = control.clone();
                    async move { Ok::<_, Infallible>(upstream_answer(name, control, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

async fn upstream_answer(
    name: &str,
    control: Arc<Control>,
    mut req: Request<Incoming>,
) -> Response<TestBody> {
    match req.uri().path() {
        "/echo" => Response::new(TestBody::Incoming(req.into_body())),
        "/consume" => {
            let len = match req.into_body().collect().await {
                Ok(collected) => collected.to_bytes().len(),
                Err(_) => return text(StatusCode::BAD_REQUEST, "broken body"),
            };
            text(StatusCode::OK, &len.to_string())
        }
        "/stream" => {
            let (sender, receiver) = mpsc::channel(4);
            tokio::spawn(async move {
                let _ = sender.send(Bytes::from_static(b"first")).await;
                control.release.notified().await;
                let _ = sender.send(Bytes::from_static(b"second")).await;
            });
            Response::new(TestBody::Channel(receiver))
        }
        "/hold" => {
            let notified = control.release.notified();
            if let Some(arrivals) = control.arrivals.lock().unwrap().as_ref() {
                let _ = arrivals.send(());
            }
            notified.await;
            text(StatusCode::OK, "held")
        }
        "/never" => std::future::pending().await,
        "/ws" => {
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(upgraded) = upgrade.await {
                    let (mut read, mut write) = tokio::io::split(TokioIo::new(upgraded));
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                }
            });
            let mut response = Response::new(TestBody::Full(Some(Bytes::new())));
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            response
                .headers_mut()
                .insert("connection", "upgrade".parse().unwrap());
            response
                .headers_mut()
                .insert("upgrade", "websocket".parse().unwrap());
            response
        }
        _ => {
            let headers: HashMap<String, String> = req
                .headers()
                .iter()
                .map(|(key, value)| {
                    (
                        key.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let doc = serde_json::json!({"name": name, "path": req.uri().to_string(), "headers": headers});
            let mut response = text(StatusCode::OK, &doc.to_string());
            response
                .headers_mut()
                .insert("x-upstream-secret", "1".parse().unwrap());
            response
                .headers_mut()
                .insert("connection", "x-upstream-secret".parse().unwrap());
            response
        }
    }
}

fn text(status: StatusCode, body: &str) -> Response<TestBody> {
    let mut response = Response::new(TestBody::Full(Some(Bytes::from(body.to_owned()))));
    *response.status_mut() = status;
    response
}

/// Bodies of the test servers and clients.
pub enum TestBody {
    Full(Option<Bytes>),
    Channel(mpsc::Receiver<Bytes>),
    Incoming(Incoming),
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match &mut *self {
            TestBody::Full(content) => {
                Poll::Ready(content.take().map(|data| Ok(Frame::data(data))))
            }
            TestBody::Channel(receiver) => receiver
                .poll_recv(cx)
                .map(|data| data.map(|data| Ok(Frame::data(data)))),
            TestBody::Incoming(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|err| Box::new(err) as Self::Error),
        }
    }
}

/// A reply read to the end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("{err}: {}", self.body))
    }
}

/// An HTTP/1.1 connection to `addr`.
pub async fn http1(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<TestBody> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    sender
}

/// An HTTP/2 connection (prior knowledge) over `io`.
pub async fn http2<I>(io: I) -> hyper::client::conn::http2::SendRequest<TestBody>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

/// `GET path` with `Host: host` on a new connection, read to the end.
pub async fn get(addr: SocketAddr, host: &str, path: &str) -> Reply {
    let mut sender = http1(addr).await;
    let req = Request::get(path)
        .header("host", host)
        .body(TestBody::Full(None))
        .unwrap();
    read(sender.send_request(req).await.unwrap()).await
}

/// Reads a response to the end.
pub async fn read(response: Response<Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// An address nothing listens on: bound, then released.
pub async fn dead_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}
