//! The sandbox a workload runs in, built with bubblewrap (`bwrap`) and `tini`.
//!
//! bwrap, run as the tool's own (unprivileged) user, creates a user namespace mapping that
//! user to itself, and new mount, pid, ipc, uts and cgroup namespaces.
//! The new root is a tmpfs holding read-only binds of the image root's top-level
//! directories (so `/data/project/<tool>` can be created on it), a fresh `/proc`, a minimal
//! `/dev`, a private `/tmp` and `/run`, and the tool home; it is then remounted read-only.
//! `/etc/passwd` and `/etc/group` are the image's plus an entry for the tool's user, so
//! `getpass`, git and ssh work. bwrap sets `no_new_privs` and the sandboxed processes have
//! no capabilities, not even inside their user namespace.
//! PID 1 is `tini` (statically linked, bound at `/dev/init`), which reaps orphans and
//! forwards signals to the command's process group.
//!
//! This module only builds argument lists and files; `local` spawns them.

use std::ffi::OsString;
use std::fs;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Top-level names of an image root that are never bound: the sandbox gets its own
/// `/proc`, `/dev`, `/tmp` and `/run`, `/data` holds only the tool's home, `/sys` and
/// `/root` are not for tools.
const NOT_BOUND: [&str; 8] = [
    "proc",
    "dev",
    "tmp",
    "run",
    "sys",
    "data",
    "root",
    "lost+found",
];

/// Where the init is bound inside the sandbox.
pub(crate) const INIT_TARGET: &str = "/dev/init";

/// A top-level entry of an image root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TopLevel {
    Dir(String),
    Symlink { name: String, target: PathBuf },
}

/// Everything bwrap needs to build one sandbox.
#[derive(Debug, Clone)]
pub(crate) struct SandboxPlan {
    /// The image root as bwrap sees it (a host path, or the staged bind of it).
    pub(crate) root: PathBuf,
    /// The image root's top-level entries.
    pub(crate) top_level: Vec<TopLevel>,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) hostname: String,
    /// The tool home as bwrap sees it.
    pub(crate) home_source: PathBuf,
    /// `/data/project/<tool>`.
    pub(crate) home_target: PathBuf,
    /// Paths to cover with an empty tmpfs (when the runtime could not hide them itself).
    pub(crate) hide: Vec<PathBuf>,
    /// The init binary on the host.
    pub(crate) init: PathBuf,
    pub(crate) passwd_fd: RawFd,
    pub(crate) group_fd: RawFd,
    pub(crate) info_fd: RawFd,
    /// The command after the init: `/bin/sh -c -- <script>`.
    pub(crate) argv: Vec<String>,
}

/// Lists the top-level entries of `root` that the sandbox binds.
pub(crate) fn top_level_entries(root: &Path) -> Result<Vec<TopLevel>> {
    let entries = fs::read_dir(root).map_err(|source| Error::Io {
        action: "listing image root",
        path: root.to_path_buf(),
        source,
    })?;
    let mut top_level = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if NOT_BOUND.contains(&name.as_str()) {
            continue;
        }
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_symlink() {
            if let Ok(target) = fs::read_link(entry.path()) {
                top_level.push(TopLevel::Symlink { name, target });
            }
        } else if file_type.is_dir() {
            top_level.push(TopLevel::Dir(name));
        }
    }
    top_level.sort_by(|a, b| top_level_name(a).cmp(top_level_name(b)));
    Ok(top_level)
}

fn top_level_name(entry: &TopLevel) -> &str {
    match entry {
        TopLevel::Dir(name) | TopLevel::Symlink { name, .. } => name,
    }
}

/// The bwrap arguments for `plan`.
pub(crate) fn bwrap_args(plan: &SandboxPlan) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |items: &[&dyn AsRef<std::ffi::OsStr>]| {
        args.extend(items.iter().map(|item| item.as_ref().to_os_string()));
    };
    let uid = plan.uid.to_string();
    let gid = plan.gid.to_string();
    push(&[&"--unshare-user", &"--uid", &uid, &"--gid", &gid]);
    push(&[
        &"--unshare-pid",
        &"--unshare-ipc",
        &"--unshare-uts",
        &"--unshare-cgroup-try",
    ]);
    push(&[
        &"--new-session",
        &"--as-pid-1",
        &"--hostname",
        &plan.hostname,
    ]);
    push(&[&"--info-fd", &plan.info_fd.to_string()]);
    for entry in &plan.top_level {
        match entry {
            TopLevel::Dir(name) => {
                let target = Path::new("/").join(name);
                push(&[&"--ro-bind", &plan.root.join(name), &target]);
            }
            TopLevel::Symlink { name, target } => {
                push(&[&"--symlink", target, &Path::new("/").join(name)]);
            }
        }
    }
    push(&[
        &"--proc", &"/proc", &"--dev", &"/dev", &"--tmpfs", &"/tmp", &"--tmpfs", &"/run",
    ]);
    for hidden in &plan.hide {
        push(&[&"--tmpfs", hidden, &"--remount-ro", hidden]);
    }
    push(&[&"--bind", &plan.home_source, &plan.home_target]);
    push(&[
        &"--ro-bind-data",
        &plan.passwd_fd.to_string(),
        &"/etc/passwd",
    ]);
    push(&[&"--ro-bind-data", &plan.group_fd.to_string(), &"/etc/group"]);
    push(&[&"--ro-bind", &plan.init, &INIT_TARGET]);
    push(&[&"--remount-ro", &"/", &"--chdir", &plan.home_target]);
    push(&[&"--", &INIT_TARGET, &"-g", &"--"]);
    args.extend(plan.argv.iter().map(OsString::from));
    args
}

