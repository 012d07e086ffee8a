//! The admin command: rules, refusals, exit codes and output formats.

use test_support::daemon::Daemon;

use crate::{bin, daemon_with_tool};

#[test]
fn a_bad_tool_name_exits_non_zero_naming_the_rule_and_stores_nothing() {
    let daemon = daemon_with_tool();
    let out = daemon.admin(&["tool", "create", "Bad_Name", "--maintainer", "alice"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid tool name 'Bad_Name'"), "{stderr}");
    assert!(
        stderr.contains("^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$"),
        "{stderr}"
    );
    let tools = daemon.admin_json(&["tool", "list"]);
    assert_eq!(tools.as_array().unwrap().len(), 1);
    assert!(!daemon.tool_home("Bad_Name").exists());

    let out = daemon.admin(&["user", "create", "Bad User", "--email", "a@example.org"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid user name"));
}

#[test]
fn a_duplicate_name_is_refused_across_users_and_tools() {
    let daemon = daemon_with_tool();
    for args in [
        &["tool", "create", "mytool", "--maintainer", "alice"][..],
        &["tool", "create", "alice", "--maintainer", "alice"][..],
        &["user", "create", "mytool", "--email", "x@example.org"][..],
        &["user", "create", "alice", "--email", "x@example.org"][..],
    ] {
        let out = daemon.admin(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("is already taken by a"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(
        daemon
            .admin_json(&["tool", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        daemon
            .admin_json(&["user", "list"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn user_create_generates_a_password_or_reads_one_from_stdin() {
    let daemon = Daemon::start(bin());
    let created = daemon.admin_json(&["user", "create", "alice", "--email", "alice@example.org"]);
    assert!(created["password"].as_str().unwrap().len() >= 16);

    let mut cmd = daemon.admin_command();
    cmd.args([
        "user",
        "create",
        "bob",
        "--email",
        "bob@example.org",
        "--password-stdin",
        "--json",
    ]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"correct horse battery\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let bob: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(bob.get("password").is_none(), "{bob}");
}

#[test]
fn tables_are_readable_and_json_is_one_document() {
    let daemon = daemon_with_tool();
    let table = daemon.admin_ok(&["tool", "list"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("NAME"), "{table}");
    assert!(lines.next().unwrap().starts_with("mytool"), "{table}");
    let doc = daemon.admin_json(&["tool", "show", "mytool"]);
    assert_eq!(doc["name"], "mytool");
    assert_eq!(doc["maintainers"][0]["name"], "alice");
    assert_eq!(doc["maintainers"][0]["kind"], "user");
}

#[test]
fn maintainers_can_be_users_or_tools_and_the_last_one_stays() {
    let daemon = daemon_with_tool();
    daemon.create_tool("helper", "alice");
    let doc = daemon.admin_json(&["tool", "add-maintainer", "mytool", "helper"]);
    assert_eq!(doc["changed"], true);
    assert_eq!(doc["maintainers"][0]["name"], "alice");
    assert_eq!(doc["maintainers"][1]["kind"], "tool");
    let again = daemon.admin_json(&["tool", "add-maintainer", "mytool", "helper"]);
    assert_eq!(again["changed"], false);
    daemon.admin_ok(&["tool", "remove-maintainer", "mytool", "alice"]);
    let out = daemon.admin(&["tool", "remove-maintainer", "mytool", "helper"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("last maintainer"));
    let out = daemon.admin(&["tool", "add-maintainer", "mytool", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn user_kubeconfig_is_handed_out_for_a_maintained_tool_only() {
    let daemon = daemon_with_tool();
    daemon.create_user("bob", "bob@example.org");
    let config = daemon.admin_ok(&["user", "kubeconfig", "alice", "--tool", "mytool"]);
    let value: serde_norway::Value = serde_norway::from_str(&config).unwrap();
    assert_eq!(
        value["contexts"][0]["context"]["namespace"].as_str(),
        Some("tool-mytool")
    );
    assert_eq!(
        value["clusters"][0]["cluster"]["server"].as_str(),
        Some(daemon.api_url().as_str())
    );
    let out = daemon.admin(&["user", "kubeconfig", "bob", "--tool", "mytool"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not maintain"));
}

#[test]
fn the_admin_command_exits_2_when_the_daemon_cannot_be_reached() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin())
        .args(["admin", "--data-dir"])
        .arg(dir.path())
        .args(["tool", "list"])
        .env_remove("TOOLFORGE_DATA_DIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach toolforged"));
}
