//! The one place that reads the process environment: it becomes an
//! [`api_client::env::Environment`], which everything else receives.

use api_client::env::Environment;

/// The process's variables, its home (from the password database when `HOME` is unset, as
/// Python's `expanduser` does) and the host name.
pub fn from_process() -> Environment {
    let mut env = Environment::from_vars(std::env::vars_os());
    if env.home().is_none()
        && let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::getuid())
    {
        env = env.with_fallback_home(user.dir);
    }
    if let Ok(hostname) = nix::unistd::gethostname() {
        env = env.with_hostname(hostname.to_string_lossy());
    }
    env
}
