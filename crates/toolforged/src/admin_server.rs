//! The daemon side of the admin socket: one JSON request, one JSON response per
//! connection. Only the daemon's user can open the socket (mode 0600).

use std::sync::Arc;

use accounts::Accounts;
use api_types::admin::{
    AdminError, AdminRequest, AdminResponse, CertificateView, CredsRegenerated, CredsRenewed,
    KeyRotated, Kubeconfig, MaintainersChanged, MemberView, TokenCreated, TokenView, ToolView,
    UserView,
};
use store::PrincipalKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The largest request accepted on the socket.
const MAX_REQUEST: u64 = 1 << 20;

/// Accepts admin connections until `cancel` fires.
pub async fn serve(
    listener: UnixListener,
    accounts: Arc<Accounts>,
    secrets: Arc<secrets::Secrets>,
    ops: Arc<admin_ops::AdminOps>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let stream = tokio::select! {
            () = cancel.cancelled() => return,
            res = listener.accept() => match res {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(error = %err, "accepting an admin connection failed");
                    continue;
                }
            },
        };
        let accounts = accounts.clone();
        let secrets = secrets.clone();
        let ops = ops.clone();
        // Who asks: every mutating command is audit-logged with this actor.
        let actor = crate::admin_procedures::peer_actor(&stream);
        tracker.spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut buf = Vec::new();
            if let Err(err) = read.take(MAX_REQUEST).read_to_end(&mut buf).await {
                tracing::warn!(error = %err, "reading an admin request failed");
                return;
            }
            let response = match serde_json::from_slice::<AdminRequest>(&buf) {
                Ok(request) => handle(&accounts, &secrets, &ops, &actor, request).await,
                Err(err) => refused(format!("malformed admin request: {err}")),
            };
            let text = serde_json::to_vec(&response).unwrap_or_default();
            if let Err(err) = write.write_all(&text).await {
                tracing::warn!(error = %err, "writing an admin response failed");
            }
            let _ = write.shutdown().await;
        });
    }
}

/// Carries out one admin request of `actor` (`unix:<user>`); every mutating command
/// leaves an audit record (`admin_ops`' invariant).
pub async fn handle(
    accounts: &Accounts,
    secrets: &secrets::Secrets,
    ops: &admin_ops::AdminOps,
    actor: &str,
    request: AdminRequest,
) -> AdminResponse {
    // Disable, enable, delete, bans, user flags and the audit log record themselves.
    if let Some(response) = crate::admin_procedures::handle(ops, actor, &request).await {
        return response;
    }
    let command = command_name(&request);
    let audit = crate::admin_procedures::audit_of(&request);
    let response = respond(accounts, secrets, request).await;
    if let (Some((target, detail)), AdminResponse::Ok(_)) = (audit, &response)
        && let Err(err) = ops.record(actor, command, &target, &detail).await
    {
        tracing::error!(command, error = %admin_ops::error_chain(&err), "recording an admin action in the audit log failed");
    }
    response
}

async fn respond(
    accounts: &Accounts,
    secrets: &secrets::Secrets,
    request: AdminRequest,
) -> AdminResponse {
    let command = command_name(&request);
    if request == AdminRequest::SecretsRotateKey {
        return rotate_key(secrets).await;
    }
    if let Some(response) = crate::admin_quota::handle(accounts.store(), secrets, &request).await {
        return response;
    }
    if let AdminRequest::WebStats { tool, since_secs } = &request {
        return crate::admin_web_stats::handle(
            &accounts.config().data_dir,
            tool.clone(),
            *since_secs,
        )
        .await;
    }
    match dispatch(accounts, request).await {
        Ok(value) => AdminResponse::Ok(value),
        Err(err) => {
            let refused = err.is_refusal();
            if !refused {
                tracing::error!(command, error = %format!("{err:#}"), "admin command failed");
            }
            AdminResponse::Error(AdminError {
                message: render_error(&err),
                refused,
            })
        }
    }
}

