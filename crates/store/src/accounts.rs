//! Users, tools, maintainers and uid allocation.
//!
//! Users and tools share one namespace (the `names` table), so a name is never both.
//! Tool uids come from a monotonic counter and are never reused.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use crate::{Error, Result, Store, from_unix, to_unix};

/// Whether a name belongs to a user or a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A developer account.
    User,
    /// A tool account.
    Tool,
}

impl PrincipalKind {
    /// The word stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Tool => "tool",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "tool" {
            PrincipalKind::Tool
        } else {
            PrincipalKind::User
        }
    }
}

impl std::fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A developer account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Shell name.
    pub name: String,
    /// Contact address.
    pub email: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// Whether the user is a platform admin.
    pub is_admin: bool,
    /// When the account was made.
    pub created_at: OffsetDateTime,
    /// When an admin locked the account; `None` when it is not locked. A locked user's
    /// certificate and tokens are refused and the dashboard refuses their log-in.
    pub locked_at: Option<OffsetDateTime>,
}

/// What is needed to make a user.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// Shell name, already validated.
    pub name: &'a str,
    /// Contact address, already validated.
    pub email: &'a str,
    /// Argon2 PHC string.
    pub password_hash: &'a str,
    /// Whether the user is a platform admin.
    pub is_admin: bool,
    /// Creation time.
    pub now: OffsetDateTime,
}

/// The state of a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolStatus {
    /// Runs and may act.
    Active,
    /// Stopped by an admin; its credentials are refused.
    Disabled,
}

impl ToolStatus {
    /// The word stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolStatus::Active => "active",
            ToolStatus::Disabled => "disabled",
        }
    }
}

/// A tool account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    /// Tool name.
    pub name: String,
    /// Unix uid and gid of the tool (equal, as on Toolforge).
    pub uid: u32,
    /// Short title.
    pub title: String,
    /// Longer description.
    pub description: String,
    /// Active or disabled.
    pub status: ToolStatus,
    /// When the tool was made.
    pub created_at: OffsetDateTime,
}

/// What is needed to make a tool.
#[derive(Debug, Clone)]
pub struct NewTool<'a> {
    /// Tool name, already validated.
    pub name: &'a str,
    /// Short title.
    pub title: &'a str,
    /// Longer description.
    pub description: &'a str,
    /// The first maintainer (a user or a tool); must exist.
    pub maintainer: &'a str,
    /// Creation time.
    pub now: OffsetDateTime,
}

