//! Finding the API, the tool and the credentials, and remembering where each came from.
//!
//! API URL (api-contract.md §1.2), first match wins: an override (the CLI's `--api-url`),
//! `TOOL_TOOLFORGE_API_URL` (even when empty), `api_gateway.url` of the merged config,
//! [`DEFAULT_API_URL`]. Tool: an override (`--tool`), else the kubeconfig's namespace minus
//! its first five characters.

use std::fmt;
use std::path::PathBuf;

use crate::config::Config;
use crate::env::Environment;
use crate::error::Result;
use crate::kubeconfig::Kubeconfig;
use crate::tls::ServerTrust;

/// The API URL when nothing else names one.
pub const DEFAULT_API_URL: &str = "https://api.svc.tools.eqiad1.wikimedia.cloud:30003";

/// What the command line overrides.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--tool`.
    pub tool: Option<String>,
    /// `--api-url`.
    pub api_url: Option<String>,
}

/// Where the API URL came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiUrlSource {
    /// The command line.
    Override,
    /// `TOOL_TOOLFORGE_API_URL`.
    EnvVar,
    /// `api_gateway.url` in this file.
    ConfigFile(PathBuf),
    /// Nothing named one; these files were probed.
    Default {
        /// The configuration files probed.
        probed: Vec<PathBuf>,
    },
}

impl fmt::Display for ApiUrlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiUrlSource::Override => f.write_str("from --api-url"),
            ApiUrlSource::EnvVar => f.write_str("from TOOL_TOOLFORGE_API_URL"),
            ApiUrlSource::ConfigFile(path) => {
                write!(f, "from api_gateway.url in {}", path.display())
            }
            ApiUrlSource::Default { probed } => {
                f.write_str(
                    "the default: TOOL_TOOLFORGE_API_URL is unset and no api_gateway.url in ",
                )?;
                for (idx, path) in probed.iter().enumerate() {
                    if idx > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", path.display())?;
                }
                Ok(())
            }
        }
    }
}

/// Where the tool name came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolSource {
    /// The command line.
    Override,
    /// The namespace of the kubeconfig's current context.
    Namespace,
}

/// The API URL and where it came from.
pub fn resolve_api_url(
    env: &Environment,
    config: &Config,
    api_url_override: Option<&str>,
) -> Result<(String, ApiUrlSource)> {
    if let Some(url) = api_url_override {
        return Ok((url.to_owned(), ApiUrlSource::Override));
    }
    if let Some(url) = env.var("TOOL_TOOLFORGE_API_URL") {
        return Ok((url.to_string_lossy().into_owned(), ApiUrlSource::EnvVar));
    }
    if let Some(url) = config.get_str("api_gateway", "url")? {
        let path = config.origin("api_gateway").unwrap_or_else(|| "".as_ref());
        return Ok((url.to_owned(), ApiUrlSource::ConfigFile(path.to_path_buf())));
    }
    let probed = config
        .files()
        .iter()
        .map(|file| file.path.clone())
        .collect();
    Ok((DEFAULT_API_URL.to_owned(), ApiUrlSource::Default { probed }))
}

/// Everything a command needs to talk to the API, with where each part came from.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The merged configuration files.
    pub config: Config,
    /// The API gateway's base URL, used as is (no normalisation, as the official clients).
    pub api_url: String,
    /// Where [`Discovery::api_url`] came from.
    pub api_url_source: ApiUrlSource,
    /// The kubeconfig read.
    pub kubeconfig: Kubeconfig,
    /// The tool acted on.
    pub tool: String,
    /// Where [`Discovery::tool`] came from.
    pub tool_source: ToolSource,
    /// What the server is verified against.
    pub server_trust: ServerTrust,
    /// The host name, for the User-Agent.
    pub hostname: String,
}

impl Discovery {
    /// Loads the configuration of `client_name` (see [`Config::candidate_paths`]) and the
    /// kubeconfig, and applies `overrides`.
    pub fn discover(
        env: &Environment,
        client_name: &str,
        overrides: &Overrides,
    ) -> Result<Discovery> {
        let config = Config::load(env, client_name)?;
        let (api_url, api_url_source) =
            resolve_api_url(env, &config, overrides.api_url.as_deref())?;
        let kubeconfig = Kubeconfig::load(env)?;
        Ok(Discovery::assemble(
            env,
            config,
            api_url,
            api_url_source,
            kubeconfig,
            overrides,
        ))
    }

