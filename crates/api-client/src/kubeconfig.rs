//! The kubeconfig: the tool's namespace and credentials (api-contract.md §1.3–§1.5).
//!
//! Location: `$KUBECONFIG` (a single path) else `~/.kube/config`. The current context names
//! a cluster and a user; the namespace minus its first five characters is the tool name.
//! Credentials, first match wins: `client-certificate` + `client-key` files (relative paths
//! resolve against the kubeconfig's directory, `~` is expanded), then
//! `client-certificate-data` + `client-key-data` (PEM, or base64 of PEM), then `token`.
//!
//! Unlike the official clients we also read the current cluster's
//! `certificate-authority-data`: our platform writes its CA there, and [`crate::tls`] uses it
//! to verify the gateway when no CA bundle variable is set.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_norway::Value;

use crate::env::Environment;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// Why the kubeconfig was looked for where it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeconfigLocation {
    /// `$KUBECONFIG`.
    EnvVar,
    /// `~/.kube/config`.
    Default,
}

impl KubeconfigLocation {
    /// How error messages say it.
    pub fn describe(self) -> &'static str {
        match self {
            KubeconfigLocation::EnvVar => "from $KUBECONFIG",
            KubeconfigLocation::Default => "the default, ~/.kube/config, as KUBECONFIG is unset",
        }
    }
}

/// What the tool's kubeconfig says.
#[derive(Debug, Clone)]
pub struct Kubeconfig {
    /// The file read.
    pub path: PathBuf,
    /// Why that file.
    pub location: KubeconfigLocation,
    /// `current-context`.
    pub context: String,
    /// The context's namespace, `default` when it has none.
    pub namespace: String,
    /// The context's cluster.
    pub cluster: String,
    /// The cluster's `server` (required, as the official clients require it, and unused).
    pub server: String,
    /// The cluster's `certificate-authority-data`, decoded to PEM.
    pub certificate_authority_pem: Option<Vec<u8>>,
    /// The context's user.
    pub user: String,
    /// The user's credentials.
    pub credentials: Credentials,
}

/// How the client proves who it is.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A client certificate and key in PEM files (paths resolved).
    CertificateFiles {
        /// The client certificate file.
        certificate: PathBuf,
        /// The client private key file.
        key: PathBuf,
    },
    /// A client certificate and key given inline in the kubeconfig (decoded to PEM).
    CertificateData {
        /// The client certificate, PEM.
        certificate_pem: Vec<u8>,
        /// The client private key, PEM.
        key_pem: Secret<Vec<u8>>,
    },
    /// `Authorization: Bearer <token>`.
    Token(Secret<String>),
}

impl Kubeconfig {
    /// Where the kubeconfig is: `$KUBECONFIG` if set and not empty, else `~/.kube/config`.
    pub fn locate(env: &Environment) -> (PathBuf, KubeconfigLocation) {
        match env.non_empty_var("KUBECONFIG") {
            Some(path) => (env.expand_user(Path::new(path)), KubeconfigLocation::EnvVar),
            None => (
                env.expand_user(Path::new("~/.kube/config")),
                KubeconfigLocation::Default,
            ),
        }
    }

