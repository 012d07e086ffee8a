//! `toolforged serve` configuration: flags, `TOOLFORGE_*` environment variables and
//! an optional TOML file, in that order of precedence, validated once into [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// Raw flags of `toolforged serve`; every one also read from `TOOLFORGE_<FLAG>`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// The data directory: database, PKI, run files, archives.
    #[arg(long, env = "TOOLFORGE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where tool homes live [default: <data-dir>/project].
    #[arg(long, env = "TOOLFORGE_HOMES_DIR")]
    pub homes_dir: Option<PathBuf>,
    /// A TOML file with the same settings (flags and environment win).
    #[arg(long, env = "TOOLFORGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The API gateway's HTTPS address [default: 127.0.0.1:30003].
    #[arg(long, env = "TOOLFORGE_API_ADDR")]
    pub api_addr: Option<SocketAddr>,
    /// The dashboard's address [default: 127.0.0.1:8000].
    #[arg(long, env = "TOOLFORGE_WEB_ADDR")]
    pub web_addr: Option<SocketAddr>,
    /// The front proxy's address [default: 127.0.0.1:8080].
    #[arg(long, env = "TOOLFORGE_PROXY_ADDR")]
    pub proxy_addr: Option<SocketAddr>,
    /// The domain tools are served under: <tool>.<public-domain> [default: localhost].
    #[arg(long, env = "TOOLFORGE_PUBLIC_DOMAIN")]
    pub public_domain: Option<String>,
    /// The API URL written into tool homes [default: https:// + the bound API address].
    #[arg(long, env = "TOOLFORGE_PUBLIC_API_URL")]
    pub public_api_url: Option<String>,
    /// The dashboard's public URL, used in mailed links; https:// makes its cookies
    /// Secure [default: http:// + the bound --web-addr].
    #[arg(long, env = "TOOLFORGE_DASHBOARD_URL")]
    pub dashboard_url: Option<String>,
    /// SMTP relay for mail, e.g. smtp://127.0.0.1:2525 (no mail is sent when unset).
    #[arg(long, env = "TOOLFORGE_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// Sender address of the platform's mail.
    #[arg(long, env = "TOOLFORGE_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// Give jobs outbound network through NAT (changes the host's firewall rules).
    #[arg(long, env = "TOOLFORGE_JOB_NAT")]
    pub job_nat: bool,
    /// Run jobs even where they cannot be isolated.
    #[arg(long, env = "TOOLFORGE_ALLOW_UNISOLATED_JOBS")]
    pub allow_unisolated_jobs: bool,
    /// The front proxy's TLS certificate chain (PEM); with --proxy-tls-key, the proxy
    /// speaks HTTPS (HTTP/2 by ALPN) instead of plain HTTP.
    #[arg(long, env = "TOOLFORGE_PROXY_TLS_CERT", value_name = "FILE")]
    pub proxy_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --proxy-tls-cert.
    #[arg(long, env = "TOOLFORGE_PROXY_TLS_KEY", value_name = "FILE")]
    pub proxy_tls_key: Option<PathBuf>,
    /// Longest wait for a webservice to accept a connection, then for its response
    /// headers, e.g. 60s; the visitor then gets 504 [default: 60s].
    #[arg(
        long,
        env = "TOOLFORGE_PROXY_UPSTREAM_TIMEOUT",
        value_name = "DURATION"
    )]
    pub proxy_upstream_timeout: Option<String>,
    /// Largest request body the proxy forwards, e.g. 100Mi; larger ones get 413 [default: 100Mi].
    #[arg(long, env = "TOOLFORGE_PROXY_MAX_BODY", value_name = "SIZE")]
    pub proxy_max_body: Option<String>,
    /// Most requests in flight (and WebSocket connections) per tool; more get 503 [default: 512].
    #[arg(
        long,
        env = "TOOLFORGE_PROXY_MAX_CONNECTIONS_PER_TOOL",
        value_name = "N"
    )]
    pub proxy_max_connections_per_tool: Option<usize>,
    /// Test hook: the scheduled deletion of disabled tools acts as if it were this much
    /// later (e.g. 41d), so tests need not wait 40 days.
    #[arg(long, hide = true, env = "TOOLFORGE_SCHEDULED_DELETION_CLOCK_OFFSET")]
    pub scheduled_deletion_clock_offset: Option<String>,
}

