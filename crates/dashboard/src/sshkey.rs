//! SSH public keys in OpenSSH's one-line format: `<type> <base64 blob> [comment]`.
//!
//! The blob is decoded and its structure checked (the type inside must equal the type
//! outside; RSA keys must be at least 2048 bits), the size in bits is read from it, and
//! the fingerprint is OpenSSH's `SHA256:<base64 of the blob's SHA-256, no padding>`.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

/// The key types accepted.
pub const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// A parsed public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The key type.
    pub key_type: String,
    /// The base64 blob, as given.
    pub blob: String,
    /// The comment, possibly empty.
    pub comment: String,
    /// `SHA256:…`.
    pub fingerprint: String,
    /// Size in bits.
    pub bits: u32,
}

/// Parses and checks one key line; the error names the rule broken.
pub fn parse(line: &str) -> Result<PublicKey, String> {
    let line = line.trim();
    if line.is_empty() {
        return Err(
            "Paste a public key: one line such as 'ssh-ed25519 AAAAC3Nz… you@host'.".to_owned(),
        );
    }
    if line.contains('\n') {
        return Err("Paste one key at a time: the key must be a single line.".to_owned());
    }
    if line.contains("PRIVATE KEY") {
        return Err(
            "That is a private key: never share it. Paste the public key (the .pub file) instead."
                .to_owned(),
        );
    }
    let mut fields = line.splitn(3, char::is_whitespace);
    let key_type = fields.next().unwrap_or_default();
    let blob = fields.next().unwrap_or_default().trim();
    let comment = fields.next().unwrap_or_default().trim();
    if !KEY_TYPES.contains(&key_type) {
        return Err(format!(
            "Unsupported key type '{}': use one of {}.",
            key_type.chars().take(40).collect::<String>(),
            KEY_TYPES.join(", ")
        ));
    }
    let bytes = STANDARD.decode(blob).map_err(|_| {
        "The key's second field is not valid base64: copy the whole line of the .pub file."
            .to_owned()
    })?;
    let mut reader = Reader(&bytes);
    let inner_type = reader.string().ok_or_else(|| truncated(key_type))?;
    if inner_type != key_type.as_bytes() {
        return Err(format!(
            "The key data says it is a '{}' key, but the line says '{key_type}'.",
            String::from_utf8_lossy(inner_type)
                .chars()
                .take(40)
                .collect::<String>()
        ));
    }
    let bits = match key_type {
        "ssh-ed25519" | "sk-ssh-ed25519@openssh.com" => {
            let key = reader.string().ok_or_else(|| truncated(key_type))?;
            if key.len() != 32 {
                return Err("An ed25519 key holds 32 bytes; this one does not.".to_owned());
            }
            256
        }
        "ssh-rsa" => {
            let _exponent = reader.string().ok_or_else(|| truncated(key_type))?;
            let modulus = reader.string().ok_or_else(|| truncated(key_type))?;
            let bits = mpint_bits(modulus);
            if bits < 2048 {
                return Err(format!(
                    "This RSA key has {bits} bits: RSA keys need at least 2048 bits."
                ));
            }
            bits
        }
        _ => {
            let curve = reader.string().ok_or_else(|| truncated(key_type))?;
            let _point = reader.string().ok_or_else(|| truncated(key_type))?;
            match curve {
                b"nistp256" => 256,
                b"nistp384" => 384,
                b"nistp521" => 521,
                _ => return Err("The key names an unknown elliptic curve.".to_owned()),
            }
        }
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    Ok(PublicKey {
        key_type: key_type.to_owned(),
        blob: blob.to_owned(),
        comment: comment.chars().take(200).collect(),
        fingerprint: format!("SHA256:{}", STANDARD_NO_PAD.encode(digest.as_ref())),
        bits,
    })
}

fn truncated(key_type: &str) -> String {
    format!("The key data is cut short: it is not a complete {key_type} key.")
}

/// Bits of an SSH `mpint` (big-endian, possibly with a leading zero byte).
fn mpint_bits(bytes: &[u8]) -> u32 {
    let bytes = match bytes.iter().position(|byte| *byte != 0) {
        Some(first) => &bytes[first..],
        None => return 0,
    };
    let leading = bytes[0].leading_zeros();
    u32::try_from(bytes.len()).unwrap_or(u32::MAX / 8) * 8 - leading
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// One length-prefixed SSH string.
    fn string(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.0.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (value, rest) = rest.split_at(len);
        self.0 = rest;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A key made by `ssh-keygen -t ed25519`, and its fingerprint as `ssh-keygen -l` prints it.
    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIONuu49nGsxHUjA7T7CbHhbxHOvp8FoKHnCNR/lC3qqR test@example";

    #[test]
    fn an_ed25519_key_is_parsed_with_its_size_and_comment() {
        let key = parse(ED25519).unwrap();
        assert_eq!(key.key_type, "ssh-ed25519");
        assert_eq!(key.bits, 256);
        assert_eq!(key.comment, "test@example");
        assert_eq!(
            key.fingerprint,
            "SHA256:4YUG7dnDESJFyRyi4ApWkc4Sh+LHKsKlyt9CCT3iLh8"
        );
    }

    #[test]
    fn bad_keys_are_refused_with_the_rule_they_broke() {
        let cases = [
            ("", "Paste a public key"),
            ("ssh-dss AAAA", "Unsupported key type 'ssh-dss'"),
            ("ssh-ed25519 !!!notbase64", "not valid base64"),
            ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", "cut short"),
            (
                "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIONuu49nGsxHUjA7T7CbHhbxHOvp8FoKHnCNR/lC3qqR",
                "says it is a 'ssh-ed25519' key, but the line says 'ssh-rsa'",
            ),
            ("-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
        ];
        for (line, expected) in cases {
            let err = parse(line).unwrap_err();
            assert!(err.contains(expected), "{line}: {err}");
        }
    }

    #[test]
    fn rsa_sizes_come_from_the_modulus() {
        assert_eq!(mpint_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(mpint_bits(&[0x01, 0x00]), 9);
    }
}
