//! The admin procedures through `toolforged admin`: the audit log, banned addresses,
//! disabling and enabling a tool (its jobs stop at once and its credentials are refused),
//! the 40-day deletion of a disabled tool, and locked users.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::json;
use test_support::daemon::{Daemon, DaemonOptions};
use test_support::https::{HttpResponse, HttpsConnection};
use test_support::poll::eventually;
use test_support::skip::{is_root, prerequisite_missing};

use crate::bin;

const JOBS: &str = "/jobs/v1/tool/mytool/jobs/";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs an admin command that must be refused: exit status 1, and the message on
/// standard error contains `expected`.
#[track_caller]
fn refused(daemon: &Daemon, args: &[&str], expected: &str) {
    let out = daemon.admin(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?}: stdout {} stderr {}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(expected),
        "{args:?}: wanted {expected:?} in {}",
        stderr(&out)
    );
}

/// `(actor, action, target, detail)` of every audit record, oldest first.
fn audit(daemon: &Daemon, filters: &[&str]) -> Vec<(String, String, String, String)> {
    let mut args = vec!["audit"];
    args.extend_from_slice(filters);
    let records = daemon.admin_json(&args);
    let mut rows: Vec<_> = records
        .as_array()
        .expect("audit --json is a list")
        .iter()
        .map(|r| {
            let text = |key: &str| r[key].as_str().unwrap_or_default().to_owned();
            (
                text("actor"),
                text("action"),
                text("target"),
                text("detail"),
            )
        })
        .collect();
    rows.reverse();
    rows
}

fn connect(daemon: &Daemon, cert_dir: &Path) -> HttpsConnection {
    let read = |name: &str| std::fs::read_to_string(cert_dir.join(name)).unwrap();
    let ca = std::fs::read_to_string(daemon.ca_cert_path()).unwrap();
    HttpsConnection::connect(
        daemon.addresses().api,
        "localhost",
        &ca,
        Some((&read("client.crt"), &read("client.key"))),
    )
    .unwrap()
}

fn anonymous(daemon: &Daemon) -> HttpsConnection {
    let ca = std::fs::read_to_string(daemon.ca_cert_path()).unwrap();
    HttpsConnection::connect(daemon.addresses().api, "localhost", &ca, None).unwrap()
}

fn with_bearer(conn: &mut HttpsConnection, token: &str, path: &str) -> HttpResponse {
    let bearer = format!("Bearer {token}");
    conn.request("GET", path, &[("Authorization", &bearer)], None)
        .unwrap()
}

fn post(conn: &mut HttpsConnection, path: &str, body: &serde_json::Value) -> HttpResponse {
    let body = serde_json::to_vec(body).unwrap();
    conn.request(
        "POST",
        path,
        &[("Content-Type", "application/json")],
        Some(&body),
    )
    .unwrap()
}

fn runs(daemon: &Daemon, job: &str) -> Vec<store::RunRecord> {
    let db = daemon.data_dir().join("toolforge.sqlite");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = store::Store::open(&db).await.unwrap();
        let mut runs = store.recent_runs("mytool", job, 100).await.unwrap();
        store.close().await;
        runs.reverse();
        runs
    })
}

/// Whether a replica of `job` is running, as the run history says.
fn running(daemon: &Daemon, job: &str) -> bool {
    runs(daemon, job).iter().any(|run| run.ended_at.is_none())
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn parse_time(text: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|err| panic!("{text}: {err}"))
}

