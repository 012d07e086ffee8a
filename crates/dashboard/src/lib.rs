//! The toolsadmin dashboard: server-rendered HTML on `--web-addr`.
//!
//! Templates are askama files in `crates/dashboard/templates/`, compiled into the
//! binary; the stylesheet and a little progressive-enhancement JavaScript are served
//! from the binary too (`/static/…`). There is no JavaScript build step.
//!
//! # URLs (stable: the browser tests drive them)
//!
//! | URL | what |
//! |---|---|
//! | `/` | home |
//! | `/signup`, `/register` | sign-up (form `#signup-form`: `username`, `email`, `password`, `password2`) |
//! | `/register/confirm/{token}` | e-mail confirmation link (single use, expires) |
//! | `/register/api/shellname/{name}` | availability of a user name (JSON `{"name","available","error"}`) |
//! | `/login`, `/logout` | log-in (`#login-form`: `username`, `password`, `next`), log-out (POST, `#logout-form`) |
//! | `/profile` | profile page (`/profile/settings/` is the same) |
//! | `/profile/settings/change_password/` | `#password-form`: `old_password`, `new_password`, `new_password2` |
//! | `/profile/settings/ssh-keys/`, `…/add`, `…/{id}/delete` | SSH keys (`#ssh-key-form`: `public_key`) |
//! | `/profile/settings/resend-confirmation` | POST: send the confirmation mail again |
//! | `/tools/membership/` | your membership status, or the admin queue for admins |
//! | `/tools/membership/apply` | `#membership-form`: `reason` |
//! | `/tools/membership/status/{id}` | one request: comments (`#comment-form`: `comment`) and, for admins, `#decision-form` (`action`: `approve`, `decline`, `feedback`) |
//! | `/tools/membership/status/{id}/suppress`, `…/unsuppress` | admin: hide or show again |
//! | `/tools/membership/queue?status=all\|open\|pending\|feedback\|approved\|declined` | admin queue |
//!
//! Engineer H4b's modules add `tools` (`/tools/…`), `toolinfo` (`/tools/toolinfo/…`)
//! and `admin` (`/admin/…`). Every admin URL of the dashboard is listed in
//! [`ADMIN_URLS`], which the 403 tests walk.
//!
//! # How to add a page
//!
//! 1. A handler takes one of the extractors of [`session`] first:
//!    [`session::OptionalUser`] (anyone), [`session::CurrentUser`] (logged in; anonymous
//!    visitors are sent to `/login?next=…`) or [`session::AdminUser`] (admins; a
//!    logged-in non-admin gets the 403 page). Each carries `page:` [`page::Layout`], the
//!    data the base template needs, and `session:` [`session::Session`] for flash
//!    messages.
//! 2. The template `{% extends "base.html" %}`, fills `{% block title %}` and
//!    `{% block content %}`, and its struct has a field `page: Layout`.
//!    Never use `|safe` on anything a user typed: askama escapes `{{ … }}` for HTML.
//! 3. Every `<form method="post">` contains `{{ page.csrf_field() }}`. POSTs are
//!    checked by the CSRF middleware before any handler runs (a POST without the
//!    session's token gets the 403 page), so handlers do nothing for it. Logged-in
//!    pages always have a token; a page with a form for anonymous visitors calls
//!    `session.ensure_csrf(&mut page).await?` first (log-in and sign-up do). A `fetch` from
//!    JavaScript sends the token in the `X-CSRF-Token` header instead
//!    (`page.csrf_token`, also in `<meta name="csrf-token">`).
//! 4. After a successful POST: `session.flash(FlashLevel::Success, "…").await;` and
//!    answer [`page::redirect`] (303) to a GET page, which shows the message.
//! 5. Errors: return `Result<Response, PageError>`; [`page::PageError`] renders the
//!    404/403/409/429/500 pages in the layout, and `?` on a `store::Error` maps it.
//! 6. Render with [`page::render`]. Handlers are named `<verb>_<noun>`; each module has
//!    `pub fn router() -> Router<DashboardState>`, merged in [`router`].
//!
//! Architecture Invariant: every state-changing request is a POST and passes the CSRF
//! check; every user-supplied string reaches HTML through askama's escaping; sessions
//! are stored as the SHA-256 of their id only.

