//! The one error type of this crate, and how callers should treat each error ([`ErrorKind`]).
//!
//! Messages name what is missing and where it was looked for (file paths, variables), and
//! keep the official clients' wording where the contract gives one (api-contract.md §1.3,
//! §2.2). Causes are `#[source]`s, printed by the caller with `{:#}`.

use std::path::PathBuf;
use std::time::Duration;

use api_types::envelope::Messages;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the caller should treat an error; the CLI derives its exit status from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Configuration, kubeconfig, credentials or TLS settings are missing or wrong.
    Config,
    /// The server refused the request as the user's mistake (HTTP 4xx).
    User,
    /// The server failed (HTTP 5xx other than 502/503) or answered something unreadable.
    Server,
    /// The service could not be reached: connection failure, 502 or 503.
    Unavailable,
}

/// Everything that can go wrong finding the API and talking to it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration file exists but cannot be read.
    #[error("cannot read config file {}", path.display())]
    ConfigRead {
        /// The file concerned.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file is not valid YAML.
    #[error("Unable to parse config file {}", path.display())]
    ConfigSyntax {
        /// The file concerned.
        path: PathBuf,
        /// What the YAML parser said.
        #[source]
        source: serde_norway::Error,
    },
    /// A configuration file is valid YAML but not a mapping (an empty file is null).
    #[error("Unable to parse config file {}: it is not a YAML mapping", path.display())]
    ConfigNotMapping {
        /// The file concerned.
        path: PathBuf,
    },
    /// A known key of a configuration file has the wrong type.
    #[error("{key} in config file {} is not {expected}", path.display())]
    ConfigValue {
        /// The file concerned.
        path: PathBuf,
        /// The key, as `section.key`.
        key: String,
        /// What it should be.
        expected: &'static str,
    },
    /// There is no kubeconfig where it was looked for.
    #[error(
        "no kubeconfig at {} ({looked_because}); did you forget to run 'become <tool>'?",
        path.display()
    )]
    KubeconfigNotFound {
        /// The file concerned.
        path: PathBuf,
        /// Why that path: `$KUBECONFIG` or the default.
        looked_because: &'static str,
    },
    /// The kubeconfig exists but cannot be read.
    #[error("cannot read kubeconfig {}", path.display())]
    KubeconfigRead {
        /// The file concerned.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig is not valid YAML.
    #[error("kubeconfig {} is not valid YAML", path.display())]
    KubeconfigSyntax {
        /// The file concerned.
        path: PathBuf,
        /// What the YAML parser said.
        #[source]
        source: serde_norway::Error,
    },
    /// A named entry or a required key is missing (the official wording, plus the file).
    #[error("Key {name} not found in {kind} section of config {}", path.display())]
    KubeconfigKeyNotFound {
        /// The file concerned.
        path: PathBuf,
        /// The section looked in (`contexts`, `clusters`, `users`, `context`, …).
        kind: String,
        /// The name or key that is missing.
        name: String,
    },
    /// A field of the kubeconfig has the wrong type or content.
    #[error("{field} in kubeconfig {} is not {expected}", path.display())]
    KubeconfigField {
        /// The file concerned.
        path: PathBuf,
        /// The field, e.g. `contexts[toolforge].context`.
        field: String,
        /// What it should be.
        expected: &'static str,
    },
    /// The kubeconfig's user has no usable credential (the official wording, plus where).
    #[error(
        "Either token or both client-cert and client-key (containing both paths, or cert \
         contents) must be provided in the kubeconfig. Looked at user {user} in {}",
        path.display()
    )]
    NoCredentials {
        /// The kubeconfig.
        path: PathBuf,
        /// The kubeconfig user looked at.
        user: String,
    },
    /// A client certificate or key file named by the kubeconfig cannot be read.
    #[error("cannot read the {what} {} named by {field} in kubeconfig {}", path.display(), kubeconfig.display())]
    CredentialFile {
        /// What it is (`client certificate`, `private key`, …).
        what: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The kubeconfig field that names it.
        field: &'static str,
        /// The kubeconfig.
        kubeconfig: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// A certificate or key (file or inline data) holds no usable PEM.
    #[error("{origin} holds no PEM {what}")]
    BadPem {
        /// What it is (`client certificate`, `private key`, …).
        what: &'static str,
        /// Where it came from, e.g. `client-key-data of user tf-x in /h/.kube/config`.
        origin: String,
    },
    /// The CA bundle named by `REQUESTS_CA_BUNDLE` or `CURL_CA_BUNDLE` cannot be read.
    #[error("cannot read the CA bundle {} named by {variable}", path.display())]
    CaBundleRead {
        /// The file concerned.
        path: PathBuf,
        /// `REQUESTS_CA_BUNDLE` or `CURL_CA_BUNDLE`.
        variable: &'static str,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The CA bundle holds no certificate that rustls accepts.
    #[error("the CA bundle {} named by {variable} holds no usable certificate", path.display())]
    CaBundleEmpty {
        /// The file concerned.
        path: PathBuf,
        /// `REQUESTS_CA_BUNDLE` or `CURL_CA_BUNDLE`.
        variable: &'static str,
    },
    /// Neither a CA bundle, nor a kubeconfig CA, nor system roots are available.
    #[error(
        "no certificate to verify the server with: REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE are \
         unset, cluster {cluster} in kubeconfig {} has no certificate-authority-data, and no \
         system root certificates were found",
        kubeconfig.display()
    )]
    NoTrustAnchors {
        /// The kubeconfig.
        kubeconfig: PathBuf,
        /// The current cluster.
        cluster: String,
    },
    /// rustls refused the TLS settings (e.g. a key that does not match the certificate).
    #[error("the TLS settings were refused")]
    Tls(#[source] rustls::Error),
    /// The API URL cannot be used.
    #[error("the API URL '{url}' ({origin}) is not a valid http or https URL")]
    InvalidApiUrl {
        /// The URL requested.
        url: String,
        /// Where it came from, e.g. `TOOL_TOOLFORGE_API_URL`.
        origin: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client")]
    HttpClient(
        /** What the HTTP client said. */
        #[source]
        reqwest::Error,
    ),
    /// HTTP 4xx: the user's mistake. `messages` holds the info and warnings to show too.
    #[error("{message}")]
    User {
        /// The HTTP status.
        status: u16,
        /// The error message, parsed from the body (api-contract.md §2.2).
        message: String,
        /// The info and warnings to show before the error.
        messages: Messages,
    },
    /// HTTP 5xx other than 502/503. `messages` holds the info and warnings to show too.
    #[error("{message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The error message, parsed from the body (api-contract.md §2.2).
        message: String,
        /// The info and warnings to show before the error.
        messages: Messages,
    },
    /// A connection failure (refused, DNS, TLS handshake, connect timeout), or 502/503.
    #[error("The {service} service seems to be down – please retry in a few minutes.")]
    ServiceDown {
        /// `jobs`, `envvars`, `build`, `components` (as the official clients say) or `API`.
        service: &'static str,
        /// The URL requested.
        url: String,
        /// 502 or 503 when the server answered.
        status: Option<u16>,
        /// The connection failure, when there was one.
        #[source]
        source: Option<reqwest::Error>,
    },
    /// The connection was made but no (complete) answer came within the timeout.
    #[error("no answer from {url} within {timeout:?}")]
    ReadTimeout {
        /// The URL requested.
        url: String,
        /// The read timeout.
        timeout: Duration,
        /// What the HTTP client said.
        #[source]
        source: reqwest::Error,
    },
    /// A successful answer that is not what the contract says (e.g. not a JSON object).
    #[error("invalid answer from {url} (HTTP {status})")]
    InvalidResponse {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What is wrong with it.
        #[source]
        source: ResponseProblem,
    },
}