    /// Finds, reads and parses the kubeconfig.
    pub fn load(env: &Environment) -> Result<Kubeconfig> {
        let (path, location) = Kubeconfig::locate(env);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::KubeconfigNotFound {
                    path: std::path::absolute(&path).unwrap_or(path),
                    looked_because: location.describe(),
                });
            }
            Err(source) => return Err(Error::KubeconfigRead { path, source }),
        };
        Kubeconfig::parse(env, &path, location, &text)
    }

    /// Parses `text`, the kubeconfig read from `path`.
    pub fn parse(
        env: &Environment,
        path: &Path,
        location: KubeconfigLocation,
        text: &str,
    ) -> Result<Kubeconfig> {
        let doc: Value =
            serde_norway::from_str(text).map_err(|source| Error::KubeconfigSyntax {
                path: path.to_path_buf(),
                source,
            })?;
        let file = File { path, doc: &doc };
        let context_name = file.required_str(&doc, "current-context", "top-level")?;
        let context = file.find("contexts", "context", context_name)?;
        let cluster_name = file.required_str(context, "cluster", "context")?;
        let user_name = file.required_str(context, "user", "context")?;
        let namespace = file
            .optional_str(context, "namespace", "context")?
            .unwrap_or("default");
        let cluster = file.find("clusters", "cluster", cluster_name)?;
        let server = file.required_str(cluster, "server", "cluster")?;
        let certificate_authority_pem = file
            .optional_str(cluster, "certificate-authority-data", "cluster")?
            .map(|data| {
                decode_pem_data(data).ok_or_else(|| Error::BadPem {
                    what: "certificate",
                    origin: format!(
                        "certificate-authority-data of cluster {cluster_name} in {}",
                        path.display()
                    ),
                })
            })
            .transpose()?;
        let user = file.find("users", "user", user_name)?;
        let credentials = file.credentials(env, user, user_name)?;
        Ok(Kubeconfig {
            path: path.to_path_buf(),
            location,
            context: context_name.to_owned(),
            namespace: namespace.to_owned(),
            cluster: cluster_name.to_owned(),
            server: server.to_owned(),
            certificate_authority_pem,
            user: user_name.to_owned(),
            credentials,
        })
    }

    /// The tool name: the namespace minus its first five characters.
    pub fn tool_name(&self) -> String {
        tool_name_from_namespace(&self.namespace)
    }
}

/// The namespace minus its first five characters, blindly, as the official clients do:
/// `tool-mytool` → `mytool`, `default` → `lt`.
pub fn tool_name_from_namespace(namespace: &str) -> String {
    namespace.chars().skip(5).collect()
}

/// A kubeconfig being parsed, for lookups that name the file in their errors.
struct File<'a> {
    path: &'a Path,
    doc: &'a Value,
}

impl File<'_> {
    /// The `item` mapping of the entry of list `section` whose `name` is `name`.
    fn find(&self, section: &str, item: &str, name: &str) -> Result<&Value> {
        let not_found = || Error::KubeconfigKeyNotFound {
            path: self.path.to_path_buf(),
            kind: section.to_owned(),
            name: name.to_owned(),
        };
        let entries = match self.doc.get(section) {
            None | Some(Value::Null) => return Err(not_found()),
            Some(Value::Sequence(entries)) => entries,
            Some(_) => return Err(self.field_error(section, "a list")),
        };
        let entry = entries
            .iter()
            .find(|entry| entry.get("name").and_then(Value::as_str) == Some(name))
            .ok_or_else(not_found)?;
        match entry.get(item) {
            Some(value @ Value::Mapping(_)) => Ok(value),
            _ => Err(self.field_error(&format!("{section}[{name}].{item}"), "a mapping")),
        }
    }

    fn required_str<'v>(&self, value: &'v Value, key: &str, kind: &str) -> Result<&'v str> {
        self.optional_str(value, key, kind)?
            .ok_or_else(|| Error::KubeconfigKeyNotFound {
                path: self.path.to_path_buf(),
                kind: kind.to_owned(),
                name: key.to_owned(),
            })
    }

    fn optional_str<'v>(&self, value: &'v Value, key: &str, kind: &str) -> Result<Option<&'v str>> {
        match value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(self.field_error(&format!("{kind} {key}"), "a string")),
        }
    }

    fn field_error(&self, field: &str, expected: &'static str) -> Error {
        Error::KubeconfigField {
            path: self.path.to_path_buf(),
            field: field.to_owned(),
            expected,
        }
    }

    fn credentials(&self, env: &Environment, user: &Value, user_name: &str) -> Result<Credentials> {
        let field = |key: &str| self.optional_str(user, key, "user");
        if let (Some(certificate), Some(key)) = (field("client-certificate")?, field("client-key")?)
        {
            return Ok(Credentials::CertificateFiles {
                certificate: self.resolve(env, certificate),
                key: self.resolve(env, key),
            });
        }
        if let (Some(certificate), Some(key)) =
            (field("client-certificate-data")?, field("client-key-data")?)
        {
            let origin =
                |name: &str| format!("{name} of user {user_name} in {}", self.path.display());
            let certificate_pem = decode_pem_data(certificate).ok_or_else(|| Error::BadPem {
                what: "certificate",
                origin: origin("client-certificate-data"),
            })?;
            let key_pem = decode_pem_data(key).ok_or_else(|| Error::BadPem {
                what: "private key",
                origin: origin("client-key-data"),
            })?;
            return Ok(Credentials::CertificateData {
                certificate_pem,
                key_pem: Secret::new(key_pem),
            });
        }
        if let Some(token) = field("token")? {
            return Ok(Credentials::Token(Secret::new(token.to_owned())));
        }
        Err(Error::NoCredentials {
            path: self.path.to_path_buf(),
            user: user_name.to_owned(),
        })
    }

    /// `~` expanded, then a relative path resolved against the kubeconfig's directory.
    fn resolve(&self, env: &Environment, path: &str) -> PathBuf {
        let path = env.expand_user(Path::new(path));
        if path.is_absolute() {
            return path;
        }
        match self.path.parent() {
            Some(dir) => dir.join(path),
            None => path,
        }
    }
}

