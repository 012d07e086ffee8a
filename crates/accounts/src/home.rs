//! The tool home, laid out as maintain-kubeusers writes it.
//!
//! ```text
//! <homes>/<tool>/                 0770 setgid, owned by the tool (as root)
//!   .toolskube/client.crt         0600
//!   .toolskube/client.key         0600
//!   .kube/config                  0600, relative paths to ../.toolskube/
//!   .toolforge.yaml               api_gateway.url; other keys are the tool's
//!   logs/
//! ```

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Serialize;

use crate::files::{Owner, ensure_dir, write_atomic};

/// Mode of a tool home: rwx for the tool and its group, setgid, nothing for others
/// (stricter than the original's 0775 on purpose).
pub const HOME_MODE: u32 = 0o2770;
/// Mode of the credential and kubeconfig directories.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Mode of the credential files and the kubeconfig.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of `.toolforge.yaml`.
pub const CONFIG_FILE_MODE: u32 = 0o640;
/// Mode of `logs/`.
pub const LOGS_DIR_MODE: u32 = 0o2770;

/// The paths of one tool home.
#[derive(Debug, Clone)]
pub struct ToolHome {
    /// The home itself.
    pub root: PathBuf,
}

impl ToolHome {
    /// The home of `tool` under `homes_dir`.
    pub fn new(homes_dir: &Path, tool: &str) -> Self {
        Self {
            root: homes_dir.join(tool),
        }
    }

    /// `.toolskube/client.crt`.
    pub fn client_cert(&self) -> PathBuf {
        self.root.join(".toolskube/client.crt")
    }

    /// `.toolskube/client.key`.
    pub fn client_key(&self) -> PathBuf {
        self.root.join(".toolskube/client.key")
    }

    /// `.kube/config`.
    pub fn kubeconfig(&self) -> PathBuf {
        self.root.join(".kube/config")
    }

    /// `.toolforge.yaml`.
    pub fn toolforge_yaml(&self) -> PathBuf {
        self.root.join(".toolforge.yaml")
    }

    /// Creates the directories of the home.
    pub fn create_dirs(&self, owner: Option<Owner>) -> std::io::Result<()> {
        ensure_dir(&self.root, HOME_MODE, owner)?;
        ensure_dir(&self.root.join(".toolskube"), PRIVATE_DIR_MODE, owner)?;
        ensure_dir(&self.root.join(".kube"), PRIVATE_DIR_MODE, owner)?;
        ensure_dir(&self.root.join("logs"), LOGS_DIR_MODE, owner)?;
        Ok(())
    }

    /// Writes the client certificate and key.
    pub fn write_credentials(
        &self,
        cert_pem: &str,
        key_pem: &str,
        owner: Option<Owner>,
    ) -> std::io::Result<()> {
        write_atomic(
            &self.client_key(),
            key_pem.as_bytes(),
            PRIVATE_FILE_MODE,
            owner,
        )?;
        write_atomic(
            &self.client_cert(),
            cert_pem.as_bytes(),
            PRIVATE_FILE_MODE,
            owner,
        )?;
        Ok(())
    }

    /// Writes `.kube/config` for `tool` pointing at `api_url`.
    pub fn write_kubeconfig(
        &self,
        tool: &str,
        api_url: &str,
        ca_pem: &str,
        owner: Option<Owner>,
    ) -> std::io::Result<()> {
        let user = KubeUser {
            client_certificate: Some("../.toolskube/client.crt".to_owned()),
            client_key: Some("../.toolskube/client.key".to_owned()),
            client_certificate_data: None,
            client_key_data: None,
        };
        let yaml = kubeconfig_yaml(tool, &format!("tf-{tool}"), api_url, ca_pem, user);
        write_atomic(
            &self.kubeconfig(),
            yaml.as_bytes(),
            PRIVATE_FILE_MODE,
            owner,
        )
    }

    /// Makes `.toolforge.yaml` say `api_gateway.url: <api_url>`, keeping every other
    /// key the tool keeps there. Returns whether the file changed.
    pub fn sync_toolforge_yaml(
        &self,
        api_url: &str,
        owner: Option<Owner>,
    ) -> std::io::Result<bool> {
        let path = self.toolforge_yaml();
        let existing = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(err),
        };
        let Some(updated) = updated_toolforge_yaml(existing.as_deref(), api_url)? else {
            return Ok(false);
        };
        write_atomic(&path, updated.as_bytes(), CONFIG_FILE_MODE, owner)?;
        Ok(true)
    }
}

