//! The front proxy: every request for `<tool>.<public-domain>` goes to one of the tool's
//! webservice replicas; every miss gets a useful page.
//!
//! Order of a request (each step may answer and stop):
//! 1. the TCP peer's address against the [`BanList`] → 403;
//! 2. the host ([`host::route`]): invalid → 400, the bare domain → landing page,
//!    another domain → 404;
//! 3. the tool's upstreams from the [`Directory`]: none → fourohfour (404 naming the
//!    tool's maintainers, or 404 with "did you mean" when the tool does not exist);
//! 4. the tool's concurrent-connection limit → 503; the body limit → 413;
//! 5. forwarded over HTTP/1.1 to the next replica in round-robin order; a replica that
//!    refuses or resets the connection before the request was sent is skipped (so a
//!    rolling restart loses nothing); no replica → 502, too slow → 504.
//!
//! Clients speak HTTP/1.1 or HTTP/2 (prior knowledge on plain TCP, ALPN with TLS);
//! WebSocket (HTTP/1.1 upgrade) is tunnelled both ways; bodies stream in both directions.
//! Every request ends in one access log line.
//!
//! Invariants: bans are checked before anything else; every page escapes what it
//! shows from the request (askama templates); the request path never waits on the
//! access log's disk.

pub mod access_log;
pub mod bans;
pub mod body;
pub mod headers;
pub mod host;
pub mod pages;
pub mod suggest;
pub mod tls;
pub mod upstream;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::access_log::AccessLog;
use crate::access_log::AccessRecord;
pub use crate::bans::{Ban, BanList};
use crate::body::{LimitedBody, OnComplete, ProxyBody};
use crate::host::Route;
use crate::pages::{MaintainerLink, Pages, Suggestion};

/// The dashboard page of a tool: `<dashboard>/tools/id/<tool>`.
pub const DASHBOARD_TOOL_PATH: &str = "/tools/id/";
/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A boxed future, for the object-safe [`Directory`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where tools and their webservices are: the accounts store and the jobs engine in the
/// daemon, a map in tests.
pub trait Directory: Send + Sync + 'static {
    /// The addresses of the tool's running webservice replicas (empty: it serves nothing).
    fn upstreams<'a>(&'a self, tool: &'a str) -> BoxFuture<'a, Vec<SocketAddr>>;
    /// The tool, if it exists.
    fn tool<'a>(&'a self, tool: &'a str)
    -> BoxFuture<'a, Result<Option<ToolInfo>, DirectoryError>>;
    /// Every tool's name, for suggestions.
    fn tool_names(&self) -> BoxFuture<'_, Result<Vec<String>, DirectoryError>>;
}

/// What the fourohfour page tells about an existing tool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolInfo {
    pub maintainers: Vec<Maintainer>,
}

/// A maintainer of a tool: a user or another tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintainer {
    pub name: String,
    pub kind: MaintainerKind,
}

/// Users and tools share one namespace; either can maintain a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaintainerKind {
    User,
    Tool,
}

/// The directory could not answer (the store failed); the proxy answers 500.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DirectoryError(pub String);

/// The proxy's settings.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Tools are `<tool>.<public_domain>`; lowercase.
    pub public_domain: String,
    /// Longest wait for a replica to accept a connection, and then for its response
    /// headers; beyond it the client gets 504.
    pub upstream_timeout: Duration,
    /// Largest request body, in bytes; larger ones get 413.
    pub max_body: u64,
    /// Most requests in flight (and open WebSocket tunnels) per tool; more get 503.
    pub max_connections_per_tool: usize,
    /// The dashboard's base URL (`http://host:port`), for links on the pages.
    pub dashboard_url: Option<String>,
    /// The domain of the tools' mail addresses (`tools.<tool>@<mail_domain>`), if any.
    pub mail_domain: Option<String>,
    /// Where replacement error pages (`<code>.html`) are looked up.
    pub errors_dir: Option<PathBuf>,
}

impl ProxyConfig {
    /// Defaults for `public_domain`: 60 s upstream timeout, 100 MiB bodies, 512
    /// connections per tool, no dashboard links, no mail, built-in pages.
    pub fn new(public_domain: &str) -> ProxyConfig {
        ProxyConfig {
            public_domain: public_domain.to_ascii_lowercase(),
            upstream_timeout: Duration::from_secs(60),
            max_body: 100 << 20,
            max_connections_per_tool: 512,
            dashboard_url: None,
            mail_domain: None,
            errors_dir: None,
        }
    }
}

