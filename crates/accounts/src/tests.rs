//! Account management against a real store, CA and file system, with an injected clock.

use std::sync::Mutex;

use time::macros::datetime;

use crate::*;

/// A clock the test moves by hand.
struct ManualClock(Mutex<OffsetDateTime>);

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

impl ManualClock {
    fn advance(&self, by: time::Duration) {
        *self.0.lock().unwrap() += by;
    }
}

const START: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

async fn setup() -> (tempfile::TempDir, Accounts, Arc<ManualClock>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.sqlite")).await.unwrap();
    let ca = Arc::new(CertificateAuthority::create(START, time::Duration::days(3650)).unwrap());
    let clock = Arc::new(ManualClock(Mutex::new(START)));
    let accounts = Accounts::new(
        store,
        ca,
        AccountsConfig {
            data_dir: dir.path().to_path_buf(),
            homes_dir: dir.path().join("project"),
            public_api_url: "https://127.0.0.1:30003".to_owned(),
            cert_validity: time::Duration::days(365),
            renew_before: time::Duration::days(30),
            set_ownership: false,
        },
        clock.clone(),
    );
    (dir, accounts, clock)
}

fn cert_serial(path: &Path) -> String {
    pki::parse_pem(&std::fs::read_to_string(path).unwrap())
        .unwrap()
        .serial
}

#[tokio::test]
async fn renewal_happens_only_when_the_clock_reaches_the_margin() {
    let (_dir, accounts, clock) = setup().await;
    accounts
        .create_user("alice", "alice@example.org", "password1", false)
        .await
        .unwrap();
    accounts.create_tool("bot", "alice", "", "").await.unwrap();
    let home = accounts.tool_home("bot");
    let first = cert_serial(&home.client_cert());

    clock.advance(time::Duration::days(334));
    assert_eq!(
        accounts.renew_due().await.unwrap(),
        RenewalReport::default()
    );
    assert_eq!(cert_serial(&home.client_cert()), first);

    clock.advance(time::Duration::days(2));
    let report = accounts.renew_due().await.unwrap();
    assert_eq!(report.renewed, vec!["alice".to_owned(), "bot".to_owned()]);
    let second = cert_serial(&home.client_cert());
    assert_ne!(second, first);
    let info = pki::parse_pem(&std::fs::read_to_string(home.client_cert()).unwrap()).unwrap();
    assert_eq!(info.not_after, clock.now() + time::Duration::days(365));

    // Renewal leaves the old certificate valid until it expires; nothing is due again.
    let old = accounts.store().certificate(&first).await.unwrap().unwrap();
    assert_eq!(old.status, store::CertStatus::Superseded);
    assert_eq!(
        accounts.renew_due().await.unwrap(),
        RenewalReport::default()
    );
}

#[tokio::test]
async fn regeneration_revokes_the_old_certificate_at_once() {
    let (_dir, accounts, _clock) = setup().await;
    accounts
        .create_user("alice", "alice@example.org", "password1", false)
        .await
        .unwrap();
    accounts.create_tool("bot", "alice", "", "").await.unwrap();
    let home = accounts.tool_home("bot");
    let first = cert_serial(&home.client_cert());
    let issued = accounts.regenerate("bot").await.unwrap();
    assert_eq!(cert_serial(&home.client_cert()), issued.serial);
    let old = accounts.store().certificate(&first).await.unwrap().unwrap();
    assert_eq!(old.status, store::CertStatus::Revoked);
}

#[tokio::test]
async fn a_bad_name_stores_nothing_and_says_which_rule_it_broke() {
    let (dir, accounts, _clock) = setup().await;
    accounts
        .create_user("alice", "alice@example.org", "password1", false)
        .await
        .unwrap();
    let err = accounts
        .create_tool("Bad_Name", "alice", "", "")
        .await
        .unwrap_err();
    assert!(err.is_refusal());
    assert!(
        err.to_string().contains("lowercase a-z, 0-9, and -"),
        "{err}"
    );
    assert!(accounts.store().list_tools().await.unwrap().is_empty());
    assert!(!dir.path().join("project/Bad_Name").exists());
    let err = accounts
        .create_user("Alice", "alice@example.org", "password1", false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("user name"), "{err}");
}

#[tokio::test]
async fn a_user_kubeconfig_is_only_for_tools_the_user_maintains() {
    let (_dir, accounts, _clock) = setup().await;
    accounts
        .create_user("alice", "alice@example.org", "password1", false)
        .await
        .unwrap();
    accounts
        .create_user("bob", "bob@example.org", "password1", false)
        .await
        .unwrap();
    accounts.create_tool("bot", "alice", "", "").await.unwrap();
    let config = accounts.user_kubeconfig("alice", "bot").await.unwrap();
    let value: serde_norway::Value = serde_norway::from_str(&config).unwrap();
    assert_eq!(
        value["contexts"][0]["context"]["namespace"].as_str(),
        Some("tool-bot")
    );
    assert!(
        value["users"][0]["user"]["client-certificate-data"]
            .as_str()
            .is_some()
    );
    let err = accounts.user_kubeconfig("bob", "bot").await.unwrap_err();
    assert!(matches!(err, Error::NotMaintainer { .. }));
}

#[tokio::test]
async fn a_token_verifies_until_it_is_revoked_or_expires() {
    let (_dir, accounts, clock) = setup().await;
    accounts
        .create_user("alice", "alice@example.org", "password1", false)
        .await
        .unwrap();
    accounts.create_tool("bot", "alice", "", "").await.unwrap();
    let (record, text) = accounts
        .create_token("bot", "jobs", Some(time::Duration::hours(1)))
        .await
        .unwrap();
    assert_eq!(
        accounts.verify_token(&text).await.unwrap().unwrap().id,
        record.id
    );
    let forged = format!("tft_{}_{}", record.id, "x".repeat(43));
    assert_eq!(
        accounts.verify_token(&forged).await.unwrap(),
        Err(tokens::TokenRefusal::Unknown)
    );
    assert_eq!(
        accounts.verify_token("nonsense").await.unwrap(),
        Err(tokens::TokenRefusal::Malformed)
    );
    clock.advance(time::Duration::hours(2));
    assert!(matches!(
        accounts.verify_token(&text).await.unwrap(),
        Err(tokens::TokenRefusal::Expired(_))
    ));
    let (second, text) = accounts.create_token("bot", "all", None).await.unwrap();
    accounts.revoke_token(&second.id).await.unwrap();
    assert_eq!(
        accounts.verify_token(&text).await.unwrap(),
        Err(tokens::TokenRefusal::Revoked)
    );
    assert!(
        accounts
            .create_token("nobody", "all", None)
            .await
            .unwrap_err()
            .is_refusal()
    );
}
