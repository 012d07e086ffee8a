//! Developer accounts: sign-up with e-mail confirmation, log-in and log-out, the
//! profile, password change and SSH keys (Striker's `/register/…` and `/profile/…`).
//!
//! User names follow the original's shell-name rule (`^[a-z][a-z0-9_-]{0,31}$`) and
//! share one namespace with tools. Confirmation links carry a random single-use token
//! that expires; only its SHA-256 is stored. Without `--smtp-url` no mail can be sent,
//! and the pages say that an admin must confirm the address.

use std::time::Instant;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::DashboardState;
use crate::page::{
    FlashLevel, Layout, PageError, RowId, SessionUser, redirect, render, render_with_status,
    safe_next,
};
use crate::session::{AdminUser, CurrentUser, OptionalUser, sha256_hex};
use crate::sshkey;

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;
/// The longest password accepted (argon2 takes any length; this bounds the work).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// The accounts routes.
pub fn router() -> Router<DashboardState> {
    Router::new()
        .route("/signup", get(show_signup).post(create_account))
        .route("/register", get(show_signup).post(create_account))
        .route("/register/", get(show_signup).post(create_account))
        .route("/register/confirm/{token}", get(confirm_email))
        .route("/register/api/shellname/{name}", get(check_user_name))
        .route("/login", get(show_login).post(log_in))
        .route("/logout", post(log_out))
        .route("/profile", get(show_profile))
        .route("/profile/", get(show_profile))
        .route("/profile/settings/", get(show_profile))
        .route(
            "/profile/settings/change_password/",
            get(show_password_form).post(change_password),
        )
        .route("/profile/settings/ssh-keys/", get(list_ssh_keys))
        .route("/profile/settings/ssh-keys/add", post(add_ssh_key))
        .route(
            "/profile/settings/ssh-keys/{id}/delete",
            post(delete_ssh_key),
        )
        .route(
            "/profile/settings/resend-confirmation",
            post(resend_confirmation),
        )
        .route(
            "/admin/users/{user}/confirm-email",
            post(confirm_email_as_admin),
        )
}

// ---- sign-up ----

#[derive(Debug, Default, Deserialize)]
struct SignupForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password2: String,
}

#[derive(Debug, Default)]
struct SignupErrors {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
    password2: Option<String>,
}

impl SignupErrors {
    fn any(&self) -> bool {
        self.username.is_some()
            || self.email.is_some()
            || self.password.is_some()
            || self.password2.is_some()
    }
}

#[derive(Template)]
#[template(path = "accounts/signup.html")]
struct SignupPage {
    page: Layout,
    username: String,
    email: String,
    errors: SignupErrors,
    mail_configured: bool,
    min_password_len: usize,
}

async fn show_signup(
    State(state): State<DashboardState>,
    OptionalUser {
        mut page,
        user,
        session,
        ..
    }: OptionalUser,
) -> Result<Response, PageError> {
    if user.is_some() {
        return Ok(redirect("/profile"));
    }
    session.ensure_csrf(&mut page).await?;
    render(&SignupPage {
        page,
        username: String::new(),
        email: String::new(),
        errors: SignupErrors::default(),
        mail_configured: state.mailer.is_some(),
        min_password_len: MIN_PASSWORD_LEN,
    })
}

