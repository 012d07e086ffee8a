//! The tool metadata form: what a title, description, licence, tags, authors, links and
//! webservice path may be, checked before anything is stored, with messages that name
//! the rule broken.
//!
//! The checks are pure, so the create and edit pages and their tests share them.

use store::ToolInfo;

/// The longest title (Striker's `CharField(max_length=255)`).
pub const MAX_TITLE: usize = 255;
/// The longest description.
pub const MAX_DESCRIPTION: usize = 10_000;
/// The longest tag (Striker's `ToolInfoTag.name`).
pub const MAX_TAG: usize = 100;
/// The most tags a tool has.
pub const MAX_TAGS: usize = 20;
/// The longest author name (Striker's `Author.name`).
pub const MAX_AUTHOR: usize = 128;
/// The most authors a tool lists.
pub const MAX_AUTHORS: usize = 20;
/// The longest link (Striker's `CharField(max_length=2047)`).
pub const MAX_URL: usize = 2047;
/// The longest webservice path.
pub const MAX_SUBURL: usize = 255;

/// The metadata fields as the browser sent them.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct MetadataInput {
    pub title: String,
    pub description: String,
    pub license: String,
    /// Comma-separated.
    pub tags: String,
    /// Comma-separated.
    pub authors: String,
    pub repository: String,
    pub issues: String,
    pub docs: String,
    /// A checkbox: present (`on`) when ticked.
    pub is_webservice: Option<String>,
    pub suburl: String,
}

/// Validated metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub title: String,
    pub description: String,
    pub info: ToolInfo,
}

/// One field's problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The form field (`title`, `tags`, …).
    pub field: &'static str,
    /// What rule it broke.
    pub message: String,
}

impl MetadataInput {
    /// Checks every field against its rule; all the problems at once, so the form shows
    /// them together. `licenses` are the known SPDX identifiers.
    pub fn validate(&self, licenses: &[String]) -> Result<Metadata, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut fail = |field: &'static str, message: String| {
            errors.push(FieldError { field, message });
        };
        let title = self.title.trim().to_owned();
        if title.is_empty() {
            fail("title", "The title is required.".to_owned());
        } else if title.chars().count() > MAX_TITLE {
            fail(
                "title",
                format!("The title must be at most {MAX_TITLE} characters long."),
            );
        } else if title.chars().any(char::is_control) {
            fail(
                "title",
                "The title must be one line without control characters.".to_owned(),
            );
        }
        let description = self.description.trim().replace("\r\n", "\n");
        if description.is_empty() {
            fail("description", "The description is required.".to_owned());
        } else if description.chars().count() > MAX_DESCRIPTION {
            fail(
                "description",
                format!("The description must be at most {MAX_DESCRIPTION} characters long."),
            );
        } else if description
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            fail(
                "description",
                "The description must not contain control characters.".to_owned(),
            );
        }
        let license = self.license.trim();
        let license = if license.is_empty() {
            fail(
                "license",
                "Choose a licence: the tool's default software licence is required.".to_owned(),
            );
            None
        } else if licenses.iter().any(|known| known == license) {
            Some(license.to_owned())
        } else {
            fail(
                "license",
                format!("'{license}' is not one of the OSI-approved licences offered here."),
            );
            None
        };
        let tags = match split_list(&self.tags, "tag", MAX_TAG, MAX_TAGS) {
            Ok(mut tags) => {
                tags.sort();
                tags
            }
            Err(message) => {
                fail("tags", message);
                Vec::new()
            }
        };
        let authors = match split_list(&self.authors, "author", MAX_AUTHOR, MAX_AUTHORS) {
            Ok(authors) => authors,
            Err(message) => {
                fail("authors", message);
                Vec::new()
            }
        };
        let mut link = |field: &'static str, what: &str, value: &str| -> String {
            let value = value.trim();
            if let Err(message) = check_url(what, value) {
                fail(field, message);
            }
            value.to_owned()
        };
        let repository = link("repository", "source code URL", &self.repository);
        let issues = link("issues", "issue tracker URL", &self.issues);
        let docs = link("docs", "documentation URL", &self.docs);
        let suburl = self.suburl.trim().trim_start_matches('/').to_owned();
        if suburl.chars().count() > MAX_SUBURL {
            fail(
                "suburl",
                format!("The webservice path must be at most {MAX_SUBURL} characters long."),
            );
        } else if !suburl.chars().all(is_path_char) {
            fail(
                "suburl",
                "The webservice path may contain only letters, digits and - . _ ~ / % ? = & + characters."
                    .to_owned(),
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Metadata {
            title,
            description,
            info: ToolInfo {
                license,
                tags,
                authors,
                repository,
                issues,
                docs,
                is_webservice: self.is_webservice.is_some(),
                suburl,
            },
        })
    }
}

