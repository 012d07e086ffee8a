//! Toolforge membership requests (`/tools/membership/…`), Striker's AccessRequest.
//!
//! Workflow: Pending ⇄ Feedback needed → Approved | Declined. An admin's comment on an
//! open request asks for feedback; the applicant's answer returns it to Pending.
//! Approving makes the user a member (members and admins create tools). A user with an
//! open request is sent to it; a member is told "You are already a member of
//! Toolforge". Only confirmed addresses may apply.
//!
//! Visibility: a request is seen by its applicant and by admins; a suppressed request
//! by admins only (its URL answers 404 to everyone else, the applicant included, as
//! to a request that does not exist). Every admin action is written to the audit log,
//! and the applicant is told by mail of comments and decisions.
//!
//! The admin queue (`/tools/membership/queue?status=…&before=ID`) shows
//! [`QUEUE_PAGE_SIZE`] requests a page, newest first, with links to the next older page
//! and back to the newest that keep the status filter.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use store::{AccessComment, AccessFilter, AccessRequest, AccessStatus};
use time::OffsetDateTime;

use crate::DashboardState;
use crate::page::{FlashLevel, Layout, PageError, RowId, redirect, render, render_with_status};
use crate::session::{AdminUser, CurrentUser};

/// The longest reason or comment accepted, in characters.
pub const MAX_TEXT_LEN: usize = 10_000;

/// The membership routes.
pub fn router() -> Router<DashboardState> {
    Router::new()
        .route(
            "/tools/membership",
            get(|| async { redirect("/tools/membership/") }),
        )
        .route("/tools/membership/", get(show_membership))
        .route(
            "/tools/membership/apply",
            get(show_apply_form).post(create_request),
        )
        .route("/tools/membership/status/{id}", get(show_request))
        .route(
            "/tools/membership/status/{id}/comment",
            post(comment_request),
        )
        .route("/tools/membership/status/{id}/decide", post(decide_request))
        .route(
            "/tools/membership/status/{id}/suppress",
            post(suppress_request),
        )
        .route(
            "/tools/membership/status/{id}/unsuppress",
            post(unsuppress_request),
        )
        .route("/tools/membership/queue", get(list_requests))
}

#[derive(Template)]
#[template(path = "membership/status.html")]
struct MembershipPage {
    page: Layout,
    member: bool,
    is_admin: bool,
    email_confirmed: bool,
    under_review: bool,
    past: Vec<AccessRequest>,
}

