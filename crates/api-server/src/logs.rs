//! The logs API, `/logs/v1/tool/{tool}/…`: a tool's captured job output
//! ([`jobs_engine::logs`]) queried by job, time range and text, one page at a time.
//!
//! | route | answer |
//! |---|---|
//! | `GET /logs` | `{"lines": [{"job", "pod", "stream", "datetime", "message"}…], "cursor", "more", "messages"}` |
//! | `GET /jobs/{job}/logs` | the same, for one job |
//!
//! Query: `job`, `since` and `until` (RFC 3339; `since` inclusive, `until` exclusive),
//! `contains` (text of the message, case-sensitive), `order` (`newest`, the default, or
//! `oldest`), `limit` (1 to 10000, default 100), `cursor` (from the previous answer).
//! The answer's `cursor` names the last line returned (the request's cursor when the page
//! is empty, `null` when there is none), so the next page continues exactly after it;
//! `more` says whether more lines matched.
//! Unlike the jobs API, lines of jobs that no longer exist are served until the
//! retention removes them. A bad parameter is a 400 naming it.

use std::sync::Arc;

use api_types::envelope::{ErrorBody, Messages};
use axum::Json;
use axum::extract::{Extension, OriginalUri, Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use jobs_engine::logs::{LogLine, LogQuery, Logs, Order};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{AppState, Caller, error_response, tool_scoped_service};

/// Lines per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 10_000;

/// One line of a tool's log on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ToolLogLine {
    /// The job that printed it.
    pub job: String,
    /// The replica, `<job>-<n>`.
    pub pod: String,
    /// `stdout`, `stderr`, or `platform` for the platform's own lines (how many lines
    /// the rate limit dropped).
    pub stream: String,
    /// When it was captured, RFC 3339 in UTC with nanoseconds.
    pub datetime: String,
    /// The text, without its newline.
    pub message: String,
}

/// A page of a tool's log.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ToolLogsResponse {
    /// The lines, in the requested order.
    pub lines: Vec<ToolLogLine>,
    /// Pass back as `cursor` to continue after the last line of this page.
    pub cursor: Option<String>,
    /// Whether more lines matched than this page holds.
    pub more: bool,
    pub messages: Messages,
}

/// The query parameters, as text, so each can be refused with its own message.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ToolLogsQuery {
    /// Only this job's lines.
    pub job: Option<String>,
    /// Only lines captured at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only lines captured before this time (RFC 3339).
    pub until: Option<String>,
    /// Only lines whose message contains this text (case-sensitive).
    pub contains: Option<String>,
    /// `newest` (default) or `oldest` first.
    pub order: Option<String>,
    /// Lines per page, 1 to 10000 (default 100).
    pub limit: Option<String>,
    /// The `cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The logs service's routes, to pass to [`crate::router_with_services`].
pub fn service(logs: Arc<Logs>) -> OpenApiRouter<AppState> {
    let routes = OpenApiRouter::new()
        .routes(routes!(list_logs))
        .routes(routes!(list_job_logs))
        // Without these, an unknown logs route would reach the gateway's catch-all,
        // which says the service is not built.
        .route("/", any(no_such_route))
        .route("/{*rest}", any(no_such_route))
        .layer(Extension(logs));
    tool_scoped_service("logs", routes)
}

/// Read the tool's log: every job's lines, or one job's, filtered and paged.
#[utoipa::path(
    get,
    path = "/logs",
    tag = "logs",
    params(("tool" = String, Path, description = "the tool"), ToolLogsQuery),
    responses(
        (status = 200, description = "a page of the tool's log", body = ToolLogsResponse),
        (status = 400, description = "a query parameter is invalid; the message names it", body = ErrorBody),
        (status = 403, description = "the caller may not act on the tool", body = ErrorBody),
    ),
    security(("client_certificate" = []), ("bearer" = []))
)]
async fn list_logs(
    Extension(caller): Extension<Caller>,
    Extension(logs): Extension<Arc<Logs>>,
    Query(query): Query<ToolLogsQuery>,
) -> Response {
    answer(logs, caller.tool, query).await
}

/// Read one job's log, also of a job deleted since, filtered and paged.
#[utoipa::path(
    get,
    path = "/jobs/{job}/logs",
    tag = "logs",
    params(
        ("tool" = String, Path, description = "the tool"),
        ("job" = String, Path, description = "the job (it may have been deleted)"),
        ToolLogsQuery,
    ),
    responses(
        (status = 200, description = "a page of the job's log", body = ToolLogsResponse),
        (status = 400, description = "a parameter is invalid; the message names it", body = ErrorBody),
        (status = 403, description = "the caller may not act on the tool", body = ErrorBody),
    ),
    security(("client_certificate" = []), ("bearer" = []))
)]
async fn list_job_logs(
    Extension(caller): Extension<Caller>,
    Extension(logs): Extension<Arc<Logs>>,
    Path((_tool, job)): Path<(String, String)>,
    Query(mut query): Query<ToolLogsQuery>,
) -> Response {
    if query.job.as_ref().is_some_and(|other| *other != job) {
        return error_response(
            StatusCode::BAD_REQUEST,
            format!(
                "invalid job: the query names '{}' but the path names '{job}'",
                query.job.unwrap_or_default()
            ),
        );
    }
    query.job = Some(job);
    answer(logs, caller.tool, query).await
}

