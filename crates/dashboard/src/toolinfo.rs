//! `toolinfo.json` (v1 and v1.2) at the original's paths (engineer H4b):
//! `/tools/toolinfo/v1/toolinfo.json` and `/tools/toolinfo/v1.2/toolinfo.json`, every tool
//! by name, in the shapes of [`api_types::toolinfo`].
//!
//! A record's `url` is where a visitor goes, as Striker decides it: the webservice (with
//! the record's path) when the tool is one, else its documentation, else its page here.
//! Its `name` is `<prefix>-<tool>`, the prefix being the first label of the public domain
//! (`toolforge` for `toolforge.org`), as Striker's `toolinfo_prefix`.
//! The catalogue is built from one read of the store (three scans, no query per tool).

use api_types::toolinfo::{ToolinfoSource, ToolinfoV1, ToolinfoV1_2};
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::DashboardState;
use crate::page::PageError;

/// The toolinfo routes.
pub fn router() -> Router<DashboardState> {
    Router::new()
        .route("/tools/toolinfo/v1/toolinfo.json", get(toolinfo_v1))
        .route("/tools/toolinfo/v1.2/toolinfo.json", get(toolinfo_v1_2))
}

/// The prefix of record names: the first label of the public domain.
pub fn toolinfo_prefix(domain: &str) -> &str {
    match domain.split('.').next() {
        Some(label) if !label.is_empty() => label,
        _ => "toolforge",
    }
}

/// Where a visitor of `tool` goes.
pub fn record_url(state: &DashboardState, tool: &store::ToolWithInfo) -> String {
    if tool.info.is_webservice {
        crate::tools::webservice_url(state, tool)
    } else if !tool.info.docs.is_empty() {
        tool.info.docs.clone()
    } else {
        format!("{}/tools/id/{}", state.config.public_url, tool.tool.name)
    }
}

/// Builds one record per tool with `build`, by name.
pub async fn catalogue<T>(
    state: &DashboardState,
    build: impl Fn(&ToolinfoSource<'_>) -> T,
) -> Result<Vec<T>, store::Error> {
    let prefix = toolinfo_prefix(&state.config.proxy_domain);
    let tools = state.store.all_tool_infos().await?;
    Ok(tools
        .iter()
        .map(|tool| {
            let name = format!("{prefix}-{}", tool.tool.name);
            let url = record_url(state, tool);
            build(&ToolinfoSource {
                name: &name,
                title: &tool.tool.title,
                description: &tool.tool.description,
                url: &url,
                tags: &tool.info.tags,
                authors: &tool.info.authors,
                repository: &tool.info.repository,
                license: tool.info.license.as_deref(),
                issues: &tool.info.issues,
                docs: &tool.info.docs,
                is_webservice: tool.info.is_webservice,
            })
        })
        .collect())
}

async fn toolinfo_v1(State(state): State<DashboardState>) -> Result<Response, PageError> {
    json(catalogue(&state, ToolinfoV1::new).await?)
}

async fn toolinfo_v1_2(State(state): State<DashboardState>) -> Result<Response, PageError> {
    json(catalogue(&state, ToolinfoV1_2::new).await?)
}

fn json<T: serde::Serialize>(records: Vec<T>) -> Result<Response, PageError> {
    let body = serde_json::to_vec_pretty(&records).map_err(|err| {
        tracing::error!(error = %err, "serializing toolinfo.json failed");
        PageError::Internal
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        body,
    )
        .into_response())
}
