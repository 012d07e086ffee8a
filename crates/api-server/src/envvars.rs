//! The envvars API, `/envvars/v1/tool/{tool}/…` (api-contract.md §3.2): a thin HTTP
//! layer over [`secrets::Secrets`].
//!
//! | route | answer |
//! |---|---|
//! | `GET /envvars` | `{"envvars": [{"name", "value"}…], "messages"}`, by name |
//! | `POST /envvars` `{"name", "value"}` | `{"envvar", "messages"}`; creates or replaces |
//! | `GET /envvars/{name}` | `{"envvar", "messages"}`, 404 when missing |
//! | `DELETE /envvars/{name}` | `{"envvar", "messages"}` with the last value, 404 when missing |
//! | `GET /quotas` | `{"quota": {"quota": int, "used": int}, "messages"}` |
//!
//! The list carries the values: the official client hides them itself unless given
//! `--show-values` (api-contract.md §4.3), and `--json` prints them.
//! Refusals are 4xx in the envelope with a message naming the rule broken; a value
//! never appears in an error message or a log line, and 5xx details are logged with
//! the request's span, never returned.

use std::sync::Arc;

use api_types::envelope::{ErrorBody, Messages};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, OriginalUri, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use secrets::{Envvar, EnvvarName, SecretValue, Secrets};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{AppState, Caller, error_response, tool_scoped_service};

/// An envvar on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvvarBody {
    /// The name, `^[A-Z][A-Z_0-9]{2,}[A-Z0-9]$`.
    pub name: String,
    /// The value, in clear (up to 64 KiB).
    pub value: String,
}

/// The body of `POST /envvars`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateEnvvarRequest {
    /// The name, `^[A-Z][A-Z_0-9]{2,}[A-Z0-9]$`; not one of the platform's
    /// (`TOOL_TOOLFORGE_API_URL`, `TOOL_DATA_DIR`, `TOOL_REDIS_URI`).
    pub name: String,
    /// The value: any string of up to 65536 bytes without NUL; `""` is allowed.
    pub value: String,
}

/// One envvar and the messages.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnvvarResponse {
    pub envvar: EnvvarBody,
    pub messages: Messages,
}

/// Every envvar of the tool and the messages.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnvvarListResponse {
    pub envvars: Vec<EnvvarBody>,
    pub messages: Messages,
}

/// The tool's quota.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QuotaBody {
    /// How many envvars the tool may have.
    pub quota: u32,
    /// How many it has.
    pub used: u32,
}

/// The answer of `GET /quotas`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QuotaResponse {
    pub quota: QuotaBody,
    pub messages: Messages,
}

/// The envvars service's routes, to pass to [`crate::router_with_services`].
pub fn service(secrets: Arc<Secrets>) -> OpenApiRouter<AppState> {
    let routes = OpenApiRouter::new()
        .routes(routes!(list_envvars, create_envvar))
        .routes(routes!(get_envvar, delete_envvar))
        .routes(routes!(get_quota))
        // Without these, an unknown envvars route would reach the gateway's catch-all,
        // which says the service is not built.
        .route("/", any(no_such_route))
        .route("/{*rest}", any(no_such_route))
        .layer(Extension(secrets));
    tool_scoped_service("envvars", routes)
}

#[derive(Debug, Deserialize)]
struct NamePath {
    name: String,
}

/// List the tool's envvars, with their values.
#[utoipa::path(
    get,
    path = "/envvars",
    tag = "envvars",
    params(("tool" = String, Path, description = "the tool")),
    responses(
        (status = 200, description = "every envvar of the tool, by name", body = EnvvarListResponse),
        (status = 403, description = "the caller may not act on the tool", body = ErrorBody),
    ),
    security(("client_certificate" = []), ("bearer" = []))
)]
async fn list_envvars(
    Extension(caller): Extension<Caller>,
    Extension(secrets): Extension<Arc<Secrets>>,
) -> Response {
    match secrets.list(&caller.tool).await {
        Ok(envvars) => Json(EnvvarListResponse {
            envvars: envvars.iter().map(wire).collect(),
            messages: Messages::default(),
        })
        .into_response(),
        Err(err) => failure(err),
    }
}

/// Create an envvar, or replace its value.
#[utoipa::path(
    post,
    path = "/envvars",
    tag = "envvars",
    params(("tool" = String, Path, description = "the tool")),
    request_body = CreateEnvvarRequest,
    responses(
        (status = 200, description = "the envvar as stored", body = EnvvarResponse),
        (status = 400, description = "invalid or reserved name, value too long or holding NUL, malformed body", body = ErrorBody),
        (status = 409, description = "the tool's quota is used up", body = ErrorBody),
    ),
    security(("client_certificate" = []), ("bearer" = []))
)]
async fn create_envvar(
    Extension(caller): Extension<Caller>,
    Extension(secrets): Extension<Arc<Secrets>>,
    body: Bytes,
) -> Response {
    // Parsed by hand: serde's messages may quote the offending input, which could be
    // the secret. Only an object: serde would also take `["NAME", "value"]`.
    let request = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .filter(serde_json::Value::is_object)
        .and_then(|body| serde_json::from_value::<CreateEnvvarRequest>(body).ok());
    let Some(request) = request else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object {\"name\": \"<NAME>\", \"value\": \"<value>\"} with two strings",
        );
    };
    let value = SecretValue::from(request.value);
    let name = match EnvvarName::parse(&request.name) {
        Ok(name) => name,
        Err(err) => return failure(err),
    };
    match secrets.set(&caller.tool, &name, &value).await {
        Ok(()) => one(&Envvar { name, value }),
        Err(err) => failure(err),
    }
}

