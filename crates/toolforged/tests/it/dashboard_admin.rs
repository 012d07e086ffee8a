//! The dashboard's admin actions over real HTTP against the real daemon (engineer H6):
//! disabling a tool with a running job and enabling it again, quota overrides, bans at
//! the front proxy, admin rights and locked users, deleting a tool; and a maintainer
//! using the kubeconfig downloaded from the tool page with our `toolforge` CLI.
//!
//! Each effect is checked where it lands: the job's run history, the gateway, the front
//! proxy, `toolforged admin …` and the audit log (the admin page and `audit --json`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use test_support::daemon::{Daemon, DaemonOptions};
use test_support::https::HttpResponse;
use test_support::poll::eventually;
use test_support::skip::{is_root, prerequisite_missing};

use crate::bin;
use crate::dashboard_http::{Browser, Page};

const JOBS: &str = "/jobs/v1/tool/mytool/jobs/";

impl Browser {
    /// Logs in and asserts it worked.
    #[track_caller]
    fn logged_in(daemon: &Daemon, user: &str, password: &str) -> Browser {
        let mut browser = Browser::new(daemon);
        let page = browser.log_in(user, password);
        assert_eq!(page.status, 303, "logging in as {user}: {}", page.body);
        browser
    }

    /// Posts from the page at `form_page` (for its token), expects the redirect to
    /// `back`, follows it and returns that page (with the flash message).
    #[track_caller]
    fn act(&mut self, form_page: &str, path: &str, fields: &[(&str, &str)], back: &str) -> Page {
        let page = self.get(form_page);
        assert_eq!(page.status, 200, "{form_page}: {}", page.body);
        let page = self.post(path, fields);
        assert_eq!(page.status, 303, "POST {path}: {}", page.body);
        assert_eq!(page.location.as_deref(), Some(back), "POST {path}");
        let page = self.get(back);
        assert_eq!(page.status, 200, "{back}: {}", page.body);
        page
    }
}

/// The text of the flash message of a page, if it shows one.
fn flash(page: &Page) -> Option<String> {
    let start = page.body.find("class=\"flash flash-")?;
    let text_start = start + page.body[start..].find('>')? + 1;
    let end = text_start + page.body[text_start..].find('<')?;
    Some(unescaped(&page.body[text_start..end]))
}

/// HTML text with askama's escapes undone.
fn unescaped(text: &str) -> String {
    text.replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `(actor, action, target, detail, at)` of the audit records of `target`, oldest first,
/// from `toolforged admin audit --json`.
fn audit_of(daemon: &Daemon, target: &str) -> Vec<(String, String, String, String, i64)> {
    let records = daemon.admin_json(&["audit", "--target", target]);
    let mut rows: Vec<_> = records
        .as_array()
        .expect("audit --json is a list")
        .iter()
        .map(|record| {
            let text = |key: &str| record[key].as_str().unwrap_or_default().to_owned();
            let at = time::OffsetDateTime::parse(
                &text("at"),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap_or_else(|err| panic!("{record}: {err}"))
            .unix_timestamp();
            (
                text("actor"),
                text("action"),
                text("target"),
                text("detail"),
                at,
            )
        })
        .collect();
    rows.reverse();
    rows
}

/// Asserts that the admin's audit page, filtered by `target`, shows a row with `action`
/// by `actor`.
#[track_caller]
fn audit_page_shows(admin: &mut Browser, target: &str, actor: &str, action: &str) {
    let page = admin.get(&format!("/admin/audit?target={target}"));
    assert_eq!(page.status, 200, "{}", page.body);
    let squeezed: String = page.body.lines().map(str::trim).collect();
    let row = format!("<td>{actor}</td><td>{action}</td><td>{target}</td>");
    assert!(
        unescaped(&squeezed).contains(&row),
        "no row {action} by {actor} on {target} in the audit page:\n{}",
        page.body
    );
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Whether a replica of `job` of `mytool` is running, as the run history says.
fn running(daemon: &Daemon, job: &str) -> bool {
    runs(daemon, job).iter().any(|run| run.ended_at.is_none())
}

fn runs(daemon: &Daemon, job: &str) -> Vec<store::RunRecord> {
    let db = daemon.data_dir().join("toolforge.sqlite");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = store::Store::open(&db).await.unwrap();
        let runs = store.recent_runs("mytool", job, 100).await.unwrap();
        store.close().await;
        runs
    })
}

/// A daemon whose first start printed the admin password, with user `alice` (whose
/// generated password is returned) maintaining `mytool`.
fn daemon_with_alice(options: DaemonOptions) -> (Daemon, String) {
    let daemon = options.start(bin());
    let alice = daemon.create_user("alice", "alice@example.org");
    let password = alice["password"]
        .as_str()
        .expect("a generated password")
        .to_owned();
    daemon.create_tool("mytool", "alice");
    (daemon, password)
}

/// `GET /` with `Host: host` at the front proxy over a new connection: the status.
fn proxy_status(proxy: SocketAddr, host: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(proxy)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))
}

