//! Tests of the admin tables: audit records written with each change, bans' canonical
//! form and conflicts, the disable/enable schedule and the user flags.

use time::macros::datetime;

use crate::*;

const NOW: time::OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
const FORTY_DAYS: time::Duration = time::Duration::days(40);

async fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.sqlite")).await.unwrap();
    (dir, store)
}

async fn user(store: &Store, name: &str, is_admin: bool) {
    store
        .create_user(NewUser {
            name,
            email: "a@example.org",
            password_hash: "x",
            is_admin,
            now: NOW,
        })
        .await
        .unwrap();
}

async fn tool(store: &Store, name: &str, maintainer: &str) {
    store
        .create_tool(NewTool {
            name,
            title: "",
            description: "",
            maintainer,
            now: NOW,
        })
        .await
        .unwrap();
}

#[track_caller]
fn check_network(input: &str, expected: &str) {
    let got = match parse_network(input) {
        Ok(net) => net.to_string(),
        Err(_) => "invalid".to_owned(),
    };
    assert_eq!(got, expected, "parse_network({input:?})");
}

#[test]
fn networks_are_normalised_and_bad_ones_refused() {
    check_network("203.0.113.7", "203.0.113.7/32");
    check_network("203.0.113.7/24", "203.0.113.0/24");
    check_network("0.0.0.0/0", "0.0.0.0/0");
    check_network("2001:DB8::1", "2001:db8::1/128");
    check_network("2001:db8:1:2::5/32", "2001:db8::/32");
    check_network("::ffff:198.51.100.9", "198.51.100.9/32");
    check_network("::ffff:198.51.100.0/120", "198.51.100.0/24");
    check_network(" 10.1.2.3 ", "10.1.2.3/32");
    for bad in [
        "",
        "300.1.1.1",
        "10.0.0.0/33",
        "2001:db8::/129",
        "10.0.0.0/",
        "10.0.0.0/+8",
        "10.0.0.0/-1",
        "example.org",
        "10.0.0.1 10.0.0.2",
        "10.0.0.0/8/8",
    ] {
        check_network(bad, "invalid");
    }
    let err = parse_network("nope").unwrap_err();
    assert!(err.to_string().contains("CIDR"), "{err}");
}

#[tokio::test]
async fn a_ban_is_stored_once_audited_and_lifted_exactly() {
    let (_dir, store) = open().await;
    let net = parse_network("203.0.113.0/24").unwrap();
    let ban = store
        .add_ban(net, "scraping", "unix:root", NOW)
        .await
        .unwrap();
    assert!(ban.covers("203.0.113.200".parse().unwrap()));
    assert!(ban.covers("::ffff:203.0.113.1".parse().unwrap()));
    assert!(!ban.covers("203.0.114.1".parse().unwrap()));

    let again = store.add_ban(net, "again", "alice", NOW).await.unwrap_err();
    assert_eq!(again.to_string(), "203.0.113.0/24 is already banned");
    let inside = store
        .add_ban(parse_network("203.0.113.9").unwrap(), "x", "alice", NOW)
        .await
        .unwrap_err();
    assert!(
        inside
            .to_string()
            .contains("inside the banned network 203.0.113.0/24"),
        "{inside}"
    );
    // A wider network may still be banned; the narrower ban stays.
    store
        .add_ban(
            parse_network("203.0.0.0/16").unwrap(),
            "wider",
            "alice",
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(store.list_bans().await.unwrap().len(), 2);

    let missing = store
        .remove_ban(parse_network("198.51.100.1").unwrap(), "alice", NOW)
        .await
        .unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }));
    let lifted = store.remove_ban(net, "alice", NOW).await.unwrap();
    assert_eq!(lifted.reason, "scraping");
    assert_eq!(lifted.created_by, "unix:root");
    let left: Vec<String> = store
        .list_bans()
        .await
        .unwrap()
        .iter()
        .map(|ban| ban.network.to_string())
        .collect();
    assert_eq!(left, ["203.0.0.0/16"]);

    let audit = store.list_audit(&AuditFilter::default()).await.unwrap();
    let lines: Vec<String> = audit
        .iter()
        .map(|e| format!("{} {} {} {}", e.actor, e.action, e.target, e.detail))
        .collect();
    assert_eq!(
        lines,
        [
            "alice unban-ip 203.0.113.0/24 ",
            "alice ban-ip 203.0.0.0/16 wider",
            "unix:root ban-ip 203.0.113.0/24 scraping",
        ]
    );
}