async fn show_membership(
    State(state): State<DashboardState>,
    CurrentUser { user, page, .. }: CurrentUser,
) -> Result<Response, PageError> {
    let requests = state.store.access_requests_of(&user.name).await?;
    if !user.member
        && let Some(open) = requests
            .iter()
            .find(|request| request.status.is_open() && !request.suppressed)
    {
        return Ok(redirect(&format!("/tools/membership/status/{}", open.id)));
    }
    let under_review = requests
        .iter()
        .any(|request| request.status.is_open() && request.suppressed);
    render(&MembershipPage {
        page,
        member: user.member,
        is_admin: user.is_admin,
        email_confirmed: user.email_confirmed,
        under_review,
        past: requests
            .into_iter()
            .filter(|request| !request.suppressed)
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "membership/apply.html")]
struct ApplyPage {
    page: Layout,
    email_confirmed: bool,
    reason: String,
    error: Option<String>,
}

/// Where a user who may not apply now is sent instead: members and users with an
/// open request go to their status page.
async fn apply_redirect(
    state: &DashboardState,
    user: &crate::page::SessionUser,
) -> Result<Option<Response>, PageError> {
    if user.member {
        return Ok(Some(redirect("/tools/membership/")));
    }
    let requests = state.store.access_requests_of(&user.name).await?;
    if requests.iter().any(|request| request.status.is_open()) {
        return Ok(Some(redirect("/tools/membership/")));
    }
    Ok(None)
}

async fn show_apply_form(
    State(state): State<DashboardState>,
    CurrentUser { user, page, .. }: CurrentUser,
) -> Result<Response, PageError> {
    if let Some(response) = apply_redirect(&state, &user).await? {
        return Ok(response);
    }
    render(&ApplyPage {
        page,
        email_confirmed: user.email_confirmed,
        reason: String::new(),
        error: None,
    })
}

#[derive(Debug, Default, Deserialize)]
struct ApplyForm {
    #[serde(default)]
    reason: String,
}

async fn create_request(
    State(state): State<DashboardState>,
    CurrentUser {
        user,
        page,
        session,
    }: CurrentUser,
    Form(form): Form<ApplyForm>,
) -> Result<Response, PageError> {
    if let Some(response) = apply_redirect(&state, &user).await? {
        return Ok(response);
    }
    if !user.email_confirmed {
        return Err(PageError::Forbidden(
            "Confirm your e-mail address before you request membership: follow the link in the confirmation mail."
                .to_owned(),
        )
        .with_layout(page));
    }
    let reason = form.reason.trim().to_owned();
    if let Some(error) = text_rule("reason", &reason) {
        let template = ApplyPage {
            page,
            email_confirmed: true,
            reason: form.reason,
            error: Some(error),
        };
        return render_with_status(StatusCode::BAD_REQUEST, &template);
    }
    let id = state
        .store
        .create_access_request(&user.name, &reason, OffsetDateTime::now_utc())
        .await?;
    tracing::info!(user = %user.name, request = id, "a membership request was made");
    session
        .flash(
            FlashLevel::Success,
            "Your membership request was sent. Admins will look at it; you will be told by mail.",
        )
        .await;
    Ok(redirect(&format!("/tools/membership/status/{id}")))
}

fn text_rule(what: &str, text: &str) -> Option<String> {
    if text.is_empty() {
        Some(format!("The {what} is empty: write a few words."))
    } else if text.chars().count() > MAX_TEXT_LEN {
        Some(format!(
            "The {what} is too long: at most {MAX_TEXT_LEN} characters."
        ))
    } else {
        None
    }
}

#[derive(Template)]
#[template(path = "membership/request.html")]
struct RequestPage {
    page: Layout,
    request: AccessRequest,
    comments: Vec<AccessComment>,
    is_admin: bool,
    is_applicant: bool,
}

/// The request, when `user` may see it; else the 404 page (a request the user may not
/// see is indistinguishable from one that does not exist).
async fn visible_request(
    state: &DashboardState,
    user: &crate::page::SessionUser,
    id: i64,
) -> Result<AccessRequest, PageError> {
    let request = state
        .store
        .get_access_request(id)
        .await?
        .ok_or(PageError::NotFound)?;
    let visible = user.is_admin || (request.user_name == user.name && !request.suppressed);
    if visible {
        Ok(request)
    } else {
        Err(PageError::NotFound)
    }
}

async fn show_request(
    State(state): State<DashboardState>,
    CurrentUser { user, page, .. }: CurrentUser,
    RowId(id): RowId,
) -> Result<Response, PageError> {
    let request = match visible_request(&state, &user, id).await {
        Ok(request) => request,
        Err(err) => return Err(err.with_layout(page)),
    };
    let comments = state.store.access_request_comments(id).await?;
    render(&RequestPage {
        is_applicant: request.user_name == user.name,
        page,
        request,
        comments,
        is_admin: user.is_admin,
    })
}

#[derive(Debug, Default, Deserialize)]
struct CommentForm {
    #[serde(default)]
    comment: String,
}

async fn comment_request(
    State(state): State<DashboardState>,
    CurrentUser {
        user,
        page,
        session,
    }: CurrentUser,
    RowId(id): RowId,
    Form(form): Form<CommentForm>,
) -> Result<Response, PageError> {
    let request = match visible_request(&state, &user, id).await {
        Ok(request) => request,
        Err(err) => return Err(err.with_layout(page)),
    };
    let comment = form.comment.trim();
    if let Some(error) = text_rule("comment", comment) {
        return Err(PageError::BadRequest(error).with_layout(page));
    }
    let by_applicant = request.user_name == user.name;
    if !request.status.is_open() && !user.is_admin {
        return Err(PageError::Conflict(format!(
            "This request is {}: it takes no more comments. Make a new request instead.",
            request.status.label().to_lowercase()
        ))
        .with_layout(page));
    }
    // An admin's comment on an open request asks for feedback; the applicant's answer
    // returns it to pending.
    let new_status = if by_applicant {
        (request.status == AccessStatus::Feedback).then_some(AccessStatus::Pending)
    } else {
        request.status.is_open().then_some(AccessStatus::Feedback)
    };
    state
        .store
        .comment_access_request(
            id,
            &user.name,
            comment,
            new_status,
            OffsetDateTime::now_utc(),
        )
        .await?;
    if !by_applicant {
        crate::audit(
            &state,
            &user.name,
            "membership comment",
            &request.user_name,
            &format!("request {id}"),
        )
        .await?;
        notify_applicant(
            &state,
            &request,
            "commented on",
            &format!(
                "{} commented on your Toolforge membership request:\n\n{comment}\n\nAnswer on {}/tools/membership/status/{id}\n",
                user.name, state.config.public_url
            ),
        )
        .await;
    }
    session
        .flash(FlashLevel::Success, "Your comment was added.")
        .await;
    Ok(redirect(&format!("/tools/membership/status/{id}")))
}

#[derive(Debug, Default, Deserialize)]
struct DecideForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    comment: String,
}

