//! The HTTPS accept loop: TLS, then HTTP/1.1 with the peer's certificate attached to
//! every request of the connection as a [`PeerCertificate`] extension.
//!
//! Every connection task is owned by the caller's `TaskTracker` and stops when the
//! cancellation token fires (in-flight requests finish first).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// The DER certificate the client presented in the handshake, if any.
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Option<Arc<Vec<u8>>>);

/// The address the request came from.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` over TLS on `listener` until `cancel` fires.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = tokio::select! {
            () = cancel.cancelled() => break,
            res = listener.accept() => match res {
                Ok(conn) => conn,
                Err(err) => {
                    // Running out of file descriptors is transient; back off briefly.
                    tracing::warn!(error = %err, "accepting an API connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|der| Arc::new(der.to_vec()));
            let peer_cert = PeerCertificate(cert);
            let service = app.map_request(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                if let Some(uri) = crate::paths::normalize(req.uri()) {
                    *req.uri_mut() = uri;
                }
                req.extensions_mut().insert(peer_cert.clone());
                req.extensions_mut().insert(PeerAddr(peer));
                req
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30));
            let conn =
                builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(service));
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(err) = res {
                        tracing::debug!(%peer, error = %err, "API connection ended with an error");
                    }
                }
                () = cancel.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}
