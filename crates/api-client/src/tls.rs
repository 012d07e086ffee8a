//! TLS settings: which certificates verify the server, and the client certificate to present.
//!
//! The server is verified against, first match wins (api-contract.md §1.5):
//! 1. the PEM bundle named by `REQUESTS_CA_BUNDLE`, else `CURL_CA_BUNDLE` (empty values are
//!    ignored, as `requests` does), which may also be a directory of PEM files;
//! 2. the current cluster's `certificate-authority-data` in the kubeconfig (our platform
//!    writes its CA there; the official clients ignore it and skip verification instead);
//! 3. the system's root certificates.
//!
//! Invariant: verification is never skipped, and host names are checked.
//! The client certificate, when the kubeconfig has one, is presented when the server asks.
//! The crypto provider is ring, passed explicitly (no process-wide default is installed).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::env::Environment;
use crate::error::{Error, Result};
use crate::kubeconfig::{Credentials, Kubeconfig};

/// What the server's certificate is verified against.
#[derive(Debug, Clone)]
pub enum ServerTrust {
    /// A PEM bundle (file or directory) named by an environment variable.
    Bundle {
        /// The file concerned.
        path: PathBuf,
        /// `REQUESTS_CA_BUNDLE` or `CURL_CA_BUNDLE`.
        variable: &'static str,
    },
    /// The current cluster's `certificate-authority-data`.
    KubeconfigCa {
        /// The kubeconfig.
        kubeconfig: PathBuf,
        /// The current cluster.
        cluster: String,
        /// The CA certificates, PEM.
        pem: Vec<u8>,
    },
    /// The system's root certificates.
    SystemRoots {
        /// For the error message when there are none.
        kubeconfig: PathBuf,
        /// The current cluster.
        cluster: String,
    },
}

impl ServerTrust {
    /// Chooses what to verify the server against (see the module docs for the order).
    pub fn choose(env: &Environment, kubeconfig: &Kubeconfig) -> ServerTrust {
        for variable in ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"] {
            if let Some(path) = env.non_empty_var(variable) {
                return ServerTrust::Bundle {
                    path: PathBuf::from(path),
                    variable,
                };
            }
        }
        match &kubeconfig.certificate_authority_pem {
            Some(pem) => ServerTrust::KubeconfigCa {
                kubeconfig: kubeconfig.path.clone(),
                cluster: kubeconfig.cluster.clone(),
                pem: pem.clone(),
            },
            None => ServerTrust::SystemRoots {
                kubeconfig: kubeconfig.path.clone(),
                cluster: kubeconfig.cluster.clone(),
            },
        }
    }

    /// The root certificates this trust stands for.
    pub fn root_store(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        match self {
            ServerTrust::Bundle { path, variable } => {
                let certificates = read_bundle(path, variable)?;
                let (added, _ignored) = roots.add_parsable_certificates(certificates);
                if added == 0 {
                    return Err(Error::CaBundleEmpty {
                        path: path.clone(),
                        variable,
                    });
                }
            }
            ServerTrust::KubeconfigCa {
                kubeconfig,
                cluster,
                pem,
            } => {
                let origin = || {
                    format!(
                        "certificate-authority-data of cluster {cluster} in {}",
                        kubeconfig.display()
                    )
                };
                let certificates = parse_certificates(pem).map_err(|()| Error::BadPem {
                    what: "certificate",
                    origin: origin(),
                })?;
                let (added, _ignored) = roots.add_parsable_certificates(certificates);
                if added == 0 {
                    return Err(Error::BadPem {
                        what: "certificate",
                        origin: origin(),
                    });
                }
            }
            ServerTrust::SystemRoots {
                kubeconfig,
                cluster,
            } => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
                if roots.is_empty() {
                    return Err(Error::NoTrustAnchors {
                        kubeconfig: kubeconfig.clone(),
                        cluster: cluster.clone(),
                    });
                }
            }
        }
        Ok(roots)
    }
}

impl fmt::Display for ServerTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerTrust::Bundle { path, variable } => {
                write!(f, "{} (from {variable})", path.display())
            }
            ServerTrust::KubeconfigCa {
                kubeconfig,
                cluster,
                ..
            } => write!(
                f,
                "certificate-authority-data of cluster {cluster} in {}",
                kubeconfig.display()
            ),
            ServerTrust::SystemRoots { .. } => f.write_str("the system's root certificates"),
        }
    }
}