/// The shell command, with file logs appended the way the original wraps it:
/// `exec 1>>OUT;exec 2>>ERR;CMD`.
pub(crate) fn shell_script(
    command: &str,
    stdout_file: Option<&str>,
    stderr_file: Option<&str>,
) -> String {
    let mut script = String::new();
    if let Some(out) = stdout_file {
        script.push_str(&format!("exec 1>>{};", shell_quote(out)));
    }
    if let Some(err) = stderr_file {
        script.push_str(&format!("exec 2>>{};", shell_quote(err)));
    }
    script.push_str(command);
    script
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The image's `/etc/passwd` with an entry for the tool user (replacing any line with the
/// same name or uid).
pub(crate) fn passwd_with(base: &str, user: &str, uid: u32, gid: u32, home: &Path) -> String {
    let uid_text = uid.to_string();
    let mut text: String = base
        .lines()
        .filter(|line| {
            let mut fields = line.split(':');
            let name = fields.next();
            let line_uid = fields.nth(1);
            name != Some(user) && line_uid != Some(uid_text.as_str())
        })
        .map(|line| format!("{line}\n"))
        .collect();
    text.push_str(&format!(
        "{user}:x:{uid}:{gid}:{user}:{}:/bin/bash\n",
        home.display()
    ));
    text
}

/// The image's `/etc/group` with the tool's group.
pub(crate) fn group_with(base: &str, group: &str, gid: u32) -> String {
    let gid_text = gid.to_string();
    let mut text: String = base
        .lines()
        .filter(|line| {
            let mut fields = line.split(':');
            let name = fields.next();
            let line_gid = fields.nth(1);
            name != Some(group) && line_gid != Some(gid_text.as_str())
        })
        .map(|line| format!("{line}\n"))
        .collect();
    text.push_str(&format!("{group}:x:{gid}:\n"));
    text
}

/// The Unix name of a tool's user, as on Toolforge.
pub(crate) fn tool_user(tool: &str) -> String {
    format!("tools.{tool}")
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::sandbox::{
        SandboxPlan, TopLevel, bwrap_args, group_with, passwd_with, shell_script,
    };

    #[test]
    fn file_logs_are_appended_the_way_the_original_wraps_commands() {
        assert_eq!(
            shell_script(
                "./bot.py --x 'y'",
                Some("/data/project/t/bot.out"),
                Some("/data/project/t/bot's.err")
            ),
            r"exec 1>>'/data/project/t/bot.out';exec 2>>'/data/project/t/bot'\''s.err';./bot.py --x 'y'"
        );
        assert_eq!(shell_script("true", None, None), "true");
    }

    #[test]
    fn the_tool_user_replaces_a_clashing_passwd_line() {
        let base = "root:x:0:0:root:/root:/bin/bash\nold:x:50001:50001::/home/old:/bin/sh\n";
        let passwd = passwd_with(base, "tools.t", 50001, 50001, Path::new("/data/project/t"));
        assert_eq!(
            passwd,
            "root:x:0:0:root:/root:/bin/bash\ntools.t:x:50001:50001:tools.t:/data/project/t:/bin/bash\n"
        );
        assert_eq!(
            group_with("root:x:0:\n", "tools.t", 50001),
            "root:x:0:\ntools.t:x:50001:\n"
        );
    }

    #[test]
    fn the_sandbox_binds_the_image_read_only_and_the_home_writable() {
        let plan = SandboxPlan {
            root: PathBuf::from("/"),
            top_level: vec![
                TopLevel::Dir("usr".into()),
                TopLevel::Symlink {
                    name: "bin".into(),
                    target: "usr/bin".into(),
                },
            ],
            uid: 50001,
            gid: 50001,
            hostname: "t-job-0".into(),
            home_source: "/srv/homes/t".into(),
            home_target: "/data/project/t".into(),
            hide: vec!["/srv/data".into()],
            init: "/usr/bin/tini-static".into(),
            passwd_fd: 5,
            group_fd: 6,
            info_fd: 7,
            argv: vec!["/bin/sh".into(), "-c".into(), "--".into(), "true".into()],
        };
        let args: Vec<String> = bwrap_args(&plan)
            .into_iter()
            .map(|a| a.into_string().expect("utf-8"))
            .collect();
        assert_eq!(
            args.join(" "),
            "--unshare-user --uid 50001 --gid 50001 --unshare-pid --unshare-ipc --unshare-uts --unshare-cgroup-try \
             --new-session --as-pid-1 --hostname t-job-0 --info-fd 7 --ro-bind /usr /usr --symlink usr/bin /bin \
             --proc /proc --dev /dev --tmpfs /tmp --tmpfs /run --tmpfs /srv/data --remount-ro /srv/data --bind /srv/homes/t /data/project/t \
             --ro-bind-data 5 /etc/passwd --ro-bind-data 6 /etc/group --ro-bind /usr/bin/tini-static /dev/init \
             --remount-ro / --chdir /data/project/t -- /dev/init -g -- /bin/sh -c -- true"
        );
    }
}
