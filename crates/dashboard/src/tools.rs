//! Tool pages (engineer H4b): create a tool, the tool page with maintainers, jobs,
//! webservice, envvar names and recent logs, kubeconfig download, the public tool list.

use axum::Router;

use crate::DashboardState;

/// The tool pages' routes.
pub fn router() -> Router<DashboardState> {
    Router::new()
}