async fn create_account(
    State(state): State<DashboardState>,
    OptionalUser {
        page,
        session,
        client,
        ..
    }: OptionalUser,
    Form(form): Form<SignupForm>,
) -> Result<Response, PageError> {
    let now = Instant::now();
    let username = form.username.trim().to_owned();
    let keys = [format!("addr:{client}"), format!("user:{username}")];
    if keys
        .iter()
        .any(|key| state.limits.signups.exhausted(key, now))
    {
        return Err(PageError::TooManyRequests(format!(
            "Too many sign-up attempts from your address or for this user name: at most {} \
             a minute. Wait a minute and try again.",
            crate::ratelimit::SIGNUPS_PER_MINUTE
        ))
        .with_layout(page));
    }
    for key in &keys {
        state.limits.signups.record(key, now);
    }

    let email = form.email.trim().to_owned();
    let mut errors = SignupErrors::default();
    if let Err(err) = user_name_available(&state, &username).await? {
        errors.username = Some(err);
    }
    if let Err(err) = ::accounts::names::validate_email(&email) {
        errors.email = Some(err.0);
    }
    errors.password = password_rule(&form.password);
    if errors.password.is_none() && form.password != form.password2 {
        errors.password2 =
            Some("The two passwords differ: type the same password twice.".to_owned());
    }
    if errors.any() {
        let template = SignupPage {
            page,
            username,
            email,
            errors,
            mail_configured: state.mailer.is_some(),
            min_password_len: MIN_PASSWORD_LEN,
        };
        return render_with_status(StatusCode::BAD_REQUEST, &template);
    }
    match state
        .accounts
        .create_user(&username, &email, &form.password, false)
        .await
    {
        Ok(_) => {}
        Err(::accounts::Error::Store(store::Error::NameTaken { name, kind })) => {
            let template = SignupPage {
                page,
                username,
                email,
                errors: SignupErrors {
                    username: Some(format!("The name '{name}' is already taken by a {kind}.")),
                    ..SignupErrors::default()
                },
                mail_configured: state.mailer.is_some(),
                min_password_len: MIN_PASSWORD_LEN,
            };
            return render_with_status(StatusCode::CONFLICT, &template);
        }
        Err(err) => {
            tracing::error!(error = %crate::page::error_chain(&err), "creating an account from the dashboard failed");
            return Err(PageError::Internal.with_layout(page));
        }
    }
    state
        .store
        .record_signup(&username, OffsetDateTime::now_utc())
        .await?;
    tracing::info!(user = %username, "an account signed up on the dashboard");
    session.log_in(&username).await?;
    match send_confirmation(&state, &username, &email).await {
        Ok(true) => {
            session
                .flash(
                    FlashLevel::Success,
                    &format!(
                        "Welcome, {username}! We sent a confirmation link to {email}: follow it to confirm your address."
                    ),
                )
                .await
        }
        Ok(false) => {
            session
                .flash(
                    FlashLevel::Warning,
                    &format!(
                        "Welcome, {username}! This Toolforge has no mail server configured, so no confirmation mail can be sent: a Toolforge admin must confirm your address."
                    ),
                )
                .await
        }
        Err(_) => {
            session
                .flash(
                    FlashLevel::Warning,
                    &format!(
                        "Welcome, {username}! The confirmation mail could not be queued; ask for another one from your profile."
                    ),
                )
                .await
        }
    }
    Ok(redirect("/profile"))
}

/// Whether `name` is a valid, unused user name; `Err` holds the reason shown.
async fn user_name_available(
    state: &DashboardState,
    name: &str,
) -> Result<Result<(), String>, PageError> {
    if let Err(err) = ::accounts::names::validate_user_name(name) {
        return Ok(Err(err.0));
    }
    Ok(match state.store.principal_kind(name).await? {
        Some(kind) => Err(format!("The name '{name}' is already taken by a {kind}.")),
        None => Ok(()),
    })
}

fn password_rule(password: &str) -> Option<String> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        Some(format!(
            "The password is too short: use at least {MIN_PASSWORD_LEN} characters."
        ))
    } else if len > MAX_PASSWORD_LEN {
        Some(format!(
            "The password is too long: use at most {MAX_PASSWORD_LEN} characters."
        ))
    } else {
        None
    }
}

async fn check_user_name(
    State(state): State<DashboardState>,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let res = user_name_available(&state, &name).await?;
    Ok(Json(serde_json::json!({
        "name": name,
        "available": res.is_ok(),
        "error": res.err(),
    }))
    .into_response())
}

