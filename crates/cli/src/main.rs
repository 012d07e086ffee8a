//! `toolforge`: the command line of a tool's maintainer.
//!
//! Discovery (config files, API URL, kubeconfig, TLS) is `api-client`'s, replicating the
//! official clients (api-contract.md §1). This binary parses arguments, runs one command and
//! turns errors into the official clients' output and exit statuses:
//! - errors go to standard error as `ERROR: <message>`; with `-d/--debug` the message is the
//!   whole chain (`{:#}`) including what the command was doing, otherwise the chain of the
//!   underlying error only;
//! - the info and warnings that came with an HTTP error are shown first (§2.2 rule 3);
//! - exit 1 for configuration errors and refused requests (4xx), 2 for an unreachable or
//!   failing service (connection, 502/503, 5xx), 2 for usage errors (clap), 0 when standard
//!   output was closed early (a broken pipe);
//! - a command may fail with a [`Failure`] that decides its own message and status;
//! - `toolforge jobs` labels errors as the official jobs client does ([`ErrorStyle::JOBS`]).

mod args;
mod environment;
mod envvars;
mod jobs;
mod messages;
mod pytext;
mod tabulate;
mod webservice;
mod whoami;

use std::io::Write;
use std::process::ExitCode;

use api_client::ErrorKind;
use clap::Parser;

use crate::args::{Args, Command, LowArgs};

/// The line the official clients print after an error that is not the user's.
const REPORT_LINE: &str =
    "Please report this issue to the Toolforge admins if it persists: https://w.wiki/6Zuu";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match Args::from_low(LowArgs::parse()) {
        Ok(args) => args,
        Err(err) => {
            eprintln!("ERROR: {err}");
            return ExitCode::from(2);
        }
    };
    let env = environment::from_process();
    let style = match args.command {
        Command::Jobs(_) => ErrorStyle::JOBS,
        _ => ErrorStyle::PLAIN,
    };
    match run(&args, &env).await {
        Ok(code) => code,
        Err(err) => report(
            &err,
            args.debug,
            style,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        ),
    }
}

/// Runs the command of `args`.
async fn run(args: &Args, env: &api_client::env::Environment) -> anyhow::Result<ExitCode> {
    match &args.command {
        Command::Whoami => {
            let mut stdout = std::io::stdout().lock();
            whoami::whoami(env, &args.overrides, &mut stdout).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs(command) => jobs::jobs(command, env, &args.overrides).await,
        Command::Envvars(command) => {
            envvars::envvars(command, env, &args.overrides, args.debug).await
        }
        Command::Webservice(command) => webservice::webservice(command, env, &args.overrides).await,
        Command::NotAvailable(group) => {
            eprintln!("ERROR: `toolforge {group}` is not available yet in this build of toolforge");
            Ok(ExitCode::from(1))
        }
    }
}

/// A failure whose message and exit status the command decides.
#[derive(Debug)]
pub enum Failure {
    /// The user's mistake, found before asking the API: the message, exit 1.
    User(String),
    /// Something the command cannot handle: the message and the report line, exit 2.
    Internal {
        /// What the official client says (e.g. `ToolforgeError: Failed to format job table`).
        message: String,
        /// Why, shown with `--debug`.
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Failure {
    /// An internal failure saying `message`, caused by `cause`.
    pub fn internal(
        message: &str,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Failure {
        Failure::Internal {
            message: message.to_owned(),
            cause: Some(Box::new(cause)),
        }
    }

    /// An internal failure saying `message`.
    pub fn internal_message(message: &str) -> Failure {
        Failure::Internal {
            message: message.to_owned(),
            cause: None,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::User(message) | Failure::Internal { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Failure::Internal {
                cause: Some(cause), ..
            } => Some(cause.as_ref()),
            _ => None,
        }
    }
}

/// How errors are labelled on standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorStyle {
    /// `ERROR`, or the jobs client's coloured level name.
    pub label: &'static str,
    /// Before the message of a failing or unreachable service (`TjfCliError: `).
    pub service_prefix: &'static str,
    /// Whether an API error is followed by its causes without `--debug`.
    pub show_causes: bool,
}

impl ErrorStyle {
    /// `ERROR: <message and causes>`.
    pub const PLAIN: ErrorStyle = ErrorStyle {
        label: "ERROR",
        service_prefix: "",
        show_causes: true,
    };
    /// As the official jobs client's logging prints errors (api-contract.md §2.3).
    pub const JOBS: ErrorStyle = ErrorStyle {
        label: jobs::ERROR,
        service_prefix: "TjfCliError: ",
        show_causes: false,
    };
}

/// Prints `err` as the official clients print errors and returns the exit status.
fn report(
    err: &anyhow::Error,
    debug: bool,
    style: ErrorStyle,
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> ExitCode {
    let broken_pipe = err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    let label = style.label;
    let failure = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<Failure>());
    let api_error = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<api_client::Error>());
    let (message, report_line, status) = match (failure, api_error) {
        (Some(failure), _) => {
            let message = if debug {
                format!("{err:#}")
            } else {
                failure.to_string()
            };
            match failure {
                Failure::User(_) => (message, false, 1),
                Failure::Internal { .. } => (message, true, 2),
            }
        }
        (None, Some(api_error)) => {
            let kind = api_error.kind();
            let service = matches!(kind, ErrorKind::Server | ErrorKind::Unavailable);
            let message = match (debug, style.show_causes) {
                (true, _) => format!("{err:#}"),
                (false, true) => chain(api_error),
                (false, false) => api_error.to_string(),
            };
            let prefix = if service { style.service_prefix } else { "" };
            (
                format!("{prefix}{message}"),
                service,
                exit_status(Some(kind)),
            )
        }
        (None, None) => (format!("{err:#}"), false, exit_status(None)),
    };
    // Nothing more can be done if the terminal is gone: the exit status still tells.
    let _ = (|| -> std::io::Result<()> {
        stdout.flush()?;
        if let Some(messages) = api_error.and_then(api_client::Error::context_messages) {
            messages::show(&messages.info, &messages.warning, stdout, stderr)?;
            stdout.flush()?;
        }
        writeln!(stderr, "{label}: {message}")?;
        if report_line {
            writeln!(stderr, "{label}: {REPORT_LINE}")?;
        }
        Ok(())
    })();
    ExitCode::from(status)
}

/// 1 for configuration errors, refused requests and other errors; 2 when the service is
/// unreachable or failed.
fn exit_status(kind: Option<ErrorKind>) -> u8 {
    match kind {
        Some(ErrorKind::Server | ErrorKind::Unavailable) => 2,
        Some(ErrorKind::Config | ErrorKind::User) | None => 1,
    }
}

/// `err` and its sources joined with `: `, as `{:#}` prints an anyhow chain.
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

#[cfg(test)]
mod tests;
