//! `run`'s options (also what `load` turns each YAML entry into), the client-side checks in
//! the official client's order, and the request body (api-contract.md §3.1.4, §4.2.2).

use serde_json::Value;

use crate::jobs::dict::Dict;

/// `toolforge jobs run NAME --command CMD --image IMAGE [options]`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct RunArgs {
    /// new job name
    pub name: String,
    /// full path of command to run in this job
    #[arg(long)]
    pub command: String,
    /// image shortname (check them with `images`)
    #[arg(long)]
    pub image: String,
    /// disable redirecting job output to files in the home directory
    #[arg(long, conflicts_with = "filelog")]
    pub no_filelog: bool,
    /// explicitly enable file logs on jobs using a build service created image
    #[arg(long)]
    pub filelog: bool,
    /// location to store stdout logs for this job
    #[arg(short = 'o', long, value_name = "FILELOG_STDOUT")]
    pub filelog_stdout: Option<String>,
    /// location to store stderr logs for this job
    #[arg(short = 'e', long, value_name = "FILELOG_STDERR")]
    pub filelog_stderr: Option<String>,
    /// specify the retry policy of failed jobs.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=5))]
    pub retry: u8,
    /// specify additional memory limit required for this job
    #[arg(long)]
    pub mem: Option<String>,
    /// specify additional CPU limit required for this job
    #[arg(long)]
    pub cpu: Option<String>,
    /// specify if the system should email notifications about this job. (default: 'none')
    #[arg(long, default_value = "none", value_parser = ["none", "all", "onfinish", "onfailure"])]
    pub emails: String,
    /// specify which shared storage (NFS) directories to mount to this job. (default: 'none' on build service images, 'all' otherwise)
    #[arg(long, value_parser = ["all", "none"])]
    pub mount: Option<String>,
    /// timeout in seconds for a scheduled job before it's stopped
    #[arg(long, allow_negative_numbers = true)]
    pub timeout: Option<i64>,
    /// run a job with a cron-like schedule (example '1 * * * *')
    #[arg(long, conflicts_with_all = ["continuous", "wait"])]
    pub schedule: Option<String>,
    /// run a continuous job
    #[arg(long, conflicts_with = "wait")]
    pub continuous: bool,
    /// wait for job one-off job to complete, optionally specify a value to override default timeout of 600s
    // Without a value, 600 seconds.
    #[arg(long, num_args = 0..=1, default_missing_value = "600", allow_negative_numbers = true)]
    pub wait: Option<i64>,
    /// specify a health check command to run on the job if any.
    #[arg(long, conflicts_with = "health_check_http")]
    pub health_check_script: Option<String>,
    /// specify a health check endpoint to query on the job if any.
    #[arg(long)]
    pub health_check_http: Option<String>,
    /// specify the port to expose for this job. only valid for continuous jobs
    #[arg(short = 'p', long, allow_negative_numbers = true)]
    pub port: Option<i64>,
    /// specify the number of job replicas to be used. only valid for continuous jobs
    #[arg(long, allow_negative_numbers = true)]
    pub replicas: Option<i64>,
    /// route the tool's web address (http://<tool>.<public domain>/) to this job's port.
    /// only valid for continuous jobs with a port; a tool publishes at most one job
    #[arg(long)]
    pub publish: bool,
}

/// `run` parsed on its own, as `load` parses each entry.
#[derive(Debug, clap::Parser)]
#[command(name = "toolforge jobs run", no_binary_name = true)]
pub struct RunCommandLine {
    #[command(flatten)]
    pub run: RunArgs,
}

/// A client-side check failed; the message is the official client's.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid(pub &'static str);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Invalid {}

/// Whether `image` is one built by the build service (`tool-x/tool-x:latest`).
pub fn is_buildservice_image(image: &str) -> bool {
    image.contains('/')
}

impl RunArgs {
    /// `--filelog` → true, `--no-filelog` → false, neither → unset.
    pub fn filelog_flag(&self) -> Option<bool> {
        match (self.filelog, self.no_filelog) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }

    /// `get_api_payload`: the checks of api-contract.md §4.2.2 in order, then the body
    /// with every key in the official order (`timeout` only when given).
    pub fn payload(&self) -> Result<Dict, Invalid> {
        let buildservice = is_buildservice_image(&self.image);
        let mount = self
            .mount
            .clone()
            .unwrap_or_else(|| if buildservice { "none" } else { "all" }.to_owned());
        let filelog = self.filelog_flag().unwrap_or(!buildservice);
        let given = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.is_empty());
        let non_zero = |value: Option<i64>| value.is_some_and(|v| v != 0);

        let health_check = if given(&self.health_check_script) {
            Some(serde_json::json!({"type": "script", "script": self.health_check_script}))
        } else if given(&self.health_check_http) {
            Some(serde_json::json!({"type": "http", "path": self.health_check_http}))
        } else {
            None
        };
        if health_check.is_some() && !self.continuous {
            return Err(Invalid(
                "Health checks are only supported for continuous jobs.",
            ));
        }
        if given(&self.health_check_http) && !non_zero(self.port) {
            return Err(Invalid(
                "--health-check-http requires --port to be set as well",
            ));
        }
        if self.continuous && given(&self.schedule) {
            return Err(Invalid(
                "Only one of 'continuous' and 'schedule' can be set at the same time",
            ));
        }
        if non_zero(self.port) && !self.continuous {
            return Err(Invalid("--port is only valid for continuous jobs"));
        }
        if non_zero(self.replicas) && !self.continuous {
            return Err(Invalid("--replicas is only valid for continuous jobs"));
        }
        if mount == "none" && filelog {
            return Err(Invalid("Specifying --filelog requires --mount=all"));
        }
        if (given(&self.filelog_stdout) || given(&self.filelog_stderr)) && !filelog {
            return Err(Invalid(
                "Specifying --filelog-stdout or --filelog-stderr requires --filelog",
            ));
        }
        if non_zero(self.timeout) && !given(&self.schedule) {
            return Err(Invalid("--timeout is only valid for scheduled jobs"));
        }
        if self.publish && !self.continuous {
            return Err(Invalid("--publish is only valid for continuous jobs"));
        }
        if self.publish && !non_zero(self.port) {
            return Err(Invalid("--publish requires --port to be set as well"));
        }

        let text = |value: &Option<String>| value.clone().map_or(Value::Null, Value::String);
        let int = |value: Option<i64>| value.map_or(Value::Null, Value::from);
        let mut body = Dict::default();
        body.set("name", self.name.clone());
        body.set("imagename", self.image.clone());
        body.set("cmd", self.command.clone());
        body.set("filelog", filelog);
        body.set("filelog_stdout", text(&self.filelog_stdout));
        body.set("filelog_stderr", text(&self.filelog_stderr));
        body.set("memory", text(&self.mem));
        body.set("cpu", text(&self.cpu));
        body.set("emails", self.emails.clone());
        body.set("retry", self.retry);
        body.set("continuous", self.continuous);
        body.set("schedule", text(&self.schedule));
        body.set("replicas", int(self.replicas));
        body.set("port", int(self.port));
        body.set("health_check", health_check.unwrap_or(Value::Null));
        body.set("mount", mount);
        if let Some(timeout) = self.timeout {
            body.set("timeout", timeout);
        }
        // An extension: sent only when asked for, so the body is otherwise the official
        // client's.
        if self.publish {
            body.set("publish", true);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests;