/// Queues the confirmation mail; `Ok(false)` when no mail server is configured.
async fn send_confirmation(
    state: &DashboardState,
    user: &str,
    email: &str,
) -> Result<bool, PageError> {
    let Some(mailer) = &state.mailer else {
        return Ok(false);
    };
    let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let now = OffsetDateTime::now_utc();
    let expires_at = now + state.config.confirmation_lifetime;
    state
        .store
        .create_email_confirmation(&sha256_hex(token.as_bytes()), user, email, now, expires_at)
        .await?;
    let link = format!("{}/register/confirm/{token}", state.config.public_url);
    let hours = state.config.confirmation_lifetime.whole_hours();
    let body = format!(
        "Hello {user},\n\n\
         someone, probably you, signed up for a Toolforge developer account named '{user}'\n\
         with this address. To confirm the address, open this link within {hours} hours:\n\n\
         {link}\n\n\
         If it was not you, ignore this mail; the address stays unconfirmed.\n\n\
         -- \nToolforge\n"
    );
    mailer
        .send_platform_mail(
            &[email.to_owned()],
            "[Toolforge] Confirm your e-mail address",
            &body,
        )
        .await
        .map_err(|err| {
            tracing::error!(error = %crate::page::error_chain(&err), "queuing a confirmation mail failed");
            PageError::Internal
        })?;
    Ok(true)
}

#[derive(Template)]
#[template(path = "accounts/confirmed.html")]
struct ConfirmedPage {
    page: Layout,
    confirmed_user: Option<String>,
}

async fn confirm_email(
    State(state): State<DashboardState>,
    OptionalUser { page, .. }: OptionalUser,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let confirmed_user = state
        .store
        .use_email_confirmation(&sha256_hex(token.as_bytes()), OffsetDateTime::now_utc())
        .await?;
    if let Some(user) = &confirmed_user {
        tracing::info!(%user, "an e-mail address was confirmed");
    }
    let status = if confirmed_user.is_some() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    let mut page = page;
    // The layout was read before the confirmation: show the new state.
    if let (Some(user), Some(name)) = (page.user.as_mut(), &confirmed_user)
        && &user.name == name
    {
        user.email_confirmed = true;
    }
    render_with_status(
        status,
        &ConfirmedPage {
            page,
            confirmed_user,
        },
    )
}

async fn resend_confirmation(
    State(state): State<DashboardState>,
    CurrentUser { user, session, .. }: CurrentUser,
) -> Result<Response, PageError> {
    if user.email_confirmed {
        session
            .flash(
                FlashLevel::Info,
                "Your e-mail address is already confirmed.",
            )
            .await;
        return Ok(redirect("/profile"));
    }
    match send_confirmation(&state, &user.name, &user.email).await? {
        true => {
            session
                .flash(
                    FlashLevel::Success,
                    &format!("We sent a new confirmation link to {}.", user.email),
                )
                .await
        }
        false => {
            session
                .flash(
                    FlashLevel::Warning,
                    "No mail server is configured, so no confirmation mail can be sent: a Toolforge admin must confirm your address.",
                )
                .await
        }
    }
    Ok(redirect("/profile"))
}

async fn confirm_email_as_admin(
    State(state): State<DashboardState>,
    AdminUser { user, session, .. }: AdminUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    if state.store.get_user(&name).await?.is_none() {
        return Err(PageError::NotFound);
    }
    state
        .store
        .confirm_email(&name, OffsetDateTime::now_utc())
        .await?;
    crate::audit(&state, &user.name, "user confirm-email", &name, "").await?;
    session
        .flash(
            FlashLevel::Success,
            &format!("The e-mail address of {name} is confirmed."),
        )
        .await;
    Ok(redirect("/tools/membership/queue"))
}

// ---- log-in and log-out ----

#[derive(Debug, Default, Deserialize)]
struct LoginQuery {
    #[serde(default)]
    next: String,
}

#[derive(Debug, Default, Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

#[derive(Template)]
#[template(path = "accounts/login.html")]
struct LoginPage {
    page: Layout,
    username: String,
    next: String,
    error: Option<String>,
}

async fn show_login(
    OptionalUser {
        mut page,
        user,
        session,
        ..
    }: OptionalUser,
    Query(query): Query<LoginQuery>,
) -> Result<Response, PageError> {
    let next = safe_next(&query.next).unwrap_or("/").to_owned();
    if user.is_some() {
        return Ok(redirect(&next));
    }
    session.ensure_csrf(&mut page).await?;
    render(&LoginPage {
        page,
        username: String::new(),
        next,
        error: None,
    })
}

