//! Issue 2: bootstrap, tool provisioning, credentials and restarts.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use test_support::daemon::Daemon;

use crate::{bin, daemon_with_tool};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn parse_cert(path: &Path) -> (String, String, String, i64) {
    let pem = read(path);
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    let cert = pem.parse_x509().unwrap();
    let first = |name: &x509_parser::x509::X509Name<'_>, oid| {
        name.iter_by_oid(oid)
            .next()
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    };
    let cn = x509_parser::oid_registry::OID_X509_COMMON_NAME;
    let org = x509_parser::oid_registry::OID_X509_ORGANIZATION_NAME;
    (
        first(cert.subject(), &cn),
        first(cert.subject(), &org),
        first(cert.issuer(), &cn),
        cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp(),
    )
}

#[test]
fn first_start_prints_the_admin_password_and_lays_out_the_data_directory() {
    let daemon = Daemon::start(bin());
    let password = daemon.admin_password().to_owned();
    assert!(password.len() >= 16, "{password}");
    let stdout = daemon.captured_stdout();
    assert!(
        stdout.contains(&format!("admin password: {password}\n")),
        "{stdout}"
    );
    assert!(stdout.contains("Next steps"), "{stdout}");
    let data = daemon.data_dir();
    assert_eq!(mode(&data.join("pki/ca.key")), 0o600);
    assert_eq!(mode(&data.join("run/admin.sock")), 0o600);
    assert!(read(&data.join("pki/ca.crt")).starts_with("-----BEGIN CERTIFICATE-----"));
    let admin = daemon.admin_json(&["user", "show", "admin"]);
    assert_eq!(admin["admin"], true);
    let addresses: serde_json::Value =
        serde_json::from_str(&read(&data.join("run/addresses.json"))).unwrap();
    for key in ["api", "web", "proxy"] {
        assert!(
            addresses[key].as_str().unwrap().starts_with("127.0.0.1:"),
            "{addresses}"
        );
    }
}

#[test]
fn sigterm_shuts_down_cleanly_and_removes_the_run_files() {
    let mut daemon = Daemon::start(bin());
    let data = daemon.data_dir().to_path_buf();
    assert!(data.join("run/addresses.json").exists());
    let status = daemon.shut_down();
    assert!(status.success(), "{status:?}");
    assert!(!data.join("run/addresses.json").exists());
    assert!(!data.join("run/admin.sock").exists());
}

#[test]
fn a_restart_keeps_users_tools_maintainers_and_certificates_and_prints_no_new_password() {
    let mut daemon = daemon_with_tool();
    daemon.create_user("bob", "bob@example.org");
    daemon.admin_ok(&["tool", "add-maintainer", "mytool", "bob"]);
    let ca_before = read(&daemon.data_dir().join("pki/ca.crt"));
    let cert_before = read(&daemon.tool_home("mytool").join(".toolskube/client.crt"));
    let tool_before = daemon.admin_json(&["tool", "show", "mytool"]);

    daemon.restart();
    assert!(!daemon.captured_stdout().contains("admin password:"));
    assert_eq!(read(&daemon.data_dir().join("pki/ca.crt")), ca_before);
    assert_eq!(
        read(&daemon.tool_home("mytool").join(".toolskube/client.crt")),
        cert_before
    );
    assert_eq!(daemon.admin_json(&["tool", "show", "mytool"]), tool_before);
    let users = daemon.admin_json(&["user", "list"]);
    let names: Vec<_> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "alice", "bob"]);
    // The API URL changed with the new port: homes follow it, keeping the tool's keys.
    let yaml: serde_norway::Value =
        serde_norway::from_str(&read(&daemon.tool_home("mytool").join(".toolforge.yaml"))).unwrap();
    assert_eq!(
        yaml["api_gateway"]["url"].as_str(),
        Some(daemon.api_url().as_str())
    );
}

