//! Router-test fixtures of the dashboard's crate tests: a dashboard on a real store and
//! CA in a temporary directory, and a browser driving its router with `oneshot` (cookie
//! jar, CSRF token of the last form, client address).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::{DashboardConfig, DashboardState, router};

/// Every fixture account's password.
pub(crate) const PASSWORD: &str = "correct horse battery";

/// A dashboard's state on a temporary directory (removed when dropped).
pub(crate) struct Fixture {
    _dir: tempfile::TempDir,
    pub(crate) state: DashboardState,
}

/// A dashboard on a fresh store and CA with `users` (name, admin?), all with
/// [`PASSWORD`] (accounts an admin made count as members), serving tools as
/// `<tool>.<public_domain>`.
pub(crate) async fn fixture_with(users: &[(&str, bool)], public_domain: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(&dir.path().join("db.sqlite"))
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let ca = Arc::new(pki::CertificateAuthority::create(now, time::Duration::days(30)).unwrap());
    let accounts = Arc::new(::accounts::Accounts::new(
        store,
        ca,
        ::accounts::AccountsConfig {
            data_dir: dir.path().to_path_buf(),
            homes_dir: dir.path().join("project"),
            public_api_url: "https://127.0.0.1:30003".to_owned(),
            cert_validity: time::Duration::days(10),
            renew_before: time::Duration::days(1),
            set_ownership: false,
        },
        Arc::new(::accounts::SystemClock),
    ));
    for (name, admin) in users {
        accounts
            .create_user(name, &format!("{name}@example.org"), PASSWORD, *admin)
            .await
            .unwrap();
    }
    let state = DashboardState::new(
        accounts,
        DashboardConfig::new(
            "http://127.0.0.1:8000".to_owned(),
            public_domain.to_owned(),
            8080,
        ),
    );
    Fixture { _dir: dir, state }
}

/// A browser: one cookie jar, the last page's CSRF token, a client address.
pub(crate) struct Browser {
    app: axum::Router,
    pub(crate) cookie: Option<String>,
    pub(crate) csrf: Option<String>,
    addr: SocketAddr,
}

/// What one request answered.
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) location: Option<String>,
    pub(crate) content_type: String,
    pub(crate) body: String,
}

impl Browser {
    /// A browser on the dashboard of `fixture`, coming from the address `addr`.
    pub(crate) fn new(fixture: &Fixture, addr: &str) -> Browser {
        Browser {
            app: router(fixture.state.clone()),
            cookie: None,
            csrf: None,
            addr: format!("{addr}:40000").parse().unwrap(),
        }
    }

    pub(crate) async fn send(&mut self, mut request: Request<Body>) -> Page {
        request.extensions_mut().insert(ConnectInfo(self.addr));
        if let Some(cookie) = &self.cookie {
            request
                .headers_mut()
                .insert(header::COOKIE, cookie.parse().unwrap());
        }
        let response = self.app.clone().oneshot(request).await.unwrap();
        if let Some(set) = response.headers().get(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            assert!(
                set.contains("HttpOnly") && set.contains("SameSite=Lax"),
                "{set}"
            );
            let pair = set.split(';').next().unwrap().to_owned();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        let status = response.status();
        let header_text = |name| {
            response
                .headers()
                .get(name)
                .map(|value: &header::HeaderValue| value.to_str().unwrap().to_owned())
        };
        let location = header_text(header::LOCATION);
        let content_type = header_text(header::CONTENT_TYPE).unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(bytes.to_vec()).unwrap();
        if let Some(token) = csrf_token(&body) {
            self.csrf = Some(token);
        }
        Page {
            status,
            location,
            content_type,
            body,
        }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    pub(crate) async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self
            .csrf
            .clone()
            .expect("a page with a form was loaded first");
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    pub(crate) async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = fields
            .iter()
            .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }
}

/// Form encoding of one key or value.
pub(crate) fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The CSRF token of the first form of `body`, if it has one.
pub(crate) fn csrf_token(body: &str) -> Option<String> {
    let marker = r#"name="csrf_token" value=""#;
    let start = body.find(marker)? + marker.len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].to_owned())
}

/// Asserts `page` is a 303 to `to`.
#[track_caller]
pub(crate) fn assert_redirect(page: &Page, to: &str) {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some(to));
}
