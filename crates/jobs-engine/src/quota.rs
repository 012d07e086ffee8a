//! Per-tool quota overrides (design.md, `toolforged admin quota set TOOL KEY=VALUE…`):
//! which keys exist, how their values are written, and the effective [`ToolQuota`].
//!
//! Values are counts (`pods`, `jobs`, `cronjobs`, `continuous`, `envvars`), cpu quantities
//! (`cpu`, `job-cpu`: `2`, `500m`, `0.5`) or memory quantities (`memory`, `job-memory`:
//! `4Gi`, `512Mi`), as Kubernetes writes them. An accepted value is kept in its canonical
//! text ([`QuotaKey::format_value`]: `0.5` becomes `500m`, `1024Mi` becomes `1Gi`), which
//! is what the store holds and the admin command shows.
//!
//! `envvars` is enforced by the envvars service (crates/secrets), which reads its override
//! from the same table; the jobs engine uses the other keys.

use std::collections::BTreeMap;
use std::fmt;

use jobs::quantity::{parse_cpu, parse_memory};

use crate::ToolQuota;

/// A key of the per-tool quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QuotaKey {
    /// Running replicas of all jobs at once.
    Pods,
    /// One-off and scheduled runs at once.
    Jobs,
    /// Scheduled job definitions.
    Cronjobs,
    /// Continuous job definitions, the webservice included.
    Continuous,
    /// Total cpu of running replicas.
    Cpu,
    /// Total memory of running replicas.
    Memory,
    /// Largest cpu of one job.
    JobCpu,
    /// Largest memory of one job.
    JobMemory,
    /// Envvars of the tool.
    Envvars,
}

/// Why a key or value was refused; the message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidQuota(pub String);

impl QuotaKey {
    /// Every key, in the order the admin command shows them.
    pub const ALL: [QuotaKey; 9] = [
        QuotaKey::Pods,
        QuotaKey::Jobs,
        QuotaKey::Cronjobs,
        QuotaKey::Continuous,
        QuotaKey::Cpu,
        QuotaKey::Memory,
        QuotaKey::JobCpu,
        QuotaKey::JobMemory,
        QuotaKey::Envvars,
    ];

    /// The key as written on the command line and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaKey::Pods => "pods",
            QuotaKey::Jobs => "jobs",
            QuotaKey::Cronjobs => "cronjobs",
            QuotaKey::Continuous => "continuous",
            QuotaKey::Cpu => "cpu",
            QuotaKey::Memory => "memory",
            QuotaKey::JobCpu => "job-cpu",
            QuotaKey::JobMemory => "job-memory",
            QuotaKey::Envvars => "envvars",
        }
    }

    /// Parses a key; an unknown one is refused with the list of valid keys.
    pub fn parse(text: &str) -> Result<QuotaKey, InvalidQuota> {
        QuotaKey::ALL
            .into_iter()
            .find(|key| key.as_str() == text)
            .ok_or_else(|| {
                let valid: Vec<&str> = QuotaKey::ALL.iter().map(|key| key.as_str()).collect();
                InvalidQuota(format!(
                    "unknown quota key '{text}' (the keys are {})",
                    valid.join(", ")
                ))
            })
    }

    /// Parses a value of this key: a count, millicores or bytes.
    pub fn parse_value(self, text: &str) -> Result<u64, InvalidQuota> {
        let text = text.trim();
        match self.unit() {
            Unit::Count => text.parse::<u32>().map(u64::from).map_err(|_| {
                InvalidQuota(format!(
                    "{self}: invalid count '{text}': use a whole number from 0 to {}",
                    u32::MAX
                ))
            }),
            Unit::Millicores => {
                parse_cpu(text).map_err(|err| InvalidQuota(format!("{self}: {err}")))
            }
            Unit::Bytes => parse_memory(text).map_err(|err| InvalidQuota(format!("{self}: {err}"))),
        }
    }

    /// A value of this key as Kubernetes writes it: `20`, `2`, `500m`, `4Gi`, `1500Mi`.
    pub fn format_value(self, value: u64) -> String {
        match self.unit() {
            Unit::Count => value.to_string(),
            Unit::Millicores if value.is_multiple_of(1000) => (value / 1000).to_string(),
            Unit::Millicores => format!("{value}m"),
            Unit::Bytes => format_bytes(value),
        }
    }

    /// Canonical text of a value written as `text`: [`parse_value`](Self::parse_value),
    /// then [`format_value`](Self::format_value).
    pub fn canonical_value(self, text: &str) -> Result<String, InvalidQuota> {
        Ok(self.format_value(self.parse_value(text)?))
    }

    fn unit(self) -> Unit {
        match self {
            QuotaKey::Pods
            | QuotaKey::Jobs
            | QuotaKey::Cronjobs
            | QuotaKey::Continuous
            | QuotaKey::Envvars => Unit::Count,
            QuotaKey::Cpu | QuotaKey::JobCpu => Unit::Millicores,
            QuotaKey::Memory | QuotaKey::JobMemory => Unit::Bytes,
        }
    }
}