async fn log_in(
    State(state): State<DashboardState>,
    OptionalUser {
        page,
        session,
        client,
        ..
    }: OptionalUser,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let username = form.username.trim().to_owned();
    let next = safe_next(&form.next).unwrap_or("/").to_owned();
    let now = Instant::now();
    let keys = [format!("addr:{client}"), format!("user:{username}")];
    if keys
        .iter()
        .any(|key| state.limits.login_failures.exhausted(key, now))
    {
        tracing::warn!(user = %username, %client, "refused a log-in: too many failures within a minute");
        return Err(PageError::TooManyRequests(format!(
            "Too many failed log-ins: after {} failures within a minute, log-ins from your \
             address or to this account are refused. Wait a minute and try again.",
            crate::ratelimit::LOGIN_FAILURES_PER_MINUTE
        ))
        .with_layout(page));
    }
    let account = state.store.get_user(&username).await?;
    let hash = account
        .as_ref()
        .map(|account| account.password_hash.clone());
    let locked = account
        .as_ref()
        .is_some_and(|account| account.locked_at.is_some());
    let password = form.password;
    // Verify against a throwaway hash when the user does not exist, so the answer takes
    // as long either way and does not tell which names exist.
    let matches = tokio::task::spawn_blocking(move || match hash {
        Some(hash) => ::accounts::password::verify_password(&password, &hash),
        None => {
            let _ = ::accounts::password::verify_password(&password, dummy_hash());
            false
        }
    })
    .await
    .map_err(|_| PageError::Internal)?;
    if !matches {
        for key in &keys {
            state.limits.login_failures.record(key, now);
        }
        tracing::info!(user = %username, %client, "a dashboard log-in failed");
        let template = LoginPage {
            page,
            username,
            next,
            error: Some("Wrong user name or password.".to_owned()),
        };
        return render_with_status(StatusCode::UNAUTHORIZED, &template);
    }
    if locked {
        return Err(PageError::Forbidden(
            "This account is locked: it cannot log in. Ask a Toolforge admin why.".to_owned(),
        )
        .with_layout(page));
    }
    session.log_in(&username).await?;
    tracing::info!(user = %username, "logged in to the dashboard");
    Ok(redirect(&next))
}

fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| ::accounts::password::hash_password("not a password anyone has"))
}

async fn log_out(OptionalUser { session, .. }: OptionalUser) -> Result<Response, PageError> {
    session.log_out().await?;
    session.flash(FlashLevel::Info, "You are logged out.").await;
    Ok(redirect("/"))
}

// ---- profile ----

#[derive(Template)]
#[template(path = "accounts/profile.html")]
struct ProfilePage {
    page: Layout,
    user: SessionUser,
    tools: Vec<String>,
    n_ssh_keys: usize,
    mail_configured: bool,
}

async fn show_profile(
    State(state): State<DashboardState>,
    CurrentUser { user, page, .. }: CurrentUser,
) -> Result<Response, PageError> {
    let tools = state.store.tools_maintained_by(&user.name).await?;
    let n_ssh_keys = state.store.ssh_keys(&user.name).await?.len();
    render(&ProfilePage {
        page,
        user,
        tools,
        n_ssh_keys,
        mail_configured: state.mailer.is_some(),
    })
}

#[derive(Debug, Default, Deserialize)]
struct PasswordForm {
    #[serde(default)]
    old_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password2: String,
}

#[derive(Template)]
#[template(path = "accounts/password.html")]
struct PasswordPage {
    page: Layout,
    error: Option<String>,
    min_password_len: usize,
}

async fn show_password_form(CurrentUser { page, .. }: CurrentUser) -> Result<Response, PageError> {
    render(&PasswordPage {
        page,
        error: None,
        min_password_len: MIN_PASSWORD_LEN,
    })
}

