//! Admin pages (engineer H4b): tools (disable, enable, delete, quotas), banned
//! addresses, users, the audit log. Every route takes [`crate::session::AdminUser`] and
//! is listed in [`crate::ADMIN_URLS`].
//!
//! Every action goes through [`admin_ops::AdminOps`], the same procedures as
//! `toolforged admin …`, with the admin's user name as the actor, so each leaves the
//! same audit record. Quota overrides are validated by
//! [`jobs_engine::quota::parse_assignments`], as `toolforged admin quota set` does, and
//! recorded as `quota set` / `quota reset`.
//!
//! | URL | what |
//! |---|---|
//! | `/admin` | the admin home: tools by name with their status (`#admin-tool-search`: `q`) |
//! | `/admin/tools/{tool}` | status, disablement schedule, quota table (`#quota-form`: `assignments`, `KEY=VALUE` separated by spaces or lines; `#quota-reset-<key>`) |
//! | `/admin/tools/{tool}/disable` | confirm page; POST `#tool-disable-form` (`reason`) |
//! | `/admin/tools/{tool}/enable` | POST `#tool-enable-form` |
//! | `/admin/tools/{tool}/delete` | confirm page; POST `#tool-delete-form` |
//! | `/admin/bans` | list; POST `/admin/bans/add` (`#ban-form`: `network`, `reason`), `/admin/bans/remove` (`#unban-<n>`: `network`) |
//! | `/admin/users` | list; POST `/admin/users/{user}/grant-admin`, `…/revoke-admin`, `…/lock` (`reason`), `…/unlock` |
//! | `/admin/audit?actor=&target=&since=` | the audit log, newest first (`since`: `YYYY-MM-DD`) |

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use jobs_engine::quota::{QuotaKey, parse_assignments};
use serde::Deserialize;
use store::{AuditEntry, AuditFilter, ToolStatus};

use crate::DashboardState;
use crate::page::{FlashLevel, Layout, PageError, redirect, render, render_with_status};
use crate::session::{AdminUser, Session};

/// Tools on one page of the admin list.
const PAGE_SIZE: u64 = 100;
/// Audit records on one page.
const AUDIT_LIMIT: u32 = 200;

/// The admin pages' routes.
pub fn router() -> Router<DashboardState> {
    Router::new()
        .route("/admin", get(show_admin_home))
        .route("/admin/", get(show_admin_home))
        .route("/admin/tools/{tool}", get(show_admin_tool))
        .route(
            "/admin/tools/{tool}/disable",
            get(show_disable_tool).post(disable_tool),
        )
        .route("/admin/tools/{tool}/enable", post(enable_tool))
        .route(
            "/admin/tools/{tool}/delete",
            get(show_delete_tool).post(delete_tool),
        )
        .route("/admin/tools/{tool}/quota", post(set_quota))
        .route("/admin/tools/{tool}/quota/reset", post(reset_quota))
        .route("/admin/bans", get(list_bans))
        .route("/admin/bans/add", post(add_ban))
        .route("/admin/bans/remove", post(remove_ban))
        .route("/admin/users", get(list_users))
        .route("/admin/users/{user}/grant-admin", post(grant_admin))
        .route("/admin/users/{user}/revoke-admin", post(revoke_admin))
        .route("/admin/users/{user}/lock", post(lock_user))
        .route("/admin/users/{user}/unlock", post(unlock_user))
        .route("/admin/audit", get(show_audit))
}

/// An admin procedure's refusal as a flash message and a redirect back, or its failure
/// as the 500 page.
async fn after(
    res: admin_ops::Result<String>,
    session: &Session,
    page: &Layout,
    back: &str,
) -> Result<Response, PageError> {
    match res {
        Ok(message) => {
            session.flash(FlashLevel::Success, &message).await;
            Ok(redirect(back))
        }
        Err(err) if err.is_not_found() => Err(PageError::NotFound.with_layout(page.clone())),
        Err(err) if err.is_refusal() => {
            session.flash(FlashLevel::Error, &err.to_string()).await;
            Ok(redirect(back))
        }
        Err(err) => {
            tracing::error!(error = %admin_ops::error_chain(&err), "an admin action from the dashboard failed");
            Err(PageError::Internal.with_layout(page.clone()))
        }
    }
}

