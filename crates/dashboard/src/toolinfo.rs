//! `toolinfo.json` (v1 and v1.2) at the original's paths (engineer H4b):
//! `/tools/toolinfo/v1/toolinfo.json` and `/tools/toolinfo/v1.2/toolinfo.json`, every tool
//! by name, in the shapes of [`api_types::toolinfo`].
//!
//! A record's `url` is where a visitor goes, as Striker decides it: the webservice (with
//! the record's path) when the tool is one, else its documentation, else its page here.
//! Its `name` is `<prefix>-<tool>`, the prefix being the first label of the public domain
//! (`toolforge` for `toolforge.org`), as Striker's `toolinfo_prefix`.
//! The catalogue is built from one read of the store (one snapshot, not a query per tool).
//!
//! # The cache (engineer H6)
//!
//! Building and serialising 3,000 records takes tens of milliseconds, so each shape's
//! body is kept in [`ToolinfoCache`] with the store's [`store::Store::catalogue_generation`]
//! it was built at. Every request reads that counter (one row) first: when it still
//! matches, the kept body is served; when anything published changed (triggers in the
//! store bump the counter on every write of tools, tool metadata, tags and authors), one
//! request rebuilds while the others wait for it, so nothing stale is ever served. The
//! body's SHA-256 is its strong `ETag`; a crawler's `If-None-Match` gets 304.

use std::sync::{Arc, Mutex};

use api_types::toolinfo::{ToolinfoSource, ToolinfoV1, ToolinfoV1_2};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
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

/// The serialised `toolinfo.json` bodies, one per shape, each kept until the store's
/// catalogue generation moves. One per [`DashboardState`] (its URLs are in the records).
#[derive(Debug, Default)]
pub struct ToolinfoCache {
    v1: ShapeCache,
    v1_2: ShapeCache,
}

#[derive(Debug, Default)]
struct ShapeCache {
    /// The last body built; read and replaced under a short lock.
    current: Mutex<Option<Arc<Built>>>,
    /// Held while building, so a change costs one rebuild, not one per waiting request.
    building: tokio::sync::Mutex<()>,
}

/// One serialised catalogue.
#[derive(Debug)]
struct Built {
    generation: i64,
    body: Bytes,
    etag: HeaderValue,
}

impl ShapeCache {
    fn current(&self) -> Option<Arc<Built>> {
        match self.current.lock() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, built: Arc<Built>) {
        match self.current.lock() {
            Ok(mut current) => *current = Some(built),
            Err(poisoned) => *poisoned.into_inner() = Some(built),
        }
    }

    /// The body as of now: the kept one when the generation has not moved, else a new one.
    ///
    /// The generation is read before the catalogue, so a body is never labelled with a
    /// generation newer than the data in it: a change committed in between only causes
    /// one more rebuild on the next request.
    async fn get<T>(
        &self,
        state: &DashboardState,
        build: fn(&ToolinfoSource<'_>) -> T,
    ) -> Result<Arc<Built>, PageError>
    where
        T: serde::Serialize + Send + 'static,
    {
        let generation = state.store.catalogue_generation().await?;
        if let Some(built) = self
            .current()
            .filter(|built| built.generation == generation)
        {
            return Ok(built);
        }
        let _building = self.building.lock().await;
        // Someone else may have rebuilt while this request waited.
        if let Some(built) = self
            .current()
            .filter(|built| built.generation >= generation)
        {
            return Ok(built);
        }
        let generation = state.store.catalogue_generation().await?;
        let records = catalogue(state, build).await?;
        let built = tokio::task::spawn_blocking(move || serialise(generation, &records))
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "serialising toolinfo.json panicked");
                PageError::Internal
            })??;
        let built = Arc::new(built);
        self.replace(built.clone());
        Ok(built)
    }
}

fn serialise<T: serde::Serialize>(generation: i64, records: &[T]) -> Result<Built, PageError> {
    let body = serde_json::to_vec_pretty(records).map_err(|err| {
        tracing::error!(error = %err, "serializing toolinfo.json failed");
        PageError::Internal
    })?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &body);
    let hex: String = digest.as_ref()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let etag = HeaderValue::from_str(&format!("\"{hex}\"")).map_err(|err| {
        tracing::error!(error = %err, "an ETag of hex digits was refused");
        PageError::Internal
    })?;
    Ok(Built {
        generation,
        body: Bytes::from(body),
        etag,
    })
}

async fn toolinfo_v1(
    State(state): State<DashboardState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let built = state.toolinfo_cache.v1.get(&state, ToolinfoV1::new).await?;
    Ok(respond(&built, &headers))
}

async fn toolinfo_v1_2(
    State(state): State<DashboardState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let built = state
        .toolinfo_cache
        .v1_2
        .get(&state, ToolinfoV1_2::new)
        .await?;
    Ok(respond(&built, &headers))
}

/// Whether `If-None-Match` names `etag` (or is `*`); weak validators compare by their
/// opaque part, as RFC 9110 has it for `If-None-Match`.
fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(etag) = etag.to_str() else {
        return false;
    };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

fn respond(built: &Built, headers: &HeaderMap) -> Response {
    let common = [
        (header::ETAG, built.etag.clone()),
        // Crawlers may keep it, but ask again each time (a 304 costs one counter read).
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        ),
    ];
    if not_modified(headers, &built.etag) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        built.body.clone(),
    )
        .into_response()
}
