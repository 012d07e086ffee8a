//! `toolforge webservice [TYPE] start|stop|restart|status|logs|shell [-- ARGS]`: the
//! original `webservice` script's options, messages, streams and exit statuses, on the
//! webservice API of our jobs service (`api_client::webservice`).
//!
//! - Settings come from the command line, then `--template FILE` (default
//!   `$HOME/service.template`), then `$HOME/service.manifest`, then defaults; a template
//!   with unknown keys or bad values is refused (exit 1) before anything is asked.
//! - As in the original, messages go to standard error except the answers of `status` and
//!   "Your webservice is not running", which go to standard output; `start`, `stop` and
//!   `restart` print their prompt and a dot per second of waiting on standard output.
//! - `start` writes `web: <type>` (and the backend, resources, extra arguments) to
//!   `$HOME/service.manifest`; `stop` removes them.
//! - `restart` of a running webservice applies the settings as the original does: the
//!   given ones (command line, template, manifest), the running ones otherwise, in a
//!   rolling restart onto the new definition (`POST /webservice/restart` with a body).
//! - `shell -- CMD` runs CMD once as a one-off job in the webservice's image, prints its
//!   output as it comes, and exits with CMD's exit status; there is no interactive shell.
//! - Refused requests print `ERROR: <the server's message>` (exit 1), as every command of
//!   our CLI.

mod settings;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use api_client::client::{ApiClient, ClientOptions, Method, Service, ServiceClient};
use api_client::discovery::{Discovery, Overrides};
use api_client::env::Environment;
use api_client::webservice::WebserviceApi;
use api_types::jobs::{WebserviceRequest, WebserviceResponse, WebserviceTypeBody};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Failure;
pub use crate::webservice::settings::BACKENDS;
use crate::webservice::settings::{Manifest, Started, Template, kube_quant, replicas};

/// The config file name of the jobs client: the webservice API is part of the jobs API.
const CLIENT_NAME: &str = "jobs-cli";

/// The backend when none is given (the original's `BACKEND_DEFAULT`).
const BACKEND_DEFAULT: &str = "kubernetes";

/// The type when none is given (the original's `KUBERNETES_DEFAULT_WSTYPE`).
const DEFAULT_WSTYPE: &str = "php7.4";

/// The image of `shell` when neither a type nor a webservice names one.
const SHELL_DEFAULT_IMAGE: &str = "bookworm";

/// How long `start` waits for the webservice to serve, one dot a second (the original's
/// `wait_for` timeout).
const START_WAIT_SECONDS: u32 = 15;

/// How many of the lines `shell` printed last it keeps, to find where the stored output
/// continues after them.
const SHELL_RECENT_LINES: usize = 32;

/// The actions, in the original's order.
pub const ACTIONS: [&str; 6] = ["start", "stop", "status", "restart", "shell", "logs"];

/// `toolforge webservice`, as clap parses it.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(
    about = "Manage the tool's webservice",
    override_usage = "toolforge webservice [OPTIONS] [TYPE] ACTION [-- EXTRA_ARGS...]",
    after_help = "ACTION is one of: start, stop, status, restart, shell, logs.\n\
        TYPE is generic (run the command given after --, listening on $PORT), an image with a \
        webservice variant (python3.11 serves the WSGI `app` of ~/www/python/src/app.py, \
        php8.2 ~/public_html, node20 `npm start` in ~/www/js) or buildservice.\n\n\
        Online documentation: https://wikitech.wikimedia.org/wiki/Help:Toolforge/Web"
)]
pub struct WebserviceArgs {
    /// Which cluster backend to use run the webservice
    #[arg(long, value_parser = BACKENDS)]
    pub backend: Option<String>,
    /// Set higher Kubernetes memory limit
    #[arg(short = 'm', long = "mem", value_name = "MEM", value_parser = kube_quant)]
    pub memory: Option<String>,
    /// Set a higher Kubernetes cpu limit
    #[arg(short, long, value_parser = kube_quant)]
    pub cpu: Option<String>,
    /// Set the number of pod replicas to use
    #[arg(short, long, value_name = "N", value_parser = replicas, allow_negative_numbers = true)]
    pub replicas: Option<u32>,
    /// Image to use when webservice type is buildservice e.g. tool-mytool/tool-mytool:latest
    #[arg(long, value_name = "IMAGE")]
    pub buildservice_image: Option<String>,
    /// Mount the tool's home and the shared storage in the webservice (default all)
    #[arg(long, value_parser = ["all", "none"])]
    pub mount: Option<String>,
    /// service.template to use when starting a webservice (default $HOME/service.template)
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// Accepted for compatibility; it changes nothing.
    #[arg(long, hide = true)]
    pub canonical: bool,
    /// logs: stream new lines as they come
    #[arg(short, long)]
    pub follow: bool,
    /// logs: only the last N lines
    #[arg(short = 'l', long, value_name = "N")]
    pub last: Option<u64>,
    /// [TYPE] ACTION [EXTRA_ARGS...]
    #[arg(value_name = "TYPE|ACTION", required = true)]
    pub words: Vec<String>,
    /// Extra arguments for the type (generic: the command) or shell's command
    #[arg(last = true, value_name = "EXTRA_ARGS")]
    pub extra: Vec<String>,
}