/// What is wrong with an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseProblem {
    /// The body could not be received.
    #[error("the body could not be read")]
    Body(#[source] reqwest::Error),
    /// The body is not JSON.
    #[error("the body is not JSON")]
    NotJson(#[source] serde_json::Error),
    /// The body is JSON but not an object.
    #[error("the body is not a JSON object")]
    NotObject,
    /// The body is an object without the expected fields.
    #[error("the body does not have the expected fields")]
    Shape(#[source] serde_json::Error),
}

impl Error {
    /// How the caller should treat this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::User { .. } => ErrorKind::User,
            Error::Server { .. } | Error::ReadTimeout { .. } | Error::InvalidResponse { .. } => {
                ErrorKind::Server
            }
            Error::ServiceDown { .. } => ErrorKind::Unavailable,
            Error::ConfigRead { .. }
            | Error::ConfigSyntax { .. }
            | Error::ConfigNotMapping { .. }
            | Error::ConfigValue { .. }
            | Error::KubeconfigNotFound { .. }
            | Error::KubeconfigRead { .. }
            | Error::KubeconfigSyntax { .. }
            | Error::KubeconfigKeyNotFound { .. }
            | Error::KubeconfigField { .. }
            | Error::NoCredentials { .. }
            | Error::CredentialFile { .. }
            | Error::BadPem { .. }
            | Error::CaBundleRead { .. }
            | Error::CaBundleEmpty { .. }
            | Error::NoTrustAnchors { .. }
            | Error::Tls(_)
            | Error::InvalidApiUrl { .. }
            | Error::HttpClient(_) => ErrorKind::Config,
        }
    }

    /// The info and warning messages that came with an HTTP error, to show before it
    /// (api-contract.md §2.2 rule 3); `None` for other errors.
    pub fn context_messages(&self) -> Option<&Messages> {
        match self {
            Error::User { messages, .. } | Error::Server { messages, .. } => Some(messages),
            _ => None,
        }
    }
}
