//! The CSRF check every POST passes before its handler runs.
//!
//! A state-changing request (any method but GET, HEAD and OPTIONS) must carry the
//! session's token, as the form field `csrf_token` (urlencoded bodies; every form
//! template writes it with `{{ page.csrf_field() }}`) or the `X-CSRF-Token` header
//! (scripts). Without a session, or with another token, the answer is the 403 page and
//! nothing runs. Tokens are compared in constant time.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::DashboardState;
use crate::page::PageError;
use crate::session::Session;

/// The largest form body the dashboard reads.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// The form field holding the token.
pub const FIELD: &str = "csrf_token";
/// The header holding the token for scripts.
pub const HEADER: &str = "x-csrf-token";

/// Middleware: refuses a state-changing request without the session's CSRF token.
pub async fn verify(
    State(_state): State<DashboardState>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let expected = request
        .extensions()
        .get::<Session>()
        .and_then(Session::csrf_token);
    let header_token = request
        .headers()
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return PageError::BadRequest(format!(
                "The form is too large: at most {} KiB are accepted.",
                MAX_FORM_BYTES / 1024
            ))
            .into_response();
        }
    };
    let sent = header_token.or_else(|| is_form.then(|| form_token(&bytes)).flatten());
    let valid = match (&expected, &sent) {
        (Some(expected), Some(sent)) => constant_time_eq(expected.as_bytes(), sent.as_bytes()),
        _ => false,
    };
    if !valid {
        tracing::info!(path = %parts.uri.path(), has_session = expected.is_some(), has_token = sent.is_some(), "refused a POST without a valid CSRF token");
        return PageError::Forbidden(
            "The form was refused: its security token (CSRF) is missing or does not belong to \
             your session. This happens when a form is sent from another site, or after you \
             logged in or out in another tab. Go back, reload the page and send the form again."
                .to_owned(),
        )
        .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn form_token(bytes: &Bytes) -> Option<String> {
    bytes
        .split(|byte| *byte == b'&')
        .filter_map(|pair| {
            let mut halves = pair.splitn(2, |byte| *byte == b'=');
            Some((halves.next()?, halves.next().unwrap_or_default()))
        })
        .find(|(key, _)| decode(key) == FIELD)
        .map(|(_, value)| decode(value))
}

/// Decodes one `application/x-www-form-urlencoded` component.
fn decode(component: &[u8]) -> String {
    let plus_as_space: Vec<u8> = component
        .iter()
        .map(|byte| if *byte == b'+' { b' ' } else { *byte })
        .collect();
    percent_encoding::percent_decode(&plus_as_space)
        .decode_utf8_lossy()
        .into_owned()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
