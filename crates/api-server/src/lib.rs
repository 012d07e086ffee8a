//! The API gateway: the HTTPS listener, per-request identity, authorization, the
//! Toolforge envelope, and the unauthenticated `/healthz`, `/openapi.json`, `/metrics`.
//!
//! Request path: [`listener`] (TLS, peer certificate, [`paths::normalize`]) →
//! [`observe`] (request id, metrics, envelope for every error) → routes. Tool-scoped
//! routes `/{service}/v1/tool/{tool}/…` pass [`require_tool_access`] first:
//! [`auth::authenticate`] (401) then [`authz::authorize`] (403/404).
//!
//! Architecture Invariant: only this crate, the dashboard and the proxy know HTTP.
//! Architecture Invariant: every answer is a JSON object; errors carry both the flat
//! `error` list and `messages.error` (api-contract.md §2.2), and nothing redirects.

pub mod auth;
pub mod authz;
pub mod envvars;
pub mod jobs;
pub mod listener;
pub mod logs;
pub mod metrics;
pub mod paths;
pub mod tls;

use std::sync::Arc;
use std::time::Instant;

use api_types::envelope::{ErrorBody, Health, Messages};
use axum::Json;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AuthFailure, Authenticated};
use crate::authz::{Denial, Identity, Target};
use crate::listener::PeerCertificate;

/// The services behind the gateway, as the first path segment.
pub const SERVICES: &[&str] = &["jobs", "envvars", "builds", "components", "logs"];

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
    /// Request metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// The services mounted behind the gateway (the others are reported `not-built`).
    pub built_services: Arc<Vec<&'static str>>,
}

impl AppState {
    /// State over `accounts` with fresh metrics.
    pub fn new(accounts: Arc<accounts::Accounts>, facts: PlatformFacts) -> Self {
        Self {
            accounts,
            facts: Arc::new(facts),
            metrics: Arc::default(),
            built_services: Arc::default(),
        }
    }

    /// The same state, reporting `services` as built in `/healthz`.
    pub fn with_built_services(mut self, services: &[&'static str]) -> Self {
        self.built_services = Arc::new(services.to_vec());
        self
    }
}

/// The caller of a tool-scoped request, as admitted by [`require_tool_access`].
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who acts.
    pub identity: Identity,
    /// The tool acted on (the `{tool}` path segment, decoded).
    pub tool: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Toolforge API",
        description = "The API gateway of this Toolforge: jobs, envvars, builds, components and logs, per tool. Tool-scoped routes need the tool's client certificate (or a scoped bearer token)."
    ),
    paths(tool_scoped, get_openapi),
    components(schemas(ErrorBody, Messages, Health))
)]
struct ApiDoc;

/// The gateway's router. Requests must already have their path normalized
/// ([`paths::normalize`]); the [`listener`] does that.
pub fn router(state: AppState) -> Router {
    router_with_services(state, OpenApiRouter::new())
}

/// The gateway's router with `services` mounted behind [`require_tool_access`].
///
/// Each service contributes an `OpenApiRouter` nested at `/{service}/v1/tool/{tool}`
/// (see [`tool_scoped_service`]), so its routes are authenticated, authorized and
/// documented in `/openapi.json` from the same code. Services not built yet answer
/// 404 in the envelope through the catch-all.
pub fn router_with_services(state: AppState, services: OpenApiRouter<AppState>) -> Router {
    let tool_scoped_routes = services
        .route("/{service}/v1/tool/{tool}", any(tool_scoped))
        .route("/{service}/v1/tool/{tool}/{*path}", any(tool_scoped))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_tool_access,
        ));
    let (documented, mut api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(get_health))
        .routes(routes!(get_metrics))
        .routes(routes!(get_service_health))
        .routes(routes!(get_service_metrics))
        .routes(routes!(get_service_openapi))
        .merge(tool_scoped_routes)
        .split_for_parts();
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let spec = Arc::new(serde_json::to_value(&api).unwrap_or_default());
    let spec_for_all = spec.clone();
    Router::new()
        .merge(documented)
        .route(
            "/openapi.json",
            axum::routing::get(move || get_openapi(spec_for_all)),
        )
        .layer(axum::Extension(spec))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Mounts a service's tool-scoped routes at `/{service}/v1/tool/{tool}`.
///
/// Handlers take the admitted [`Caller`] as `Extension<Caller>`; the `{tool}` path
/// parameter is also available to their `Path` extractors.
pub fn tool_scoped_service(
    service: &'static str,
    routes: OpenApiRouter<AppState>,
) -> OpenApiRouter<AppState> {
    OpenApiRouter::new().nest(&format!("/{service}/v1/tool/{{tool}}"), routes)
}