/// The proxy: configuration, directory, bans, pool and counters. Shared by every
/// connection of [`serve`].
pub struct Proxy {
    config: ProxyConfig,
    directory: Arc<dyn Directory>,
    bans: RwLock<Arc<BanList>>,
    pages: Pages,
    pool: upstream::Pool,
    tools: Mutex<HashMap<String, ToolCounters>>,
    access_log: Option<AccessLog>,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct ToolCounters {
    /// Round-robin position.
    next: usize,
    /// Requests in flight and open tunnels.
    active: usize,
}

impl Proxy {
    /// A proxy over `directory`; its tasks (upstream connections, tunnels) are owned
    /// by `tracker` and end when `cancel` fires.
    pub fn new(
        config: ProxyConfig,
        directory: Arc<dyn Directory>,
        access_log: Option<AccessLog>,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) -> Arc<Proxy> {
        Arc::new(Proxy {
            pages: Pages::new(config.errors_dir.clone()),
            config,
            directory,
            bans: RwLock::new(Arc::new(BanList::default())),
            pool: upstream::Pool::default(),
            tools: Mutex::new(HashMap::new()),
            access_log,
            tracker,
            cancel,
        })
    }

    /// Replaces the ban list; requests after this call see the new one.
    pub fn set_bans(&self, bans: BanList) {
        *self.bans.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(bans);
    }

    /// The current ban list.
    pub fn bans(&self) -> Arc<BanList> {
        self.bans
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Answers one request from `peer`, which came over `scheme` (`http` or `https`).
    pub async fn handle(
        self: &Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
        scheme: &'static str,
    ) -> Response<ProxyBody> {
        let client = peer.ip().to_canonical();
        let host = request_host(&req).unwrap_or_default();
        let mut log = LogContext {
            start: Instant::now(),
            time: OffsetDateTime::now_utc(),
            tool: None,
            host: host.clone(),
            method: req.method().to_string(),
            path: req
                .uri()
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()),
            client,
        };
        if let Some(reason) = self.bans().check(client) {
            let message =
                "Requests from your address are refused by the administrators of this Toolforge.";
            let reason = reason.to_owned();
            return self
                .error(StatusCode::FORBIDDEN, message, Some(&reason), log)
                .await;
        }
        let route = host::route(
            (!host.is_empty()).then_some(host.as_str()),
            &self.config.public_domain,
        );
        let port = host_port(&host);
        match route {
            Route::Invalid(reason) => {
                self.error(
                    StatusCode::BAD_REQUEST,
                    "The Host of this request cannot be served.",
                    Some(&reason),
                    log,
                )
                .await
            }
            Route::Landing => {
                let html = self.pages.landing(
                    scheme,
                    &self.config.public_domain,
                    port,
                    self.config.dashboard_url.as_deref(),
                );
                self.page(StatusCode::OK, html, log)
            }
            Route::Foreign(name) => {
                let message = format!(
                    "This proxy serves tools at <tool>.{} only.",
                    self.config.public_domain
                );
                self.error(StatusCode::NOT_FOUND, &message, Some(&name), log)
                    .await
            }
            Route::Tool(tool) => {
                log.tool = Some(tool.clone());
                let upstreams = self.directory.upstreams(&tool).await;
                if upstreams.is_empty() {
                    return self.fourohfour(&tool, scheme, port, log).await;
                }
                self.forward(req, &tool, &upstreams, client, scheme, &host, log)
                    .await
            }
        }
    }

