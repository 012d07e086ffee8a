//! Browser sessions and the extractors every page handler starts with.
//!
//! The cookie `toolforge_session` holds 32 random bytes (base64url); the store keeps
//! only their SHA-256 with the user, the CSRF token, the flash messages and the expiry.
//! Visitors get an anonymous session the first time a page needs a CSRF token (the
//! log-in and sign-up forms, through [`Session::ensure_csrf`]), so even those forms
//! are protected; reading other pages anonymously stores nothing. Logging in replaces
//! the session with a new id (no fixation); logging out deletes it from the store.
//!
//! Cookie flags: `HttpOnly` (scripts never see it), `SameSite=Lax` (other sites' POSTs
//! come without it, on top of the CSRF token), `Path=/`, and `Secure` when the
//! dashboard's public URL is `https://`. On the default plain-HTTP `127.0.0.1` address a
//! `Secure` cookie would never be sent back, so nobody could log in; the flag follows
//! `--dashboard-url` instead of being forced.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use crate::DashboardState;
use crate::page::{Flash, FlashLevel, Layout, PageError, SessionUser, parse_flashes, redirect};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "toolforge_session";
/// How long an anonymous session (a CSRF token for the log-in form) lasts.
const ANONYMOUS_LIFETIME: time::Duration = time::Duration::hours(12);

/// The request's session: loaded by [`load`], created or replaced on demand; cheap
/// to clone.
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

struct SessionInner {
    state: DashboardState,
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    /// SHA-256 (hex) of the id, and the stored record.
    current: Option<(String, store::SessionRecord)>,
    /// A `Set-Cookie` value to send with the response.
    set_cookie: Option<String>,
}

impl Session {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.inner
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The logged-in user's name, if any.
    pub fn user_name(&self) -> Option<String> {
        self.lock()
            .current
            .as_ref()
            .and_then(|(_, record)| record.user_name.clone())
    }

    /// The session's CSRF token, if it has a session.
    pub fn csrf_token(&self) -> Option<String> {
        self.lock()
            .current
            .as_ref()
            .map(|(_, record)| record.csrf_token.clone())
    }

    fn id_hash(&self) -> Option<String> {
        self.lock().current.as_ref().map(|(hash, _)| hash.clone())
    }

    /// Makes sure there is a session (an anonymous one when nobody is logged in);
    /// returns its CSRF token.
    pub async fn ensure(&self) -> Result<String, PageError> {
        if let Some(token) = self.csrf_token() {
            return Ok(token);
        }
        self.start(None, ANONYMOUS_LIFETIME).await
    }

    /// Makes sure the page's forms carry a token: anonymous pages with a form (log-in,
    /// sign-up) call this before rendering.
    pub async fn ensure_csrf(&self, page: &mut Layout) -> Result<(), PageError> {
        if page.csrf_token.is_empty() {
            page.csrf_token = self.ensure().await?;
        }
        Ok(())
    }

    /// Logs `user` in: the old session (anonymous or not) is deleted and a new id
    /// issued, so an id planted before the log-in is worth nothing after it.
    pub async fn log_in(&self, user: &str) -> Result<(), PageError> {
        if let Some(hash) = self.id_hash() {
            self.inner.state.store.delete_session(&hash).await?;
        }
        let lifetime = self.inner.state.config.session_lifetime;
        self.start(Some(user), lifetime).await?;
        Ok(())
    }

    /// Logs out: the session is deleted from the store and the cookie cleared.
    pub async fn log_out(&self) -> Result<(), PageError> {
        if let Some(hash) = self.id_hash() {
            self.inner.state.store.delete_session(&hash).await?;
        }
        let mut slot = self.lock();
        slot.current = None;
        slot.set_cookie = Some(cookie_value(&self.inner.state, "", 0));
        Ok(())
    }

    /// Deletes the user's other sessions (after a password change).
    pub async fn end_other_sessions(&self, user: &str) -> Result<u64, PageError> {
        let keep = self.id_hash();
        Ok(self
            .inner
            .state
            .store
            .delete_user_sessions(user, keep.as_deref())
            .await?)
    }

