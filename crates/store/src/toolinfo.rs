//! Tool metadata (Striker's ToolInfo): licence, tags, authors, links, webservice flag and
//! path, plus the public tool list with search and pagination.
//!
//! The title and description are the `tools` table's; the rest lives in `tool_info`,
//! `tool_tags` and `tool_authors`, which go with the tool when it is deleted
//! (`ON DELETE CASCADE`). A tool without a `tool_info` row has the defaults, so a tool
//! made by `toolforged admin tool create` is listed and published like any other.
//!
//! The store keeps the values as given: what a licence, tag, URL or path may be is the
//! dashboard's rule, checked before anything is written here. A licence must still be
//! one of `software_licenses` (a foreign key), so a bad one never reaches the table.
//!
//! Every read here is bounded: the list is paged by `LIMIT`/`OFFSET` over the primary key
//! order, a search of three or more characters reads the trigram index `tool_search`
//! (migration `0016_tool_catalogue.sql`; shorter ones scan, as no trigram fits them), and
//! the whole-catalogue read for `toolinfo.json` is one query, not one per tool.
//! [`Store::catalogue_generation`] moves whenever anything that catalogue holds changes
//! (triggers bump it), so a reader may keep what it built until it moves.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use crate::accounts::{PrincipalKind, Tool, ToolStatus};
use crate::{Error, Result, Store, from_unix, to_unix};

/// An OSI-approved licence a tool may choose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct License {
    /// SPDX identifier, e.g. `GPL-3.0-or-later`.
    pub slug: String,
    /// Full name.
    pub name: String,
    /// Where its text is.
    pub url: String,
    /// Offered first.
    pub recommended: bool,
}

/// The metadata of one tool, defaults filled in when it has none stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolInfo {
    /// SPDX identifier of the licence, `None` when not chosen.
    pub license: Option<String>,
    /// Keywords, sorted.
    pub tags: Vec<String>,
    /// Author names, in the order given.
    pub authors: Vec<String>,
    /// URL of the source code, '' when unset.
    pub repository: String,
    /// URL of the issue tracker, '' when unset.
    pub issues: String,
    /// URL of the documentation, '' when unset.
    pub docs: String,
    /// Whether the tool's public URL is its webservice.
    pub is_webservice: bool,
    /// Path under the webservice's URL, '' for the root.
    pub suburl: String,
}

/// A tool with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolWithInfo {
    /// The tool's account record.
    pub tool: Tool,
    /// Its metadata.
    pub info: ToolInfo,
}

/// What an edit of a tool's metadata writes: everything at once.
#[derive(Debug, Clone, Copy)]
pub struct ToolInfoUpdate<'a> {
    /// New title.
    pub title: &'a str,
    /// New description.
    pub description: &'a str,
    /// The whole metadata (tags and authors replace the stored ones).
    pub info: &'a ToolInfo,
}

/// One tool in the public list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolSummary {
    /// Tool name.
    pub name: String,
    /// Short title.
    pub title: String,
    /// Longer description.
    pub description: String,
    /// Active or disabled.
    pub status: ToolStatus,
    /// Keywords, sorted.
    pub tags: Vec<String>,
}

/// One page of the public list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolListPage {
    /// The tools of this page, by name.
    pub tools: Vec<ToolSummary>,
    /// How many tools match in all.
    pub total: u64,
}

