//! A job's definition: what a client asks for ([`JobInput`], every field optional as on
//! the wire) and what is stored and run ([`JobSpec`], validated, defaults filled).
//!
//! Validation follows the original jobs-api: its messages where the contract gives them,
//! otherwise a sentence that names the rule. Two requests that resolve to the same
//! [`JobSpec`] are the same job, which is what makes `load` of a `dump` a no-op.

use serde::{Deserialize, Serialize};

use crate::quantity::{self, CoresDisplay, GibibytesDisplay};

/// Longest job name (the original's limit, from Kubernetes object names).
pub const MAX_JOB_NAME: usize = 52;
/// Default memory of a job.
pub const DEFAULT_MEMORY: &str = "512Mi";
/// Default cpu of a job.
pub const DEFAULT_CPU: &str = "500m";
/// The message of the original for a bad job name.
pub const INVALID_JOB_NAME: &str =
    "Invalid job name. See the documentation for the naming rules: https://w.wiki/6YL8";

/// A job as a client describes it: every field optional, `null` meaning "not set".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobInput {
    pub name: String,
    pub imagename: Option<String>,
    pub cmd: Option<String>,
    pub filelog: Option<bool>,
    pub filelog_stdout: Option<String>,
    pub filelog_stderr: Option<String>,
    pub memory: Option<String>,
    pub cpu: Option<String>,
    pub emails: Option<String>,
    pub retry: Option<i64>,
    pub continuous: Option<bool>,
    pub schedule: Option<String>,
    pub replicas: Option<i64>,
    pub port: Option<i64>,
    pub health_check: Option<HealthCheckInput>,
    pub mount: Option<String>,
    pub timeout: Option<i64>,
    /// Route the tool's web address to this job's port (`jobs run --publish`, the
    /// webservice); only continuous jobs with a port.
    pub publish: Option<bool>,
    /// The webservice type this job serves (set by the webservice API only).
    pub webservice: Option<String>,
}

/// A health check as a client describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthCheckInput {
    /// `script` or `http` (`health_check_type` is accepted for it too).
    pub kind: Option<String>,
    pub script: Option<String>,
    pub path: Option<String>,
}

/// Who gets mail about a job's runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Emails {
    None,
    All,
    Onfinish,
    Onfailure,
}

impl Emails {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Emails::None => "none",
            Emails::All => "all",
            Emails::Onfinish => "onfinish",
            Emails::Onfailure => "onfailure",
        }
    }
}

/// Whether the job sees the shared storage (its tool home).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mount {
    All,
    None,
}

impl Mount {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Mount::All => "all",
            Mount::None => "none",
        }
    }
}

/// A health check of a continuous job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum HealthCheck {
    /// A command whose success means healthy.
    Script { script: String },
    /// An HTTP GET on the job's port.
    Http { path: String },
}

/// What kind of job, with the settings that only that kind has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum JobKind {
    /// Runs once, now.
    OneOff,
    /// Runs on a cron schedule.
    Scheduled {
        /// As the user wrote it.
        schedule: String,
        /// The concrete expression the scheduler fires on.
        schedule_actual: String,
        /// Seconds a run may take before it is killed.
        timeout: Option<u64>,
    },
    /// Kept running.
    Continuous {
        replicas: u32,
        port: Option<u16>,
        health_check: Option<HealthCheck>,
        /// The tool's web address routes to this job's port; a tool has at most one
        /// published job. Absent in stored definitions from before it existed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        publish: bool,
    },
}

/// A validated job definition with every default filled: what is stored and run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    pub name: String,
    /// The image as the user typed it (`python3.11`, `bookworm`).
    pub image: String,
    pub cmd: String,
    pub kind: JobKind,
    pub filelog: bool,
    /// Where stdout goes with file logging (as given, or the default).
    pub filelog_stdout: Option<String>,
    /// Where stderr goes with file logging.
    pub filelog_stderr: Option<String>,
    /// As given (or the default), e.g. `512Mi`.
    pub memory: String,
    /// As given (or the default), e.g. `500m`.
    pub cpu: String,
    pub emails: Emails,
    pub retry: u8,
    pub mount: Mount,
    /// The webservice type, when this job is the tool's webservice (`python3.11`,
    /// `php8.2`, `generic`); absent for other jobs and in older stored definitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webservice: Option<String>,
}

impl JobSpec {
    /// Memory in bytes (validated at creation).
    pub fn memory_bytes(&self) -> u64 {
        quantity::parse_memory(&self.memory).unwrap_or(0)
    }

    /// Cpu in millicores (validated at creation).
    pub fn cpu_millis(&self) -> u64 {
        quantity::parse_cpu(&self.cpu).unwrap_or(0)
    }

    /// Whether the spec is a continuous job.
    pub fn is_continuous(&self) -> bool {
        matches!(self.kind, JobKind::Continuous { .. })
    }

