//! The proxy's own HTML pages: landing, fourohfour (no webservice, no such tool) and
//! the error pages.
//!
//! Every page is an askama template, which escapes everything it interpolates, so text
//! from the request (the host, the tool part) is always shown escaped.
//! The 403, 500, 502, 503 and 504 pages can be replaced by files
//! `<errors-dir>/<code>.html`, read when the page is served (so a change needs no
//! restart); such a file is sent as it is, with nothing from the request in it.

use std::path::{Path, PathBuf};

use askama::Template;
use http::StatusCode;

/// The codes whose page an operator may replace with a file.
pub const REPLACEABLE: [u16; 5] = [403, 500, 502, 503, 504];

/// A maintainer as the fourohfour page lists them.
#[derive(Debug, Clone)]
pub struct MaintainerLink {
    pub name: String,
    /// `user` or `tool`.
    pub kind: &'static str,
    /// Their page on the dashboard, when the dashboard's address is known.
    pub url: Option<String>,
}

/// A suggested tool name and its address.
#[derive(Debug, Clone)]
pub struct Suggestion {
    pub name: String,
    pub url: String,
}

#[derive(Template)]
#[template(path = "landing.html")]
struct Landing<'a> {
    scheme: &'a str,
    domain: &'a str,
    port: &'a str,
    dashboard: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "no_webservice.html")]
struct NoWebservice<'a> {
    tool: &'a str,
    maintainers: &'a [MaintainerLink],
    tool_page: Option<String>,
    mail: Option<String>,
}

#[derive(Template)]
#[template(path = "no_such_tool.html")]
struct NoSuchTool<'a> {
    tool: &'a str,
    suggestions: &'a [Suggestion],
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    status: String,
    message: &'a str,
    detail: Option<&'a str>,
}

/// Renders pages; knows where replacement pages live.
#[derive(Debug, Clone)]
pub struct Pages {
    errors_dir: Option<PathBuf>,
}

impl Pages {
    /// Pages with replacements looked up in `errors_dir` (`None`: built-in pages only).
    pub fn new(errors_dir: Option<PathBuf>) -> Pages {
        Pages { errors_dir }
    }

    /// The landing page of the bare public domain.
    pub fn landing(
        &self,
        scheme: &str,
        domain: &str,
        port: &str,
        dashboard: Option<&str>,
    ) -> String {
        render(&Landing {
            scheme,
            domain,
            port,
            dashboard,
        })
    }

    /// 404 for a tool that exists but serves nothing.
    pub fn no_webservice(
        &self,
        tool: &str,
        maintainers: &[MaintainerLink],
        tool_page: Option<String>,
        mail: Option<String>,
    ) -> String {
        render(&NoWebservice {
            tool,
            maintainers,
            tool_page,
            mail,
        })
    }

    /// 404 for a tool that does not exist.
    pub fn no_such_tool(&self, tool: &str, suggestions: &[Suggestion]) -> String {
        render(&NoSuchTool { tool, suggestions })
    }

    /// An error page: the operator's file for replaceable codes when there is one,
    /// else the built-in page with `message` and an optional `detail` (both escaped).
    pub async fn error(&self, status: StatusCode, message: &str, detail: Option<&str>) -> String {
        if REPLACEABLE.contains(&status.as_u16())
            && let Some(dir) = &self.errors_dir
            && let Some(page) = read_replacement(dir, status.as_u16()).await
        {
            return page;
        }
        render(&ErrorPage {
            title: status.canonical_reason().unwrap_or("Error"),
            status: format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or_default()
            ),
            message,
            detail,
        })
    }
}

async fn read_replacement(dir: &Path, code: u16) -> Option<String> {
    let path = dir.join(format!("{code}.html"));
    match tokio::fs::read_to_string(&path).await {
        Ok(page) => Some(page),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "cannot read a replacement error page; serving the built-in one");
            None
        }
    }
}

fn render(template: &impl Template) -> String {
    template.render().unwrap_or_else(|err| {
        // Rendering only fails on a formatting error of our own types; never expected.
        tracing::error!(error = %err, "rendering a proxy page failed");
        String::from("<!doctype html><title>Error</title><p>Error.</p>")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn request_text_is_escaped_in_every_page() {
        let pages = Pages::new(None);
        let evil = "<script>alert('x')</script>";
        let html = pages.no_such_tool(
            evil,
            &[Suggestion {
                name: evil.to_owned(),
                url: format!("http://{evil}/"),
            }],
        );
        assert!(!html.contains("<script>"), "{html}");
        let html = pages.no_webservice(
            evil,
            &[MaintainerLink {
                name: evil.to_owned(),
                kind: "user",
                url: Some(evil.to_owned()),
            }],
            Some(evil.to_owned()),
            Some(evil.to_owned()),
        );
        assert!(!html.contains("<script>"), "{html}");
        let html = pages.error(StatusCode::BAD_REQUEST, evil, Some(evil)).await;
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&#60;script&#62;"), "{html}");
        let html = pages.landing("http", evil, ":1", Some(evil));
        assert!(!html.contains("<script>"), "{html}");
    }

    #[tokio::test]
    async fn a_file_replaces_a_replaceable_page_but_not_the_others() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("503.html"), "<p>our own 503</p>").unwrap();
        std::fs::write(dir.path().join("400.html"), "<p>not used</p>").unwrap();
        let pages = Pages::new(Some(dir.path().to_owned()));
        assert_eq!(
            pages
                .error(StatusCode::SERVICE_UNAVAILABLE, "m", None)
                .await,
            "<p>our own 503</p>"
        );
        let built_in = pages.error(StatusCode::BAD_REQUEST, "m", None).await;
        assert!(built_in.contains("400 Bad Request"), "{built_in}");
        let built_in = pages.error(StatusCode::GATEWAY_TIMEOUT, "m", None).await;
        assert!(built_in.contains("504 Gateway Timeout"), "{built_in}");
    }
}