#[track_caller]
fn assert_refused_as_disabled(res: HttpResponse) {
    assert_eq!(res.status, 403, "{}", res.text());
    assert!(
        res.text().contains("tool 'mytool' is disabled"),
        "{}",
        res.text()
    );
}

#[test]
fn an_admin_disables_a_tool_with_a_running_job_from_the_admin_page_and_enables_it_again() {
    const TEST: &str =
        "an_admin_disables_a_tool_with_a_running_job_from_the_admin_page_and_enables_it_again";
    if !is_root() {
        return prerequisite_missing(TEST, "jobs run isolated as their tool's uid only as root");
    }
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("toolforged.toml");
    std::fs::write(&config, "job-stop-grace = \"2s\"\n").unwrap();
    let (daemon, _) = daemon_with_alice(DaemonOptions::default().arg("--config").arg(&config));
    let mut conn = daemon.tool_connection("mytool");
    let job = json!({"name": "keeper", "cmd": "exec sleep 100000", "imagename": "bookworm",
        "continuous": true, "filelog": false});
    let body = serde_json::to_vec(&job).unwrap();
    let res = conn
        .request(
            "POST",
            JOBS,
            &[("Content-Type", "application/json")],
            Some(&body),
        )
        .unwrap();
    assert_eq!(res.status, 201, "{}", res.text());
    eventually(Duration::from_secs(30), || {
        running(&daemon, "keeper").then_some(())
    })
    .expect("the continuous job runs");

    let mut admin = Browser::logged_in(&daemon, "admin", daemon.admin_password());
    let before = unix_now();
    let confirm = admin.get("/admin/tools/mytool/disable");
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm.body.contains("id=\"tool-disable-form\""),
        "{}",
        confirm.body
    );
    let page = admin.act(
        "/admin/tools/mytool/disable",
        "/admin/tools/mytool/disable",
        &[("reason", "spamming from the dashboard test")],
        "/admin/tools/mytool",
    );
    let after = unix_now();
    let message = flash(&page).unwrap_or_default();
    assert!(
        message.starts_with("mytool is disabled; it will be archived and deleted on"),
        "{message}"
    );
    // At once: when the page answered, the workload had stopped.
    let history = runs(&daemon, "keeper");
    assert!(
        history.iter().all(|run| run.ended_at.is_some()),
        "{history:?}"
    );
    let keeper_runs = history.len();
    assert_refused_as_disabled(conn.get(JOBS).unwrap());
    assert_refused_as_disabled(daemon.tool_connection("mytool").get(JOBS).unwrap());
    assert_eq!(
        daemon.admin_json(&["tool", "show", "mytool"])["status"],
        "disabled"
    );

    // Who, what and when, in both views of the audit log.
    let records = audit_of(&daemon, "mytool");
    let disable = records
        .iter()
        .find(|row| row.1 == "tool disable")
        .unwrap_or_else(|| panic!("no tool disable record: {records:?}"));
    assert_eq!(disable.0, "admin");
    assert!(
        disable.3.contains("spamming from the dashboard test"),
        "{disable:?}"
    );
    assert!(
        before - 1 <= disable.4 && disable.4 <= after + 1,
        "{disable:?}"
    );
    audit_page_shows(&mut admin, "mytool", "admin", "tool disable");

    let page = admin.act(
        "/admin/tools/mytool",
        "/admin/tools/mytool/enable",
        &[],
        "/admin/tools/mytool",
    );
    assert_eq!(flash(&page).as_deref(), Some("mytool is enabled again"));
    eventually(Duration::from_secs(30), || {
        running(&daemon, "keeper").then_some(())
    })
    .expect("the continuous job runs again");
    assert!(runs(&daemon, "keeper").len() > keeper_runs);
    assert_eq!(
        daemon.tool_connection("mytool").get(JOBS).unwrap().status,
        200
    );
    let records = audit_of(&daemon, "mytool");
    assert!(
        records
            .iter()
            .any(|row| row.0 == "admin" && row.1 == "tool enable"),
        "{records:?}"
    );
    audit_page_shows(&mut admin, "mytool", "admin", "tool enable");

    // Enabling it again is refused with the reason, and changes nothing.
    let page = admin.act(
        "/admin/tools/mytool",
        "/admin/tools/mytool/enable",
        &[],
        "/admin/tools/mytool",
    );
    assert_eq!(
        flash(&page).as_deref(),
        Some("tool 'mytool' is not disabled")
    );
}

