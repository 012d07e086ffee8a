//! `toolforged admin`: sends one request over the admin socket and prints the answer
//! as a readable table, or as one JSON document with `--json`.
//!
//! Exit status: 0 on success, 1 when the daemon refused the request, 2 when the
//! daemon cannot be reached.

use std::io::{BufRead, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use api_types::admin::{
    AdminRequest, AdminResponse, CredsRegenerated, CredsRenewed, KeyRotated, Kubeconfig,
    MaintainersChanged, TokenCreated, TokenView, ToolDeleted, ToolView, UserView,
};

/// Flags of `toolforged admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// The daemon's data directory (its admin socket is <data-dir>/run/admin.sock).
    #[arg(
        long,
        env = "TOOLFORGE_DATA_DIR",
        default_value = "./toolforge-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Print one JSON document instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// What to administer.
#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Developer accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Tool accounts.
    #[command(subcommand)]
    Tool(ToolCommand),
    /// Client certificates.
    #[command(subcommand)]
    Creds(CredsCommand),
    /// Scoped bearer tokens, for clients without a certificate.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The envvars' encryption keys.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Per-tool quota overrides.
    #[command(subcommand)]
    Quota(QuotaCommand),
    /// Ban an address or network at the front proxy (audit-logged).
    BanIp(crate::admin_procedures::BanIpArgs),
    /// Lift the ban of an address or network.
    UnbanIp(crate::admin_procedures::UnbanIpArgs),
    /// List the banned addresses and networks.
    Bans,
    /// The audit log of admin actions: who did what, on what, when; newest first.
    Audit(crate::admin_procedures::AuditArgs),
    /// The front proxy's access log summarised: requests, status codes, top paths,
    /// top clients and top tools.
    WebStats(crate::admin_web_stats::WebStatsArgs),
}

