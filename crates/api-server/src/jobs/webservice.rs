//! The webservice extension of the jobs API, `/jobs/v1/tool/{tool}/webservice`: start,
//! show, stop and restart the tool's webservice, a published continuous job named after
//! the tool on port 8000 (`jobs::webservice`). Our CLI and the dashboard call it; the
//! pinned official clients never do.

use api_types::envelope::Messages;
use api_types::jobs::{
    WebserviceBody, WebserviceRequest, WebserviceResponse, WebserviceTypeBody,
    WebserviceTypesResponse,
};
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use jobs::spec::{JobInput, JobKind, JobSpec, ValidationContext};
use jobs::webservice::{Server, WEBSERVICE_PORT};
use jobs_engine::JobView;
use runtime::images::{Availability, ImageState, WsType};

use crate::jobs::{JobsService, Service, check_image, engine_error};
use crate::{Caller, error_response};

/// The image a `generic` webservice runs on unless one is given.
const GENERIC_IMAGE: &str = "bookworm";

fn body(service: &JobsService, tool: &str, view: &JobView) -> Option<WebserviceBody> {
    let spec = &view.spec;
    let kind = spec.webservice.clone()?;
    let replicas = match spec.kind {
        JobKind::Continuous { replicas, .. } => replicas,
        _ => 0,
    };
    let serving = u32::try_from(service.engine.web_upstreams(tool).len()).unwrap_or(u32::MAX);
    Some(WebserviceBody {
        kind,
        job: spec.name.clone(),
        image: spec.image.clone(),
        cmd: spec.cmd.clone(),
        replicas,
        cpu: spec.cpu.clone(),
        memory: spec.memory.clone(),
        mount: spec.mount.as_str().to_owned(),
        state: if view.status.short == "Running" {
            "running".to_owned()
        } else {
            view.status.short.to_lowercase()
        },
        serving_replicas: serving,
    })
}

async fn current(service: &JobsService, tool: &str) -> Result<Option<JobView>, Response> {
    match service.engine.view(tool, tool).await {
        Ok(view) if view.spec.webservice.is_some() => Ok(Some(view)),
        Ok(_) | Err(jobs_engine::Error::NotFound(_)) => Ok(None),
        Err(err) => Err(engine_error(err)),
    }
}

fn answer(
    service: &JobsService,
    tool: &str,
    status: StatusCode,
    view: Option<&JobView>,
) -> Response {
    (
        status,
        Json(WebserviceResponse {
            webservice: view.and_then(|view| body(service, tool, view)),
            url: (service.tool_url)(tool),
            messages: Messages::default(),
        }),
    )
        .into_response()
}

/// The tool's webservice (`null` when it has none) and its public address.
#[utoipa::path(get, path = "/webservice", params(("tool" = String, Path, description = "the tool")), responses((status = 200, body = WebserviceResponse)), tag = "webservice")]
pub(crate) async fn show_webservice(
    Extension(service): Service,
    Extension(caller): Extension<Caller>,
) -> Response {
    match current(&service, &caller.tool).await {
        Ok(view) => answer(&service, &caller.tool, StatusCode::OK, view.as_ref()),
        Err(response) => response,
    }
}

/// Starts the tool's webservice.
#[utoipa::path(post, path = "/webservice", params(("tool" = String, Path, description = "the tool")), request_body = WebserviceRequest, responses(
    (status = 201, body = WebserviceResponse),
    (status = 400, description = "unknown type, a type this platform cannot serve, a missing file or a bad setting", body = crate::ErrorBody),
    (status = 409, description = "the webservice already runs, or another job has the tool's web address or name", body = crate::ErrorBody),
), tag = "webservice")]
pub(crate) async fn start_webservice(
    Extension(service): Service,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let tool = caller.tool.as_str();
    let request = match parse_request(&body) {
        Ok(request) => request,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, message),
    };
    match current(&service, tool).await {
        Ok(Some(_)) => {
            return error_response(StatusCode::CONFLICT, "Your webservice is already running");
        }
        Ok(None) => {}
        Err(response) => return response,
    }
    let server = match resolve_type(&service, &request) {
        Ok(found) => found,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, message),
    };
    let spec = match webservice_spec(&service, tool, &request, server).await {
        Ok(spec) => spec,
        Err(response) => return response,
    };
    match service.engine.create(tool, spec).await {
        Ok(view) => answer(&service, tool, StatusCode::CREATED, Some(&view)),
        Err(err) => engine_error(err),
    }
}

