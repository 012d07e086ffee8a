//! `toolforge envvars …`: the commands of the official `toolforge-envvars` 0.0.15 client,
//! with its requests, tables, messages, prompts and exit statuses (api-contract.md §3.2,
//! §4.3; contract-transcripts/envvars.clean.txt).
//!
//! - Output is byte for byte the official client's when standard output is not a terminal;
//!   on a terminal, headers are bold, info blue, warnings yellow and errors red, as
//!   `click.style` + `click.echo` make them.
//! - The answer's info and warnings come first, except with `--json` (and `show --raw`).
//! - Errors are printed on standard output, and every error exits 1 (§2.3):
//!   `Error: <message>` for a refused request (4xx), whose message ends with a newline
//!   (hence a blank line); `<Class>: <message>` and the report line for anything else.
//!   With `-d/--debug`, the report line is replaced by the whole chain on standard error.
//! - Declining `delete`'s confirmation prints `Aborting at user's request`, exit 1; the end
//!   of input or Ctrl+C at a prompt prints click's `Aborted!` on standard error, exit 1.
//! - As in the official client, discovery (config, kubeconfig, credentials) happens before
//!   `create` reads its value, so a broken setup fails before asking for anything.
//!
//! `create` prints no hint about jobs: the official client prints none (a changed value
//! reaches a job when it next starts, which the docs say).

mod plain_table;
mod prompt;
mod py_json;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use api_client::client::{ApiClient, ClientOptions, Reply, Service, ServiceClient};
use api_client::discovery::{Discovery, Overrides};
use api_client::env::Environment;
use api_client::{Error, ErrorKind};
use api_types::envelope::Messages;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::envvars::plain_table::plain_table;
use crate::envvars::prompt::{Answer, LineRead, ValueSource};

/// The config file name of the official envvars client (`/etc/toolforge/envvars.yaml`).
const CLIENT_NAME: &str = "envvars";

/// What `list` shows instead of a value without `--show-values`.
pub const HIDDEN_VALUE: &str = "****************";

/// `list --show-values --truncate` cuts values of this many characters or more.
pub const TRUNCATE_LENGTH: usize = 50;

/// The line the official clients print after an error that is not the user's.
const REPORT_LINE: &str =
    "Please report this issue to the Toolforge admins if it persists: https://w.wiki/6Zuu";

/// `toolforge envvars` and its command.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct EnvvarsArgs {
    /// Accepted as the official client accepts it; it changes nothing.
    #[arg(short, long, hide = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: EnvvarsCommand,
}

/// The commands of `toolforge envvars`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum EnvvarsCommand {
    /// Create/update an envvar.
    Create {
        /// The envvar's name.
        #[arg(value_name = "ENVVAR_NAME")]
        name: String,
        /// The value; without it, it is asked for on a terminal, or read from standard input.
        #[arg(value_name = "ENVVAR_VALUE")]
        value: Option<String>,
        /// If set, will output in json format
        #[arg(long)]
        json: bool,
    },
    /// Delete an envvar.
    Delete {
        /// The envvar's name.
        #[arg(value_name = "ENVVAR_NAME")]
        name: String,
        /// If set, will output in json format
        #[arg(long)]
        json: bool,
        /// If set, will not ask for confirmation
        #[arg(long)]
        yes_im_sure: bool,
    },
    /// List all your envvars.
    List {
        /// If set, will ignore all other options and output the envvars, including the
        /// values in json format.
        #[arg(long)]
        json: bool,
        /// By default envvar values are hidden. To see the values, use --show-values
        #[arg(long)]
        show_values: bool,
        /// To only show parts of a long envvar value, use --truncate (the default is
        /// --no-truncate)
        #[arg(long, overrides_with = "no_truncate")]
        truncate: bool,
        /// Show long values whole (the default).
        #[arg(long, overrides_with = "truncate")]
        no_truncate: bool,
    },
    /// Get envvars quota information.
    Quota {
        /// If set, will output in json format
        #[arg(long)]
        json: bool,
    },
    /// Show a specific envvar.
    Show {
        /// The envvar's name.
        #[arg(value_name = "ENVVAR_NAME")]
        name: String,
        /// If set, will output in json format
        #[arg(long)]
        json: bool,
        /// If set, will output the raw value
        #[arg(long)]
        raw: bool,
    },
}

