//! Bearer tokens: an id, a hash of the secret, a subject and a scope.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use crate::{Error, PrincipalKind, Result, Store, from_unix, to_unix};

/// A stored token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Public identifier, part of the token text.
    pub id: String,
    /// The tool or user the token acts as.
    pub subject: String,
    /// Tool or user.
    pub kind: PrincipalKind,
    /// Services the token may use, comma-separated, or `all`.
    pub scope: String,
    /// Hash of the secret part.
    pub secret_hash: Vec<u8>,
    /// Issue time.
    pub created_at: OffsetDateTime,
    /// End of validity, if any.
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
}

impl Store {
    /// Stores a new token.
    pub async fn create_token(&self, token: &TokenRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO tokens (id, subject, kind, scope, secret_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&token.id)
        .bind(&token.subject)
        .bind(token.kind.as_str())
        .bind(&token.scope)
        .bind(&token.secret_hash)
        .bind(to_unix(token.created_at))
        .bind(token.expires_at.map(to_unix))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The token with this id.
    pub async fn token(&self, id: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT id, subject, kind, scope, secret_hash, created_at, expires_at, revoked_at FROM tokens WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(token_from_row))
    }

    /// Every token, newest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>> {
        let rows = sqlx::query(
            "SELECT id, subject, kind, scope, secret_hash, created_at, expires_at, revoked_at FROM tokens ORDER BY created_at DESC, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(token_from_row).collect())
    }

    /// Revokes a token; refusing an unknown id.
    pub async fn revoke_token(&self, id: &str, now: OffsetDateTime) -> Result<()> {
        let res =
            sqlx::query("UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
                .bind(to_unix(now))
                .bind(id)
                .execute(&self.pool)
                .await?;
        if res.rows_affected() == 0 {
            return Err(Error::NotFound {
                what: "token",
                name: id.to_owned(),
            });
        }
        Ok(())
    }

    /// Revokes every token of a subject (used when a tool is deleted).
    pub async fn revoke_tokens_of(&self, subject: &str, now: OffsetDateTime) -> Result<()> {
        sqlx::query("UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE subject = ?")
            .bind(to_unix(now))
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn token_from_row(row: &SqliteRow) -> TokenRecord {
    let kind: &str = row.get(2);
    TokenRecord {
        id: row.get(0),
        subject: row.get(1),
        kind: if kind == "tool" {
            PrincipalKind::Tool
        } else {
            PrincipalKind::User
        },
        scope: row.get(3),
        secret_hash: row.get(4),
        created_at: from_unix(row.get(5)),
        expires_at: row.get::<Option<i64>, _>(6).map(from_unix),
        revoked_at: row.get::<Option<i64>, _>(7).map(from_unix),
    }
}