async fn change_password(
    State(state): State<DashboardState>,
    CurrentUser {
        user,
        page,
        session,
    }: CurrentUser,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    let account = state
        .store
        .get_user(&user.name)
        .await?
        .ok_or(PageError::NotFound)?;
    let old = form.old_password;
    let hash = account.password_hash;
    let old_matches =
        tokio::task::spawn_blocking(move || ::accounts::password::verify_password(&old, &hash))
            .await
            .map_err(|_| PageError::Internal)?;
    let error = if !old_matches {
        Some("The current password is wrong.".to_owned())
    } else if let Some(rule) = password_rule(&form.new_password) {
        Some(rule)
    } else if form.new_password != form.new_password2 {
        Some("The two new passwords differ: type the same password twice.".to_owned())
    } else {
        None
    };
    if let Some(error) = error {
        let template = PasswordPage {
            page,
            error: Some(error),
            min_password_len: MIN_PASSWORD_LEN,
        };
        return render_with_status(StatusCode::BAD_REQUEST, &template);
    }
    let new = form.new_password;
    let new_hash = tokio::task::spawn_blocking(move || ::accounts::password::hash_password(&new))
        .await
        .map_err(|_| PageError::Internal)?;
    state.store.set_password_hash(&user.name, &new_hash).await?;
    let n_ended = session.end_other_sessions(&user.name).await?;
    tracing::info!(user = %user.name, other_sessions_ended = n_ended, "a password was changed on the dashboard");
    session
        .flash(
            FlashLevel::Success,
            "Your password was changed; your other sessions were logged out.",
        )
        .await;
    Ok(redirect("/profile"))
}

// ---- SSH keys ----

#[derive(Template)]
#[template(path = "accounts/ssh_keys.html")]
struct SshKeysPage {
    page: Layout,
    keys: Vec<store::SshKeyRecord>,
    public_key: String,
    error: Option<String>,
    key_types: &'static [&'static str],
}

async fn list_ssh_keys(
    State(state): State<DashboardState>,
    CurrentUser { user, page, .. }: CurrentUser,
) -> Result<Response, PageError> {
    let keys = state.store.ssh_keys(&user.name).await?;
    render(&SshKeysPage {
        page,
        keys,
        public_key: String::new(),
        error: None,
        key_types: sshkey::KEY_TYPES,
    })
}

#[derive(Debug, Default, Deserialize)]
struct SshKeyForm {
    #[serde(default)]
    public_key: String,
}

async fn add_ssh_key(
    State(state): State<DashboardState>,
    CurrentUser {
        user,
        page,
        session,
    }: CurrentUser,
    Form(form): Form<SshKeyForm>,
) -> Result<Response, PageError> {
    let refuse = |page: Layout, keys, error: String, public_key: String, status| {
        render_with_status(
            status,
            &SshKeysPage {
                page,
                keys,
                public_key,
                error: Some(error),
                key_types: sshkey::KEY_TYPES,
            },
        )
    };
    let key = match sshkey::parse(&form.public_key) {
        Ok(key) => key,
        Err(error) => {
            let keys = state.store.ssh_keys(&user.name).await?;
            return refuse(page, keys, error, form.public_key, StatusCode::BAD_REQUEST);
        }
    };
    let record = store::SshKeyRecord {
        id: 0,
        key_type: key.key_type,
        key_blob: key.blob,
        comment: key.comment,
        fingerprint: key.fingerprint.clone(),
        bits: Some(key.bits),
        created_at: OffsetDateTime::now_utc(),
    };
    match state
        .store
        .add_ssh_key(&user.name, &record, OffsetDateTime::now_utc())
        .await
    {
        Ok(_) => {}
        Err(store::Error::Conflict(message)) => {
            let keys = state.store.ssh_keys(&user.name).await?;
            return refuse(page, keys, message, form.public_key, StatusCode::CONFLICT);
        }
        Err(err) => return Err(err.into()),
    }
    session
        .flash(
            FlashLevel::Success,
            &format!("Added the key {}.", key.fingerprint),
        )
        .await;
    Ok(redirect("/profile/settings/ssh-keys/"))
}

async fn delete_ssh_key(
    State(state): State<DashboardState>,
    CurrentUser { user, session, .. }: CurrentUser,
    RowId(id): RowId,
) -> Result<Response, PageError> {
    if !state.store.delete_ssh_key(&user.name, id).await? {
        return Err(PageError::NotFound);
    }
    session
        .flash(FlashLevel::Success, "The key was deleted.")
        .await;
    Ok(redirect("/profile/settings/ssh-keys/"))
}
