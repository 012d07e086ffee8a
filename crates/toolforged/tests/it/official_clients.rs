//! The official Toolforge clients from PyPI, pointed at our daemon.

use std::process::Output;

use test_support::daemon::Daemon;
use test_support::skip::prerequisite_missing;

use crate::daemon_with_tool;

const TEST: &str = "official_clients_print_the_gateways_envelope_messages_and_the_401_reason";

/// Runs `program list` as `tool`; `None` when the clients are not installed.
fn list(daemon: &Daemon, tool: &str, program: &str) -> Option<Output> {
    match daemon.official_client(tool, program) {
        Ok(mut cmd) => Some(cmd.arg("list").output().unwrap()),
        Err(reason) => {
            prerequisite_missing(TEST, &reason);
            None
        }
    }
}

fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn official_clients_print_the_gateways_envelope_messages_and_the_401_reason() {
    let daemon = daemon_with_tool();
    // Services not built yet answer in the envelope (jobs and envvars are built: see
    // jobs.rs and envvars.rs for their official-client tests).
    {
        let (program, service) = ("toolforge-build", "builds");
        let Some(out) = list(&daemon, "mytool", program) else {
            return;
        };
        let all = printed(&out);
        // The address came from ~/.toolforge.yaml and the server certificate was
        // verified against pki/ca.crt (REQUESTS_CA_BUNDLE): a failed handshake would be
        // reported as the service being down.
        assert!(!all.contains("seems to be down"), "{program}: {all}");
        assert!(!all.contains("Traceback"), "{program}: {all}");
        // A 4xx from the envelope: the client's user-error path, exit 1, our message.
        assert_eq!(out.status.code(), Some(1), "{program}: {all}");
        assert!(
            all.contains(&format!(
                "the {service} service is not available on this platform yet"
            )),
            "{program}: {all}"
        );
    }

    daemon.admin_ok(&["creds", "regenerate", "mytool"]);
    // Put the old certificate back in place, as a bot that kept a copy would present it.
    let home = daemon.tool_home("mytool");
    let stale = tempfile::tempdir().unwrap();
    let old_cert = stale.path().join("client.crt");
    let old_key = stale.path().join("client.key");
    std::fs::copy(home.join(".toolskube/client.crt"), &old_cert).unwrap();
    std::fs::copy(home.join(".toolskube/client.key"), &old_key).unwrap();
    daemon.admin_ok(&["creds", "regenerate", "mytool"]);
    std::fs::copy(&old_cert, home.join(".toolskube/client.crt")).unwrap();
    std::fs::copy(&old_key, home.join(".toolskube/client.key")).unwrap();
    for program in ["toolforge-jobs", "toolforge-envvars"] {
        let Some(out) = list(&daemon, "mytool", program) else {
            return;
        };
        let all = printed(&out);
        assert_eq!(out.status.code(), Some(1), "{program}: {all}");
        assert!(
            all.contains("was regenerated and is no longer valid"),
            "{program}: {all}"
        );
        assert!(!all.contains("Traceback"), "{program}: {all}");
    }
}
