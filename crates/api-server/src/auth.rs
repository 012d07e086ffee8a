//! Per-request authentication: from the presented client certificate (or a bearer
//! token) to an [`Identity`].
//!
//! Checked on every request, never cached per connection, so keep-alive connections
//! and TLS resumption cannot outlive a regeneration: the certificate must be signed by
//! our CA, be within its validity, be registered and not revoked, and name an existing
//! tool or user of the right kind, and a user must not be locked (a disabled tool is
//! refused with 403 by `authz`, saying so).

use std::sync::Arc;

use accounts::Accounts;
use accounts::tokens::TokenRefusal;
use store::{CertStatus, PrincipalKind};

use crate::authz::Identity;

/// Who made the request and through which credential.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The acting identity.
    pub identity: Identity,
    /// For a bearer token: the services it covers; `None` for certificates (all).
    pub token_scope: Option<String>,
}

/// Why a request is unauthenticated (401), or the platform failed to decide (500).
#[derive(Debug)]
pub enum AuthFailure {
    /// 401 with this reason.
    Unauthenticated(String),
    /// The store failed.
    Internal(accounts::Error),
}

impl From<accounts::Error> for AuthFailure {
    fn from(err: accounts::Error) -> Self {
        AuthFailure::Internal(err)
    }
}

impl From<store::Error> for AuthFailure {
    fn from(err: store::Error) -> Self {
        AuthFailure::Internal(err.into())
    }
}

fn refuse(reason: impl Into<String>) -> AuthFailure {
    AuthFailure::Unauthenticated(reason.into())
}

/// Authenticates a request from its client certificate (DER) or `Authorization` header.
pub async fn authenticate(
    accounts: &Arc<Accounts>,
    certificate: Option<&[u8]>,
    authorization: Option<&str>,
) -> Result<Authenticated, AuthFailure> {
    if let Some(der) = certificate {
        return from_certificate(accounts, der).await;
    }
    if let Some(header) = authorization {
        let Some(token) = header.strip_prefix("Bearer ").map(str::trim) else {
            return Err(refuse("the Authorization header must be 'Bearer <token>'"));
        };
        return from_token(accounts, token).await;
    }
    Err(refuse(
        "no credentials: present the tool's client certificate (~/.toolskube/client.crt, as in ~/.kube/config) or a bearer token",
    ))
}

async fn from_certificate(
    accounts: &Arc<Accounts>,
    der: &[u8],
) -> Result<Authenticated, AuthFailure> {
    let info =
        pki::parse_der(der).map_err(|_| refuse("the client certificate could not be parsed"))?;
    if !accounts.ca().signed(der) {
        return Err(refuse(
            "the client certificate was not issued by this platform's certificate authority",
        ));
    }
    let now = accounts.now();
    let rfc3339 = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    if now > info.not_after {
        return Err(refuse(format!(
            "the client certificate expired at {}; the platform renews certificates in the tool's home (~/.toolskube)",
            rfc3339(info.not_after)
        )));
    }
    if now < info.not_before {
        return Err(refuse(format!(
            "the client certificate is not valid before {}",
            rfc3339(info.not_before)
        )));
    }
    let record = accounts
        .store()
        .certificate(&info.serial)
        .await?
        .ok_or_else(|| refuse("the client certificate is not registered with this platform"))?;
    if record.status == CertStatus::Revoked {
        return Err(refuse(format!(
            "the client certificate (serial {}) was regenerated and is no longer valid; use the new one in ~/.toolskube",
            info.serial
        )));
    }
    let expected_org = match record.kind {
        PrincipalKind::Tool => pki::TOOL_ORGANIZATION,
        PrincipalKind::User => pki::USER_ORGANIZATION,
    };
    if info.common_name.as_deref() != Some(record.subject.as_str())
        || info.organization.as_deref() != Some(expected_org)
    {
        return Err(refuse(
            "the client certificate's subject does not match its registration",
        ));
    }
    let identity = identity_of(accounts, record.kind, &record.subject).await?;
    Ok(Authenticated {
        identity,
        token_scope: None,
    })
}

async fn from_token(accounts: &Arc<Accounts>, token: &str) -> Result<Authenticated, AuthFailure> {
    let record = match accounts.verify_token(token).await? {
        Ok(record) => record,
        Err(
            refusal @ (TokenRefusal::Malformed
            | TokenRefusal::Unknown
            | TokenRefusal::Revoked
            | TokenRefusal::Expired(_)),
        ) => {
            return Err(refuse(refusal.to_string()));
        }
    };
    let identity = identity_of(accounts, record.kind, &record.subject).await?;
    Ok(Authenticated {
        identity,
        token_scope: Some(record.scope),
    })
}

async fn identity_of(
    accounts: &Arc<Accounts>,
    kind: PrincipalKind,
    name: &str,
) -> Result<Identity, AuthFailure> {
    let store = accounts.store();
    match kind {
        PrincipalKind::Tool => {
            let tool = store
                .get_tool(name)
                .await?
                .ok_or_else(|| refuse(format!("tool '{name}' no longer exists")))?;
            Ok(Identity::Tool {
                name: tool.name,
                disabled: tool.status == store::ToolStatus::Disabled,
            })
        }
        PrincipalKind::User => {
            let user = store
                .get_user(name)
                .await?
                .ok_or_else(|| refuse(format!("user '{name}' no longer exists")))?;
            // A locked user's certificate and tokens are refused, as a revoked one's.
            if user.locked_at.is_some() {
                return Err(refuse(format!(
                    "user '{name}' is locked by a Toolforge admin; its credentials cannot be used"
                )));
            }
            Ok(Identity::User {
                name: user.name,
                is_admin: user.is_admin,
            })
        }
    }
}
