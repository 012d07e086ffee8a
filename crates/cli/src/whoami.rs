//! `toolforge whoami`: what discovery found, step by step, then the gateway's health.
//!
//! Each line is printed as soon as its step succeeds, so when a later step fails the user
//! sees what was found before it, then the error (which names what is missing and where it
//! was looked for).

use std::io::Write;

use anyhow::Context;
use api_client::client::{ApiClient, ClientOptions};
use api_client::config::{CLI_CLIENT_NAME, Config};
use api_client::discovery::{Discovery, Overrides, ToolSource, resolve_api_url};
use api_client::env::Environment;
use api_client::kubeconfig::{Credentials, Kubeconfig};
use api_types::envelope::Health;

/// Runs `whoami`, printing to `out`.
///
/// Any health report counts as success (a gateway under construction reports itself
/// `degraded` while services are `not-built`): only an unreachable gateway is an error.
pub async fn whoami(
    env: &Environment,
    overrides: &Overrides,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let config =
        Config::load(env, CLI_CLIENT_NAME).context("while reading the configuration files")?;
    let (api_url, api_url_source) = resolve_api_url(env, &config, overrides.api_url.as_deref())
        .context("while finding the API URL")?;
    writeln!(out, "API URL:      {api_url} ({api_url_source})")?;

    let kubeconfig = Kubeconfig::load(env).context("while reading the kubeconfig")?;
    let discovery =
        Discovery::assemble(env, config, api_url, api_url_source, kubeconfig, overrides);
    writeln!(out, "Tool:         {}", describe_tool(&discovery))?;
    writeln!(
        out,
        "Credentials:  {}",
        describe_credentials(&discovery.kubeconfig)
    )?;
    writeln!(out, "Server CA:    {}", discovery.server_trust)?;
    out.flush()?;

    let client = ApiClient::new(&discovery, &ClientOptions::default())
        .context("while setting up TLS and the HTTP client")?;
    let health = client
        .health()
        .await
        .with_context(|| format!("while asking {} for its health", discovery.api_url))?;
    writeln!(out, "Gateway:      {}", describe_health(&health))?;
    Ok(())
}

/// `mytool (namespace tool-mytool of context toolforge in /h/.kube/config)`.
pub fn describe_tool(discovery: &Discovery) -> String {
    let kubeconfig = &discovery.kubeconfig;
    match discovery.tool_source {
        ToolSource::Override => format!(
            "{} (from --tool; the kubeconfig's namespace is {})",
            discovery.tool, kubeconfig.namespace
        ),
        ToolSource::Namespace => format!(
            "{} (namespace {} of context {} in {})",
            discovery.tool,
            kubeconfig.namespace,
            kubeconfig.context,
            kubeconfig.path.display()
        ),
    }
}

/// Where the credentials are, never what they are.
pub fn describe_credentials(kubeconfig: &Kubeconfig) -> String {
    let what = match &kubeconfig.credentials {
        Credentials::CertificateFiles { certificate, key } => format!(
            "client certificate {} and key {}",
            certificate.display(),
            key.display()
        ),
        Credentials::CertificateData { .. } => {
            "client certificate and key inline (client-certificate-data, client-key-data)"
                .to_owned()
        }
        Credentials::Token(_) => "bearer token (token)".to_owned(),
    };
    format!(
        "{what}, from user {} in {}",
        kubeconfig.user,
        kubeconfig.path.display()
    )
}

/// `ok (store: ok)`.
pub fn describe_health(health: &Health) -> String {
    let services: Vec<String> = health
        .services
        .iter()
        .map(|(name, state)| format!("{name}: {state}"))
        .collect();
    if services.is_empty() {
        health.status.clone()
    } else {
        format!("{} ({})", health.status, services.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use api_client::config::Config;
    use api_client::discovery::{ApiUrlSource, Discovery, Overrides};
    use api_client::env::Environment;
    use api_client::kubeconfig::{Credentials, Kubeconfig, KubeconfigLocation};
    use api_client::secret::Secret;
    use api_types::envelope::Health;

    use crate::whoami::{describe_credentials, describe_health, describe_tool};

    fn kubeconfig(credentials: Credentials) -> Kubeconfig {
        Kubeconfig {
            path: PathBuf::from("/h/.kube/config"),
            location: KubeconfigLocation::Default,
            context: "toolforge".to_owned(),
            namespace: "tool-mytool".to_owned(),
            cluster: "toolforge".to_owned(),
            server: "https://k".to_owned(),
            certificate_authority_pem: None,
            user: "tf-mytool".to_owned(),
            credentials,
        }
    }

    #[test]
    fn credentials_are_described_by_where_they_are_never_by_their_value() {
        let cases = [
            (
                Credentials::CertificateFiles {
                    certificate: PathBuf::from("/h/.kube/../.toolskube/client.crt"),
                    key: PathBuf::from("/h/.kube/../.toolskube/client.key"),
                },
                "client certificate /h/.kube/../.toolskube/client.crt and key /h/.kube/../.toolskube/client.key, from user tf-mytool in /h/.kube/config",
            ),
            (
                Credentials::CertificateData {
                    certificate_pem: b"pem".to_vec(),
                    key_pem: Secret::new(b"secret key".to_vec()),
                },
                "client certificate and key inline (client-certificate-data, client-key-data), from user tf-mytool in /h/.kube/config",
            ),
            (
                Credentials::Token(Secret::new("s3cret".to_owned())),
                "bearer token (token), from user tf-mytool in /h/.kube/config",
            ),
        ];
        for (credentials, expected) in cases {
            assert_eq!(describe_credentials(&kubeconfig(credentials)), expected);
        }
    }

    #[test]
    fn the_tool_says_whether_it_came_from_the_namespace_or_the_command_line() {
        let assemble = |tool: Option<&str>| {
            Discovery::assemble(
                &Environment::default(),
                Config::default(),
                "https://a".to_owned(),
                ApiUrlSource::Override,
                kubeconfig(Credentials::Token(Secret::new("t".to_owned()))),
                &Overrides {
                    tool: tool.map(str::to_owned),
                    api_url: None,
                },
            )
        };
        assert_eq!(
            describe_tool(&assemble(None)),
            "mytool (namespace tool-mytool of context toolforge in /h/.kube/config)"
        );
        assert_eq!(
            describe_tool(&assemble(Some("other"))),
            "other (from --tool; the kubeconfig's namespace is tool-mytool)"
        );
    }

    #[test]
    fn health_lists_each_service() {
        let mut health = Health {
            status: "degraded".to_owned(),
            services: BTreeMap::from([
                ("jobs".to_owned(), "not-built".to_owned()),
                ("store".to_owned(), "down".to_owned()),
            ]),
            isolation: "none".to_owned(),
            limits: false,
            mail: false,
        };
        assert_eq!(
            describe_health(&health),
            "degraded (jobs: not-built, store: down)"
        );
        health.services.clear();
        assert_eq!(describe_health(&health), "degraded");
    }
}
