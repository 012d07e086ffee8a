//! Admin pages (engineer H4b): tools (disable, enable, delete, quotas), banned
//! addresses, users, the audit log. Every route takes [`crate::session::AdminUser`] and
//! is listed in [`crate::ADMIN_URLS`].

use axum::Router;

use crate::DashboardState;

/// The admin pages' routes.
pub fn router() -> Router<DashboardState> {
    Router::new()
}
