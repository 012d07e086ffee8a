//! The `Host` of a request, checked and mapped to what the proxy serves.
//!
//! A host must be a DNS name (labels of letters, digits and `-`, neither first nor last,
//! at most 63 characters each, 253 in all), optionally followed by `:port`; the tool part
//! of `<tool>.<public-domain>` must follow the tool-name rule. Anything else is refused
//! with a message naming the rule, which the 400 page shows (escaped).

/// The tool-name rule, as the accounts service states it.
pub const TOOL_NAME_RULE: &str = "^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$";

/// What a request's host asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The bare public domain: the landing page.
    Landing,
    /// `<tool>.<public-domain>`.
    Tool(String),
    /// A valid DNS name that is not under the public domain.
    Foreign(String),
    /// No usable host: the reason, naming the rule it broke.
    Invalid(String),
}

/// Maps a `Host` header value (or an HTTP/2 `:authority`) to a [`Route`].
///
/// `public_domain` must be lowercase.
pub fn route(host: Option<&str>, public_domain: &str) -> Route {
    let Some(host) = host else {
        return Route::Invalid("the request has no Host header".to_owned());
    };
    let name = match strip_port(host) {
        Ok(name) => name,
        Err(reason) => return Route::Invalid(reason),
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if let Err(reason) = check_dns_name(&name) {
        return Route::Invalid(reason);
    }
    if name == public_domain {
        return Route::Landing;
    }
    let Some(tool) = name
        .strip_suffix(public_domain)
        .and_then(|rest| rest.strip_suffix('.'))
    else {
        return Route::Foreign(name);
    };
    if !is_tool_name(tool) {
        return Route::Invalid(format!(
            "'{tool}' is not a tool name: tool names match {TOOL_NAME_RULE} \
             (lowercase letters, digits and '-', starting with a letter, at most 32 characters)"
        ));
    }
    Route::Tool(tool.to_owned())
}

/// Whether `name` follows [`TOOL_NAME_RULE`].
pub fn is_tool_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some((&first, rest)) = bytes.split_first() else {
        return false;
    };
    if !first.is_ascii_lowercase() || bytes.len() > 32 {
        return false;
    }
    if let Some(&last) = rest.last()
        && !(last.is_ascii_lowercase() || last.is_ascii_digit())
    {
        return false;
    }
    rest.iter()
        .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn strip_port(host: &str) -> Result<&str, String> {
    if host.starts_with('[') {
        return Err(format!(
            "the host '{host}' is an IP address: tools are reached by name"
        ));
    }
    match host.rsplit_once(':') {
        Some((name, port)) => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 {
                Err(format!(
                    "the host '{host}' has an invalid port: a port is 1 to 5 digits after ':'"
                ))
            } else {
                Ok(name)
            }
        }
        None => Ok(host),
    }
}

fn check_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the Host header is empty".to_owned());
    }
    if name.len() > 253 {
        return Err(format!(
            "the host is {} characters long: a DNS name has at most 253",
            name.len()
        ));
    }
    for label in name.split('.') {
        let bytes = label.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= 63
            && bytes
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
            && bytes.first() != Some(&b'-')
            && bytes.last() != Some(&b'-');
        if !valid {
            return Err(format!(
                "the host '{name}' is not a valid DNS name: each dot-separated label is 1 to 63 \
                 letters, digits or '-', and does not start or end with '-'"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_hosts_with_and_without_port_route_to_the_tool() {
        assert_eq!(
            route(Some("mytool.localhost:8080"), "localhost"),
            Route::Tool("mytool".to_owned())
        );
        assert_eq!(
            route(Some("MyTool.LocalHost"), "localhost"),
            Route::Tool("mytool".to_owned())
        );
        assert_eq!(
            route(Some("a-1.tools.example.org."), "tools.example.org"),
            Route::Tool("a-1".to_owned())
        );
    }

    #[test]
    fn the_bare_domain_is_the_landing_page_and_other_names_are_foreign() {
        assert_eq!(route(Some("localhost:1"), "localhost"), Route::Landing);
        assert_eq!(
            route(Some("example.com"), "localhost"),
            Route::Foreign("example.com".to_owned())
        );
        assert_eq!(
            route(Some("xlocalhost"), "localhost"),
            Route::Foreign("xlocalhost".to_owned())
        );
    }

    #[test]
    fn odd_hosts_are_invalid_and_say_which_rule_they_broke() {
        for host in [
            "",
            "a b.localhost",
            "<script>.localhost",
            "a..localhost",
            "-a.localhost",
            "a.localhost:x",
            "a.localhost:",
            "[::1]:80",
            "é.localhost",
        ] {
            let Route::Invalid(reason) = route(Some(host), "localhost") else {
                panic!("{host:?} was accepted");
            };
            assert!(
                reason.contains("DNS name")
                    || reason.contains("port")
                    || reason.contains("empty")
                    || reason.contains("IP address"),
                "{host:?}: {reason}"
            );
        }
        let Route::Invalid(reason) = route(Some("a.b.localhost"), "localhost") else {
            panic!("a.b accepted");
        };
        assert!(reason.contains(TOOL_NAME_RULE), "{reason}");
        assert!(matches!(
            route(Some("1abc.localhost"), "localhost"),
            Route::Invalid(_)
        ));
        assert!(matches!(route(None, "localhost"), Route::Invalid(_)));
    }

    #[test]
    fn tool_names_follow_the_rule() {
        assert!(is_tool_name("a"));
        assert!(is_tool_name("ab-9"));
        assert!(!is_tool_name("a-"));
        assert!(!is_tool_name("9a"));
        assert!(!is_tool_name(&"a".repeat(33)));
        assert!(is_tool_name(&"a".repeat(32)));
    }
}