    async fn fourohfour(
        self: &Arc<Self>,
        tool: &str,
        scheme: &str,
        port: &str,
        log: LogContext,
    ) -> Response<ProxyBody> {
        let dashboard = self.config.dashboard_url.as_deref();
        match self.directory.tool(tool).await {
            Ok(Some(info)) => {
                let maintainers: Vec<MaintainerLink> = info
                    .maintainers
                    .into_iter()
                    .map(|maintainer| {
                        // Tools have a public page on the dashboard; users have none
                        // (their profile is private), so they are named without a link.
                        let (kind, url) = match maintainer.kind {
                            MaintainerKind::User => ("user", None),
                            MaintainerKind::Tool => (
                                "tool",
                                dashboard.map(|base| {
                                    format!("{base}{DASHBOARD_TOOL_PATH}{}", maintainer.name)
                                }),
                            ),
                        };
                        MaintainerLink {
                            url,
                            name: maintainer.name,
                            kind,
                        }
                    })
                    .collect();
                let html = self.pages.no_webservice(
                    tool,
                    &maintainers,
                    dashboard.map(|base| format!("{base}{DASHBOARD_TOOL_PATH}{tool}")),
                    self.config
                        .mail_domain
                        .as_ref()
                        .map(|domain| format!("tools.{tool}@{domain}")),
                );
                self.page(StatusCode::NOT_FOUND, html, log)
            }
            Ok(None) => {
                let names = match self.directory.tool_names().await {
                    Ok(names) => names,
                    Err(err) => {
                        tracing::error!(error = %err, "listing tools for suggestions failed");
                        Vec::new()
                    }
                };
                let suggestions: Vec<Suggestion> =
                    suggest::suggestions(tool, names.iter().map(String::as_str))
                        .into_iter()
                        .map(|name| Suggestion {
                            url: format!("{scheme}://{name}.{}{port}/", self.config.public_domain),
                            name,
                        })
                        .collect();
                let html = self.pages.no_such_tool(tool, &suggestions);
                self.page(StatusCode::NOT_FOUND, html, log)
            }
            Err(err) => {
                tracing::error!(%tool, error = %err, "looking a tool up for the proxy failed");
                self.error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The platform could not look this tool up. Please try again later.",
                    None,
                    log,
                )
                .await
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn forward(
        self: &Arc<Self>,
        mut req: Request<Incoming>,
        tool: &str,
        upstreams: &[SocketAddr],
        client: IpAddr,
        scheme: &'static str,
        host: &str,
        log: LogContext,
    ) -> Response<ProxyBody> {
        let Some((slot, first)) = self.acquire(tool) else {
            let message = format!(
                "The tool {tool} has reached its limit of {} concurrent connections. Please try again shortly.",
                self.config.max_connections_per_tool
            );
            return self
                .error(StatusCode::SERVICE_UNAVAILABLE, &message, None, log)
                .await;
        };
        let max_body = self.config.max_body;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|len| len > max_body) {
            return self.too_large(log).await;
        }
        let upgrade = if req.version() == Version::HTTP_11 {
            headers::upgrade_request(req.headers())
        } else {
            None
        };
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        headers::remove_hop_by_hop(&mut parts.headers, upgrade);
        headers::set_forwarded(&mut parts.headers, client, scheme, host);
        if let Ok(value) = HeaderValue::from_str(host) {
            parts.headers.insert(header::HOST, value);
        }
        parts.uri = parts
            .uri
            .path_and_query()
            .and_then(|pq| Uri::try_from(pq.as_str()).ok())
            .unwrap_or_else(|| Uri::from_static("/"));
        parts.version = Version::HTTP_11;
        // A request without a body can be sent again on another connection even after
        // the first one broke mid-write.
        let replay = (body.is_end_stream() || declared == Some(0)).then(|| {
            (
                parts.method.clone(),
                parts.uri.clone(),
                parts.headers.clone(),
            )
        });
        let exceeded = Arc::new(AtomicBool::new(false));
        let mut request = Some(Request::from_parts(
            parts,
            LimitedBody::new(body, max_body, exceeded.clone()),
        ));
        let timeout = self.config.upstream_timeout;
        let mut timed_out = false;
        for attempt in 0..upstreams.len() {
            let addr = upstreams[(first + attempt) % upstreams.len()];
            loop {
                let (mut sender, pooled) = match self.pool.take(addr).await {
                    Some(sender) => (sender, true),
                    None => match upstream::connect(addr, timeout, &self.tracker).await {
                        Ok(sender) => (sender, false),
                        Err(upstream::ConnectError::TimedOut) => {
                            timed_out = true;
                            break;
                        }
                        Err(upstream::ConnectError::Failed(err)) => {
                            tracing::debug!(%tool, %addr, error = %err, "a replica refused the connection; trying the next");
                            break;
                        }
                    },
                };
                let Some(outgoing) = request.take() else {
                    break;
                };
                match tokio::time::timeout(timeout, sender.try_send_request(outgoing)).await {
                    Err(_) => {
                        return self
                            .error(
                                StatusCode::GATEWAY_TIMEOUT,
                                &format!(
                                    "The tool {tool} did not answer within {} seconds.",
                                    timeout.as_secs()
                                ),
                                None,
                                log,
                            )
                            .await;
                    }
                    Ok(Ok(response)) => {
                        return self.upstream_response(
                            response,
                            addr,
                            sender,
                            slot,
                            client_upgrade,
                            log,
                        );
                    }
                    Ok(Err(mut err)) => {
                        if exceeded.load(Ordering::Acquire) {
                            return self.too_large(log).await;
                        }
                        if let Some(message) = err.take_message() {
                            request = Some(message);
                        } else if let Some((method, uri, headers)) = &replay {
                            request = Some(rebuild(method, uri, headers));
                        } else {
                            tracing::info!(%tool, %addr, error = %err.error(), "a replica broke the connection during a request");
                            return self
                                .error(
                                    StatusCode::BAD_GATEWAY,
                                    &format!(
                                        "The tool {tool} broke the connection before it answered."
                                    ),
                                    None,
                                    log,
                                )
                                .await;
                        }
                        if pooled {
                            // A stale kept-alive connection: try a fresh one to the same replica.
                            continue;
                        }
                        break;
                    }
                }
            }
            if request.is_none() {
                break;
            }
        }
        if timed_out {
            return self
                .error(
                    StatusCode::GATEWAY_TIMEOUT,
                    &format!(
                        "The tool {tool} did not accept a connection within {} seconds.",
                        timeout.as_secs()
                    ),
                    None,
                    log,
                )
                .await;
        }
        self.error(
            StatusCode::BAD_GATEWAY,
            &format!(
                "The tool {tool} has a webservice, but none of its replicas accepted a connection."
            ),
            None,
            log,
        )
        .await
    }

    fn upstream_response(
        self: &Arc<Self>,
        mut response: Response<Incoming>,
        addr: SocketAddr,
        sender: upstream::Sender,
        slot: Slot,
        client_upgrade: Option<hyper::upgrade::OnUpgrade>,
        log: LogContext,
    ) -> Response<ProxyBody> {
        let status = response.status();
        if status == StatusCode::SWITCHING_PROTOCOLS
            && let Some(client_upgrade) = client_upgrade
        {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            let upgrade = response.headers().get(header::UPGRADE).cloned();
            let (mut parts, _) = response.into_parts();
            headers::remove_hop_by_hop(&mut parts.headers, upgrade);
            let cancel = self.cancel.clone();
            self.tracker.spawn(async move {
                let _slot = slot;
                let _sender = sender;
                let (client, upstream) = tokio::join!(client_upgrade, upstream_upgrade);
                let (Ok(client), Ok(upstream)) = (client, upstream) else {
                    return;
                };
                let mut client = TokioIo::new(client);
                let mut upstream = TokioIo::new(upstream);
                tokio::select! {
                    res = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
                        if let Err(err) = res {
                            tracing::debug!(error = %err, "a WebSocket tunnel ended with an error");
                        }
                    }
                    () = cancel.cancelled() => {}
                }
            });
            let completion = Completion {
                access_log: self.access_log.clone(),
                log: (log, status),
                slot: None,
                pooled: None,
            };
            return Response::from_parts(
                parts,
                ProxyBody::full("").on_complete(Box::new(completion)),
            );
        }
        let (mut parts, body) = response.into_parts();
        headers::remove_hop_by_hop(&mut parts.headers, None);
        let completion = Completion {
            access_log: self.access_log.clone(),
            log: (log, status),
            slot: Some(slot),
            pooled: Some((self.clone(), addr, sender)),
        };
        Response::from_parts(
            parts,
            ProxyBody::upstream(body).on_complete(Box::new(completion)),
        )
    }