#[tokio::test]
async fn the_audit_log_is_filtered_by_time_actor_and_target() {
    let (_dir, store) = open().await;
    for (minutes, actor, target) in [(0, "a", "x"), (10, "b", "x"), (20, "a", "y")] {
        store
            .record_audit(&NewAudit {
                actor,
                action: "test",
                target,
                detail: "",
                at: NOW + time::Duration::minutes(minutes),
            })
            .await
            .unwrap();
    }
    let pick = |filter: AuditFilter| {
        let store = store.clone();
        async move {
            store
                .list_audit(&filter)
                .await
                .unwrap()
                .iter()
                .map(|e| format!("{}:{}", e.actor, e.target))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(pick(AuditFilter::default()).await, ["a:y", "b:x", "a:x"]);
    assert_eq!(
        pick(AuditFilter {
            since: Some(NOW + time::Duration::minutes(5)),
            ..AuditFilter::default()
        })
        .await,
        ["a:y", "b:x"]
    );
    assert_eq!(
        pick(AuditFilter {
            actor: Some("a".into()),
            ..AuditFilter::default()
        })
        .await,
        ["a:y", "a:x"]
    );
    assert_eq!(
        pick(AuditFilter {
            target: Some("x".into()),
            limit: Some(1),
            ..AuditFilter::default()
        })
        .await,
        ["b:x"]
    );
}

#[tokio::test]
async fn disabling_schedules_deletion_and_enabling_clears_it() {
    let (_dir, store) = open().await;
    user(&store, "alice", false).await;
    tool(&store, "bot", "alice").await;
    let disabled = store
        .disable_tool("bot", "abuse", "unix:root", NOW, FORTY_DAYS)
        .await
        .unwrap();
    assert_eq!(disabled.delete_at, NOW + FORTY_DAYS);
    assert_eq!(disabled.archive_at, NOW + FORTY_DAYS);
    assert_eq!(
        store.get_tool("bot").await.unwrap().unwrap().status,
        ToolStatus::Disabled
    );
    let twice = store
        .disable_tool("bot", "", "unix:root", NOW, FORTY_DAYS)
        .await
        .unwrap_err();
    assert!(twice.to_string().contains("already disabled"), "{twice}");
    assert!(
        store
            .tools_due_for_deletion(NOW + FORTY_DAYS - time::Duration::seconds(1))
            .await
            .unwrap()
            .is_empty()
    );
    let due = store
        .tools_due_for_deletion(NOW + FORTY_DAYS)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].reason, "abuse");

    store.enable_tool("bot", "alice", NOW).await.unwrap();
    assert!(store.tool_disablement("bot").await.unwrap().is_none());
    assert_eq!(
        store.get_tool("bot").await.unwrap().unwrap().status,
        ToolStatus::Active
    );
    assert!(matches!(
        store.enable_tool("bot", "alice", NOW).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store
            .disable_tool("ghost", "", "alice", NOW, FORTY_DAYS)
            .await,
        Err(Error::NotFound { .. })
    ));
    let actions: Vec<String> = store
        .list_audit(&AuditFilter {
            target: Some("bot".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {}", e.actor, e.action))
        .collect();
    assert_eq!(actions, ["alice tool enable", "unix:root tool disable"]);

    // A disabled tool that is deleted takes its schedule with it.
    store
        .disable_tool("bot", "", "alice", NOW, FORTY_DAYS)
        .await
        .unwrap();
    store.delete_tool("bot").await.unwrap();
    assert!(store.tool_disablement("bot").await.unwrap().is_none());
}

#[tokio::test]
async fn users_are_locked_and_made_admin_but_one_unlocked_admin_always_remains() {
    let (_dir, store) = open().await;
    user(&store, "admin", true).await;
    user(&store, "alice", false).await;
    store
        .set_user_locked("alice", true, "spam", "admin", NOW)
        .await
        .unwrap();
    assert_eq!(
        store.get_user("alice").await.unwrap().unwrap().locked_at,
        Some(NOW)
    );
    assert!(matches!(
        store.set_user_locked("alice", true, "", "admin", NOW).await,
        Err(Error::Conflict(_))
    ));
    store
        .set_user_locked("alice", false, "", "admin", NOW)
        .await
        .unwrap();
    assert_eq!(
        store.get_user("alice").await.unwrap().unwrap().locked_at,
        None
    );

    let last = store
        .set_user_admin("admin", false, "admin", NOW)
        .await
        .unwrap_err();
    assert!(last.to_string().contains("only unlocked admin"), "{last}");
    assert!(matches!(
        store.set_user_locked("admin", true, "", "admin", NOW).await,
        Err(Error::Conflict(_))
    ));
    store
        .set_user_admin("alice", true, "admin", NOW)
        .await
        .unwrap();
    assert!(store.get_user("alice").await.unwrap().unwrap().is_admin);
    store
        .set_user_admin("admin", false, "alice", NOW)
        .await
        .unwrap();
    assert!(matches!(
        store.set_user_admin("ghost", true, "alice", NOW).await,
        Err(Error::NotFound { .. })
    ));
    let actions: Vec<String> = store
        .list_audit(&AuditFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {} {} {}", e.actor, e.action, e.target, e.detail))
        .collect();
    assert_eq!(
        actions,
        [
            "alice user revoke-admin admin ",
            "admin user grant-admin alice ",
            "admin user unlock alice ",
            "admin user lock alice spam",
        ]
    );
}