/// Inline kubeconfig data: PEM text as is, or base64 of PEM; `None` if it is neither.
fn decode_pem_data(data: &str) -> Option<Vec<u8>> {
    if data.trim_start().starts_with("-----BEGIN") {
        return Some(data.as_bytes().to_vec());
    }
    let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()?;
    let text = std::str::from_utf8(&decoded).ok()?;
    text.trim_start()
        .starts_with("-----BEGIN")
        .then_some(decoded)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use base64::Engine;
    use expect_test::{Expect, expect};

    use crate::env::Environment;
    use crate::kubeconfig::{
        Credentials, Kubeconfig, KubeconfigLocation, tool_name_from_namespace,
    };

    const PEM_CERT: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    const PEM_KEY: &str = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";

    fn base64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    /// A kubeconfig whose context `toolforge` has `context` and whose user `tf-mytool` has
    /// `user` (YAML flow mappings).
    fn kubeconfig(context: &str, user: &str) -> String {
        format!(
            "clusters:\n- name: toolforge\n  cluster: {{server: 'https://k8s:6443'}}\n\
             contexts:\n- name: toolforge\n  context: {context}\n\
             current-context: toolforge\n\
             users:\n- name: tf-mytool\n  user: {user}\n"
        )
    }

    /// Parses `text` as `/home/t/.kube/config` and renders what was found, or the error.
    #[track_caller]
    fn check(text: &str, expected: Expect) {
        let env = Environment::default().with_var("HOME", "/home/t");
        let actual = match Kubeconfig::parse(
            &env,
            Path::new("/home/t/.kube/config"),
            KubeconfigLocation::Default,
            text,
        ) {
            Ok(config) => {
                let credentials = match &config.credentials {
                    Credentials::CertificateFiles { certificate, key } => {
                        format!("files {} {}", certificate.display(), key.display())
                    }
                    Credentials::CertificateData {
                        certificate_pem,
                        key_pem,
                    } => format!(
                        "data {:?} {:?}",
                        String::from_utf8_lossy(certificate_pem),
                        String::from_utf8_lossy(key_pem.expose())
                    ),
                    Credentials::Token(token) => format!("token {}", token.expose()),
                };
                format!(
                    "tool {:?} namespace {:?} user {} server {} ca {}\n{credentials}",
                    config.tool_name(),
                    config.namespace,
                    config.user,
                    config.server,
                    config.certificate_authority_pem.is_some()
                )
            }
            Err(err) => format!("error: {}", crate::tests::chain(&err)),
        };
        expected.assert_eq(&actual);
    }

    #[test]
    fn relative_certificate_paths_resolve_against_the_kubeconfig_directory() {
        check(
            &kubeconfig(
                "{cluster: toolforge, user: tf-mytool, namespace: tool-mytool}",
                "{client-certificate: ../.toolskube/client.crt, client-key: ../.toolskube/client.key}",
            ),
            expect![[r#"
                tool "mytool" namespace "tool-mytool" user tf-mytool server https://k8s:6443 ca false
                files /home/t/.kube/../.toolskube/client.crt /home/t/.kube/../.toolskube/client.key"#]],
        );
    }

    #[test]
    fn absolute_and_tilde_certificate_paths_are_kept_and_expanded() {
        check(
            &kubeconfig(
                "{cluster: toolforge, user: tf-mytool, namespace: tool-mytool}",
                "{client-certificate: /data/project/mytool/.toolskube/client.crt, client-key: ~/k.key}",
            ),
            expect![[r#"
                tool "mytool" namespace "tool-mytool" user tf-mytool server https://k8s:6443 ca false
                files /data/project/mytool/.toolskube/client.crt /home/t/k.key"#]],
        );
    }

    #[test]
    fn inline_data_may_be_pem_or_base64_of_pem() {
        check(
            &kubeconfig(
                "{cluster: toolforge, user: tf-mytool, namespace: tool-mytool}",
                &format!(
                    "{{client-certificate-data: {:?}, client-key-data: {}}}",
                    PEM_CERT,
                    base64(PEM_KEY)
                ),
            ),
            expect![[r#"
                tool "mytool" namespace "tool-mytool" user tf-mytool server https://k8s:6443 ca false
                data "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n""#]],
        );
    }

    #[test]
    fn inline_data_that_is_neither_pem_nor_base64_of_pem_is_an_error() {
        check(
            &kubeconfig(
                "{cluster: toolforge, user: tf-mytool}",
                &format!(
                    "{{client-certificate-data: {}, client-key-data: bm90IGEga2V5}}",
                    base64(PEM_CERT)
                ),
            ),
            expect![
                "error: client-key-data of user tf-mytool in /home/t/.kube/config holds no PEM private key"
            ],
        );
    }

    #[test]
    fn certificate_files_win_over_inline_data_and_a_token() {
        check(
            &kubeconfig(
                "{cluster: toolforge, user: tf-mytool, namespace: tool-x}",
                &format!(
                    "{{token: t, client-certificate-data: {:?}, client-key-data: {:?}, client-certificate: c, client-key: k}}",
                    PEM_CERT, PEM_KEY
                ),
            ),
            expect![[r#"
                tool "x" namespace "tool-x" user tf-mytool server https://k8s:6443 ca false
                files /home/t/.kube/c /home/t/.kube/k"#]],
        );
    }

    #[test]
    fn a_token_is_used_when_the_certificate_is_incomplete() {
        check(
            &kubeconfig(
                "{cluster: toolforge, user: tf-mytool, namespace: tool-mytool}",
                "{client-certificate: c, token: s3cret}",
            ),
            expect![[r#"
                tool "mytool" namespace "tool-mytool" user tf-mytool server https://k8s:6443 ca false
                token s3cret"#]],
        );
    }

    #[test]
    fn no_usable_credential_is_the_official_error_naming_the_user_and_file() {
        check(
            &kubeconfig(
                "{cluster: toolforge, user: tf-mytool}",
                "{client-certificate: c}",
            ),
            expect![
                "error: Either token or both client-cert and client-key (containing both paths, or cert contents) must be provided in the kubeconfig. Looked at user tf-mytool in /home/t/.kube/config"
            ],
        );
    }

    #[test]
    fn a_context_without_namespace_gives_the_tool_lt() {
        check(
            &kubeconfig("{cluster: toolforge, user: tf-mytool}", "{token: t}"),
            expect![[r#"
                tool "lt" namespace "default" user tf-mytool server https://k8s:6443 ca false
                token t"#]],
        );
    }

    #[test]
    fn a_missing_user_entry_is_the_official_key_not_found_error() {
        check(
            &kubeconfig("{cluster: toolforge, user: nobody}", "{token: t}"),
            expect!["error: Key nobody not found in users section of config /home/t/.kube/config"],
        );
    }

    #[test]
    fn a_missing_cluster_entry_is_the_official_key_not_found_error() {
        check(
            &kubeconfig("{cluster: elsewhere, user: tf-mytool}", "{token: t}"),
            expect![
                "error: Key elsewhere not found in clusters section of config /home/t/.kube/config"
            ],
        );
    }

    #[test]
    fn a_missing_current_context_is_named() {
        check(
            "contexts: []\n",
            expect![
                "error: Key current-context not found in top-level section of config /home/t/.kube/config"
            ],
        );
    }

    #[test]
    fn a_current_context_that_is_not_listed_is_named() {
        check(
            "current-context: gone\ncontexts: []\n",
            expect!["error: Key gone not found in contexts section of config /home/t/.kube/config"],
        );
    }

    #[test]
    fn a_context_without_user_is_named() {
        check(
            &kubeconfig("{cluster: toolforge}", "{token: t}"),
            expect!["error: Key user not found in context section of config /home/t/.kube/config"],
        );
    }

    #[test]
    fn a_section_of_the_wrong_type_is_named() {
        check(
            "current-context: a\ncontexts: {a: b}\n",
            expect!["error: contexts in kubeconfig /home/t/.kube/config is not a list"],
        );
    }

    #[test]
    fn invalid_yaml_is_an_error_naming_the_file() {
        check(
            "current-context: [\n",
            expect![
                "error: kubeconfig /home/t/.kube/config is not valid YAML: did not find expected node content at line 2 column 1, while parsing a flow node"
            ],
        );
    }

    #[test]
    fn the_cluster_ca_is_read_from_base64_data() {
        let text = format!(
            "clusters:\n- name: c\n  cluster: {{server: s, certificate-authority-data: {}}}\n\
             contexts:\n- name: x\n  context: {{cluster: c, user: u, namespace: tool-t}}\n\
             current-context: x\nusers:\n- name: u\n  user: {{token: t}}\n",
            base64(PEM_CERT)
        );
        let config = Kubeconfig::parse(
            &Environment::default(),
            Path::new("/k"),
            KubeconfigLocation::EnvVar,
            &text,
        )
        .unwrap();
        assert_eq!(
            config.certificate_authority_pem.as_deref(),
            Some(PEM_CERT.as_bytes())
        );
    }

    #[test]
    fn the_tool_name_drops_the_first_five_characters_blindly() {
        for (namespace, tool) in [
            ("tool-mytool", "mytool"),
            ("default", "lt"),
            ("tool-", ""),
            ("abc", ""),
            ("tööl-é", "é"),
        ] {
            assert_eq!(tool_name_from_namespace(namespace), tool, "{namespace}");
        }
    }

    #[test]
    fn kubeconfig_is_a_single_path_and_empty_means_unset() {
        let env = Environment::default().with_var("HOME", "/home/t");
        assert_eq!(
            Kubeconfig::locate(&env),
            (
                PathBuf::from("/home/t/.kube/config"),
                KubeconfigLocation::Default
            )
        );
        let with_var = env.clone().with_var("KUBECONFIG", "/a:/b");
        assert_eq!(
            Kubeconfig::locate(&with_var),
            (PathBuf::from("/a:/b"), KubeconfigLocation::EnvVar)
        );
        let empty = env.with_var("KUBECONFIG", "");
        assert_eq!(Kubeconfig::locate(&empty).1, KubeconfigLocation::Default);
    }

    #[test]
    fn a_missing_kubeconfig_names_the_path_and_why_it_was_looked_at() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope");
        let env = Environment::default().with_var("KUBECONFIG", &path);
        let err = Kubeconfig::load(&env).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no kubeconfig at {} (from $KUBECONFIG); did you forget to run 'become <tool>'?",
                path.display()
            )
        );
        let env = Environment::default().with_var("HOME", dir.path());
        let err = Kubeconfig::load(&env).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no kubeconfig at {}/.kube/config (the default, ~/.kube/config, as KUBECONFIG is unset); did you forget to run 'become <tool>'?",
                dir.path().display()
            )
        );
    }

    #[test]
    fn a_kubeconfig_file_is_loaded_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            kubeconfig(
                "{cluster: toolforge, user: tf-mytool, namespace: tool-mytool}",
                "{client-certificate: c.crt, client-key: c.key}",
            ),
        )
        .unwrap();
        let env = Environment::default().with_var("KUBECONFIG", &path);
        let config = Kubeconfig::load(&env).unwrap();
        assert_eq!(config.tool_name(), "mytool");
        assert!(matches!(
            config.credentials,
            Credentials::CertificateFiles { certificate, .. } if certificate == dir.path().join("c.crt")
        ));
    }
}