impl Store {
    /// The kind of the principal named `name`, if any.
    pub async fn principal_kind(&self, name: &str) -> Result<Option<PrincipalKind>> {
        let row = sqlx::query("SELECT kind FROM names WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| PrincipalKind::parse(row.get::<&str, _>(0))))
    }

    /// Creates a user; refuses a name already taken by a user or a tool.
    pub async fn create_user(&self, new: NewUser<'_>) -> Result<User> {
        let mut tx = self.begin_write().await?;
        claim_name(&mut tx, new.name, PrincipalKind::User).await?;
        sqlx::query(
            "INSERT INTO users (name, email, password_hash, is_admin, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(new.name)
        .bind(new.email)
        .bind(new.password_hash)
        .bind(new.is_admin)
        .bind(to_unix(new.now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(User {
            name: new.name.to_owned(),
            email: new.email.to_owned(),
            password_hash: new.password_hash.to_owned(),
            is_admin: new.is_admin,
            created_at: from_unix(to_unix(new.now)),
            locked_at: None,
        })
    }

    /// The user named `name`.
    pub async fn get_user(&self, name: &str) -> Result<Option<User>> {
        let row = sqlx::query(
            "SELECT name, email, password_hash, is_admin, created_at, locked_at FROM users WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(user_from_row))
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(
            "SELECT name, email, password_hash, is_admin, created_at, locked_at FROM users ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(user_from_row).collect())
    }

    /// Replaces a user's password hash.
    pub async fn set_password_hash(&self, name: &str, password_hash: &str) -> Result<()> {
        let res = sqlx::query("UPDATE users SET password_hash = ? WHERE name = ?")
            .bind(password_hash)
            .bind(name)
            .execute(&self.pool)
            .await?;
        if res.rows_affected() == 0 {
            return Err(Error::NotFound {
                what: "user",
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Creates a tool with its first maintainer, allocating a never-used uid.
    pub async fn create_tool(&self, new: NewTool<'_>) -> Result<Tool> {
        let mut tx = self.begin_write().await?;
        let maintainer_known = sqlx::query("SELECT 1 FROM names WHERE name = ?")
            .bind(new.maintainer)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !maintainer_known {
            return Err(Error::NotFound {
                what: "user or tool",
                name: new.maintainer.to_owned(),
            });
        }
        claim_name(&mut tx, new.name, PrincipalKind::Tool).await?;
        let uid: i64 = sqlx::query(
            "UPDATE counters SET value = value + 1 WHERE name = 'next_uid' RETURNING value - 1",
        )
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        sqlx::query(
            "INSERT INTO tools (name, uid, title, description, status, created_at) VALUES (?, ?, ?, ?, 'active', ?)",
        )
        .bind(new.name)
        .bind(uid)
        .bind(new.title)
        .bind(new.description)
        .bind(to_unix(new.now))
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO maintainers (tool, member, added_at) VALUES (?, ?, ?)")
            .bind(new.name)
            .bind(new.maintainer)
            .bind(to_unix(new.now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Tool {
            name: new.name.to_owned(),
            uid: u32::try_from(uid).unwrap_or(u32::MAX),
            title: new.title.to_owned(),
            description: new.description.to_owned(),
            status: ToolStatus::Active,
            created_at: from_unix(to_unix(new.now)),
        })
    }

    /// The tool named `name`.
    pub async fn get_tool(&self, name: &str) -> Result<Option<Tool>> {
        let row = sqlx::query(
            "SELECT name, uid, title, description, status, created_at FROM tools WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(tool_from_row))
    }

    /// Every tool, by name.
    pub async fn list_tools(&self) -> Result<Vec<Tool>> {
        let rows = sqlx::query(
            "SELECT name, uid, title, description, status, created_at FROM tools ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(tool_from_row).collect())
    }

    /// Sets a tool's status.
    pub async fn set_tool_status(&self, name: &str, status: ToolStatus) -> Result<()> {
        let res = sqlx::query("UPDATE tools SET status = ? WHERE name = ?")
            .bind(status.as_str())
            .bind(name)
            .execute(&self.pool)
            .await?;
        if res.rows_affected() == 0 {
            return Err(not_found_tool(name));
        }
        Ok(())
    }

    /// Deletes a tool, its maintainer rows, its memberships in other tools and its
    /// certificates' validity; frees the name but never the uid.
    pub async fn delete_tool(&self, name: &str) -> Result<Tool> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT name, uid, title, description, status, created_at FROM tools WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let tool = row
            .as_ref()
            .map(tool_from_row)
            .ok_or_else(|| not_found_tool(name))?;
        sqlx::query(
            "UPDATE certificates SET status = 'revoked' WHERE subject = ? AND kind = 'tool'",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE tokens SET revoked_at = COALESCE(revoked_at, unixepoch()) WHERE subject = ? AND kind = 'tool'",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        // Nothing of the tool's jobs is left for a later tool of the same name.
        sqlx::query("DELETE FROM jobs WHERE tool = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM job_runs WHERE tool = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM maintainers WHERE tool = ? OR member = ?")
            .bind(name)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tool_quotas WHERE tool = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tools WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM names WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(tool)
    }

    /// Adds a maintainer (user or tool) to a tool; returns false when it already was one.
    pub async fn add_maintainer(
        &self,
        tool: &str,
        member: &str,
        now: OffsetDateTime,
    ) -> Result<bool> {
        if self.get_tool(tool).await?.is_none() {
            return Err(not_found_tool(tool));
        }
        if self.principal_kind(member).await?.is_none() {
            return Err(Error::NotFound {
                what: "user or tool",
                name: member.to_owned(),
            });
        }
        if tool == member {
            return Err(Error::Conflict(format!(
                "a tool cannot maintain itself: '{tool}' already acts on itself"
            )));
        }
        let res = sqlx::query(
            "INSERT INTO maintainers (tool, member, added_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(tool)
        .bind(member)
        .bind(to_unix(now))
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Removes a maintainer from a tool; refuses to remove the last one.
    pub async fn remove_maintainer(&self, tool: &str, member: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let members: Vec<String> = sqlx::query("SELECT member FROM maintainers WHERE tool = ?")
            .bind(tool)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        if !members.iter().any(|name| name == member) {
            return Err(Error::NotFound {
                what: "maintainer of the tool",
                name: member.to_owned(),
            });
        }
        if members.len() == 1 {
            return Err(Error::Conflict(format!(
                "'{member}' is the last maintainer of '{tool}'; a tool keeps at least one maintainer"
            )));
        }
        sqlx::query("DELETE FROM maintainers WHERE tool = ? AND member = ?")
            .bind(tool)
            .bind(member)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The maintainers of a tool with their kinds, by name.
    pub async fn maintainers(&self, tool: &str) -> Result<Vec<(String, PrincipalKind)>> {
        let rows = sqlx::query(
            "SELECT m.member, n.kind FROM maintainers m JOIN names n ON n.name = m.member WHERE m.tool = ? ORDER BY m.member",
        )
        .bind(tool)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| (row.get(0), PrincipalKind::parse(row.get::<&str, _>(1))))
            .collect())
    }

    /// The tools `member` maintains directly, by name.
    pub async fn tools_maintained_by(&self, member: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT tool FROM maintainers WHERE member = ? ORDER BY tool")
            .bind(member)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Whether `member` is listed as a maintainer of `tool`.
    pub async fn is_maintainer(&self, tool: &str, member: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM maintainers WHERE tool = ? AND member = ?")
            .bind(tool)
            .bind(member)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }
}

async fn claim_name(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    name: &str,
    kind: PrincipalKind,
) -> Result<()> {
    let existing = sqlx::query("SELECT kind FROM names WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(row) = existing {
        return Err(Error::NameTaken {
            name: name.to_owned(),
            kind: PrincipalKind::parse(row.get::<&str, _>(0)),
        });
    }
    sqlx::query("INSERT INTO names (name, kind) VALUES (?, ?)")
        .bind(name)
        .bind(kind.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn not_found_tool(name: &str) -> Error {
    Error::NotFound {
        what: "tool",
        name: name.to_owned(),
    }
}

fn user_from_row(row: &SqliteRow) -> User {
    User {
        name: row.get(0),
        email: row.get(1),
        password_hash: row.get(2),
        is_admin: row.get(3),
        created_at: from_unix(row.get(4)),
        locked_at: row.get::<Option<i64>, _>(5).map(from_unix),
    }
}

fn tool_from_row(row: &SqliteRow) -> Tool {
    let status: &str = row.get(4);
    Tool {
        name: row.get(0),
        uid: u32::try_from(row.get::<i64, _>(1)).unwrap_or(u32::MAX),
        title: row.get(2),
        description: row.get(3),
        status: if status == "disabled" {
            ToolStatus::Disabled
        } else {
            ToolStatus::Active
        },
        created_at: from_unix(row.get(5)),
    }
}