/// Outermost middleware: request id, tracing span, metrics, and the envelope for
/// every error answer the framework produced in plain text.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let service = paths::service_of(req.uri().path()).unwrap_or("gateway");
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", id = %request_id, %method, %path);
    let response = next.run(req).instrument(span.clone()).await;
    let mut response = envelope_errors(response, &method, &path).await;
    let status = response.status();
    state
        .metrics
        .record(service, status.as_u16(), started.elapsed());
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "request failed"
            );
        } else {
            tracing::debug!(
                status = status.as_u16(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "request"
            );
        }
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Turns a non-JSON error answer (axum's rejections, 405s) into the envelope.
async fn envelope_errors(response: Response, method: &axum::http::Method, path: &str) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_owned();
    let message = if status == StatusCode::METHOD_NOT_ALLOWED {
        format!("method {method} is not allowed on {path}")
    } else if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    error_response(status, message)
}

/// An error answer in the universal envelope.
pub fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(ErrorBody::new(message))).into_response()
}

/// Admits a tool-scoped request or answers 401/403/404 with the reason.
pub async fn require_tool_access(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let (Some(service), Some(tool)) = (paths::service_of(&path), paths::tool_of(&path)) else {
        return error_response(StatusCode::NOT_FOUND, format!("no such endpoint: {path}"));
    };
    let certificate = req
        .extensions()
        .get::<PeerCertificate>()
        .and_then(|peer| peer.0.clone());
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let authenticated = match auth::authenticate(
        &state.accounts,
        certificate.as_deref().map(Vec::as_slice),
        authorization.as_deref(),
    )
    .await
    {
        Ok(authenticated) => authenticated,
        Err(AuthFailure::Unauthenticated(reason)) => {
            return error_response(StatusCode::UNAUTHORIZED, reason);
        }
        Err(AuthFailure::Internal(err)) => {
            tracing::error!(error = %format!("{err:#}"), "authentication failed inside the platform");
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error while checking credentials",
            );
        }
    };
    let Authenticated {
        identity,
        token_scope,
    } = authenticated;
    if let Some(scope) = &token_scope
        && !accounts::tokens::scope_covers(scope, service)
    {
        return error_response(
            StatusCode::FORBIDDEN,
            format!("this token's scope ({scope}) does not cover the {service} service"),
        );
    }
    match decide(&state, &identity, &tool).await {
        Ok(Ok(())) => {}
        Ok(Err(denial)) => {
            let status = match denial {
                Denial::NoSuchTool(_) => StatusCode::NOT_FOUND,
                Denial::Forbidden(_) | Denial::Disabled(_) => StatusCode::FORBIDDEN,
            };
            return error_response(status, denial.message());
        }
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "authorization failed inside the platform");
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error while checking access",
            );
        }
    }
    // Services receive the tool as the original's backends do, in X-Toolforge-Tool.
    if let Ok(value) = HeaderValue::from_str(&tool) {
        req.headers_mut().insert("x-toolforge-tool", value);
    }
    req.extensions_mut().insert(Caller { identity, tool });
    next.run(req).await
}

async fn decide(
    state: &AppState,
    identity: &Identity,
    tool: &str,
) -> Result<Result<(), Denial>, store::Error> {
    let store = state.accounts.store();
    let found = store.get_tool(tool).await?;
    let maintainers = match &found {
        Some(_) => store.maintainers(tool).await?,
        None => Vec::new(),
    };
    let target = Target {
        name: tool,
        exists: found.is_some(),
        disabled: found
            .as_ref()
            .is_some_and(|t| t.status == store::ToolStatus::Disabled),
        maintainers: &maintainers,
    };
    Ok(authz::authorize(identity, &target))
}

/// Routes of a tool (`/{service}/v1/tool/{tool}/{path}`): each service's API, once
/// it is built; until then the service answers 404 in the envelope, after the
/// credentials and the right to act on the tool were checked.
#[utoipa::path(
    get,
    path = "/{service}/v1/tool/{tool}/{path}",
    params(
        ("service" = String, Path, description = "jobs, envvars, builds, components or logs"),
        ("tool" = String, Path, description = "the tool acted on"),
        ("path" = String, Path, description = "the service's own route"),
    ),
    responses(
        (status = 401, description = "no credential, or an invalid one", body = ErrorBody),
        (status = 403, description = "the identity may not act on the tool, or the tool is disabled", body = ErrorBody),
        (status = 404, description = "no such service or route", body = ErrorBody),
    ),
    security(("client_certificate" = []), ("bearer" = []))
)]
async fn tool_scoped(Path(params): Path<Vec<(String, String)>>) -> Response {
    let service = params
        .iter()
        .find(|(key, _)| key == "service")
        .map(|(_, value)| value.as_str())
        .unwrap_or_default();
    error_response(
        StatusCode::NOT_FOUND,
        format!("the {service} service is not available on this platform yet"),
    )
}

