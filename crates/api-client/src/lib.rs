//! The client side of the Toolforge API: discovery and HTTP, as the official clients do it.
//!
//! Discovery replicates `toolforge_weld` (api-contract.md §1): the YAML configuration files
//! ([`config`]), the API URL ([`discovery`]), the kubeconfig with the tool's namespace and
//! credentials ([`kubeconfig`]) and how the server is verified ([`tls`]).
//! [`client`] sends JSON requests and parses the response envelope of §2; [`webservice`]
//! holds the calls of the webservice extension of the jobs API.
//!
//! API Boundary: the CLI builds every command on [`discovery::Discovery`] and
//! [`client::ApiClient`]; it never reads a configuration file or a kubeconfig itself.
//!
//! Invariants:
//! - this crate never reads the process environment: callers pass an [`env::Environment`];
//! - the server is always verified (a CA bundle, the kubeconfig's CA or the system roots);
//!   there is no switch to turn verification off;
//! - TLS is rustls with the ring provider only.

pub mod client;
pub mod config;
pub mod discovery;
pub mod env;
pub mod error;
pub mod kubeconfig;
pub mod secret;
pub mod tls;
pub mod webservice;

pub use error::{Error, ErrorKind, Result};

#[cfg(test)]
mod tests {
    /// `err` and its sources joined with `: `, as anyhow's `{:#}` prints them.
    pub(crate) fn chain(err: &dyn std::error::Error) -> String {
        let mut out = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            source = cause.source();
        }
        out
    }
}
