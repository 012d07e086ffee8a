//! Envvar values: a type that never prints its content and wipes it when dropped.

use std::fmt;

use zeroize::Zeroizing;

use crate::{EnvvarName, Error, Result};

/// The largest value accepted, in bytes of UTF-8: 64 KiB.
///
/// Large enough for a PEM certificate chain or a JSON service-account file, small
/// enough that a job's environment (Linux limits one string to 128 KiB) can hold it.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// A secret value: `Debug` shows `<redacted>`, there is no `Display`, and the memory
/// is zeroed when the value is dropped.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    /// Wraps `value`, taking over its buffer (no copy is left behind).
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The value in clear, for the one place that must send or inject it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is `""` (allowed: the original accepts empty values).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks the size limit and that the value can live in an environment variable.
    pub fn check_storable(&self, name: &EnvvarName) -> Result<()> {
        if self.len() > MAX_VALUE_BYTES {
            return Err(Error::ValueTooLong {
                name: name.clone(),
                len: self.len(),
                limit: MAX_VALUE_BYTES,
            });
        }
        if self.0.contains('\0') {
            return Err(Error::NulInValue { name: name.clone() });
        }
        Ok(())
    }
}

impl From<String> for SecretValue {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use crate::{EnvvarName, MAX_VALUE_BYTES, SecretValue};

    #[test]
    fn debug_output_never_shows_the_value() {
        let value = SecretValue::from("hunter2".to_owned());
        assert_eq!(format!("{value:?}"), "SecretValue(<redacted>)");
        assert_eq!(format!("{value:#?}"), "SecretValue(<redacted>)");
        assert_eq!(value.expose(), "hunter2");
    }

    #[test]
    fn values_up_to_64_kib_are_stored_and_longer_ones_refused_naming_the_limit() {
        let name = EnvvarName::parse("MY_VAR").unwrap();
        assert!(SecretValue::default().check_storable(&name).is_ok());
        let at_limit = SecretValue::from("x".repeat(MAX_VALUE_BYTES));
        assert!(at_limit.check_storable(&name).is_ok());
        let over = SecretValue::from("x".repeat(MAX_VALUE_BYTES + 1));
        assert_eq!(
            over.check_storable(&name).unwrap_err().to_string(),
            "The value of MY_VAR is 65537 bytes long, more than the limit of 65536 bytes"
        );
        // Multi-byte characters count in bytes, as the environment does.
        let wide = SecretValue::from("é".repeat(MAX_VALUE_BYTES / 2 + 1));
        assert!(wide.check_storable(&name).is_err());
    }

    #[test]
    fn a_nul_character_is_refused_because_no_environment_can_hold_it() {
        let name = EnvvarName::parse("MY_VAR").unwrap();
        let err = SecretValue::from("a\0b".to_owned())
            .check_storable(&name)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "The value of MY_VAR contains a NUL character, which an environment variable cannot hold"
        );
        assert!(!err.to_string().contains("a\0b"));
    }
}
