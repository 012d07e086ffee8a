//! The admin protocol: one JSON request and one JSON response per connection on
//! `<data-dir>/run/admin.sock`.

use serde::{Deserialize, Serialize};

/// A request from `toolforged admin` to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum AdminRequest {
    /// `user create NAME --email EMAIL [--admin] [--password-stdin]`.
    UserCreate {
        name: String,
        email: String,
        admin: bool,
        /// `None`: the daemon generates one and returns it.
        password: Option<String>,
    },
    /// `user list`.
    UserList,
    /// `user show NAME`.
    UserShow { name: String },
    /// `user kubeconfig NAME --tool TOOL`.
    UserKubeconfig { name: String, tool: String },
    /// `user set-admin NAME true|false`.
    UserSetAdmin { name: String, admin: bool },
    /// `user lock NAME [--reason TEXT]`: the user's certificate and tokens are refused.
    UserLock { name: String, reason: String },
    /// `user unlock NAME`.
    UserUnlock { name: String },
    /// `tool create NAME --maintainer USER [--title T] [--description D]`.
    ToolCreate {
        name: String,
        maintainer: String,
        title: String,
        description: String,
    },
    /// `tool list`.
    ToolList,
    /// `tool show NAME`.
    ToolShow { name: String },
    /// `tool delete NAME`.
    ToolDelete { name: String },
    /// `tool add-maintainer NAME USER_OR_TOOL`.
    ToolAddMaintainer { tool: String, member: String },
    /// `tool remove-maintainer NAME USER_OR_TOOL`.
    ToolRemoveMaintainer { tool: String, member: String },
    /// `tool disable NAME [--reason TEXT]`: everything stops, credentials are refused,
    /// archive and deletion are scheduled 40 days later.
    ToolDisable { name: String, reason: String },
    /// `tool enable NAME`.
    ToolEnable { name: String },
    /// `ban-ip ADDR|CIDR --reason TEXT`.
    BanIp { network: String, reason: String },
    /// `unban-ip ADDR|CIDR`.
    UnbanIp { network: String },
    /// `bans`.
    Bans,
    /// `audit [--since DURATION] [--actor A] [--target T] [--limit N]`.
    Audit {
        /// Only records of the last this many seconds.
        since_secs: Option<u64>,
        actor: Option<String>,
        target: Option<String>,
        limit: Option<u32>,
    },
    /// `creds regenerate TOOL_OR_USER`.
    CredsRegenerate { name: String },
    /// `creds renew`: renew what is due now (the daemon also does this on its own).
    CredsRenew,
    /// `token create TOOL_OR_USER [--scope SCOPE] [--expires DURATION]`.
    TokenCreate {
        name: String,
        scope: String,
        /// Lifetime in seconds; `None` for a token that does not expire.
        expires_in_secs: Option<u64>,
    },
    /// `token list`.
    TokenList,
    /// `token revoke ID`.
    TokenRevoke { id: String },
    /// `secrets rotate-key`: a new envvars key; every value re-encrypted with it.
    SecretsRotateKey,
    /// `quota show TOOL`.
    QuotaShow { tool: String },
    /// `quota set TOOL KEY=VALUE…`: every pair is checked before any is stored.
    QuotaSet {
        tool: String,
        values: Vec<QuotaAssignment>,
    },
    /// `quota reset TOOL KEY…`: the keys get their defaults again.
    QuotaReset { tool: String, keys: Vec<String> },
    /// `web-stats [--tool T] [--since DURATION]`: the front proxy's access log, summarised.
    WebStats {
        tool: Option<String>,
        /// Only requests of the last this many seconds; `None`: everything still logged.
        since_secs: Option<u64>,
    },
}

/// One `KEY=VALUE` of `quota set`, as typed (the daemon validates it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaAssignment {
    pub key: String,
    pub value: String,
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminResponse {
    /// Success, with the command's data.
    Ok(serde_json::Value),
    /// The request was refused or failed.
    Error(AdminError),
}

/// Why a request did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminError {
    /// The message for people; names the rule that was broken.
    pub message: String,
    /// True when the request was refused (bad input, not found, conflict): exit 1.
    /// False when the platform failed.
    pub refused: bool,
}

/// A certificate as the admin command shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateView {
    /// Serial number, hex.
    pub serial: String,
    /// RFC 3339.
    pub not_before: String,
    /// RFC 3339.
    pub not_after: String,
}

/// A user as the admin command shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub name: String,
    pub email: String,
    pub admin: bool,
    /// RFC 3339.
    pub created_at: String,
    /// The tools the user maintains directly.
    pub tools: Vec<String>,
    pub certificate: Option<CertificateView>,
    /// RFC 3339, when an admin locked the account; absent when it is not locked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_at: Option<String>,
    /// Only on `user create` without `--password-stdin`: the generated password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A maintainer of a tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub name: String,
    /// `user` or `tool`.
    pub kind: String,
}