/// Splits a comma-separated list, trims and de-duplicates it, and checks each item.
fn split_list(
    text: &str,
    what: &str,
    max_len: usize,
    max_items: usize,
) -> Result<Vec<String>, String> {
    let mut items: Vec<String> = Vec::new();
    for item in text.split([',', '\n']) {
        let item = item.trim();
        if item.is_empty() || items.iter().any(|known| known == item) {
            continue;
        }
        if item.chars().count() > max_len {
            return Err(format!(
                "Each {what} must be at most {max_len} characters long ('{item}' is longer)."
            ));
        }
        if item.chars().any(char::is_control) {
            return Err(format!("A {what} must not contain control characters."));
        }
        items.push(item.to_owned());
    }
    if items.len() > max_items {
        return Err(format!(
            "At most {max_items} {what}s, separated by commas ({} given).",
            items.len()
        ));
    }
    Ok(items)
}

/// An empty value, or an `http://` or `https://` URL with a host and no spaces.
fn check_url(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    let host_present = rest.is_some_and(|rest| {
        rest.split(['/', '?', '#'])
            .next()
            .is_some_and(|host| !host.is_empty())
    });
    if !host_present
        || value.chars().count() > MAX_URL
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "The {what} must be an http:// or https:// address without spaces, at most {MAX_URL} characters long."
        ));
    }
    Ok(())
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~/%?=&+".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn licenses() -> Vec<String> {
        vec!["MIT".to_owned(), "GPL-3.0-or-later".to_owned()]
    }

    fn input() -> MetadataInput {
        MetadataInput {
            title: " My tool ".to_owned(),
            description: "Does\r\nthings".to_owned(),
            license: "MIT".to_owned(),
            tags: "wiki, bots, wiki,, ".to_owned(),
            authors: "Alice, Bob".to_owned(),
            repository: "https://example.org/src".to_owned(),
            issues: String::new(),
            docs: "http://example.org/docs".to_owned(),
            is_webservice: Some("on".to_owned()),
            suburl: "/app/index.html".to_owned(),
        }
    }

    #[test]
    fn good_metadata_is_trimmed_sorted_and_deduplicated() {
        let metadata = input().validate(&licenses()).unwrap();
        assert_eq!(metadata.title, "My tool");
        assert_eq!(metadata.description, "Does\nthings");
        assert_eq!(metadata.info.tags, ["bots", "wiki"]);
        assert_eq!(metadata.info.authors, ["Alice", "Bob"]);
        assert_eq!(metadata.info.license.as_deref(), Some("MIT"));
        assert!(metadata.info.is_webservice);
        assert_eq!(metadata.info.suburl, "app/index.html");
    }

    #[test]
    fn every_broken_rule_is_named_with_its_field() {
        let bad = MetadataInput {
            title: String::new(),
            description: "x".repeat(MAX_DESCRIPTION + 1),
            license: "WTFPL".to_owned(),
            tags: "x".repeat(MAX_TAG + 1),
            authors: (0..=MAX_AUTHORS)
                .map(|n| format!("a{n}"))
                .collect::<Vec<_>>()
                .join(","),
            repository: "javascript:alert(1)".to_owned(),
            issues: "https://".to_owned(),
            docs: "https://exa mple.org".to_owned(),
            is_webservice: None,
            suburl: "<script>".to_owned(),
        };
        let errors = bad.validate(&licenses()).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|err| err.field).collect();
        assert_eq!(
            fields,
            [
                "title",
                "description",
                "license",
                "tags",
                "authors",
                "repository",
                "issues",
                "docs",
                "suburl"
            ]
        );
        assert_eq!(errors[0].message, "The title is required.");
        assert_eq!(
            errors[2].message,
            "'WTFPL' is not one of the OSI-approved licences offered here."
        );
        assert!(
            errors[5].message.contains("http:// or https://"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_missing_licence_is_refused() {
        let errors = MetadataInput {
            license: " ".to_owned(),
            ..input()
        }
        .validate(&licenses())
        .unwrap_err();
        assert_eq!(errors[0].field, "license");
    }
}