/// Each service's state, whether jobs can be isolated, whether limits apply and mail works.
#[utoipa::path(get, path = "/healthz", responses(
    (status = 200, description = "every service is up", body = Health),
    (status = 503, description = "a service is down", body = Health),
))]
async fn get_health(State(state): State<AppState>) -> Response {
    let (status, health) = health(&state).await;
    (status, Json(health)).into_response()
}

async fn health(state: &AppState) -> (StatusCode, Health) {
    let store_ok = state
        .accounts
        .store()
        .get_meta("health-probe")
        .await
        .is_ok();
    let mut services = std::collections::BTreeMap::new();
    services.insert(
        "store".to_owned(),
        if store_ok { "ok" } else { "down" }.to_owned(),
    );
    services.insert("gateway".to_owned(), "ok".to_owned());
    for service in SERVICES {
        let built = state.built_services.contains(service);
        let status = if !built {
            "not-built"
        } else if store_ok {
            "ok"
        } else {
            "down"
        };
        services.insert((*service).to_owned(), status.to_owned());
    }
    let degraded = !store_ok || state.facts.isolation == "none";
    let health = Health {
        status: if degraded { "degraded" } else { "ok" }.to_owned(),
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
    (status, health)
}

/// Prometheus metrics of the gateway.
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"),
))]
async fn get_metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// A service's health.
#[utoipa::path(get, path = "/{service}/v1/healthz", params(
    ("service" = String, Path, description = "jobs, envvars, builds, components or logs"),
), responses(
    (status = 200, description = "the service's state", body = Health),
    (status = 404, description = "no such service", body = ErrorBody),
))]
async fn get_service_health(
    State(state): State<AppState>,
    Path(service): Path<String>,
) -> Response {
    if !SERVICES.contains(&service.as_str()) {
        return error_response(StatusCode::NOT_FOUND, format!("no such service: {service}"));
    }
    let (status, mut health) = health(&state).await;
    health
        .services
        .retain(|name, _| *name == service || name == "store");
    (status, Json(health)).into_response()
}

/// A service's metrics (the gateway's, filtered to the service).
#[utoipa::path(get, path = "/{service}/v1/metrics", params(
    ("service" = String, Path, description = "jobs, envvars, builds, components or logs"),
), responses(
    (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"),
    (status = 404, description = "no such service", body = ErrorBody),
))]
async fn get_service_metrics(
    State(state): State<AppState>,
    Path(service): Path<String>,
) -> Response {
    if !SERVICES.contains(&service.as_str()) {
        return error_response(StatusCode::NOT_FOUND, format!("no such service: {service}"));
    }
    let needle = format!("service=\"{service}\"");
    let text: String = state
        .metrics
        .render()
        .lines()
        .filter(|line| line.starts_with('#') || line.contains(&needle))
        .map(|line| format!("{line}\n"))
        .collect();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// A service's part of the OpenAPI document.
#[utoipa::path(get, path = "/{service}/openapi.json", params(
    ("service" = String, Path, description = "jobs, envvars, builds, components or logs"),
), responses(
    (status = 200, description = "OpenAPI 3 document of the service's routes", body = Object),
    (status = 404, description = "no such service", body = ErrorBody),
))]
async fn get_service_openapi(
    Path(service): Path<String>,
    axum::Extension(spec): axum::Extension<Arc<serde_json::Value>>,
) -> Response {
    if !SERVICES.contains(&service.as_str()) {
        return error_response(StatusCode::NOT_FOUND, format!("no such service: {service}"));
    }
    let mut doc = (*spec).clone();
    if let Some(paths) = doc
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    {
        let prefix = format!("/{service}/");
        let generic = "/{service}/";
        paths.retain(|path, _| path.starts_with(&prefix) || path.starts_with(generic));
    }
    Json(doc).into_response()
}

/// The OpenAPI 3 document of every route of the gateway.
#[utoipa::path(get, path = "/openapi.json", responses(
    (status = 200, description = "OpenAPI 3 document", body = Object),
))]
async fn get_openapi(spec: Arc<serde_json::Value>) -> Response {
    Json((*spec).clone()).into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        format!("no such endpoint: {}", uri.path()),
    )
}
