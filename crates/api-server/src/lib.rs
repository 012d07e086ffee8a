//! The API gateway: the HTTPS listener, per-request identity, and the routers.
//!
//! Architecture Invariant: only this crate, the dashboard and the proxy know HTTP.

pub mod listener;
pub mod tls;

use std::sync::Arc;

use api_types::envelope::{ErrorBody, Health};
use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// What `/healthz` reports about the parts outside this crate.
#[derive(Debug, Clone)]
pub struct PlatformFacts {
    /// `full`, `partial` or `none`.
    pub isolation: String,
    /// Whether resource limits are enforced.
    pub limits: bool,
    /// Whether an SMTP relay is configured.
    pub mail: bool,
}

/// Shared state of the API routers.
#[derive(Clone)]
pub struct AppState {
    /// Account management.
    pub accounts: Arc<accounts::Accounts>,
    /// Facts for `/healthz`.
    pub facts: Arc<PlatformFacts>,
}

/// The gateway's router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(get_health))
        .fallback(not_found)
        .with_state(state)
}

async fn get_health(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let mut services = std::collections::BTreeMap::new();
    let store_ok = sqlx_ping(&state).await;
    services.insert(
        "store".to_owned(),
        if store_ok { "ok" } else { "down" }.to_owned(),
    );
    let health = Health {
        status: if store_ok { "ok" } else { "degraded" }.to_owned(),
        services,
        isolation: state.facts.isolation.clone(),
        limits: state.facts.limits,
        mail: state.facts.mail,
    };
    let status = if store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health)).into_response()
}

async fn sqlx_ping(state: &AppState) -> bool {
    state
        .accounts
        .store()
        .get_meta("schema-check")
        .await
        .is_ok()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(ErrorBody::new(format!("no such endpoint: {}", uri.path()))),
    )
        .into_response()
}
