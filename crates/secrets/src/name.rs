//! Envvar names: the rule of the original API and the names the platform reserves.

use std::fmt;

use crate::{Error, Result};

/// The rule every name follows, as the original's OpenAPI schema spells it.
pub const NAME_PATTERN: &str = "^[A-Z][A-Z_0-9]{2,}[A-Z0-9]$";

/// The longest name accepted, in bytes; the pattern itself has no upper bound.
pub const MAX_NAME_LEN: usize = 255;

/// Names the platform sets in every job itself; a tool may not store them.
///
/// Every other `TOOL_*` name belongs to the tool (toolforge-reference.md §2.1: users
/// create names such as `TOOL_OAUTH__CONSUMER_KEY`).
pub const RESERVED_NAMES: &[&str] = &["TOOL_TOOLFORGE_API_URL", "TOOL_DATA_DIR", "TOOL_REDIS_URI"];

/// A validated envvar name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnvvarName(String);

impl EnvvarName {
    /// Checks `name` against [`NAME_PATTERN`] and [`MAX_NAME_LEN`].
    ///
    /// Reserved names pass: they may be looked up (and are never found); storing one
    /// is refused by [`EnvvarName::check_storable`].
    pub fn parse(name: &str) -> Result<Self> {
        let bytes = name.as_bytes();
        let body_ok = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_';
        let valid = bytes.len() >= 4
            && bytes.len() <= MAX_NAME_LEN
            && bytes[0].is_ascii_uppercase()
            && bytes.iter().all(body_ok)
            && bytes[bytes.len() - 1] != b'_';
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(Error::InvalidName {
                name: shorten(name),
            })
        }
    }

    /// Refuses the names the platform sets itself.
    pub fn check_storable(&self) -> Result<()> {
        if RESERVED_NAMES.contains(&self.0.as_str()) {
            return Err(Error::ReservedName {
                name: self.0.clone(),
            });
        }
        Ok(())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvvarName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A refused name as error messages quote it: at most 64 characters, control
/// characters escaped, so a message stays one readable line.
fn shorten(name: &str) -> String {
    let mut out: String = name.chars().take(64).flat_map(char::escape_debug).collect();
    if name.chars().count() > 64 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::name::{EnvvarName, MAX_NAME_LEN};

    #[track_caller]
    fn check(name: &str, expected: &str) {
        let actual = match EnvvarName::parse(name) {
            Ok(parsed) => match parsed.check_storable() {
                Ok(()) => "ok".to_owned(),
                Err(err) => err.to_string(),
            },
            Err(err) => err.to_string(),
        };
        assert_eq!(actual, expected, "name {name:?}");
    }

    #[test]
    fn names_follow_the_originals_rule_and_reserved_ones_are_refused() {
        const RULE: &str = "must match ^[A-Z][A-Z_0-9]{2,}[A-Z0-9]$ (upper-case letters, digits and _, at least 4 characters, starting with a letter, not ending with _, at most 255)";
        for ok in [
            "MY_VAR",
            "ABCD",
            "A__1",
            "A123",
            "TOOL_OAUTH__CONSUMER_KEY",
            "TOOL_TOOLSDB_PASSWORD",
            "TOOL_DATA_DIRS",
        ] {
            check(ok, "ok");
        }
        for bad in [
            "", "ABC", "bad", "My_VAR", "MY_VAR_", "_MY_VAR", "1ABC", "MY-VAR", "MY VAR", "MY_VÄR",
        ] {
            check(bad, &format!("Invalid envvar name '{bad}', {RULE}"));
        }
        check("A\nBCD", &format!("Invalid envvar name 'A\\nBCD', {RULE}"));
        let long = "A".repeat(MAX_NAME_LEN + 1);
        check(
            &long,
            &format!("Invalid envvar name '{}…', {RULE}", "A".repeat(64)),
        );
        check(&"A".repeat(MAX_NAME_LEN), "ok");
        for reserved in ["TOOL_TOOLFORGE_API_URL", "TOOL_DATA_DIR", "TOOL_REDIS_URI"] {
            check(
                reserved,
                &format!(
                    "Envvar name {reserved} is reserved: the platform sets it in every job of the tool"
                ),
            );
        }
    }
}
