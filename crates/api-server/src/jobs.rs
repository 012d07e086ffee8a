//! The jobs API, `/jobs/v1/tool/{tool}/…` (api-contract.md §3.1): images, jobs (list,
//! run, load, flush), one job (show, delete, restart, logs) and quotas.
//!
//! Handlers translate between the wire shapes of `api_types::jobs` and the jobs domain
//! (`jobs::spec`) and engine (`jobs_engine`); they never decide access (the gateway did).

use std::sync::Arc;

use api_types::envelope::Messages;
use api_types::jobs::{
    DefinedJob, HealthCheckBody, ImageBody, ImageListResponse, JobApplyResponse, JobListResponse,
    JobRequestBody, JobResponse, JobStatusBody, LogLineBody, MessagesResponse, Quota,
    QuotaCategory, QuotaItem, QuotaResponse,
};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use jobs::quantity::{CoresDisplay, GibibytesDisplay};
use jobs::spec::{HealthCheck, HealthCheckInput, JobInput, JobKind, JobSpec, ValidationContext};
use jobs_engine::{Applied, JobView, JobsEngine};
use runtime::images::{Availability, ImageCatalog, ImageState};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{AppState, Caller, error_response};

mod webservice;

/// What the jobs API needs: the engine and the image catalog.
pub struct JobsService {
    /// Runs the jobs.
    pub engine: JobsEngine,
    /// The images jobs may name.
    pub images: Arc<ImageCatalog>,
    /// Turns a schedule into its `schedule_actual` (tool, job) or the parse error.
    pub schedule_actual: Box<ScheduleActual>,
    /// The public web address of a tool (`http://<tool>.<public-domain>:<port>/`).
    pub tool_url: Box<dyn Fn(&str) -> String + Send + Sync>,
}

/// `(schedule, tool, job) -> schedule_actual`, or the parse error's message.
pub type ScheduleActual = dyn Fn(&str, &str, &str) -> Result<String, String> + Send + Sync;

/// The jobs API's routes, to mount with [`crate::tool_scoped_service`]`("jobs", …)`.
pub fn routes(service: Arc<JobsService>) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_images))
        .routes(routes!(list_jobs, create_job, apply_job, flush_jobs))
        .routes(routes!(show_job, delete_job))
        .routes(routes!(restart_job))
        .routes(routes!(job_logs))
        .routes(routes!(show_quota))
        .routes(routes!(
            webservice::show_webservice,
            webservice::start_webservice,
            webservice::stop_webservice
        ))
        .routes(routes!(webservice::restart_webservice))
        .routes(routes!(webservice::webservice_types))
        .layer(Extension(service))
}

pub(crate) type Service = Extension<Arc<JobsService>>;

fn messages() -> Messages {
    Messages::default()
}

pub(crate) fn engine_error(err: jobs_engine::Error) -> Response {
    use jobs_engine::Error;
    match err {
        Error::NotFound(_) => error_response(StatusCode::NOT_FOUND, err.to_string()),
        Error::Conflict(_) => error_response(StatusCode::CONFLICT, err.to_string()),
        Error::Quota(_) => error_response(StatusCode::FORBIDDEN, err.to_string()),
        Error::PublishConflict { .. } => error_response(StatusCode::CONFLICT, err.to_string()),
        Error::NoSuchTool(_) => error_response(StatusCode::NOT_FOUND, err.to_string()),
        Error::Store(_) | Error::Corrupt { .. } => {
            tracing::error!(error = %format!("{:#}", anyhow_like(&err)), "the jobs service failed");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error in the jobs service",
            )
        }
    }
}

fn anyhow_like(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Parses the JSON body with a 400 that says what is wrong (not axum's 422).
#[expect(
    clippy::result_large_err,
    reason = "the error is the answer itself, built once per refused request"
)]
fn parse_body(body: &Bytes) -> Result<JobRequestBody, Response> {
    serde_json::from_slice(body).map_err(|err| {
        error_response(
            StatusCode::BAD_REQUEST,
            format!("Invalid job definition in the request body: {err}"),
        )
    })
}

