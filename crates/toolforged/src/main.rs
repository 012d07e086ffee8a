//! `toolforged`: the platform daemon and its admin command.

mod admin_client;
mod admin_procedures;
mod admin_quota;
mod admin_server;
mod admin_web_stats;
mod config;
mod front_proxy;
mod serve;
mod web;

use clap::Parser;

/// Toolforge on one machine: every service in one process.
#[derive(Debug, Parser)]
#[command(name = "toolforged", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run the platform (API gateway, dashboard, front proxy, workers).
    Serve(Box<config::ServeArgs>),
    /// Administer a running platform through its admin socket.
    Admin(admin_client::AdminArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Serve(args) => serve_main(*args),
        Command::Admin(args) => admin_client::run(args),
    };
    std::process::exit(code);
}

fn serve_main(args: config::ServeArgs) -> i32 {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TOOLFORGE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    raise_open_files_limit();
    let config = match config::Config::load(args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err:#}");
            return 1;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: while starting the async runtime: {err}");
            return 1;
        }
    };
    match runtime.block_on(serve::run(config)) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("error: {err:#}");
            1
        }
    }
}

/// Every running job holds a few descriptors of the daemon (its pipes, its cgroup), so
/// the daemon takes all the open files its hard limit allows instead of a shell's 1024.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(err) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        eprintln!("warning: could not raise the open files limit from {soft} to {hard}: {err}");
    }
}