fn ops(state: &DashboardState, page: &Layout) -> Result<Arc<admin_ops::AdminOps>, PageError> {
    state
        .admin_ops()
        .cloned()
        .map_err(|err| err.with_layout(page.clone()))
}

// ---------------------------------------------------------------------------------------
// Home: the tools.

#[derive(Debug, Default, Deserialize)]
struct HomeQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<u64>,
}

#[derive(Template)]
#[template(path = "admin/home.html")]
struct AdminHomePage {
    page: Layout,
    query: String,
    tools: Vec<store::ToolSummary>,
    total: u64,
    page_number: u64,
    next_page: Option<u64>,
}

async fn show_admin_home(
    State(state): State<DashboardState>,
    AdminUser { page, .. }: AdminUser,
    Query(query): Query<HomeQuery>,
) -> Result<Response, PageError> {
    let page_number = query.page.unwrap_or(1).max(1);
    let found = state
        .store
        .search_tools(
            &query.q,
            (page_number - 1).saturating_mul(PAGE_SIZE),
            PAGE_SIZE,
        )
        .await
        .map_err(|err| PageError::from(err).with_layout(page.clone()))?;
    let next_page =
        (page_number.saturating_mul(PAGE_SIZE) < found.total).then_some(page_number + 1);
    render(&AdminHomePage {
        page,
        query: query.q.trim().to_owned(),
        tools: found.tools,
        total: found.total,
        page_number,
        next_page,
    })
}

// ---------------------------------------------------------------------------------------
// One tool: status and quota.

/// One row of the quota table.
struct QuotaRow {
    key: &'static str,
    default: String,
    override_value: Option<String>,
    effective: String,
}

#[derive(Template)]
#[template(path = "admin/tool.html")]
struct AdminToolPage {
    page: Layout,
    tool: store::Tool,
    disablement: Option<store::ToolDisablement>,
    quota: Vec<QuotaRow>,
    quota_error: Option<String>,
    assignments: String,
}

impl AdminToolPage {
    fn disabled(&self) -> bool {
        self.tool.status == ToolStatus::Disabled
    }
}

/// Every quota key with its default, override and effective value: the table of
/// `toolforged admin quota show`. An override that does not parse (edited by hand) is
/// shown but not effective, as the engine ignores it.
fn quota_rows(
    overrides: &std::collections::BTreeMap<String, String>,
    envvars_default: u32,
) -> Vec<QuotaRow> {
    let defaults = jobs_engine::ToolQuota::default();
    QuotaKey::ALL
        .into_iter()
        .map(|key| {
            let default = key.format_value(defaults.get(key).unwrap_or(u64::from(envvars_default)));
            let override_value = overrides.get(key.as_str()).cloned();
            let effective = override_value
                .as_deref()
                .and_then(|value| key.canonical_value(value).ok())
                .unwrap_or_else(|| default.clone());
            QuotaRow {
                key: key.as_str(),
                default,
                override_value,
                effective,
            }
        })
        .collect()
}

async fn admin_tool_page(
    state: &DashboardState,
    name: &str,
    page: Layout,
) -> Result<AdminToolPage, PageError> {
    let with_page = |err: store::Error| PageError::from(err).with_layout(page.clone());
    let Some(tool) = state.store.get_tool(name).await.map_err(with_page)? else {
        return Err(PageError::NotFound.with_layout(page));
    };
    let disablement = state
        .store
        .tool_disablement(name)
        .await
        .map_err(with_page)?;
    let overrides = state.store.quota_overrides(name).await.map_err(with_page)?;
    let envvars_default = state.tool_services.as_ref().map_or(
        secrets::SecretsConfig::default().quota_per_tool,
        |services| services.secrets.default_quota(),
    );
    Ok(AdminToolPage {
        page,
        tool,
        disablement,
        quota: quota_rows(&overrides, envvars_default),
        quota_error: None,
        assignments: String::new(),
    })
}

