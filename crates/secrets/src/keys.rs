//! The encryption keys: one file per key, `<keys-dir>/<key-id>.key`, 32 random bytes,
//! mode 0600 in a 0700 directory, never in the database.
//!
//! Values are sealed with XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`): a fresh
//! random 192-bit nonce per value (large enough that random nonces never repeat in
//! practice), and the tool, the name and the key id as associated data, so a
//! ciphertext moved to another tool, another name or relabelled with another key id
//! fails authentication instead of decrypting.
//!
//! The active key is the one with the highest id; older keys stay loaded until no
//! stored value refers to them, so every value stays readable with the key id stored
//! beside it.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::{EnvvarName, Error, Result, SecretValue};

/// Length of a key in bytes.
const KEY_LEN: usize = 32;
/// Length of a nonce in bytes.
const NONCE_LEN: usize = 24;
/// Versions the associated data, should its layout ever change.
const AAD_CONTEXT: &[u8] = b"toolforge-envvar-v1";

/// A value as stored: which key sealed it, the nonce, the ciphertext with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sealed {
    pub(crate) key_id: u32,
    pub(crate) nonce: Vec<u8>,
    pub(crate) ciphertext: Vec<u8>,
}

/// The keys loaded from the keys directory.
pub(crate) struct KeyRing {
    dir: PathBuf,
    keys: BTreeMap<u32, Zeroizing<[u8; KEY_LEN]>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("dir", &self.dir)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    /// Loads every `<id>.key` of `dir`, creating `dir` (0700) when missing.
    ///
    /// Refuses a directory or key file that others than the daemon's user can read.
    pub(crate) fn load(dir: &Path) -> Result<Self> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|err| Error::io(dir, err))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|err| Error::io(dir, err))?;
        }
        check_private(dir, "chmod 700")?;
        let mut keys = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(|err| Error::io(dir, err))? {
            let entry = entry.map_err(|err| Error::io(dir, err))?;
            let path = entry.path();
            let Some(id) = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(".key"))
            else {
                continue;
            };
            let id: u32 = id.parse().map_err(|_| Error::KeyFile {
                path: path.clone(),
                problem: "its name is not <number>.key".to_owned(),
            })?;
            check_private(&path, "chmod 600")?;
            let bytes = Zeroizing::new(std::fs::read(&path).map_err(|err| Error::io(&path, err))?);
            let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| Error::KeyFile {
                path: path.clone(),
                problem: format!("it holds {} bytes, not {KEY_LEN}", bytes.len()),
            })?;
            keys.insert(id, Zeroizing::new(key));
        }
        Ok(Self {
            dir: dir.to_owned(),
            keys,
        })
    }

    /// The key new values are sealed with, if any key exists.
    pub(crate) fn active_id(&self) -> Option<u32> {
        self.keys.keys().next_back().copied()
    }

    /// Ids of every loaded key.
    pub(crate) fn ids(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    /// The keys directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds key `id` (above every loaded one), making it the active key. The caller
    /// has written its file first ([`write_key_file`]).
    pub(crate) fn insert(&mut self, id: u32, key: Zeroizing<[u8; KEY_LEN]>) {
        debug_assert!(self.active_id().is_none_or(|active| id > active));
        self.keys.insert(id, key);
    }

    /// Forgets key `id`; the caller has deleted its file ([`remove_key_file`]).
    pub(crate) fn remove(&mut self, id: u32) {
        self.keys.remove(&id);
    }

    /// Seals `value` of `tool`'s `name` with the active key.
    pub(crate) fn seal(
        &self,
        tool: &str,
        name: &EnvvarName,
        value: &SecretValue,
    ) -> Result<Sealed> {
        let key_id = self.active_id().ok_or(Error::NoKey)?;
        let cipher = self.cipher(key_id, tool, name)?;
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated_data(tool, name, key_id);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value.expose().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Undecryptable {
                tool: tool.to_owned(),
                name: name.clone(),
                key_id,
            })?;
        Ok(Sealed {
            key_id,
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Opens a value of `tool`'s `name` with the key that sealed it.
    pub(crate) fn open(
        &self,
        tool: &str,
        name: &EnvvarName,
        sealed: &Sealed,
    ) -> Result<SecretValue> {
        let cipher = self.cipher(sealed.key_id, tool, name)?;
        let undecryptable = || Error::Undecryptable {
            tool: tool.to_owned(),
            name: name.clone(),
            key_id: sealed.key_id,
        };
        if sealed.nonce.len() != NONCE_LEN {
            return Err(undecryptable());
        }
        let aad = associated_data(tool, name, sealed.key_id);
        let plain = cipher
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| undecryptable())?;
        // `from_utf8` reuses the buffer, so the only copy is the one zeroed on drop.
        String::from_utf8(plain)
            .map(SecretValue::new)
            .map_err(|err| {
                drop(Zeroizing::new(err.into_bytes()));
                undecryptable()
            })
    }

    fn cipher(&self, key_id: u32, tool: &str, name: &EnvvarName) -> Result<XChaCha20Poly1305> {
        let key = self.keys.get(&key_id).ok_or_else(|| Error::MissingKey {
            tool: tool.to_owned(),
            name: name.clone(),
            key_id,
            path: key_path(&self.dir, key_id),
        })?;
        Ok(XChaCha20Poly1305::new(key.as_slice().into()))
    }
}

/// A new random key.
pub(crate) fn generate_key() -> Zeroizing<[u8; KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&XChaCha20Poly1305::generate_key(&mut OsRng));
    key
}