    fn acquire(self: &Arc<Self>, tool: &str) -> Option<(Slot, usize)> {
        let mut tools = self.tools.lock().unwrap_or_else(PoisonError::into_inner);
        let counters = tools.entry(tool.to_owned()).or_default();
        if counters.active >= self.config.max_connections_per_tool {
            return None;
        }
        counters.active += 1;
        let first = counters.next;
        counters.next = counters.next.wrapping_add(1);
        Some((
            Slot {
                proxy: self.clone(),
                tool: tool.to_owned(),
            },
            first,
        ))
    }

    async fn too_large(self: &Arc<Self>, log: LogContext) -> Response<ProxyBody> {
        let message = format!(
            "The request body is larger than the limit of {} bytes.",
            self.config.max_body
        );
        self.error(StatusCode::PAYLOAD_TOO_LARGE, &message, None, log)
            .await
    }

    async fn error(
        self: &Arc<Self>,
        status: StatusCode,
        message: &str,
        detail: Option<&str>,
        log: LogContext,
    ) -> Response<ProxyBody> {
        let html = self.pages.error(status, message, detail).await;
        self.page(status, html, log)
    }

    fn page(&self, status: StatusCode, html: String, log: LogContext) -> Response<ProxyBody> {
        let completion = Completion {
            access_log: self.access_log.clone(),
            log: (log, status),
            slot: None,
            pooled: None,
        };
        let mut response = Response::new(ProxyBody::full(html).on_complete(Box::new(completion)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// A request's facts for its access log line.
struct LogContext {
    start: Instant,
    time: OffsetDateTime,
    tool: Option<String>,
    host: String,
    method: String,
    path: String,
    client: IpAddr,
}

/// One of a tool's connection slots, released on drop.
struct Slot {
    proxy: Arc<Proxy>,
    tool: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut tools = self
            .proxy
            .tools
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(counters) = tools.get_mut(&self.tool) {
            counters.active = counters.active.saturating_sub(1);
        }
    }
}

/// What is done once a response has been sent: the access log line, the slot released,
/// the upstream connection pooled when its response was read to the end.
struct Completion {
    access_log: Option<AccessLog>,
    log: (LogContext, StatusCode),
    slot: Option<Slot>,
    pooled: Option<(Arc<Proxy>, SocketAddr, upstream::Sender)>,
}

impl OnComplete for Completion {
    fn complete(self: Box<Self>, bytes: u64, finished: bool) {
        let Completion {
            access_log,
            log: (log, status),
            slot,
            pooled,
        } = *self;
        if finished && let Some((proxy, addr, sender)) = pooled {
            proxy.pool.put(addr, sender);
        }
        drop(slot);
        let Some(access_log) = access_log else {
            return;
        };
        access_log.record(AccessRecord {
            time: log.time.format(&Rfc3339).unwrap_or_default(),
            tool: log.tool,
            host: log.host,
            method: log.method,
            path: log.path,
            status: status.as_u16(),
            bytes,
            duration_ms: log.start.elapsed().as_secs_f64() * 1000.0,
            client: log.client.to_string(),
        });
    }
}

fn rebuild(method: &Method, uri: &Uri, headers: &http::HeaderMap) -> Request<LimitedBody> {
    let mut request = Request::new(LimitedBody::empty());
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri.clone();
    *request.headers_mut() = headers.clone();
    request
}

/// The `Host` header, else the HTTP/2 `:authority`.
fn request_host<B>(req: &Request<B>) -> Option<String> {
    if let Some(host) = req.headers().get(header::HOST) {
        return Some(String::from_utf8_lossy(host.as_bytes()).into_owned());
    }
    req.uri()
        .authority()
        .map(|authority| authority.as_str().to_owned())
}

/// `:port` of a host, or "" (for links to other tools on the same listener).
fn host_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(idx)
            if host[idx + 1..].bytes().all(|b| b.is_ascii_digit()) && idx + 1 < host.len() =>
        {
            &host[idx..]
        }
        _ => "",
    }
}

/// Serves `proxy` on `listener` (TLS when `tls` is given) until `cancel` fires; every
/// connection task is owned by `tracker` and finishes its in-flight requests.
pub async fn serve(
    proxy: Arc<Proxy>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (tcp, peer) = tokio::select! {
            () = cancel.cancelled() => break,
            res = listener.accept() => match res {
                Ok(conn) => conn,
                Err(err) => {
                    // Running out of file descriptors is transient; back off briefly.
                    tracing::warn!(error = %err, "accepting a proxy connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let proxy = proxy.clone();
        let cancel = cancel.clone();
        let acceptor = acceptor.clone();
        tracker.spawn(async move {
            match acceptor {
                None => serve_connection(proxy, tcp, peer, "http", cancel).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(proxy, stream, peer, "https", cancel).await;
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(%peer, error = %err, "TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    proxy.pool.close();
}

async fn serve_connection<I>(
    proxy: Arc<Proxy>,
    io: I,
    peer: SocketAddr,
    scheme: &'static str,
    cancel: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let proxy = proxy.clone();
        async move { Ok::<_, Infallible>(proxy.handle(req, peer, scheme).await) }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(err) = res {
                tracing::debug!(%peer, error = %err, "a proxy connection ended with an error");
            }
        }
        () = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