async fn decide_request(
    State(state): State<DashboardState>,
    AdminUser {
        user,
        page,
        session,
    }: AdminUser,
    RowId(id): RowId,
    Form(form): Form<DecideForm>,
) -> Result<Response, PageError> {
    let request = state
        .store
        .get_access_request(id)
        .await?
        .ok_or_else(|| PageError::NotFound.with_layout(page.clone()))?;
    let status = match form.action.as_str() {
        "approve" => AccessStatus::Approved,
        "decline" => AccessStatus::Declined,
        "feedback" => AccessStatus::Feedback,
        other => {
            return Err(PageError::BadRequest(format!(
                "Unknown decision '{other}': use approve, decline or feedback."
            ))
            .with_layout(page));
        }
    };
    let comment = form.comment.trim();
    if status == AccessStatus::Feedback && comment.is_empty() {
        return Err(PageError::BadRequest(
            "Asking for feedback needs a comment that says what you need to know.".to_owned(),
        )
        .with_layout(page));
    }
    if !comment.is_empty() {
        if let Some(error) = text_rule("comment", comment) {
            return Err(PageError::BadRequest(error).with_layout(page));
        }
        if !request.status.is_open() {
            return Err(PageError::Conflict(format!(
                "Membership request {id} is already {}: a closed request does not change.",
                request.status.label().to_lowercase()
            ))
            .with_layout(page));
        }
        state
            .store
            .comment_access_request(id, &user.name, comment, None, OffsetDateTime::now_utc())
            .await?;
    }
    let updated = match state
        .store
        .set_access_status(id, status, &user.name, OffsetDateTime::now_utc())
        .await
    {
        Ok(updated) => updated,
        Err(store::Error::Conflict(message)) => {
            return Err(PageError::Conflict(message).with_layout(page));
        }
        Err(err) => return Err(err.into()),
    };
    let action = match status {
        AccessStatus::Approved => "membership approve",
        AccessStatus::Declined => "membership decline",
        _ => "membership feedback",
    };
    crate::audit(
        &state,
        &user.name,
        action,
        &request.user_name,
        &format!("request {id}"),
    )
    .await?;
    tracing::info!(admin = %user.name, request = id, applicant = %request.user_name, status = status.as_str(), "a membership request was decided");
    let (verb, text) = match status {
        AccessStatus::Approved => (
            "approved",
            format!(
                "Welcome to Toolforge! Your membership request was approved by {}.\n\nYou can now create tools: {}/tools/create\n",
                user.name, state.config.public_url
            ),
        ),
        AccessStatus::Declined => (
            "declined",
            format!(
                "Your Toolforge membership request was declined by {}.\n\nSee {}/tools/membership/status/{id}\n",
                user.name, state.config.public_url
            ),
        ),
        _ => (
            "commented on",
            format!(
                "{} needs more information about your Toolforge membership request:\n\n{comment}\n\nAnswer on {}/tools/membership/status/{id}\n",
                user.name, state.config.public_url
            ),
        ),
    };
    notify_applicant(&state, &updated, verb, &text).await;
    session
        .flash(
            FlashLevel::Success,
            &format!(
                "The request of {} is now: {}.",
                request.user_name,
                status.label()
            ),
        )
        .await;
    Ok(redirect(&format!("/tools/membership/status/{id}")))
}

async fn suppress_request(
    State(state): State<DashboardState>,
    admin: AdminUser,
    RowId(id): RowId,
) -> Result<Response, PageError> {
    set_suppressed(&state, admin, id, true).await
}