async fn show_admin_tool(
    State(state): State<DashboardState>,
    AdminUser { page, .. }: AdminUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    render(&admin_tool_page(&state, &name, page).await?)
}

#[derive(Debug, Default, Deserialize)]
struct QuotaForm {
    #[serde(default)]
    assignments: String,
}

async fn set_quota(
    State(state): State<DashboardState>,
    AdminUser {
        user,
        page,
        session,
    }: AdminUser,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<QuotaForm>,
) -> Result<Response, PageError> {
    let mut tool_page = admin_tool_page(&state, &name, page).await?;
    let ops = ops(&state, &tool_page.page)?;
    let mut pairs = Vec::new();
    let mut problems = Vec::new();
    for pair in form.assignments.split_whitespace() {
        match pair.split_once('=') {
            Some((key, value)) => pairs.push((key.trim().to_owned(), value.trim().to_owned())),
            None => problems.push(format!(
                "'{pair}' is not KEY=VALUE (for example pods=20, cpu=500m or memory=4Gi)"
            )),
        }
    }
    let parsed = if problems.is_empty() {
        parse_assignments(&pairs).map_err(|err| err.0)
    } else {
        Err(problems.join("; "))
    };
    let assignments = match parsed {
        Ok(assignments) => assignments,
        Err(message) => {
            tool_page.quota_error = Some(format!("Nothing was changed: {message}."));
            tool_page.assignments = form.assignments;
            return render_with_status(StatusCode::BAD_REQUEST, &tool_page);
        }
    };
    let values: Vec<(&str, &str)> = assignments
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    let page = tool_page.page;
    state
        .store
        .set_quota_overrides(&name, &values, state.accounts.now())
        .await
        .map_err(|err| PageError::from(err).with_layout(page.clone()))?;
    let detail = values
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(" ");
    let res = ops
        .record(&user.name, "quota set", &name, &detail)
        .await
        .map(|()| format!("Set {detail} for {name}"));
    after(res, &session, &page, &format!("/admin/tools/{name}")).await
}

#[derive(Debug, Default, Deserialize)]
struct KeyForm {
    #[serde(default)]
    key: String,
}

async fn reset_quota(
    State(state): State<DashboardState>,
    AdminUser {
        user,
        page,
        session,
    }: AdminUser,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<KeyForm>,
) -> Result<Response, PageError> {
    let ops = ops(&state, &page)?;
    let key = match QuotaKey::parse(form.key.trim()) {
        Ok(key) => key,
        Err(err) => return Err(PageError::BadRequest(err.0).with_layout(page)),
    };
    let removed = state
        .store
        .reset_quota_overrides(&name, &[key.as_str()])
        .await
        .map_err(|err| PageError::from(err).with_layout(page.clone()))?;
    let back = format!("/admin/tools/{name}");
    if removed.is_empty() {
        session
            .flash(
                FlashLevel::Warning,
                &format!("{name} had no override of {key}: nothing was changed."),
            )
            .await;
        return Ok(redirect(&back));
    }
    let res = ops
        .record(&user.name, "quota reset", &name, key.as_str())
        .await
        .map(|()| format!("Reset {key} of {name} to the default"));
    after(res, &session, &page, &back).await
}

// ---------------------------------------------------------------------------------------
// Disable, enable, delete.

#[derive(Template)]
#[template(path = "admin/confirm.html")]
struct ConfirmPage {
    page: Layout,
    tool: String,
    action: &'static str,
    explanation: String,
    with_reason: bool,
}

