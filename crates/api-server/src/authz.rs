//! The one authorization function of the platform.
//!
//! Rules (design.md, "Identity and security"):
//! - a tool acts on itself;
//! - a user acts on the tools they maintain;
//! - a tool listed as maintainer of another tool acts on it (one level, not transitive);
//! - an admin acts on all.
//!
//! A disabled tool is refused saying so; a non-admin learns nothing about tools it
//! may not act on (not even whether they exist), while an admin asking for a tool that
//! does not exist gets a 404.
//!
//! Architecture Invariant: every tool-scoped request passes through [`authorize`];
//! it is pure, so the whole matrix is tested without a server.

use store::PrincipalKind;

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A tool account (certificate O=toolforge, or a token issued for the tool).
    Tool {
        /// The tool's name.
        name: String,
        /// Whether the tool itself is disabled.
        disabled: bool,
    },
    /// A developer account (certificate O=toolforge-users, or a token for the user).
    User {
        /// The user's name.
        name: String,
        /// Whether the user is a platform admin.
        is_admin: bool,
    },
}

impl Identity {
    /// The principal's name.
    pub fn name(&self) -> &str {
        match self {
            Identity::Tool { name, .. } | Identity::User { name, .. } => name,
        }
    }
}

/// What the store says about the tool a request targets.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The `{tool}` of the path.
    pub name: &'a str,
    /// Whether such a tool exists.
    pub exists: bool,
    /// Whether it is disabled.
    pub disabled: bool,
    /// Its direct maintainers.
    pub maintainers: &'a [(String, PrincipalKind)],
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// 403: the identity may not act on the tool.
    Forbidden(String),
    /// 403: the tool (or the acting tool) is disabled.
    Disabled(String),
    /// 404: an admin asked for a tool that does not exist.
    NoSuchTool(String),
}

impl Denial {
    /// The message for the client.
    pub fn message(&self) -> &str {
        match self {
            Denial::Forbidden(message)
            | Denial::Disabled(message)
            | Denial::NoSuchTool(message) => message,
        }
    }
}

/// Decides whether `identity` may act on `target`.
pub fn authorize(identity: &Identity, target: &Target<'_>) -> Result<(), Denial> {
    let forbidden = || {
        Denial::Forbidden(format!(
            "{} '{}' may not act on tool '{}'",
            match identity {
                Identity::Tool { .. } => "tool",
                Identity::User { .. } => "user",
            },
            identity.name(),
            target.name
        ))
    };
    if let Identity::Tool {
        name,
        disabled: true,
    } = identity
    {
        return Err(Denial::Disabled(format!(
            "tool '{name}' is disabled; its credentials cannot be used"
        )));
    }
    let is_admin = matches!(identity, Identity::User { is_admin: true, .. });
    if !target.exists {
        return Err(if is_admin {
            Denial::NoSuchTool(format!("tool '{}' does not exist", target.name))
        } else {
            forbidden()
        });
    }
    let allowed = is_admin
        || match identity {
            Identity::Tool { name, .. } => {
                name == target.name
                    || target
                        .maintainers
                        .iter()
                        .any(|(member, kind)| *kind == PrincipalKind::Tool && member == name)
            }
            Identity::User { name, .. } => target
                .maintainers
                .iter()
                .any(|(member, kind)| *kind == PrincipalKind::User && member == name),
        };
    if !allowed {
        return Err(forbidden());
    }
    if target.disabled && !is_admin {
        return Err(Denial::Disabled(format!(
            "tool '{}' is disabled; ask a Toolforge admin to enable it",
            target.name
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> Identity {
        Identity::Tool {
            name: name.to_owned(),
            disabled: false,
        }
    }

    fn user(name: &str) -> Identity {
        Identity::User {
            name: name.to_owned(),
            is_admin: false,
        }
    }

    /// `a` is maintained by user alice and by tool `helper`; `helper` is maintained by
    /// user bob; `c` is disabled and maintained by alice; `ghost` does not exist.
    fn decide(identity: &Identity, target: &str) -> &'static str {
        let maintainers_of_a = [
            ("alice".to_owned(), PrincipalKind::User),
            ("helper".to_owned(), PrincipalKind::Tool),
        ];
        let maintainers_of_helper = [("bob".to_owned(), PrincipalKind::User)];
        let maintainers_of_c = [("alice".to_owned(), PrincipalKind::User)];
        let target = match target {
            "a" => Target {
                name: "a",
                exists: true,
                disabled: false,
                maintainers: &maintainers_of_a,
            },
            "helper" => Target {
                name: "helper",
                exists: true,
                disabled: false,
                maintainers: &maintainers_of_helper,
            },
            "c" => Target {
                name: "c",
                exists: true,
                disabled: true,
                maintainers: &maintainers_of_c,
            },
            _ => Target {
                name: "ghost",
                exists: false,
                disabled: false,
                maintainers: &[],
            },
        };
        match authorize(identity, &target) {
            Ok(()) => "allow",
            Err(Denial::Forbidden(_)) => "403",
            Err(Denial::Disabled(_)) => "403 disabled",
            Err(Denial::NoSuchTool(_)) => "404",
        }
    }

    #[test]
    fn the_authorization_matrix_covers_every_identity_kind_and_target_kind() {
        let admin = Identity::User {
            name: "root".to_owned(),
            is_admin: true,
        };
        let disabled_tool = Identity::Tool {
            name: "a".to_owned(),
            disabled: true,
        };
        let rows: Vec<(&str, Identity, [&str; 4])> = vec![
            //                                   a           helper      c (disabled)    ghost
            ("tool on itself", tool("a"), ["allow", "403", "403", "403"]),
            (
                "tool as maintainer",
                tool("helper"),
                ["allow", "allow", "403", "403"],
            ),
            ("unrelated tool", tool("z"), ["403", "403", "403", "403"]),
            (
                "disabled tool",
                disabled_tool,
                [
                    "403 disabled",
                    "403 disabled",
                    "403 disabled",
                    "403 disabled",
                ],
            ),
            (
                "maintainer user",
                user("alice"),
                ["allow", "403", "403 disabled", "403"],
            ),
            // bob maintains helper, which maintains a: not transitive.
            (
                "maintainer of a maintainer",
                user("bob"),
                ["403", "allow", "403", "403"],
            ),
            ("unrelated user", user("eve"), ["403", "403", "403", "403"]),
            ("admin", admin, ["allow", "allow", "allow", "404"]),
        ];
        for (label, identity, expected) in rows {
            let got: Vec<&str> = ["a", "helper", "c", "ghost"]
                .iter()
                .map(|target| decide(&identity, target))
                .collect();
            assert_eq!(got, expected, "{label}");
        }
    }

    #[test]
    fn a_refusal_names_the_identity_and_the_tool_but_nothing_else() {
        let err = authorize(
            &user("eve"),
            &Target {
                name: "a",
                exists: true,
                disabled: false,
                maintainers: &[],
            },
        )
        .unwrap_err();
        assert_eq!(err.message(), "user 'eve' may not act on tool 'a'");
        let ghost = authorize(
            &user("eve"),
            &Target {
                name: "ghost",
                exists: false,
                disabled: false,
                maintainers: &[],
            },
        )
        .unwrap_err();
        assert_eq!(ghost.message(), "user 'eve' may not act on tool 'ghost'");
    }
}