/// The new text of `.toolforge.yaml`, or `None` when it already says `api_url`.
///
/// A file that is not a YAML mapping is the tool's own business: it is refused with
/// an error instead of being overwritten.
pub fn updated_toolforge_yaml(
    existing: Option<&str>,
    api_url: &str,
) -> std::io::Result<Option<String>> {
    use serde_norway::{Mapping, Value};
    let mut doc = match existing {
        None => Mapping::new(),
        Some(text) if text.trim().is_empty() => Mapping::new(),
        Some(text) => match serde_norway::from_str::<Value>(text) {
            Ok(Value::Mapping(map)) => map,
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "the file is not a YAML mapping; not overwriting the tool's own file",
                ));
            }
        },
    };
    let gateway_key = Value::from("api_gateway");
    let url_key = Value::from("url");
    let mut gateway = match doc.get(&gateway_key) {
        Some(Value::Mapping(map)) => map.clone(),
        _ => Mapping::new(),
    };
    if gateway.get(&url_key).and_then(Value::as_str) == Some(api_url) && existing.is_some() {
        return Ok(None);
    }
    gateway.insert(url_key, Value::from(api_url));
    doc.insert(gateway_key, Value::Mapping(gateway));
    let text = serde_norway::to_string(&Value::Mapping(doc))
        .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))?;
    Ok(Some(text))
}

/// A kubeconfig for a user acting on `tool`, with the user's certificate inline.
pub fn inline_kubeconfig(
    tool: &str,
    user_name: &str,
    api_url: &str,
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let user = KubeUser {
        client_certificate: None,
        client_key: None,
        client_certificate_data: Some(b64.encode(cert_pem)),
        client_key_data: Some(b64.encode(key_pem)),
    };
    kubeconfig_yaml(tool, user_name, api_url, ca_pem, user)
}

fn kubeconfig_yaml(
    tool: &str,
    user_name: &str,
    api_url: &str,
    ca_pem: &str,
    user: KubeUser,
) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let config = KubeConfig {
        api_version: "v1",
        kind: "Config",
        clusters: vec![Named {
            name: "toolforge".to_owned(),
            cluster: Some(KubeCluster {
                server: api_url.to_owned(),
                certificate_authority_data: b64.encode(ca_pem),
            }),
            context: None,
            user: None,
        }],
        contexts: vec![Named {
            name: "toolforge".to_owned(),
            cluster: None,
            context: Some(KubeContext {
                cluster: "toolforge".to_owned(),
                namespace: format!("tool-{tool}"),
                user: user_name.to_owned(),
            }),
            user: None,
        }],
        current_context: "toolforge",
        users: vec![Named {
            name: user_name.to_owned(),
            cluster: None,
            context: None,
            user: Some(user),
        }],
    };
    serde_norway::to_string(&config).expect("a kubeconfig of plain strings always serializes")
}

// The kubeconfig is a file format of Kubernetes, not a wire type of ours, so its
// serialization structs live next to the code that writes it.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct KubeConfig {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    clusters: Vec<Named>,
    contexts: Vec<Named>,
    current_context: &'static str,
    users: Vec<Named>,
}

#[derive(Serialize)]
struct Named {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<KubeCluster>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<KubeContext>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<KubeUser>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct KubeCluster {
    server: String,
    certificate_authority_data: String,
}

#[derive(Serialize)]
struct KubeContext {
    cluster: String,
    namespace: String,
    user: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct KubeUser {
    #[serde(skip_serializing_if = "Option::is_none")]
    client_certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_certificate_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_key_data: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolforge_yaml_keeps_the_tools_other_keys() {
        let before = "jobs:\n  timeout: 90\napi_gateway:\n  url: https://old:1\n  extra: kept\n";
        let after = updated_toolforge_yaml(Some(before), "https://new:2")
            .unwrap()
            .unwrap();
        let value: serde_norway::Value = serde_norway::from_str(&after).unwrap();
        assert_eq!(value["api_gateway"]["url"].as_str(), Some("https://new:2"));
        assert_eq!(value["api_gateway"]["extra"].as_str(), Some("kept"));
        assert_eq!(value["jobs"]["timeout"].as_u64(), Some(90));
        assert!(
            updated_toolforge_yaml(Some(&after), "https://new:2")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_toolforge_yaml_that_is_not_a_mapping_is_left_alone() {
        assert!(updated_toolforge_yaml(Some("- a list"), "https://x").is_err());
        let fresh = updated_toolforge_yaml(None, "https://x:1")
            .unwrap()
            .unwrap();
        assert_eq!(fresh, "api_gateway:\n  url: https://x:1\n");
    }
}