/// `Ok(())` when `name` is an image that runs here, else a message with the valid names.
pub(crate) fn check_image(images: &ImageCatalog, name: &str) -> Result<(), String> {
    match images.find(name) {
        None => {
            let valid: Vec<&str> = images
                .images()
                .iter()
                .filter(|image| matches!(image.availability, Availability::Available { .. }))
                .map(|image| image.name.as_str())
                .collect();
            Err(format!(
                "No such image '{name}' (available images: {})",
                valid.join(", ")
            ))
        }
        Some(image) => match &image.availability {
            Availability::Available { .. } => Ok(()),
            Availability::Unavailable { reason } => Err(format!(
                "Image '{name}' is not available on this platform: {reason}; an administrator can provide it by setting `root:` for it in <data-dir>/images.yaml to a root filesystem directory (for example one made with `debootstrap`)"
            )),
        },
    }
}

/// Parses and validates a job definition against the tool's effective per-job limits.
async fn resolve(service: &JobsService, tool: &str, body: &Bytes) -> Result<JobSpec, Response> {
    let body = parse_body(body)?;
    let quota = service.engine.quota(tool).await.map_err(engine_error)?;
    let images = &service.images;
    let check_image = |name: &str| check_image(images, name);
    let input = JobInput {
        name: body.name,
        imagename: body.imagename,
        cmd: body.cmd,
        filelog: body.filelog,
        filelog_stdout: body.filelog_stdout,
        filelog_stderr: body.filelog_stderr,
        memory: body.memory,
        cpu: body.cpu,
        emails: body.emails,
        retry: body.retry,
        continuous: body.continuous,
        schedule: body.schedule,
        replicas: body.replicas,
        port: body.port,
        health_check: body.health_check.map(|check| HealthCheckInput {
            kind: check.kind,
            script: check.script,
            path: check.path,
        }),
        mount: body.mount,
        timeout: body.timeout,
        publish: body.publish,
        webservice: None,
    };
    let ctx = ValidationContext {
        tool,
        check_image: &check_image,
        schedule_actual: &*service.schedule_actual,
        max_job_memory: quota.job_memory_bytes,
        max_job_cpu: quota.job_cpu_millis,
    };
    jobs::spec::resolve(&input, &ctx).map_err(|err| error_response(StatusCode::BAD_REQUEST, err.0))
}

fn defined_job(service: &JobsService, view: &JobView, include_status: bool) -> DefinedJob {
    let spec = &view.spec;
    let image_state = service
        .images
        .find(&spec.image)
        .map_or(ImageState::Stable, |image| image.state);
    let (schedule, schedule_actual, timeout, continuous, port, replicas, health_check) =
        match &spec.kind {
            JobKind::OneOff => (None, None, None, None, None, None, None),
            JobKind::Scheduled {
                schedule,
                schedule_actual,
                timeout,
            } => (
                Some(schedule.clone()),
                Some(schedule_actual.clone()),
                *timeout,
                None,
                None,
                None,
                None,
            ),
            JobKind::Continuous {
                replicas,
                port,
                health_check,
                ..
            } => (
                None,
                None,
                None,
                Some(true),
                *port,
                Some(*replicas),
                health_check.as_ref().map(|check| match check {
                    HealthCheck::Script { script } => HealthCheckBody {
                        kind: Some("script".to_owned()),
                        script: Some(script.clone()),
                        path: None,
                    },
                    HealthCheck::Http { path } => HealthCheckBody {
                        kind: Some("http".to_owned()),
                        script: None,
                        path: Some(path.clone()),
                    },
                }),
            ),
        };
    DefinedJob {
        name: spec.name.clone(),
        cmd: spec.cmd.clone(),
        imagename: spec.image.clone(),
        image: spec.image.clone(),
        image_state: image_state.as_str().to_owned(),
        schedule,
        schedule_actual,
        continuous,
        filelog: spec.filelog,
        filelog_stdout: spec.filelog_stdout.clone(),
        filelog_stderr: spec.filelog_stderr.clone(),
        emails: spec.emails.as_str().to_owned(),
        retry: spec.retry,
        mount: spec.mount.as_str().to_owned(),
        memory: spec.memory.clone(),
        cpu: spec.cpu.clone(),
        port,
        replicas,
        timeout,
        health_check,
        status_short: view.status.short.clone(),
        status_long: view.status.long.clone(),
        status: include_status.then(|| JobStatusBody {
            short: view.status.short.clone(),
            long: view.status.long.clone(),
            messages: view.status.messages.clone(),
            duration: view.status.duration,
            last_run: view.status.last_run.clone(),
            up_to_date: true,
        }),
        publish: include_status.then(|| spec.is_published()),
    }
}