/// The TOML file: the same settings, kebab-case, plus ones with no flag.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    homes_dir: Option<PathBuf>,
    api_addr: Option<SocketAddr>,
    web_addr: Option<SocketAddr>,
    proxy_addr: Option<SocketAddr>,
    public_domain: Option<String>,
    public_api_url: Option<String>,
    dashboard_url: Option<String>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    job_nat: Option<bool>,
    allow_unisolated_jobs: Option<bool>,
    proxy_tls_cert: Option<PathBuf>,
    proxy_tls_key: Option<PathBuf>,
    proxy_upstream_timeout: Option<String>,
    proxy_max_body: Option<String>,
    proxy_max_connections_per_tool: Option<usize>,
    /// Bytes of captured job output kept per tool, e.g. "256Mi"; the oldest files go first.
    logs_retention_size: Option<String>,
    /// Captured job output last written longer ago than this is removed, e.g. "7d".
    logs_retention_age: Option<String>,
    /// Lines per second a tool's jobs may print together; more are dropped (and counted).
    logs_rate: Option<u32>,
    /// Lines a tool's jobs may print at once above the rate.
    logs_burst: Option<u32>,
    /// How often the logs' retention is enforced, e.g. "1m".
    logs_sweep_interval: Option<String>,
    /// Lifetime of client certificates, e.g. "365d".
    cert_validity: Option<String>,
    /// Renew client certificates when less than this remains, e.g. "30d".
    cert_renew_before: Option<String>,
    /// How often the daemon looks for certificates to renew, e.g. "1h".
    cert_renew_interval: Option<String>,
    /// First restart delay of a crashing continuous job, e.g. "10s" (doubles each time).
    job_restart_delay: Option<String>,
    /// Longest restart delay, e.g. "5m".
    job_restart_delay_max: Option<String>,
    /// Time between SIGTERM and SIGKILL when a job is stopped, e.g. "10s".
    job_stop_grace: Option<String>,
    /// Period of the startup health probe of continuous jobs (Kubernetes': 1s).
    job_startup_probe_period: Option<String>,
    /// Failures of the startup probe before a replica is restarted (the original: 120).
    job_startup_probe_failures: Option<u32>,
    /// Period of the liveness probe (the original: 10s); 3 failures in a row restart.
    job_liveness_probe_period: Option<String>,
    /// How long job e-mail events are collected into one mail per tool (the original: 400s).
    mail_compose_period: Option<String>,
    /// Most job e-mails composed per period, over all tools (the original: 10).
    mail_max_per_period: Option<u32>,
    /// How often the daemon looks for disabled tools due for archive and deletion, e.g. "10m".
    scheduled_deletion_interval: Option<String>,
}

/// The front proxy's settings (`--proxy-*`).
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Certificate chain and key files: TLS termination when both are given.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub upstream_timeout: std::time::Duration,
    pub max_body: u64,
    pub max_connections_per_tool: usize,
}

/// Validated configuration of the daemon.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub homes_dir: PathBuf,
    pub api_addr: SocketAddr,
    pub web_addr: SocketAddr,
    pub proxy_addr: SocketAddr,
    pub public_domain: String,
    /// `None`: derived from the bound API address.
    pub public_api_url: Option<String>,
    /// The dashboard's public URL without a trailing slash; `None`: `http://` + the
    /// bound web address.
    pub dashboard_url: Option<String>,
    pub smtp_url: Option<String>,
    pub mail_from: String,
    pub job_nat: bool,
    pub allow_unisolated_jobs: bool,
    /// The front proxy's settings.
    pub proxy: ProxySettings,
    /// Rate limit and retention of captured job output.
    pub logs: jobs_engine::logs::LogsConfig,
    pub cert_validity: time::Duration,
    pub cert_renew_before: time::Duration,
    pub cert_renew_interval: std::time::Duration,
    pub job_restart_delay: std::time::Duration,
    pub job_restart_delay_max: std::time::Duration,
    pub job_stop_grace: std::time::Duration,
    pub job_startup_probe_period: std::time::Duration,
    pub job_startup_probe_failures: u32,
    pub job_liveness_probe_period: std::time::Duration,
    /// Job e-mails: how long events are collected before they are mailed.
    pub mail_compose_period: std::time::Duration,
    /// Job e-mails: most mails composed per period.
    pub mail_max_per_period: u32,
    /// How often disabled tools due for archive and deletion are looked for.
    pub scheduled_deletion_interval: std::time::Duration,
    /// Test hook: how far ahead the scheduled deletion's clock runs (zero in production).
    pub scheduled_deletion_clock_offset: time::Duration,
}