/// `toolforged admin quota …`.
///
/// Keys: pods, jobs (one-off and scheduled runs at once), cronjobs, continuous
/// (continuous jobs, the webservice included), cpu, memory (the tool's totals), job-cpu,
/// job-memory (per job), envvars. Counts are whole numbers; cpu like 2 or 500m; memory
/// like 4Gi or 512Mi.
#[derive(Debug, clap::Subcommand)]
pub enum QuotaCommand {
    /// Show each key's default, override and effective value.
    Show { tool: String },
    /// Override keys of a tool's quota; nothing is changed if any pair is invalid.
    Set {
        tool: String,
        /// For example pods=20 continuous=5 cpu=8 memory=16Gi job-memory=1Gi.
        #[arg(required = true, value_name = "KEY=VALUE")]
        values: Vec<String>,
    },
    /// Remove overrides, so the keys have their defaults again.
    Reset {
        tool: String,
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
}

/// `toolforged admin secrets …`.
#[derive(Debug, clap::Subcommand)]
pub enum SecretsCommand {
    /// Create a new key, re-encrypt every envvar with it and delete the old key;
    /// the daemon keeps serving meanwhile.
    RotateKey,
}

/// `toolforged admin token …`.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Issue a token acting as a tool or user; it is printed once.
    Create {
        name: String,
        /// Services the token may use: a comma-separated list of jobs, envvars, builds,
        /// components, logs, or `all`.
        #[arg(long, default_value = "all")]
        scope: String,
        /// Lifetime, e.g. 30d or 12h; without it the token does not expire.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id; it is refused at once.
    Revoke { id: String },
}

/// `toolforged admin user …`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user; prints a generated password unless one is read from stdin.
    Create {
        name: String,
        #[arg(long)]
        email: String,
        /// Make the user a platform admin.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Show one user.
    Show { name: String },
    /// Print a kubeconfig with the user's own certificate, for a tool they maintain.
    Kubeconfig {
        name: String,
        #[arg(long)]
        tool: String,
    },
    /// Grant (true) or revoke (false) platform admin rights.
    SetAdmin {
        name: String,
        #[arg(value_name = "true|false", action = clap::ArgAction::Set, value_parser = crate::admin_procedures::parse_bool)]
        admin: bool,
    },
    /// Lock a user: their certificate and tokens are refused and they cannot log in.
    Lock {
        name: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Unlock a user.
    Unlock { name: String },
}

/// `toolforged admin tool …`.
#[derive(Debug, clap::Subcommand)]
pub enum ToolCommand {
    /// Create a tool and provision its home and credentials.
    Create {
        name: String,
        #[arg(long)]
        maintainer: String,
        #[arg(long, default_value = "")]
        title: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List tools.
    List,
    /// Show one tool.
    Show { name: String },
    /// Delete a tool now; its home is archived under <data-dir>/archive/.
    Delete { name: String },
    /// Disable a tool: its jobs and webservice stop at once, its credentials are refused,
    /// and its home is archived and the tool deleted 40 days later.
    Disable {
        name: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Enable a disabled tool again: its continuous jobs start, schedules fire again.
    Enable { name: String },
    /// Add a user or a tool as maintainer.
    AddMaintainer { name: String, member: String },
    /// Remove a maintainer.
    RemoveMaintainer { name: String, member: String },
}

/// `toolforged admin creds …`.
#[derive(Debug, clap::Subcommand)]
pub enum CredsCommand {
    /// Replace a tool's or user's certificate now; the old one is refused at once.
    Regenerate { name: String },
    /// Renew every certificate that is due (the daemon also does this on its own).
    Renew,
}

/// Runs the admin command; returns the process exit code.
pub fn run(args: AdminArgs) -> i32 {
    let request = match build_request(args.command) {
        Ok(request) => request,
        Err(message) => {
            eprintln!("error: {message}");
            return 1;
        }
    };
    let socket = args.data_dir.join("run/admin.sock");
    let response = match exchange(&socket, &request) {
        Ok(response) => response,
        Err(err) => {
            eprintln!(
                "error: cannot reach toolforged through {}: {err:#}\n(is `toolforged serve --data-dir {}` running?)",
                socket.display(),
                args.data_dir.display()
            );
            return 2;
        }
    };
    match response {
        AdminResponse::Ok(value) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
            } else {
                print!("{}", render(&request, &value));
            }
            0
        }
        AdminResponse::Error(err) => {
            if args.json {
                let doc = serde_json::json!({"error": err.message, "refused": err.refused});
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            }
            eprintln!("error: {}", err.message);
            1
        }
    }
}

fn build_request(command: AdminCommand) -> Result<AdminRequest, String> {
    Ok(match command {
        AdminCommand::User(UserCommand::Create {
            name,
            email,
            admin,
            password_stdin,
        }) => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(|err| format!("reading the password from stdin: {err}"))?;
                let line = line.trim_end_matches(['\n', '\r']).to_owned();
                if line.is_empty() {
                    return Err("--password-stdin: standard input held no password".to_owned());
                }
                Some(line)
            } else {
                None
            };
            AdminRequest::UserCreate {
                name,
                email,
                admin,
                password,
            }
        }
        AdminCommand::User(UserCommand::List) => AdminRequest::UserList,
        AdminCommand::User(UserCommand::Show { name }) => AdminRequest::UserShow { name },
        AdminCommand::User(UserCommand::Kubeconfig { name, tool }) => {
            AdminRequest::UserKubeconfig { name, tool }
        }
        AdminCommand::Tool(ToolCommand::Create {
            name,
            maintainer,
            title,
            description,
        }) => AdminRequest::ToolCreate {
            name,
            maintainer,
            title,
            description,
        },
        AdminCommand::Tool(ToolCommand::List) => AdminRequest::ToolList,
        AdminCommand::Tool(ToolCommand::Show { name }) => AdminRequest::ToolShow { name },
        AdminCommand::Tool(ToolCommand::Delete { name }) => AdminRequest::ToolDelete { name },
        AdminCommand::Tool(ToolCommand::AddMaintainer { name, member }) => {
            AdminRequest::ToolAddMaintainer { tool: name, member }
        }
        AdminCommand::Tool(ToolCommand::RemoveMaintainer { name, member }) => {
            AdminRequest::ToolRemoveMaintainer { tool: name, member }
        }
        AdminCommand::Creds(CredsCommand::Regenerate { name }) => {
            AdminRequest::CredsRegenerate { name }
        }
        AdminCommand::Creds(CredsCommand::Renew) => AdminRequest::CredsRenew,
        AdminCommand::Token(TokenCommand::Create {
            name,
            scope,
            expires,
        }) => AdminRequest::TokenCreate {
            name,
            scope,
            expires_in_secs: match expires {
                Some(text) => Some(
                    crate::config::parse_duration(&text)
                        .map_err(|err| format!("invalid --expires: {err:#}"))?
                        .as_secs(),
                ),
                None => None,
            },
        },
        AdminCommand::Token(TokenCommand::List) => AdminRequest::TokenList,
        AdminCommand::Token(TokenCommand::Revoke { id }) => AdminRequest::TokenRevoke { id },
        AdminCommand::Secrets(SecretsCommand::RotateKey) => AdminRequest::SecretsRotateKey,
        AdminCommand::Quota(QuotaCommand::Show { tool }) => AdminRequest::QuotaShow { tool },
        AdminCommand::Quota(QuotaCommand::Set { tool, values }) => AdminRequest::QuotaSet {
            tool,
            values: crate::admin_quota::split_assignments(values)?,
        },
        AdminCommand::Quota(QuotaCommand::Reset { tool, keys }) => {
            AdminRequest::QuotaReset { tool, keys }
        }
        AdminCommand::BanIp(args) => crate::admin_procedures::ban_request(args)?,
        AdminCommand::UnbanIp(args) => AdminRequest::UnbanIp {
            network: args.network,
        },
        AdminCommand::Bans => AdminRequest::Bans,
        AdminCommand::Audit(args) => crate::admin_procedures::audit_request(args)?,
        AdminCommand::WebStats(args) => crate::admin_web_stats::request(args)?,
        AdminCommand::User(UserCommand::SetAdmin { name, admin }) => {
            AdminRequest::UserSetAdmin { name, admin }
        }
        AdminCommand::User(UserCommand::Lock { name, reason }) => {
            AdminRequest::UserLock { name, reason }
        }
        AdminCommand::User(UserCommand::Unlock { name }) => AdminRequest::UserUnlock { name },
        AdminCommand::Tool(ToolCommand::Disable { name, reason }) => {
            AdminRequest::ToolDisable { name, reason }
        }
        AdminCommand::Tool(ToolCommand::Enable { name }) => AdminRequest::ToolEnable { name },
    })
}

