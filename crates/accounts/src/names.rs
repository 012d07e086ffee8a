//! The naming rules of the original Toolforge, with messages that name the rule.
//!
//! Tool names are the intersection of useradd(8) and an RFC 1035 DNS label, as in
//! Striker; user (shell) names follow Striker's shell-name rule.

/// Why a name or address was refused; the message states the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidName(pub String);

/// Checks a tool name against `^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$`.
pub fn validate_tool_name(name: &str) -> Result<(), InvalidName> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 32
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(InvalidName(format!(
            "invalid tool name '{name}': a tool name must start with a-z, end with a-z or 0-9, \
             be 1-32 characters long, and can only contain lowercase a-z, 0-9, and - characters \
             (^[a-z]([-a-z0-9]{{0,30}}[a-z0-9])?$)"
        )))
    }
}

/// Checks a user (shell) name against `^[a-z][a-z0-9_-]{0,31}$`.
pub fn validate_user_name(name: &str) -> Result<(), InvalidName> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 32
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
    if ok {
        Ok(())
    } else {
        Err(InvalidName(format!(
            "invalid user name '{name}': a user name must start with a-z, be 1-32 characters long, \
             and can only contain lowercase a-z, 0-9, _, and - characters (^[a-z][a-z0-9_-]{{0,31}}$)"
        )))
    }
}

/// Checks that an e-mail address has one `@` with something on both sides and no spaces.
pub fn validate_email(email: &str) -> Result<(), InvalidName> {
    let ok = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && email.len() <= 254
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(InvalidName(format!(
            "invalid e-mail address '{email}': an address is local-part@domain, with a dot in \
             the domain, no spaces, at most 254 characters"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_follow_the_striker_rule() {
        for good in ["a", "my-tool", "a1", "x".repeat(32).as_str(), "a-b-c9"] {
            assert!(validate_tool_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Bad_Name",
            "1abc",
            "abc-",
            "a_b",
            "x".repeat(33).as_str(),
            "ä",
        ] {
            let err = validate_tool_name(bad).unwrap_err();
            assert!(err.0.contains("must start with a-z"), "{bad}: {err}");
        }
    }

    #[test]
    fn user_names_follow_the_shell_name_rule() {
        for good in ["alice", "a_b-c", "z9"] {
            assert!(validate_user_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Alice", "9a", "a b", "a".repeat(33).as_str()] {
            assert!(validate_user_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn email_addresses_need_a_local_part_and_a_domain() {
        assert!(validate_email("a@example.org").is_ok());
        for bad in [
            "",
            "a",
            "@example.org",
            "a@",
            "a@b",
            "a b@example.org",
            "a@b@c.org",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }
}
