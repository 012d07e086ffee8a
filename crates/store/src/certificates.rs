//! The register of issued client certificates.
//!
//! The gateway looks a presented certificate up here by serial on every request:
//! a revoked (regenerated away) certificate is refused at once, a superseded
//! (renewed) one is accepted until it expires.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use crate::{PrincipalKind, Result, Store, from_unix, to_unix};

/// Where a certificate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// The current certificate of its subject.
    Active,
    /// Replaced by routine renewal; valid until it expires.
    Superseded,
    /// Regenerated away (or its tool deleted); refused at once.
    Revoked,
}

impl CertStatus {
    fn as_str(self) -> &'static str {
        match self {
            CertStatus::Active => "active",
            CertStatus::Superseded => "superseded",
            CertStatus::Revoked => "revoked",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "active" => CertStatus::Active,
            "superseded" => CertStatus::Superseded,
            _ => CertStatus::Revoked,
        }
    }
}

/// A certificate the CA issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRecord {
    /// Serial number, lowercase hex.
    pub serial: String,
    /// The tool or user name (the certificate's CN).
    pub subject: String,
    /// Tool or user.
    pub kind: PrincipalKind,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Active, superseded or revoked.
    pub status: CertStatus,
}

/// A freshly issued certificate to record.
#[derive(Debug, Clone)]
pub struct NewCert<'a> {
    /// Serial number, lowercase hex.
    pub serial: &'a str,
    /// The tool or user name.
    pub subject: &'a str,
    /// Tool or user.
    pub kind: PrincipalKind,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Issue time.
    pub now: OffsetDateTime,
}

impl Store {
    /// Records a new active certificate for its subject and marks the subject's
    /// earlier active certificates `superseded` (renewal) or `revoked` (regeneration).
    pub async fn record_certificate(&self, new: NewCert<'_>, previous: CertStatus) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE certificates SET status = ? WHERE subject = ? AND kind = ? AND status = 'active'",
        )
        .bind(previous.as_str())
        .bind(new.subject)
        .bind(new.kind.as_str())
        .execute(&mut *tx)
        .await?;
        if previous == CertStatus::Revoked {
            // Regeneration also ends the grace of earlier renewals.
            sqlx::query(
                "UPDATE certificates SET status = 'revoked' WHERE subject = ? AND kind = ? AND status = 'superseded'",
            )
            .bind(new.subject)
            .bind(new.kind.as_str())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO certificates (serial, subject, kind, not_before, not_after, status, issued_at) VALUES (?, ?, ?, ?, ?, 'active', ?)",
        )
        .bind(new.serial)
        .bind(new.subject)
        .bind(new.kind.as_str())
        .bind(to_unix(new.not_before))
        .bind(to_unix(new.not_after))
        .bind(to_unix(new.now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The certificate with this serial.
    pub async fn certificate(&self, serial: &str) -> Result<Option<CertRecord>> {
        let row = sqlx::query(
            "SELECT serial, subject, kind, not_before, not_after, status FROM certificates WHERE serial = ?",
        )
        .bind(serial)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(cert_from_row))
    }

    /// The active certificate of a subject.
    pub async fn active_certificate(
        &self,
        subject: &str,
        kind: PrincipalKind,
    ) -> Result<Option<CertRecord>> {
        let row = sqlx::query(
            "SELECT serial, subject, kind, not_before, not_after, status FROM certificates WHERE subject = ? AND kind = ? AND status = 'active' ORDER BY issued_at DESC LIMIT 1",
        )
        .bind(subject)
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(cert_from_row))
    }

    /// Active certificates that end before `before`: the ones renewal must replace.
    pub async fn certificates_expiring_before(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<CertRecord>> {
        let rows = sqlx::query(
            "SELECT serial, subject, kind, not_before, not_after, status FROM certificates WHERE status = 'active' AND not_after < ? ORDER BY not_after",
        )
        .bind(to_unix(before))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(cert_from_row).collect())
    }

    /// Marks every certificate of a subject revoked.
    pub async fn revoke_certificates(&self, subject: &str, kind: PrincipalKind) -> Result<()> {
        sqlx::query("UPDATE certificates SET status = 'revoked' WHERE subject = ? AND kind = ?")
            .bind(subject)
            .bind(kind.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn cert_from_row(row: &SqliteRow) -> CertRecord {
    let kind: &str = row.get(2);
    CertRecord {
        serial: row.get(0),
        subject: row.get(1),
        kind: if kind == "tool" {
            PrincipalKind::Tool
        } else {
            PrincipalKind::User
        },
        not_before: from_unix(row.get(3)),
        not_after: from_unix(row.get(4)),
        status: CertStatus::parse(row.get::<&str, _>(5)),
    }
}
