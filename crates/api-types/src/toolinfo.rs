//! `toolinfo.json`: the catalogue of every tool that directories such as Toolhub crawl,
//! in Striker's two shapes, `/tools/toolinfo/v1/toolinfo.json` and
//! `/tools/toolinfo/v1.2/toolinfo.json` (toolforge-reference.md §3).
//!
//! API Boundary: the keys and their order are Striker's (`ToolInfo.toolinfo_v1` and
//! `toolinfo_v1_2`); crawlers read them. Where Striker would emit a value the 1.2.2 schema
//! refuses (a null repository, no licence) the v1.2 shape leaves the key out instead.

use serde::Serialize;

/// The facts one record is built from; the caller has already worked out the URL.
#[derive(Debug, Clone, Copy)]
pub struct ToolinfoSource<'a> {
    /// The record's unique name, `<prefix>-<tool>` (e.g. `toolforge-mytool`).
    pub name: &'a str,
    /// Short title.
    pub title: &'a str,
    /// Longer description.
    pub description: &'a str,
    /// Where a visitor goes: the webservice (with its path), else the documentation,
    /// else the tool's dashboard page.
    pub url: &'a str,
    /// Keywords.
    pub tags: &'a [String],
    /// Author names.
    pub authors: &'a [String],
    /// URL of the source code, '' when unset.
    pub repository: &'a str,
    /// SPDX identifier of the licence.
    pub license: Option<&'a str>,
    /// URL of the issue tracker, '' when unset.
    pub issues: &'a str,
    /// URL of the documentation, '' when unset.
    pub docs: &'a str,
    /// Whether the tool is a web application.
    pub is_webservice: bool,
}

/// One record of the v1 catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolinfoV1 {
    pub name: String,
    pub title: String,
    pub description: String,
    pub url: String,
    /// The tags joined with `", "`.
    pub keywords: String,
    /// The authors joined with `", "`.
    pub author: String,
    /// `null` when unset, as Striker.
    pub repository: Option<String>,
}

impl ToolinfoV1 {
    /// The v1 record of `source`.
    pub fn new(source: &ToolinfoSource<'_>) -> Self {
        Self {
            name: source.name.to_owned(),
            title: source.title.to_owned(),
            description: source.description.to_owned(),
            url: source.url.to_owned(),
            keywords: source.tags.join(", "),
            author: source.authors.join(", "),
            repository: non_empty(source.repository),
        }
    }
}

/// An author in the v1.2 shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolinfoAuthor {
    pub name: String,
}

/// A documentation link in the v1.2 shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolinfoDocs {
    pub url: String,
    /// Always `en`, as Striker.
    pub language: String,
}

/// One record of the v1.2 catalogue (toolinfo schema 1.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolinfoV1_2 {
    pub name: String,
    pub title: String,
    pub description: String,
    pub url: String,
    pub keywords: String,
    pub author: Vec<ToolinfoAuthor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Always `["Toolforge"]`.
    pub technology_used: Vec<String>,
    /// `web app` for webservices, absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bugtracker_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub developer_docs_url: Option<ToolinfoDocs>,
    /// Always `/toolinfo/1.2.2`.
    #[serde(rename = "_schema")]
    pub schema: String,
}

/// The schema the v1.2 records declare.
pub const TOOLINFO_SCHEMA: &str = "/toolinfo/1.2.2";

impl ToolinfoV1_2 {
    /// The v1.2 record of `source`.
    pub fn new(source: &ToolinfoSource<'_>) -> Self {
        Self {
            name: source.name.to_owned(),
            title: source.title.to_owned(),
            description: source.description.to_owned(),
            url: source.url.to_owned(),
            keywords: source.tags.join(", "),
            author: source
                .authors
                .iter()
                .map(|name| ToolinfoAuthor { name: name.clone() })
                .collect(),
            repository: non_empty(source.repository),
            license: source.license.map(str::to_owned),
            technology_used: vec!["Toolforge".to_owned()],
            tool_type: source.is_webservice.then(|| "web app".to_owned()),
            bugtracker_url: non_empty(source.issues),
            developer_docs_url: non_empty(source.docs).map(|url| ToolinfoDocs {
                url,
                language: "en".to_owned(),
            }),
            schema: TOOLINFO_SCHEMA.to_owned(),
        }
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source<'a>(tags: &'a [String], authors: &'a [String]) -> ToolinfoSource<'a> {
        ToolinfoSource {
            name: "toolforge-bot",
            title: "Bot",
            description: "Does things",
            url: "http://bot.localhost:8080/app",
            tags,
            authors,
            repository: "",
            license: Some("MIT"),
            issues: "https://example.org/issues",
            docs: "",
            is_webservice: true,
        }
    }

    #[test]
    fn v1_joins_tags_and_authors_and_keeps_a_null_repository() {
        let tags = ["a".to_owned(), "b".to_owned()];
        let authors = ["Alice".to_owned(), "Bob".to_owned()];
        let text = serde_json::to_string(&ToolinfoV1::new(&source(&tags, &authors))).unwrap();
        assert_eq!(
            text,
            r#"{"name":"toolforge-bot","title":"Bot","description":"Does things","url":"http://bot.localhost:8080/app","keywords":"a, b","author":"Alice, Bob","repository":null}"#
        );
    }

    #[test]
    fn v1_2_has_author_objects_licence_type_tracker_and_schema_in_striker_order() {
        let tags = ["a".to_owned()];
        let authors = ["Alice".to_owned()];
        let text = serde_json::to_string(&ToolinfoV1_2::new(&source(&tags, &authors))).unwrap();
        assert_eq!(
            text,
            r#"{"name":"toolforge-bot","title":"Bot","description":"Does things","url":"http://bot.localhost:8080/app","keywords":"a","author":[{"name":"Alice"}],"license":"MIT","technology_used":["Toolforge"],"tool_type":"web app","bugtracker_url":"https://example.org/issues","_schema":"/toolinfo/1.2.2"}"#
        );
        let plain = ToolinfoSource {
            is_webservice: false,
            issues: "",
            docs: "https://example.org/docs",
            repository: "https://example.org/src",
            license: None,
            ..source(&tags, &authors)
        };
        let value = serde_json::to_value(ToolinfoV1_2::new(&plain)).unwrap();
        assert!(value.get("tool_type").is_none());
        assert!(value.get("license").is_none());
        assert_eq!(value["repository"], "https://example.org/src");
        assert_eq!(
            value["developer_docs_url"],
            serde_json::json!({"url": "https://example.org/docs", "language": "en"})
        );
    }
}
