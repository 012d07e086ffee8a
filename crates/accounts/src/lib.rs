//! Users, tools and maintainers, and what maintain-kubeusers does for them.
//!
//! Creating a tool validates its name, stores it with a fresh uid, lays out its home
//! ([`home`]) and issues its client certificate; deleting one archives the home.
//! Certificates are renewed before they expire ([`Accounts::renew_due`], driven by an
//! injected [`Clock`]) and regenerated on request, which refuses the old one at once.
//!
//! Architecture Invariant: the store is written before files are, and a failure while
//! provisioning leaves a record an admin can see and repair, never a half-made tool
//! that silently works.

pub mod files;
pub mod home;
pub mod names;
pub mod password;
pub mod tokens;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pki::{CertificateAuthority, IssuedCert, SubjectKind};
use store::{CertStatus, NewCert, NewTool, NewUser, PrincipalKind, Store, Tool, User};
use time::OffsetDateTime;

use crate::files::{Owner, ensure_dir, write_atomic};
use crate::home::ToolHome;
pub use crate::names::InvalidName;

/// Errors of account management.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name or address broke a rule; the message states the rule.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A user asked for a tool they do not maintain.
    #[error("user '{user}' does not maintain tool '{tool}'")]
    NotMaintainer { user: String, tool: String },
    /// The certificate authority failed.
    #[error("certificate authority")]
    Pki(#[from] pki::Error),
    /// A file could not be written or read.
    #[error("while {context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the request was refused (bad input, not found, conflict) rather than
    /// failing inside the platform.
    pub fn is_refusal(&self) -> bool {
        match self {
            Error::InvalidName(_) | Error::NotMaintainer { .. } => true,
            Error::Store(err) => matches!(
                err,
                store::Error::NameTaken { .. }
                    | store::Error::NotFound { .. }
                    | store::Error::Conflict(_)
            ),
            Error::Pki(_) | Error::Io { .. } => false,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// A source of the current time, injected so renewal can be tested without waiting.
pub trait Clock: Send + Sync {
    /// The current time in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// How accounts are provisioned.
#[derive(Debug, Clone)]
pub struct AccountsConfig {
    /// The daemon's data directory (users' certificates, archives).
    pub data_dir: PathBuf,
    /// Where tool homes live.
    pub homes_dir: PathBuf,
    /// The API URL written into tool homes.
    pub public_api_url: String,
    /// Lifetime of client certificates.
    pub cert_validity: time::Duration,
    /// Renew a certificate when less than this remains.
    pub renew_before: time::Duration,
    /// Whether to chown homes to the tool (only possible as root).
    pub set_ownership: bool,
}

/// Account management: the maintain-kubeusers of this platform.
pub struct Accounts {
    store: Store,
    ca: Arc<CertificateAuthority>,
    config: AccountsConfig,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What renewal did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RenewalReport {
    /// Names whose certificates were renewed.
    pub renewed: Vec<String>,
    /// Names whose renewal failed, with the reason.
    pub failed: Vec<(String, String)>,
}

impl Accounts {
    /// Account management over `store`, signing with `ca`.
    pub fn new(
        store: Store,
        ca: Arc<CertificateAuthority>,
        config: AccountsConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            ca,
            config,
            clock,
        }
    }

    /// The store behind the accounts.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The platform CA.
    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    /// The provisioning configuration.
    pub fn config(&self) -> &AccountsConfig {
        &self.config
    }

    /// The current time of the injected clock.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The home of a tool.
    pub fn tool_home(&self, tool: &str) -> ToolHome {
        ToolHome::new(&self.config.homes_dir, tool)
    }

    /// Where a user's certificate and key are kept.
    pub fn user_dir(&self, user: &str) -> PathBuf {
        self.config.data_dir.join("users").join(user)
    }

    /// Creates a user with a client certificate.
    pub async fn create_user(
        &self,
        name: &str,
        email: &str,
        password: &str,
        is_admin: bool,
    ) -> Result<User> {
        names::validate_user_name(name)?;
        names::validate_email(email)?;
        let password = password.to_owned();
        let password_hash = tokio::task::spawn_blocking(move || password::hash_password(&password))
            .await
            .map_err(|err| io("hashing a password")(std::io::Error::other(err)))?;
        let user = self
            .store
            .create_user(NewUser {
                name,
                email,
                password_hash: &password_hash,
                is_admin,
                now: self.now(),
            })
            .await?;
        self.issue(PrincipalKind::User, name, CertStatus::Superseded)
            .await?;
        Ok(user)
    }

    /// Creates a tool maintained by `maintainer` and provisions its home and credentials.
    pub async fn create_tool(
        &self,
        name: &str,
        maintainer: &str,
        title: &str,
        description: &str,
    ) -> Result<Tool> {
        names::validate_tool_name(name)?;
        let tool = self
            .store
            .create_tool(NewTool {
                name,
                title,
                description,
                maintainer,
                now: self.now(),
            })
            .await?;
        let home = self.tool_home(name);
        home.create_dirs(self.owner(&tool))
            .map_err(io(format!("creating the home of tool '{name}'")))?;
        self.issue(PrincipalKind::Tool, name, CertStatus::Superseded)
            .await?;
        home.sync_toolforge_yaml(&self.config.public_api_url, self.owner(&tool))
            .map_err(io(format!("writing .toolforge.yaml of tool '{name}'")))?;
        Ok(tool)
    }

    /// Deletes a tool: its record and credentials go, its home is archived to
    /// `<data-dir>/archive/<tool>-<UTC timestamp>.tar.gz` and removed.
    /// Returns the archive's path.
    pub async fn delete_tool(&self, name: &str) -> Result<PathBuf> {
        let tool = self.store.delete_tool(name).await?;
        let archive_dir = self.config.data_dir.join("archive");
        ensure_dir(&archive_dir, 0o700, None).map_err(io("creating the archive directory"))?;
        let stamp = self
            .now()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap_or_else(|_| self.now().unix_timestamp().to_string());
        let archive = archive_dir.join(format!("{}-{stamp}.tar.gz", tool.name));
        let home = self.tool_home(name).root;
        let target = archive.clone();
        let tool_name = tool.name.clone();
        tokio::task::spawn_blocking(move || archive_home(&home, &tool_name, &target))
            .await
            .map_err(|err| io("archiving a tool home")(std::io::Error::other(err)))?
            .map_err(io(format!("archiving the home of tool '{name}'")))?;
        Ok(archive)
    }

    /// Issues a new certificate for a tool or user at once; the old one is refused
    /// from now on.
    pub async fn regenerate(&self, name: &str) -> Result<IssuedCert> {
        let kind =
            self.store
                .principal_kind(name)
                .await?
                .ok_or_else(|| store::Error::NotFound {
                    what: "user or tool",
                    name: name.to_owned(),
                })?;
        self.issue(kind, name, CertStatus::Revoked).await
    }

    /// Renews every active certificate that expires within the renewal margin.
    /// The old certificates stay valid until they expire, so running bots never break.
    pub async fn renew_due(&self) -> Result<RenewalReport> {
        let due = self
            .store
            .certificates_expiring_before(self.now() + self.config.renew_before)
            .await?;
        let mut report = RenewalReport::default();
        for cert in due {
            match self
                .issue(cert.kind, &cert.subject, CertStatus::Superseded)
                .await
            {
                Ok(_) => report.renewed.push(cert.subject),
                Err(err) => report.failed.push((cert.subject, format!("{err:#}"))),
            }
        }
        Ok(report)
    }

    /// A kubeconfig with `user`'s own certificate inline and namespace `tool-<tool>`,
    /// for a user who maintains `tool` (or an admin).
    pub async fn user_kubeconfig(&self, user: &str, tool: &str) -> Result<String> {
        let account = self
            .store
            .get_user(user)
            .await?
            .ok_or_else(|| store::Error::NotFound {
                what: "user",
                name: user.to_owned(),
            })?;
        if self.store.get_tool(tool).await?.is_none() {
            return Err(store::Error::NotFound {
                what: "tool",
                name: tool.to_owned(),
            }
            .into());
        }
        if !account.is_admin && !self.store.is_maintainer(tool, user).await? {
            return Err(Error::NotMaintainer {
                user: user.to_owned(),
                tool: tool.to_owned(),
            });
        }
        let dir = self.user_dir(user);
        let cert = std::fs::read_to_string(dir.join("client.crt"))
            .map_err(io(format!("reading the certificate of user '{user}'")))?;
        let key = std::fs::read_to_string(dir.join("client.key"))
            .map_err(io(format!("reading the key of user '{user}'")))?;
        Ok(home::inline_kubeconfig(
            tool,
            user,
            &self.config.public_api_url,
            self.ca.cert_pem(),
            &cert,
            &key,
        ))
    }

    /// At start: make every tool home point at the current public API URL, keeping
    /// the other keys of `.toolforge.yaml`. Returns the tools whose files changed and
    /// the ones that could not be updated, with the reason.
    pub async fn sync_tool_homes(&self) -> Result<(Vec<String>, Vec<(String, String)>)> {
        let mut changed = Vec::new();
        let mut failed = Vec::new();
        for tool in self.store.list_tools().await? {
            let home = self.tool_home(&tool.name);
            let owner = self.owner(&tool);
            let res = home
                .sync_toolforge_yaml(&self.config.public_api_url, owner)
                .and_then(|yaml_changed| {
                    let kubeconfig_current =
                        std::fs::read_to_string(home.kubeconfig()).is_ok_and(|text| {
                            text.contains(&format!("server: {}", self.config.public_api_url))
                        });
                    if !kubeconfig_current {
                        home.write_kubeconfig(
                            &tool.name,
                            &self.config.public_api_url,
                            self.ca.cert_pem(),
                            owner,
                        )?;
                    }
                    Ok(yaml_changed || !kubeconfig_current)
                });
            match res {
                Ok(true) => changed.push(tool.name),
                Ok(false) => {}
                Err(err) => failed.push((tool.name, err.to_string())),
            }
        }
        Ok((changed, failed))
    }

    fn owner(&self, tool: &Tool) -> Option<Owner> {
        self.config.set_ownership.then_some(Owner {
            uid: tool.uid,
            gid: tool.uid,
        })
    }

    /// Issues a certificate for `name`, writes it where its owner reads it and records
    /// it, marking the previous active one `previous`.
    async fn issue(
        &self,
        kind: PrincipalKind,
        name: &str,
        previous: CertStatus,
    ) -> Result<IssuedCert> {
        let subject_kind = match kind {
            PrincipalKind::Tool => SubjectKind::Tool,
            PrincipalKind::User => SubjectKind::User,
        };
        let issued =
            self.ca
                .issue_client(subject_kind, name, self.now(), self.config.cert_validity)?;
        match kind {
            PrincipalKind::Tool => {
                let tool =
                    self.store
                        .get_tool(name)
                        .await?
                        .ok_or_else(|| store::Error::NotFound {
                            what: "tool",
                            name: name.to_owned(),
                        })?;
                let home = self.tool_home(name);
                let owner = self.owner(&tool);
                home.write_credentials(&issued.cert_pem, &issued.key_pem, owner)
                    .map_err(io(format!("writing the credentials of tool '{name}'")))?;
                home.write_kubeconfig(name, &self.config.public_api_url, self.ca.cert_pem(), owner)
                    .map_err(io(format!("writing the kubeconfig of tool '{name}'")))?;
            }
            PrincipalKind::User => {
                let dir = self.user_dir(name);
                write_user_credentials(&dir, &issued)
                    .map_err(io(format!("writing the credentials of user '{name}'")))?;
            }
        }
        self.store
            .record_certificate(
                NewCert {
                    serial: &issued.serial,
                    subject: name,
                    kind,
                    not_before: issued.not_before,
                    not_after: issued.not_after,
                    now: self.now(),
                },
                previous,
            )
            .await?;
        Ok(issued)
    }
}

fn write_user_credentials(dir: &Path, issued: &IssuedCert) -> std::io::Result<()> {
    ensure_dir(dir, 0o700, None)?;
    write_atomic(
        &dir.join("client.key"),
        issued.key_pem.as_bytes(),
        0o600,
        None,
    )?;
    write_atomic(
        &dir.join("client.crt"),
        issued.cert_pem.as_bytes(),
        0o600,
        None,
    )?;
    Ok(())
}

fn archive_home(home: &Path, tool: &str, target: &Path) -> std::io::Result<()> {
    let tmp = target.with_extension("partial");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    builder.follow_symlinks(false);
    if home.exists() {
        builder.append_dir_all(tool, home)?;
    }
    let encoder = builder.into_inner()?;
    encoder.finish()?.sync_all()?;
    std::fs::rename(&tmp, target)?;
    if home.exists() {
        std::fs::remove_dir_all(home)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