impl Config {
    /// Merges flags/environment over the file over the defaults, and validates.
    pub fn load(args: ServeArgs) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./toolforge-data"));
        let data_dir = absolute(&data_dir)?;
        let homes_dir = match args.homes_dir.or(file.homes_dir) {
            Some(dir) => absolute(&dir)?,
            None => data_dir.join("project"),
        };
        let public_domain = args
            .public_domain
            .or(file.public_domain)
            .unwrap_or_else(|| "localhost".to_owned());
        if public_domain.is_empty()
            || !public_domain.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
        {
            bail!(
                "invalid --public-domain '{public_domain}': it must be a DNS name such as toolforge.example.org"
            );
        }
        let public_api_url = args.public_api_url.or(file.public_api_url);
        if let Some(url) = &public_api_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            bail!("invalid --public-api-url '{url}': it must start with https:// or http://");
        }
        let dashboard_url = args.dashboard_url.or(file.dashboard_url);
        if let Some(url) = &dashboard_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            bail!("invalid --dashboard-url '{url}': it must start with https:// or http://");
        }
        let dashboard_url = dashboard_url.map(|url| url.trim_end_matches('/').to_owned());
        let smtp_url = args.smtp_url.or(file.smtp_url);
        if let Some(url) = &smtp_url
            && !url.starts_with("smtp://")
            && !url.starts_with("smtps://")
        {
            bail!("invalid --smtp-url '{url}': it must start with smtp:// or smtps://");
        }
        let duration = |value: Option<String>,
                        name: &str,
                        default: &str|
         -> anyhow::Result<std::time::Duration> {
            let text = value.unwrap_or_else(|| default.to_owned());
            parse_duration(&text)
                .with_context(|| format!("invalid {name} '{text}' in the config file"))
        };
        let cert_validity = duration(file.cert_validity, "cert-validity", "365d")?;
        let cert_renew_before = duration(file.cert_renew_before, "cert-renew-before", "30d")?;
        if cert_renew_before >= cert_validity {
            bail!(
                "cert-renew-before must be shorter than cert-validity, or certificates would be renewed forever"
            );
        }
        let proxy = ProxySettings {
            tls: match (
                args.proxy_tls_cert.or(file.proxy_tls_cert),
                args.proxy_tls_key.or(file.proxy_tls_key),
            ) {
                (Some(cert), Some(key)) => Some((absolute(&cert)?, absolute(&key)?)),
                (None, None) => None,
                _ => {
                    bail!("--proxy-tls-cert and --proxy-tls-key go together: give both or neither")
                }
            },
            upstream_timeout: {
                let text = args
                    .proxy_upstream_timeout
                    .or(file.proxy_upstream_timeout)
                    .unwrap_or_else(|| "60s".to_owned());
                parse_duration(&text)
                    .with_context(|| format!("invalid --proxy-upstream-timeout '{text}'"))?
            },
            max_body: match args.proxy_max_body.or(file.proxy_max_body) {
                Some(text) => parse_size(&text)
                    .with_context(|| format!("invalid --proxy-max-body '{text}'"))?,
                None => 100 << 20,
            },
            max_connections_per_tool: match args
                .proxy_max_connections_per_tool
                .or(file.proxy_max_connections_per_tool)
            {
                Some(0) => bail!("--proxy-max-connections-per-tool must be at least 1"),
                Some(n) => n,
                None => 512,
            },
        };
        let logs = logs_config(
            file.logs_retention_size,
            file.logs_retention_age,
            file.logs_rate,
            file.logs_burst,
            file.logs_sweep_interval,
        )?;
        Ok(Config {
            data_dir,
            homes_dir,
            api_addr: args
                .api_addr
                .or(file.api_addr)
                .unwrap_or(([127, 0, 0, 1], 30003).into()),
            web_addr: args
                .web_addr
                .or(file.web_addr)
                .unwrap_or(([127, 0, 0, 1], 8000).into()),
            proxy_addr: args
                .proxy_addr
                .or(file.proxy_addr)
                .unwrap_or(([127, 0, 0, 1], 8080).into()),
            public_domain,
            public_api_url,
            dashboard_url,
            smtp_url,
            mail_from: args
                .mail_from
                .or(file.mail_from)
                .unwrap_or_else(|| "toolforge@localhost".to_owned()),
            job_nat: args.job_nat || file.job_nat.unwrap_or(false),
            allow_unisolated_jobs: args.allow_unisolated_jobs
                || file.allow_unisolated_jobs.unwrap_or(false),
            proxy,
            logs,
            cert_validity: time::Duration::try_from(cert_validity)?,
            cert_renew_before: time::Duration::try_from(cert_renew_before)?,
            cert_renew_interval: duration(file.cert_renew_interval, "cert-renew-interval", "1h")?,
            job_restart_delay: duration(file.job_restart_delay, "job-restart-delay", "10s")?,
            job_restart_delay_max: duration(
                file.job_restart_delay_max,
                "job-restart-delay-max",
                "5m",
            )?,
            job_stop_grace: duration(file.job_stop_grace, "job-stop-grace", "10s")?,
            job_startup_probe_period: duration(
                file.job_startup_probe_period,
                "job-startup-probe-period",
                "1s",
            )?,
            job_startup_probe_failures: match file.job_startup_probe_failures {
                Some(0) => bail!("job-startup-probe-failures must be at least 1"),
                Some(failures) => failures,
                None => 120,
            },
            job_liveness_probe_period: duration(
                file.job_liveness_probe_period,
                "job-liveness-probe-period",
                "10s",
            )?,
            mail_compose_period: duration(file.mail_compose_period, "mail-compose-period", "400s")?,
            mail_max_per_period: match file.mail_max_per_period {
                Some(0) => bail!("mail-max-per-period must be at least 1"),
                Some(max) => max,
                None => 10,
            },
            scheduled_deletion_interval: duration(
                file.scheduled_deletion_interval,
                "scheduled-deletion-interval",
                "10m",
            )?,
            scheduled_deletion_clock_offset: match &args.scheduled_deletion_clock_offset {
                Some(text) => {
                    time::Duration::try_from(parse_duration(text).with_context(|| {
                        format!("invalid --scheduled-deletion-clock-offset '{text}'")
                    })?)?
                }
                None => time::Duration::ZERO,
            },
        })
    }
}

