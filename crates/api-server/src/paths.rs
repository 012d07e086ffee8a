//! The path rules of the official clients (api-contract.md §1.2, §2.4): repeated
//! slashes collapse, a trailing slash is optional, and nothing ever redirects.
//! Percent-decoding of segments is left to the extractors, after routing.

use axum::http::Uri;
use axum::http::uri::PathAndQuery;

/// Rewrites `uri` so that `//jobs//v1/tool/x/jobs/` routes as `/jobs/v1/tool/x/jobs`.
pub fn normalize(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let normalized = normalize_path(path);
    if normalized == path {
        return None;
    }
    let path_and_query = match uri.query() {
        Some(query) => format!("{normalized}?{query}"),
        None => normalized,
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(path_and_query).ok()?);
    Uri::from_parts(parts).ok()
}

/// Collapses repeated slashes and drops a trailing one (the root stays `/`).
pub fn normalize_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for segment in path.split('/').filter(|segment| !segment.is_empty()) {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The first path segment when it names a service, for metrics and routing.
pub fn service_of(path: &str) -> Option<&'static str> {
    let first = path.trim_start_matches('/').split('/').next()?;
    crate::SERVICES
        .iter()
        .copied()
        .find(|service| *service == first)
}

/// The percent-decoded `{tool}` segment of `/{service}/v1/tool/{tool}/…`.
pub fn tool_of(path: &str) -> Option<String> {
    let mut segments = path.trim_start_matches('/').split('/');
    let (_service, version, literal, tool) = (
        segments.next()?,
        segments.next()?,
        segments.next()?,
        segments.next()?,
    );
    if version != "v1" || literal != "tool" || tool.is_empty() {
        return None;
    }
    Some(
        percent_encoding::percent_decode_str(tool)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slashes_collapse_and_trailing_ones_go() {
        for (input, expected) in [
            ("/", "/"),
            ("//", "/"),
            ("/jobs/v1/tool/x/jobs/", "/jobs/v1/tool/x/jobs"),
            ("//jobs/v1/tool/x/jobs/", "/jobs/v1/tool/x/jobs"),
            ("/jobs//v1///tool/x", "/jobs/v1/tool/x"),
            ("/healthz", "/healthz"),
        ] {
            assert_eq!(normalize_path(input), expected, "{input}");
        }
        let uri: Uri = "//jobs/v1/tool/x/jobs/?include_unset=true".parse().unwrap();
        assert_eq!(
            normalize(&uri).unwrap().to_string(),
            "/jobs/v1/tool/x/jobs?include_unset=true"
        );
    }

    #[test]
    fn the_tool_segment_is_percent_decoded() {
        assert_eq!(
            tool_of("/jobs/v1/tool/my%20tool/jobs").as_deref(),
            Some("my tool")
        );
        assert_eq!(tool_of("/jobs/v1/tool/x").as_deref(), Some("x"));
        assert_eq!(tool_of("/jobs/v2/tool/x"), None);
        assert_eq!(service_of("/envvars/v1/tool/x"), Some("envvars"));
        assert_eq!(service_of("/nope/v1"), None);
    }
}
