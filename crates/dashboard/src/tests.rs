//! Router tests of the dashboard's core against a real store and CA: sessions, CSRF,
//! escaping, rate limits, the membership workflow and who sees what.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

use crate::testkit::{Browser, Fixture, PASSWORD, Page, assert_redirect, fixture_with};
use crate::{ADMIN_URLS, router};

async fn fixture() -> Fixture {
    fixture_with(&[("root", true)], "localhost").await
}

impl Browser {
    async fn log_in(&mut self, user: &str, password: &str) -> Page {
        self.get("/login").await;
        self.post(
            "/login",
            &[("username", user), ("password", password), ("next", "/")],
        )
        .await
    }

    async fn sign_up(&mut self, user: &str, email: &str) -> Page {
        self.get("/signup").await;
        self.post(
            "/signup",
            &[
                ("username", user),
                ("email", email),
                ("password", PASSWORD),
                ("password2", PASSWORD),
            ],
        )
        .await
    }
}

#[tokio::test]
async fn the_admin_logs_in_with_its_password_and_logging_out_ends_the_session() {
    let fixture = fixture().await;
    let mut browser = Browser::new(&fixture, "10.0.0.1");
    let page = browser.log_in("root", PASSWORD).await;
    assert_redirect(&page, "/");
    let page = browser.get("/profile").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(r#"id="profile-name">root<"#),
        "{}",
        page.body
    );
    let old_cookie = browser.cookie.clone().unwrap();
    let page = browser.post("/logout", &[]).await;
    assert_redirect(&page, "/");
    // The old session id is worth nothing now, even replayed.
    browser.cookie = Some(old_cookie);
    let page = browser.get("/profile").await;
    assert_redirect(&page, "/login?next=/profile");
}