/// Parses durations such as `30s`, `15m`, `1h`, `7d`.
pub fn parse_duration(text: &str) -> anyhow::Result<std::time::Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .with_context(|| format!("'{text}' is not a number followed by s, m, h or d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => bail!("'{text}' needs a unit: s, m, h or d (e.g. 7d)"),
    };
    if number == 0 {
        bail!("'{text}' must be longer than zero");
    }
    Ok(std::time::Duration::from_secs(number.saturating_mul(secs)))
}

/// The `logs-*` settings over [`jobs_engine::logs::LogsConfig`]'s defaults.
fn logs_config(
    retention_size: Option<String>,
    retention_age: Option<String>,
    rate: Option<u32>,
    burst: Option<u32>,
    sweep_interval: Option<String>,
) -> anyhow::Result<jobs_engine::logs::LogsConfig> {
    let defaults = jobs_engine::logs::LogsConfig::default();
    let duration = |value: Option<String>, name: &str, default: std::time::Duration| {
        value.map_or(Ok(default), |text| {
            parse_duration(&text)
                .with_context(|| format!("invalid {name} '{text}' in the config file"))
        })
    };
    let at_least_one = |value: Option<u32>, name: &str, default: u32| match value {
        Some(0) => bail!("{name} must be at least 1"),
        Some(value) => Ok(value),
        None => Ok(default),
    };
    Ok(jobs_engine::logs::LogsConfig {
        retention_size: match retention_size {
            Some(text) => parse_size(&text).with_context(|| {
                format!("invalid logs-retention-size '{text}' in the config file")
            })?,
            None => defaults.retention_size,
        },
        retention_age: duration(retention_age, "logs-retention-age", defaults.retention_age)?,
        lines_per_second: at_least_one(rate, "logs-rate", defaults.lines_per_second)?,
        burst: at_least_one(burst, "logs-burst", defaults.burst)?,
        sweep_interval: duration(
            sweep_interval,
            "logs-sweep-interval",
            defaults.sweep_interval,
        )?,
    })
}