/// An action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `start`.
    Start,
    /// `stop`.
    Stop,
    /// `status`.
    Status,
    /// `restart`.
    Restart,
    /// `shell`.
    Shell,
    /// `logs`.
    Logs,
}

impl Action {
    fn parse(word: &str) -> Option<Action> {
        Some(match word {
            "start" => Action::Start,
            "stop" => Action::Stop,
            "status" => Action::Status,
            "restart" => Action::Restart,
            "shell" => Action::Shell,
            "logs" => Action::Logs,
            _ => return None,
        })
    }
}

/// A validated `toolforge webservice` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebserviceCommand {
    /// The options.
    pub args: WebserviceArgs,
    /// TYPE, when given.
    pub wstype: Option<String>,
    /// ACTION.
    pub action: Action,
    /// The words after ACTION, then those after `--`.
    pub extra_args: Vec<String>,
}

impl WebserviceCommand {
    /// Splits `[TYPE] ACTION [ARGS…]`; `Err` is the usage error (exit 2).
    pub fn from_args(args: WebserviceArgs) -> Result<WebserviceCommand, String> {
        let words = &args.words;
        let (wstype, action, rest) = match words.as_slice() {
            [first, rest @ ..] if Action::parse(first).is_some() => {
                (None, Action::parse(first), rest)
            }
            [first, second, rest @ ..] => (Some(first.clone()), Action::parse(second), rest),
            [only] => (Some(only.clone()), None, &[][..]),
            [] => (None, None, &[][..]),
        };
        let Some(action) = action else {
            let given = match words.as_slice() {
                [_, second, ..] => second.as_str(),
                [first] => first.as_str(),
                [] => "",
            };
            let message = if words.len() < 2 {
                "the following arguments are required: ACTION".to_owned()
            } else {
                format!(
                    "argument ACTION: invalid choice: '{given}' (choose from {})",
                    ACTIONS
                        .iter()
                        .map(|action| format!("'{action}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(message);
        };
        let mut extra_args: Vec<String> = rest.to_vec();
        extra_args.extend(args.extra.iter().cloned());
        Ok(WebserviceCommand {
            args,
            wstype,
            action,
            extra_args,
        })
    }
}

/// Everything a command uses once the command line, the template and the manifest are
/// combined.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    backend: Option<String>,
    wstype: String,
    /// Whether the type was given (command line or template), not defaulted.
    wstype_given: bool,
    cpu: Option<String>,
    memory: Option<String>,
    replicas: u32,
    /// Whether the replicas were given (command line, template or manifest), not defaulted.
    replicas_given: bool,
    extra_args: Vec<String>,
    buildservice_image: Option<String>,
    mount: Option<String>,
}

fn combine(command: &WebserviceCommand, template: &Template, manifest: &Manifest) -> Settings {
    let args = &command.args;
    let given_type = command.wstype.clone().or_else(|| template.wstype.clone());
    let extra_args = if command.extra_args.is_empty() {
        manifest
            .extra_args()
            .or_else(|| template.extra_args.clone())
            .unwrap_or_default()
    } else {
        command.extra_args.clone()
    };
    let wstype = given_type
        .clone()
        .or_else(|| manifest.get("web"))
        .unwrap_or_else(|| DEFAULT_WSTYPE.to_owned());
    let buildservice_image = args
        .buildservice_image
        .clone()
        .or_else(|| template.buildservice_image.clone())
        .or_else(|| {
            (wstype == "buildservice")
                .then(|| manifest.get("buildservice-image"))
                .flatten()
        });
    let replicas_given = args
        .replicas
        .or(template.replicas)
        .or_else(|| manifest.replicas());
    Settings {
        backend: args
            .backend
            .clone()
            .or_else(|| template.backend.clone())
            .or_else(|| manifest.get("backend")),
        wstype,
        wstype_given: given_type.is_some(),
        cpu: args
            .cpu
            .clone()
            .or_else(|| template.cpu.clone())
            .or_else(|| manifest.get("cpu")),
        memory: args
            .memory
            .clone()
            .or_else(|| template.mem.clone())
            .or_else(|| manifest.get("memory")),
        replicas: replicas_given.unwrap_or(1),
        replicas_given: replicas_given.is_some(),
        extra_args,
        buildservice_image,
        mount: args.mount.clone().or_else(|| template.mount.clone()),
    }
}

/// `format_wstypes_block` of the original: the names sorted, `(DEPRECATED)` marked, joined
/// with `\n  * ` (so the first has no bullet, as the original prints it).
pub fn types_block(types: &[WebserviceTypeBody]) -> String {
    let mut names: Vec<String> = types
        .iter()
        .map(|wstype| {
            if wstype.deprecated {
                format!("{} (DEPRECATED)", wstype.name)
            } else {
                wstype.name.clone()
            }
        })
        .collect();
    names.sort();
    names.join("\n  * ")
}

/// Standard output and standard error.
struct Out {
    stdout: std::io::Stdout,
    stderr: std::io::Stderr,
}

impl Out {
    /// A line on standard error (the original's `print`).
    fn err(&mut self, text: &str) -> std::io::Result<()> {
        self.stdout.flush()?;
        writeln!(self.stderr, "{text}")
    }

    /// A line on standard output.
    fn out(&mut self, text: &str) -> std::io::Result<()> {
        writeln!(self.stdout, "{text}")?;
        self.stdout.flush()
    }

    /// Text on standard output without a newline (the prompt and dots of `wait_for`).
    fn partial(&mut self, text: &str) -> std::io::Result<()> {
        write!(self.stdout, "{text}")?;
        self.stdout.flush()
    }
}

/// Runs `command` for the tool discovery finds.
pub async fn webservice(
    command: &WebserviceCommand,
    env: &Environment,
    overrides: &Overrides,
) -> anyhow::Result<ExitCode> {
    let mut out = Out {
        stdout: std::io::stdout(),
        stderr: std::io::stderr(),
    };
    let home = env
        .home()
        .map(std::path::Path::to_path_buf)
        .ok_or_else(|| {
            Failure::User(
                "HOME is not set, so service.template and service.manifest cannot be found"
                    .to_owned(),
            )
        })?;

    let template_path = command
        .args
        .template
        .clone()
        .map(|path| env.expand_user(&path));
    let template = match &template_path {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some((path.clone(), text)),
            Err(err) => {
                out.err(&format!(
                    "ERROR: argument --template: can't open '{}': {err}",
                    path.display()
                ))?;
                return Ok(ExitCode::from(2));
            }
        },
        None => {
            let path = home.join("service.template");
            std::fs::read_to_string(&path).ok().map(|text| (path, text))
        }
    };
    let template = match template {
        Some((path, text)) => match Template::parse(&path, &text) {
            Ok(template) => template,
            Err(err) => {
                out.err(&err.0)?;
                return Ok(ExitCode::from(1));
            }
        },
        None => Template::default(),
    };
    let mut manifest = Manifest::load(&home).map_err(Failure::User)?;
    let settings = combine(command, &template, &manifest);

    let backend = match &settings.backend {
        Some(backend) => backend.clone(),
        None => {
            out.err("WARNING: No explict backend provided.")?;
            out.err(&format!("  Using default of '{BACKEND_DEFAULT}'"))?;
            out.err(
                "  For help refer to <https://wikitech.wikimedia.org/wiki/Help:Toolforge/Web>",
            )?;
            BACKEND_DEFAULT.to_owned()
        }
    };
    if command.action != Action::Shell
        && let Some(recorded) = manifest.get("backend")
        && recorded != backend
    {
        let file = manifest.path().display().to_string();
        out.err(&format!(
            "Backend '{recorded}' from {file} does not match '{backend}'"
        ))?;
        out.err("  Try stopping your current webservice:")?;
        out.err("    toolforge webservice stop")?;
        out.err("  Then try starting it again:")?;
        out.err(&format!(
            "    {}",
            std::env::args().collect::<Vec<_>>().join(" ")
        ))?;
        out.err("  If you have already tried that and it did not help, remove the state file before retrying:")?;
        out.err(&format!("    rm {file}"))?;
        return Ok(ExitCode::from(1));
    }
    if backend == "gridengine" {
        out.err("The grid engine backend is no longer available: Toolforge's grid engine was shut down.")?;
        out.err("Please run again with --backend=kubernetes (the default), or without --backend")?;
        return Ok(ExitCode::from(1));
    }

    let discovery = Discovery::discover(env, CLIENT_NAME, overrides)?;
    let mut options = ClientOptions::for_service(&discovery.config, Service::Jobs)?;
    if matches!(command.action, Action::Logs | Action::Shell) {
        // Followed logs and a shell command's output may be quiet for long.
        options = options.without_read_timeout();
    }
    let client =
        ApiClient::new(&discovery, &options).context("while setting up TLS and the HTTP client")?;
    let jobs = client.service(Service::Jobs);
    let api = WebserviceApi::new(&jobs);

    let types = api
        .types()
        .await
        .context("while listing the webservice types")?
        .body
        .types;
    let Some(wstype) = types.iter().find(|wstype| wstype.name == settings.wstype) else {
        out.err("type must be one of:")?;
        out.err(&types_block(&types))?;
        return Ok(ExitCode::from(1));
    };
    match (&settings.buildservice_image, wstype.name == "buildservice") {
        (None, true) => {
            out.err(
                "--buildservice-image must be provided when webservice type is 'buildservice'.",
            )?;
            out.err("review the arguments passed and try again")?;
            return Ok(ExitCode::from(1));
        }
        (Some(_), false) => {
            out.err(
                "--buildservice-image must not be provided when webservice type is  not 'buildservice'",
            )?;
            out.err("review the arguments passed and try again")?;
            return Ok(ExitCode::from(1));
        }
        _ => {}
    }
    if wstype.deprecated {
        out.err(&format!(
            "DEPRECATED: '{}' type is deprecated.",
            wstype.name
        ))?;
        out.err("  See https://wikitech.wikimedia.org/wiki/Help:Toolforge/Kubernetes")?;
        out.err("  for currently supported types.")?;
    }
    manifest.set("backend", serde_norway::Value::String(backend.clone()));

    let current = api
        .show()
        .await
        .context("while getting the webservice")?
        .body;
    match command.action {
        Action::Start => {
            if current.webservice.is_some() {
                out.err("Your job is already running")?;
                return Ok(ExitCode::from(1));
            }
            start(
                &api,
                &settings,
                &mut manifest,
                "Starting webservice",
                &mut out,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Stop => {
            if current.webservice.is_none() {
                out.out("Your webservice is not running")?;
            } else {
                out.partial("Stopping webservice")?;
                api.stop().await.context("while stopping the webservice")?;
                out.partial("\n")?;
            }
            if manifest.record_stop() {
                manifest.save(time::OffsetDateTime::now_utc())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Restart => {
            if current.webservice.is_none() {
                start(
                    &api,
                    &settings,
                    &mut manifest,
                    "Your job is not running, starting",
                    &mut out,
                )
                .await?;
                return Ok(ExitCode::SUCCESS);
            }
            let request = restart_request(&settings, manifest.get("web").is_some(), &current);
            let restarted = restart(&api, &request, &mut out).await?;
            let applied = restarted.webservice.as_ref();
            manifest.record_start(&Started {
                wstype: applied.map_or(&request.kind, |webservice| &webservice.kind),
                buildservice_image: settings.buildservice_image.as_deref(),
                replicas: applied.map_or(settings.replicas, |webservice| webservice.replicas),
                cpu: settings.cpu.as_deref(),
                memory: settings.memory.as_deref(),
                extra_args: &settings.extra_args,
            });
            manifest.save(time::OffsetDateTime::now_utc())?;
            let serving = restarted
                .webservice
                .as_ref()
                .is_some_and(|webservice| webservice.serving_replicas > 0);
            if !serving {
                out.err("Your webservice is taking quite while to restart. If it isn't up shortly, run a 'webservice stop' and the start command used to run this webservice to begin with.")?;
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Status => {
            match &current.webservice {
                Some(webservice) => {
                    out.out(&format!(
                        "Your webservice of type {} is running on backend {backend}",
                        webservice.kind
                    ))?;
                    out.out(&format!("URL: {}", current.url))?;
                }
                None => out.out("Your webservice is not running")?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Logs => {
            let Some(webservice) = &current.webservice else {
                out.out("Your webservice is not running")?;
                return Ok(ExitCode::from(1));
            };
            logs(
                &jobs,
                &webservice.job,
                command.args.follow,
                command.args.last,
                &mut out,
            )
            .await
        }
        Action::Shell => {
            if command.extra_args.is_empty() {
                out.err("Interactive shells are not available on this platform: `toolforge webservice shell` runs one command in the webservice's image and prints its output.")?;
                out.err("Give the command after --, for example:")?;
                out.err("    toolforge webservice shell -- ls -l")?;
                out.err("For longer work, use `toolforge jobs run`.")?;
                return Ok(ExitCode::from(1));
            }
            let image = shell_image(&settings, &current, &types);
            shell(
                &jobs,
                &image,
                &command.extra_args.join(" "),
                &settings,
                &mut out,
            )
            .await
        }
    }
}

/// `POST /webservice`, then the original's `wait_for` until a replica serves; records the
/// start in the manifest.
async fn start(
    api: &WebserviceApi<'_>,
    settings: &Settings,
    manifest: &mut Manifest,
    prompt: &str,
    out: &mut Out,
) -> anyhow::Result<()> {
    let request = WebserviceRequest {
        kind: settings.wstype.clone(),
        extra_args: (!settings.extra_args.is_empty()).then(|| settings.extra_args.join(" ")),
        image: None,
        cpu: settings.cpu.clone(),
        memory: settings.memory.clone(),
        replicas: Some(i64::from(settings.replicas)),
        mount: settings.mount.clone(),
        buildservice_image: settings.buildservice_image.clone(),
    };
    api.start(&request)
        .await
        .context("while starting the webservice")?;
    out.partial(prompt)?;
    for _ in 0..START_WAIT_SECONDS {
        let now = api.show().await.context("while getting the webservice")?;
        if now
            .body
            .webservice
            .as_ref()
            .is_some_and(|webservice| webservice.serving_replicas > 0)
        {
            break;
        }
        out.partial(".")?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    out.partial("\n")?;
    manifest.record_start(&Started {
        wstype: &settings.wstype,
        buildservice_image: settings.buildservice_image.as_deref(),
        replicas: settings.replicas,
        cpu: settings.cpu.as_deref(),
        memory: settings.memory.as_deref(),
        extra_args: &settings.extra_args,
    });
    manifest.save(time::OffsetDateTime::now_utc())?;
    Ok(())
}

/// What `restart` asks for, as the original's restart applies the options: each setting
/// given (command line, template, manifest) wins, the running webservice's otherwise (so
/// a restart without options, or without a manifest, changes nothing but the replicas).
fn restart_request(
    settings: &Settings,
    manifest_has_type: bool,
    current: &WebserviceResponse,
) -> WebserviceRequest {
    let running = current.webservice.as_ref();
    let kind = match running {
        Some(running) if !settings.wstype_given && !manifest_has_type => running.kind.clone(),
        _ => settings.wstype.clone(),
    };
    let replicas = match running {
        Some(running) if !settings.replicas_given => running.replicas,
        _ => settings.replicas,
    };
    WebserviceRequest {
        kind,
        extra_args: (!settings.extra_args.is_empty()).then(|| settings.extra_args.join(" ")),
        image: None,
        cpu: settings
            .cpu
            .clone()
            .or_else(|| running.map(|running| running.cpu.clone())),
        memory: settings
            .memory
            .clone()
            .or_else(|| running.map(|running| running.memory.clone())),
        replicas: Some(i64::from(replicas)),
        mount: settings
            .mount
            .clone()
            .or_else(|| running.map(|running| running.mount.clone())),
        buildservice_image: settings.buildservice_image.clone(),
    }
}

/// The rolling restart onto `request`'s definition, a dot a second while it runs.
async fn restart(
    api: &WebserviceApi<'_>,
    request: &WebserviceRequest,
    out: &mut Out,
) -> anyhow::Result<WebserviceResponse> {
    out.partial("Restarting webservice")?;
    let request = api.restart_with(request);
    tokio::pin!(request);
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.tick().await;
    let answer = loop {
        tokio::select! {
            answer = &mut request => break answer,
            _ = ticks.tick() => out.partial(".")?,
        }
    };
    out.partial("\n")?;
    Ok(answer.context("while restarting the webservice")?.body)
}

#[derive(Deserialize)]
struct LogLine {
    datetime: String,
    pod: String,
    container: String,
    message: String,
}

fn log_line(line: &str) -> Result<String, Failure> {
    let line: LogLine = serde_json::from_str(line)
        .map_err(|err| Failure::internal("A log line could not be read", err))?;
    Ok(format!(
        "{} [{}] [{}] {}",
        line.datetime, line.pod, line.container, line.message
    ))
}

/// `logs [-f] [-l N]`: the webservice job's logs, as `toolforge jobs logs` prints them.
async fn logs(
    jobs: &ServiceClient,
    job: &str,
    follow: bool,
    last: Option<u64>,
    out: &mut Out,
) -> anyhow::Result<ExitCode> {
    let mut path = format!("/jobs/{job}/logs?follow={follow}");
    if let Some(last) = last {
        path.push_str(&format!("&lines={last}"));
    }
    let stream = async {
        let mut lines = jobs
            .get_lines(&path)
            .await
            .context("while reading the webservice's logs")?;
        while let Some(line) = lines.next_line().await? {
            out.out(&log_line(&line)?)?;
        }
        anyhow::Ok(())
    };
    tokio::select! {
        res = stream => res?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// The image `shell` runs in: the type given, else the running webservice's, else the
/// recorded or default type's, else `bookworm` (for `generic`).
fn shell_image(
    settings: &Settings,
    current: &WebserviceResponse,
    types: &[WebserviceTypeBody],
) -> String {
    let image_type = |name: &str| {
        (name != "generic" && name != "buildservice" && types.iter().any(|t| t.name == name))
            .then(|| name.to_owned())
    };
    if settings.wstype_given
        && let Some(image) = image_type(&settings.wstype)
    {
        return image;
    }
    if let Some(webservice) = &current.webservice {
        return webservice.image.clone();
    }
    image_type(&settings.wstype).unwrap_or_else(|| SHELL_DEFAULT_IMAGE.to_owned())
}

#[derive(Deserialize)]
struct JobReply {
    job: JobState,
}

#[derive(Deserialize)]
struct JobState {
    status_short: String,
    #[serde(default)]
    status: Option<JobStatus>,
}

#[derive(Deserialize)]
struct JobStatus {
    #[serde(default)]
    messages: Vec<String>,
}

/// `shell -- CMD`: CMD as a one-off job `shell-<milliseconds since the epoch>` in `image`, its output printed as it
/// comes; the exit status is CMD's. The job is deleted afterwards.
async fn shell(
    jobs: &ServiceClient,
    image: &str,
    cmd: &str,
    settings: &Settings,
    out: &mut Out,
) -> anyhow::Result<ExitCode> {
    // In milliseconds: a job's logs are kept by its name, so two commands run one after
    // the other must not share one (nor its predecessor's output).
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_millis())
        .unwrap_or_default();
    let name = format!("shell-{millis}");
    let mut payload = json!({
        "name": name,
        "cmd": cmd,
        "imagename": image,
        "filelog": false,
    });
    for (key, value) in [
        ("cpu", &settings.cpu),
        ("memory", &settings.memory),
        ("mount", &settings.mount),
    ] {
        if let Some(value) = value {
            payload[key] = Value::String(value.clone());
        }
    }
    jobs.request::<Value, Value>(Method::POST, "/jobs/", Some(&payload))
        .await
        .context("while starting the shell command")?;
    let result = follow_shell(jobs, &name, out).await;
    // Whatever happened, the one-off job is not left behind.
    let _ = jobs
        .request::<Value, ()>(Method::DELETE, &format!("/jobs/{name}"), None)
        .await;
    result
}

/// Prints the shell command's output as it comes, until the job has finished; the
/// platform reports a job finished only once all its output is stored, so the lines the
/// followed stream had not delivered yet are then read from the stored output.
async fn follow_shell(jobs: &ServiceClient, name: &str, out: &mut Out) -> anyhow::Result<ExitCode> {
    let mut lines = jobs
        .get_lines(&format!("/jobs/{name}/logs?follow=true"))
        .await
        .context("while reading the shell command's output")?;
    let mut poll = tokio::time::interval(Duration::from_millis(500));
    let mut printed = 0;
    let mut recent = std::collections::VecDeque::with_capacity(SHELL_RECENT_LINES);
    let ended = loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) => {
                    print_shell_line(&line, out)?;
                    printed += 1;
                    if recent.len() == SHELL_RECENT_LINES {
                        recent.pop_front();
                    }
                    recent.push_back(line);
                }
                None => break None,
            },
            _ = poll.tick() => {
                let reply = jobs
                    .get::<JobReply>(&format!("/jobs/{name}?include_status=true"))
                    .await
                    .context("while waiting for the shell command")?;
                if let Some(code) = exit_status(&reply.body.job) {
                    break Some(code);
                }
            }
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::from(130)),
        }
    };
    drop(lines);
    if ended.is_some() {
        let stored = match jobs.get_lines(&format!("/jobs/{name}/logs")).await {
            Ok(mut lines) => {
                let mut stored = Vec::new();
                while let Some(line) = lines
                    .next_line()
                    .await
                    .context("while reading the shell command's output")?
                {
                    stored.push(line);
                }
                stored
            }
            // The command printed nothing.
            Err(api_client::Error::User { status: 404, .. }) => Vec::new(),
            Err(err) => return Err(err).context("while reading the shell command's output"),
        };
        let recent: Vec<String> = recent.into();
        for line in &stored[resume_at(&stored, printed, &recent)..] {
            print_shell_line(line, out)?;
        }
    }
    Ok(ExitCode::from(ended.unwrap_or(1)))
}

fn print_shell_line(line: &str, out: &mut Out) -> anyhow::Result<()> {
    let line: LogLine = serde_json::from_str(line)
        .map_err(|err| Failure::internal("A log line could not be read", err))?;
    out.out(&line.message)?;
    Ok(())
}

/// Where the stored output (`stored`, every line in order) continues after what the
/// followed stream printed: `printed` lines, the last of them `recent`. Normally right
/// after the first `printed` stored lines; when the stream repeated lines (where its
/// stored part meets the lines it follows) or skipped some (it fell behind), after the
/// stored line that ends the longest run of `recent`, the nearest to `printed` of those.
fn resume_at(stored: &[String], printed: usize, recent: &[String]) -> usize {
    let Some(last) = recent.last() else {
        return 0;
    };
    // How many of the lines printed last the stored lines before `end` end with.
    let matched = |end: usize| {
        recent
            .iter()
            .rev()
            .zip(stored[..end].iter().rev())
            .take_while(|(printed, stored)| printed == stored)
            .count()
    };
    (1..=stored.len())
        .filter(|end| stored[end - 1] == *last)
        .max_by_key(|end| (matched(*end), std::cmp::Reverse(end.abs_diff(printed))))
        .unwrap_or(printed.min(stored.len()))
}

/// The exit status of a finished one-off job: its `exitcode N`, else 0 for `Completed` and
/// 1 for `Failed`; `None` while it runs.
fn exit_status(job: &JobState) -> Option<u8> {
    let code = job.status.as_ref().and_then(|status| {
        status.messages.iter().find_map(|message| {
            message
                .strip_prefix("exitcode ")
                .and_then(|code| code.parse::<i64>().ok())
        })
    });
    match job.status_short.as_str() {
        "Completed" => Some(0),
        "Failed" | "Unable to start" => {
            Some(code.and_then(|code| u8::try_from(code).ok()).unwrap_or(1))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