/// A rustls client configuration (ring, HTTP/1.1 by ALPN) that verifies the server against
/// `trust` and presents the client certificate of `credentials`, if any.
pub fn client_config(trust: &ServerTrust, kubeconfig: &Kubeconfig) -> Result<rustls::ClientConfig> {
    let roots = trust.root_store()?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .with_root_certificates(roots);
    let mut config = match client_identity(kubeconfig)? {
        Some((certificates, key)) => builder
            .with_client_auth_cert(certificates, key)
            .map_err(Error::Tls)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The client certificate chain and key of the kubeconfig's credentials (`None` for a token).
pub fn client_identity(
    kubeconfig: &Kubeconfig,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>> {
    let (certificate_pem, key_pem, certificate_origin, key_origin) = match &kubeconfig.credentials {
        Credentials::Token(_) => return Ok(None),
        Credentials::CertificateFiles { certificate, key } => {
            let read = |path: &Path, what, field| {
                std::fs::read(path).map_err(|source| Error::CredentialFile {
                    what,
                    path: path.to_path_buf(),
                    field,
                    kubeconfig: kubeconfig.path.clone(),
                    source,
                })
            };
            (
                read(certificate, "client certificate", "client-certificate")?,
                read(key, "client key", "client-key")?,
                format!("client certificate {}", certificate.display()),
                format!("client key {}", key.display()),
            )
        }
        Credentials::CertificateData {
            certificate_pem,
            key_pem,
        } => {
            let origin = |field: &str| {
                format!(
                    "{field} of user {} in {}",
                    kubeconfig.user,
                    kubeconfig.path.display()
                )
            };
            (
                certificate_pem.clone(),
                key_pem.expose().clone(),
                origin("client-certificate-data"),
                origin("client-key-data"),
            )
        }
    };
    let certificates = parse_certificates(&certificate_pem)
        .ok()
        .filter(|certificates| !certificates.is_empty())
        .ok_or_else(|| Error::BadPem {
            what: "certificate",
            origin: certificate_origin,
        })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| Error::BadPem {
        what: "private key",
        origin: key_origin,
    })?;
    Ok(Some((certificates, key)))
}

/// The certificates of a bundle file, or of every file in a bundle directory.
fn read_bundle(path: &Path, variable: &'static str) -> Result<Vec<CertificateDer<'static>>> {
    let read_error = |source| Error::CaBundleRead {
        path: path.to_path_buf(),
        variable,
        source,
    };
    let files = if path.is_dir() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path).map_err(read_error)? {
            let entry_path = entry.map_err(read_error)?.path();
            if entry_path.is_file() {
                files.push(entry_path);
            }
        }
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut certificates = Vec::new();
    for file in files {
        let pem = std::fs::read(&file).map_err(read_error)?;
        // Files of a directory that are not PEM certificates are skipped, as OpenSSL does.
        certificates.extend(parse_certificates(&pem).unwrap_or_default());
    }
    Ok(certificates)
}

fn parse_certificates(pem: &[u8]) -> std::result::Result<Vec<CertificateDer<'static>>, ()> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::env::Environment;
    use crate::kubeconfig::{Credentials, Kubeconfig, KubeconfigLocation};
    use crate::secret::Secret;
    use crate::tls::{ServerTrust, client_config, client_identity};

    fn kubeconfig(ca: Option<&[u8]>, credentials: Credentials) -> Kubeconfig {
        Kubeconfig {
            path: PathBuf::from("/h/.kube/config"),
            location: KubeconfigLocation::Default,
            context: "toolforge".to_owned(),
            namespace: "tool-t".to_owned(),
            cluster: "toolforge".to_owned(),
            server: "https://k8s".to_owned(),
            certificate_authority_pem: ca.map(<[u8]>::to_vec),
            user: "tf-t".to_owned(),
            credentials,
        }
    }

    fn token() -> Credentials {
        Credentials::Token(Secret::new("t".to_owned()))
    }

    /// A self-signed certificate for `localhost` and its key, in PEM.
    fn self_signed() -> (String, String) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        (certified.cert.pem(), certified.signing_key.serialize_pem())
    }

    #[test]
    fn requests_ca_bundle_wins_then_curl_ca_bundle_then_the_kubeconfig_ca() {
        let config = kubeconfig(Some(b"ca"), token());
        let both = Environment::default()
            .with_var("REQUESTS_CA_BUNDLE", "/r.pem")
            .with_var("CURL_CA_BUNDLE", "/c.pem");
        assert_eq!(
            ServerTrust::choose(&both, &config).to_string(),
            "/r.pem (from REQUESTS_CA_BUNDLE)"
        );
        let empty_requests = Environment::default()
            .with_var("REQUESTS_CA_BUNDLE", "")
            .with_var("CURL_CA_BUNDLE", "/c.pem");
        assert_eq!(
            ServerTrust::choose(&empty_requests, &config).to_string(),
            "/c.pem (from CURL_CA_BUNDLE)"
        );
        assert_eq!(
            ServerTrust::choose(&Environment::default(), &config).to_string(),
            "certificate-authority-data of cluster toolforge in /h/.kube/config"
        );
        let without_ca = kubeconfig(None, token());
        assert_eq!(
            ServerTrust::choose(&Environment::default(), &without_ca).to_string(),
            "the system's root certificates"
        );
    }

    #[test]
    fn a_missing_ca_bundle_is_an_error_naming_it_and_its_variable() {
        let trust = ServerTrust::Bundle {
            path: PathBuf::from("/nonexistent/ca.pem"),
            variable: "REQUESTS_CA_BUNDLE",
        };
        let err = trust.root_store().unwrap_err();
        assert_eq!(
            crate::tests::chain(&err),
            "cannot read the CA bundle /nonexistent/ca.pem named by REQUESTS_CA_BUNDLE: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn a_ca_bundle_without_certificates_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let trust = ServerTrust::Bundle {
            path: path.clone(),
            variable: "CURL_CA_BUNDLE",
        };
        assert_eq!(
            trust.root_store().unwrap_err().to_string(),
            format!(
                "the CA bundle {} named by CURL_CA_BUNDLE holds no usable certificate",
                path.display()
            )
        );
    }

    #[test]
    fn a_ca_bundle_may_be_a_file_or_a_directory() {
        let (cert, _key) = self_signed();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.pem"), &cert).unwrap();
        std::fs::write(dir.path().join("README"), "not PEM").unwrap();
        for path in [dir.path().to_path_buf(), dir.path().join("a.pem")] {
            let trust = ServerTrust::Bundle {
                path,
                variable: "REQUESTS_CA_BUNDLE",
            };
            assert_eq!(trust.root_store().unwrap().len(), 1);
        }
    }

    #[test]
    fn a_kubeconfig_ca_that_is_not_a_certificate_is_an_error_naming_it() {
        let config = kubeconfig(
            Some(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            token(),
        );
        let trust = ServerTrust::choose(&Environment::default(), &config);
        assert_eq!(
            trust.root_store().unwrap_err().to_string(),
            "certificate-authority-data of cluster toolforge in /h/.kube/config holds no PEM certificate"
        );
    }

    #[test]
    fn certificate_files_that_do_not_exist_are_errors_naming_the_path_and_field() {
        let config = kubeconfig(
            None,
            Credentials::CertificateFiles {
                certificate: PathBuf::from("/h/.toolskube/client.crt"),
                key: PathBuf::from("/h/.toolskube/client.key"),
            },
        );
        let err = client_identity(&config).unwrap_err();
        assert_eq!(
            crate::tests::chain(&err),
            "cannot read the client certificate /h/.toolskube/client.crt named by client-certificate in kubeconfig /h/.kube/config: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn certificate_files_and_inline_data_give_a_client_identity() {
        let (cert, key) = self_signed();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.crt"), &cert).unwrap();
        std::fs::write(dir.path().join("c.key"), &key).unwrap();
        let files = kubeconfig(
            Some(cert.as_bytes()),
            Credentials::CertificateFiles {
                certificate: dir.path().join("c.crt"),
                key: dir.path().join("c.key"),
            },
        );
        let inline = kubeconfig(
            Some(cert.as_bytes()),
            Credentials::CertificateData {
                certificate_pem: cert.clone().into_bytes(),
                key_pem: Secret::new(key.clone().into_bytes()),
            },
        );
        for config in [files, inline] {
            let (certificates, _key) = client_identity(&config).unwrap().unwrap();
            assert_eq!(certificates.len(), 1);
            let trust = ServerTrust::choose(&Environment::default(), &config);
            let tls = client_config(&trust, &config).unwrap();
            assert!(tls.client_auth_cert_resolver.has_certs());
            assert_eq!(tls.alpn_protocols, [b"http/1.1".to_vec()]);
        }
        assert!(
            client_identity(&kubeconfig(None, token()))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_key_file_without_a_key_is_an_error_naming_it() {
        let (cert, _key) = self_signed();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.crt"), &cert).unwrap();
        std::fs::write(dir.path().join("c.key"), &cert).unwrap();
        let config = kubeconfig(
            None,
            Credentials::CertificateFiles {
                certificate: dir.path().join("c.crt"),
                key: dir.path().join("c.key"),
            },
        );
        assert_eq!(
            client_identity(&config).unwrap_err().to_string(),
            format!(
                "client key {} holds no PEM private key",
                dir.path().join("c.key").display()
            )
        );
    }
}
