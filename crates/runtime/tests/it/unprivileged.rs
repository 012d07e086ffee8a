//! The isolation that applies without root (user and mount namespaces, host network, no
//! cgroups), checked by running this test binary as an unprivileged user.
//!
//! The root test copies the binary to a directory that user can read and runs it as that
//! user, selecting the child test, which only runs when `TOOLFORGE_RUNTIME_UNPRIV_CHILD` is set.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use runtime::{ExitStatus, Isolation, Runtime};

use crate::support::{Fixture, SECRET, exit_of};

/// Set in the child's environment; the child test does nothing without it.
const CHILD_MARKER: &str = "TOOLFORGE_RUNTIME_UNPRIV_CHILD";
/// Printed by the child when every check passed, so the parent knows it really ran.
const PASSED: &str = "UNPRIVILEGED CHECKS PASSED";
const CHILD_TEST: &str = "unprivileged::the_unprivileged_half_of_the_isolation_checks";

#[test]
fn the_isolation_checks_that_apply_without_root_pass_as_an_unprivileged_user() {
    let test = "the_isolation_checks_that_apply_without_root_pass_as_an_unprivileged_user";
    if !test_support::skip::is_root() {
        test_support::skip::prerequisite_missing(
            test,
            "needs root to switch to the unprivileged user",
        );
        return;
    }
    let name = std::env::var("TOOLFORGE_TEST_UNPRIV_USER")
        .unwrap_or_else(|_| "toolforge-unpriv".to_owned());
    let user = match nix::unistd::User::from_name(&name).expect("passwd lookup") {
        Some(user) => user,
        None => {
            let status = std::process::Command::new("useradd")
                .args(["--system", "--no-create-home", &name])
                .status()
                .expect("run useradd");
            assert!(status.success(), "useradd {name} failed");
            nix::unistd::User::from_name(&name)
                .expect("passwd lookup")
                .expect("user created")
        }
    };
    let dir = tempfile::Builder::new()
        .prefix("runtime-unpriv-")
        .tempdir()
        .expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod dir");
    let binary = dir.path().join("it");
    std::fs::copy(std::env::current_exe().expect("current exe"), &binary)
        .expect("copy the test binary");
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755))
        .expect("chmod binary");

    let mut command = std::process::Command::new(&binary);
    command
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env(CHILD_MARKER, "1")
        .current_dir(dir.path())
        .uid(user.uid.as_raw())
        .gid(user.gid.as_raw());
    for passed_on in ["CI", "TOOLFORGE_SKIP_LOG", "RUST_BACKTRACE"] {
        if let Ok(value) = std::env::var(passed_on) {
            command.env(passed_on, value);
        }
    }
    // Another test's fork may briefly hold the copy's write fd (until its exec closes it):
    // retry while the kernel says the file is busy.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let output = loop {
        match command.output() {
            Err(err)
                if err.raw_os_error() == Some(libc::ETXTBSY)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::yield_now();
            }
            res => break res.expect("run the child test"),
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the unprivileged checks failed:\n{stdout}\n{stderr}"
    );
    if stderr.contains("SKIPPED:") {
        // The child could not build a sandbox as that user; it said why.
        eprintln!("{stderr}");
        return;
    }
    assert!(
        stdout.contains(PASSED),
        "the child test did not run:\n{stdout}\n{stderr}"
    );
}

#[tokio::test]
async fn the_unprivileged_half_of_the_isolation_checks() {
    // Run only as the child of the test above.
    if std::env::var_os(CHILD_MARKER).is_none() {
        return;
    }
    assert!(
        !test_support::skip::is_root(),
        "the child must run without root"
    );
    let fixture = Fixture::new().await;
    let runtime = fixture.runtime();
    if runtime.isolation() == Isolation::None {
        let reason = format!(
            "no user namespaces: {}",
            runtime.isolation_note().unwrap_or("")
        );
        test_support::skip::prerequisite_missing(
            "the_isolation_checks_that_apply_without_root_pass_as_an_unprivileged_user",
            &reason,
        );
        return;
    }
    assert_eq!(
        runtime.isolation(),
        Isolation::Partial,
        "{:?}",
        runtime.isolation_note()
    );
    assert!(
        !runtime.limits_enforced(),
        "cgroups must not be writable without root"
    );
    assert_eq!(runtime.job_network_host(), None);

    let uid = nix::unistd::getuid().as_raw();
    let other_home = fixture.tool_home("othertool", uid);
    std::fs::write(other_home.join("notes.txt"), "private").expect("write");
    let host_tmp_marker = tempfile::NamedTempFile::new().expect("host /tmp file");
    let script = format!(
        r#"echo "uid=$(id -u)"
touch /etc/x 2>/dev/null && echo etc=writable || echo etc=read-only
touch /usr/x 2>/dev/null && echo usr=writable || echo usr=read-only
touch {other}/x 2>/dev/null && echo other-home=writable || echo other-home=not-writable
cat {data}/secret.key 2>/dev/null || echo data=unreadable
ls /data/project
test -e {marker} && echo tmp=host || echo tmp=private
echo "home=$HOME pwd=$(pwd)"
echo "port=$PORT"
echo "nofile=$(ulimit -n)"
grep -E '^(CapEff|NoNewPrivs)' /proc/self/status
"#,
        other = other_home.display(),
        data = fixture.data_dir.path().display(),
        marker = host_tmp_marker.path().display(),
    );
    let mut spec = fixture.spec("mytool", uid, "checks", 0, &script);
    spec.port = Some(8000);
    spec.limits.nofile = Some(256);
    let mut handle = runtime.start(spec.clone()).await.expect("started");
    let endpoint = handle.endpoint.expect("an endpoint");
    assert!(endpoint.ip().is_loopback());
    assert_eq!(
        exit_of(&mut handle, Duration::from_secs(30)).await,
        ExitStatus::Code(0),
        "{}",
        fixture.stderr_of(&spec)
    );
    let stdout = fixture.stdout_of(&spec);
    assert!(!stdout.contains(SECRET));
    assert_eq!(
        stdout,
        format!(
            "uid={uid}\netc=read-only\nusr=read-only\nother-home=not-writable\ndata=unreadable\nmytool\ntmp=private\n\
             home=/data/project/mytool pwd=/data/project/mytool\nport={}\nnofile=256\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n",
            endpoint.port()
        ),
        "stderr: {}",
        fixture.stderr_of(&spec)
    );
    assert!(!other_home.join("x").exists());
    println!("{PASSED}");
}