#[test]
fn a_quota_override_set_on_the_admin_page_is_checked_and_toolforged_admin_quota_show_has_it() {
    let (daemon, _) = daemon_with_alice(DaemonOptions::default());
    let overrides = |daemon: &Daemon| -> Vec<(String, serde_json::Value)> {
        daemon.admin_json(&["quota", "show", "mytool"])["quota"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|entry| !entry["override"].is_null())
            .map(|entry| {
                (
                    entry["key"].as_str().unwrap().to_owned(),
                    entry["override"].clone(),
                )
            })
            .collect()
    };
    let mut admin = Browser::logged_in(&daemon, "admin", daemon.admin_password());
    for (bad, rule) in [
        ("pods=lots", "pods"),
        ("pods=20 memory=lots", "memory"),
        ("bananas=3", "bananas"),
        ("pods", "'pods' is not KEY=VALUE"),
    ] {
        admin.get("/admin/tools/mytool");
        let page = admin.post("/admin/tools/mytool/quota", &[("assignments", bad)]);
        assert_eq!(page.status, 400, "{bad}: {}", page.body);
        let start = page
            .body
            .find("id=\"quota-error\">")
            .unwrap_or_else(|| panic!("{bad}: no error on the page: {}", page.body));
        let error = &page.body[start..];
        let error = unescaped(&error[..error.find("</p>").unwrap()]);
        assert!(error.contains("Nothing was changed"), "{bad}: {error}");
        assert!(error.contains(rule), "{bad}: {error}");
        assert_eq!(overrides(&daemon), [], "{bad} changed something");
    }

    let page = admin.act(
        "/admin/tools/mytool",
        "/admin/tools/mytool/quota",
        &[("assignments", "pods=20\nmemory=16384Mi")],
        "/admin/tools/mytool",
    );
    assert!(
        flash(&page).unwrap_or_default().starts_with("Set "),
        "{:?}",
        flash(&page)
    );
    assert_eq!(
        overrides(&daemon),
        [
            ("pods".to_owned(), json!("20")),
            ("memory".to_owned(), json!("16Gi"))
        ]
    );
    let table = daemon.admin_ok(&["quota", "show", "mytool"]);
    assert!(
        table.contains("\npods        10       20        20\n"),
        "{table}"
    );

    admin.act(
        "/admin/tools/mytool",
        "/admin/tools/mytool/quota/reset",
        &[("key", "pods")],
        "/admin/tools/mytool",
    );
    assert_eq!(overrides(&daemon), [("memory".to_owned(), json!("16Gi"))]);
    let actions: Vec<(String, String)> = audit_of(&daemon, "mytool")
        .into_iter()
        .filter(|row| row.1.starts_with("quota"))
        .map(|row| (row.0, row.1))
        .collect();
    assert_eq!(
        actions,
        [
            ("admin".to_owned(), "quota set".to_owned()),
            ("admin".to_owned(), "quota reset".to_owned())
        ]
    );
    audit_page_shows(&mut admin, "mytool", "admin", "quota set");
}

