//! The process environment as plain data.
//!
//! Discovery reads variables (`HOME`, `KUBECONFIG`, `TOOL_TOOLFORGE_API_URL`, …) only through
//! an [`Environment`], which the binary fills from the real process once and tests fill by
//! hand: no test has to mutate the process environment.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// Environment variables, the home directory and the host name, as discovery sees them.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: BTreeMap<OsString, OsString>,
    /// The home directory when `HOME` is unset (Python's `expanduser` asks the password
    /// database then).
    fallback_home: Option<PathBuf>,
    hostname: Option<String>,
}

impl Environment {
    /// An environment holding `vars`, e.g. `std::env::vars_os()`.
    pub fn from_vars(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Environment {
        Environment {
            vars: vars.into_iter().collect(),
            ..Environment::default()
        }
    }

    /// Sets one variable.
    pub fn with_var(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Environment {
        self.vars
            .insert(key.as_ref().to_os_string(), value.as_ref().to_os_string());
        self
    }

    /// The home directory to use when `HOME` is unset.
    pub fn with_fallback_home(mut self, home: impl Into<PathBuf>) -> Environment {
        self.fallback_home = Some(home.into());
        self
    }

    /// The host name, for the User-Agent.
    pub fn with_hostname(mut self, hostname: impl Into<String>) -> Environment {
        self.hostname = Some(hostname.into());
        self
    }

    /// The value of `key`, if set (possibly empty).
    pub fn var(&self, key: &str) -> Option<&OsStr> {
        self.vars.get(OsStr::new(key)).map(OsString::as_os_str)
    }

    /// The value of `key` if it is set and not empty.
    pub fn non_empty_var(&self, key: &str) -> Option<&OsStr> {
        self.var(key).filter(|value| !value.is_empty())
    }

    /// `$HOME`, else the fallback home; `None` when neither is known.
    pub fn home(&self) -> Option<&Path> {
        match self.var("HOME") {
            Some(home) => Some(Path::new(home)),
            None => self.fallback_home.as_deref(),
        }
    }

    /// The host name, `localhost` when unknown.
    pub fn hostname(&self) -> &str {
        self.hostname.as_deref().unwrap_or("localhost")
    }

    /// Expands a leading `~` or `~/` with [`Environment::home`], as Python's `expanduser`;
    /// other paths, and `~` when no home is known, are returned unchanged.
    pub fn expand_user(&self, path: &Path) -> PathBuf {
        let Ok(rest) = path.strip_prefix("~") else {
            return path.to_path_buf();
        };
        match self.home() {
            Some(home) if rest.as_os_str().is_empty() => home.to_path_buf(),
            Some(home) => home.join(rest),
            None => path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::env::Environment;

    #[test]
    fn home_is_the_home_variable_even_when_a_fallback_is_known() {
        let env = Environment::default()
            .with_fallback_home("/from/passwd")
            .with_var("HOME", "/from/env");
        assert_eq!(env.home(), Some(Path::new("/from/env")));
        let env = Environment::default().with_fallback_home("/from/passwd");
        assert_eq!(env.home(), Some(Path::new("/from/passwd")));
        assert_eq!(Environment::default().home(), None);
    }

    #[test]
    fn a_tilde_is_expanded_only_at_the_start_of_a_path() {
        let env = Environment::default().with_var("HOME", "/home/t");
        let cases = [
            ("~", "/home/t"),
            ("~/.kube/config", "/home/t/.kube/config"),
            ("a/~/b", "a/~/b"),
            ("/abs", "/abs"),
            ("~other/x", "~other/x"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                env.expand_user(Path::new(input)),
                PathBuf::from(expected),
                "{input}"
            );
        }
        let homeless = Environment::default();
        assert_eq!(homeless.expand_user(Path::new("~/x")), PathBuf::from("~/x"));
    }

    #[test]
    fn an_empty_variable_is_set_but_not_non_empty() {
        let env = Environment::default().with_var("KUBECONFIG", "");
        assert!(env.var("KUBECONFIG").is_some());
        assert!(env.non_empty_var("KUBECONFIG").is_none());
    }
}