/// The request in `body`, or why it is not one.
fn parse_request(body: &[u8]) -> Result<WebserviceRequest, String> {
    serde_json::from_slice(body).map_err(|err| format!("Invalid webservice request: {err}"))
}

/// The continuous job that serves `request`, its type already resolved to
/// `(image, (command, file the type needs))`; `Err` is the refusal to send.
async fn webservice_spec(
    service: &JobsService,
    tool: &str,
    request: &WebserviceRequest,
    (image, server_command): (String, (String, Option<&'static str>)),
) -> Result<JobSpec, Response> {
    let home = service.engine.config().homes_dir.join(tool);
    if let Some(file) = server_command.1
        && !home.join(file).exists()
    {
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            format!(
                "A webservice of type {} needs ~/{file}, which does not exist",
                request.kind
            ),
        ));
    }
    let quota = service.engine.quota(tool).await.map_err(engine_error)?;
    let input = JobInput {
        name: tool.to_owned(),
        imagename: Some(image),
        cmd: Some(server_command.0),
        filelog: Some(false),
        memory: request.memory.clone(),
        cpu: request.cpu.clone(),
        continuous: Some(true),
        replicas: request.replicas,
        port: Some(i64::from(WEBSERVICE_PORT)),
        mount: request.mount.clone(),
        publish: Some(true),
        webservice: Some(request.kind.clone()),
        ..JobInput::default()
    };
    if let Some(replicas) = request.replicas
        && replicas < 1
    {
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            format!("replicas must be at least 1, got {replicas}"),
        ));
    }
    let resolved = {
        let images_check = |name: &str| check_image(&service.images, name);
        let ctx = ValidationContext {
            tool,
            check_image: &images_check,
            schedule_actual: &*service.schedule_actual,
            max_job_memory: quota.job_memory_bytes,
            max_job_cpu: quota.job_cpu_millis,
        };
        jobs::spec::resolve(&input, &ctx)
    };
    resolved.map_err(|err| error_response(StatusCode::BAD_REQUEST, err.0))
}

/// `(image, (command, file the type needs))`, or why the type cannot be served here.
fn resolve_type(
    service: &JobsService,
    request: &WebserviceRequest,
) -> Result<(String, (String, Option<&'static str>)), String> {
    let images = &service.images;
    match request.kind.as_str() {
        "buildservice" => Err(
            "The build service is not available on this platform, so a webservice of type buildservice cannot start; use generic (with a command) or an image type such as python3.11"
                .to_owned(),
        ),
        "generic" => {
            let command = request
                .extra_args
                .as_deref()
                .map(str::trim)
                .filter(|command| !command.is_empty())
                .ok_or_else(|| {
                    "A webservice of type generic needs a command: toolforge webservice generic start -- COMMAND (it must listen on $PORT)".to_owned()
                })?;
            let image = request.image.clone().unwrap_or_else(|| GENERIC_IMAGE.to_owned());
            let server = Server::Generic { command };
            Ok((image, (jobs::webservice::command(&server), None)))
        }
        kind => {
            let types = || {
                let mut names: Vec<&str> = images
                    .webservice_types()
                    .map(|image| image.name.as_str())
                    .collect();
                names.extend(["generic", "buildservice"]);
                names.sort_unstable();
                names.join(", ")
            };
            let image = images
                .find(kind)
                .filter(|image| image.webservice.is_some())
                .ok_or_else(|| {
                    format!("Unknown webservice type '{kind}'; type must be one of: {}", types())
                })?;
            let Some(variant) = &image.webservice else {
                return Err(format!("Unknown webservice type '{kind}'"));
            };
            let root = match &image.availability {
                Availability::Available { root } => root,
                Availability::Unavailable { reason } => {
                    return Err(format!(
                        "This platform cannot serve a webservice of type {kind}: {reason}"
                    ));
                }
            };
            if let Some(missing) = variant.missing(root) {
                return Err(format!(
                    "This platform cannot serve a webservice of type {kind}: {missing}"
                ));
            }
            let server_path = variant.server.to_string_lossy();
            let server = match variant.wstype {
                WsType::Python => Server::Python {
                    python: &server_path,
                },
                WsType::Php => Server::Php { php: &server_path },
                WsType::Js => Server::Js,
            };
            Ok((
                image.name.clone(),
                (
                    jobs::webservice::command(&server),
                    jobs::webservice::required_file(&server),
                ),
            ))
        }
    }
}

/// Every webservice type (the image catalog's webservice variants, `generic` and
/// `buildservice`), sorted by name, with whether this platform can serve it: our CLI
/// checks a type against them before anything else, as the original does.
#[utoipa::path(get, path = "/webservice/types", params(("tool" = String, Path, description = "the tool")), responses((status = 200, body = WebserviceTypesResponse)), tag = "webservice")]
pub(crate) async fn webservice_types(Extension(service): Service) -> Response {
    let mut types: Vec<WebserviceTypeBody> = service
        .images
        .webservice_types()
        .map(|image| {
            let unavailable = match (&image.availability, &image.webservice) {
                (Availability::Unavailable { reason }, _) => Some(reason.clone()),
                (Availability::Available { root }, Some(variant)) => variant.missing(root),
                (Availability::Available { .. }, None) => None,
            };
            WebserviceTypeBody {
                name: image.name.clone(),
                deprecated: image.state == ImageState::Deprecated,
                unavailable,
            }
        })
        .collect();
    types.push(WebserviceTypeBody {
        name: "generic".to_owned(),
        deprecated: false,
        unavailable: None,
    });
    types.push(WebserviceTypeBody {
        name: "buildservice".to_owned(),
        deprecated: false,
        unavailable: Some("the build service is not available on this platform".to_owned()),
    });
    types.sort_by(|a, b| a.name.cmp(&b.name));
    Json(WebserviceTypesResponse {
        types,
        messages: Messages::default(),
    })
    .into_response()
}

/// Stops the tool's webservice (404 when it does not run).
#[utoipa::path(delete, path = "/webservice", params(("tool" = String, Path, description = "the tool")), responses(
    (status = 200, body = WebserviceResponse),
    (status = 404, description = "Your webservice is not running", body = crate::ErrorBody),
), tag = "webservice")]
pub(crate) async fn stop_webservice(
    Extension(service): Service,
    Extension(caller): Extension<Caller>,
) -> Response {
    let tool = caller.tool.as_str();
    match current(&service, tool).await {
        Ok(Some(_)) => {}
        Ok(None) => return error_response(StatusCode::NOT_FOUND, "Your webservice is not running"),
        Err(response) => return response,
    }
    match service.engine.delete(tool, tool).await {
        Ok(()) => answer(&service, tool, StatusCode::OK, None),
        Err(err) => engine_error(err),
    }
}