/// Parses sizes such as `1048576`, `512Ki`, `256Mi`, `1Gi` (also `KiB`, `MiB`, `GiB`).
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().with_context(|| {
        format!("'{text}' is not a number of bytes, optionally followed by Ki, Mi or Gi")
    })?;
    let factor: u64 = match unit {
        "" | "B" => 1,
        "Ki" | "KiB" => 1 << 10,
        "Mi" | "MiB" => 1 << 20,
        "Gi" | "GiB" => 1 << 30,
        _ => bail!("'{text}' has an unknown unit: use Ki, Mi or Gi (e.g. 256Mi)"),
    };
    let bytes = number.saturating_mul(factor);
    if bytes < 4096 {
        bail!("'{text}' is too small: at least 4Ki");
    }
    Ok(bytes)
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("while reading the config file {}", path.display()))?;
    toml::from_str(&text)
        .with_context(|| format!("while parsing the config file {}", path.display()))
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("while resolving {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("7d").unwrap().as_secs(), 7 * 86400);
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert!(parse_duration("7").is_err());
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile_dir();
        let file = dir.join("config.toml");
        std::fs::write(
            &file,
            "public-domain = \"file.example\"\nweb-addr = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        let config = Config::load(ServeArgs {
            config: Some(file),
            public_domain: Some("flag.example".to_owned()),
            data_dir: Some(dir.clone()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(config.public_domain, "flag.example");
        assert_eq!(config.web_addr.port(), 1);
        assert_eq!(config.api_addr.port(), 30003);
        assert_eq!(config.homes_dir, dir.join("project"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused() {
        let dir = tempfile_dir();
        let file = dir.join("config.toml");
        std::fs::write(&file, "no-such-key = 1\n").unwrap();
        let err = Config::load(ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("no-such-key"), "{err:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn logs_settings_come_from_the_file_and_bad_ones_are_named() {
        let dir = tempfile_dir();
        let file = dir.join("config.toml");
        std::fs::write(
            &file,
            "logs-retention-size = \"2Mi\"\nlogs-retention-age = \"1h\"\nlogs-rate = 50\n",
        )
        .unwrap();
        let load = || {
            Config::load(ServeArgs {
                config: Some(file.clone()),
                data_dir: Some(dir.clone()),
                ..ServeArgs::default()
            })
        };
        let logs = load().unwrap().logs;
        assert_eq!(logs.retention_size, 2 << 20);
        assert_eq!(logs.retention_age.as_secs(), 3600);
        assert_eq!(logs.lines_per_second, 50);
        assert_eq!(logs.burst, jobs_engine::logs::LogsConfig::default().burst);
        std::fs::write(&file, "logs-retention-size = \"2MB\"\n").unwrap();
        let err = format!("{:#}", load().unwrap_err());
        assert!(err.contains("invalid logs-retention-size '2MB'"), "{err}");
        std::fs::write(&file, "logs-rate = 0\n").unwrap();
        assert_eq!(
            format!("{:#}", load().unwrap_err()),
            "logs-rate must be at least 1"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn proxy_settings_come_from_flags_or_the_file_and_bad_ones_are_named() {
        let dir = tempfile_dir();
        let file = dir.join("config.toml");
        std::fs::write(
            &file,
            "proxy-upstream-timeout = \"5s\"\nproxy-max-body = \"1Mi\"\nproxy-max-connections-per-tool = 7\n",
        )
        .unwrap();
        let load = |args: ServeArgs| {
            Config::load(ServeArgs {
                config: Some(file.clone()),
                data_dir: Some(dir.clone()),
                ..args
            })
        };
        let proxy = load(ServeArgs::default()).unwrap().proxy;
        assert_eq!(proxy.upstream_timeout.as_secs(), 5);
        assert_eq!(proxy.max_body, 1 << 20);
        assert_eq!(proxy.max_connections_per_tool, 7);
        assert!(proxy.tls.is_none());
        let proxy = load(ServeArgs {
            proxy_max_connections_per_tool: Some(9),
            proxy_tls_cert: Some(PathBuf::from("/c.pem")),
            proxy_tls_key: Some(PathBuf::from("/k.pem")),
            ..ServeArgs::default()
        })
        .unwrap()
        .proxy;
        assert_eq!(proxy.max_connections_per_tool, 9);
        assert_eq!(
            proxy.tls,
            Some((PathBuf::from("/c.pem"), PathBuf::from("/k.pem")))
        );
        let err = load(ServeArgs {
            proxy_tls_cert: Some(PathBuf::from("/c.pem")),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "--proxy-tls-cert and --proxy-tls-key go together: give both or neither"
        );
        let err = load(ServeArgs {
            proxy_max_body: Some("lots".to_owned()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(
            format!("{err:#}").starts_with("invalid --proxy-max-body 'lots'"),
            "{err:#}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_dashboard_url_needs_a_scheme_and_loses_its_trailing_slash() {
        let config = Config::load(ServeArgs {
            dashboard_url: Some("https://toolsadmin.example.org/".to_owned()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(
            config.dashboard_url.as_deref(),
            Some("https://toolsadmin.example.org")
        );
        let err = Config::load(ServeArgs {
            dashboard_url: Some("toolsadmin.example.org".to_owned()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "invalid --dashboard-url 'toolsadmin.example.org': it must start with https:// or http://"
        );
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("toolforged-config-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