fn command_name(request: &AdminRequest) -> &'static str {
    match request {
        AdminRequest::UserCreate { .. } => "user create",
        AdminRequest::UserList => "user list",
        AdminRequest::UserShow { .. } => "user show",
        AdminRequest::UserKubeconfig { .. } => "user kubeconfig",
        AdminRequest::ToolCreate { .. } => "tool create",
        AdminRequest::ToolList => "tool list",
        AdminRequest::ToolShow { .. } => "tool show",
        AdminRequest::ToolDelete { .. } => "tool delete",
        AdminRequest::ToolAddMaintainer { .. } => "tool add-maintainer",
        AdminRequest::ToolRemoveMaintainer { .. } => "tool remove-maintainer",
        AdminRequest::CredsRegenerate { .. } => "creds regenerate",
        AdminRequest::CredsRenew => "creds renew",
        AdminRequest::TokenCreate { .. } => "token create",
        AdminRequest::TokenList => "token list",
        AdminRequest::TokenRevoke { .. } => "token revoke",
        AdminRequest::SecretsRotateKey => "secrets rotate-key",
        AdminRequest::QuotaShow { .. } => "quota show",
        AdminRequest::QuotaSet { .. } => "quota set",
        AdminRequest::QuotaReset { .. } => "quota reset",
        AdminRequest::WebStats { .. } => "web-stats",
        AdminRequest::UserSetAdmin { .. } => "user set-admin",
        AdminRequest::UserLock { .. } => "user lock",
        AdminRequest::UserUnlock { .. } => "user unlock",
        AdminRequest::ToolDisable { .. } => "tool disable",
        AdminRequest::ToolEnable { .. } => "tool enable",
        AdminRequest::BanIp { .. } => "ban-ip",
        AdminRequest::UnbanIp { .. } => "unban-ip",
        AdminRequest::Bans => "bans",
        AdminRequest::Audit { .. } => "audit",
    }
}

/// `secrets rotate-key`: its errors are the platform's (a key file cannot be written,
/// the database failed), never a refusal.
async fn rotate_key(secrets: &secrets::Secrets) -> AdminResponse {
    match secrets.rotate_key().await {
        Ok(rotation) => AdminResponse::Ok(json(&KeyRotated {
            key_id: rotation.key_id,
            reencrypted: rotation.reencrypted,
            retired: rotation.retired,
            unreadable: rotation.unreadable,
        })),
        Err(err) => {
            let message = render_error(&err);
            tracing::error!(command = "secrets rotate-key", error = %message, "admin command failed");
            AdminResponse::Error(AdminError {
                message,
                refused: false,
            })
        }
    }
}

pub(crate) fn render_error(err: &dyn std::error::Error) -> String {
    // Walk the source chain once, so each cause is printed exactly once.
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

fn refused(message: String) -> AdminResponse {
    AdminResponse::Error(AdminError {
        message,
        refused: true,
    })
}

async fn dispatch(
    accounts: &Accounts,
    request: AdminRequest,
) -> accounts::Result<serde_json::Value> {
    let store = accounts.store();
    let value = match request {
        AdminRequest::UserCreate {
            name,
            email,
            admin,
            password,
        } => {
            let generated = password.is_none();
            let password = password.unwrap_or_else(accounts::password::generate_password);
            if password.chars().count() < 8 {
                return Err(accounts::InvalidName(
                    "a password must be at least 8 characters long".to_owned(),
                )
                .into());
            }
            accounts
                .create_user(&name, &email, &password, admin)
                .await?;
            let mut view = user_view(accounts, &name).await?;
            view.password = generated.then_some(password);
            json(&view)
        }
        AdminRequest::UserList => {
            let mut views = Vec::new();
            for user in store.list_users().await? {
                views.push(user_view(accounts, &user.name).await?);
            }
            json(&views)
        }
        AdminRequest::UserShow { name } => json(&user_view(accounts, &name).await?),
        AdminRequest::UserKubeconfig { name, tool } => json(&Kubeconfig {
            kubeconfig: accounts.user_kubeconfig(&name, &tool).await?,
        }),
        AdminRequest::ToolCreate {
            name,
            maintainer,
            title,
            description,
        } => {
            accounts
                .create_tool(&name, &maintainer, &title, &description)
                .await?;
            json(&tool_view(accounts, &name).await?)
        }
        AdminRequest::ToolList => {
            let mut views = Vec::new();
            for tool in store.list_tools().await? {
                views.push(tool_view(accounts, &tool.name).await?);
            }
            json(&views)
        }
        AdminRequest::ToolShow { name } => json(&tool_view(accounts, &name).await?),
        AdminRequest::ToolAddMaintainer { tool, member } => {
            let changed = store.add_maintainer(&tool, &member, accounts.now()).await?;
            json(&MaintainersChanged {
                maintainers: members(accounts, &tool).await?,
                tool,
                changed,
            })
        }
        AdminRequest::ToolRemoveMaintainer { tool, member } => {
            if store.get_tool(&tool).await?.is_none() {
                return Err(store::Error::NotFound {
                    what: "tool",
                    name: tool,
                }
                .into());
            }
            store.remove_maintainer(&tool, &member).await?;
            json(&MaintainersChanged {
                maintainers: members(accounts, &tool).await?,
                tool,
                changed: true,
            })
        }
        AdminRequest::CredsRegenerate { name } => {
            let issued = accounts.regenerate(&name).await?;
            let kind = store
                .principal_kind(&name)
                .await?
                .map_or("user", PrincipalKind::as_str);
            json(&CredsRegenerated {
                name,
                kind: kind.to_owned(),
                certificate: CertificateView {
                    serial: issued.serial,
                    not_before: rfc3339(issued.not_before),
                    not_after: rfc3339(issued.not_after),
                },
            })
        }
        AdminRequest::CredsRenew => {
            let report = accounts.renew_due().await?;
            json(&CredsRenewed {
                renewed: report.renewed,
                failed: report
                    .failed
                    .into_iter()
                    .map(|(name, reason)| format!("{name}: {reason}"))
                    .collect(),
            })
        }
        AdminRequest::TokenCreate {
            name,
            scope,
            expires_in_secs,
        } => {
            let expires_in = expires_in_secs
                .map(|secs| time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)));
            let (record, token) = accounts.create_token(&name, &scope, expires_in).await?;
            json(&TokenCreated {
                id: record.id,
                token,
                subject: record.subject,
                scope: record.scope,
                expires_at: record.expires_at.map(rfc3339),
            })
        }
        AdminRequest::TokenList => {
            let views: Vec<TokenView> = store
                .list_tokens()
                .await?
                .into_iter()
                .map(|token| TokenView {
                    id: token.id,
                    subject: token.subject,
                    kind: token.kind.as_str().to_owned(),
                    scope: token.scope,
                    created_at: rfc3339(token.created_at),
                    expires_at: token.expires_at.map(rfc3339),
                    revoked_at: token.revoked_at.map(rfc3339),
                })
                .collect();
            json(&views)
        }
        AdminRequest::TokenRevoke { id } => {
            accounts.revoke_token(&id).await?;
            json(&serde_json::json!({"id": id, "revoked": true}))
        }
        // Answered by `handle` before dispatching here.
        AdminRequest::SecretsRotateKey
        | AdminRequest::QuotaShow { .. }
        | AdminRequest::QuotaSet { .. }
        | AdminRequest::QuotaReset { .. }
        | AdminRequest::WebStats { .. }
        | AdminRequest::ToolDelete { .. }
        | AdminRequest::UserSetAdmin { .. }
        | AdminRequest::UserLock { .. }
        | AdminRequest::UserUnlock { .. }
        | AdminRequest::ToolDisable { .. }
        | AdminRequest::ToolEnable { .. }
        | AdminRequest::BanIp { .. }
        | AdminRequest::UnbanIp { .. }
        | AdminRequest::Bans
        | AdminRequest::Audit { .. } => serde_json::Value::Null,
    };
    Ok(value)
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