    /// Shows `text` on the next page.
    pub async fn flash(&self, level: FlashLevel, text: &str) {
        let res = async {
            self.ensure().await?;
            let hash = self.id_hash().ok_or(PageError::Internal)?;
            self.inner
                .state
                .store
                .push_flash(&hash, level.as_str(), text)
                .await?;
            Ok::<(), PageError>(())
        }
        .await;
        if res.is_err() {
            tracing::warn!("could not store a flash message");
        }
    }

    async fn take_flashes(&self) -> Result<Vec<Flash>, PageError> {
        let Some(hash) = self.id_hash() else {
            return Ok(Vec::new());
        };
        let has_flash = self
            .lock()
            .current
            .as_ref()
            .is_some_and(|(_, record)| !record.flash.is_empty());
        if !has_flash {
            return Ok(Vec::new());
        }
        let stored = self.inner.state.store.take_flash(&hash).await?;
        Ok(parse_flashes(&stored))
    }

    async fn start(
        &self,
        user: Option<&str>,
        lifetime: time::Duration,
    ) -> Result<String, PageError> {
        let id: [u8; 32] = rand::random();
        let id = URL_SAFE_NO_PAD.encode(id);
        let hash = sha256_hex(id.as_bytes());
        let csrf_token = hex(&rand::random::<[u8; 32]>());
        let now = OffsetDateTime::now_utc();
        let expires_at = now + lifetime;
        let store = &self.inner.state.store;
        store
            .create_session(&hash, user, &csrf_token, now, expires_at)
            .await?;
        // Now and then, drop what expired (one in 64 new sessions).
        if rand::random::<u8>() < 4 {
            let _ = store.purge_expired_sessions(now).await;
        }
        let max_age = lifetime.whole_seconds();
        let mut slot = self.lock();
        slot.current = Some((
            hash,
            store::SessionRecord {
                user_name: user.map(str::to_owned),
                csrf_token: csrf_token.clone(),
                flash: String::new(),
                expires_at,
            },
        ));
        slot.set_cookie = Some(cookie_value(&self.inner.state, &id, max_age));
        Ok(csrf_token)
    }
}

