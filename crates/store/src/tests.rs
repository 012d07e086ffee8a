//! Store tests against a real SQLite file.

use time::macros::datetime;

use crate::*;

const NOW: time::OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

async fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.sqlite")).await.unwrap();
    (dir, store)
}

fn user(name: &str) -> NewUser<'_> {
    NewUser {
        name,
        email: "a@example.org",
        password_hash: "x",
        is_admin: false,
        now: NOW,
    }
}

fn tool<'a>(name: &'a str, maintainer: &'a str) -> NewTool<'a> {
    NewTool {
        name,
        title: "",
        description: "",
        maintainer,
        now: NOW,
    }
}

#[tokio::test]
async fn a_name_is_never_both_a_user_and_a_tool() {
    let (_dir, store) = open().await;
    store.create_user(user("alice")).await.unwrap();
    store.create_tool(tool("bot", "alice")).await.unwrap();
    let err = store.create_tool(tool("alice", "alice")).await.unwrap_err();
    assert!(matches!(
        err,
        Error::NameTaken {
            kind: PrincipalKind::User,
            ..
        }
    ));
    let err = store.create_user(user("bot")).await.unwrap_err();
    assert!(matches!(
        err,
        Error::NameTaken {
            kind: PrincipalKind::Tool,
            ..
        }
    ));
    assert_eq!(store.list_tools().await.unwrap().len(), 1);
    assert_eq!(store.list_users().await.unwrap().len(), 1);
}

#[tokio::test]
async fn uids_start_at_50000_and_are_never_reused_after_a_delete() {
    let (_dir, store) = open().await;
    store.create_user(user("alice")).await.unwrap();
    let first = store.create_tool(tool("one", "alice")).await.unwrap();
    assert_eq!(first.uid, 50000);
    store.delete_tool("one").await.unwrap();
    let again = store.create_tool(tool("one", "alice")).await.unwrap();
    assert_eq!(again.uid, 50001);
}

#[tokio::test]
async fn a_tool_keeps_at_least_one_maintainer() {
    let (_dir, store) = open().await;
    store.create_user(user("alice")).await.unwrap();
    store.create_user(user("bob")).await.unwrap();
    store.create_tool(tool("bot", "alice")).await.unwrap();
    assert!(matches!(
        store.remove_maintainer("bot", "alice").await,
        Err(Error::Conflict(_))
    ));
    assert!(store.add_maintainer("bot", "bob", NOW).await.unwrap());
    assert!(!store.add_maintainer("bot", "bob", NOW).await.unwrap());
    store.remove_maintainer("bot", "alice").await.unwrap();
    assert_eq!(
        store.maintainers("bot").await.unwrap(),
        vec![("bob".to_owned(), PrincipalKind::User)]
    );
}

#[tokio::test]
async fn regeneration_revokes_and_renewal_supersedes() {
    let (_dir, store) = open().await;
    let cert = |serial| NewCert {
        serial,
        subject: "bot",
        kind: PrincipalKind::Tool,
        not_before: NOW,
        not_after: NOW + time::Duration::days(1),
        now: NOW,
    };
    store
        .record_certificate(cert("01"), CertStatus::Superseded)
        .await
        .unwrap();
    store
        .record_certificate(cert("02"), CertStatus::Superseded)
        .await
        .unwrap();
    assert_eq!(
        store.certificate("01").await.unwrap().unwrap().status,
        CertStatus::Superseded
    );
    store
        .record_certificate(cert("03"), CertStatus::Revoked)
        .await
        .unwrap();
    for serial in ["01", "02"] {
        assert_eq!(
            store.certificate(serial).await.unwrap().unwrap().status,
            CertStatus::Revoked
        );
    }
    assert_eq!(
        store
            .active_certificate("bot", PrincipalKind::Tool)
            .await
            .unwrap()
            .unwrap()
            .serial,
        "03"
    );
}

#[tokio::test]
async fn quota_overrides_are_set_reset_and_deleted_with_their_tool() {
    let (_dir, store) = open().await;
    store.create_user(user("alice")).await.unwrap();
    store.create_tool(tool("bot", "alice")).await.unwrap();
    store
        .set_quota_overrides("bot", &[("pods", "20"), ("memory", "16Gi")], NOW)
        .await
        .unwrap();
    store
        .set_quota_overrides("bot", &[("pods", "30")], NOW)
        .await
        .unwrap();
    let overrides = store.quota_overrides("bot").await.unwrap();
    assert_eq!(
        overrides.into_iter().collect::<Vec<_>>(),
        [
            ("memory".to_owned(), "16Gi".to_owned()),
            ("pods".to_owned(), "30".to_owned())
        ]
    );
    let removed = store
        .reset_quota_overrides("bot", &["pods", "cpu"])
        .await
        .unwrap();
    assert_eq!(removed, ["pods"]);
    assert!(matches!(
        store
            .set_quota_overrides("nobody", &[("pods", "1")], NOW)
            .await,
        Err(Error::NotFound { what: "tool", .. })
    ));
    assert!(store.quota_overrides("nobody").await.unwrap().is_empty());

    store.delete_tool("bot").await.unwrap();
    store.create_tool(tool("bot", "alice")).await.unwrap();
    assert!(store.quota_overrides("bot").await.unwrap().is_empty());
}
