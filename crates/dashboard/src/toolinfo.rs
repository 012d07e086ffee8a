//! `toolinfo.json` (v1 and v1.2) at the original's paths (engineer H4b).

use axum::Router;

use crate::DashboardState;

/// The toolinfo routes.
pub fn router() -> Router<DashboardState> {
    Router::new()
}
