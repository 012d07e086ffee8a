//! The YAML configuration files, read in `toolforge_weld`'s order (api-contract.md §1.1).
//!
//! 1. `/etc/toolforge/<client-name>.yaml`, 2. `/etc/toolforge/common.yaml`,
//! 3. `~/.toolforge.yaml`, 4. `~/.config/toolforge.yaml`, 5. `$XDG_CONFIG_HOME/toolforge.yaml`.
//!
//! Invariants: missing files are skipped; later files replace whole top-level keys of earlier
//! ones (a shallow merge); a file that exists but is not a mapping (an empty file included) is
//! an error naming it. With `XDG_CONFIG_HOME` unset, the literal relative path
//! `$XDG_CONFIG_HOME/toolforge.yaml` is probed, as Python's `expandvars` leaves it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use crate::env::Environment;
use crate::error::{Error, Result};

/// The client name of our CLI, for `/etc/toolforge/<client-name>.yaml` (the umbrella's).
pub const CLI_CLIENT_NAME: &str = "toolforge";

/// The merged configuration, and which file each top-level key came from.
#[derive(Debug, Clone, Default)]
pub struct Config {
    values: Mapping,
    origins: BTreeMap<String, PathBuf>,
    files: Vec<ConfigFile>,
}

/// One candidate configuration file and whether it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// The path probed.
    pub path: PathBuf,
    /// Whether it existed (and was therefore read).
    pub found: bool,
}

impl Config {
    /// The candidate files, in reading order, for `client_name` (`jobs-cli`, `envvars`,
    /// `builds`, `components` or `toolforge`).
    pub fn candidate_paths(env: &Environment, client_name: &str) -> Vec<PathBuf> {
        let xdg = match env.var("XDG_CONFIG_HOME") {
            Some(dir) => {
                let mut path = dir.to_os_string();
                path.push("/toolforge.yaml");
                PathBuf::from(path)
            }
            None => PathBuf::from("$XDG_CONFIG_HOME/toolforge.yaml"),
        };
        vec![
            PathBuf::from(format!("/etc/toolforge/{client_name}.yaml")),
            PathBuf::from("/etc/toolforge/common.yaml"),
            env.expand_user(Path::new("~/.toolforge.yaml")),
            env.expand_user(Path::new("~/.config/toolforge.yaml")),
            xdg,
        ]
    }

    /// Reads and merges the candidate files of `client_name`.
    pub fn load(env: &Environment, client_name: &str) -> Result<Config> {
        Config::load_files(&Config::candidate_paths(env, client_name))
    }