/// How `list` shows values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListDisplay {
    /// `--show-values`: the values instead of [`HIDDEN_VALUE`].
    pub show_values: bool,
    /// `--truncate`: values of [`TRUNCATE_LENGTH`] characters or more cut there, plus `...`.
    pub truncate: bool,
}

/// Runs `command` for the tool discovery finds, printing errors as the official client
/// does; `Err` only when standard output or error cannot be written.
pub async fn envvars(
    command: &EnvvarsCommand,
    env: &Environment,
    overrides: &Overrides,
    debug: bool,
) -> anyhow::Result<ExitCode> {
    let mut out = Out {
        stdout: std::io::stdout(),
        stderr: std::io::stderr(),
        stdout_styled: std::io::stdout().is_terminal(),
        stderr_styled: std::io::stderr().is_terminal(),
    };
    let res = run(command, env, overrides, &mut out).await;
    let code = match res {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => return Err(err),
        Err(err) => {
            out.report(&err, debug).context("while printing an error")?;
            ExitCode::from(1)
        }
    };
    out.stdout.flush()?;
    Ok(code)
}

/// The rows `list` shows for `envvars` (the items of the answer's `envvars`).
pub fn list_rows(envvars: &[Value], display: ListDisplay) -> anyhow::Result<Vec<Vec<String>>> {
    envvars
        .iter()
        .map(|envvar| {
            let name = text_of(field(envvar, "name")?);
            let value = if display.show_values {
                let value = text_of(field(envvar, "value")?);
                truncated(&value, display.truncate)
            } else {
                HIDDEN_VALUE.to_owned()
            };
            Ok(vec![name, value])
        })
        .collect()
}

/// `value` cut to [`TRUNCATE_LENGTH`] characters plus `...` when `truncate` and it is at
/// least that long.
pub fn truncated(value: &str, truncate: bool) -> String {
    if truncate && value.chars().count() >= TRUNCATE_LENGTH {
        let cut: String = value.chars().take(TRUNCATE_LENGTH).collect();
        format!("{cut}...")
    } else {
        value.to_owned()
    }
}

