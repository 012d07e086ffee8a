//! The dashboard's plain-HTTP listener (its router is `crates/dashboard`).
//!
//! The front proxy has its own listener and crate (`crates/proxy`, wired in
//! `front_proxy.rs`).

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves `app` on `listener` until `cancel` fires, letting requests in flight finish.
/// Handlers see the client's address as `ConnectInfo<SocketAddr>` (the dashboard's rate
/// limits key on it).
pub async fn serve(listener: TcpListener, app: Router, cancel: CancellationToken) {
    let res = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(cancel.cancelled_owned())
    .await;
    if let Err(err) = res {
        tracing::error!(error = %err, "an HTTP listener failed");
    }
}
