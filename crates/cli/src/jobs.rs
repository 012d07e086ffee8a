//! `toolforge jobs …`: every command of the official `toolforge-jobs` 16.1.14 client, with
//! its requests, messages, tables and exit statuses (api-contract.md §3.1, §4.2).
//!
//! - Logging lines go to standard error as the official client's Python logging prints
//!   them, level names coloured even when standard error is not a terminal (as the
//!   transcripts show): `INFO: …`, `\x1b[1;33mWARNING\x1b[1;0m: …`,
//!   `\x1b[1;31mERROR\x1b[1;0m: …`.
//! - Every answer's info and warnings are shown first (§2.1), `--wait` polls included.
//! - Errors: refused requests and failed client-side checks exit 1; an unreachable or
//!   failing service, or an answer that cannot be shown, exits 2 with the report line;
//!   `--wait` exits 1 on a failed job and 2 on a timeout.
//! - `list` and `show` ask for our server's `status` object (`include_status=true`);
//!   `show` adds its notes (restarts, exit code) to the hints. `dump` does not ask for it,
//!   so it does not warn about an unexpected key.

mod dict;
mod display;
mod load;
mod run;
mod yaml_dump;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use api_client::client::{ApiClient, ClientOptions, Method, Reply, Service, ServiceClient};
use api_client::discovery::{Discovery, Overrides};
use api_client::env::Environment;
use api_types::envelope::Messages;
use clap::{Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use serde_json::Value;

use crate::Failure;
use crate::jobs::dict::Dict;
use crate::jobs::display::{HEADERS_LONG, HEADERS_SHORT};
pub use crate::jobs::run::RunArgs;
use crate::jobs::run::RunCommandLine;
use crate::pytext::py_str;

/// The config file name of the official jobs client (`/etc/toolforge/jobs-cli.yaml`).
const CLIENT_NAME: &str = "jobs-cli";

/// `WARNING` as the official client's logging prints it.
pub const WARNING: &str = "\x1b[1;33mWARNING\x1b[1;0m";
/// `ERROR` as the official client's logging prints it.
pub const ERROR: &str = "\x1b[1;31mERROR\x1b[1;0m";

/// How long `--wait` sleeps between two looks at the job.
const WAIT_SLEEP: Duration = Duration::from_secs(5);

/// `toolforge jobs` and its command.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(about = "Toolforge Jobs Framework, command line interface")]
pub struct JobsArgs {
    #[command(subcommand)]
    pub command: JobsCommand,
}

/// The commands of `toolforge jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum JobsCommand {
    /// list information on available container image types for Toolforge jobs
    Images,
    /// run a new job of your own in Toolforge
    Run(Box<RunArgs>),
    /// show details of a job of your own in Toolforge
    Show {
        /// job name
        name: String,
    },
    /// show output from a running job
    Logs {
        /// job name
        name: String,
        /// stream updates
        #[arg(short, long)]
        follow: bool,
        /// number of recent log lines to display
        #[arg(short = 'l', long, allow_negative_numbers = true)]
        last: Option<i64>,
    },
    /// list all running jobs of your own in Toolforge
    List {
        /// specify output format (defaults to normal)
        #[arg(short, long, value_enum, default_value_t = ListOutput::Normal)]
        output: ListOutput,
        /// Deprecated: `--output long`.
        #[arg(short = 'l', long, hide = true)]
        long: bool,
    },
    /// delete a running job of your own in Toolforge
    Delete {
        /// job name
        name: String,
    },
    /// delete all running jobs of your own in Toolforge
    Flush,
    /// flush all jobs and load a YAML file with job definitions and run them
    Load {
        /// path to YAML file to load
        file: PathBuf,
        /// load a single job only
        #[arg(long)]
        job: Option<String>,
    },
    /// restarts a running job
    Restart {
        /// job name
        name: String,
    },
    /// display quota information
    Quota,
    /// dump all defined jobs in YAML format, suitable for a later `load` operation
    Dump {
        /// write YAML dump to given file
        #[arg(short = 'f', long)]
        to_file: Option<PathBuf>,
    },
}

/// `list -o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListOutput {
    /// Name, type and status.
    Normal,
    /// Every field.
    Long,
    /// One name per line.
    Name,
}