#[test]
fn an_address_banned_on_the_admin_page_is_refused_by_the_front_proxy_until_the_ban_is_lifted() {
    let (daemon, _) = daemon_with_alice(DaemonOptions::default());
    let proxy = daemon.addresses().proxy;
    let host = "mytool.localhost";
    let served = proxy_status(proxy, host).unwrap();
    assert_ne!(served, 403, "refused before any ban");
    let mut admin = Browser::logged_in(&daemon, "admin", daemon.admin_password());

    // Bad input: the rule, and nothing banned.
    let page = admin.act(
        "/admin/bans",
        "/admin/bans/add",
        &[("network", "300.1.1.1"), ("reason", "typo")],
        "/admin/bans",
    );
    let message = flash(&page).unwrap_or_default();
    assert!(
        message.contains("'300.1.1.1' is not an IP address or CIDR network"),
        "{message}"
    );
    assert_eq!(daemon.admin_json(&["bans"]), json!([]));

    // The test client is 127.0.0.1 (the dashboard is not behind the proxy, so the admin
    // keeps working).
    let page = admin.act(
        "/admin/bans",
        "/admin/bans/add",
        &[("network", "127.0.0.1"), ("reason", "testing the ban")],
        "/admin/bans",
    );
    assert_eq!(flash(&page).as_deref(), Some("Banned 127.0.0.1/32"));
    let bans = daemon.admin_json(&["bans"]);
    assert_eq!(bans[0]["network"], "127.0.0.1/32", "{bans}");
    assert_eq!(bans[0]["reason"], "testing the ban", "{bans}");
    assert_eq!(bans[0]["created_by"], "admin", "{bans}");
    assert!(
        daemon.admin_ok(&["bans"]).contains("127.0.0.1/32"),
        "the table lists it"
    );
    eventually(Duration::from_secs(5), || {
        (proxy_status(proxy, host).ok() == Some(403)).then_some(())
    })
    .expect("the proxy refuses the banned address");

    let page = admin.act(
        "/admin/bans",
        "/admin/bans/remove",
        &[("network", "127.0.0.1/32")],
        "/admin/bans",
    );
    assert_eq!(
        flash(&page).as_deref(),
        Some("Lifted the ban of 127.0.0.1/32")
    );
    assert_eq!(daemon.admin_json(&["bans"]), json!([]));
    eventually(Duration::from_secs(5), || {
        (proxy_status(proxy, host).ok() == Some(served)).then_some(())
    })
    .expect("the proxy serves the address again");
    let actions: Vec<(String, String)> = audit_of(&daemon, "127.0.0.1/32")
        .into_iter()
        .map(|row| (row.0, row.1))
        .collect();
    assert_eq!(
        actions,
        [
            ("admin".to_owned(), "ban-ip".to_owned()),
            ("admin".to_owned(), "unban-ip".to_owned())
        ]
    );
    audit_page_shows(&mut admin, "127.0.0.1/32", "admin", "unban-ip");
}

