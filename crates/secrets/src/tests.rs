//! Tests of the service over a real store in a temporary directory.

use std::path::PathBuf;

use crate::{EnvvarName, Error, SecretValue, Secrets, SecretsConfig};

struct Fixture {
    dir: tempfile::TempDir,
    store: store::Store,
    secrets: Secrets,
}

impl Fixture {
    fn keys_dir(&self) -> PathBuf {
        self.dir.path().join("secrets/keys")
    }

    fn key_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.keys_dir())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    async fn set(&self, tool: &str, name: &str, value: &str) -> crate::Result<()> {
        self.secrets
            .set(tool, &n(name), &SecretValue::from(value.to_owned()))
            .await
    }

    async fn value(&self, tool: &str, name: &str) -> Option<String> {
        self.secrets
            .get(tool, &n(name))
            .await
            .unwrap()
            .map(|envvar| envvar.value.expose().to_owned())
    }
}

fn n(name: &str) -> EnvvarName {
    EnvvarName::parse(name).unwrap()
}

async fn fixture(config: SecretsConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(&dir.path().join("toolforge.sqlite"))
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    store
        .create_user(store::NewUser {
            name: "alice",
            email: "alice@example.org",
            password_hash: "x",
            is_admin: false,
            now,
        })
        .await
        .unwrap();
    for tool in ["mytool", "other"] {
        store
            .create_tool(store::NewTool {
                name: tool,
                title: "",
                description: "",
                maintainer: "alice",
                now,
            })
            .await
            .unwrap();
    }
    let secrets = Secrets::open(&store, &dir.path().join("secrets/keys"), config)
        .await
        .unwrap();
    Fixture {
        dir,
        store,
        secrets,
    }
}

#[tokio::test]
async fn values_are_created_replaced_listed_and_deleted_per_tool() {
    let fx = fixture(SecretsConfig::default()).await;
    fx.set("mytool", "MY_VAR", "one").await.unwrap();
    fx.set("mytool", "MY_VAR", "two\nlines\n").await.unwrap();
    fx.set("mytool", "EMPTY_VAR", "").await.unwrap();
    fx.set("other", "MY_VAR", "other's").await.unwrap();
    assert_eq!(
        fx.value("mytool", "MY_VAR").await.as_deref(),
        Some("two\nlines\n")
    );
    assert_eq!(fx.value("mytool", "NOPE_VAR").await, None);
    let listed: Vec<(String, String)> = fx.secrets.job_environment("mytool").await.unwrap();
    assert_eq!(
        listed,
        vec![
            ("EMPTY_VAR".to_owned(), String::new()),
            ("MY_VAR".to_owned(), "two\nlines\n".to_owned())
        ]
    );
    let deleted = fx.secrets.delete("mytool", &n("MY_VAR")).await.unwrap();
    assert_eq!(deleted.value.expose(), "two\nlines\n");
    let err = fx.secrets.delete("mytool", &n("MY_VAR")).await.unwrap_err();
    assert_eq!(err.to_string(), "Envvar MY_VAR not found");
    assert!(err.is_refusal());
    assert_eq!(
        fx.value("other", "MY_VAR").await.as_deref(),
        Some("other's")
    );
}

#[tokio::test]
async fn the_quota_counts_names_and_a_replacement_at_the_limit_still_passes() {
    let fx = fixture(SecretsConfig { quota_per_tool: 3 }).await;
    for name in ["VAR_A", "VAR_B", "VAR_C"] {
        fx.set("mytool", name, "v").await.unwrap();
    }
    let err = fx.set("mytool", "VAR_D", "v").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Envvars quota exceeded: tool mytool already has 3 envvars and its quota is 3; delete one before creating another"
    );
    assert!(err.is_refusal());
    assert_eq!(fx.value("mytool", "VAR_D").await, None);
    fx.set("mytool", "VAR_A", "replaced").await.unwrap();
    fx.set("other", "VAR_D", "v").await.unwrap();
    let quota = fx.secrets.quota("mytool").await.unwrap();
    assert_eq!((quota.quota, quota.used), (3, 3));
    fx.secrets.delete("mytool", &n("VAR_B")).await.unwrap();
    fx.set("mytool", "VAR_D", "v").await.unwrap();
}