    /// Whether the spec is a scheduled job.
    pub fn is_scheduled(&self) -> bool {
        matches!(self.kind, JobKind::Scheduled { .. })
    }

    /// Whether the tool's web address routes to this job.
    pub fn is_published(&self) -> bool {
        matches!(self.kind, JobKind::Continuous { publish: true, .. })
    }
}

/// Why a job was refused (400 on the wire).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidJob(pub String);

/// What validation needs to know about the platform.
pub struct ValidationContext<'a> {
    /// The tool the job belongs to.
    pub tool: &'a str,
    /// Checks an image name: `Ok(())` when it runs here, `Err(message)` otherwise
    /// (unknown or unavailable, with the valid names).
    pub check_image: &'a dyn Fn(&str) -> Result<(), String>,
    /// Turns a schedule into its `schedule_actual`, or the parse error's message.
    pub schedule_actual: &'a dyn Fn(&str, &str, &str) -> Result<String, String>,
    /// The largest memory a single job may ask for, in bytes.
    pub max_job_memory: u64,
    /// The largest cpu a single job may ask for, in millicores.
    pub max_job_cpu: u64,
}

/// Whether `name` is a valid job name.
pub fn validate_job_name(name: &str) -> Result<(), InvalidJob> {
    let labels_ok = !name.is_empty()
        && name.len() <= MAX_JOB_NAME
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-'
        });
    if labels_ok {
        Ok(())
    } else {
        Err(InvalidJob(INVALID_JOB_NAME.to_owned()))
    }
}

/// Whether an image name is a build-service image (`tool-x/tool-x:latest`).
pub fn is_buildservice_image(image: &str) -> bool {
    image.contains('/')
}

/// A log path inside the tool home written relative to it, as `dump` writes it, so that
/// `/data/project/<tool>/x.out`, `$TOOL_DATA_DIR/x.out` and `x.out` are the same job.
fn relative_to_home(path: &str, tool: &str) -> String {
    let home_prefix = format!("/data/project/{tool}/");
    path.strip_prefix(&home_prefix)
        .or_else(|| path.strip_prefix("$TOOL_DATA_DIR/"))
        .unwrap_or(path)
        .to_owned()
}

