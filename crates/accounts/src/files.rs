//! Writing files into tool homes and the data directory: atomically, with the
//! mode set before any content lands, and owned by the tool when we run as root.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Who should own what we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Unix uid.
    pub uid: u32,
    /// Unix gid.
    pub gid: u32,
}

/// Writes `contents` to `path` through a temporary file and a rename, with `mode`
/// and, when given, `owner`.
pub fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<Owner>,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    // The umask may have narrowed the mode; set it exactly.
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    if let Some(owner) = owner {
        chown(&tmp, owner)?;
    }
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Creates `path` (and missing parents) and sets its `mode` and `owner`.
pub fn ensure_dir(path: &Path, mode: u32, owner: Option<Owner>) -> std::io::Result<()> {
    std::fs::create_dir_all(path)?;
    if let Some(owner) = owner {
        chown(path, owner)?;
    }
    // chown clears setgid on some systems, so the mode comes last.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn chown(path: &Path, owner: Owner) -> std::io::Result<()> {
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(owner.uid)),
        Some(nix::unistd::Gid::from_raw(owner.gid)),
    )
    .map_err(std::io::Error::from)
}