async fn unsuppress_request(
    State(state): State<DashboardState>,
    admin: AdminUser,
    RowId(id): RowId,
) -> Result<Response, PageError> {
    set_suppressed(&state, admin, id, false).await
}

async fn set_suppressed(
    state: &DashboardState,
    AdminUser {
        user,
        page,
        session,
    }: AdminUser,
    id: i64,
    suppressed: bool,
) -> Result<Response, PageError> {
    let Some(request) = state.store.get_access_request(id).await? else {
        return Err(PageError::NotFound.with_layout(page));
    };
    state.store.set_access_suppressed(id, suppressed).await?;
    let action = if suppressed {
        "membership suppress"
    } else {
        "membership unsuppress"
    };
    crate::audit(
        state,
        &user.name,
        action,
        &request.user_name,
        &format!("request {id}"),
    )
    .await?;
    session
        .flash(
            FlashLevel::Success,
            if suppressed {
                "The request is suppressed: only admins see it now."
            } else {
                "The request is visible to its applicant again."
            },
        )
        .await;
    Ok(redirect(&format!("/tools/membership/status/{id}")))
}

/// Mails the applicant; a failure is logged and does not undo the action.
async fn notify_applicant(state: &DashboardState, request: &AccessRequest, verb: &str, text: &str) {
    let Some(mailer) = &state.mailer else {
        return;
    };
    let email = match state.store.get_user(&request.user_name).await {
        Ok(Some(account)) => account.email,
        _ => return,
    };
    let subject = format!("[Toolforge] Your membership request was {verb}");
    let body = format!("Hello {},\n\n{text}\n-- \nToolforge\n", request.user_name);
    if let Err(err) = mailer.send_platform_mail(&[email], &subject, &body).await {
        tracing::warn!(error = %crate::page::error_chain(&err), request = request.id, "could not queue a membership notification");
    }
}

/// How many requests a page of the admin queue shows.
pub const QUEUE_PAGE_SIZE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
struct QueueQuery {
    #[serde(default)]
    status: String,
    /// The page holds requests older than this id (the newest when absent).
    #[serde(default)]
    before: Option<String>,
}

#[derive(Template)]
#[template(path = "membership/queue.html")]
struct QueuePage {
    page: Layout,
    current: String,
    filters: Vec<(&'static str, &'static str)>,
    requests: Vec<AccessRequest>,
    /// The id the next (older) page starts below, when there is one.
    older: Option<i64>,
    /// Whether this is a later page (so there is a link back to the newest).
    later_page: bool,
    unconfirmed: Vec<(String, String, OffsetDateTime)>,
    mail_configured: bool,
}

async fn list_requests(
    State(state): State<DashboardState>,
    AdminUser { page, .. }: AdminUser,
    Query(query): Query<QueueQuery>,
) -> Result<Response, PageError> {
    let (filter, current) = match query.status.as_str() {
        "" | "open" => (AccessFilter::Open, "open"),
        "all" => (AccessFilter::All, "all"),
        other => match AccessStatus::parse(other) {
            Some(status) => (AccessFilter::Status(status), status.as_str()),
            None => {
                return Err(PageError::BadRequest(format!(
                    "Unknown status '{other}': use all, open, pending, feedback, approved or declined."
                ))
                .with_layout(page));
            }
        },
    };
    let before = match query.before.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => match text.parse::<i64>() {
            Ok(id) if id > 0 => Some(id),
            _ => {
                return Err(PageError::BadRequest(format!(
                    "Invalid page '{text}': before must be a request number (a positive integer)."
                ))
                .with_layout(page));
            }
        },
    };
    let mut requests = state
        .store
        .list_access_requests_page(filter, before, QUEUE_PAGE_SIZE + 1)
        .await?;
    let older = if requests.len() > QUEUE_PAGE_SIZE as usize {
        requests.truncate(QUEUE_PAGE_SIZE as usize);
        requests.last().map(|request| request.id)
    } else {
        None
    };
    let unconfirmed = state.store.unconfirmed_signups().await?;
    render(&QueuePage {
        unconfirmed,
        mail_configured: state.mailer.is_some(),
        page,
        current: current.to_owned(),
        filters: vec![
            ("all", "All"),
            ("open", "All open"),
            ("pending", "Pending"),
            ("feedback", "Feedback needed"),
            ("approved", "Approved"),
            ("declined", "Declined"),
        ],
        requests,
        older,
        later_page: before.is_some(),
    })
}
