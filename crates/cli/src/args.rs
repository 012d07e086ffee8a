//! Command-line arguments in two steps, as ripgrep and cargo do: clap fills [`LowArgs`]
//! (raw flags), then [`Args::from_low`] validates them once into the typed [`Args`].

use std::ffi::OsString;

use api_client::discovery::Overrides;
use clap::{Parser, Subcommand};

/// Raw flags, exactly as given.
#[derive(Debug, Parser)]
#[command(
    name = "toolforge",
    version,
    about = "Manage a Toolforge tool: its jobs, envvars, builds and components",
    long_about = "Manage a Toolforge tool: its jobs, envvars, builds and components.\n\n\
        The API, the tool and its credentials are found as the official clients find them: \
        ~/.toolforge.yaml (api_gateway.url) or TOOL_TOOLFORGE_API_URL, and the kubeconfig \
        ($KUBECONFIG or ~/.kube/config)."
)]
pub struct LowArgs {
    /// Act on TOOL instead of the tool of the kubeconfig's namespace.
    // No `env` on `--tool` and `--api-url`: the official clients read no variable for the
    // tool, and `TOOL_TOOLFORGE_API_URL` is read by discovery, which must see it even when
    // empty (clap treats an empty variable as unset).
    #[arg(long, global = true, value_name = "TOOL")]
    pub tool: Option<String>,
    /// Use the API gateway at URL (wins over TOOL_TOOLFORGE_API_URL and the config files).
    #[arg(long, global = true, value_name = "URL")]
    pub api_url: Option<String>,
    /// Show errors with their whole chain of causes, and what the command was doing.
    // `TOOLFORGE_DEBUG=1` turns it on, as for the official jobs client; `0`, `false`, `no`,
    // `off` and an empty value do not.
    #[arg(
        short,
        long,
        global = true,
        env = "TOOLFORGE_DEBUG",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub debug: bool,
    #[command(subcommand)]
    pub command: LowCommand,
}

/// The sub-commands.
#[derive(Debug, Subcommand)]
pub enum LowCommand {
    /// Show the API URL, the tool and the credentials found, and the gateway's health.
    Whoami,
    /// Manage jobs, as the official `toolforge jobs` does.
    Jobs(crate::jobs::JobsArgs),
    /// Manage the tool's environment variables, as the official `toolforge envvars` does.
    Envvars(crate::envvars::EnvvarsArgs),
    /// Build container images (not available yet in this build).
    Build(Passthrough),
    /// Manage the tool's webservice, as the original `webservice` does.
    Webservice(Box<crate::webservice::WebserviceArgs>),
    /// Manage components and deployments (not available yet in this build).
    Components(Passthrough),
}

/// The arguments of a command group that is not implemented yet, accepted as they come.
#[derive(Debug, clap::Args)]
pub struct Passthrough {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub args: Vec<OsString>,
}

/// Validated arguments.
#[derive(Debug, Clone)]
pub struct Args {
    /// `--tool` and `--api-url`.
    pub overrides: Overrides,
    /// `-d/--debug`.
    pub debug: bool,
    /// What to do.
    pub command: Command,
}

/// A validated sub-command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `toolforge whoami`.
    Whoami,
    /// `toolforge jobs …`.
    Jobs(crate::jobs::JobsCommand),
    /// `toolforge envvars …`.
    Envvars(crate::envvars::EnvvarsCommand),
    /// `toolforge webservice …`.
    Webservice(Box<crate::webservice::WebserviceCommand>),
    /// A command group of a later issue; the name as typed (`jobs`, `envvars`, …).
    NotAvailable(&'static str),
}

/// Why arguments were refused after clap accepted them.
#[derive(Debug, PartialEq, Eq)]
pub enum ArgsError {
    /// `--tool ''` or a name with a `/`, which would change the request paths.
    InvalidTool(String),
    /// `--api-url ''`.
    EmptyApiUrl,
    /// `toolforge webservice` without a valid ACTION: the usage error.
    Webservice(String),
}

impl std::fmt::Display for ArgsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArgsError::InvalidTool(tool) => {
                write!(
                    f,
                    "--tool '{tool}' is not a tool name (empty, or it holds a '/')"
                )
            }
            ArgsError::EmptyApiUrl => f.write_str("--api-url must not be empty"),
            ArgsError::Webservice(message) => write!(f, "toolforge webservice: {message}"),
        }
    }
}

impl std::error::Error for ArgsError {}

impl Args {
    /// Validates `low`.
    pub fn from_low(low: LowArgs) -> Result<Args, ArgsError> {
        if let Some(tool) = &low.tool
            && (tool.is_empty() || tool.contains('/'))
        {
            return Err(ArgsError::InvalidTool(tool.clone()));
        }
        if low.api_url.as_deref() == Some("") {
            return Err(ArgsError::EmptyApiUrl);
        }
        let command = match low.command {
            LowCommand::Whoami => Command::Whoami,
            LowCommand::Jobs(jobs) => Command::Jobs(jobs.command),
            LowCommand::Envvars(envvars) => Command::Envvars(envvars.command),
            LowCommand::Build(_) => Command::NotAvailable("build"),
            LowCommand::Webservice(args) => Command::Webservice(Box::new(
                crate::webservice::WebserviceCommand::from_args(*args)
                    .map_err(ArgsError::Webservice)?,
            )),
            LowCommand::Components(_) => Command::NotAvailable("components"),
        };
        Ok(Args {
            overrides: Overrides {
                tool: low.tool,
                api_url: low.api_url,
            },
            debug: low.debug,
            command,
        })
    }
}
