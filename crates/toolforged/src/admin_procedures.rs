//! The admin procedures of `toolforged admin`, both ends: `ban-ip`, `unban-ip`,
//! `bans`, `audit`, `tool disable|enable`, `tool delete`, `user set-admin|lock|unlock`.
//!
//! The daemon side only translates: the work, and its audit record, is done by
//! [`admin_ops::AdminOps`], which the dashboard calls in-process too. The actor of every
//! request is the Unix user of the socket's peer (`unix:<user>`, from `SO_PEERCRED`).

use admin_ops::{AdminOps, rfc3339};
use api_types::admin::{
    AdminError, AdminRequest, AdminResponse, AuditEntryView, BanView, DisabledView, ToolDeleted,
};

/// `toolforged admin ban-ip ADDR|CIDR --reason TEXT`.
#[derive(Debug, clap::Args)]
pub struct BanIpArgs {
    /// An IPv4 or IPv6 address, or a network with its prefix length (203.0.113.0/24).
    pub network: String,
    /// Why (required): shown by `bans` and kept in the audit log.
    #[arg(long)]
    pub reason: Option<String>,
}

/// `toolforged admin unban-ip ADDR|CIDR`.
#[derive(Debug, clap::Args)]
pub struct UnbanIpArgs {
    /// The address or network exactly as banned (in any equivalent spelling).
    pub network: String,
}

/// `toolforged admin audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only records of the last DURATION, e.g. 1h or 7d.
    #[arg(long)]
    pub since: Option<String>,
    /// Only actions of this actor (unix:root, a user name, toolforged).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only actions on this tool, user, network or token id.
    #[arg(long)]
    pub target: Option<String>,
    /// At most this many records, newest first.
    #[arg(long, default_value_t = 1000)]
    pub limit: u32,
}

/// Builds the `ban-ip` request; a missing reason is refused here with exit status 1,
/// as the daemon refuses an empty one.
pub fn ban_request(args: BanIpArgs) -> Result<AdminRequest, String> {
    match args.reason {
        Some(reason) => Ok(AdminRequest::BanIp {
            network: args.network,
            reason,
        }),
        None => {
            Err("ban-ip needs --reason TEXT: say why, for whoever lifts the ban later".to_owned())
        }
    }
}

/// Builds the `audit` request from its flags.
pub fn audit_request(args: AuditArgs) -> Result<AdminRequest, String> {
    let since_secs = match args.since {
        Some(text) => Some(
            crate::config::parse_duration(&text)
                .map_err(|err| format!("invalid --since: {err:#}"))?
                .as_secs(),
        ),
        None => None,
    };
    Ok(AdminRequest::Audit {
        since_secs,
        actor: args.actor,
        target: args.target,
        limit: Some(args.limit),
    })
}

/// Parses `true|false` of `user set-admin`.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        other => Err(format!(
            "'{other}' is not true or false: `user set-admin NAME true` grants admin rights, `false` revokes them"
        )),
    }
}

