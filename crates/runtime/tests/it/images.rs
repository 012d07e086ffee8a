//! Images on a root filesystem directory: the job sees that root, not the host's, even when
//! the directory lies inside the hidden data directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use runtime::images::ImageCatalog;
use runtime::{ExitStatus, Runtime};

use crate::support::{Fixture, exit_of};

const TOOL_UID: u32 = 52041;

/// A root filesystem made of the host's `/usr` (bind-mounted) and an `/etc` of its own;
/// unmounted when dropped.
struct RootFs {
    dir: PathBuf,
}

impl RootFs {
    fn create(dir: &Path) -> RootFs {
        for sub in ["usr", "etc"] {
            std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
        }
        for (link, target) in [
            ("bin", "usr/bin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
            ("sbin", "usr/sbin"),
        ] {
            std::os::unix::fs::symlink(target, dir.join(link)).expect("symlink");
        }
        for file in ["passwd", "group"] {
            std::fs::copy(Path::new("/etc").join(file), dir.join("etc").join(file)).expect("copy");
        }
        std::fs::write(dir.join("etc/image-name"), "bullseye-from-a-directory\n").expect("write");
        let status = std::process::Command::new("mount")
            .args(["--bind", "/usr"])
            .arg(dir.join("usr"))
            .status()
            .expect("mount");
        assert!(status.success(), "mount --bind /usr failed");
        RootFs {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for RootFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.join("usr"))
            .status();
    }
}

#[tokio::test]
async fn a_job_runs_on_a_root_filesystem_directory_an_admin_configured() {
    let test = "a_job_runs_on_a_root_filesystem_directory_an_admin_configured";
    if !test_support::skip::is_root() {
        test_support::skip::prerequisite_missing(test, "needs root (bind mounts)");
        return;
    }
    // The directory is inside the data directory, which jobs cannot see: the runtime must
    // stage it before hiding the data directory.
    let data_dir = tempfile::Builder::new()
        .prefix("runtime-it-rootfs-")
        .tempdir_in("/var/tmp")
        .expect("temp dir");
    let rootfs = RootFs::create(&data_dir.path().join("images/bullseye"));
    let catalog = format!(
        "images:\n  bullseye:\n    image: docker-registry.tools.wmflabs.org/toolforge-bullseye-sssd:latest\n    \
         aliases: [tf-bullseye-std]\n    root: {}\n",
        rootfs.dir.display()
    );
    let images = ImageCatalog::parse(&catalog, Path::new("images.yaml")).expect("catalog parses");
    let hidden = data_dir.path().to_path_buf();
    let Some(fixture) = Fixture::root_adjusted(test, move |config| {
        config.images = images;
        config.hidden_paths.push(hidden);
    })
    .await
    else {
        return;
    };
    let mut spec = fixture.spec(
        "mytool",
        TOOL_UID,
        "oldimage",
        0,
        "cat /etc/image-name; test -e /etc/debian_version && echo host-etc || echo own-etc; id -un",
    );
    spec.image = "tf-bullseye-std".to_owned();
    let mut handle = fixture
        .runtime()
        .start(spec.clone())
        .await
        .expect("started");
    assert_eq!(
        exit_of(&mut handle, Duration::from_secs(30)).await,
        ExitStatus::Code(0),
        "{}",
        fixture.stderr_of(&spec)
    );
    assert_eq!(
        fixture.stdout_of(&spec),
        "bullseye-from-a-directory\nown-etc\ntools.mytool\n"
    );
}
