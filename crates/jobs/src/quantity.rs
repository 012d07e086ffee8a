//! Kubernetes resource quantities, as jobs write them: memory (`512Mi`, `1Gi`, `1G`,
//! `1000000`) and cpu (`500m`, `1`, `0.5`).
//!
//! Memory is held in bytes and cpu in millicores, so totals and limits compare exactly.

use std::fmt;

/// Why a quantity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidQuantity(pub String);

/// Parses a memory quantity into bytes.
pub fn parse_memory(text: &str) -> Result<u64, InvalidQuantity> {
    let invalid = || {
        InvalidQuantity(format!(
            "invalid memory quantity '{text}': use a Kubernetes quantity such as 512Mi, 1Gi or 1G"
        ))
    };
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() || number.starts_with('.') && number.len() == 1 {
        return Err(invalid());
    }
    let multiplier: u64 = match suffix {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return Err(invalid()),
    };
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(bytes.round() as u64)
}

/// Parses a cpu quantity into millicores.
pub fn parse_cpu(text: &str) -> Result<u64, InvalidQuantity> {
    let invalid = || {
        InvalidQuantity(format!(
            "invalid cpu quantity '{text}': use a Kubernetes quantity such as 500m, 1 or 0.5"
        ))
    };
    let text = text.trim();
    let (number, millis) = match text.strip_suffix('m') {
        Some(number) => (number, true),
        None => (text, false),
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(invalid());
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let millicores = if millis { value } else { value * 1000.0 };
    if !millicores.is_finite() || !(1.0..=1e9).contains(&millicores) {
        return Err(invalid());
    }
    Ok(millicores.round() as u64)
}

/// Bytes shown the way the quota table does: `4.0Gi`, `512.0Mi`.
pub struct GibibytesDisplay(pub u64);

impl fmt::Display for GibibytesDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gib = self.0 as f64 / (1u64 << 30) as f64;
        write!(f, "{gib:.1}Gi")
    }
}

/// Millicores shown the way the quota table does: `4.0`, `0.5`.
pub struct CoresDisplay(pub u64);

impl fmt::Display for CoresDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1}", self.0 as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_quantities_parse_to_bytes() {
        for (text, bytes) in [
            ("512Mi", 512 << 20),
            ("1Gi", 1 << 30),
            ("1G", 1_000_000_000),
            ("1.5Gi", 3 << 29),
            ("100", 100),
            ("4Ki", 4096),
        ] {
            assert_eq!(parse_memory(text), Ok(bytes), "{text}");
        }
        for bad in ["", "Gi", "1Xi", "-1Gi", "1 Gi", "0", "abc"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu_quantities_parse_to_millicores() {
        for (text, millis) in [
            ("500m", 500),
            ("1", 1000),
            ("0.5", 500),
            ("2", 2000),
            ("100m", 100),
        ] {
            assert_eq!(parse_cpu(text), Ok(millis), "{text}");
        }
        for bad in ["", "m", "1c", "-1", "0", "0m"] {
            assert!(parse_cpu(bad).is_err(), "{bad}");
        }
        assert_eq!(GibibytesDisplay(4 << 30).to_string(), "4.0Gi");
        assert_eq!(CoresDisplay(500).to_string(), "0.5");
    }
}