impl fmt::Display for QuotaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy)]
enum Unit {
    Count,
    Millicores,
    Bytes,
}

/// Validates `KEY=VALUE` pairs (already split) all at once: the keys with their canonical
/// values, in the given order, or every problem found, so nothing is stored when any pair
/// is bad. A key given twice is refused.
pub fn parse_assignments(
    pairs: &[(String, String)],
) -> Result<Vec<(QuotaKey, String)>, InvalidQuota> {
    let mut accepted: Vec<(QuotaKey, String)> = Vec::new();
    let mut problems = Vec::new();
    if pairs.is_empty() {
        problems.push("give at least one KEY=VALUE pair".to_owned());
    }
    for (key, value) in pairs {
        match QuotaKey::parse(key).and_then(|key| Ok((key, key.canonical_value(value)?))) {
            Ok((key, _)) if accepted.iter().any(|(seen, _)| *seen == key) => {
                problems.push(format!("{key} is given more than once"));
            }
            Ok(assignment) => accepted.push(assignment),
            Err(err) => problems.push(err.0),
        }
    }
    if problems.is_empty() {
        Ok(accepted)
    } else {
        Err(InvalidQuota(problems.join("; ")))
    }
}

impl ToolQuota {
    /// The value of `key` (millicores for cpu, bytes for memory); `None` for `envvars`,
    /// which the envvars service holds.
    pub fn get(&self, key: QuotaKey) -> Option<u64> {
        Some(match key {
            QuotaKey::Pods => u64::from(self.pods),
            QuotaKey::Jobs => u64::from(self.jobs),
            QuotaKey::Cronjobs => u64::from(self.cronjobs),
            QuotaKey::Continuous => u64::from(self.continuous),
            QuotaKey::Cpu => self.cpu_millis,
            QuotaKey::Memory => self.memory_bytes,
            QuotaKey::JobCpu => self.job_cpu_millis,
            QuotaKey::JobMemory => self.job_memory_bytes,
            QuotaKey::Envvars => return None,
        })
    }

    /// This quota with `key` set to `value`; counts beyond `u32` saturate, and `envvars`
    /// changes nothing here.
    pub fn with(mut self, key: QuotaKey, value: u64) -> ToolQuota {
        let count = u32::try_from(value).unwrap_or(u32::MAX);
        match key {
            QuotaKey::Pods => self.pods = count,
            QuotaKey::Jobs => self.jobs = count,
            QuotaKey::Cronjobs => self.cronjobs = count,
            QuotaKey::Continuous => self.continuous = count,
            QuotaKey::Cpu => self.cpu_millis = value,
            QuotaKey::Memory => self.memory_bytes = value,
            QuotaKey::JobCpu => self.job_cpu_millis = value,
            QuotaKey::JobMemory => self.job_memory_bytes = value,
            QuotaKey::Envvars => {}
        }
        self
    }