#[test]
fn a_tool_home_has_the_files_modes_owners_and_kubeconfig_of_maintain_kubeusers() {
    let daemon = daemon_with_tool();
    let tool = daemon.admin_json(&["tool", "show", "mytool"]);
    let uid = tool["uid"].as_u64().unwrap() as u32;
    assert!(uid >= 50000);
    let home = daemon.tool_home("mytool");

    let mut entries: Vec<String> = Vec::new();
    for entry in walk(&home) {
        entries.push(entry.strip_prefix(&home).unwrap().display().to_string());
    }
    entries.sort();
    assert_eq!(
        entries,
        [
            ".kube",
            ".kube/config",
            ".toolforge.yaml",
            ".toolskube",
            ".toolskube/client.crt",
            ".toolskube/client.key",
            "logs"
        ]
    );
    assert_eq!(mode(&home), 0o2770);
    assert_eq!(mode(&home.join(".toolskube/client.crt")), 0o600);
    assert_eq!(mode(&home.join(".toolskube/client.key")), 0o600);
    assert_eq!(mode(&home.join(".kube/config")), 0o600);
    if test_support::skip::is_root() {
        for entry in walk(&home).into_iter().chain([home.clone()]) {
            let meta = std::fs::metadata(&entry).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (uid, uid), "{}", entry.display());
        }
    }

    let kubeconfig: serde_norway::Value =
        serde_norway::from_str(&read(&home.join(".kube/config"))).unwrap();
    assert_eq!(kubeconfig["current-context"].as_str(), Some("toolforge"));
    let context = &kubeconfig["contexts"][0];
    assert_eq!(context["name"].as_str(), Some("toolforge"));
    assert_eq!(
        context["context"]["namespace"].as_str(),
        Some("tool-mytool")
    );
    assert_eq!(context["context"]["user"].as_str(), Some("tf-mytool"));
    assert_eq!(context["context"]["cluster"].as_str(), Some("toolforge"));
    let cluster = &kubeconfig["clusters"][0];
    assert_eq!(cluster["name"].as_str(), Some("toolforge"));
    assert_eq!(
        cluster["cluster"]["server"].as_str(),
        Some(daemon.api_url().as_str())
    );
    let ca_data = cluster["cluster"]["certificate-authority-data"]
        .as_str()
        .unwrap();
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(ca_data)
        .unwrap();
    assert_eq!(String::from_utf8(ca).unwrap(), read(&daemon.ca_cert_path()));
    let user = &kubeconfig["users"][0];
    assert_eq!(user["name"].as_str(), Some("tf-mytool"));
    assert_eq!(
        user["user"]["client-certificate"].as_str(),
        Some("../.toolskube/client.crt")
    );
    assert_eq!(
        user["user"]["client-key"].as_str(),
        Some("../.toolskube/client.key")
    );

    let yaml: serde_norway::Value =
        serde_norway::from_str(&read(&home.join(".toolforge.yaml"))).unwrap();
    assert_eq!(
        yaml["api_gateway"]["url"].as_str(),
        Some(daemon.api_url().as_str())
    );

    let (cn, org, issuer, lifetime) = parse_cert(&home.join(".toolskube/client.crt"));
    assert_eq!(
        (cn.as_str(), org.as_str(), issuer.as_str()),
        ("mytool", "toolforge", "Toolforge CA")
    );
    // One year, plus the five minutes of back-dating for clock skew.
    assert_eq!(lifetime, 365 * 86400 + 300);
    let (cn, org, _, _) = parse_cert(&daemon.data_dir().join("users/alice/client.crt"));
    assert_eq!((cn.as_str(), org.as_str()), ("alice", "toolforge-users"));
    assert_eq!(
        mode(&daemon.data_dir().join("users/alice/client.key")),
        0o600
    );
}

#[test]
fn creds_regenerate_replaces_the_certificate_files() {
    let daemon = daemon_with_tool();
    let home = daemon.tool_home("mytool");
    let cert = read(&home.join(".toolskube/client.crt"));
    let key = read(&home.join(".toolskube/client.key"));
    let out = daemon.admin_ok(&["creds", "regenerate", "mytool"]);
    assert!(out.contains("the old one is refused from now on"), "{out}");
    assert_ne!(read(&home.join(".toolskube/client.crt")), cert);
    assert_ne!(read(&home.join(".toolskube/client.key")), key);
    assert_eq!(parse_cert(&home.join(".toolskube/client.crt")).0, "mytool");
    assert_eq!(mode(&home.join(".toolskube/client.key")), 0o600);
}

#[test]
fn a_deleted_tool_leaves_an_archive_and_its_uid_is_never_reused() {
    let daemon = daemon_with_tool();
    let first_uid = daemon.admin_json(&["tool", "show", "mytool"])["uid"]
        .as_u64()
        .unwrap();
    std::fs::write(daemon.tool_home("mytool").join("logs/bot.out"), "hello\n").unwrap();
    let deleted = daemon.admin_json(&["tool", "delete", "mytool"]);
    let archive = Path::new(deleted["archive"].as_str().unwrap()).to_path_buf();
    assert!(
        archive.starts_with(daemon.data_dir().join("archive")),
        "{}",
        archive.display()
    );
    let name = archive.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("mytool-") && name.ends_with("Z.tar.gz"),
        "{name}"
    );
    assert!(!daemon.tool_home("mytool").exists());

    let file = std::fs::File::open(&archive).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut found = false;
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap() == Path::new("mytool/logs/bot.out") {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            assert_eq!(text, "hello\n");
            found = true;
        }
    }
    assert!(found, "the archive holds the tool's files");

    let again = daemon.create_tool("mytool", "alice");
    assert!(again["uid"].as_u64().unwrap() > first_uid);
    let other = daemon.create_tool("other", "alice");
    assert!(other["uid"].as_u64().unwrap() > again["uid"].as_u64().unwrap());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}
