//! The official Toolforge clients from PyPI, pointed at our daemon.

use test_support::skip::prerequisite_missing;

use crate::daemon_with_tool;

#[test]
fn official_clients_find_the_api_in_toolforge_yaml_and_complete_a_verified_handshake() {
    let daemon = daemon_with_tool();
    for (program, service) in [("toolforge-jobs", "jobs"), ("toolforge-envvars", "envvars")] {
        let mut cmd = match daemon.official_client("mytool", program) {
            Ok(cmd) => cmd,
            Err(reason) => {
                return prerequisite_missing(
                    "official_clients_find_the_api_in_toolforge_yaml_and_complete_a_verified_handshake",
                    &reason,
                );
            }
        };
        let out = cmd.arg("list").output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let all = format!("{stdout}{stderr}");
        // A failed handshake or an unverified server certificate would be reported as
        // the service being down; reaching our gateway's envelope proves the handshake
        // was verified against pki/ca.crt and the address came from .toolforge.yaml.
        assert!(!all.contains("seems to be down"), "{program}: {all}");
        assert!(!all.contains("Traceback"), "{program}: {all}");
        assert!(
            all.contains(&format!("/{service}/v1/tool/mytool/")),
            "{program} reached the gateway: {all}"
        );
    }
}