#[tokio::test]
async fn a_post_without_the_sessions_csrf_token_is_refused_with_403() {
    let fixture = fixture().await;
    // A cross-site form: no cookie of ours, no token.
    let mut stranger = Browser::new(&fixture, "10.0.0.2");
    let page = stranger
        .post_raw("/login", &[("username", "root"), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("security token (CSRF)"), "{}", page.body);
    // A logged-in victim whose browser sends the cookie, but the attacker has no token.
    let mut victim = Browser::new(&fixture, "10.0.0.3");
    victim.log_in("root", PASSWORD).await;
    let page = victim
        .post_raw("/profile/settings/ssh-keys/add", &[("public_key", "x")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = victim
        .post_raw(
            "/profile/settings/ssh-keys/add",
            &[("csrf_token", "0000"), ("public_key", "x")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    // With the token, the same form reaches its handler (which names the key rule).
    victim.get("/profile/settings/ssh-keys/").await;
    let page = victim
        .post("/profile/settings/ssh-keys/add", &[("public_key", "x")])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("Unsupported key type"), "{}", page.body);
}

#[tokio::test]
async fn script_in_every_text_field_comes_back_escaped() {
    let fixture = fixture().await;
    let script = "<script>alert(1)</script>";
    let escaped = "&#60;script&#62;alert(1)&#60;/script&#62;";
    let mut browser = Browser::new(&fixture, "10.0.0.4");
    // Sign-up: every field is echoed back in the form or its error.
    browser.get("/signup").await;
    let page = browser
        .post(
            "/signup",
            &[
                ("username", script),
                ("email", script),
                ("password", "x"),
                ("password2", "y"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(!page.body.contains(script), "{}", page.body);
    assert!(page.body.contains(escaped), "{}", page.body);
    // An address may hold markup (no spaces): it is shown escaped on the profile.
    let mut marked = Browser::new(&fixture, "10.0.0.9");
    let page = marked
        .sign_up("marked", "<script>alert(1)</script>@example.org")
        .await;
    assert_redirect(&page, "/profile");
    let page = marked.get("/profile").await;
    assert!(
        !page.body.contains(script) && page.body.contains(escaped),
        "{}",
        page.body
    );
    // The log-in form carries `next` in a hidden field.
    let page = browser
        .get("/login?next=/%22%3E%3Cscript%3Ealert(1)%3C/script%3E")
        .await;
    assert!(!page.body.contains(script), "{}", page.body);
    assert!(
        page.body.contains(&format!("/&#34;&#62;{escaped}")),
        "{}",
        page.body
    );
    // Log-in echoes the user name.
    let page = browser.log_in(script, "wrong").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(!page.body.contains(script) && page.body.contains(escaped));
    // Availability API: JSON, not HTML, and the browser script writes it as text.
    // A real account with a script in its SSH key comment, reason and comments.
    let page = browser.sign_up("mallory", "mallory@example.org").await;
    assert_redirect(&page, "/profile");
    fixture
        .state
        .store
        .confirm_email("mallory", time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    browser.get("/profile/settings/ssh-keys/").await;
    let key = format!("{} {script}", &ED25519[..ED25519.rfind(' ').unwrap()]);
    let page = browser
        .post("/profile/settings/ssh-keys/add", &[("public_key", &key)])
        .await;
    assert_redirect(&page, "/profile/settings/ssh-keys/");
    let page = browser.get("/profile/settings/ssh-keys/").await;
    assert!(
        !page.body.contains(script) && page.body.contains(escaped),
        "{}",
        page.body
    );
    let page = browser
        .post("/profile/settings/ssh-keys/add", &[("public_key", script)])
        .await;
    assert!(
        !page.body.contains(script) && page.body.contains(escaped),
        "{}",
        page.body
    );
    browser.get("/tools/membership/apply").await;
    let page = browser
        .post("/tools/membership/apply", &[("reason", script)])
        .await;
    let request_url = page.location.clone().unwrap();
    browser.get(&request_url).await;
    browser
        .post(&format!("{request_url}/comment"), &[("comment", script)])
        .await;
    let page = browser.get(&request_url).await;
    assert_eq!(page.body.matches(escaped).count(), 2, "{}", page.body);
    assert!(!page.body.contains(script));
    // The admin's queue shows the reason too.
    let mut admin = Browser::new(&fixture, "10.0.0.5");
    admin.log_in("root", PASSWORD).await;
    let page = admin.get("/tools/membership/queue?status=all").await;
    assert!(
        !page.body.contains(script) && page.body.contains("&#60;script&#62;"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_non_admin_gets_403_on_every_admin_url() {
    let fixture = fixture().await;
    let mut browser = Browser::new(&fixture, "10.0.0.6");
    browser.sign_up("alice", "alice@example.org").await;
    browser.get("/profile").await;
    for (method, url) in ADMIN_URLS {
        let page = match *method {
            "GET" => browser.get(url).await,
            _ => browser.post(url, &[("action", "approve")]).await,
        };
        assert_eq!(
            page.status,
            StatusCode::FORBIDDEN,
            "{method} {url}: {}",
            page.body
        );
        assert!(page.body.contains("for Toolforge admins only"), "{url}");
    }
}

#[tokio::test]
async fn the_eleventh_failed_log_in_within_a_minute_is_refused() {
    let fixture = fixture().await;
    let mut browser = Browser::new(&fixture, "10.0.0.7");
    for idx in 0..10 {
        let page = browser.log_in("root", "wrong password").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "attempt {}", idx + 1);
    }
    let page = browser.log_in("root", "wrong password").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        page.body.contains("Too many failed log-ins"),
        "{}",
        page.body
    );
    // Even the right password waits, from this address and for this account.
    let page = browser.log_in("root", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    let mut elsewhere = Browser::new(&fixture, "10.0.0.8");
    let page = elsewhere.log_in("root", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn membership_goes_pending_feedback_pending_approved_with_comments_both_ways() {
    let fixture = fixture().await;
    let mut alice = Browser::new(&fixture, "10.0.1.1");
    alice.sign_up("alice", "alice@example.org").await;
    // Unconfirmed: no request.
    let page = alice.get("/tools/membership/apply").await;
    assert!(
        page.body.contains(r#"id="membership-unconfirmed""#),
        "{}",
        page.body
    );
    let page = alice
        .post("/tools/membership/apply", &[("reason", "a bot")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(!fixture.state.is_member("alice").await.unwrap());

    let mut admin = Browser::new(&fixture, "10.0.1.2");
    admin.log_in("root", PASSWORD).await;
    let page = admin.get("/tools/membership/queue").await;
    assert!(
        page.body.contains(r#"id="unconfirmed-alice""#),
        "{}",
        page.body
    );
    let page = admin.post("/admin/users/alice/confirm-email", &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);

    alice.get("/tools/membership/apply").await;
    let page = alice
        .post("/tools/membership/apply", &[("reason", "I run a bot")])
        .await;
    let url = page.location.clone().unwrap();
    // With an open request, the membership page sends her to it.
    assert_redirect(&alice.get("/tools/membership/").await, &url);
    assert!(
        alice
            .get(&url)
            .await
            .body
            .contains(r#"data-status="pending""#)
    );

    admin.get(&url).await;
    admin
        .post(&format!("{url}/comment"), &[("comment", "Which bot?")])
        .await;
    let page = alice.get(&url).await;
    assert!(
        page.body.contains(r#"data-status="feedback""#),
        "{}",
        page.body
    );
    assert!(page.body.contains("Which bot?"));
    alice
        .post(&format!("{url}/comment"), &[("comment", "A spelling bot")])
        .await;
    assert!(
        alice
            .get(&url)
            .await
            .body
            .contains(r#"data-status="pending""#)
    );

    admin.get(&url).await;
    let page = admin
        .post(&format!("{url}/decide"), &[("action", "approve")])
        .await;
    assert_redirect(&page, &url);
    assert!(fixture.state.is_member("alice").await.unwrap());
    let page = alice.get("/tools/membership/").await;
    assert!(
        page.body.contains("You are already a member of Toolforge"),
        "{}",
        page.body
    );
    // A closed request does not change.
    admin.get(&url).await;
    let page = admin
        .post(&format!("{url}/decide"), &[("action", "decline")])
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    let audit = fixture
        .state
        .store
        .list_audit(&store::AuditFilter::default())
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|entry| entry.action.as_str()).collect();
    assert!(actions.contains(&"membership approve"), "{actions:?}");
    assert!(actions.contains(&"membership comment"), "{actions:?}");
    assert!(actions.contains(&"user confirm-email"), "{actions:?}");
}

#[tokio::test]
async fn a_suppressed_request_is_seen_by_admins_only() {
    let fixture = fixture().await;
    let mut author = Browser::new(&fixture, "10.0.2.1");
    author.sign_up("troll", "troll@example.org").await;
    fixture
        .state
        .store
        .confirm_email("troll", time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    author.get("/tools/membership/apply").await;
    let url = author
        .post("/tools/membership/apply", &[("reason", "abuse")])
        .await
        .location
        .unwrap();
    let mut peer = Browser::new(&fixture, "10.0.2.2");
    peer.sign_up("peer", "peer@example.org").await;
    assert_eq!(peer.get(&url).await.status, StatusCode::NOT_FOUND);

    let mut admin = Browser::new(&fixture, "10.0.2.3");
    admin.log_in("root", PASSWORD).await;
    admin.get(&url).await;
    assert_redirect(&admin.post(&format!("{url}/suppress"), &[]).await, &url);
    assert_eq!(peer.get(&url).await.status, StatusCode::NOT_FOUND);
    assert_eq!(author.get(&url).await.status, StatusCode::NOT_FOUND);
    let page = author.get("/tools/membership/").await;
    assert!(!page.body.contains("abuse"), "{}", page.body);
    let page = admin.get("/tools/membership/queue").await;
    assert!(page.body.contains("abuse") && page.body.contains("(suppressed)"));
    assert_eq!(admin.get(&url).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_locked_user_cannot_log_in() {
    let fixture = fixture().await;
    let mut browser = Browser::new(&fixture, "10.0.3.1");
    browser.sign_up("locky", "locky@example.org").await;
    assert_eq!(browser.get("/profile").await.status, StatusCode::OK);
    sqlx_lock(&fixture, "locky").await;
    // The running session ends at once, and a new log-in is refused.
    assert_redirect(&browser.get("/profile").await, "/login?next=/profile");
    let page = browser.log_in("locky", PASSWORD).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.body.contains("This account is locked"),
        "{}",
        page.body
    );
}

async fn sqlx_lock(fixture: &Fixture, user: &str) {
    fixture
        .state
        .store
        .set_user_locked(user, true, "test", "root", time::OffsetDateTime::now_utc())
        .await
        .unwrap();
}

#[tokio::test]
async fn sign_up_refuses_names_that_break_the_rule_or_are_taken() {
    let fixture = fixture().await;
    let mut browser = Browser::new(&fixture, "10.0.4.1");
    browser.get("/signup").await;
    let page = browser
        .post(
            "/signup",
            &[
                ("username", "Bad Name"),
                ("email", "x@example.org"),
                ("password", PASSWORD),
                ("password2", PASSWORD),
            ],
        )
        .await;
    assert!(page.body.contains("must start with a-z"), "{}", page.body);
    let page = browser.sign_up("root", "x@example.org").await;
    assert!(
        page.body
            .contains("The name &#39;root&#39; is already taken by a user")
            || page
                .body
                .contains("The name &#x27;root&#x27; is already taken by a user"),
        "{}",
        page.body
    );
    let page = browser.get("/register/api/shellname/root").await;
    assert!(page.body.contains(r#""available":false"#), "{}", page.body);
    let page = browser.get("/register/api/shellname/newname").await;
    assert!(page.body.contains(r#""available":true"#), "{}", page.body);
}

#[tokio::test]
async fn without_a_mail_server_the_sign_up_page_says_an_admin_must_confirm() {
    let fixture = fixture().await;
    let mut browser = Browser::new(&fixture, "10.0.5.1");
    let page = browser.get("/signup").await;
    assert!(page.body.contains(r#"id="signup-no-mail""#));
    browser.sign_up("nomail", "nomail@example.org").await;
    let page = browser.get("/profile").await;
    assert!(
        page.body.contains("a Toolforge admin must confirm"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn ssh_keys_are_listed_with_their_fingerprints_and_deleted() {
    let fixture = fixture().await;
    let mut browser = Browser::new(&fixture, "10.0.6.1");
    browser.sign_up("keyholder", "k@example.org").await;
    browser.get("/profile/settings/ssh-keys/").await;
    browser
        .post("/profile/settings/ssh-keys/add", &[("public_key", ED25519)])
        .await;
    let page = browser.get("/profile/settings/ssh-keys/").await;
    assert!(
        page.body
            .contains("SHA256:4YUG7dnDESJFyRyi4ApWkc4Sh+LHKsKlyt9CCT3iLh8"),
        "{}",
        page.body
    );
    let page = browser
        .post("/profile/settings/ssh-keys/add", &[("public_key", ED25519)])
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    let id = fixture.state.store.ssh_keys("keyholder").await.unwrap()[0].id;
    let page = browser
        .post(&format!("/profile/settings/ssh-keys/{id}/delete"), &[])
        .await;
    assert_redirect(&page, "/profile/settings/ssh-keys/");
    assert!(
        fixture
            .state
            .store
            .ssh_keys("keyholder")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_password_change_needs_the_old_password_and_logs_out_other_sessions() {
    let fixture = fixture().await;
    let mut first = Browser::new(&fixture, "10.0.7.1");
    first.sign_up("pat", "pat@example.org").await;
    let mut second = Browser::new(&fixture, "10.0.7.2");
    second.log_in("pat", PASSWORD).await;
    first.get("/profile/settings/change_password/").await;
    let page = first
        .post(
            "/profile/settings/change_password/",
            &[
                ("old_password", "wrong"),
                ("new_password", "another long one"),
                ("new_password2", "another long one"),
            ],
        )
        .await;
    assert!(page.body.contains("The current password is wrong"));
    let page = first
        .post(
            "/profile/settings/change_password/",
            &[
                ("old_password", PASSWORD),
                ("new_password", "another long one"),
                ("new_password2", "another long one"),
            ],
        )
        .await;
    assert_redirect(&page, "/profile");
    assert_eq!(first.get("/profile").await.status, StatusCode::OK);
    assert_redirect(&second.get("/profile").await, "/login?next=/profile");
    assert_redirect(&second.log_in("pat", "another long one").await, "/");
}

#[tokio::test]
async fn unknown_pages_get_the_404_page_in_the_layout() {
    let fixture = fixture().await;
    let mut browser = Browser::new(&fixture, "10.0.8.1");
    let page = browser.get("/no/such/page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    browser.log_in("root", PASSWORD).await;
    let page = browser.get("/tools/membership/status/not-a-number").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        page.body.contains(r#"id="error-page" data-status="404""#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"id="error-page" data-status="404""#));
    assert!(page.body.contains(r#"id="nav""#));
}

#[tokio::test]
async fn sign_ups_are_limited_per_address_and_per_user_name() {
    let fixture = fixture().await;
    let mut browser = Browser::new(&fixture, "10.0.9.1");
    browser.get("/signup").await;
    let attempt = |name: &'static str| {
        [
            ("username", name),
            ("email", "not an address"),
            ("password", PASSWORD),
            ("password2", PASSWORD),
        ]
    };
    for _ in 0..crate::ratelimit::SIGNUPS_PER_MINUTE {
        let page = browser.post("/signup", &attempt("somebody")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    }
    let page = browser.post("/signup", &attempt("somebody")).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        page.body.contains("Too many sign-up attempts"),
        "{}",
        page.body
    );
    // Another address, same name: refused too; another name from there: allowed.
    let mut other = Browser::new(&fixture, "10.0.9.2");
    other.get("/signup").await;
    let page = other.post("/signup", &attempt("somebody")).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    let page = other.post("/signup", &attempt("someone-else")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn cookies_are_secure_when_the_dashboard_url_is_https_and_pages_forbid_framing() {
    let mut fixture = fixture().await;
    let mut config = (*fixture.state.config).clone();
    config.public_url = "https://toolsadmin.example.org".to_owned();
    fixture.state.config = Arc::new(config);
    let response = router(fixture.state.clone())
        .oneshot(Request::get("/login").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.ends_with("; HttpOnly; SameSite=Lax; Secure"),
        "{cookie}"
    );
    assert!(cookie.starts_with("toolforge_session="), "{cookie}");
    let headers = response.headers();
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        policy.contains("script-src 'self'; style-src 'self'"),
        "{policy}"
    );
    // Plain http (the default loopback address): no Secure, or the cookie never returns.
    let fixture = self::fixture().await;
    let response = router(fixture.state.clone())
        .oneshot(Request::get("/login").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[test]
fn only_local_paths_are_followed_after_log_in() {
    use crate::page::safe_next;
    assert_eq!(safe_next("/tools/membership/"), Some("/tools/membership/"));
    for bad in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "evil",
        "",
        "/\nx",
    ] {
        assert_eq!(safe_next(bad), None, "{bad}");
    }
}

const ED25519: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIONuu49nGsxHUjA7T7CbHhbxHOvp8FoKHnCNR/lC3qqR test@example";

/// The ids of the requests a queue page lists, in order.
fn queue_ids(body: &str) -> Vec<i64> {
    body.split(r#"<tr id="request-"#)
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
        .collect()
}

/// The target of the link with this id, `&amp;` decoded.
fn link(body: &str, id: &str) -> Option<String> {
    let at = body.find(&format!(r#"id="{id}""#))?;
    let start = body[..at].rfind("href=\"")? + "href=\"".len();
    let end = start + body[start..].find('"')?;
    Some(body[start..end].replace("&amp;", "&"))
}

#[tokio::test]
async fn the_membership_queue_pages_newest_first_and_keeps_the_status_filter() {
    let fixture = fixture().await;
    let store = &fixture.state.store;
    let now = time::OffsetDateTime::now_utc();
    let mut ids = Vec::new();
    for index in 0..120 {
        let name = format!("applicant{index:03}");
        store
            .create_user(store::NewUser {
                name: &name,
                email: &format!("{name}@example.org"),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                is_admin: false,
                now,
            })
            .await
            .unwrap();
        let id = store
            .create_access_request(&name, &format!("reason {index}"), now)
            .await
            .unwrap();
        if index % 3 == 0 {
            store
                .set_access_status(id, store::AccessStatus::Declined, "root", now)
                .await
                .unwrap();
        }
        ids.push(id);
    }
    let newest_first: Vec<i64> = ids.iter().rev().copied().collect();
    let mut admin = Browser::new(&fixture, "10.0.9.1");
    admin.log_in("root", PASSWORD).await;

    // All: 50, 50, then 20, newest first, with an older link until the last page.
    let mut seen = Vec::new();
    let mut url = "/tools/membership/queue?status=all".to_owned();
    let mut sizes = Vec::new();
    loop {
        let page = admin.get(&url).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let listed = queue_ids(&page.body);
        sizes.push(listed.len());
        seen.extend(listed);
        assert_eq!(
            link(&page.body, "queue-newest").is_some(),
            sizes.len() > 1,
            "{}",
            page.body
        );
        match link(&page.body, "queue-older") {
            Some(older) => {
                assert!(older.starts_with("/tools/membership/queue?status=all&before="));
                url = older;
            }
            None => break,
        }
    }
    assert_eq!(sizes, vec![50, 50, 20]);
    assert_eq!(seen, newest_first);

    // Open (80 of them): the older link keeps the filter, and only open ones are listed.
    let open: Vec<i64> = newest_first
        .iter()
        .copied()
        .filter(|id| !ids.iter().step_by(3).any(|declined| declined == id))
        .collect();
    let page = admin.get("/tools/membership/queue?status=open").await;
    let first = queue_ids(&page.body);
    assert_eq!(first, open[..50]);
    let older = link(&page.body, "queue-older").unwrap();
    assert!(
        older.starts_with("/tools/membership/queue?status=open&before="),
        "{older}"
    );
    let page = admin.get(&older).await;
    assert_eq!(queue_ids(&page.body), open[50..]);
    assert!(link(&page.body, "queue-older").is_none());
    assert_eq!(
        link(&page.body, "queue-newest").as_deref(),
        Some("/tools/membership/queue?status=open")
    );

    // Declined (40): one page, no page links.
    let page = admin.get("/tools/membership/queue?status=declined").await;
    assert_eq!(queue_ids(&page.body).len(), 40);
    assert!(!page.body.contains(r#"id="queue-pages""#), "{}", page.body);

    let page = admin
        .get("/tools/membership/queue?status=all&before=abc")
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.body.contains("before must be a request number"),
        "{}",
        page.body
    );
}