pub mod accounts;
pub mod admin;
pub mod membership;
pub mod page;
pub mod session;
pub mod toolinfo;
pub mod tools;

mod assets;
mod csrf;
mod ratelimit;
mod sshkey;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::get;

use crate::page::{Layout, PageError, render};
use crate::session::OptionalUser;

/// Every admin URL the dashboard serves (for `GET`; `POST` for actions), with sample
/// path parameters; a non-admin gets 403 on each. H4b appends theirs here.
pub const ADMIN_URLS: &[(&str, &str)] = &[
    ("GET", "/tools/membership/queue"),
    ("GET", "/tools/membership/queue?status=pending"),
    ("POST", "/tools/membership/status/1/decide"),
    ("POST", "/tools/membership/status/1/suppress"),
    ("POST", "/tools/membership/status/1/unsuppress"),
    ("POST", "/admin/users/root/confirm-email"),
    ("GET", "/admin"),
    ("GET", "/admin/tools/sometool"),
    ("GET", "/admin/tools/sometool/disable"),
    ("POST", "/admin/tools/sometool/disable"),
    ("POST", "/admin/tools/sometool/enable"),
    ("GET", "/admin/tools/sometool/delete"),
    ("POST", "/admin/tools/sometool/delete"),
    ("POST", "/admin/tools/sometool/quota"),
    ("POST", "/admin/tools/sometool/quota/reset"),
    ("GET", "/admin/bans"),
    ("POST", "/admin/bans/add"),
    ("POST", "/admin/bans/remove"),
    ("GET", "/admin/users"),
    ("POST", "/admin/users/someone/grant-admin"),
    ("POST", "/admin/users/someone/revoke-admin"),
    ("POST", "/admin/users/someone/lock"),
    ("POST", "/admin/users/someone/unlock"),
    ("GET", "/admin/audit"),
];

/// How the dashboard is reached and links to the rest of the platform.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// The dashboard's public URL without a trailing slash, e.g. `http://127.0.0.1:8000`;
    /// confirmation links point here, and `https://` makes cookies `Secure`.
    pub public_url: String,
    /// The domain tools are served under (`<tool>.<domain>`).
    pub proxy_domain: String,
    /// The front proxy's public port (webservice URLs; 80/443 are left out).
    pub proxy_port: u16,
    /// How long a log-in lasts.
    pub session_lifetime: time::Duration,
    /// How long an e-mail confirmation link works.
    pub confirmation_lifetime: time::Duration,
}

impl DashboardConfig {
    /// Defaults for a dashboard at `public_url`.
    pub fn new(public_url: String, proxy_domain: String, proxy_port: u16) -> Self {
        Self {
            public_url: public_url.trim_end_matches('/').to_owned(),
            proxy_domain,
            proxy_port,
            session_lifetime: time::Duration::days(14),
            confirmation_lifetime: time::Duration::days(2),
        }
    }

    /// Whether cookies get the `Secure` flag.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// The URL of a tool's webservice.
    pub fn webservice_url(&self, tool: &str) -> String {
        match self.proxy_port {
            80 => format!("http://{tool}.{}/", self.proxy_domain),
            443 => format!("https://{tool}.{}/", self.proxy_domain),
            port => format!("http://{tool}.{}:{port}/", self.proxy_domain),
        }
    }
}

/// The services behind the tool pages: jobs, envvars and logs.
#[derive(Clone)]
pub struct ToolServices {
    /// The jobs engine (jobs, their status, webservices).
    pub engine: jobs_engine::JobsEngine,
    /// The envvars service (the pages show names, never values).
    pub secrets: Arc<secrets::Secrets>,
    /// Captured job output.
    pub logs: Arc<jobs_engine::logs::Logs>,
}