/// Query flags of the job listings.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Accepted for compatibility; unset fields are always listed.
    #[serde(default)]
    pub include_unset: Option<String>,
    /// `true`: add the v2 `status` object and the `publish` extension to each job.
    #[serde(default)]
    pub include_status: Option<String>,
}

fn truthy(flag: &Option<String>) -> bool {
    flag.as_deref()
        .is_some_and(|value| value.eq_ignore_ascii_case("true") || value == "1")
}

/// The images jobs can run on (stable and available here).
#[utoipa::path(get, path = "/images", params(("tool" = String, Path, description = "the tool")), responses((status = 200, body = ImageListResponse)), tag = "jobs")]
async fn list_images(Extension(service): Service) -> Response {
    let images = service
        .images
        .images()
        .iter()
        .filter(|image| {
            image.state == ImageState::Stable
                && matches!(image.availability, Availability::Available { .. })
        })
        .map(|image| ImageBody {
            shortname: image.name.clone(),
            image: image.image_url.clone(),
        })
        .collect();
    Json(ImageListResponse {
        images,
        messages: messages(),
    })
    .into_response()
}

/// The tool's jobs.
#[utoipa::path(get, path = "/jobs", params(("tool" = String, Path, description = "the tool"), ListQuery), responses((status = 200, body = JobListResponse)), tag = "jobs")]
async fn list_jobs(
    Extension(service): Service,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> Response {
    let _ = &query.include_unset;
    match service.engine.list(&caller.tool).await {
        Ok(views) => Json(JobListResponse {
            jobs: views
                .iter()
                .map(|view| defined_job(&service, view, truthy(&query.include_status)))
                .collect(),
            messages: messages(),
        })
        .into_response(),
        Err(err) => engine_error(err),
    }
}

/// Runs a new job (`toolforge jobs run`).
#[utoipa::path(post, path = "/jobs", params(("tool" = String, Path, description = "the tool")), request_body = JobRequestBody, responses(
    (status = 201, body = JobResponse),
    (status = 400, description = "a rule was broken", body = crate::ErrorBody),
    (status = 409, description = "a job of that name exists and has not finished", body = crate::ErrorBody),
), tag = "jobs")]
async fn create_job(
    Extension(service): Service,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let spec = match resolve(&service, &caller.tool, &body).await {
        Ok(spec) => spec,
        Err(response) => return response,
    };
    match service.engine.create(&caller.tool, spec).await {
        Ok(view) => (
            StatusCode::CREATED,
            Json(JobResponse {
                job: defined_job(&service, &view, false),
                messages: messages(),
            }),
        )
            .into_response(),
        Err(err) => engine_error(err),
    }
}

/// Creates, updates or leaves a job as it is (`toolforge jobs load`).
#[utoipa::path(patch, path = "/jobs", params(("tool" = String, Path, description = "the tool")), request_body = JobRequestBody, responses(
    (status = 200, body = JobApplyResponse),
    (status = 400, description = "a rule was broken", body = crate::ErrorBody),
), tag = "jobs")]
async fn apply_job(
    Extension(service): Service,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let spec = match resolve(&service, &caller.tool, &body).await {
        Ok(spec) => spec,
        Err(response) => return response,
    };
    let name = spec.name.clone();
    match service.engine.apply(&caller.tool, spec).await {
        Ok(applied) => {
            let (text, changed) = match applied {
                Applied::Created => (format!("Job {name} created"), true),
                Applied::Updated => (format!("Job {name} updated"), true),
                Applied::Unchanged => (format!("Job {name} is already up to date"), false),
            };
            Json(JobApplyResponse {
                messages: Messages {
                    info: vec![text],
                    ..Messages::default()
                },
                job_changed: changed,
            })
            .into_response()
        }
        Err(err) => engine_error(err),
    }
}