#[tokio::test]
async fn a_tools_envvars_quota_override_replaces_the_default_for_that_tool_only() {
    let fx = fixture(SecretsConfig { quota_per_tool: 1 }).await;
    let now = time::OffsetDateTime::now_utc();
    fx.store
        .set_quota_overrides("mytool", &[("envvars", "2")], now)
        .await
        .unwrap();
    for name in ["VAR_A", "VAR_B"] {
        fx.set("mytool", name, "v").await.unwrap();
    }
    let err = fx.set("mytool", "VAR_C", "v").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Envvars quota exceeded: tool mytool already has 2 envvars and its quota is 2; delete one before creating another"
    );
    let quota = fx.secrets.quota("mytool").await.unwrap();
    assert_eq!((quota.quota, quota.used), (2, 2));
    fx.set("other", "VAR_A", "v").await.unwrap();
    assert!(fx.set("other", "VAR_B", "v").await.is_err());

    // Lowered below what the tool has: existing values stay and can be replaced.
    fx.store
        .set_quota_overrides("mytool", &[("envvars", "0")], now)
        .await
        .unwrap();
    fx.set("mytool", "VAR_A", "replaced").await.unwrap();
    assert!(fx.set("mytool", "VAR_C", "v").await.is_err());
    fx.store
        .reset_quota_overrides("mytool", &["envvars"])
        .await
        .unwrap();
    assert_eq!(fx.secrets.quota("mytool").await.unwrap().quota, 1);
    assert_eq!(fx.secrets.default_quota(), 1);
}

#[tokio::test]
async fn refused_writes_change_nothing() {
    let fx = fixture(SecretsConfig::default()).await;
    fx.set("mytool", "MY_VAR", "kept").await.unwrap();
    let too_long = "x".repeat(crate::MAX_VALUE_BYTES + 1);
    for (name, value) in [
        ("MY_VAR", too_long.as_str()),
        ("MY_VAR", "nul\0inside"),
        ("TOOL_DATA_DIR", "/elsewhere"),
    ] {
        let err = fx.set("mytool", name, value).await.unwrap_err();
        assert!(err.is_refusal(), "{err}");
        assert!(!err.to_string().contains(value), "{err}");
    }
    assert_eq!(fx.value("mytool", "MY_VAR").await.as_deref(), Some("kept"));
    assert_eq!(fx.secrets.quota("mytool").await.unwrap().used, 1);
}

#[tokio::test]
async fn the_database_holds_no_value_in_clear_and_rows_cannot_be_moved() {
    let fx = fixture(SecretsConfig::default()).await;
    fx.set("mytool", "MY_VAR", "s3cr3t-in-the-db")
        .await
        .unwrap();
    fx.set("other", "MY_VAR", "another-value").await.unwrap();
    let rows: Vec<Vec<u8>> = sqlx::query_scalar("SELECT ciphertext FROM envvars")
        .fetch_all(fx.store.pool())
        .await
        .unwrap();
    for row in rows {
        assert!(!row.windows(6).any(|w| w == b"s3cr3t"));
    }
    // Copy mytool's sealed value over other's: it must not decrypt as other's.
    sqlx::query(
        "UPDATE envvars SET nonce = (SELECT nonce FROM envvars WHERE tool = 'mytool'),
         ciphertext = (SELECT ciphertext FROM envvars WHERE tool = 'mytool') WHERE tool = 'other'",
    )
    .execute(fx.store.pool())
    .await
    .unwrap();
    let err = fx.secrets.get("other", &n("MY_VAR")).await.unwrap_err();
    assert!(matches!(err, Error::Undecryptable { .. }), "{err}");
    assert!(!err.is_refusal());
    assert!(!err.to_string().contains("s3cr3t"));
    // Rename a row: bound to its name too.
    sqlx::query("UPDATE envvars SET name = 'YOUR_VAR' WHERE tool = 'mytool'")
        .execute(fx.store.pool())
        .await
        .unwrap();
    assert!(fx.secrets.get("mytool", &n("YOUR_VAR")).await.is_err());
}

