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
//!   output was closed early (a broken pipe).

mod args;
mod environment;
mod envvars;
mod messages;
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
    match run(&args, &env).await {
        Ok(code) => code,
        Err(err) => report(
            &err,
            args.debug,
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
        Command::Envvars(command) => {
            envvars::envvars(command, env, &args.overrides, args.debug).await
        }
        Command::NotAvailable(group) => {
            eprintln!("ERROR: `toolforge {group}` is not available yet in this build of toolforge");
            Ok(ExitCode::from(1))
        }
    }
}

/// Prints `err` as the official clients print errors and returns the exit status.
fn report(
    err: &anyhow::Error,
    debug: bool,
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
    let api_error = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<api_client::Error>());
    // Nothing more can be done if the terminal is gone: the exit status still tells.
    let _ = (|| -> std::io::Result<()> {
        if let Some(messages) = api_error.and_then(api_client::Error::context_messages) {
            messages::show(&messages.info, &messages.warning, stdout, stderr)?;
        }
        match (api_error, debug) {
            (Some(api_error), false) => writeln!(stderr, "ERROR: {}", chain(api_error))?,
            _ => writeln!(stderr, "ERROR: {err:#}")?,
        }
        if let Some(api_error) = api_error
            && matches!(api_error.kind(), ErrorKind::Server | ErrorKind::Unavailable)
        {
            writeln!(stderr, "ERROR: {REPORT_LINE}")?;
        }
        Ok(())
    })();
    ExitCode::from(exit_status(api_error.map(api_client::Error::kind)))
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