/// Deletes every job of the tool (`toolforge jobs flush`).
#[utoipa::path(delete, path = "/jobs", params(("tool" = String, Path, description = "the tool")), responses((status = 200, body = MessagesResponse)), tag = "jobs")]
async fn flush_jobs(Extension(service): Service, Extension(caller): Extension<Caller>) -> Response {
    match service.engine.flush(&caller.tool).await {
        Ok(()) => Json(MessagesResponse::default()).into_response(),
        Err(err) => engine_error(err),
    }
}

/// One job.
#[utoipa::path(get, path = "/jobs/{name}", params(("tool" = String, Path, description = "the tool"), ("name" = String, Path), ListQuery), responses(
    (status = 200, body = JobResponse),
    (status = 404, body = crate::ErrorBody),
), tag = "jobs")]
async fn show_job(
    Extension(service): Service,
    Extension(caller): Extension<Caller>,
    Path((_tool, name)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
) -> Response {
    match service.engine.view(&caller.tool, &name).await {
        Ok(view) => Json(JobResponse {
            job: defined_job(&service, &view, truthy(&query.include_status)),
            messages: messages(),
        })
        .into_response(),
        Err(err) => engine_error(err),
    }
}

/// Deletes one job.
#[utoipa::path(delete, path = "/jobs/{name}", params(("tool" = String, Path, description = "the tool"), ("name" = String, Path)), responses(
    (status = 200, body = MessagesResponse),
    (status = 404, body = crate::ErrorBody),
), tag = "jobs")]
async fn delete_job(
    Extension(service): Service,
    Extension(caller): Extension<Caller>,
    Path((_tool, name)): Path<(String, String)>,
) -> Response {
    match service.engine.delete(&caller.tool, &name).await {
        Ok(()) => Json(MessagesResponse::default()).into_response(),
        Err(err) => engine_error(err),
    }
}

/// Restarts one job.
#[utoipa::path(post, path = "/jobs/{name}/restart", params(("tool" = String, Path, description = "the tool"), ("name" = String, Path)), responses(
    (status = 200, body = MessagesResponse),
    (status = 404, body = crate::ErrorBody),
), tag = "jobs")]
async fn restart_job(
    Extension(service): Service,
    Extension(caller): Extension<Caller>,
    Path((_tool, name)): Path<(String, String)>,
) -> Response {
    match service.engine.restart(&caller.tool, &name).await {
        Ok(()) => Json(MessagesResponse::default()).into_response(),
        Err(err) => engine_error(err),
    }
}

/// Query of the log stream.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// `true` keeps the stream open and delivers new lines as they are written.
    #[serde(default)]
    pub follow: Option<String>,
    /// The last N lines only.
    #[serde(default)]
    pub lines: Option<String>,
}