/// Show one envvar.
#[utoipa::path(
    get,
    path = "/envvars/{name}",
    tag = "envvars",
    params(
        ("tool" = String, Path, description = "the tool"),
        ("name" = String, Path, description = "the envvar's name"),
    ),
    responses(
        (status = 200, description = "the envvar", body = EnvvarResponse),
        (status = 400, description = "the name breaks the naming rule", body = ErrorBody),
        (status = 404, description = "the tool has no envvar of that name", body = ErrorBody),
    ),
    security(("client_certificate" = []), ("bearer" = []))
)]
async fn get_envvar(
    Extension(caller): Extension<Caller>,
    Extension(secrets): Extension<Arc<Secrets>>,
    Path(path): Path<NamePath>,
) -> Response {
    let name = match EnvvarName::parse(&path.name) {
        Ok(name) => name,
        Err(err) => return failure(err),
    };
    match secrets.get(&caller.tool, &name).await {
        Ok(Some(envvar)) => one(&envvar),
        Ok(None) => failure(secrets::Error::NotFound { name }),
        Err(err) => failure(err),
    }
}

/// Delete an envvar; the answer carries its last value.
#[utoipa::path(
    delete,
    path = "/envvars/{name}",
    tag = "envvars",
    params(
        ("tool" = String, Path, description = "the tool"),
        ("name" = String, Path, description = "the envvar's name"),
    ),
    responses(
        (status = 200, description = "the deleted envvar with its last value", body = EnvvarResponse),
        (status = 400, description = "the name breaks the naming rule", body = ErrorBody),
        (status = 404, description = "the tool has no envvar of that name", body = ErrorBody),
    ),
    security(("client_certificate" = []), ("bearer" = []))
)]
async fn delete_envvar(
    Extension(caller): Extension<Caller>,
    Extension(secrets): Extension<Arc<Secrets>>,
    Path(path): Path<NamePath>,
) -> Response {
    let name = match EnvvarName::parse(&path.name) {
        Ok(name) => name,
        Err(err) => return failure(err),
    };
    match secrets.delete(&caller.tool, &name).await {
        Ok(envvar) => one(&envvar),
        Err(err) => failure(err),
    }
}

/// The tool's envvars quota.
#[utoipa::path(
    get,
    path = "/quotas",
    tag = "envvars",
    params(("tool" = String, Path, description = "the tool")),
    responses(
        (status = 200, description = "how many envvars the tool may have and has", body = QuotaResponse),
    ),
    security(("client_certificate" = []), ("bearer" = []))
)]
async fn get_quota(
    Extension(caller): Extension<Caller>,
    Extension(secrets): Extension<Arc<Secrets>>,
) -> Response {
    match secrets.quota(&caller.tool).await {
        Ok(quota) => Json(QuotaResponse {
            quota: QuotaBody {
                quota: quota.quota,
                used: quota.used,
            },
            messages: Messages::default(),
        })
        .into_response(),
        Err(err) => failure(err),
    }
}

async fn no_such_route(OriginalUri(uri): OriginalUri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        format!("no such endpoint: {}", uri.path()),
    )
}

fn wire(envvar: &Envvar) -> EnvvarBody {
    EnvvarBody {
        name: envvar.name.to_string(),
        value: envvar.value.expose().to_owned(),
    }
}

fn one(envvar: &Envvar) -> Response {
    Json(EnvvarResponse {
        envvar: wire(envvar),
        messages: Messages::default(),
    })
    .into_response()
}

/// The answer for an error of the service: the refusal's message with its 4xx, or a
/// 500 whose detail (which never holds a value) goes to the log only.
fn failure(err: secrets::Error) -> Response {
    use secrets::Error;
    let status = match &err {
        Error::InvalidName { .. }
        | Error::ReservedName { .. }
        | Error::ValueTooLong { .. }
        | Error::NulInValue { .. } => StatusCode::BAD_REQUEST,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::QuotaExceeded { .. } => StatusCode::CONFLICT,
        _ => {
            tracing::error!(error = %error_chain(&err), "the envvars service failed");
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error in the envvars service; the platform's log has the details",
            );
        }
    };
    error_response(status, err.to_string())
}

/// `err` and its sources, each once.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