async fn run<O: Write, E: Write>(
    command: &EnvvarsCommand,
    env: &Environment,
    overrides: &Overrides,
    out: &mut Out<O, E>,
) -> anyhow::Result<ExitCode> {
    let discovery = Discovery::discover(env, CLIENT_NAME, overrides)?;
    let options = ClientOptions {
        user_agent_name: "envvars-cli".to_owned(),
        ..ClientOptions::for_service(&discovery.config, Service::Envvars)?
    };
    let api = ApiClient::new(&discovery, &options)
        .context("while setting up TLS and the HTTP client")?
        .service(Service::Envvars);
    match command {
        EnvvarsCommand::Create { name, value, json } => {
            let value = match prompt::value_source(value.as_deref(), std::io::stdin().is_terminal())
            {
                ValueSource::Argument(value) => value.to_owned(),
                ValueSource::Stdin => prompt::read_all()
                    .map_err(|err| ClientFailure::new("UnicodeDecodeError", &err))
                    .context("while reading the value from standard input")?,
                ValueSource::Prompt => match prompt_value(out).await? {
                    Some(value) => value,
                    None => return Ok(ExitCode::from(1)),
                },
            };
            let body = json!({"name": name, "value": value});
            let reply = api
                .post::<Value, _>("/envvars", &body)
                .await
                .with_context(|| format!("while creating envvar {name}"))?;
            out.envvar_reply(&reply, *json)?;
        }
        EnvvarsCommand::Delete {
            name,
            json,
            yes_im_sure,
        } => {
            if !yes_im_sure {
                let text = format!(
                    "Are you sure you want to delete {name}? (this can't be undone) [yN]: "
                );
                write!(out.stdout, "{text}")?;
                out.stdout.flush()?;
                match read_line(out, false).await? {
                    Some(line) if prompt::delete_confirmed(&line) => {}
                    Some(_) => {
                        writeln!(out.stdout, "Aborting at user's request")?;
                        return Ok(ExitCode::from(1));
                    }
                    None => return Ok(ExitCode::from(1)),
                }
            }
            let reply = api
                .delete::<Value>(&format!("/envvars/{name}"))
                .await
                .with_context(|| format!("while deleting envvar {name}"))?;
            if *json {
                out.json(&reply.body)?;
            } else {
                out.messages(&reply.messages)?;
                writeln!(out.stdout, "Deleted {name}, here is its last value: ")?;
                out.envvar_table(&reply.body)?;
            }
        }
        EnvvarsCommand::List {
            json,
            show_values,
            truncate,
            no_truncate: _,
        } => {
            let reply = get(&api, "/envvars", "while listing envvars").await?;
            if *json {
                out.json(&reply.body)?;
            } else {
                out.messages(&reply.messages)?;
                let envvars = field(&reply.body, "envvars")?
                    .as_array()
                    .ok_or_else(|| ClientFailure::message("TypeError", "envvars is not a list"))?;
                let display = ListDisplay {
                    show_values: *show_values,
                    truncate: *truncate,
                };
                out.table(&["name", "value"], &list_rows(envvars, display)?)?;
            }
        }
        EnvvarsCommand::Quota { json } => {
            let reply = get(&api, "/quotas", "while getting the envvars quota").await?;
            if *json {
                out.json(&reply.body)?;
            } else {
                out.messages(&reply.messages)?;
                let quota = field(&reply.body, "quota")?;
                let number = |key: &str| -> anyhow::Result<i64> {
                    field(quota, key)?.as_i64().ok_or_else(|| {
                        ClientFailure::message(
                            "TypeError",
                            &format!("quota {key} is not an integer"),
                        )
                        .into()
                    })
                };
                let (total, used) = (number("quota")?, number("used")?);
                let row = [total, used, total - used].map(|n| n.to_string()).to_vec();
                out.table(&["quota", "used", "available"], &[row])?;
            }
        }
        EnvvarsCommand::Show { name, json, raw } => {
            let reply = get(
                &api,
                &format!("/envvars/{name}"),
                &format!("while getting envvar {name}"),
            )
            .await?;
            if *json {
                out.json(&reply.body)?;
            } else if *raw {
                let value = text_of(field(field(&reply.body, "envvar")?, "value")?);
                write!(out.stdout, "{value}")?;
            } else {
                out.messages(&reply.messages)?;
                out.envvar_table(&reply.body)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn get(api: &ServiceClient, path: &str, doing: &str) -> anyhow::Result<Reply<Value>> {
    let reply = api.get::<Value>(path).await.context(doing.to_owned())?;
    Ok(reply)
}

/// Asks for the value on the terminal until a non-empty line comes; `None` when aborted
/// (after printing `Aborted!`).
async fn prompt_value<O: Write, E: Write>(out: &mut Out<O, E>) -> anyhow::Result<Option<String>> {
    loop {
        write!(out.stdout, "{}: ", prompt::VALUE_PROMPT)?;
        out.stdout.flush()?;
        let line = read_line(out, true).await?;
        match prompt::value_answer(line.as_deref()) {
            Answer::Take(value) => return Ok(Some(value)),
            Answer::AskAgain => continue,
            Answer::Abort => return Ok(None),
        }
    }
}

/// A line from standard input, or `None` after printing click's `Aborted!` at the end of
/// the input. Ctrl+C prints the same and ends the process at once: the blocked read could
/// not be waited for. When `hidden`, the newline that was not echoed is printed first.
async fn read_line<O: Write, E: Write>(
    out: &mut Out<O, E>,
    hidden: bool,
) -> anyhow::Result<Option<String>> {
    let read = prompt::read_line(hidden)
        .await
        .map_err(|err| ClientFailure::new("OSError", &err))
        .context("while reading from standard input")?;
    if hidden {
        writeln!(out.stdout)?;
        out.stdout.flush()?;
    }
    match read {
        LineRead::Line(line) => Ok(Some(line)),
        LineRead::End => {
            writeln!(out.stderr, "Aborted!")?;
            Ok(None)
        }
        LineRead::Interrupted => {
            writeln!(out.stderr, "Aborted!")?;
            out.stderr.flush()?;
            std::process::exit(1);
        }
    }
}

/// An error that is not the API's, named as the Python exception the official client would
/// print (`KeyError: 'envvars'`).
#[derive(Debug)]
struct ClientFailure {
    class: &'static str,
    message: String,
}

impl ClientFailure {
    fn message(class: &'static str, message: &str) -> ClientFailure {
        ClientFailure {
            class,
            message: message.to_owned(),
        }
    }

    fn new(class: &'static str, cause: &dyn std::error::Error) -> ClientFailure {
        ClientFailure::message(class, &cause.to_string())
    }
}

impl std::fmt::Display for ClientFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ClientFailure {}

/// `holder[key]`, or the official client's `KeyError`.
fn field<'a>(holder: &'a Value, key: &str) -> anyhow::Result<&'a Value> {
    holder
        .get(key)
        .ok_or_else(|| ClientFailure::message("KeyError", &format!("'{key}'")).into())
}

/// A JSON value as Python's `str()` shows it in a table cell.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        other => other.to_string(),
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `err` and its sources joined with `: `.
fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// Standard output and error, and whether each is styled (a terminal).
struct Out<O, E> {
    stdout: O,
    stderr: E,
    stdout_styled: bool,
    stderr_styled: bool,
}

/// `text` in an ANSI style when `styled` (`click.style`), else as is.
fn style(text: &str, code: &str, styled: bool) -> String {
    if styled {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

impl<O: Write, E: Write> Out<O, E> {
    /// The answer's info (blue, standard output) and warnings (yellow, `Warning: `,
    /// standard error).
    fn messages(&mut self, messages: &Messages) -> std::io::Result<()> {
        for line in &messages.info {
            writeln!(self.stdout, "{}", style(line, "34", self.stdout_styled))?;
        }
        for line in &messages.warning {
            let line = format!("Warning: {line}");
            writeln!(self.stderr, "{}", style(&line, "33", self.stderr_styled))?;
        }
        Ok(())
    }

    fn json(&mut self, body: &Value) -> std::io::Result<()> {
        writeln!(self.stdout, "{}", py_json::dumps(body))
    }

    fn table(&mut self, headers: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
        writeln!(
            self.stdout,
            "{}",
            plain_table(headers, rows, self.stdout_styled)
        )
    }

    /// The `name value` table of the answer's `envvar`.
    fn envvar_table(&mut self, body: &Value) -> anyhow::Result<()> {
        let envvar = field(body, "envvar")?;
        let row = vec![
            text_of(field(envvar, "name")?),
            text_of(field(envvar, "value")?),
        ];
        self.table(&["name", "value"], &[row])?;
        Ok(())
    }

    /// What `create` prints for its answer.
    fn envvar_reply(&mut self, reply: &Reply<Value>, json: bool) -> anyhow::Result<()> {
        if json {
            self.json(&reply.body)?;
        } else {
            self.messages(&reply.messages)?;
            self.envvar_table(&reply.body)?;
        }
        Ok(())
    }

    /// Prints `err` as the official client's `handle_error` does (see the module docs).
    fn report(&mut self, err: &anyhow::Error, debug: bool) -> std::io::Result<()> {
        self.stdout.flush()?;
        let api_error = err.chain().find_map(|cause| cause.downcast_ref::<Error>());
        let failure = err
            .chain()
            .find_map(|cause| cause.downcast_ref::<ClientFailure>());
        let (line, user_error) = match (api_error, failure) {
            (Some(api_error), _) => {
                if let Some(messages) = api_error.context_messages() {
                    self.messages(messages)?;
                }
                error_line(api_error)
            }
            (None, Some(failure)) => (format!("{}: {failure}", failure.class), false),
            (None, None) => (format!("Exception: {err:#}"), false),
        };
        writeln!(self.stdout, "{}", style(&line, "31", self.stdout_styled))?;
        if debug {
            self.stdout.flush()?;
            writeln!(self.stderr, "ERROR: {err:#}")?;
        } else if !user_error {
            writeln!(
                self.stdout,
                "{}",
                style(REPORT_LINE, "31", self.stdout_styled)
            )?;
        }
        Ok(())
    }
}

/// The line the official client prints for `err`, and whether it is the user's error.
fn error_line(err: &Error) -> (String, bool) {
    match err {
        // The official parser ends each message of the error list with a newline. (A body
        // without that list, shown as it came, gets one too: api-client does not say which.)
        Error::User { message, .. } => (format!("Error: {message}\n"), true),
        Error::Server { message, .. } => (format!("EnvvarsClientError: {message}\n"), false),
        Error::ServiceDown { .. } => (format!("EnvvarsClientError: {err}"), false),
        Error::ReadTimeout { .. } => (format!("ReadTimeout: {}", chain(err)), false),
        _ if err.kind() == ErrorKind::Config => (format!("ToolforgeError: {}", chain(err)), false),
        _ => (format!("EnvvarsClientError: {}", chain(err)), false),
    }
}

#[cfg(test)]
mod tests;