/// Restarts the tool's webservice, one replica at a time (404 when it does not run).
/// With a body (a start request), the restart applies it: the replicas are rolled onto
/// the new definition (type, command, cpu, memory, replicas, mount), one at a time, and
/// replicas beyond the new count stop at the end. A `generic` request without a command
/// keeps the running command.
#[utoipa::path(post, path = "/webservice/restart", params(("tool" = String, Path, description = "the tool")), request_body(content = Option<WebserviceRequest>, description = "optional: the definition to restart with"), responses(
    (status = 200, body = WebserviceResponse),
    (status = 400, description = "an unknown type, a type this platform cannot serve, a missing file or a bad setting", body = crate::ErrorBody),
    (status = 404, description = "Your webservice is not running", body = crate::ErrorBody),
), tag = "webservice")]
pub(crate) async fn restart_webservice(
    Extension(service): Service,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let tool = caller.tool.as_str();
    let running = match current(&service, tool).await {
        Ok(Some(view)) => view,
        Ok(None) => return error_response(StatusCode::NOT_FOUND, "Your webservice is not running"),
        Err(response) => return response,
    };
    let outcome = if body.iter().all(u8::is_ascii_whitespace) {
        service.engine.restart(tool, tool).await
    } else {
        let request = match parse_request(&body) {
            Ok(request) => request,
            Err(message) => return error_response(StatusCode::BAD_REQUEST, message),
        };
        let keep_command = request.kind == "generic"
            && running.spec.webservice.as_deref() == Some("generic")
            && request
                .extra_args
                .as_deref()
                .is_none_or(|command| command.trim().is_empty());
        let server = if keep_command {
            (
                request
                    .image
                    .clone()
                    .unwrap_or_else(|| running.spec.image.clone()),
                (running.spec.cmd.clone(), None),
            )
        } else {
            match resolve_type(&service, &request) {
                Ok(found) => found,
                Err(message) => return error_response(StatusCode::BAD_REQUEST, message),
            }
        };
        let spec = match webservice_spec(&service, tool, &request, server).await {
            Ok(spec) => spec,
            Err(response) => return response,
        };
        if spec == running.spec {
            service.engine.restart(tool, tool).await
        } else {
            service.engine.roll_update(tool, spec).await
        }
    };
    if let Err(err) = outcome {
        return engine_error(err);
    }
    match current(&service, tool).await {
        Ok(view) => answer(&service, tool, StatusCode::OK, view.as_ref()),
        Err(response) => response,
    }
}