#[test]
fn every_mutating_admin_command_is_audit_logged_with_who_what_and_when_and_no_secret() {
    let daemon = Daemon::start(bin());
    let before = unix_now();
    let bob = daemon.create_user("bob", "bob@example.org");
    let password = bob["password"].as_str().unwrap().to_owned();
    daemon.create_user("carol", "carol@example.org");
    daemon.create_tool("bottool", "bob");
    daemon.admin_ok(&["tool", "add-maintainer", "bottool", "carol"]);
    let token = daemon.admin_json(&["token", "create", "bottool", "--scope", "jobs"]);
    let token_text = token["token"].as_str().unwrap().to_owned();
    daemon.admin_ok(&["quota", "set", "bottool", "pods=5"]);
    daemon.admin_ok(&["ban-ip", "192.0.2.0/24", "--reason", "a test"]);
    daemon.admin_ok(&["unban-ip", "192.0.2.0/24"]);
    daemon.admin_ok(&["user", "set-admin", "bob", "true"]);
    daemon.admin_ok(&["user", "lock", "carol", "--reason", "spam"]);
    daemon.admin_ok(&["user", "unlock", "carol"]);
    daemon.admin_ok(&["tool", "disable", "bottool", "--reason", "abuse"]);
    daemon.admin_ok(&["tool", "enable", "bottool"]);
    daemon.admin_ok(&["tool", "delete", "bottool"]);
    // Reading changes nothing and is not recorded; a refused command changes nothing.
    daemon.admin_ok(&["tool", "list"]);
    daemon.admin_ok(&["bans"]);
    daemon.admin_ok(&["user", "show", "bob"]);
    refused(
        &daemon,
        &["tool", "enable", "ghost"],
        "no tool named 'ghost'",
    );
    let after = unix_now();

    let records = daemon.admin_json(&["audit"]);
    let text = records.to_string();
    assert!(!text.contains(&password), "a password in the audit log");
    assert!(!text.contains(&token_text), "a token in the audit log");
    for record in records.as_array().unwrap() {
        let at = parse_time(record["at"].as_str().unwrap()).unix_timestamp();
        assert!(before - 1 <= at && at <= after + 1, "{record}");
    }
    let rows = audit(&daemon, &[]);
    let actor = &rows[0].0;
    assert!(actor.starts_with("unix:"), "{actor}");
    if is_root() {
        assert_eq!(actor, "unix:root");
    }
    assert!(rows.iter().all(|row| &row.0 == actor), "{rows:?}");
    let what: Vec<(&str, &str)> = rows
        .iter()
        .map(|(_, action, target, _)| (action.as_str(), target.as_str()))
        .collect();
    assert_eq!(
        what,
        [
            ("user create", "bob"),
            ("user create", "carol"),
            ("tool create", "bottool"),
            ("tool add-maintainer", "bottool"),
            ("token create", "bottool"),
            ("quota set", "bottool"),
            ("ban-ip", "192.0.2.0/24"),
            ("unban-ip", "192.0.2.0/24"),
            ("user grant-admin", "bob"),
            ("user lock", "carol"),
            ("user unlock", "carol"),
            ("tool disable", "bottool"),
            ("tool enable", "bottool"),
            ("tool delete", "bottool"),
        ],
        "{rows:#?}"
    );
    let details: Vec<&str> = rows.iter().map(|row| row.3.as_str()).collect();
    assert_eq!(
        details[..11],
        [
            "",
            "",
            "maintainer bob",
            "added carol",
            "scope jobs, does not expire",
            "pods=5",
            "a test",
            "",
            "",
            "spam",
            ""
        ]
    );
    assert!(
        details[11].starts_with("abuse (deletion scheduled at "),
        "{rows:#?}"
    );
    assert!(details[13].starts_with("home archived to "), "{rows:#?}");
    assert_eq!(rows.len(), 14, "{rows:#?}");

    // Filters: by target, by actor, by time.
    let bottool = audit(&daemon, &["--target", "bottool"]);
    assert_eq!(bottool.len(), 7, "{bottool:#?}");
    assert!(bottool.iter().all(|row| row.2 == "bottool"));
    assert_eq!(
        audit(&daemon, &["--actor", actor, "--since", "1h"]).len(),
        14
    );
    assert!(audit(&daemon, &["--actor", "somebody-else"]).is_empty());
    assert_eq!(audit(&daemon, &["--limit", "2"]).len(), 2);
    let table = daemon.admin_ok(&["audit", "--target", "carol"]);
    assert!(table.starts_with("TIME"), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");
    assert_eq!(
        daemon.admin_ok(&["audit", "--target", "nothing"]),
        "No audit record matches.\n"
    );
    refused(&daemon, &["audit", "--since", "soon"], "invalid --since");
}

#[test]
fn ban_ip_refuses_bad_addresses_and_missing_reasons_and_bans_survive_a_restart() {
    let mut daemon = Daemon::start(bin());
    refused(
        &daemon,
        &["ban-ip", "300.1.1.1", "--reason", "x"],
        "'300.1.1.1' is not an IP address or CIDR network",
    );
    refused(
        &daemon,
        &["ban-ip", "10.0.0.0/33", "--reason", "x"],
        "is not an IP address or CIDR network",
    );
    refused(&daemon, &["ban-ip", "example.org", "--reason", "x"], "CIDR");
    refused(
        &daemon,
        &["ban-ip", "10.0.0.1"],
        "ban-ip needs --reason TEXT",
    );
    refused(
        &daemon,
        &["ban-ip", "10.0.0.1", "--reason", "  "],
        "a ban needs a reason",
    );
    assert_eq!(daemon.admin_json(&["bans"]), json!([]));

    let out = daemon.admin_ok(&["ban-ip", "203.0.113.7/24", "--reason", "scraping"]);
    assert!(out.contains("Banned 203.0.113.0/24"), "{out}");
    refused(
        &daemon,
        &["ban-ip", "203.0.113.0/24", "--reason", "again"],
        "203.0.113.0/24 is already banned",
    );
    refused(
        &daemon,
        &["ban-ip", "203.0.113.9", "--reason", "again"],
        "inside the banned network 203.0.113.0/24",
    );
    daemon.admin_ok(&["ban-ip", "2001:DB8::1", "--reason", "ipv6 too"]);
    refused(
        &daemon,
        &["unban-ip", "198.51.100.1"],
        "198.51.100.1/32 is not banned",
    );
    refused(&daemon, &["unban-ip", "not-an-address"], "CIDR");

    daemon.restart();
    let bans = daemon.admin_json(&["bans"]);
    let bans = bans.as_array().unwrap();
    let networks: Vec<&str> = bans
        .iter()
        .map(|ban| ban["network"].as_str().unwrap())
        .collect();
    assert_eq!(networks, ["203.0.113.0/24", "2001:db8::1/128"]);
    assert_eq!(bans[0]["reason"], "scraping");
    assert!(
        bans[0]["created_by"].as_str().unwrap().starts_with("unix:"),
        "{bans:?}"
    );
    let table = daemon.admin_ok(&["bans"]);
    assert!(
        table.starts_with("NETWORK") && table.contains("2001:db8::1/128"),
        "{table}"
    );

    // Any spelling of the same network lifts it.
    let out = daemon.admin_ok(&["unban-ip", "203.0.113.200/24"]);
    assert!(out.contains("Lifted the ban of 203.0.113.0/24"), "{out}");
    daemon.admin_ok(&["unban-ip", "2001:db8::1"]);
    assert_eq!(daemon.admin_ok(&["bans"]), "No address is banned.\n");
    let actions: Vec<String> = audit(&daemon, &[]).into_iter().map(|row| row.1).collect();
    assert_eq!(actions, ["ban-ip", "ban-ip", "unban-ip", "unban-ip"]);
}

#[test]
fn a_locked_users_certificate_and_tokens_are_refused_until_unlocked() {
    let daemon = crate::daemon_with_tool();
    let token = daemon.admin_json(&["token", "create", "alice"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice_dir = daemon.data_dir().join("users/alice");
    assert_eq!(connect(&daemon, &alice_dir).get(JOBS).unwrap().status, 200);
    assert_eq!(
        with_bearer(&mut anonymous(&daemon), &token, JOBS).status,
        200
    );

    let out = daemon.admin_ok(&["user", "lock", "alice", "--reason", "spam"]);
    assert!(out.contains("Locked user alice"), "{out}");
    let res = connect(&daemon, &alice_dir).get(JOBS).unwrap();
    assert_eq!(res.status, 401, "{}", res.text());
    assert!(
        res.text().contains("user 'alice' is locked"),
        "{}",
        res.text()
    );
    let res = with_bearer(&mut anonymous(&daemon), &token, JOBS);
    assert_eq!(res.status, 401, "{}", res.text());
    assert!(daemon.admin_json(&["user", "show", "alice"])["locked_at"].is_string());
    refused(
        &daemon,
        &["user", "lock", "alice"],
        "user 'alice' is already locked",
    );
    // The tool's own credentials are not the user's.
    assert_eq!(
        daemon.tool_connection("mytool").get(JOBS).unwrap().status,
        200
    );

    daemon.admin_ok(&["user", "unlock", "alice"]);
    assert_eq!(connect(&daemon, &alice_dir).get(JOBS).unwrap().status, 200);
    assert_eq!(
        with_bearer(&mut anonymous(&daemon), &token, JOBS).status,
        200
    );
    refused(&daemon, &["user", "unlock", "alice"], "is not locked");
    refused(&daemon, &["user", "lock", "ghost"], "no user named 'ghost'");

    daemon.admin_ok(&["user", "set-admin", "alice", "true"]);
    assert_eq!(daemon.admin_json(&["user", "show", "alice"])["admin"], true);
    refused(
        &daemon,
        &["user", "set-admin", "alice", "true"],
        "already an admin",
    );
    daemon.admin_ok(&["user", "set-admin", "admin", "false"]);
    refused(
        &daemon,
        &["user", "set-admin", "alice", "false"],
        "'alice' is the only unlocked admin",
    );
    let out = daemon.admin(&["user", "set-admin", "alice", "maybe"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not true or false"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn disabling_a_tool_stops_its_jobs_at_once_refuses_its_credentials_across_a_restart_and_enabling_starts_them_again()
 {
    const TEST: &str = "disabling_a_tool_stops_its_jobs_at_once_refuses_its_credentials_across_a_restart_and_enabling_starts_them_again";
    if !is_root() {
        return prerequisite_missing(TEST, "jobs run isolated as their tool's uid only as root");
    }
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("toolforged.toml");
    std::fs::write(&config, "job-stop-grace = \"2s\"\n").unwrap();
    let mut daemon = DaemonOptions::default()
        .arg("--config")
        .arg(&config)
        .start(bin());
    daemon.create_user("alice", "alice@example.org");
    daemon.create_tool("mytool", "alice");
    let token = daemon.admin_json(&["token", "create", "mytool"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut conn = daemon.tool_connection("mytool");
    for job in [
        json!({"name": "keeper", "cmd": "echo up >> keeper.log; exec sleep 100000", "imagename": "bookworm", "continuous": true, "filelog": false}),
        json!({"name": "long", "cmd": "exec sleep 600", "imagename": "bookworm", "filelog": false}),
        json!({"name": "cron", "cmd": "date +%s >> fired", "imagename": "bookworm", "schedule": "* * * * *", "filelog": false}),
    ] {
        let res = post(&mut conn, JOBS, &job);
        assert_eq!(res.status, 201, "{job}: {}", res.text());
    }
    eventually(Duration::from_secs(30), || {
        (running(&daemon, "keeper") && running(&daemon, "long")).then_some(())
    })
    .expect("keeper and long run");

    let out = daemon.admin_ok(&["tool", "disable", "mytool", "--reason", "abuse"]);
    assert!(out.contains("Disabled tool mytool"), "{out}");
    // At once: when the command returns, every workload has stopped.
    for job in ["keeper", "long"] {
        let history = runs(&daemon, job);
        assert!(
            history.iter().all(|run| run.ended_at.is_some()),
            "{job}: {history:?}"
        );
    }
    let keeper_runs = runs(&daemon, "keeper").len();
    let cron_runs = runs(&daemon, "cron").len();
    let refused_403 = |res: HttpResponse| {
        assert_eq!(res.status, 403, "{}", res.text());
        assert!(
            res.text().contains("tool 'mytool' is disabled"),
            "{}",
            res.text()
        );
    };
    refused_403(conn.get(JOBS).unwrap());
    refused_403(daemon.tool_connection("mytool").get(JOBS).unwrap());
    refused_403(with_bearer(&mut anonymous(&daemon), &token, JOBS));
    let show = daemon.admin_json(&["tool", "show", "mytool"]);
    assert_eq!(show["status"], "disabled");
    assert_eq!(show["disabled"]["reason"], "abuse");
    let disabled_at = parse_time(show["disabled"]["disabled_at"].as_str().unwrap());
    let delete_at = parse_time(show["disabled"]["delete_at"].as_str().unwrap());
    assert_eq!(delete_at - disabled_at, time::Duration::days(40));
    assert_eq!(
        show["disabled"]["archive_at"],
        show["disabled"]["delete_at"]
    );
    let text = daemon.admin_ok(&["tool", "show", "mytool"]);
    assert!(text.contains("Delete at"), "{text}");
    refused(
        &daemon,
        &["tool", "disable", "mytool"],
        "tool 'mytool' is already disabled",
    );

    // A restart starts nothing of a disabled tool, and its schedule does not fire: wait
    // until a minute boundary (when `* * * * *` is due) has passed.
    daemon.restart();
    let boundary = (unix_now() / 60 + 1) * 60;
    eventually(Duration::from_secs(75), || {
        (unix_now() >= boundary + 5).then_some(())
    })
    .expect("a minute boundary passed");
    assert_eq!(runs(&daemon, "keeper").len(), keeper_runs);
    assert!(!running(&daemon, "keeper") && !running(&daemon, "long"));
    assert_eq!(runs(&daemon, "cron").len(), cron_runs, "the schedule fired");
    refused_403(daemon.tool_connection("mytool").get(JOBS).unwrap());

    let out = daemon.admin_ok(&["tool", "enable", "mytool"]);
    assert!(out.contains("Enabled tool mytool"), "{out}");
    assert_eq!(
        daemon.admin_json(&["tool", "show", "mytool"])["status"],
        "active"
    );
    assert!(daemon.admin_json(&["tool", "show", "mytool"])["disabled"].is_null());
    eventually(Duration::from_secs(30), || {
        running(&daemon, "keeper").then_some(())
    })
    .expect("the continuous job runs again");
    assert!(!running(&daemon, "long"), "a one-off job stays finished");
    let mut conn = daemon.tool_connection("mytool");
    assert_eq!(conn.get(JOBS).unwrap().status, 200);
    assert_eq!(
        with_bearer(&mut anonymous(&daemon), &token, JOBS).status,
        200
    );
    let fired = daemon.tool_home("mytool").join("fired");
    eventually(Duration::from_secs(75), || fired.exists().then_some(()))
        .expect("the schedule fires again");
    refused(&daemon, &["tool", "enable", "mytool"], "is not disabled");
}

#[test]
fn a_disabled_tool_is_archived_and_deleted_once_its_40_days_have_passed() {
    let mut daemon = crate::daemon_with_tool();
    std::fs::write(daemon.tool_home("mytool").join("keep.txt"), "precious").unwrap();
    daemon.admin_ok(&["tool", "disable", "mytool"]);

    // 39 days later: still there (the daemon's first sweep runs before it is ready).
    daemon.restart_with(
        DaemonOptions::default()
            .arg("--scheduled-deletion-clock-offset")
            .arg("39d"),
    );
    assert_eq!(
        daemon.admin_json(&["tool", "show", "mytool"])["status"],
        "disabled"
    );

    daemon.restart_with(
        DaemonOptions::default()
            .arg("--scheduled-deletion-clock-offset")
            .arg("41d"),
    );
    refused(
        &daemon,
        &["tool", "show", "mytool"],
        "no tool named 'mytool'",
    );
    assert!(!daemon.tool_home("mytool").exists());
    let archives: Vec<_> = std::fs::read_dir(daemon.data_dir().join("archive"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().contains("mytool-"))
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&archives[0]).unwrap(),
    ));
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|entry| entry.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(
        names.iter().any(|name| name == "mytool/keep.txt"),
        "{names:?}"
    );
    let deleted = audit(&daemon, &["--actor", "toolforged"]);
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0].1, "tool delete");
    assert_eq!(deleted[0].2, "mytool");
    assert!(
        deleted[0].3.starts_with("scheduled when unix:"),
        "{deleted:?}"
    );
    // The name is free again, and a new tool of that name is not disabled.
    daemon.create_tool("mytool", "alice");
    assert_eq!(
        daemon.admin_json(&["tool", "show", "mytool"])["status"],
        "active"
    );
}