/// Deletes a key file; a file already gone is fine.
pub(crate) fn remove_key_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Error::io(path, err)),
    }
}

/// `<dir>/<id>.key`.
pub(crate) fn key_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id}.key"))
}

/// The tool, the name and the key id, length-prefixed so no two triples give the
/// same bytes.
fn associated_data(tool: &str, name: &EnvvarName, key_id: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_CONTEXT.len() + tool.len() + name.as_str().len() + 12);
    aad.extend_from_slice(AAD_CONTEXT);
    for part in [tool.as_bytes(), name.as_str().as_bytes()] {
        aad.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad.extend_from_slice(&key_id.to_be_bytes());
    aad
}

/// Refuses `path` when its group or others have any permission on it.
pub(crate) fn check_private(path: &Path, fix: &str) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|err| Error::io(path, err))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Error::KeyFile {
            path: path.to_owned(),
            problem: format!(
                "its mode is {mode:04o}, so users other than the daemon's may read it; \
                 run `{fix} {}`",
                path.display()
            ),
        });
    }
    Ok(())
}

/// Writes a key through a temporary file created 0600, syncs it and the directory.
pub(crate) fn write_key_file(dir: &Path, id: u32, key: &[u8; KEY_LEN]) -> Result<()> {
    let path = key_path(dir, id);
    if path.exists() {
        return Err(Error::KeyFile {
            path,
            problem: "it already exists; a new key never replaces one".to_owned(),
        });
    }
    let tmp = dir.join(format!(".{id}.key.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(key)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|err| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(&path, err)
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use crate::keys::{KeyRing, Sealed, generate_key, key_path, remove_key_file, write_key_file};
    use crate::{EnvvarName, Error, SecretValue};

    impl KeyRing {
        fn create_key(&mut self, id: u32) -> crate::Result<()> {
            let key = generate_key();
            write_key_file(&self.dir, id, &key)?;
            self.insert(id, key);
            Ok(())
        }

        fn retire(&mut self, id: u32) -> crate::Result<()> {
            remove_key_file(&key_path(&self.dir, id))?;
            self.remove(id);
            Ok(())
        }
    }

    fn name(text: &str) -> EnvvarName {
        EnvvarName::parse(text).unwrap()
    }

    fn ring() -> (tempfile::TempDir, KeyRing) {
        let dir = tempfile::tempdir().unwrap();
        let mut ring = KeyRing::load(&dir.path().join("keys")).unwrap();
        ring.create_key(1).unwrap();
        (dir, ring)
    }

    #[test]
    fn a_sealed_value_opens_to_the_same_value_and_does_not_contain_it() {
        let (_dir, ring) = ring();
        let value = SecretValue::from("correct horse battery staple".to_owned());
        let sealed = ring.seal("mytool", &name("MY_VAR"), &value).unwrap();
        assert_eq!(sealed.key_id, 1);
        assert_eq!(sealed.nonce.len(), 24);
        assert!(
            !sealed
                .ciphertext
                .windows(5)
                .any(|window| window == b"horse")
        );
        let opened = ring.open("mytool", &name("MY_VAR"), &sealed).unwrap();
        assert_eq!(opened, value);
        // Two seals of one value differ (fresh nonce each time).
        let again = ring.seal("mytool", &name("MY_VAR"), &value).unwrap();
        assert_ne!(again.nonce, sealed.nonce);
        assert_ne!(again.ciphertext, sealed.ciphertext);
    }

    #[test]
    fn a_tampered_ciphertext_or_nonce_is_refused() {
        let (_dir, ring) = ring();
        let sealed = ring
            .seal(
                "mytool",
                &name("MY_VAR"),
                &SecretValue::from("v".to_owned()),
            )
            .unwrap();
        for idx in 0..sealed.ciphertext.len() {
            let mut tampered = sealed.clone();
            tampered.ciphertext[idx] ^= 1;
            let err = ring.open("mytool", &name("MY_VAR"), &tampered).unwrap_err();
            assert!(matches!(err, Error::Undecryptable { .. }), "{err}");
        }
        let mut tampered = sealed.clone();
        tampered.nonce[0] ^= 1;
        assert!(ring.open("mytool", &name("MY_VAR"), &tampered).is_err());
        let mut truncated = sealed;
        truncated.nonce.pop();
        assert!(ring.open("mytool", &name("MY_VAR"), &truncated).is_err());
    }

    #[test]
    fn a_ciphertext_is_bound_to_its_tool_its_name_and_its_key_id() {
        let (_dir, mut ring) = ring();
        let sealed = ring
            .seal(
                "mytool",
                &name("MY_VAR"),
                &SecretValue::from("v".to_owned()),
            )
            .unwrap();
        let err = ring.open("other", &name("MY_VAR"), &sealed).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the stored value of MY_VAR of tool other cannot be decrypted with key 1 (tampered with, or sealed for another tool or name)"
        );
        assert!(ring.open("mytool", &name("MY_VAX"), &sealed).is_err());
        // The same key under another id: the label is authenticated too.
        ring.create_key(2).unwrap();
        let relabelled = Sealed {
            key_id: 2,
            ..sealed
        };
        assert!(ring.open("mytool", &name("MY_VAR"), &relabelled).is_err());
    }

    #[test]
    fn keys_survive_a_reload_and_the_highest_id_is_active() {
        let (dir, mut ring) = ring();
        ring.create_key(2).unwrap();
        let sealed = ring
            .seal(
                "mytool",
                &name("MY_VAR"),
                &SecretValue::from("v".to_owned()),
            )
            .unwrap();
        assert_eq!(sealed.key_id, 2);
        let reloaded = KeyRing::load(&dir.path().join("keys")).unwrap();
        assert_eq!(reloaded.ids(), vec![1, 2]);
        assert_eq!(reloaded.active_id(), Some(2));
        assert_eq!(
            reloaded
                .open("mytool", &name("MY_VAR"), &sealed)
                .unwrap()
                .expose(),
            "v"
        );
        let mode = std::fs::metadata(key_path(&dir.path().join("keys"), 2))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_key_file_others_can_read_is_refused_with_the_fix() {
        let (dir, _ring) = ring();
        let keys = dir.path().join("keys");
        let path = key_path(&keys, 1);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = KeyRing::load(&keys).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the secrets key file {} cannot be used: its mode is 0644, so users other than the daemon's may read it; run `chmod 600 {}`",
                path.display(),
                path.display()
            )
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = KeyRing::load(&keys).unwrap_err();
        assert!(err.to_string().contains("run `chmod 700"), "{err}");
    }

    #[test]
    fn a_key_file_of_the_wrong_size_is_refused() {
        let (dir, _ring) = ring();
        let keys = dir.path().join("keys");
        std::fs::write(key_path(&keys, 1), b"short").unwrap();
        let err = KeyRing::load(&keys).unwrap_err();
        assert!(
            err.to_string().contains("it holds 5 bytes, not 32"),
            "{err}"
        );
    }

    #[test]
    fn a_value_sealed_with_a_missing_key_names_the_missing_file() {
        let (dir, mut ring) = ring();
        let sealed = ring
            .seal(
                "mytool",
                &name("MY_VAR"),
                &SecretValue::from("v".to_owned()),
            )
            .unwrap();
        ring.create_key(2).unwrap();
        ring.retire(1).unwrap();
        assert!(!key_path(&dir.path().join("keys"), 1).exists());
        let err = ring.open("mytool", &name("MY_VAR"), &sealed).unwrap_err();
        assert!(matches!(err, Error::MissingKey { key_id: 1, .. }), "{err}");
    }
}