/// Answers the requests of this module; `None` for every other request.
pub async fn handle(ops: &AdminOps, actor: &str, request: &AdminRequest) -> Option<AdminResponse> {
    let res: admin_ops::Result<serde_json::Value> = match request {
        AdminRequest::BanIp { network, reason } => ops
            .ban_ip(actor, network, reason)
            .await
            .map(|ban| json(&ban_view(&ban))),
        AdminRequest::UnbanIp { network } => ops
            .unban_ip(actor, network)
            .await
            .map(|ban| json(&ban_view(&ban))),
        AdminRequest::Bans => ops
            .list_bans()
            .await
            .map(|bans| json(&bans.iter().map(ban_view).collect::<Vec<_>>())),
        AdminRequest::Audit {
            since_secs,
            actor: by,
            target,
            limit,
        } => {
            let since = since_secs.map(|secs| {
                ops.accounts().now()
                    - time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2))
            });
            let filter = store::AuditFilter {
                since,
                actor: by.clone(),
                target: target.clone(),
                limit: *limit,
            };
            ops.audit(&filter).await.map(|entries| {
                json(
                    &entries
                        .into_iter()
                        .map(|entry| AuditEntryView {
                            id: entry.id,
                            at: rfc3339(entry.at),
                            actor: entry.actor,
                            action: entry.action,
                            target: entry.target,
                            detail: entry.detail,
                        })
                        .collect::<Vec<_>>(),
                )
            })
        }
        AdminRequest::ToolDisable { name, reason } => {
            match ops.disable_tool(actor, name, reason).await {
                Ok(_) => return Some(tool_answer(ops, name).await),
                Err(err) => Err(err),
            }
        }
        AdminRequest::ToolEnable { name } => match ops.enable_tool(actor, name).await {
            Ok(()) => return Some(tool_answer(ops, name).await),
            Err(err) => Err(err),
        },
        AdminRequest::ToolDelete { name } => ops.delete_tool(actor, name).await.map(|archive| {
            json(&ToolDeleted {
                name: name.clone(),
                archive: archive.display().to_string(),
            })
        }),
        AdminRequest::UserSetAdmin { name, admin } => ops
            .set_user_admin(actor, name, *admin)
            .await
            .map(|()| serde_json::json!({"name": name, "admin": admin})),
        AdminRequest::UserLock { name, reason } => ops
            .lock_user(actor, name, reason)
            .await
            .map(|()| serde_json::json!({"name": name, "locked": true})),
        AdminRequest::UserUnlock { name } => ops
            .unlock_user(actor, name)
            .await
            .map(|()| serde_json::json!({"name": name, "locked": false})),
        _ => return None,
    };
    Some(match res {
        Ok(value) => AdminResponse::Ok(value),
        Err(err) => failure(&err),
    })
}

/// The disabled view of a tool, for `tool show`.
pub async fn disabled_view(
    store: &store::Store,
    tool: &str,
) -> store::Result<Option<DisabledView>> {
    Ok(store
        .tool_disablement(tool)
        .await?
        .map(|disabled| DisabledView {
            reason: disabled.reason,
            disabled_by: disabled.disabled_by,
            disabled_at: rfc3339(disabled.disabled_at),
            archive_at: rfc3339(disabled.archive_at),
            delete_at: rfc3339(disabled.delete_at),
        }))
}

async fn tool_answer(ops: &AdminOps, name: &str) -> AdminResponse {
    match crate::admin_server::tool_json(ops.accounts(), name).await {
        Ok(value) => AdminResponse::Ok(value),
        Err(err) => failure(&admin_ops::Error::from(err)),
    }
}

fn failure(err: &admin_ops::Error) -> AdminResponse {
    let refused = err.is_refusal();
    let message = admin_ops::error_chain(err);
    if !refused {
        tracing::error!(error = %message, "admin command failed");
    }
    AdminResponse::Error(AdminError { message, refused })
}

