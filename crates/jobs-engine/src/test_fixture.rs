//! What the engine's in-crate tests share: a store with user `alice` maintaining tool
//! `mytool`, and an engine configuration inside a temporary directory.

use std::path::Path;

use store::{NewTool, NewUser, Store};
use time::OffsetDateTime;

use crate::EngineConfig;

/// A store in `dir` with user `alice` and her tool `mytool`.
pub(crate) async fn store_with_tool(dir: &Path) -> Store {
    let store = Store::open(&dir.join("t.sqlite")).await.expect("store");
    let now = OffsetDateTime::now_utc();
    store
        .create_user(NewUser {
            name: "alice",
            email: "alice@example.org",
            password_hash: "x",
            is_admin: false,
            now,
        })
        .await
        .expect("user");
    store
        .create_tool(NewTool {
            name: "mytool",
            title: "t",
            description: "d",
            maintainer: "alice",
            now,
        })
        .await
        .expect("tool");
    store
}

/// The default engine configuration with homes and logs under `dir`.
pub(crate) fn config_in(dir: &Path) -> EngineConfig {
    EngineConfig::new(
        dir.join("homes"),
        dir.join("logs"),
        "https://127.0.0.1:1".to_owned(),
    )
}