#[test]
fn admin_rights_granted_and_revoked_on_the_admin_page_apply_and_a_locked_user_cannot_log_in() {
    let (daemon, alice_password) = daemon_with_alice(DaemonOptions::default());
    let mut admin = Browser::logged_in(&daemon, "admin", daemon.admin_password());
    let mut alice = Browser::logged_in(&daemon, "alice", &alice_password);
    assert_eq!(alice.get("/admin/users").status, 403);

    let page = admin.act(
        "/admin/users",
        "/admin/users/alice/grant-admin",
        &[],
        "/admin/users",
    );
    assert_eq!(flash(&page).as_deref(), Some("alice is an admin now"));
    assert_eq!(daemon.admin_json(&["user", "show", "alice"])["admin"], true);
    assert_eq!(alice.get("/admin/users").status, 200);

    let page = admin.act(
        "/admin/users",
        "/admin/users/alice/revoke-admin",
        &[],
        "/admin/users",
    );
    assert_eq!(flash(&page).as_deref(), Some("alice is no longer an admin"));
    assert_eq!(
        daemon.admin_json(&["user", "show", "alice"])["admin"],
        false
    );
    assert_eq!(alice.get("/admin/users").status, 403);
    // Refused with the rule, nothing changed.
    let page = admin.act(
        "/admin/users",
        "/admin/users/alice/revoke-admin",
        &[],
        "/admin/users",
    );
    assert_eq!(
        flash(&page).as_deref(),
        Some("user 'alice' is not an admin")
    );

    let page = admin.act(
        "/admin/users",
        "/admin/users/alice/lock",
        &[("reason", "spam")],
        "/admin/users",
    );
    assert_eq!(flash(&page).as_deref(), Some("alice is locked"));
    assert!(daemon.admin_json(&["user", "show", "alice"])["locked_at"].is_string());
    let mut again = Browser::new(&daemon);
    let page = again.log_in("alice", &alice_password);
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(
        page.body
            .contains("This account is locked: it cannot log in."),
        "{}",
        page.body
    );
    assert!(again.get("/profile").location.is_some(), "not logged in");

    admin.act(
        "/admin/users",
        "/admin/users/alice/unlock",
        &[],
        "/admin/users",
    );
    Browser::logged_in(&daemon, "alice", &alice_password);

    // (The first record is the admin command's `user create`.)
    let actions: Vec<(String, String)> = audit_of(&daemon, "alice")
        .into_iter()
        .filter(|row| row.0 == "admin")
        .map(|row| (row.0, row.1))
        .collect();
    let expected = [
        "user grant-admin",
        "user revoke-admin",
        "user lock",
        "user unlock",
    ]
    .map(|action| ("admin".to_owned(), action.to_owned()));
    assert_eq!(actions, expected);
    audit_page_shows(&mut admin, "alice", "admin", "user lock");
}

#[test]
fn a_tool_deleted_from_the_admin_page_after_the_confirm_step_is_gone_and_its_home_archived() {
    let (daemon, _) = daemon_with_alice(DaemonOptions::default());
    let home = daemon.tool_home("mytool");
    std::fs::write(home.join("keep.txt"), "precious").unwrap();
    let mut admin = Browser::logged_in(&daemon, "admin", daemon.admin_password());
    let confirm = admin.get("/admin/tools/mytool/delete");
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm.body.contains("id=\"tool-delete-form\""),
        "{}",
        confirm.body
    );
    assert!(
        confirm.body.contains("cannot be undone"),
        "{}",
        confirm.body
    );
    // Looking at the confirm page changes nothing.
    assert!(
        daemon.admin_ok(&["tool", "list"]).contains("mytool"),
        "deleted before the confirmation"
    );

    let page = admin.act(
        "/admin/tools/mytool/delete",
        "/admin/tools/mytool/delete",
        &[],
        "/admin",
    );
    let message = flash(&page).unwrap_or_default();
    assert!(
        message.starts_with("mytool is deleted; its home was archived to"),
        "{message}"
    );
    let list = daemon.admin_json(&["tool", "list"]);
    assert!(
        !list.to_string().contains("\"mytool\""),
        "tool list still has it: {list}"
    );
    assert!(!home.exists(), "the home is still there");
    let archives: Vec<PathBuf> = std::fs::read_dir(daemon.data_dir().join("archive"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("mytool-") && name.ends_with(".tar.gz"))
        })
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(&archives[0])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listing.stdout).contains("keep.txt"),
        "{}",
        String::from_utf8_lossy(&listing.stdout)
    );
    assert_eq!(admin.get("/admin/tools/mytool").status, 404);
    let records = audit_of(&daemon, "mytool");
    assert!(
        records
            .iter()
            .any(|row| row.0 == "admin" && row.1 == "tool delete"),
        "{records:?}"
    );
    audit_page_shows(&mut admin, "mytool", "admin", "tool delete");
}