fn exchange(socket: &std::path::Path, request: &AdminRequest) -> anyhow::Result<AdminResponse> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    stream.write_all(&serde_json::to_vec(request)?)?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf)?;
    Ok(serde_json::from_slice(&buf)?)
}

fn render(request: &AdminRequest, value: &serde_json::Value) -> String {
    if let Some(text) = crate::admin_procedures::render(request, value) {
        return text;
    }
    let parse = |value: &serde_json::Value| value.clone();
    match request {
        AdminRequest::UserCreate { .. } | AdminRequest::UserShow { .. } => {
            match serde_json::from_value::<UserView>(parse(value)) {
                Ok(user) => render_user(&user),
                Err(_) => format!("{value}\n"),
            }
        }
        AdminRequest::UserList => match serde_json::from_value::<Vec<UserView>>(parse(value)) {
            Ok(users) => table(
                &["NAME", "EMAIL", "ADMIN", "TOOLS", "CERT EXPIRES"],
                users
                    .iter()
                    .map(|user| {
                        vec![
                            user.name.clone(),
                            user.email.clone(),
                            yes_no(user.admin),
                            user.tools.join(","),
                            user.certificate
                                .as_ref()
                                .map_or("-".to_owned(), |c| c.not_after.clone()),
                        ]
                    })
                    .collect(),
            ),
            Err(_) => format!("{value}\n"),
        },
        AdminRequest::UserKubeconfig { .. } => {
            match serde_json::from_value::<Kubeconfig>(parse(value)) {
                Ok(config) => config.kubeconfig,
                Err(_) => format!("{value}\n"),
            }
        }
        AdminRequest::ToolCreate { .. } | AdminRequest::ToolShow { .. } => {
            match serde_json::from_value::<ToolView>(parse(value)) {
                Ok(tool) => render_tool(&tool),
                Err(_) => format!("{value}\n"),
            }
        }
        AdminRequest::ToolList => match serde_json::from_value::<Vec<ToolView>>(parse(value)) {
            Ok(tools) => table(
                &["NAME", "UID", "STATUS", "MAINTAINERS", "TITLE"],
                tools
                    .iter()
                    .map(|tool| {
                        vec![
                            tool.name.clone(),
                            tool.uid.to_string(),
                            tool.status.clone(),
                            tool.maintainers
                                .iter()
                                .map(|m| m.name.as_str())
                                .collect::<Vec<_>>()
                                .join(","),
                            tool.title.clone(),
                        ]
                    })
                    .collect(),
            ),
            Err(_) => format!("{value}\n"),
        },
        AdminRequest::ToolDelete { .. } => {
            match serde_json::from_value::<ToolDeleted>(parse(value)) {
                Ok(deleted) => format!(
                    "Deleted tool {}; its home was archived to {}\n",
                    deleted.name, deleted.archive
                ),
                Err(_) => format!("{value}\n"),
            }
        }
        AdminRequest::ToolAddMaintainer { member, .. }
        | AdminRequest::ToolRemoveMaintainer { member, .. } => {
            match serde_json::from_value::<MaintainersChanged>(parse(value)) {
                Ok(change) => {
                    let verb = match (request, change.changed) {
                        (AdminRequest::ToolAddMaintainer { .. }, true) => "Added",
                        (AdminRequest::ToolAddMaintainer { .. }, false) => "Already a maintainer:",
                        _ => "Removed",
                    };
                    let names: Vec<_> = change
                        .maintainers
                        .iter()
                        .map(|m| format!("{} ({})", m.name, m.kind))
                        .collect();
                    format!(
                        "{verb} {member}. Maintainers of {}: {}\n",
                        change.tool,
                        names.join(", ")
                    )
                }
                Err(_) => format!("{value}\n"),
            }
        }
        AdminRequest::CredsRegenerate { .. } => {
            match serde_json::from_value::<CredsRegenerated>(parse(value)) {
                Ok(done) => format!(
                    "Regenerated the certificate of {} {} (serial {}, expires {}); the old one is refused from now on.\n",
                    done.kind, done.name, done.certificate.serial, done.certificate.not_after
                ),
                Err(_) => format!("{value}\n"),
            }
        }
        AdminRequest::CredsRenew => match serde_json::from_value::<CredsRenewed>(parse(value)) {
            Ok(report) if report.renewed.is_empty() && report.failed.is_empty() => {
                "No certificate is due for renewal.\n".to_owned()
            }
            Ok(report) => {
                let mut out = String::new();
                for name in report.renewed {
                    out.push_str(&format!("renewed: {name}\n"));
                }
                for failure in report.failed {
                    out.push_str(&format!("failed: {failure}\n"));
                }
                out
            }
            Err(_) => format!("{value}\n"),
        },
        AdminRequest::TokenCreate { .. } => {
            match serde_json::from_value::<TokenCreated>(parse(value)) {
                Ok(created) => format!(
                    "token: {}\nid {} acts as {} with scope {}{}. The token is shown only this once.\n",
                    created.token,
                    created.id,
                    created.subject,
                    created.scope,
                    created
                        .expires_at
                        .map(|at| format!(", expires {at}"))
                        .unwrap_or_default()
                ),
                Err(_) => format!("{value}\n"),
            }
        }
        AdminRequest::TokenList => match serde_json::from_value::<Vec<TokenView>>(parse(value)) {
            Ok(tokens) => table(
                &["ID", "SUBJECT", "KIND", "SCOPE", "EXPIRES", "REVOKED"],
                tokens
                    .into_iter()
                    .map(|token| {
                        vec![
                            token.id,
                            token.subject,
                            token.kind,
                            token.scope,
                            token.expires_at.unwrap_or_else(|| "never".to_owned()),
                            token.revoked_at.unwrap_or_else(|| "-".to_owned()),
                        ]
                    })
                    .collect(),
            ),
            Err(_) => format!("{value}\n"),
        },
        AdminRequest::TokenRevoke { id } => format!("Revoked token {id}.\n"),
        AdminRequest::SecretsRotateKey => render_rotation(value),
        AdminRequest::QuotaShow { .. }
        | AdminRequest::QuotaSet { .. }
        | AdminRequest::QuotaReset { .. } => crate::admin_quota::render(request, value),
        // Rendered by admin_procedures above.
        AdminRequest::UserSetAdmin { .. }
        | AdminRequest::UserLock { .. }
        | AdminRequest::UserUnlock { .. }
        | AdminRequest::ToolDisable { .. }
        | AdminRequest::ToolEnable { .. }
        | AdminRequest::BanIp { .. }
        | AdminRequest::UnbanIp { .. }
        | AdminRequest::Bans
        | AdminRequest::Audit { .. } => format!("{value}\n"),
        AdminRequest::WebStats { .. } => crate::admin_web_stats::render(value),
    }
}