/// Runs `command` for the tool discovery finds.
pub async fn jobs(
    command: &JobsCommand,
    env: &Environment,
    overrides: &Overrides,
) -> anyhow::Result<ExitCode> {
    let discovery = Discovery::discover(env, CLIENT_NAME, overrides)?;
    let mut options = ClientOptions::for_service(&discovery.config, Service::Jobs)?;
    if matches!(command, JobsCommand::Logs { .. }) {
        // The official client reads logs without a timeout (api-contract.md §1.8).
        options = options.without_read_timeout();
    }
    let api = ApiClient::new(&discovery, &options)
        .context("while setting up TLS and the HTTP client")?
        .service(Service::Jobs);
    let mut out = Output {
        stdout: std::io::stdout(),
        stderr: std::io::stderr(),
    };
    let out = &mut out;
    match command {
        JobsCommand::Images => images(&api, out).await,
        JobsCommand::Run(args) => {
            let payload = args
                .payload()
                .map_err(|err| Failure::User(err.to_string()))?;
            call::<Value>(&api, Method::POST, "/jobs/", Some(&payload), out)
                .await
                .with_context(|| format!("while creating job {}", args.name))?;
            match args.wait.filter(|seconds| *seconds != 0) {
                Some(seconds) => wait_for_job(&api, &args.name, seconds, out).await,
                None => Ok(ExitCode::SUCCESS),
            }
        }
        JobsCommand::Show { name } => {
            let job = get_job(&api, name, out).await?;
            show(job, out)?;
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Logs { name, follow, last } => logs(&api, name, *follow, *last, out).await,
        JobsCommand::List { output, long } => {
            let mut output = *output;
            if *long {
                out.warning("the `--long` flag is deprecated, use `--output long` instead")?;
                output = ListOutput::Long;
            }
            list(&api, output, out).await
        }
        JobsCommand::Delete { name } => {
            let path = format!("/jobs/{name}");
            call::<Value>(&api, Method::DELETE, &path, None, out)
                .await
                .with_context(|| format!("while deleting job {name}"))?;
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Flush => {
            call::<Value>(&api, Method::DELETE, "/jobs/", None, out)
                .await
                .context("while deleting every job")?;
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Load { file, job } => load(&api, file, job.as_deref(), out).await,
        JobsCommand::Restart { name } => {
            let path = format!("/jobs/{name}/restart");
            call::<Value>(&api, Method::POST, &path, None, out)
                .await
                .with_context(|| format!("while restarting job {name}"))?;
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Quota => quota(&api, out).await,
        JobsCommand::Dump { to_file } => dump(&api, &discovery.tool, to_file.as_deref(), out).await,
    }
}

/// Where the commands print: standard output, and standard error for the logging lines.
struct Output<O, E> {
    stdout: O,
    stderr: E,
}

impl<O: Write, E: Write> Output<O, E> {
    fn info(&mut self, message: &str) -> std::io::Result<()> {
        self.stdout.flush()?;
        writeln!(self.stderr, "INFO: {message}")
    }

    fn warning(&mut self, message: &str) -> std::io::Result<()> {
        self.stdout.flush()?;
        writeln!(self.stderr, "{WARNING}: {message}")
    }

    fn error(&mut self, message: &str) -> std::io::Result<()> {
        self.stdout.flush()?;
        writeln!(self.stderr, "{ERROR}: {message}")
    }

    fn println(&mut self, text: &str) -> std::io::Result<()> {
        writeln!(self.stdout, "{text}")?;
        self.stdout.flush()
    }

    fn messages(&mut self, messages: &Messages) -> std::io::Result<()> {
        crate::messages::show(
            &messages.info,
            &messages.warning,
            &mut self.stdout,
            &mut self.stderr,
        )?;
        self.stdout.flush()
    }
}

/// One request; its info and warnings are shown before anything else.
async fn call<T: serde::de::DeserializeOwned>(
    api: &ServiceClient,
    method: Method,
    path: &str,
    body: Option<&Dict>,
    out: &mut Output<impl Write, impl Write>,
) -> anyhow::Result<T> {
    let Reply { body, messages } = api.request::<T, Dict>(method, path, body).await?;
    out.messages(&messages)?;
    Ok(body)
}

#[derive(Deserialize)]
struct JobReply {
    job: Dict,
}

#[derive(Deserialize)]
struct JobsReply {
    jobs: Vec<Dict>,
}

#[derive(Deserialize)]
struct ImagesReply {
    images: Vec<Dict>,
}

#[derive(Deserialize)]
struct QuotaReply {
    quota: Quota,
}

#[derive(Deserialize)]
struct Quota {
    categories: Vec<Value>,
}

/// `GET /jobs/{name}` with our server's status.
async fn get_job(
    api: &ServiceClient,
    name: &str,
    out: &mut Output<impl Write, impl Write>,
) -> anyhow::Result<Dict> {
    let path = format!("/jobs/{name}?include_status=true");
    let reply: JobReply = call(api, Method::GET, &path, None, out)
        .await
        .with_context(|| format!("while getting job {name}"))?;
    Ok(reply.job)
}

fn show(mut job: Dict, out: &mut Output<impl Write, impl Write>) -> anyhow::Result<()> {
    display::prepare_for_output(&mut job, HEADERS_LONG, false).map_err(|err| {
        Failure::internal(
            "An internal error occurred while executing this command.",
            err,
        )
    })?;
    out.println(&display::show_table(&job))?;
    Ok(())
}

async fn images(
    api: &ServiceClient,
    out: &mut Output<impl Write, impl Write>,
) -> anyhow::Result<ExitCode> {
    let reply: ImagesReply = call(api, Method::GET, "/images/", None, out)
        .await
        .context("while listing the images")?;
    out.println(&display::images_table(&reply.images))?;
    Ok(ExitCode::SUCCESS)
}

async fn list(
    api: &ServiceClient,
    output: ListOutput,
    out: &mut Output<impl Write, impl Write>,
) -> anyhow::Result<ExitCode> {
    let reply: JobsReply = call(api, Method::GET, "/jobs/?include_status=true", None, out)
        .await
        .context("while listing the jobs")?;
    let mut jobs = reply.jobs;
    if jobs.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let headers = match output {
        ListOutput::Name => {
            for job in &jobs {
                let name = job
                    .get("name")
                    .ok_or_else(|| Failure::internal_message("a job without a name"))?;
                out.println(&py_str(name))?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        ListOutput::Normal => HEADERS_SHORT,
        ListOutput::Long => HEADERS_LONG,
    };
    for job in &mut jobs {
        display::prepare_for_output(job, headers, true)
            .map_err(|err| Failure::internal("ToolforgeError: Failed to format job table", err))?;
    }
    out.println(&display::list_table(&jobs, headers))?;
    Ok(ExitCode::SUCCESS)
}

/// `--wait`: every 5 seconds while less than `seconds` have passed, look at the job.
async fn wait_for_job(
    api: &ServiceClient,
    name: &str,
    seconds: i64,
    out: &mut Output<impl Write, impl Write>,
) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds as f64 {
        tokio::time::sleep(WAIT_SLEEP).await;
        let job = match get_job(api, name, out).await {
            Ok(job) => job,
            Err(err) if is_refused(&err) => {
                out.info(&format!("job '{name}' completed (and already deleted)"))?;
                return Ok(ExitCode::SUCCESS);
            }
            Err(err) => return Err(err),
        };
        match job.get("status_short").and_then(Value::as_str) {
            Some("Completed") => {
                out.info(&format!("job '{name}' completed"))?;
                return Ok(ExitCode::SUCCESS);
            }
            Some("Failed") => {
                out.error(&format!("job '{name}' failed:"))?;
                show(get_job(api, name, out).await?, out)?;
                return Ok(ExitCode::from(1));
            }
            _ => {}
        }
    }
    out.error(&format!(
        "timed out {seconds} seconds waiting for job '{name}' to complete:"
    ))?;
    show(get_job(api, name, out).await?, out)?;
    Ok(ExitCode::from(2))
}

/// Whether the API refused the request (4xx): for `--wait`, the job is gone.
fn is_refused(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<api_client::Error>()
            .is_some_and(|err| err.kind() == api_client::ErrorKind::User)
    })
}

#[derive(Deserialize)]
struct LogLine {
    datetime: String,
    pod: String,
    container: String,
    message: String,
}

/// `logs`: each line printed as it arrives; Ctrl-C ends quietly.
async fn logs(
    api: &ServiceClient,
    name: &str,
    follow: bool,
    last: Option<i64>,
    out: &mut Output<impl Write, impl Write>,
) -> anyhow::Result<ExitCode> {
    let mut path = format!("/jobs/{name}/logs?follow={follow}");
    if let Some(last) = last.filter(|last| *last != 0) {
        path.push_str(&format!("&lines={last}"));
    }
    let stream = async {
        let mut lines = api
            .get_lines(&path)
            .await
            .with_context(|| format!("while reading the logs of job {name}"))?;
        while let Some(line) = lines.next_line().await? {
            let line: LogLine = serde_json::from_str(&line).map_err(|err| {
                Failure::internal(
                    "An internal error occurred while executing this command.",
                    err,
                )
            })?;
            out.println(&format!(
                "{} [{}] [{}] {}",
                line.datetime, line.pod, line.container, line.message
            ))?;
        }
        anyhow::Ok(())
    };
    tokio::select! {
        res = stream => res?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::SUCCESS)
}

async fn quota(
    api: &ServiceClient,
    out: &mut Output<impl Write, impl Write>,
) -> anyhow::Result<ExitCode> {
    let reply: QuotaReply = call(api, Method::GET, "/quotas/", None, out)
        .await
        .context("while getting the quota")?;
    let tables = display::quota_tables(&reply.quota.categories).map_err(|err| {
        Failure::internal(
            "An internal error occurred while executing this command.",
            err,
        )
    })?;
    out.println(&tables)?;
    Ok(ExitCode::SUCCESS)
}

/// `load FILE [--job NAME]`: each entry parsed as `run` options, checked, then sent with
/// PATCH (create, update or leave alone); `wait` honoured.
async fn load(
    api: &ServiceClient,
    file: &Path,
    only: Option<&str>,
    out: &mut Output<impl Write, impl Write>,
) -> anyhow::Result<ExitCode> {
    let unparsable = || Failure::User(format!("Unable to parse yaml file '{}'", file.display()));
    let text = std::fs::read_to_string(file).map_err(|_| unparsable())?;
    let entries: Vec<serde_norway::Value> = match serde_norway::from_str(&text) {
        Ok(serde_norway::Value::Sequence(entries)) => entries,
        _ => return Err(unparsable().into()),
    };
    for entry in &entries {
        let serde_norway::Value::Mapping(entry) = entry else {
            return Err(Failure::User(format!(
                "Unable to parse yaml file '{}': every entry must be a mapping",
                file.display()
            ))
            .into());
        };
        let converted = load::entry_to_run_args(entry);
        for warning in &converted.warnings {
            out.warning(warning)?;
        }
        let args = match RunCommandLine::try_parse_from(&converted.args) {
            Ok(parsed) => parsed.run,
            Err(err) => {
                out.stdout.flush()?;
                err.print()?;
                return Ok(ExitCode::from(2));
            }
        };
        if only.is_some_and(|only| !only.is_empty() && only != args.name) {
            continue;
        }
        out.info(&format!("loading job '{}'...", args.name))?;
        let payload = args
            .payload()
            .map_err(|err| Failure::User(err.to_string()))?;
        call::<Value>(api, Method::PATCH, "/jobs/", Some(&payload), out)
            .await
            .with_context(|| format!("while loading job {}", args.name))?;
        if let Some(seconds) = args.wait.filter(|seconds| *seconds != 0) {
            let code = wait_for_job(api, &args.name, seconds, out).await?;
            if code != ExitCode::SUCCESS {
                return Ok(code);
            }
        }
    }
    out.info(&format!("{} job(s) loaded successfully", entries.len()))?;
    Ok(ExitCode::SUCCESS)
}

/// `dump [-f FILE]`: the jobs as a `load` file.
async fn dump(
    api: &ServiceClient,
    tool: &str,
    to_file: Option<&Path>,
    out: &mut Output<impl Write, impl Write>,
) -> anyhow::Result<ExitCode> {
    let reply: JobsReply = call(api, Method::GET, "/jobs/", None, out)
        .await
        .context("while listing the jobs")?;
    if reply.jobs.is_empty() {
        let file_note = to_file
            .map(|file| format!(", file {} will not be created", file.display()))
            .unwrap_or_default();
        out.warning(&format!("no jobs defined{file_note}"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut entries = Vec::with_capacity(reply.jobs.len());
    for job in reply.jobs {
        let (entry, warnings) = load::job_to_entry(job, tool).map_err(|err| {
            Failure::internal(
                "An internal error occurred while executing this command.",
                err,
            )
        })?;
        for warning in &warnings {
            out.warning(warning)?;
        }
        entries.push(entry);
    }
    let text = yaml_dump::dump(&entries);
    match to_file {
        Some(file) => std::fs::write(file, text)
            .with_context(|| format!("while writing {}", file.display()))?,
        None => out.println(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}
