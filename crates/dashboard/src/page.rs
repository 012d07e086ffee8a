//! What every page shares: the layout's data, flash messages, rendering, redirects and
//! the error pages (404, 403, 409, 429, 500, 503), all rendered in the base layout.

use std::fmt;

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// A logged-in user as the pages see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    /// Shell name.
    pub name: String,
    /// Contact address.
    pub email: String,
    /// Platform admin.
    pub is_admin: bool,
    /// The e-mail address is confirmed (always for admin-made accounts).
    pub email_confirmed: bool,
    /// A Toolforge member (approved request or admin-made account); admins count too.
    pub member: bool,
}

/// How a flash message looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashLevel {
    /// Something worked.
    Success,
    /// For information.
    Info,
    /// Worked, but look.
    Warning,
    /// Did not work.
    Error,
}

impl FlashLevel {
    /// The stored word, also the CSS class `flash-<word>`.
    pub fn as_str(self) -> &'static str {
        match self {
            FlashLevel::Success => "success",
            FlashLevel::Info => "info",
            FlashLevel::Warning => "warning",
            FlashLevel::Error => "error",
        }
    }

    fn parse(text: &str) -> FlashLevel {
        match text {
            "success" => FlashLevel::Success,
            "warning" => FlashLevel::Warning,
            "error" => FlashLevel::Error,
            _ => FlashLevel::Info,
        }
    }
}

/// A message shown once, on the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// Its level.
    pub level: FlashLevel,
    /// Its text (escaped when shown, like everything else).
    pub text: String,
}

/// Parses the stored `level<TAB>text` lines.
pub(crate) fn parse_flashes(stored: &str) -> Vec<Flash> {
    stored
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (level, text) = line.split_once('\t').unwrap_or(("info", line));
            Flash {
                level: FlashLevel::parse(level),
                text: text.to_owned(),
            }
        })
        .collect()
}

/// What the base template needs on every page.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// The logged-in user, if any.
    pub user: Option<SessionUser>,
    /// The session's CSRF token (empty on pages rendered without a session).
    pub csrf_token: String,
    /// Messages to show once.
    pub flashes: Vec<Flash>,
}

impl Layout {
    /// The hidden form field carrying the CSRF token: put `{{ page.csrf_field() }}` in
    /// every POST form.
    pub fn csrf_field(&self) -> CsrfField<'_> {
        CsrfField(&self.csrf_token)
    }

    /// Whether the visitor is an admin.
    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|user| user.is_admin)
    }

    /// The logged-in user's name, or "".
    pub fn user_name(&self) -> &str {
        self.user.as_ref().map_or("", |user| user.name.as_str())
    }
}

/// `<input type="hidden" name="csrf_token" value="…">`; the token is hex made by the
/// server, never user data, so it is written unescaped.
#[derive(Debug, Clone, Copy)]
pub struct CsrfField<'a>(&'a str);

impl fmt::Display for CsrfField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keep it safe even if a token ever held something else.
        let token: String = self
            .0
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        write!(
            f,
            r#"<input type="hidden" name="csrf_token" value="{token}">"#
        )
    }
}

impl askama::filters::HtmlSafe for CsrfField<'_> {}

/// A time as pages show it: `2026-01-31 14:05 UTC`.
pub fn when(at: &time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// Renders a template as a 200 HTML page.
pub fn render(template: &impl Template) -> Result<Response, PageError> {
    render_with_status(StatusCode::OK, template)
}

/// Renders a template as an HTML page with `status`.
pub fn render_with_status(
    status: StatusCode,
    template: &impl Template,
) -> Result<Response, PageError> {
    match template.render() {
        Ok(html) => Ok((status, Html(html)).into_response()),
        Err(err) => {
            tracing::error!(error = %err, "rendering a dashboard page failed");
            Err(PageError::Internal)
        }
    }
}

/// A 303 redirect to `location` (after a POST, so a reload does not resend it).
pub fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(location) {
        Ok(value) => {
            response.headers_mut().insert(header::LOCATION, value);
        }
        Err(_) => {
            response
                .headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/"));
        }
    }
    response
}

/// Whether `next` is a local path we may redirect to after log-in (no open redirect).
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control());
    ok.then_some(next)
}

/// A numeric id from the URL path (`…/{id}`); anything else is the 404 page rather
/// than axum's plain-text rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowId(pub i64);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RowId {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(text) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| PageError::NotFound)?;
        text.parse().map(RowId).map_err(|_| PageError::NotFound)
    }
}

/// A page that could not be shown, rendered in the layout with its status.
#[derive(Debug)]
pub enum PageError {
    /// 404.
    NotFound,
    /// 403, with the reason shown.
    Forbidden(String),
    /// 400, with the rule broken.
    BadRequest(String),
    /// 409, with the conflict.
    Conflict(String),
    /// 429, with what to wait for.
    TooManyRequests(String),
    /// 503, with what is missing.
    Unavailable(String),
    /// 500; the detail was logged.
    Internal,
    /// Any of the above rendered with the visitor's layout (navigation, user).
    WithLayout(Box<PageError>, Box<Layout>),
}

impl PageError {
    /// The same error, rendered with the visitor's navigation.
    pub fn with_layout(self, page: Layout) -> PageError {
        match self {
            PageError::WithLayout(inner, _) => PageError::WithLayout(inner, Box::new(page)),
            other => PageError::WithLayout(Box::new(other), Box::new(page)),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::Forbidden(_) => StatusCode::FORBIDDEN,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Conflict(_) => StatusCode::CONFLICT,
            PageError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            PageError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            PageError::WithLayout(inner, _) => inner.status(),
        }
    }

    fn title_and_message(&self) -> (&'static str, String) {
        match self {
            PageError::NotFound => ("Not found", "There is no page at this address.".to_owned()),
            PageError::Forbidden(reason) => ("Forbidden", reason.clone()),
            PageError::BadRequest(reason) => ("Bad request", reason.clone()),
            PageError::Conflict(reason) => ("Conflict", reason.clone()),
            PageError::TooManyRequests(reason) => ("Too many requests", reason.clone()),
            PageError::Unavailable(reason) => ("Unavailable", reason.clone()),
            PageError::Internal => (
                "Internal error",
                "Something went wrong on our side; it was logged. Please try again later."
                    .to_owned(),
            ),
            PageError::WithLayout(inner, _) => inner.title_and_message(),
        }
    }
}

impl From<store::Error> for PageError {
    fn from(err: store::Error) -> Self {
        match err {
            store::Error::NotFound { .. } => PageError::NotFound,
            store::Error::NameTaken { .. } | store::Error::Conflict(_) => {
                PageError::Conflict(err.to_string())
            }
            store::Error::Database(_) | store::Error::Migrate(_) => {
                tracing::error!(error = %error_chain(&err), "a dashboard page's store call failed");
                PageError::Internal
            }
            #[allow(unreachable_patterns)]
            _ => {
                tracing::error!(error = %error_chain(&err), "a dashboard page's store call failed");
                PageError::Internal
            }
        }
    }
}

/// An error with its causes: `a: b: c`.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    page: Layout,
    status: u16,
    title: &'static str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (title, message) = self.title_and_message();
        let page = match self {
            PageError::WithLayout(_, page) => *page,
            _ => Layout::default(),
        };
        let template = ErrorPage {
            page,
            status: status.as_u16(),
            title,
            message,
        };
        match template.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(err) => {
                tracing::error!(error = %err, "rendering the error page failed");
                (status, title).into_response()
            }
        }
    }
}