/// What every dashboard handler can reach; cheap to clone.
#[derive(Clone)]
pub struct DashboardState {
    /// Users, tools, maintainers, credentials.
    pub accounts: Arc<::accounts::Accounts>,
    /// The store (also `accounts.store()`).
    pub store: store::Store,
    /// The platform's mailer; `None` when no `--smtp-url` was given.
    pub mailer: Option<Arc<mail::Mailer>>,
    /// Jobs, envvars and logs; `None` only in tests that run without a runtime, where
    /// the pages that need them answer 503 ([`DashboardState::tool_services`]).
    pub tool_services: Option<ToolServices>,
    /// The admin procedures (disable, enable, delete, bans, user flags, the audit log);
    /// `None` only in tests without them, where the admin actions answer 503.
    pub admin_ops: Option<Arc<admin_ops::AdminOps>>,
    /// URLs and lifetimes.
    pub config: Arc<DashboardConfig>,
    pub(crate) limits: Arc<ratelimit::RateLimits>,
    pub(crate) toolinfo_cache: Arc<toolinfo::ToolinfoCache>,
}

impl DashboardState {
    /// State over `accounts`, without mail or tool services (add them with the
    /// `with_*` methods).
    pub fn new(accounts: Arc<::accounts::Accounts>, config: DashboardConfig) -> Self {
        Self {
            store: accounts.store().clone(),
            accounts,
            mailer: None,
            tool_services: None,
            admin_ops: None,
            config: Arc::new(config),
            limits: Arc::default(),
            toolinfo_cache: Arc::default(),
        }
    }

    /// The same state, sending mail through `mailer`.
    pub fn with_mailer(mut self, mailer: Arc<mail::Mailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// The same state, with the jobs, envvars and logs services.
    pub fn with_tool_services(mut self, services: ToolServices) -> Self {
        self.tool_services = Some(services);
        self
    }

    /// The same state, with the admin procedures.
    pub fn with_admin_ops(mut self, ops: Arc<admin_ops::AdminOps>) -> Self {
        self.admin_ops = Some(ops);
        self
    }

    /// The admin procedures, or the 503 page when this dashboard runs without them.
    pub fn admin_ops(&self) -> Result<&Arc<admin_ops::AdminOps>, PageError> {
        self.admin_ops.as_ref().ok_or_else(|| {
            PageError::Unavailable(
                "the admin procedures are not running in this dashboard".to_owned(),
            )
        })
    }

    /// The tool services, or the 503 page when this dashboard runs without them.
    pub fn tool_services(&self) -> Result<&ToolServices, PageError> {
        self.tool_services.as_ref().ok_or_else(|| {
            PageError::Unavailable("the jobs service is not running in this dashboard".to_owned())
        })
    }

    /// Whether `user` may create tools: an admin, or a member of Toolforge (an approved
    /// membership request, or an account an admin made).
    pub async fn is_member(&self, user: &str) -> Result<bool, store::Error> {
        let Some(account) = self.store.get_user(user).await? else {
            return Ok(false);
        };
        Ok(account.is_admin || self.store.user_standing(user).await?.member)
    }
}

/// Records an admin action taken on the dashboard in the audit log (engineer H3's
/// table); the actor is the admin's user name.
pub async fn audit(
    state: &DashboardState,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), PageError> {
    state
        .store
        .record_audit(&store::NewAudit {
            actor,
            action,
            target,
            detail,
            at: time::OffsetDateTime::now_utc(),
        })
        .await?;
    Ok(())
}

/// The dashboard's router: every area's routes behind the session and CSRF layers.
pub fn router(state: DashboardState) -> Router {
    Router::new()
        .route("/", get(show_home))
        .route("/healthz", get(|| async { "ok" }))
        .merge(assets::router())
        .merge(accounts::router())
        .merge(membership::router())
        .merge(tools::router())
        .merge(toolinfo::router())
        .merge(admin::router())
        .fallback(show_not_found)
        // Layers run outside in: the session is loaded first, then POSTs are checked.
        .layer(from_fn_with_state(state.clone(), csrf::verify))
        .layer(from_fn_with_state(state.clone(), session::load))
        .with_state(state)
}

#[derive(askama::Template)]
#[template(path = "home.html")]
struct HomePage {
    page: Layout,
}

async fn show_home(OptionalUser { page, .. }: OptionalUser) -> Result<Response, PageError> {
    render(&HomePage { page })
}

async fn show_not_found(OptionalUser { page, .. }: OptionalUser) -> PageError {
    PageError::NotFound.with_layout(page)
}

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