async fn certificate_view(
    accounts: &Accounts,
    name: &str,
    kind: PrincipalKind,
) -> accounts::Result<Option<CertificateView>> {
    Ok(accounts
        .store()
        .active_certificate(name, kind)
        .await?
        .map(|cert| CertificateView {
            serial: cert.serial,
            not_before: rfc3339(cert.not_before),
            not_after: rfc3339(cert.not_after),
        }))
}

async fn user_view(accounts: &Accounts, name: &str) -> accounts::Result<UserView> {
    let store = accounts.store();
    let user = store
        .get_user(name)
        .await?
        .ok_or_else(|| store::Error::NotFound {
            what: "user",
            name: name.to_owned(),
        })?;
    Ok(UserView {
        tools: store.tools_maintained_by(name).await?,
        certificate: certificate_view(accounts, name, PrincipalKind::User).await?,
        name: user.name,
        email: user.email,
        admin: user.is_admin,
        created_at: rfc3339(user.created_at),
        locked_at: user.locked_at.map(rfc3339),
        password: None,
    })
}

async fn members(accounts: &Accounts, tool: &str) -> accounts::Result<Vec<MemberView>> {
    Ok(accounts
        .store()
        .maintainers(tool)
        .await?
        .into_iter()
        .map(|(name, kind)| MemberView {
            name,
            kind: kind.as_str().to_owned(),
        })
        .collect())
}

/// `tool show`'s answer as JSON.
pub(crate) async fn tool_json(
    accounts: &Accounts,
    name: &str,
) -> accounts::Result<serde_json::Value> {
    Ok(json(&tool_view(accounts, name).await?))
}

async fn tool_view(accounts: &Accounts, name: &str) -> accounts::Result<ToolView> {
    let tool = accounts
        .store()
        .get_tool(name)
        .await?
        .ok_or_else(|| store::Error::NotFound {
            what: "tool",
            name: name.to_owned(),
        })?;
    Ok(ToolView {
        maintainers: members(accounts, name).await?,
        certificate: certificate_view(accounts, name, PrincipalKind::Tool).await?,
        disabled: crate::admin_procedures::disabled_view(accounts.store(), name).await?,
        home: accounts.tool_home(name).root.display().to_string(),
        name: tool.name,
        uid: tool.uid,
        gid: tool.uid,
        title: tool.title,
        description: tool.description,
        status: tool.status.as_str().to_owned(),
        created_at: rfc3339(tool.created_at),
    })
}