async fn show_disable_tool(
    State(state): State<DashboardState>,
    AdminUser { page, .. }: AdminUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let tool_page = admin_tool_page(&state, &name, page).await?;
    render(&ConfirmPage {
        page: tool_page.page,
        tool: name,
        action: "disable",
        explanation: format!(
            "All its jobs and its webservice stop at once, its credentials are refused, and its home is archived and the tool deleted {} days from now unless it is enabled again.",
            admin_ops::DELETE_AFTER.whole_days()
        ),
        with_reason: true,
    })
}

#[derive(Debug, Default, Deserialize)]
struct ReasonForm {
    #[serde(default)]
    reason: String,
}

async fn disable_tool(
    State(state): State<DashboardState>,
    AdminUser {
        user,
        page,
        session,
    }: AdminUser,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<ReasonForm>,
) -> Result<Response, PageError> {
    let ops = ops(&state, &page)?;
    let res = ops
        .disable_tool(&user.name, &name, &form.reason)
        .await
        .map(|disabled| {
            format!(
                "{name} is disabled; it will be archived and deleted on {}",
                disabled.delete_at.date()
            )
        });
    after(res, &session, &page, &format!("/admin/tools/{name}")).await
}

async fn enable_tool(
    State(state): State<DashboardState>,
    AdminUser {
        user,
        page,
        session,
    }: AdminUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let ops = ops(&state, &page)?;
    let res = ops
        .enable_tool(&user.name, &name)
        .await
        .map(|()| format!("{name} is enabled again"));
    after(res, &session, &page, &format!("/admin/tools/{name}")).await
}

async fn show_delete_tool(
    State(state): State<DashboardState>,
    AdminUser { page, .. }: AdminUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let tool_page = admin_tool_page(&state, &name, page).await?;
    render(&ConfirmPage {
        page: tool_page.page,
        tool: name,
        action: "delete",
        explanation: "Its jobs stop and are forgotten, its logs are removed, its credentials are revoked and its home is archived, now. This cannot be undone.".to_owned(),
        with_reason: false,
    })
}

async fn delete_tool(
    State(state): State<DashboardState>,
    AdminUser {
        user,
        page,
        session,
    }: AdminUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let ops = ops(&state, &page)?;
    let res = ops.delete_tool(&user.name, &name).await.map(|archive| {
        format!(
            "{name} is deleted; its home was archived to {}",
            archive.display()
        )
    });
    after(res, &session, &page, "/admin").await
}

// ---------------------------------------------------------------------------------------
// Bans.

#[derive(Template)]
#[template(path = "admin/bans.html")]
struct BansPage {
    page: Layout,
    bans: Vec<store::Ban>,
}

async fn list_bans(
    State(state): State<DashboardState>,
    AdminUser { page, .. }: AdminUser,
) -> Result<Response, PageError> {
    let bans = state
        .store
        .list_bans()
        .await
        .map_err(|err| PageError::from(err).with_layout(page.clone()))?;
    render(&BansPage { page, bans })
}

#[derive(Debug, Default, Deserialize)]
struct BanForm {
    #[serde(default)]
    network: String,
    #[serde(default)]
    reason: String,
}

async fn add_ban(
    State(state): State<DashboardState>,
    AdminUser {
        user,
        page,
        session,
    }: AdminUser,
    axum::Form(form): axum::Form<BanForm>,
) -> Result<Response, PageError> {
    let ops = ops(&state, &page)?;
    let res = ops
        .ban_ip(&user.name, &form.network, &form.reason)
        .await
        .map(|ban| format!("Banned {}", ban.network));
    after(res, &session, &page, "/admin/bans").await
}

async fn remove_ban(
    State(state): State<DashboardState>,
    AdminUser {
        user,
        page,
        session,
    }: AdminUser,
    axum::Form(form): axum::Form<BanForm>,
) -> Result<Response, PageError> {
    let ops = ops(&state, &page)?;
    let res = match ops.unban_ip(&user.name, &form.network).await {
        Ok(ban) => Ok(format!("Lifted the ban of {}", ban.network)),
        // "Not banned" is a refusal shown on the list, not a missing page.
        Err(err) if err.is_not_found() => {
            session.flash(FlashLevel::Error, &err.to_string()).await;
            return Ok(redirect("/admin/bans"));
        }
        Err(err) => Err(err),
    };
    after(res, &session, &page, "/admin/bans").await
}