#[tokio::test]
async fn rotation_reencrypts_every_value_retires_the_old_key_and_survives_a_reopen() {
    let fx = fixture(SecretsConfig {
        quota_per_tool: 1000,
    })
    .await;
    assert_eq!(fx.key_files(), ["1.key"]);
    let mut expected = Vec::new();
    for idx in 0..250 {
        let tool = if idx % 2 == 0 { "mytool" } else { "other" };
        let name = format!("VAR_{idx:03}");
        let value = format!("value-{idx}");
        fx.set(tool, &name, &value).await.unwrap();
        expected.push((tool, name, value));
    }
    let rotation = fx.secrets.rotate_key().await.unwrap();
    assert_eq!(rotation.key_id, 2);
    assert_eq!(rotation.reencrypted, 250);
    assert_eq!(rotation.retired, vec![1]);
    assert!(rotation.unreadable.is_empty());
    assert_eq!(fx.key_files(), ["2.key"]);
    for (tool, name, value) in &expected {
        assert_eq!(fx.value(tool, name).await.as_deref(), Some(value.as_str()));
    }
    let key_ids: Vec<i64> = sqlx::query_scalar("SELECT DISTINCT key_id FROM envvars")
        .fetch_all(fx.store.pool())
        .await
        .unwrap();
    assert_eq!(key_ids, vec![2]);

    let reopened = Secrets::open(&fx.store, &fx.keys_dir(), SecretsConfig::default())
        .await
        .unwrap();
    for (tool, name, value) in &expected {
        let got = reopened.get(tool, &n(name)).await.unwrap().unwrap();
        assert_eq!(got.value.expose(), value);
    }
    assert_eq!(reopened.rotate_key().await.unwrap().key_id, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_stay_readable_and_writable_while_a_rotation_runs() {
    let fx = std::sync::Arc::new(
        fixture(SecretsConfig {
            quota_per_tool: 1000,
        })
        .await,
    );
    for idx in 0..300 {
        fx.set("mytool", &format!("VAR_{idx:03}"), &format!("v{idx}"))
            .await
            .unwrap();
    }
    let rotating = {
        let fx = fx.clone();
        tokio::spawn(async move { fx.secrets.rotate_key().await })
    };
    let mut rounds = 0;
    while !rotating.is_finished() || rounds < 3 {
        for idx in (0..300).step_by(37) {
            let name = format!("VAR_{idx:03}");
            assert_eq!(
                fx.value("mytool", &name).await.as_deref(),
                Some(format!("v{idx}").as_str())
            );
        }
        fx.set("mytool", "VAR_000", "v0").await.unwrap();
        rounds += 1;
        tokio::task::yield_now().await;
    }
    let rotation = rotating.await.unwrap().unwrap();
    assert!(rotation.unreadable.is_empty());
    assert_eq!(fx.secrets.list("mytool").await.unwrap().len(), 300);
}

#[tokio::test]
async fn a_lost_key_directory_never_reuses_a_stored_key_id() {
    let fx = fixture(SecretsConfig::default()).await;
    fx.set("mytool", "MY_VAR", "v").await.unwrap();
    std::fs::remove_dir_all(fx.keys_dir()).unwrap();
    let reopened = Secrets::open(&fx.store, &fx.keys_dir(), SecretsConfig::default())
        .await
        .unwrap();
    let err = reopened.get("mytool", &n("MY_VAR")).await.unwrap_err();
    assert!(matches!(err, Error::MissingKey { key_id: 1, .. }), "{err}");
    reopened
        .set("mytool", &n("NEW_VAR"), &SecretValue::from("w".to_owned()))
        .await
        .unwrap();
    assert_eq!(fx.key_files(), ["2.key"]);
    // The rotation reports the unreadable value and keeps going.
    let rotation = reopened.rotate_key().await.unwrap();
    assert_eq!(rotation.reencrypted, 1);
    assert_eq!(rotation.unreadable.len(), 1);
    assert!(rotation.unreadable[0].starts_with("mytool/MY_VAR: "));
}

#[tokio::test]
async fn deleting_a_tool_deletes_its_envvars() {
    let fx = fixture(SecretsConfig::default()).await;
    fx.set("other", "MY_VAR", "v").await.unwrap();
    fx.store.delete_tool("other").await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM envvars")
        .fetch_one(fx.store.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn the_job_environment_is_the_tools_own_envvars_decrypted_and_sorted_by_name() {
    let fx = fixture(SecretsConfig::default()).await;
    assert_eq!(fx.secrets.job_environment("mytool").await.unwrap(), []);
    fx.set("mytool", "ZED_VAR", "last").await.unwrap();
    fx.set("mytool", "API_TOKEN", "multi\nline value\n")
        .await
        .unwrap();
    fx.set("mytool", "TOOL_OAUTH__SECRET", "").await.unwrap();
    fx.set("other", "API_TOKEN", "not mine").await.unwrap();
    assert_eq!(
        fx.secrets.job_environment("mytool").await.unwrap(),
        [
            ("API_TOKEN".to_owned(), "multi\nline value\n".to_owned()),
            ("TOOL_OAUTH__SECRET".to_owned(), String::new()),
            ("ZED_VAR".to_owned(), "last".to_owned()),
        ]
    );
    // A value that no longer decrypts stops the job's start rather than dropping it.
    sqlx::query("UPDATE envvars SET ciphertext = x'00' WHERE tool = 'mytool' AND name = 'ZED_VAR'")
        .execute(fx.store.pool())
        .await
        .unwrap();
    assert!(fx.secrets.job_environment("mytool").await.is_err());
}