    /// This quota with the stored overrides of `tool` applied. A stored key or value that
    /// does not parse (the database was edited by hand) is logged and left at its default.
    pub fn with_overrides(self, tool: &str, overrides: &BTreeMap<String, String>) -> ToolQuota {
        overrides.iter().fold(self, |quota, (key, value)| {
            match QuotaKey::parse(key).and_then(|key| Ok((key, key.parse_value(value)?))) {
                Ok((key, value)) => quota.with(key, value),
                Err(err) => {
                    tracing::warn!(%tool, %key, error = %err, "ignoring an unreadable quota override");
                    quota
                }
            }
        })
    }
}

/// Bytes in the largest binary unit that divides them exactly.
fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u32); 4] = [("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)];
    for (suffix, shift) in UNITS {
        if bytes != 0 && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{suffix}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(pairs: &[(&str, &str)], expected: Result<&[(&str, &str)], &str>) {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        let res = parse_assignments(&pairs);
        match expected {
            Ok(expected) => {
                let got: Vec<(&str, &str)> = res
                    .as_ref()
                    .unwrap_or_else(|err| panic!("refused: {err}"))
                    .iter()
                    .map(|(key, value)| (key.as_str(), value.as_str()))
                    .collect();
                assert_eq!(got, expected);
            }
            Err(expected) => assert_eq!(res.unwrap_err().0, expected),
        }
    }

    #[test]
    fn values_are_parsed_as_kubernetes_writes_them_and_kept_canonical() {
        check(
            &[
                ("pods", "20"),
                ("jobs", "0"),
                ("cpu", "0.5"),
                ("job-cpu", "1500m"),
                ("memory", "1024Mi"),
                ("job-memory", "1536Mi"),
                ("envvars", " 200 "),
                ("continuous", "4"),
                ("cronjobs", "100"),
            ],
            Ok(&[
                ("pods", "20"),
                ("jobs", "0"),
                ("cpu", "500m"),
                ("job-cpu", "1500m"),
                ("memory", "1Gi"),
                ("job-memory", "1536Mi"),
                ("envvars", "200"),
                ("continuous", "4"),
                ("cronjobs", "100"),
            ]),
        );
        check(
            &[("cpu", "2"), ("memory", "1G")],
            Ok(&[("cpu", "2"), ("memory", "1000000000")]),
        );
    }

    #[test]
    fn every_bad_pair_is_reported_at_once() {
        check(
            &[
                ("pods", "ten"),
                ("bogus", "1"),
                ("cpu", "2"),
                ("memory", "4GB"),
            ],
            Err(
                "pods: invalid count 'ten': use a whole number from 0 to 4294967295; \
                 unknown quota key 'bogus' (the keys are pods, jobs, cronjobs, continuous, cpu, memory, job-cpu, job-memory, envvars); \
                 memory: invalid memory quantity '4GB': use a Kubernetes quantity such as 512Mi, 1Gi or 1G",
            ),
        );
        check(
            &[
                ("job-cpu", "0m"),
                ("jobs", "-1"),
                ("jobs", "2"),
                ("jobs", "3"),
            ],
            Err(
                "job-cpu: invalid cpu quantity '0m': use a Kubernetes quantity such as 500m, 1 or 0.5; \
                 jobs: invalid count '-1': use a whole number from 0 to 4294967295; \
                 jobs is given more than once",
            ),
        );
        check(&[], Err("give at least one KEY=VALUE pair"));
    }

    #[test]
    fn overrides_change_only_their_keys_and_unreadable_ones_are_ignored() {
        let overrides: BTreeMap<String, String> = [
            ("continuous", "5"),
            ("job-memory", "1Gi"),
            ("envvars", "10"),
            ("pods", "many"),
            ("nonsense", "1"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
        let quota = ToolQuota::default().with_overrides("mytool", &overrides);
        assert_eq!(
            quota,
            ToolQuota {
                continuous: 5,
                job_memory_bytes: 1 << 30,
                ..ToolQuota::default()
            }
        );
        let defaults: Vec<String> = QuotaKey::ALL
            .iter()
            .filter_map(|key| Some(key.format_value(ToolQuota::default().get(*key)?)))
            .collect();
        assert_eq!(defaults, ["10", "15", "50", "3", "4", "8Gi", "1", "4Gi"]);
    }
}