/// A job's output as JSON lines, followed or not.
#[utoipa::path(get, path = "/jobs/{name}/logs", params(("tool" = String, Path, description = "the tool"), ("name" = String, Path), LogsQuery), responses(
    (status = 200, description = "one JSON object per line", body = LogLineBody, content_type = "text/plain"),
    (status = 400, body = crate::ErrorBody),
    (status = 404, body = crate::ErrorBody),
), tag = "jobs")]
async fn job_logs(
    Extension(service): Service,
    Extension(caller): Extension<Caller>,
    Path((_tool, name)): Path<(String, String)>,
    Query(query): Query<LogsQuery>,
) -> Response {
    let tool = caller.tool.clone();
    let view = match service.engine.view(&tool, &name).await {
        Ok(view) => view,
        Err(err) => return engine_error(err),
    };
    if view.spec.filelog {
        return error_response(
            StatusCode::NOT_FOUND,
            format!(
                "Job '{name}' has file logging enabled, which is incompatible with the logs command"
            ),
        );
    }
    let lines = match query.lines.as_deref() {
        None | Some("") => None,
        Some(text) => match text.parse::<usize>() {
            Ok(lines) => Some(lines),
            Err(_) => {
                return error_response(StatusCode::BAD_REQUEST, "Unable to parse lines as integer");
            }
        },
    };
    let follow = truthy(&query.follow);
    let logs = service.engine.logs().clone();
    if !follow && !logs.has_logs(&tool, &name) {
        return error_response(
            StatusCode::NOT_FOUND,
            format!("Job '{name}' does not have any logs available"),
        );
    }
    // Without follow: the stored lines. With follow: a follower, which yields the stored
    // lines, then each later line once (deduped by `seq` at the seam, read back from the
    // files when it falls behind).
    let source = if follow {
        LogSource::Followed(Box::new(logs.follow_from(&tool, &name, lines)))
    } else {
        LogSource::Stored(logs.tail(&tool, &name, lines).into_iter())
    };
    let cancel = service.engine.shutdown_token();
    // The stream is polled by the connection and dropped when the client goes away, so it
    // needs no task of its own; it ends at shutdown.
    let stream =
        futures_util::stream::unfold((source, cancel), |(mut source, cancel)| async move {
            let line = match &mut source {
                LogSource::Stored(stored) => stored.next()?,
                LogSource::Followed(follower) => tokio::select! {
                    () = cancel.cancelled() => return None,
                    line = follower.next() => line?,
                },
            };
            Some((
                Ok::<_, std::io::Error>(log_line_bytes(&line)),
                (source, cancel),
            ))
        });
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Where a log response's lines come from.
enum LogSource {
    /// The stored lines, without follow.
    Stored(std::vec::IntoIter<jobs_engine::logs::LogLine>),
    /// The stored lines, then the live ones.
    Followed(Box<jobs_engine::logs::Follower>),
}

fn log_line_bytes(line: &jobs_engine::logs::LogLine) -> Bytes {
    let body = LogLineBody {
        pod: line.pod.clone(),
        container: line.container.clone(),
        datetime: line.datetime.clone(),
        message: line.message.clone(),
    };
    // serde_json escapes nothing outside ASCII control characters; escape the rest so
    // no client decoding can garble it (the original does the same).
    let mut text = ascii_json(&serde_json::to_string(&body).unwrap_or_default());
    text.push('\n');
    Bytes::from(text)
}

fn ascii_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// The tool's quota and use.
#[utoipa::path(get, path = "/quotas", params(("tool" = String, Path, description = "the tool")), responses((status = 200, body = QuotaResponse)), tag = "jobs")]
async fn show_quota(Extension(service): Service, Extension(caller): Extension<Caller>) -> Response {
    let quota = match service.engine.quota(&caller.tool).await {
        Ok(quota) => quota,
        Err(err) => return engine_error(err),
    };
    let usage = match service.engine.quota_usage(&caller.tool).await {
        Ok(usage) => usage,
        Err(err) => return engine_error(err),
    };
    let item = |name: &str, limit: String, used: Option<String>| QuotaItem {
        name: name.to_owned(),
        limit,
        used,
    };
    let categories = vec![
        QuotaCategory {
            name: "Running jobs".to_owned(),
            items: vec![
                item(
                    "Total running jobs at once (Kubernetes pods)",
                    quota.pods.to_string(),
                    Some(usage.pods.to_string()),
                ),
                item(
                    "Running one-off and cron jobs",
                    quota.jobs.to_string(),
                    Some(usage.jobs.to_string()),
                ),
                item(
                    "CPU",
                    CoresDisplay(quota.cpu_millis).to_string(),
                    Some(CoresDisplay(usage.cpu_millis).to_string()),
                ),
                item(
                    "Memory",
                    GibibytesDisplay(quota.memory_bytes).to_string(),
                    Some(GibibytesDisplay(usage.memory_bytes).to_string()),
                ),
            ],
        },
        QuotaCategory {
            name: "Per-job limits".to_owned(),
            items: vec![
                item("CPU", CoresDisplay(quota.job_cpu_millis).to_string(), None),
                item(
                    "Memory",
                    GibibytesDisplay(quota.job_memory_bytes).to_string(),
                    None,
                ),
            ],
        },
        QuotaCategory {
            name: "Job definitions".to_owned(),
            items: vec![
                item(
                    "Cron jobs",
                    quota.cronjobs.to_string(),
                    Some(usage.cronjobs.to_string()),
                ),
                item(
                    "Continuous jobs (including web services)",
                    quota.continuous.to_string(),
                    Some(usage.continuous.to_string()),
                ),
            ],
        },
    ];
    Json(QuotaResponse {
        quota: Quota { categories },
        messages: messages(),
    })
    .into_response()
}