/// Validates a client's job and fills the defaults.
pub fn resolve(input: &JobInput, ctx: &ValidationContext<'_>) -> Result<JobSpec, InvalidJob> {
    let fail = |message: String| Err(InvalidJob(message));
    validate_job_name(&input.name)?;
    let image = match input.imagename.as_deref().map(str::trim) {
        Some(image) if !image.is_empty() => image.to_owned(),
        _ => {
            return fail(
                "An image is required: pass --image (see `toolforge jobs images`)".to_owned(),
            );
        }
    };
    (ctx.check_image)(&image).map_err(InvalidJob)?;
    let cmd = match input.cmd.as_deref() {
        Some(cmd) if !cmd.trim().is_empty() => cmd.to_owned(),
        _ => return fail("A command is required: pass --command".to_owned()),
    };
    let buildservice = is_buildservice_image(&image);

    let continuous = input.continuous.unwrap_or(false);
    let schedule = input.schedule.as_deref().filter(|s| !s.trim().is_empty());
    if continuous && schedule.is_some() {
        return fail(
            "Only one of 'continuous' and 'schedule' can be set at the same time".to_owned(),
        );
    }

    let retry = input.retry.unwrap_or(0);
    if !(0..=5).contains(&retry) {
        return fail(format!("retry must be between 0 and 5, got {retry}"));
    }
    let emails = match input.emails.as_deref().unwrap_or("none") {
        "none" => Emails::None,
        "all" => Emails::All,
        "onfinish" => Emails::Onfinish,
        "onfailure" => Emails::Onfailure,
        other => {
            return fail(format!(
                "emails must be one of none, all, onfinish, onfailure, got '{other}'"
            ));
        }
    };
    let mount = match input.mount.as_deref() {
        None if buildservice => Mount::None,
        None => Mount::All,
        Some("all") => Mount::All,
        Some("none") => Mount::None,
        Some(other) => return fail(format!("mount must be 'all' or 'none', got '{other}'")),
    };
    if mount == Mount::None && !buildservice {
        return fail("Mount type none is only supported for build service images".to_owned());
    }
    let filelog = input.filelog.unwrap_or(!buildservice);
    if filelog && mount != Mount::All {
        return fail("File logging is only available with --mount=all".to_owned());
    }
    let given_paths = input.filelog_stdout.is_some() || input.filelog_stderr.is_some();
    if given_paths && !filelog {
        return fail(
            "Specifying --filelog-stdout or --filelog-stderr requires --filelog".to_owned(),
        );
    }
    let log_path = |given: &Option<String>, suffix: &str| -> Result<Option<String>, InvalidJob> {
        if !filelog {
            return Ok(None);
        }
        match given.as_deref().map(str::trim) {
            Some("") => Err(InvalidJob("a file log path cannot be empty".to_owned())),
            Some(path) if path.contains('\0') || path.contains('\n') => Err(InvalidJob(
                "a file log path cannot contain NUL or newline characters".to_owned(),
            )),
            Some(path) => Ok(Some(relative_to_home(path, ctx.tool))),
            None => Ok(Some(format!(
                "/data/project/{}/{}.{suffix}",
                ctx.tool, input.name
            ))),
        }
    };
    let filelog_stdout = log_path(&input.filelog_stdout, "out")?;
    let filelog_stderr = log_path(&input.filelog_stderr, "err")?;

    let memory = input
        .memory
        .clone()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_MEMORY.to_owned());
    let memory_bytes = quantity::parse_memory(&memory).map_err(|err| InvalidJob(err.0))?;
    if memory_bytes > ctx.max_job_memory {
        return fail(format!(
            "Requested memory {memory} is over the per-job limit of {}",
            GibibytesDisplay(ctx.max_job_memory)
        ));
    }
    let cpu = input
        .cpu
        .clone()
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_CPU.to_owned());
    let cpu_millis = quantity::parse_cpu(&cpu).map_err(|err| InvalidJob(err.0))?;
    if cpu_millis > ctx.max_job_cpu {
        return fail(format!(
            "Requested cpu {cpu} is over the per-job limit of {}",
            CoresDisplay(ctx.max_job_cpu)
        ));
    }

    let port = match input.port {
        None | Some(0) => None,
        Some(port) if (1..=65535).contains(&port) => Some(port as u16),
        Some(port) => return fail(format!("port must be between 1 and 65535, got {port}")),
    };
    let replicas = match input.replicas {
        None | Some(0) => None,
        Some(replicas) if (1..=1000).contains(&replicas) => Some(replicas as u32),
        Some(replicas) => {
            return fail(format!(
                "replicas must be between 0 and 1000, got {replicas}"
            ));
        }
    };
    let timeout = match input.timeout {
        None | Some(0) => None,
        Some(timeout) if timeout > 0 => Some(timeout as u64),
        Some(timeout) => return fail(format!("timeout must be 0 or more seconds, got {timeout}")),
    };
    let health_check = match &input.health_check {
        None => None,
        Some(check) => Some(match check.kind.as_deref() {
            Some("script") => match check.script.as_deref() {
                Some(script) if !script.trim().is_empty() => HealthCheck::Script {
                    script: script.to_owned(),
                },
                _ => return fail("A script health check needs a script".to_owned()),
            },
            Some("http") => match check.path.as_deref() {
                Some(path) if path.starts_with('/') => HealthCheck::Http {
                    path: path.to_owned(),
                },
                _ => return fail("An HTTP health check needs a path starting with '/'".to_owned()),
            },
            other => {
                return fail(format!(
                    "health check type must be 'script' or 'http', got '{}'",
                    other.unwrap_or("")
                ));
            }
        }),
    };

    let publish = input.publish.unwrap_or(false);
    if publish && !continuous {
        return fail("--publish is only valid for continuous jobs".to_owned());
    }
    if publish && port.is_none() {
        return fail("--publish requires --port: the job must listen on a port".to_owned());
    }
    let kind = if let Some(schedule) = schedule {
        if port.is_some() {
            return fail("--port is only valid for continuous jobs".to_owned());
        }
        if replicas.is_some() {
            return fail("--replicas is only valid for continuous jobs".to_owned());
        }
        if health_check.is_some() {
            return fail("Health checks are only supported for continuous jobs.".to_owned());
        }
        let schedule_actual =
            (ctx.schedule_actual)(schedule, ctx.tool, &input.name).map_err(InvalidJob)?;
        JobKind::Scheduled {
            schedule: schedule.to_owned(),
            schedule_actual,
            timeout,
        }
    } else if continuous {
        if timeout.is_some() {
            return fail("--timeout is only valid for scheduled jobs".to_owned());
        }
        if matches!(health_check, Some(HealthCheck::Http { .. })) && port.is_none() {
            return fail("Port must be set for HTTP health checks".to_owned());
        }
        JobKind::Continuous {
            replicas: replicas.unwrap_or(1),
            port,
            health_check,
            publish,
        }
    } else {
        if port.is_some() {
            return fail("--port is only valid for continuous jobs".to_owned());
        }
        if replicas.is_some() {
            return fail("--replicas is only valid for continuous jobs".to_owned());
        }
        if health_check.is_some() {
            return fail("Health checks are only supported for continuous jobs.".to_owned());
        }
        if timeout.is_some() {
            return fail("--timeout is only valid for scheduled jobs".to_owned());
        }
        JobKind::OneOff
    };

    Ok(JobSpec {
        name: input.name.clone(),
        image,
        cmd,
        kind,
        filelog,
        filelog_stdout,
        filelog_stderr,
        memory,
        cpu,
        emails,
        retry: retry as u8,
        mount,
        webservice: input.webservice.clone(),
    })
}

#[cfg(test)]
mod tests;