    /// Reads and merges `paths` in order, skipping missing ones.
    pub fn load_files(paths: &[PathBuf]) -> Result<Config> {
        let mut config = Config::default();
        for path in paths {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    config.files.push(ConfigFile {
                        path: path.clone(),
                        found: false,
                    });
                    continue;
                }
                Err(source) => {
                    return Err(Error::ConfigRead {
                        path: path.clone(),
                        source,
                    });
                }
            };
            config.merge_text(path, &text)?;
            config.files.push(ConfigFile {
                path: path.clone(),
                found: true,
            });
        }
        Ok(config)
    }

    /// Merges the YAML `text` of the file `path` over what was read before.
    pub fn merge_text(&mut self, path: &Path, text: &str) -> Result<()> {
        let value: Value = serde_norway::from_str(text).map_err(|source| Error::ConfigSyntax {
            path: path.to_path_buf(),
            source,
        })?;
        let Value::Mapping(mapping) = value else {
            return Err(Error::ConfigNotMapping {
                path: path.to_path_buf(),
            });
        };
        for (key, value) in mapping {
            if let Some(name) = key.as_str() {
                self.origins.insert(name.to_owned(), path.to_path_buf());
            }
            self.values.insert(key, value);
        }
        Ok(())
    }

    /// The files probed, in order, and whether each was found.
    pub fn files(&self) -> &[ConfigFile] {
        &self.files
    }

    /// The file that set the top-level key `key`.
    pub fn origin(&self, key: &str) -> Option<&Path> {
        self.origins.get(key).map(PathBuf::as_path)
    }

    /// The top-level value `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// `section.key` as a string: `None` when absent (or the section is not a mapping, which
    /// the official clients treat as absent too), an error naming the file when it is set to
    /// something other than a string.
    pub fn get_str(&self, section: &str, key: &str) -> Result<Option<&str>> {
        let Some(value) = self.get(section).and_then(|section| section.get(key)) else {
            return Ok(None);
        };
        match value {
            Value::String(text) => Ok(Some(text)),
            _ => Err(self.value_error(section, key, "a string")),
        }
    }

    /// `section.key` as a number of seconds (integer or float, as Python accepts).
    pub fn get_seconds(&self, section: &str, key: &str) -> Result<Option<f64>> {
        let Some(value) = self.get(section).and_then(|section| section.get(key)) else {
            return Ok(None);
        };
        match value.as_f64() {
            Some(seconds) if seconds.is_finite() && seconds > 0.0 => Ok(Some(seconds)),
            _ => Err(self.value_error(section, key, "a positive number of seconds")),
        }
    }

    fn value_error(&self, section: &str, key: &str, expected: &'static str) -> Error {
        Error::ConfigValue {
            path: self
                .origin(section)
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            key: format!("{section}.{key}"),
            expected,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use expect_test::{Expect, expect};

    use crate::config::Config;
    use crate::env::Environment;

    /// Writes `files` (name, content; `None` = absent) into a temporary directory, loads them
    /// in order and renders the merged config, the files found, or the error.
    #[track_caller]
    fn check(files: &[(&str, Option<&str>)], expected: Expect) {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for (name, content) in files {
            let path = dir.path().join(name);
            if let Some(content) = content {
                std::fs::write(&path, content).unwrap();
            }
            paths.push(path);
        }
        let root = dir.path().display().to_string();
        let actual = match Config::load_files(&paths) {
            Ok(config) => {
                let mut out = serde_norway::to_string(&config.values).unwrap();
                for file in config.files() {
                    out.push_str(&format!(
                        "{} {}\n",
                        if file.found { "read" } else { "missing" },
                        file.path.display()
                    ));
                }
                for key in ["api_gateway", "jobs"] {
                    if let Some(origin) = config.origin(key) {
                        out.push_str(&format!("{key} from {}\n", origin.display()));
                    }
                }
                out
            }
            Err(err) => format!("error: {}", crate::tests::chain(&err)),
        };
        expected.assert_eq(&actual.replace(&root, "<dir>"));
    }

    #[test]
    fn later_files_replace_whole_top_level_keys() {
        check(
            &[
                (
                    "a.yaml",
                    Some("api_gateway: {url: 'https://a'}\njobs: {timeout: 5}\n"),
                ),
                ("b.yaml", None),
                ("c.yaml", Some("api_gateway: {other: 1}\n")),
            ],
            expect![[r#"
                api_gateway:
                  other: 1
                jobs:
                  timeout: 5
                read <dir>/a.yaml
                missing <dir>/b.yaml
                read <dir>/c.yaml
                api_gateway from <dir>/c.yaml
                jobs from <dir>/a.yaml
            "#]],
        );
    }

    #[test]
    fn no_files_at_all_is_an_empty_config() {
        check(
            &[("a.yaml", None)],
            expect![[r#"
                {}
                missing <dir>/a.yaml
            "#]],
        );
    }

    #[test]
    fn an_empty_file_is_an_error_naming_it() {
        check(
            &[("a.yaml", Some("api_gateway: {}\n")), ("b.yaml", Some(""))],
            expect!["error: Unable to parse config file <dir>/b.yaml: it is not a YAML mapping"],
        );
    }

    #[test]
    fn a_file_holding_a_list_is_an_error_naming_it() {
        check(
            &[("a.yaml", Some("- api_gateway\n"))],
            expect!["error: Unable to parse config file <dir>/a.yaml: it is not a YAML mapping"],
        );
    }

    #[test]
    fn invalid_yaml_is_an_error_naming_the_file_and_the_problem() {
        check(
            &[("a.yaml", Some("api_gateway: [\n"))],
            expect![
                "error: Unable to parse config file <dir>/a.yaml: did not find expected node content at line 2 column 1, while parsing a flow node"
            ],
        );
    }

    #[test]
    fn a_directory_in_place_of_a_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = Config::load_files(&[dir.path().to_path_buf()]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read config file {}", dir.path().display())),
            "{err}"
        );
    }

    #[test]
    fn the_candidate_files_follow_the_official_order() {
        let env = Environment::default()
            .with_var("HOME", "/home/t")
            .with_var("XDG_CONFIG_HOME", "/xdg");
        assert_eq!(
            Config::candidate_paths(&env, "toolforge"),
            [
                "/etc/toolforge/toolforge.yaml",
                "/etc/toolforge/common.yaml",
                "/home/t/.toolforge.yaml",
                "/home/t/.config/toolforge.yaml",
                "/xdg/toolforge.yaml",
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn the_home_files_are_read_and_xdg_config_home_comes_last() {
        let home = tempfile::tempdir().unwrap();
        let xdg = home.path().join("xdg");
        std::fs::create_dir_all(home.path().join(".config")).unwrap();
        std::fs::create_dir(&xdg).unwrap();
        std::fs::write(
            home.path().join(".toolforge.yaml"),
            "api_gateway: {url: 'https://home'}\njobs: {timeout: 5}\n",
        )
        .unwrap();
        std::fs::write(
            home.path().join(".config/toolforge.yaml"),
            "api_gateway: {url: 'https://dot-config'}\n",
        )
        .unwrap();
        let env = Environment::default().with_var("HOME", home.path());
        let config = Config::load(&env, "toolforge").unwrap();
        assert_eq!(
            config.get_str("api_gateway", "url").unwrap(),
            Some("https://dot-config")
        );
        assert_eq!(config.get_seconds("jobs", "timeout").unwrap(), Some(5.0));

        std::fs::write(
            xdg.join("toolforge.yaml"),
            "api_gateway: {url: 'https://xdg'}\n",
        )
        .unwrap();
        let env = env.with_var("XDG_CONFIG_HOME", &xdg);
        let config = Config::load(&env, "toolforge").unwrap();
        assert_eq!(
            config.get_str("api_gateway", "url").unwrap(),
            Some("https://xdg")
        );
        assert_eq!(
            config.origin("api_gateway"),
            Some(xdg.join("toolforge.yaml").as_path())
        );
        let found: Vec<bool> = config.files().iter().map(|file| file.found).collect();
        assert_eq!(found[2..], [true, true, true]);
    }

    #[test]
    fn an_unset_xdg_config_home_is_probed_literally() {
        let env = Environment::default().with_var("HOME", "/home/t");
        let paths = Config::candidate_paths(&env, "jobs-cli");
        assert_eq!(paths[0], PathBuf::from("/etc/toolforge/jobs-cli.yaml"));
        assert_eq!(paths[4], PathBuf::from("$XDG_CONFIG_HOME/toolforge.yaml"));
    }

    #[test]
    fn a_key_of_the_wrong_type_is_an_error_naming_the_file_that_set_it() {
        let mut config = Config::default();
        config
            .merge_text(
                "/etc/toolforge/common.yaml".as_ref(),
                "api_gateway: {url: 3}\njobs: {timeout: soon}\n",
            )
            .unwrap();
        assert_eq!(
            config
                .get_str("api_gateway", "url")
                .unwrap_err()
                .to_string(),
            "api_gateway.url in config file /etc/toolforge/common.yaml is not a string"
        );
        assert_eq!(
            config
                .get_seconds("jobs", "timeout")
                .unwrap_err()
                .to_string(),
            "jobs.timeout in config file /etc/toolforge/common.yaml is not a positive number of seconds"
        );
        assert_eq!(config.get_str("builds", "x").unwrap(), None);
    }

    #[test]
    fn a_number_of_seconds_may_be_an_integer_or_a_float() {
        let mut config = Config::default();
        config
            .merge_text(
                "/c".as_ref(),
                "jobs: {timeout: 60}\nbuilds: {timeout: 1.5}\n",
            )
            .unwrap();
        assert_eq!(config.get_seconds("jobs", "timeout").unwrap(), Some(60.0));
        assert_eq!(config.get_seconds("builds", "timeout").unwrap(), Some(1.5));
    }
}