// ---------------------------------------------------------------------------------------
// Users.

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    page: Layout,
    users: Vec<store::User>,
}

async fn list_users(
    State(state): State<DashboardState>,
    AdminUser { page, .. }: AdminUser,
) -> Result<Response, PageError> {
    let users = state
        .store
        .list_users()
        .await
        .map_err(|err| PageError::from(err).with_layout(page.clone()))?;
    render(&UsersPage { page, users })
}

#[derive(Debug, Clone, Copy)]
enum UserChange {
    GrantAdmin,
    RevokeAdmin,
    Lock,
    Unlock,
}

async fn change_user(
    state: DashboardState,
    AdminUser {
        user,
        page,
        session,
    }: AdminUser,
    name: String,
    change: UserChange,
    reason: &str,
) -> Result<Response, PageError> {
    let ops = ops(&state, &page)?;
    let actor = user.name.as_str();
    let res = match change {
        UserChange::GrantAdmin => ops
            .set_user_admin(actor, &name, true)
            .await
            .map(|()| format!("{name} is an admin now")),
        UserChange::RevokeAdmin => ops
            .set_user_admin(actor, &name, false)
            .await
            .map(|()| format!("{name} is no longer an admin")),
        UserChange::Lock => ops
            .lock_user(actor, &name, reason)
            .await
            .map(|()| format!("{name} is locked")),
        UserChange::Unlock => ops
            .unlock_user(actor, &name)
            .await
            .map(|()| format!("{name} is unlocked")),
    };
    after(res, &session, &page, "/admin/users").await
}

async fn grant_admin(
    State(state): State<DashboardState>,
    admin: AdminUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    change_user(state, admin, name, UserChange::GrantAdmin, "").await
}

async fn revoke_admin(
    State(state): State<DashboardState>,
    admin: AdminUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    change_user(state, admin, name, UserChange::RevokeAdmin, "").await
}

async fn lock_user(
    State(state): State<DashboardState>,
    admin: AdminUser,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<ReasonForm>,
) -> Result<Response, PageError> {
    change_user(state, admin, name, UserChange::Lock, &form.reason).await
}

async fn unlock_user(
    State(state): State<DashboardState>,
    admin: AdminUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    change_user(state, admin, name, UserChange::Unlock, "").await
}

// ---------------------------------------------------------------------------------------
// The audit log.

#[derive(Debug, Default, Deserialize)]
struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    since: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    page: Layout,
    query: AuditQuery,
    entries: Vec<AuditEntry>,
    limit: u32,
}

async fn show_audit(
    State(state): State<DashboardState>,
    AdminUser { page, .. }: AdminUser,
    Query(query): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let since = match query.since.trim() {
        "" => None,
        text => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            match time::Date::parse(text, &format) {
                Ok(date) => Some(date.midnight().assume_utc()),
                Err(_) => {
                    return Err(PageError::BadRequest(format!(
                        "'{text}' is not a date: write since as YYYY-MM-DD."
                    ))
                    .with_layout(page));
                }
            }
        }
    };
    let non_empty = |text: &str| {
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    };
    let filter = AuditFilter {
        since,
        actor: non_empty(&query.actor),
        target: non_empty(&query.target),
        limit: Some(AUDIT_LIMIT),
    };
    let entries = state
        .store
        .list_audit(&filter)
        .await
        .map_err(|err| PageError::from(err).with_layout(page.clone()))?;
    render(&AuditPage {
        page,
        query,
        entries,
        limit: AUDIT_LIMIT,
    })
}

/// A time as the pages show it: `2026-01-01 12:00:00 UTC`.
pub(crate) fn when(at: &time::OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}
