//! The Toolforge response envelope (api-contract.md §2).
//!
//! Errors carry both the flat `error` list (jobs, envvars, builds clients) and the
//! nested `messages.error` list (components client): the universal body every
//! official client parses.

use serde::{Deserialize, Serialize};

/// `{"info": [...], "warning": [...], "error": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Messages {
    #[serde(default)]
    pub info: Vec<String>,
    #[serde(default)]
    pub warning: Vec<String>,
    #[serde(default)]
    pub error: Vec<String>,
}

/// The universal error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: Vec<String>,
    pub messages: Messages,
}

impl ErrorBody {
    /// An error body carrying one message in both places the clients look.
    pub fn new(message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            error: vec![message.clone()],
            messages: Messages {
                error: vec![message],
                ..Messages::default()
            },
        }
    }
}

/// The answer of `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: String,
    /// Each service's state: `ok`, `down`, or `not-built` for services not built yet.
    pub services: std::collections::BTreeMap<String, String>,
    /// `full`, `partial` or `none`.
    pub isolation: String,
    /// Whether resource limits are enforced.
    pub limits: bool,
    /// Whether mail can be sent.
    pub mail: bool,
}