fn render_rotation(value: &serde_json::Value) -> String {
    let Ok(rotated) = serde_json::from_value::<KeyRotated>(value.clone()) else {
        return format!("{value}\n");
    };
    let retired: Vec<String> = rotated.retired.iter().map(u32::to_string).collect();
    let retired = if retired.is_empty() {
        "none".to_owned()
    } else {
        retired.join(", ")
    };
    let mut out = format!(
        "Key {} is now active: {} envvar values re-encrypted; retired keys: {retired}.\n",
        rotated.key_id, rotated.reencrypted
    );
    for failure in rotated.unreadable {
        out.push_str(&format!("not re-encrypted: {failure}\n"));
    }
    out
}

fn render_user(user: &UserView) -> String {
    let mut rows = vec![
        ("Name", user.name.clone()),
        ("E-mail", user.email.clone()),
        ("Admin", yes_no(user.admin)),
        (
            "Locked",
            user.locked_at
                .as_ref()
                .map_or_else(|| "no".to_owned(), |at| format!("since {at}")),
        ),
        ("Created", user.created_at.clone()),
        (
            "Tools",
            if user.tools.is_empty() {
                "-".to_owned()
            } else {
                user.tools.join(", ")
            },
        ),
    ];
    if let Some(cert) = &user.certificate {
        rows.push((
            "Certificate",
            format!("serial {} expires {}", cert.serial, cert.not_after),
        ));
    }
    let mut out = fields(&rows);
    if let Some(password) = &user.password {
        out.push_str(&format!("password: {password}\n"));
    }
    out
}

