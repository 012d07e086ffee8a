//! The plain-HTTP listeners: the dashboard's address (its router is `crates/dashboard`)
//! and the front proxy's.
//!
//! Until the proxy issue lands, the proxy answers every host as fourohfour does: the
//! tool's maintainers when it exists (it has no webservice yet), near names when it
//! does not.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use api_server::AppState;

/// Serves `app` on `listener` until `cancel` fires, letting requests in flight finish.
/// Handlers see the client's address as `ConnectInfo<SocketAddr>` (the dashboard's rate
/// limits key on it).
pub async fn serve(listener: TcpListener, app: Router, cancel: CancellationToken) {
    let res = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await;
    if let Err(err) = res {
        tracing::error!(error = %err, "an HTTP listener failed");
    }
}

/// The front proxy's router.
pub fn proxy_router(state: AppState, public_domain: String) -> Router {
    Router::new()
        .fallback(get(fourohfour).post(fourohfour))
        .with_state((state, public_domain))
}

async fn fourohfour(
    State((state, domain)): State<(AppState, String)>,
    headers: HeaderMap,
) -> Response {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    let suffix = format!(".{domain}");
    let Some(tool) = host
        .to_ascii_lowercase()
        .strip_suffix(&suffix)
        .map(str::to_owned)
    else {
        return (
            StatusCode::NOT_FOUND,
            Html(page(
                "Not found",
                &format!(
                    "<p>This address serves tools at <code>&lt;tool&gt;.{}</code>.</p>",
                    escape(&domain)
                ),
            )),
        )
            .into_response();
    };
    let store = state.accounts.store();
    match store.get_tool(&tool).await {
        Ok(Some(_)) => {
            let maintainers = store.maintainers(&tool).await.unwrap_or_default();
            let mut list = String::new();
            for (name, kind) in maintainers {
                list.push_str(&format!("<li>{} ({})</li>", escape(&name), kind));
            }
            let body = format!(
                "<h1>No webservice</h1><p>The tool <strong>{}</strong> is not running a webservice.</p>\
                 <p>Its maintainers can start one. Maintainers:</p><ul>{list}</ul>",
                escape(&tool)
            );
            (StatusCode::NOT_FOUND, Html(page("No webservice", &body))).into_response()
        }
        Ok(None) => {
            let body = format!(
                "<h1>No such tool</h1><p>There is no tool named <strong>{}</strong>.</p>",
                escape(&tool)
            );
            (StatusCode::NOT_FOUND, Html(page("No such tool", &body))).into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "looking a tool up for the proxy failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(page("Error", "<p>Internal error.</p>")),
            )
                .into_response()
        }
    }
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}\n</body></html>\n",
        escape(title)
    )
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