    /// Puts together parts found separately (for a caller that reports each step).
    pub fn assemble(
        env: &Environment,
        config: Config,
        api_url: String,
        api_url_source: ApiUrlSource,
        kubeconfig: Kubeconfig,
        overrides: &Overrides,
    ) -> Discovery {
        let (tool, tool_source) = match &overrides.tool {
            Some(tool) => (tool.clone(), ToolSource::Override),
            None => (kubeconfig.tool_name(), ToolSource::Namespace),
        };
        let server_trust = ServerTrust::choose(env, &kubeconfig);
        Discovery {
            config,
            api_url,
            api_url_source,
            kubeconfig,
            tool,
            tool_source,
            server_trust,
            hostname: env.hostname().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::discovery::{
        ApiUrlSource, DEFAULT_API_URL, Discovery, Overrides, ToolSource, resolve_api_url,
    };
    use crate::env::Environment;

    fn config_with_url(url: &str) -> Config {
        let mut config = Config::default();
        config
            .merge_text(
                "/home/t/.toolforge.yaml".as_ref(),
                &format!("api_gateway: {{url: '{url}'}}"),
            )
            .unwrap();
        config
    }

    #[test]
    fn the_api_url_comes_from_override_then_env_then_config_then_default() {
        let config = config_with_url("https://from-config");
        let env = Environment::default().with_var("TOOL_TOOLFORGE_API_URL", "https://from-env");
        let cases = [
            (
                &env,
                &config,
                Some("https://cli"),
                "https://cli",
                "from --api-url",
            ),
            (
                &env,
                &config,
                None,
                "https://from-env",
                "from TOOL_TOOLFORGE_API_URL",
            ),
            (
                &Environment::default(),
                &config,
                None,
                "https://from-config",
                "from api_gateway.url in /home/t/.toolforge.yaml",
            ),
        ];
        for (env, config, url_override, url, source) in cases {
            let (actual_url, actual_source) = resolve_api_url(env, config, url_override).unwrap();
            assert_eq!(
                (actual_url.as_str(), actual_source.to_string().as_str()),
                (url, source)
            );
        }
    }

    #[test]
    fn an_empty_tool_toolforge_api_url_still_wins() {
        let env = Environment::default().with_var("TOOL_TOOLFORGE_API_URL", "");
        let (url, source) = resolve_api_url(&env, &config_with_url("https://c"), None).unwrap();
        assert_eq!((url.as_str(), source), ("", ApiUrlSource::EnvVar));
    }

    #[test]
    fn the_default_url_names_the_files_probed() {
        let dir = tempfile::tempdir().unwrap();
        let paths = [dir.path().join("a.yaml"), dir.path().join("b.yaml")];
        std::fs::write(&paths[1], "jobs: {}\n").unwrap();
        let config = Config::load_files(&paths).unwrap();
        let (url, source) = resolve_api_url(&Environment::default(), &config, None).unwrap();
        assert_eq!(url, DEFAULT_API_URL);
        assert_eq!(
            source.to_string(),
            format!(
                "the default: TOOL_TOOLFORGE_API_URL is unset and no api_gateway.url in {}, {}",
                paths[0].display(),
                paths[1].display()
            )
        );
    }

    #[test]
    fn discovery_reads_the_files_of_a_tool_home_and_honours_the_tool_override() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".kube")).unwrap();
        std::fs::write(
            home.path().join(".kube/config"),
            "current-context: c\ncontexts:\n- {name: c, context: {cluster: k, user: u, namespace: tool-mytool}}\n\
             clusters:\n- {name: k, cluster: {server: s}}\nusers:\n- {name: u, user: {token: t}}\n",
        )
        .unwrap();
        std::fs::write(
            home.path().join(".toolforge.yaml"),
            "api_gateway: {url: 'https://127.0.0.1:1'}\n",
        )
        .unwrap();
        let env = Environment::default()
            .with_var("HOME", home.path())
            .with_var("XDG_CONFIG_HOME", home.path().join("xdg"))
            .with_hostname("bastion");
        let found = Discovery::discover(&env, "toolforge", &Overrides::default()).unwrap();
        assert_eq!(found.api_url, "https://127.0.0.1:1");
        assert_eq!(
            found.api_url_source,
            ApiUrlSource::ConfigFile(home.path().join(".toolforge.yaml"))
        );
        assert_eq!(
            (found.tool.as_str(), &found.tool_source),
            ("mytool", &ToolSource::Namespace)
        );
        assert_eq!(found.kubeconfig.path, home.path().join(".kube/config"));
        assert_eq!(found.hostname, "bastion");
        let overrides = Overrides {
            tool: Some("other".to_owned()),
            api_url: Some("https://elsewhere".to_owned()),
        };
        let found = Discovery::discover(&env, "toolforge", &overrides).unwrap();
        assert_eq!(
            (found.tool.as_str(), found.tool_source),
            ("other", ToolSource::Override)
        );
        assert_eq!(
            (found.api_url.as_str(), found.api_url_source),
            ("https://elsewhere", ApiUrlSource::Override)
        );
    }
}