fn render_tool(tool: &ToolView) -> String {
    let maintainers: Vec<_> = tool
        .maintainers
        .iter()
        .map(|m| format!("{} ({})", m.name, m.kind))
        .collect();
    let mut rows = vec![
        ("Name", tool.name.clone()),
        ("Uid/gid", format!("{}/{}", tool.uid, tool.gid)),
        ("Status", tool.status.clone()),
        ("Title", tool.title.clone()),
        ("Description", tool.description.clone()),
        ("Home", tool.home.clone()),
        ("Maintainers", maintainers.join(", ")),
        ("Created", tool.created_at.clone()),
    ];
    if let Some(disabled) = &tool.disabled {
        let reason = if disabled.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", disabled.reason)
        };
        rows.push((
            "Disabled",
            format!(
                "at {} by {}{reason}",
                disabled.disabled_at, disabled.disabled_by
            ),
        ));
        rows.push(("Archive at", disabled.archive_at.clone()));
        rows.push(("Delete at", disabled.delete_at.clone()));
    }
    if let Some(cert) = &tool.certificate {
        rows.push((
            "Certificate",
            format!("serial {} expires {}", cert.serial, cert.not_after),
        ));
    }
    fields(&rows)
}

fn fields(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(key, value)| format!("{key:<width$}  {value}\n"))
        .collect()
}

pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (idx, cell) in row.iter().enumerate() {
            widths[idx] = widths[idx].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("{}\n", text.join("  ").trim_end())
    };
    let mut out = line(headers.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}