fn ban_view(ban: &store::Ban) -> BanView {
    BanView {
        network: ban.network.to_string(),
        reason: ban.reason.clone(),
        created_by: ban.created_by.clone(),
        created_at: rfc3339(ban.created_at),
    }
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// The readable answer to the requests of this module; `None` for every other.
pub fn render(request: &AdminRequest, value: &serde_json::Value) -> Option<String> {
    let text = match request {
        AdminRequest::BanIp { .. } => match serde_json::from_value::<BanView>(value.clone()) {
            Ok(ban) => format!(
                "Banned {}: the front proxy refuses it from now on.\n",
                ban.network
            ),
            Err(_) => format!("{value}\n"),
        },
        AdminRequest::UnbanIp { .. } => match serde_json::from_value::<BanView>(value.clone()) {
            Ok(ban) => format!(
                "Lifted the ban of {} (banned by {} at {}: {}).\n",
                ban.network, ban.created_by, ban.created_at, ban.reason
            ),
            Err(_) => format!("{value}\n"),
        },
        AdminRequest::Bans => match serde_json::from_value::<Vec<BanView>>(value.clone()) {
            Ok(bans) if bans.is_empty() => "No address is banned.\n".to_owned(),
            Ok(bans) => crate::admin_client::table(
                &["NETWORK", "BANNED AT", "BY", "REASON"],
                bans.into_iter()
                    .map(|ban| vec![ban.network, ban.created_at, ban.created_by, ban.reason])
                    .collect(),
            ),
            Err(_) => format!("{value}\n"),
        },
        AdminRequest::Audit { .. } => {
            match serde_json::from_value::<Vec<AuditEntryView>>(value.clone()) {
                Ok(entries) if entries.is_empty() => "No audit record matches.\n".to_owned(),
                Ok(entries) => crate::admin_client::table(
                    &["TIME", "ACTOR", "ACTION", "TARGET", "DETAIL"],
                    entries
                        .into_iter()
                        .map(|e| vec![e.at, e.actor, e.action, e.target, e.detail])
                        .collect(),
                ),
                Err(_) => format!("{value}\n"),
            }
        }
        AdminRequest::ToolDisable { .. } | AdminRequest::ToolEnable { .. } => {
            match serde_json::from_value::<api_types::admin::ToolView>(value.clone()) {
                Ok(tool) => match &tool.disabled {
                    Some(disabled) => format!(
                        "Disabled tool {}: its jobs and webservice were stopped and its credentials are refused.\nIts home is archived at {} and the tool deleted at {}, unless `toolforged admin tool enable {}` comes first.\n",
                        tool.name, disabled.archive_at, disabled.delete_at, tool.name
                    ),
                    None => format!(
                        "Enabled tool {}: its credentials work again, its continuous jobs were started and its scheduled jobs fire again.\n",
                        tool.name
                    ),
                },
                Err(_) => format!("{value}\n"),
            }
        }
        AdminRequest::UserSetAdmin { name, admin } => {
            if *admin {
                format!("User {name} is now a platform admin.\n")
            } else {
                format!("User {name} is no longer a platform admin.\n")
            }
        }
        AdminRequest::UserLock { name, .. } => format!(
            "Locked user {name}: their certificate and tokens are refused and they cannot log in.\n"
        ),
        AdminRequest::UserUnlock { name } => format!("Unlocked user {name}.\n"),
        _ => return None,
    };
    Some(text)
}

/// What the audit log records for a mutating request made through another API (the
/// requests of this module record themselves); `None` for read-only requests.
/// Returns the target and a detail that never holds a secret or a password.
pub fn audit_of(request: &AdminRequest) -> Option<(String, String)> {
    Some(match request {
        AdminRequest::UserCreate { name, admin, .. } => (
            name.clone(),
            if *admin {
                "admin".to_owned()
            } else {
                String::new()
            },
        ),
        AdminRequest::ToolCreate {
            name, maintainer, ..
        } => (name.clone(), format!("maintainer {maintainer}")),
        AdminRequest::ToolAddMaintainer { tool, member } => {
            (tool.clone(), format!("added {member}"))
        }
        AdminRequest::ToolRemoveMaintainer { tool, member } => {
            (tool.clone(), format!("removed {member}"))
        }
        AdminRequest::CredsRegenerate { name } => (name.clone(), String::new()),
        AdminRequest::CredsRenew => (String::new(), String::new()),
        AdminRequest::TokenCreate {
            name,
            scope,
            expires_in_secs,
        } => (
            name.clone(),
            match expires_in_secs {
                Some(secs) => format!("scope {scope}, expires in {secs}s"),
                None => format!("scope {scope}, does not expire"),
            },
        ),
        AdminRequest::TokenRevoke { id } => (id.clone(), String::new()),
        AdminRequest::SecretsRotateKey => (String::new(), String::new()),
        AdminRequest::QuotaSet { tool, values } => (
            tool.clone(),
            values
                .iter()
                .map(|pair| format!("{}={}", pair.key, pair.value))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        AdminRequest::QuotaReset { tool, keys } => (tool.clone(), keys.join(" ")),
        _ => return None,
    })
}

/// The actor of an admin socket connection: `unix:<user>` of the peer's uid.
pub fn peer_actor(stream: &tokio::net::UnixStream) -> String {
    match stream.peer_cred() {
        Ok(cred) => {
            let uid = cred.uid();
            match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
                Ok(Some(user)) => format!("unix:{}", user.name),
                _ => format!("unix:uid={uid}"),
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, "could not read the admin socket peer's credentials");
            "unix:unknown".to_owned()
        }
    }
}