fn cookie_value(state: &DashboardState, id: &str, max_age: i64) -> String {
    let secure = if state.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    format!("{COOKIE_NAME}={id}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

/// Middleware: loads the session named by the cookie (if it is known and unexpired)
/// into the request, and sends the cookie a handler set and the security headers.
pub async fn load(
    State(state): State<DashboardState>,
    mut request: Request,
    next: Next,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let mut current = None;
    if let Some(id) = cookie(request.headers(), COOKIE_NAME) {
        let hash = sha256_hex(id.as_bytes());
        match state.store.get_session(&hash, now).await {
            Ok(Some(record)) => current = Some((hash, record)),
            Ok(None) => {}
            Err(err) => {
                tracing::error!(error = %crate::page::error_chain(&err), "loading a dashboard session failed");
                return PageError::Internal.into_response();
            }
        }
    }
    let session = Session {
        inner: Arc::new(SessionInner {
            state,
            slot: Mutex::new(Slot {
                current,
                set_cookie: None,
            }),
        }),
    };
    request.extensions_mut().insert(session.clone());
    let mut response = next.run(request).await;
    let set_cookie = session.lock().set_cookie.take();
    if let Some(value) = set_cookie
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    // Pages carry per-session tokens: never cache them anywhere.
    let headers = response.headers_mut();
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    // Defence in depth behind escaping and CSRF tokens: no inline or foreign scripts,
    // no framing (clickjacking), forms post only here, and confirmation links (which
    // carry a token) never leak in a Referer.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The dashboard's Content-Security-Policy: its own scripts, styles and images only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The client's address, as the listener saw it ("unknown" without one, e.g. in
/// router tests).
pub fn client_addr(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |info| info.0.ip().to_string())
}

/// SHA-256 of `bytes`, lowercase hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Any visitor; `user` is `None` when nobody is logged in.
pub struct OptionalUser {
    /// The logged-in user.
    pub user: Option<SessionUser>,
    /// The layout's data (navigation, CSRF token, flash messages).
    pub page: Layout,
    /// The session, for flash messages, log-in and log-out.
    pub session: Session,
    /// The client's address ([`client_addr`]).
    pub client: String,
}

/// A logged-in user; anonymous visitors are redirected to `/login?next=<this page>`.
pub struct CurrentUser {
    /// The logged-in user.
    pub user: SessionUser,
    /// The layout's data.
    pub page: Layout,
    /// The session.
    pub session: Session,
}

/// A logged-in admin; other logged-in users get the 403 page, anonymous visitors are
/// sent to log in.
pub struct AdminUser {
    /// The admin.
    pub user: SessionUser,
    /// The layout's data.
    pub page: Layout,
    /// The session.
    pub session: Session,
}

impl FromRequestParts<DashboardState> for OptionalUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DashboardState,
    ) -> Result<Self, Self::Rejection> {
        let session = parts.extensions.get::<Session>().cloned().ok_or_else(|| {
            tracing::error!("a dashboard route runs without the session layer");
            PageError::Internal.into_response()
        })?;
        let user = match session.user_name() {
            Some(name) => session_user(state, &name)
                .await
                .map_err(IntoResponse::into_response)?,
            None => None,
        };
        if user.is_none() && session.user_name().is_some() {
            // The account is gone or locked: the session ends here.
            session
                .log_out()
                .await
                .map_err(IntoResponse::into_response)?;
        }
        let reading = parts.method == Method::GET || parts.method == Method::HEAD;
        // Logged-in pages always carry a token (the layout's log-out form). Anonymous
        // visitors get a session only from pages with a form ([`Session::ensure_csrf`]),
        // so crawlers reading tool pages do not fill the session table.
        let csrf_token = if user.is_some() {
            session
                .ensure()
                .await
                .map_err(IntoResponse::into_response)?
        } else {
            session.csrf_token().unwrap_or_default()
        };
        let flashes = if reading {
            session
                .take_flashes()
                .await
                .map_err(IntoResponse::into_response)?
        } else {
            Vec::new()
        };
        Ok(OptionalUser {
            page: Layout {
                user: user.clone(),
                csrf_token,
                flashes,
            },
            user,
            session,
            client: client_addr(parts),
        })
    }
}

impl FromRequestParts<DashboardState> for CurrentUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DashboardState,
    ) -> Result<Self, Self::Rejection> {
        let OptionalUser {
            user,
            page,
            session,
            ..
        } = OptionalUser::from_request_parts(parts, state).await?;
        match user {
            Some(user) => Ok(CurrentUser {
                user,
                page,
                session,
            }),
            None => Err(login_redirect(parts)),
        }
    }
}

impl FromRequestParts<DashboardState> for AdminUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &DashboardState,
    ) -> Result<Self, Self::Rejection> {
        let CurrentUser {
            user,
            page,
            session,
        } = CurrentUser::from_request_parts(parts, state).await?;
        if !user.is_admin {
            return Err(
                PageError::Forbidden("This page is for Toolforge admins only.".to_owned())
                    .with_layout(page)
                    .into_response(),
            );
        }
        Ok(AdminUser {
            user,
            page,
            session,
        })
    }
}

fn login_redirect(parts: &Parts) -> Response {
    let next = parts.uri.path_and_query().map_or("/", |path| path.as_str());
    let next: String = url_encode(if parts.method == Method::GET {
        next
    } else {
        "/"
    });
    redirect(&format!("/login?next={next}"))
}

/// Percent-encodes everything but unreserved characters.
pub(crate) fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The user behind a session, or `None` when the account is gone or locked.
async fn session_user(
    state: &DashboardState,
    name: &str,
) -> Result<Option<SessionUser>, PageError> {
    let Some(account) = state.store.get_user(name).await? else {
        return Ok(None);
    };
    if account.locked_at.is_some() {
        return Ok(None);
    }
    let standing = state.store.user_standing(name).await?;
    Ok(Some(SessionUser {
        name: account.name,
        email: account.email,
        is_admin: account.is_admin,
        email_confirmed: standing.email_confirmed,
        member: standing.member || account.is_admin,
    }))
}
