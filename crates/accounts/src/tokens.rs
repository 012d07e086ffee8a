//! Scoped bearer tokens for clients without a certificate (e.g. deploy tokens).
//!
//! A token reads `tft_<id>_<secret>`; the store keeps the id and a SHA-256 of the
//! secret, so a leaked database does not leak usable tokens.

use base64::Engine;
use store::TokenRecord;

use crate::{Accounts, InvalidName, Result};

/// The services a token may be scoped to; `all` covers every one.
pub const SCOPES: &[&str] = &["all", "jobs", "envvars", "builds", "components", "logs"];

/// Why a presented token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    #[error("the bearer token is malformed")]
    Malformed,
    #[error("the bearer token is not known to this platform")]
    Unknown,
    #[error("the bearer token was revoked")]
    Revoked,
    #[error("the bearer token expired at {0}")]
    Expired(String),
}

/// Checks a scope list such as `jobs,logs`; returns it normalized.
pub fn validate_scope(scope: &str) -> Result<String, InvalidName> {
    let mut parts: Vec<&str> = scope
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    parts.sort_unstable();
    parts.dedup();
    if parts.is_empty() || parts.iter().any(|part| !SCOPES.contains(part)) {
        return Err(InvalidName(format!(
            "invalid token scope '{scope}': a scope is a comma-separated list of {}",
            SCOPES.join(", ")
        )));
    }
    if parts.contains(&"all") {
        return Ok("all".to_owned());
    }
    Ok(parts.join(","))
}

/// Whether `scope` covers `service`.
pub fn scope_covers(scope: &str, service: &str) -> bool {
    scope
        .split(',')
        .any(|part| part == "all" || part == service)
}

impl Accounts {
    /// Issues a token acting as `subject`; returns its record and its text, which is
    /// shown once and never stored.
    pub async fn create_token(
        &self,
        subject: &str,
        scope: &str,
        expires_in: Option<time::Duration>,
    ) -> Result<(TokenRecord, String)> {
        let scope = validate_scope(scope)?;
        let kind =
            self.store()
                .principal_kind(subject)
                .await?
                .ok_or_else(|| store::Error::NotFound {
                    what: "user or tool",
                    name: subject.to_owned(),
                })?;
        let id_bytes: [u8; 8] = rand::random();
        let id: String = id_bytes.iter().map(|b| format!("{b:02x}")).collect();
        let secret_bytes: [u8; 32] = rand::random();
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret_bytes);
        let now = self.now();
        let record = TokenRecord {
            id: id.clone(),
            subject: subject.to_owned(),
            kind,
            scope,
            secret_hash: hash(&secret),
            created_at: now,
            expires_at: expires_in.map(|duration| now + duration),
            revoked_at: None,
        };
        self.store().create_token(&record).await?;
        Ok((record, format!("tft_{id}_{secret}")))
    }

    /// The token record behind a presented token text, if it is valid now.
    pub async fn verify_token(&self, text: &str) -> Result<Result<TokenRecord, TokenRefusal>> {
        let Some((id, secret)) = text
            .strip_prefix("tft_")
            .and_then(|rest| rest.split_once('_'))
        else {
            return Ok(Err(TokenRefusal::Malformed));
        };
        let Some(record) = self.store().token(id).await? else {
            return Ok(Err(TokenRefusal::Unknown));
        };
        if !constant_time_eq(&record.secret_hash, &hash(secret)) {
            return Ok(Err(TokenRefusal::Unknown));
        }
        if record.revoked_at.is_some() {
            return Ok(Err(TokenRefusal::Revoked));
        }
        if let Some(expires_at) = record.expires_at
            && expires_at <= self.now()
        {
            let text = expires_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            return Ok(Err(TokenRefusal::Expired(text)));
        }
        Ok(Ok(record))
    }

    /// Revokes a token by id.
    pub async fn revoke_token(&self, id: &str) -> Result<()> {
        Ok(self.store().revoke_token(id, self.now()).await?)
    }
}

fn hash(secret: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_normalized_and_unknown_ones_refused() {
        assert_eq!(validate_scope("logs,jobs,jobs").unwrap(), "jobs,logs");
        assert_eq!(validate_scope("jobs,all").unwrap(), "all");
        assert!(validate_scope("").is_err());
        assert!(
            validate_scope("jobs,root")
                .unwrap_err()
                .0
                .contains("comma-separated list")
        );
        assert!(scope_covers("jobs,logs", "logs"));
        assert!(!scope_covers("jobs,logs", "envvars"));
        assert!(scope_covers("all", "envvars"));
    }
}