/// A tool as the admin command shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolView {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub title: String,
    pub description: String,
    /// `active` or `disabled`.
    pub status: String,
    /// RFC 3339.
    pub created_at: String,
    pub home: String,
    pub maintainers: Vec<MemberView>,
    pub certificate: Option<CertificateView>,
    /// For a disabled tool: why, by whom, and when it is archived and deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<DisabledView>,
}

/// A disabled tool's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisabledView {
    pub reason: String,
    pub disabled_by: String,
    /// RFC 3339.
    pub disabled_at: String,
    /// RFC 3339: when the home is archived.
    pub archive_at: String,
    /// RFC 3339: when the tool is deleted.
    pub delete_at: String,
}

/// A banned network of the front proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanView {
    /// Canonical CIDR form (`203.0.113.7/32`, `2001:db8::/32`).
    pub network: String,
    pub reason: String,
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
}

/// One record of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntryView {
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    /// `unix:<user>` through the admin socket, the user name through the dashboard,
    /// `toolforged` for the daemon's scheduled actions.
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// The answer to `tool delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolDeleted {
    pub name: String,
    /// Where the home was archived.
    pub archive: String,
}

/// The answer to `user kubeconfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kubeconfig {
    pub kubeconfig: String,
}

/// The answer to `creds regenerate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredsRegenerated {
    pub name: String,
    /// `user` or `tool`.
    pub kind: String,
    pub certificate: CertificateView,
}

/// The answer to `creds renew`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredsRenewed {
    pub renewed: Vec<String>,
    pub failed: Vec<String>,
}

/// The answer to maintainer changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintainersChanged {
    pub tool: String,
    /// False when nothing changed (already a maintainer).
    pub changed: bool,
    pub maintainers: Vec<MemberView>,
}

/// A bearer token as the admin command lists it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: String,
    /// The tool or user the token acts as.
    pub subject: String,
    /// `user` or `tool`.
    pub kind: String,
    /// Services covered: a comma-separated list, or `all`.
    pub scope: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, or absent for a token that does not expire.
    pub expires_at: Option<String>,
    /// RFC 3339, when revoked.
    pub revoked_at: Option<String>,
}

/// The answer to `secrets rotate-key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotated {
    /// The new active key's id.
    pub key_id: u32,
    /// How many values were re-encrypted with it.
    pub reencrypted: u64,
    /// Old keys deleted because no value refers to them any more.
    pub retired: Vec<u32>,
    /// Values that could not be re-encrypted (`tool/NAME: reason`); their keys are kept.
    pub unreadable: Vec<String>,
}

/// The answer to `token create`: the token text is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCreated {
    pub id: String,
    pub token: String,
    pub subject: String,
    pub scope: String,
    pub expires_at: Option<String>,
}

/// The answer to `quota show`, `quota set` and `quota reset`: every key of the tool's
/// quota, in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaView {
    pub tool: String,
    pub quota: Vec<QuotaEntryView>,
    /// The keys this request changed (`set`, `reset`); empty for `show`.
    #[serde(default)]
    pub changed: Vec<String>,
}

/// One key of a tool's quota; values as Kubernetes writes them (`10`, `500m`, `4Gi`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaEntryView {
    pub key: String,
    pub default: String,
    /// The admin's override, if any.
    #[serde(rename = "override")]
    pub override_value: Option<String>,
    /// What applies: the override, else the default.
    pub effective: String,
}

/// The answer to `web-stats`: the front proxy's access log summarised, as goaccess would.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebStats {
    /// The tool asked for, if any.
    pub tool: Option<String>,
    /// RFC 3339: the start of the period; `None` when everything still logged counts.
    pub since: Option<String>,
    /// RFC 3339: the first and last request counted.
    pub first: Option<String>,
    pub last: Option<String>,
    pub requests: u64,
    /// Distinct client addresses.
    pub unique_clients: u64,
    /// Response bytes sent to clients (bodies).
    pub bytes_sent: u64,
    /// Median and 99th percentile of the request duration, milliseconds.
    pub duration_p50_ms: f64,
    pub duration_p99_ms: f64,
    /// Requests per status code, by code.
    pub statuses: Vec<WebStatsCount>,
    /// The most requested paths (without query), most first.
    pub top_paths: Vec<WebStatsCount>,
    /// The clients that sent the most requests, most first.
    pub top_clients: Vec<WebStatsCount>,
    /// The tools that got the most requests, most first (requests for no tool are `-`).
    pub top_tools: Vec<WebStatsCount>,
}

/// One row of a [`WebStats`] table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebStatsCount {
    pub key: String,
    pub requests: u64,
}