/// Our `toolforge` binary, built beside `toolforged` (`cargo build -p cli`).
fn toolforge_bin() -> Result<PathBuf, String> {
    let path = bin().with_file_name("toolforge");
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} is not built (cargo build -p cli)",
            path.display()
        ))
    }
}

/// `toolforge jobs <args>` from a home holding nothing but `kubeconfig` at
/// `~/.kube/config`; the gateway's URL comes from `TOOL_TOOLFORGE_API_URL`, as the tool
/// page tells maintainers.
fn our_cli(cli: &Path, daemon: &Daemon, home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(cli)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", home)
        .env("TOOL_TOOLFORGE_API_URL", daemon.api_url())
        .current_dir(home)
        .arg("jobs")
        .args(args)
        .output()
        .expect("toolforge runs")
}

#[test]
fn a_maintainer_downloads_the_kubeconfig_from_the_tool_page_and_our_cli_lists_the_jobs_with_it() {
    const TEST: &str = "a_maintainer_downloads_the_kubeconfig_from_the_tool_page_and_our_cli_lists_the_jobs_with_it";
    let cli = match toolforge_bin() {
        Ok(cli) => cli,
        Err(reason) => return prerequisite_missing(TEST, &reason),
    };
    let (daemon, alice_password) = daemon_with_alice(DaemonOptions::default());
    let bob = daemon.create_user("bob", "bob@example.org");
    let bob_password = bob["password"].as_str().unwrap().to_owned();
    // A scheduled job that will not fire during the test: it only has to be listed.
    let job = json!({"name": "nightly", "cmd": "date", "imagename": "bookworm",
        "schedule": "0 3 1 1 *", "filelog": false});
    let body = serde_json::to_vec(&job).unwrap();
    let res = daemon
        .tool_connection("mytool")
        .request(
            "POST",
            JOBS,
            &[("Content-Type", "application/json")],
            Some(&body),
        )
        .unwrap();
    assert_eq!(res.status, 201, "{}", res.text());

    // Someone who is not a maintainer gets no credentials.
    let mut stranger = Browser::logged_in(&daemon, "bob", &bob_password);
    stranger.get("/tools/id/mytool");
    let page = stranger.post("/tools/id/mytool/kubeconfig", &[]);
    assert_eq!(page.status, 403, "{}", page.body);

    let mut alice = Browser::logged_in(&daemon, "alice", &alice_password);
    let tool_page = alice.get("/tools/id/mytool");
    assert!(
        tool_page.body.contains("id=\"kubeconfig-form\""),
        "{}",
        tool_page.body
    );
    let page = alice.post("/tools/id/mytool/kubeconfig", &[]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.content_type.as_deref(), Some("application/yaml"));
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".kube")).unwrap();
    std::fs::write(home.path().join(".kube/config"), &page.body).unwrap();

    let out = our_cli(&cli, &daemon, home.path(), &["list"]);
    let printed = format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{printed}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("nightly"), "{printed}");
    assert!(stdout.contains("0 3 1 1 *"), "{printed}");
    let records = audit_of(&daemon, "mytool");
    assert!(
        records
            .iter()
            .any(|row| row.0 == "alice" && row.1 == "tool kubeconfig download"),
        "{records:?}"
    );

    // The same file is refused once an admin disabled the tool.
    daemon.admin_ok(&["tool", "disable", "mytool", "--reason", "testing"]);
    let out = our_cli(&cli, &daemon, home.path(), &["list"]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "a disabled tool's kubeconfig worked"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("disabled"), "{stderr}");
}