impl Store {
    /// The licences a tool may choose: recommended ones first, then by identifier (as
    /// Striker orders them).
    pub async fn licenses(&self) -> Result<Vec<License>> {
        let rows = sqlx::query(
            "SELECT slug, name, url, recommended FROM software_licenses
             ORDER BY recommended DESC, slug COLLATE NOCASE",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| License {
                slug: row.get(0),
                name: row.get(1),
                url: row.get(2),
                recommended: row.get(3),
            })
            .collect())
    }

    /// The metadata of `tool` (defaults when it has none); `None` when there is no such
    /// tool.
    pub async fn tool_info(&self, tool: &str) -> Result<Option<ToolWithInfo>> {
        let row = sqlx::query(&format!("{TOOL_WITH_INFO} WHERE t.name = ?"))
            .bind(tool)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut found = tool_with_info_from_row(&row);
        found.info.tags = sqlx::query("SELECT tag FROM tool_tags WHERE tool = ? ORDER BY tag")
            .bind(tool)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        found.info.authors =
            sqlx::query("SELECT name FROM tool_authors WHERE tool = ? ORDER BY position")
                .bind(tool)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|row| row.get(0))
                .collect();
        Ok(Some(found))
    }

    /// Replaces the title, description and metadata of `tool` in one transaction.
    /// [`Error::NotFound`] when there is no such tool or licence; nothing is written then.
    pub async fn set_tool_info(
        &self,
        tool: &str,
        update: ToolInfoUpdate<'_>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let info = update.info;
        let mut tx = self.begin_write().await?;
        if let Some(license) = &info.license {
            let known = sqlx::query("SELECT 1 FROM software_licenses WHERE slug = ?")
                .bind(license)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !known {
                return Err(Error::NotFound {
                    what: "licence",
                    name: license.clone(),
                });
            }
        }
        let res = sqlx::query("UPDATE tools SET title = ?, description = ? WHERE name = ?")
            .bind(update.title)
            .bind(update.description)
            .bind(tool)
            .execute(&mut *tx)
            .await?;
        if res.rows_affected() == 0 {
            return Err(Error::NotFound {
                what: "tool",
                name: tool.to_owned(),
            });
        }
        sqlx::query(
            "INSERT INTO tool_info (tool, license, repository, issues, docs, is_webservice, suburl, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(tool) DO UPDATE SET license = excluded.license,
                 repository = excluded.repository, issues = excluded.issues, docs = excluded.docs,
                 is_webservice = excluded.is_webservice, suburl = excluded.suburl,
                 updated_at = excluded.updated_at",
        )
        .bind(tool)
        .bind(info.license.as_deref())
        .bind(&info.repository)
        .bind(&info.issues)
        .bind(&info.docs)
        .bind(info.is_webservice)
        .bind(&info.suburl)
        .bind(to_unix(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM tool_tags WHERE tool = ?")
            .bind(tool)
            .execute(&mut *tx)
            .await?;
        for tag in &info.tags {
            sqlx::query("INSERT INTO tool_tags (tool, tag) VALUES (?, ?) ON CONFLICT DO NOTHING")
                .bind(tool)
                .bind(tag)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM tool_authors WHERE tool = ?")
            .bind(tool)
            .execute(&mut *tx)
            .await?;
        for (position, author) in info.authors.iter().enumerate() {
            sqlx::query("INSERT INTO tool_authors (tool, position, name) VALUES (?, ?, ?)")
                .bind(tool)
                .bind(i64::try_from(position).unwrap_or(i64::MAX))
                .bind(author)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every tool with its metadata, by name: the catalogue `toolinfo.json` publishes.
    pub async fn all_tool_infos(&self) -> Result<Vec<ToolWithInfo>> {
        // Handing rows over from SQLite costs more than reading them (one row per tool
        // with its tags and authors folded in took ~57 ms for 3,000 tools, most of it
        // per row), so each table comes back as one JSON document, read in one snapshot
        // and joined here: three rows in all.
        let mut tx = self.pool.begin().await?;
        let tools: String = sqlx::query_scalar(
            "SELECT json_group_array(json_array(t.name, t.uid, t.title, t.description, t.status,
                    t.created_at, i.license, i.repository, i.issues, i.docs, i.is_webservice,
                    i.suburl))
             FROM tools t LEFT JOIN tool_info i ON i.tool = t.name",
        )
        .fetch_one(&mut *tx)
        .await?;
        let tags: String =
            sqlx::query_scalar("SELECT json_group_array(json_array(tool, tag)) FROM tool_tags")
                .fetch_one(&mut *tx)
                .await?;
        let authors: String = sqlx::query_scalar(
            "SELECT json_group_array(json_array(tool, position, name)) FROM tool_authors",
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;

        let tools: Vec<CatalogueRow> = from_json(&tools)?;
        let mut found: Vec<ToolWithInfo> = tools.into_iter().map(catalogue_tool).collect();
        found.sort_unstable_by(|a, b| a.tool.name.cmp(&b.tool.name));
        let index: std::collections::HashMap<String, usize> = found
            .iter()
            .enumerate()
            .map(|(idx, tool)| (tool.tool.name.clone(), idx))
            .collect();
        for (tool, tag) in from_json::<Vec<(String, String)>>(&tags)? {
            if let Some(&idx) = index.get(&tool) {
                found[idx].info.tags.push(tag);
            }
        }
        let mut positions: Vec<Vec<(i64, String)>> = vec![Vec::new(); found.len()];
        for (tool, position, name) in from_json::<Vec<(String, i64, String)>>(&authors)? {
            if let Some(&idx) = index.get(&tool) {
                positions[idx].push((position, name));
            }
        }
        for (tool, mut authors) in found.iter_mut().zip(positions) {
            tool.info.tags.sort_unstable();
            authors.sort_unstable();
            tool.info.authors = authors.into_iter().map(|(_, name)| name).collect();
        }
        Ok(found)
    }

    /// The catalogue's change counter: it increases with every change of a tool's name,
    /// title, description, metadata, tags or authors, and when a tool is made or deleted
    /// (triggers of migration 0016, so every write path bumps it). What was built from
    /// [`Store::all_tool_infos`] after reading generation `g` is current as long as this
    /// still answers `g`.
    pub async fn catalogue_generation(&self) -> Result<i64> {
        Ok(
            sqlx::query("SELECT generation FROM tool_catalogue_generation WHERE id = 1")
                .fetch_one(&self.pool)
                .await?
                .get(0),
        )
    }

    /// One page of tools by name, those whose name, title, description or one of whose
    /// tags contains `search` (case-insensitive; every tool when `search` is blank).
    ///
    /// Three or more characters are looked up in the trigram index `tool_search`; one or
    /// two characters (no trigram to look up) scan the tools with `LIKE`.
    pub async fn search_tools(
        &self,
        search: &str,
        offset: u64,
        limit: u64,
    ) -> Result<ToolListPage> {
        let search = search.trim();
        let indexed = search.chars().count() >= 3;
        let (filter, needle) = if search.is_empty() {
            ("", String::new())
        } else if indexed {
            (
                "WHERE t.uid IN (SELECT rowid FROM tool_search WHERE tool_search MATCH ?1)",
                fts_phrase(search),
            )
        } else {
            (
                "WHERE t.name LIKE ?1 ESCAPE '\\' OR t.title LIKE ?1 ESCAPE '\\'
                    OR t.description LIKE ?1 ESCAPE '\\'
                    OR EXISTS (SELECT 1 FROM tool_tags g WHERE g.tool = t.name AND g.tag LIKE ?1 ESCAPE '\\')",
                like_pattern(search),
            )
        };
        let count = if indexed {
            "SELECT COUNT(*) FROM tool_search WHERE tool_search MATCH ?1".to_owned()
        } else {
            format!("SELECT COUNT(*) FROM tools t {filter}")
        };
        let mut count = sqlx::query(&count);
        if !search.is_empty() {
            count = count.bind(&needle);
        }
        let total: i64 = count.fetch_one(&self.pool).await?.get(0);
        let rows = sqlx::query(&format!(
            "SELECT t.name, t.title, t.description, t.status,
                    (SELECT group_concat(tag, char(31)) FROM
                        (SELECT tag FROM tool_tags g WHERE g.tool = t.name ORDER BY tag))
             FROM tools t {filter} ORDER BY t.name LIMIT ?2 OFFSET ?3"
        ))
        .bind(&needle)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(ToolListPage {
            tools: rows
                .iter()
                .map(|row| ToolSummary {
                    name: row.get(0),
                    title: row.get(1),
                    description: row.get(2),
                    status: status_from_text(row.get::<&str, _>(3)),
                    tags: row
                        .get::<Option<String>, _>(4)
                        .map(|tags| tags.split('\u{1f}').map(str::to_owned).collect())
                        .unwrap_or_default(),
                })
                .collect(),
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    /// Up to `limit` principals whose name starts with `prefix`, by name, with their kinds:
    /// the suggestions of the maintainer form.
    pub async fn names_starting_with(
        &self,
        prefix: &str,
        limit: u64,
    ) -> Result<Vec<(String, PrincipalKind)>> {
        let rows = sqlx::query(
            "SELECT name, kind FROM names WHERE name >= ?1 AND name < ?1 || char(1114111)
             ORDER BY name LIMIT ?2",
        )
        .bind(prefix)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                (
                    row.get(0),
                    if row.get::<&str, _>(1) == "tool" {
                        PrincipalKind::Tool
                    } else {
                        PrincipalKind::User
                    },
                )
            })
            .collect())
    }
}

/// One tool of the catalogue's JSON document, in the column order of its query.
type CatalogueRow = (
    String,
    i64,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
);

/// The tool of one [`CatalogueRow`], without tags and authors yet.
fn catalogue_tool(row: CatalogueRow) -> ToolWithInfo {
    let (
        name,
        uid,
        title,
        description,
        status,
        created_at,
        license,
        repository,
        issues,
        docs,
        is_webservice,
        suburl,
    ) = row;
    ToolWithInfo {
        tool: Tool {
            name,
            uid: u32::try_from(uid).unwrap_or(u32::MAX),
            title,
            description,
            status: status_from_text(&status),
            created_at: from_unix(created_at),
        },
        info: ToolInfo {
            license,
            tags: Vec::new(),
            authors: Vec::new(),
            repository: repository.unwrap_or_default(),
            issues: issues.unwrap_or_default(),
            docs: docs.unwrap_or_default(),
            is_webservice: is_webservice.unwrap_or(0) != 0,
            suburl: suburl.unwrap_or_default(),
        },
    }
}

/// A JSON document SQLite made, decoded; a failure is a decode error of the database.
fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|err| Error::Database(sqlx::Error::Decode(Box::new(err))))
}

const TOOL_WITH_INFO: &str = "SELECT t.name, t.uid, t.title, t.description, t.status, t.created_at,
        i.license, COALESCE(i.repository, ''), COALESCE(i.issues, ''), COALESCE(i.docs, ''),
        COALESCE(i.is_webservice, 0), COALESCE(i.suburl, '')
    FROM tools t LEFT JOIN tool_info i ON i.tool = t.name";

fn tool_with_info_from_row(row: &SqliteRow) -> ToolWithInfo {
    ToolWithInfo {
        tool: Tool {
            name: row.get(0),
            uid: u32::try_from(row.get::<i64, _>(1)).unwrap_or(u32::MAX),
            title: row.get(2),
            description: row.get(3),
            status: status_from_text(row.get::<&str, _>(4)),
            created_at: from_unix(row.get(5)),
        },
        info: ToolInfo {
            license: row.get(6),
            tags: Vec::new(),
            authors: Vec::new(),
            repository: row.get(7),
            issues: row.get(8),
            docs: row.get(9),
            is_webservice: row.get(10),
            suburl: row.get(11),
        },
    }
}

fn status_from_text(text: &str) -> ToolStatus {
    if text == "disabled" {
        ToolStatus::Disabled
    } else {
        ToolStatus::Active
    }
}

/// `text` as one FTS5 phrase: with the trigram tokenizer, the rows that contain it as a
/// substring (double quotes doubled, so nothing in it is query syntax).
fn fts_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// `%text%` with LIKE's wildcards and the escape character escaped.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use crate::{NewTool, NewUser, Store, ToolInfo, ToolInfoUpdate};

    const NOW: time::OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    async fn store_with_tools(names: &[&str]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).await.unwrap();
        store
            .create_user(NewUser {
                name: "alice",
                email: "a@example.org",
                password_hash: "x",
                is_admin: false,
                now: NOW,
            })
            .await
            .unwrap();
        for name in names {
            store
                .create_tool(NewTool {
                    name,
                    title: &format!("The {name} tool"),
                    description: "",
                    maintainer: "alice",
                    now: NOW,
                })
                .await
                .unwrap();
        }
        (dir, store)
    }

    fn info(tags: &[&str]) -> ToolInfo {
        ToolInfo {
            license: Some("MIT".to_owned()),
            tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
            authors: vec!["Alice".to_owned(), "Bob".to_owned()],
            repository: "https://example.org/src".to_owned(),
            issues: String::new(),
            docs: "https://example.org/docs".to_owned(),
            is_webservice: true,
            suburl: "app".to_owned(),
        }
    }

    #[tokio::test]
    async fn recommended_licences_come_first() {
        let (_dir, store) = store_with_tools(&[]).await;
        let licenses = store.licenses().await.unwrap();
        let first: Vec<&str> = licenses
            .iter()
            .take_while(|license| license.recommended)
            .map(|license| license.slug.as_str())
            .collect();
        assert_eq!(
            first,
            ["Apache-2.0", "GPL-2.0-or-later", "GPL-3.0-or-later", "MIT"]
        );
        assert!(licenses.len() > 30);
        assert!(licenses[4..].iter().all(|license| !license.recommended));
    }

    #[tokio::test]
    async fn a_tool_without_metadata_has_the_defaults_and_an_edit_replaces_everything() {
        let (_dir, store) = store_with_tools(&["bot"]).await;
        let found = store.tool_info("bot").await.unwrap().unwrap();
        assert_eq!(found.info, ToolInfo::default());
        assert_eq!(found.tool.title, "The bot tool");
        assert!(store.tool_info("nope").await.unwrap().is_none());

        let first = info(&["wiki", "bots"]);
        let update = ToolInfoUpdate {
            title: "Bot",
            description: "Does things",
            info: &first,
        };
        store.set_tool_info("bot", update, NOW).await.unwrap();
        let found = store.tool_info("bot").await.unwrap().unwrap();
        assert_eq!(found.tool.title, "Bot");
        assert_eq!(found.tool.description, "Does things");
        assert_eq!(found.info.tags, ["bots", "wiki"]);
        assert_eq!(found.info.authors, ["Alice", "Bob"]);
        assert_eq!(found.info.license.as_deref(), Some("MIT"));

        let second = ToolInfo {
            tags: vec!["other".to_owned()],
            authors: vec!["Carol".to_owned()],
            license: None,
            ..first.clone()
        };
        let update = ToolInfoUpdate {
            title: "Bot",
            description: "Does things",
            info: &second,
        };
        store.set_tool_info("bot", update, NOW).await.unwrap();
        let found = store.tool_info("bot").await.unwrap().unwrap();
        assert_eq!(found.info, second);
    }

    #[tokio::test]
    async fn an_unknown_licence_or_tool_is_refused_and_nothing_changes() {
        let (_dir, store) = store_with_tools(&["bot"]).await;
        let bad = ToolInfo {
            license: Some("WTFPL".to_owned()),
            ..info(&["x"])
        };
        let update = ToolInfoUpdate {
            title: "Changed",
            description: "",
            info: &bad,
        };
        let err = store.set_tool_info("bot", update, NOW).await.unwrap_err();
        assert_eq!(err.to_string(), "no licence named 'WTFPL'");
        let found = store.tool_info("bot").await.unwrap().unwrap();
        assert_eq!(found.tool.title, "The bot tool");
        assert!(found.info.tags.is_empty());
        let good = info(&[]);
        let update = ToolInfoUpdate {
            title: "",
            description: "",
            info: &good,
        };
        let err = store.set_tool_info("nope", update, NOW).await.unwrap_err();
        assert_eq!(err.to_string(), "no tool named 'nope'");
    }

    #[tokio::test]
    async fn deleting_a_tool_removes_its_metadata() {
        let (_dir, store) = store_with_tools(&["bot"]).await;
        let first = info(&["wiki"]);
        let update = ToolInfoUpdate {
            title: "",
            description: "",
            info: &first,
        };
        store.set_tool_info("bot", update, NOW).await.unwrap();
        store.delete_tool("bot").await.unwrap();
        store
            .create_tool(NewTool {
                name: "bot",
                title: "",
                description: "",
                maintainer: "alice",
                now: NOW,
            })
            .await
            .unwrap();
        let found = store.tool_info("bot").await.unwrap().unwrap();
        assert_eq!(found.info, ToolInfo::default());
    }

    #[tokio::test]
    async fn search_matches_name_title_description_and_tags_one_page_at_a_time() {
        let (_dir, store) = store_with_tools(&["alpha", "beta", "gamma", "delta"]).await;
        let tagged = info(&["Wikidata"]);
        let update = ToolInfoUpdate {
            title: "Gamma",
            description: "Counts 100% of edits",
            info: &tagged,
        };
        store.set_tool_info("gamma", update, NOW).await.unwrap();

        let all = store.search_tools("", 0, 2).await.unwrap();
        assert_eq!(all.total, 4);
        let names: Vec<&str> = all.tools.iter().map(|tool| tool.name.as_str()).collect();
        assert_eq!(names, ["alpha", "beta"]);
        let rest = store.search_tools("  ", 2, 2).await.unwrap();
        let names: Vec<&str> = rest.tools.iter().map(|tool| tool.name.as_str()).collect();
        assert_eq!(names, ["delta", "gamma"]);
        assert_eq!(rest.tools[1].tags, ["Wikidata"]);

        for (query, expected) in [
            ("ALPHA", vec!["alpha"]),
            ("wikidata", vec!["gamma"]),
            ("100%", vec!["gamma"]),
            ("%", vec!["gamma"]),
            ("_", vec![]),
            ("the b", vec!["beta"]),
            ("ta", vec!["beta", "delta", "gamma"]),
        ] {
            let page = store.search_tools(query, 0, 10).await.unwrap();
            let names: Vec<&str> = page.tools.iter().map(|tool| tool.name.as_str()).collect();
            assert_eq!(names, expected, "{query}");
            assert_eq!(page.total, expected.len() as u64, "{query}");
        }
    }

    #[tokio::test]
    async fn the_catalogue_holds_every_tool_with_its_own_tags_and_authors() {
        let (_dir, store) = store_with_tools(&["alpha", "beta"]).await;
        let tagged = info(&["x", "y"]);
        let update = ToolInfoUpdate {
            title: "Beta",
            description: "",
            info: &tagged,
        };
        store.set_tool_info("beta", update, NOW).await.unwrap();
        let reordered = ToolInfo {
            authors: vec!["Zed".to_owned(), "Amy".to_owned()],
            ..info(&["z", "a"])
        };
        let update = ToolInfoUpdate {
            title: "Alpha",
            description: "",
            info: &reordered,
        };
        store.set_tool_info("alpha", update, NOW).await.unwrap();
        let all = store.all_tool_infos().await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0].info.authors,
            ["Zed", "Amy"],
            "authors in the order given"
        );
        assert_eq!(all[0].info.tags, ["a", "z"], "tags sorted");
        store.delete_tool("alpha").await.unwrap();
        let all = store.all_tool_infos().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].tool.name, "beta");
        assert_eq!(all[0].info, tagged);
    }

    #[tokio::test]
    async fn the_catalogue_generation_moves_with_every_change_toolinfo_publishes_and_only_then() {
        let (_dir, store) = store_with_tools(&["alpha"]).await;
        let mut last = store.catalogue_generation().await.unwrap();
        let mut moved = |now: i64, what: &str| {
            assert!(now > last, "{what}: the generation stayed at {last}");
            last = now;
        };
        store
            .create_tool(NewTool {
                name: "beta",
                title: "",
                description: "",
                maintainer: "alice",
                now: NOW,
            })
            .await
            .unwrap();
        moved(store.catalogue_generation().await.unwrap(), "a new tool");
        let first = info(&["wiki"]);
        let update = ToolInfoUpdate {
            title: "Beta",
            description: "",
            info: &first,
        };
        store.set_tool_info("beta", update, NOW).await.unwrap();
        moved(store.catalogue_generation().await.unwrap(), "metadata");
        sqlx::query("UPDATE tools SET title = 'Changed behind the API' WHERE name = 'beta'")
            .execute(store.pool())
            .await
            .unwrap();
        moved(store.catalogue_generation().await.unwrap(), "a title");
        sqlx::query("INSERT INTO tool_tags (tool, tag) VALUES ('beta', 'extra')")
            .execute(store.pool())
            .await
            .unwrap();
        moved(store.catalogue_generation().await.unwrap(), "a tag");
        sqlx::query("UPDATE tool_authors SET name = 'Zed' WHERE tool = 'beta'")
            .execute(store.pool())
            .await
            .unwrap();
        moved(store.catalogue_generation().await.unwrap(), "an author");
        store.delete_tool("alpha").await.unwrap();
        moved(
            store.catalogue_generation().await.unwrap(),
            "a deleted tool",
        );

        // Nothing toolinfo.json shows: the generation stays.
        sqlx::query("UPDATE tools SET status = 'disabled' WHERE name = 'beta'")
            .execute(store.pool())
            .await
            .unwrap();
        store.add_maintainer("beta", "alice", NOW).await.unwrap();
        assert_eq!(store.catalogue_generation().await.unwrap(), last);
    }

    #[tokio::test]
    async fn the_search_index_follows_titles_tags_and_deletions() {
        let (_dir, store) = store_with_tools(&["alpha", "beta"]).await;
        let names = |page: crate::ToolListPage| -> Vec<String> {
            page.tools.into_iter().map(|tool| tool.name).collect()
        };
        assert!(names(store.search_tools("kidat", 0, 10).await.unwrap()).is_empty());
        let tagged = info(&["Wikidata", "maps"]);
        let update = ToolInfoUpdate {
            title: "Beta \"quoted\" title",
            description: "Draws MAPS",
            info: &tagged,
        };
        store.set_tool_info("beta", update, NOW).await.unwrap();
        assert_eq!(
            names(store.search_tools("KIDAT", 0, 10).await.unwrap()),
            ["beta"]
        );
        assert_eq!(
            names(store.search_tools("\"quoted\"", 0, 10).await.unwrap()),
            ["beta"]
        );
        assert_eq!(
            names(store.search_tools("draws m", 0, 10).await.unwrap()),
            ["beta"]
        );
        // Two tags are two words, not one string to match across.
        assert!(names(store.search_tools("datamaps", 0, 10).await.unwrap()).is_empty());
        assert!(names(store.search_tools("AND OR NOT *", 0, 10).await.unwrap()).is_empty());
        let retagged = info(&["other"]);
        let update = ToolInfoUpdate {
            title: "Beta",
            description: "",
            info: &retagged,
        };
        store.set_tool_info("beta", update, NOW).await.unwrap();
        assert!(names(store.search_tools("kidat", 0, 10).await.unwrap()).is_empty());
        assert_eq!(
            names(store.search_tools("other", 0, 10).await.unwrap()),
            ["beta"]
        );
        store.delete_tool("beta").await.unwrap();
        assert!(names(store.search_tools("other", 0, 10).await.unwrap()).is_empty());
        let page = store.search_tools("alpha", 0, 10).await.unwrap();
        assert_eq!(page.total, 1);
    }

    #[tokio::test]
    async fn name_suggestions_start_with_the_prefix() {
        let (_dir, store) = store_with_tools(&["alpha", "alps", "beta"]).await;
        let names = store.names_starting_with("al", 10).await.unwrap();
        let names: Vec<&str> = names.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["alice", "alpha", "alps"]);
        assert_eq!(store.names_starting_with("", 2).await.unwrap().len(), 2);
    }
}