async fn answer(logs: Arc<Logs>, tool: String, query: ToolLogsQuery) -> Response {
    let parsed = match parse_query(&query) {
        Ok(parsed) => parsed,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, message),
    };
    let page = match tokio::task::spawn_blocking(move || logs.query(&tool, &parsed)).await {
        Ok(page) => page,
        Err(err) => {
            tracing::error!(error = %err, "reading a tool's log failed");
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error in the logs service; the platform's log has the details",
            );
        }
    };
    let cursor = match page.lines.last() {
        Some(last) => Some(encode_cursor(last.seq)),
        None => query.cursor.clone(),
    };
    Json(ToolLogsResponse {
        lines: page.lines.iter().map(wire).collect(),
        cursor,
        more: page.more,
        messages: Messages::default(),
    })
    .into_response()
}

/// Validates the parameters; `Err` is the 400's message, naming the parameter.
fn parse_query(query: &ToolLogsQuery) -> Result<LogQuery, String> {
    let job = match query.job.as_deref() {
        None | Some("") => None,
        Some(job) => {
            if jobs::spec::validate_job_name(job).is_err() {
                return Err(format!(
                    "invalid job '{job}': {}",
                    jobs::spec::INVALID_JOB_NAME
                ));
            }
            Some(job.to_owned())
        }
    };
    let since = parse_time("since", query.since.as_deref())?;
    let until = parse_time("until", query.until.as_deref())?;
    if let (Some(since), Some(until)) = (since, until)
        && since >= until
    {
        return Err("invalid until: it must be later than since".to_owned());
    }
    let contains = match query.contains.as_deref() {
        None | Some("") => None,
        Some(text) if text.len() > 1024 => {
            return Err("invalid contains: at most 1024 bytes".to_owned());
        }
        Some(text) => Some(text.to_owned()),
    };
    let order = match query.order.as_deref() {
        None | Some("") | Some("newest") => Order::NewestFirst,
        Some("oldest") => Order::OldestFirst,
        Some(other) => {
            return Err(format!(
                "invalid order '{other}': it must be newest or oldest"
            ));
        }
    };
    let limit = match query.limit.as_deref() {
        None | Some("") => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
            _ => {
                return Err(format!(
                    "invalid limit '{text}': it must be a whole number from 1 to {MAX_LIMIT}"
                ));
            }
        },
    };
    let after = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(text) => Some(decode_cursor(text).ok_or_else(|| {
            format!("invalid cursor '{text}': pass back the cursor of a previous answer")
        })?),
    };
    Ok(LogQuery {
        job,
        since,
        until,
        contains,
        order,
        limit,
        after,
    })
}

fn parse_time(name: &str, text: Option<&str>) -> Result<Option<u64>, String> {
    let Some(text) = text.filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    let time = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        format!("invalid {name} '{text}': it must be an RFC 3339 time such as 2026-01-31T12:00:00Z")
    })?;
    Ok(Some(
        u64::try_from(time.unix_timestamp_nanos()).unwrap_or(0),
    ))
}

/// Cursors are opaque to clients; today they are the `seq` of a line in hex.
fn encode_cursor(seq: u64) -> String {
    format!("c{seq:x}")
}

fn decode_cursor(text: &str) -> Option<u64> {
    let hex = text.strip_prefix('c')?;
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

fn wire(line: &LogLine) -> ToolLogLine {
    let datetime = OffsetDateTime::from_unix_timestamp_nanos(i128::from(line.seq))
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_else(|| line.datetime.clone());
    ToolLogLine {
        job: line.container.clone(),
        pod: line.pod.clone(),
        stream: line.stream.clone(),
        datetime,
        message: line.message.clone(),
    }
}

async fn no_such_route(OriginalUri(uri): OriginalUri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        format!("no such endpoint: {}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use crate::logs::{ToolLogsQuery, decode_cursor, encode_cursor, parse_query};

    #[track_caller]
    fn refused(query: ToolLogsQuery, expected: &str) {
        assert_eq!(parse_query(&query).unwrap_err(), expected);
    }

    #[test]
    fn each_bad_parameter_is_refused_with_a_message_naming_it() {
        let text = |value: &str| Some(value.to_owned());
        refused(
            ToolLogsQuery {
                job: text("Bad_Name"),
                ..Default::default()
            },
            "invalid job 'Bad_Name': Invalid job name. See the documentation for the naming rules: https://w.wiki/6YL8",
        );
        refused(
            ToolLogsQuery {
                since: text("yesterday"),
                ..Default::default()
            },
            "invalid since 'yesterday': it must be an RFC 3339 time such as 2026-01-31T12:00:00Z",
        );
        refused(
            ToolLogsQuery {
                since: text("2026-01-02T00:00:00Z"),
                until: text("2026-01-01T00:00:00Z"),
                ..Default::default()
            },
            "invalid until: it must be later than since",
        );
        refused(
            ToolLogsQuery {
                order: text("up"),
                ..Default::default()
            },
            "invalid order 'up': it must be newest or oldest",
        );
        for limit in ["0", "-1", "ten", "10001"] {
            refused(
                ToolLogsQuery {
                    limit: text(limit),
                    ..Default::default()
                },
                &format!("invalid limit '{limit}': it must be a whole number from 1 to 10000"),
            );
        }
        refused(
            ToolLogsQuery {
                cursor: text("zz"),
                ..Default::default()
            },
            "invalid cursor 'zz': pass back the cursor of a previous answer",
        );
        let ok = parse_query(&ToolLogsQuery {
            since: text("2026-01-01T00:00:00+02:00"),
            order: text("oldest"),
            limit: text("5"),
            cursor: Some(encode_cursor(42)),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ok.limit, 5);
        assert_eq!(ok.after, Some(42));
        assert_eq!(ok.since, Some(1_767_218_400_000_000_000));
        assert_eq!(decode_cursor(&encode_cursor(u64::MAX)), Some(u64::MAX));
    }
}
