//! `toolforged serve`: bootstraps the data directory, then runs every listener and
//! background worker until SIGTERM or SIGINT.
//!
//! Start order: directories, CA, store, listeners bound, server certificate, admin
//! account, tool homes synced, admin socket, then `run/addresses.json` (written
//! atomically once everything accepts connections). Shutdown cancels one token that
//! every task watches, drains them with a deadline and removes the run files.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use accounts::{Accounts, AccountsConfig, SystemClock};
use anyhow::Context;
use pki::CertificateAuthority;
use runtime::local::{LocalRuntime, LocalRuntimeConfig};
use runtime::{Isolation, Runtime};
use store::Store;
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::{admin_server, web};

/// Lifetime of the CA certificate.
const CA_VALIDITY: time::Duration = time::Duration::days(3650);
/// Lifetime of the gateway's server certificate; it is reissued at start when less
/// than [`SERVER_CERT_MIN_LEFT`] remains or its names changed.
const SERVER_CERT_VALIDITY: time::Duration = time::Duration::days(397);
const SERVER_CERT_MIN_LEFT: time::Duration = time::Duration::days(30);
/// How long shutdown waits for tasks to finish.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);
/// The meta key recording that the admin account was made.
const ADMIN_BOOTSTRAPPED: &str = "admin-bootstrapped";

/// The paths of the data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn pki(&self) -> PathBuf {
        self.root.join("pki")
    }
    pub fn run(&self) -> PathBuf {
        self.root.join("run")
    }
    pub fn admin_socket(&self) -> PathBuf {
        self.run().join("admin.sock")
    }
    pub fn addresses(&self) -> PathBuf {
        self.run().join("addresses.json")
    }
    pub fn database(&self) -> PathBuf {
        self.root.join("toolforge.sqlite")
    }
}

/// Runs the platform until a signal asks it to stop.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let data = DataDir {
        root: config.data_dir.clone(),
    };
    let is_root = nix::unistd::geteuid().is_root();
    prepare_dirs(&data, &config.homes_dir)?;
    let ca = Arc::new(load_or_create_ca(&data.pki())?);
    let store = Store::open(&data.database())
        .await
        .with_context(|| format!("while opening the store at {}", data.database().display()))?;
    restrict(&data.database(), 0o600)?;
    let secrets = Arc::new(
        secrets::Secrets::open(
            &store,
            &data.root.join("secrets").join("keys"),
            secrets::SecretsConfig::default(),
        )
        .await
        .context("while opening the envvars' encryption keys")?,
    );

    let (runtime, images) = start_runtime(&config, &data).await?;
    let job_network_host = runtime.job_network_host();

    let api_listener = bind(config.api_addr, "--api-addr").await?;
    let web_listener = bind(config.web_addr, "--web-addr").await?;
    let proxy_listener = bind(config.proxy_addr, "--proxy-addr").await?;
    let api_addr = api_listener.local_addr()?;
    let web_addr = web_listener.local_addr()?;
    let proxy_addr = proxy_listener.local_addr()?;
    let public_api_url = config
        .public_api_url
        .clone()
        .unwrap_or_else(|| default_public_api_url(api_addr));

    // Jobs reach the API at the job network's host address (design.md, "Inside a job"),
    // so the gateway listens there too, on the same port, and its certificate names it.
    let job_api_listener = match job_network_host {
        Some(host) => {
            let addr = SocketAddr::from((host, api_addr.port()));
            match TcpListener::bind(addr).await {
                Ok(listener) => Some(listener),
                Err(err) => {
                    tracing::warn!(%addr, error = %err, "cannot listen on the job network; jobs will not reach the API");
                    None
                }
            }
        }
        None => None,
    };
    let extra_names: Vec<String> = job_network_host.iter().map(ToString::to_string).collect();
    let (server_cert, server_key) =
        server_certificate(&ca, &data.pki(), &public_api_url, &extra_names)?;
    let tls = api_server::tls::server_config(&server_cert, &server_key)
        .context("while configuring TLS for the API")?;

    let accounts = Arc::new(Accounts::new(
        store.clone(),
        ca.clone(),
        AccountsConfig {
            data_dir: data.root.clone(),
            homes_dir: config.homes_dir.clone(),
            public_api_url: public_api_url.clone(),
            cert_validity: config.cert_validity,
            renew_before: config.cert_renew_before,
            set_ownership: is_root,
        },
        Arc::new(SystemClock),
    ));
    let admin_password = bootstrap_admin(&accounts).await?;
    let (changed, failed) = accounts.sync_tool_homes().await?;
    if !changed.is_empty() {
        tracing::info!(tools = changed.len(), url = %public_api_url, "pointed tool homes at the API URL");
    }
    for (tool, reason) in failed {
        tracing::warn!(%tool, %reason, "could not update the tool home's API URL");
    }

    let admin_listener = bind_admin_socket(&data.admin_socket())?;

    let facts = api_server::PlatformFacts {
        isolation: runtime.isolation().as_str().to_owned(),
        limits: runtime.limits_enforced(),
        mail: config.smtp_url.is_some(),
    };
    match &config.smtp_url {
        Some(url) => {
            tracing::info!(relay = %mail::redacted_url(url), from = %config.mail_from, "mail goes through the SMTP relay")
        }
        None => tracing::info!("no --smtp-url: no mail will be sent"),
    }
    let state = api_server::AppState::new(accounts.clone(), facts)
        .with_built_services(&["jobs", "envvars", "logs"]);

    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    // Jobs reach the API on the job network when they have one, else where clients do.
    let api_url_for_jobs = match job_network_host {
        Some(host) => format!("https://{host}:{}", api_addr.port()),
        None => public_api_url.clone(),
    };
    let engine = jobs_engine::JobsEngine::new(
        store.clone(),
        runtime.clone() as Arc<dyn runtime::Runtime>,
        jobs_engine::EngineConfig {
            backoff_base: config.job_restart_delay,
            backoff_max: config.job_restart_delay_max,
            stop_grace: config.job_stop_grace,
            probes: jobs_engine::health::ProbeTiming {
                startup_period: config.job_startup_probe_period,
                startup_failures: config.job_startup_probe_failures,
                liveness_period: config.job_liveness_probe_period,
                ..jobs_engine::health::ProbeTiming::default()
            },
            ..jobs_engine::EngineConfig::new(
                config.homes_dir.clone(),
                data.root.join("logs"),
                api_url_for_jobs,
            )
        },
        Some(Arc::new(SecretsEnv(secrets.clone())) as Arc<dyn jobs_engine::EnvSource>),
        cancel.clone(),
        tracker.clone(),
    );
    let mailer = if let Some(smtp_url) = &config.smtp_url {
        let mailer = mail::Mailer::new(
            store.clone(),
            mail::MailConfig {
                compose_period: config.mail_compose_period,
                max_mails_per_period: config.mail_max_per_period,
                ..mail::MailConfig::new(smtp_url.clone(), config.mail_from.clone())
            },
        )
        .context("while setting up job e-mails")?;
        mailer.start(&tracker, cancel.clone());
        engine.set_run_observer(Arc::new(MailObserver(mailer.clone())));
        Some(mailer)
    } else {
        None
    };
    // Captured job output: rate limit and retention from the config, swept by one task.
    let logs = engine.logs().clone();
    logs.configure(config.logs);
    tracker.spawn(jobs_engine::logs::sweep(logs.clone(), cancel.clone()));
    if let Err(err) = engine.recover().await {
        tracing::error!(error = %format!("{err:#}"), "recovering jobs after the restart failed");
    }
    // Notified after every ban change (ban-ip, unban-ip, the dashboard's bans); the front
    // proxy reloads its ban list when it fires.
    let bans_changed = Arc::new(tokio::sync::Notify::new());
    let admin_ops = Arc::new(admin_ops::AdminOps::new(
        accounts.clone(),
        engine.clone(),
        bans_changed.clone(),
    ));
    let jobs_service = Arc::new(api_server::jobs::JobsService {
        engine: engine.clone(),
        images,
        schedule_actual: Box::new(|schedule, tool, job| {
            jobs::schedule::Schedule::parse(tool, job, schedule)
                .map(|parsed| parsed.schedule_actual().to_owned())
                .map_err(|err| err.to_string())
        }),
        tool_url: {
            let domain = config.public_domain.clone();
            Box::new(move |tool| format!("http://{tool}.{domain}:{}/", proxy_addr.port()))
        },
    });
    let api_router = api_server::router_with_services(
        state.clone(),
        api_server::envvars::service(secrets.clone())
            .merge(api_server::tool_scoped_service(
                "jobs",
                api_server::jobs::routes(jobs_service),
            ))
            .merge(api_server::logs::service(logs)),
    );
    if let Some(listener) = job_api_listener {
        tracker.spawn(api_server::listener::serve_tls(
            listener,
            tls.clone(),
            api_router.clone(),
            cancel.clone(),
            tracker.clone(),
        ));
    }
    tracker.spawn(api_server::listener::serve_tls(
        api_listener,
        tls,
        api_router,
        cancel.clone(),
        tracker.clone(),
    ));
    let dashboard_url = config
        .dashboard_url
        .clone()
        .unwrap_or_else(|| default_dashboard_url(web_addr));
    let mut dashboard_state = dashboard::DashboardState::new(
        accounts.clone(),
        dashboard::DashboardConfig::new(
            dashboard_url.clone(),
            config.public_domain.clone(),
            proxy_addr.port(),
        ),
    )
    .with_tool_services(dashboard::ToolServices {
        engine: engine.clone(),
        secrets: secrets.clone(),
        logs: engine.logs().clone(),
    })
    .with_admin_ops(admin_ops.clone());
    if let Some(mailer) = &mailer {
        dashboard_state = dashboard_state.with_mailer(mailer.clone());
    }
    tracker.spawn(web::serve(
        web_listener,
        dashboard::router(dashboard_state),
        cancel.clone(),
    ));
    crate::front_proxy::FrontProxy {
        settings: &config.proxy,
        public_domain: &config.public_domain,
        data_dir: &data.root,
        dashboard_url: config
            .dashboard_url
            .clone()
            .unwrap_or_else(|| default_dashboard_url(web_addr)),
        store: store.clone(),
        engine: engine.clone(),
        bans_changed: bans_changed.clone(),
    }
    .start(proxy_listener, &tracker, cancel.clone())
    .await?;
    // Disabled tools are archived and deleted 40 days later; the hidden
    // --scheduled-deletion-clock-offset lets tests act "40 days later" now.
    let deletion_clock: Arc<dyn accounts::Clock> = Arc::new(admin_ops::OffsetClock {
        base: Arc::new(SystemClock),
        offset: config.scheduled_deletion_clock_offset,
    });
    // Once before the daemon reports ready, so what is overdue goes first.
    admin_ops::delete_due_tools_logged(&admin_ops, deletion_clock.now()).await;
    tracker.spawn(admin_ops::deletion_worker(
        admin_ops.clone(),
        deletion_clock,
        config.scheduled_deletion_interval,
        cancel.clone(),
    ));
    tracker.spawn(admin_server::serve(
        admin_listener,
        accounts.clone(),
        secrets.clone(),
        admin_ops.clone(),
        cancel.clone(),
        tracker.clone(),
    ));
    tracker.spawn(renewal_worker(
        accounts.clone(),
        config.cert_renew_interval,
        cancel.clone(),
    ));

    let addresses = serde_json::json!({
        "api": api_addr.to_string(),
        "web": web_addr.to_string(),
        "proxy": proxy_addr.to_string(),
    });
    write_atomic_json(&data.addresses(), &addresses)?;

    if let Some(password) = admin_password {
        print_first_start(
            &password,
            &public_api_url,
            &dashboard_url,
            proxy_addr,
            &config,
        );
    }
    tracing::info!(api = %api_addr, web = %web_addr, proxy = %proxy_addr, data_dir = %data.root.display(), "toolforged is ready");

    wait_for_signal().await?;
    tracing::info!("shutting down");
    cancel.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some tasks did not finish within {SHUTDOWN_DEADLINE:?}");
    }
    runtime.shutdown().await;
    let _ = std::fs::remove_file(data.addresses());
    let _ = std::fs::remove_file(data.admin_socket());
    store.close().await;
    Ok(())
}

/// The envvars service as the jobs engine's source of job environments.
struct SecretsEnv(Arc<secrets::Secrets>);

impl jobs_engine::EnvSource for SecretsEnv {
    fn env_for<'a>(&'a self, tool: &'a str) -> jobs_engine::EnvFuture<'a> {
        Box::pin(async move {
            self.0
                .job_environment(tool)
                .await
                .map_err(|err| err.to_string())
        })
    }
}

/// Job e-mails as the jobs engine's observer of runs.
struct MailObserver(Arc<mail::Mailer>);

impl jobs_engine::RunObserver for MailObserver {
    fn run_event<'a>(
        &'a self,
        event: jobs_engine::RunEvent<'a>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let spec = event.spec;
            let job_type = match spec.kind {
                jobs::spec::JobKind::OneOff => "one-off",
                jobs::spec::JobKind::Scheduled { .. } => "scheduled",
                jobs::spec::JobKind::Continuous { .. } => "continuous",
            };
            let job_event = mail::JobEvent {
                tool: event.tool,
                job: &spec.name,
                job_type,
                emails: spec.emails.as_str(),
                replica: event.replica,
                outcome: event.end.map(|end| end.outcome),
                exit_code: event.end.and_then(|end| end.exit_code),
                signal: event.end.and_then(|end| end.signal),
                message: event.end.and_then(|end| end.message),
                at: event
                    .end
                    .map_or_else(time::OffsetDateTime::now_utc, |end| end.at),
            };
            if let Err(err) = self.0.record(&job_event).await {
                tracing::error!(tool = %event.tool, job = %spec.name, error = %format!("{:#}", anyhow::Error::from(err)), "recording a job e-mail event failed");
            }
        })
    }
}

/// Probes what isolation this machine allows and says so when it is less than full.
async fn start_runtime(
    config: &Config,
    data: &DataDir,
) -> anyhow::Result<(Arc<LocalRuntime>, Arc<runtime::images::ImageCatalog>)> {
    let catalog_path = data.root.join("images.yaml");
    let images =
        tokio::task::spawn_blocking(move || runtime::images::ImageCatalog::load(&catalog_path))
            .await
            .context("while loading the image catalog")?
            .context("while loading the image catalog")?;
    let runtime = LocalRuntime::new(LocalRuntimeConfig {
        hidden_paths: vec![data.root.clone()],
        homes_dir: config.homes_dir.clone(),
        images: images.clone(),
        allow_unisolated: config.allow_unisolated_jobs,
        job_nat: config.job_nat,
        cgroup_parent: cgroup_parent(&data.root),
        ..LocalRuntimeConfig::default()
    })
    .await
    .context("while setting up the local runtime")?;
    let isolation = runtime.isolation();
    match isolation {
        Isolation::Full => tracing::info!(
            limits = runtime.limits_enforced(),
            cgroups = runtime.cgroup_version().unwrap_or("none"),
            "jobs run fully isolated"
        ),
        Isolation::Partial => tracing::warn!(
            note = runtime.isolation_note().unwrap_or_default(),
            limits = runtime.limits_enforced(),
            "jobs are only partially isolated"
        ),
        Isolation::None if config.allow_unisolated_jobs => tracing::warn!(
            note = runtime.isolation_note().unwrap_or_default(),
            "jobs cannot be isolated on this machine and run unisolated (--allow-unisolated-jobs)"
        ),
        Isolation::None => tracing::warn!(
            note = runtime.isolation_note().unwrap_or_default(),
            "jobs cannot be isolated on this machine and will be refused; pass --allow-unisolated-jobs to run them anyway"
        ),
    }
    if !runtime.limits_enforced() {
        tracing::warn!("memory, cpu and pids limits are not enforced for jobs on this machine");
    }
    Ok((Arc::new(runtime), Arc::new(images)))
}

/// The cgroup directory of this daemon's workloads: one per data directory, so daemons
/// on the same machine (tests run several) never find each other's workloads.
fn cgroup_parent(data_dir: &Path) -> String {
    let digest = short_digest(data_dir.as_os_str().as_encoded_bytes());
    format!("toolforge-{digest}")
}

fn short_digest(bytes: &[u8]) -> String {
    // FNV-1a: a stable short name, not a security boundary.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", hash as u32)
}

fn print_first_start(
    password: &str,
    public_api_url: &str,
    dashboard_url: &str,
    proxy_addr: SocketAddr,
    config: &Config,
) {
    use std::io::Write;
    let data_dir = config.data_dir.display();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "Toolforge is up. An admin account was created:");
    let _ = writeln!(out, "admin password: {password}");
    let _ = writeln!(out, "It is shown only this once.");
    let _ = writeln!(out);
    let _ = writeln!(out, "Next steps:");
    let _ = writeln!(
        out,
        "  API:       {public_api_url}  (CA certificate: {data_dir}/pki/ca.crt)"
    );
    let _ = writeln!(out, "  Dashboard: {dashboard_url}/");
    let _ = writeln!(
        out,
        "  Tools:     http://<tool>.{}:{}/",
        config.public_domain,
        proxy_addr.port()
    );
    let _ = writeln!(out, "  Create a user and a tool:");
    let _ = writeln!(
        out,
        "    toolforged admin --data-dir {data_dir} user create alice --email alice@example.org"
    );
    let _ = writeln!(
        out,
        "    toolforged admin --data-dir {data_dir} tool create mytool --maintainer alice"
    );
    let _ = writeln!(out, "  Then act as the tool:");
    let _ = writeln!(
        out,
        "    HOME={}/mytool REQUESTS_CA_BUNDLE={data_dir}/pki/ca.crt toolforge jobs list",
        config.homes_dir.display()
    );
    let _ = out.flush();
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term =
        signal(SignalKind::terminate()).context("while installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("while installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

async fn renewal_worker(accounts: Arc<Accounts>, interval: Duration, cancel: CancellationToken) {
    loop {
        match accounts.renew_due().await {
            Ok(report) => {
                for name in &report.renewed {
                    tracing::info!(%name, "renewed a client certificate");
                }
                for (name, reason) in &report.failed {
                    tracing::warn!(%name, %reason, "could not renew a client certificate");
                }
            }
            Err(err) => tracing::warn!(error = %format!("{err:#}"), "certificate renewal failed"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// `http://` + the bound web address, with an unspecified address replaced by loopback.
fn default_dashboard_url(addr: SocketAddr) -> String {
    default_public_api_url(addr).replacen("https://", "http://", 1)
}

/// `https://` + the bound address, with an unspecified address replaced by loopback.
fn default_public_api_url(addr: SocketAddr) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    format!("https://{host}:{}", addr.port())
}

fn prepare_dirs(data: &DataDir, homes: &Path) -> anyhow::Result<()> {
    // 0711: tool uids must traverse the data directory to reach their homes under
    // it, but may not list it; everything secret inside has its own 0600/0700 mode.
    make_dir(&data.root, 0o711)?;
    make_dir(&data.pki(), 0o755)?;
    make_dir(&data.run(), 0o755)?;
    make_dir(&data.root.join("users"), 0o700)?;
    make_dir(&data.root.join("archive"), 0o700)?;
    make_dir(homes, 0o711)?;
    Ok(())
}

fn make_dir(path: &Path, mode: u32) -> anyhow::Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("while creating {}", path.display()))?;
    restrict(path, mode)
}

fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("while setting the mode of {}", path.display()))
}

fn load_or_create_ca(pki_dir: &Path) -> anyhow::Result<CertificateAuthority> {
    let cert_path = pki_dir.join("ca.crt");
    let key_path = pki_dir.join("ca.key");
    if cert_path.exists() || key_path.exists() {
        let cert = std::fs::read_to_string(&cert_path)
            .with_context(|| format!("while reading {}", cert_path.display()))?;
        let key = std::fs::read_to_string(&key_path)
            .with_context(|| format!("while reading {}", key_path.display()))?;
        restrict(&key_path, 0o600)?;
        return CertificateAuthority::load(&cert, &key)
            .with_context(|| format!("while loading the CA from {}", pki_dir.display()));
    }
    let ca = CertificateAuthority::create(time::OffsetDateTime::now_utc(), CA_VALIDITY)
        .context("while creating the CA")?;
    write_private(&key_path, ca.key_pem().as_bytes())?;
    accounts::files::write_atomic(&cert_path, ca.cert_pem().as_bytes(), 0o644, None)
        .with_context(|| format!("while writing {}", cert_path.display()))?;
    tracing::info!(path = %cert_path.display(), "created the platform CA");
    Ok(ca)
}

/// The gateway's certificate and key, reissued when its names changed or it nears expiry.
fn server_certificate(
    ca: &CertificateAuthority,
    pki_dir: &Path,
    public_api_url: &str,
    extra_names: &[String],
) -> anyhow::Result<(String, String)> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    for name in url_host(public_api_url)
        .into_iter()
        .chain(extra_names.iter().cloned())
    {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let cert_path = pki_dir.join("server.crt");
    let key_path = pki_dir.join("server.key");
    let names_path = pki_dir.join("server.names");
    let wanted_names = names.join("\n");
    let now = time::OffsetDateTime::now_utc();
    let reusable = (|| {
        let cert = std::fs::read_to_string(&cert_path).ok()?;
        let key = std::fs::read_to_string(&key_path).ok()?;
        let recorded = std::fs::read_to_string(&names_path).ok()?;
        let info = pki::parse_pem(&cert).ok()?;
        let current = recorded == wanted_names
            && info.not_after - now > SERVER_CERT_MIN_LEFT
            && ca.signed(&pem_der(&cert)?);
        current.then_some((cert, key))
    })();
    if let Some(pair) = reusable {
        return Ok(pair);
    }
    let issued = ca
        .issue_server(&names, now, SERVER_CERT_VALIDITY)
        .context("while issuing the gateway's server certificate")?;
    write_private(&key_path, issued.key_pem.as_bytes())?;
    accounts::files::write_atomic(&cert_path, issued.cert_pem.as_bytes(), 0o644, None)
        .with_context(|| format!("while writing {}", cert_path.display()))?;
    accounts::files::write_atomic(&names_path, wanted_names.as_bytes(), 0o644, None)
        .with_context(|| format!("while writing {}", names_path.display()))?;
    Ok((issued.cert_pem, issued.key_pem))
}

fn pem_der(pem: &str) -> Option<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|der| der.to_vec())
}

/// The host part of an `http(s)://host[:port]/…` URL, without IPv6 brackets.
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?.to_owned()
    } else {
        authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host)
            .to_owned()
    };
    (!host.is_empty()).then_some(host)
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    accounts::files::write_atomic(path, contents, 0o600, None)
        .with_context(|| format!("while writing {}", path.display()))
}

fn write_atomic_json(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_vec_pretty(value)?;
    accounts::files::write_atomic(path, &text, 0o644, None)
        .with_context(|| format!("while writing {}", path.display()))
}

async fn bind(addr: SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("while binding {flag} {addr}"))
}

fn bind_admin_socket(path: &Path) -> anyhow::Result<UnixListener> {
    // A socket left by a crash would make bind fail; nobody listens on it any more
    // unless another daemon runs on this data directory, which connecting tells us.
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another toolforged is already running on this data directory (its admin socket {} answers)",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("while removing the stale {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("while binding {}", path.display()))?;
    restrict(path, 0o600)?;
    Ok(listener)
}

/// Creates the `admin` account on first start; returns its one-time password.
async fn bootstrap_admin(accounts: &Accounts) -> anyhow::Result<Option<String>> {
    let store = accounts.store();
    if store.get_meta(ADMIN_BOOTSTRAPPED).await?.is_some() {
        return Ok(None);
    }
    let password = accounts::password::generate_password();
    if store.get_user("admin").await?.is_none() {
        accounts
            .create_user("admin", "admin@localhost.localdomain", &password, true)
            .await
            .context("while creating the admin account")?;
    } else {
        let hash = accounts::password::hash_password(&password);
        store.set_password_hash("admin", &hash).await?;
    }
    store.set_meta(ADMIN_BOOTSTRAPPED, "yes").await?;
    Ok(Some(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_daemons_find_the_cgroups_of_their_workloads_by_the_same_name() {
        for dir in ["/tmp/toolforge-test-abc", "/var/lib/toolforge", "/"] {
            assert_eq!(
                cgroup_parent(Path::new(dir)),
                test_support::daemon::cgroup_parent_of(Path::new(dir))
            );
        }
    }

    #[test]
    fn the_default_public_url_never_names_an_unspecified_address() {
        assert_eq!(
            default_public_api_url("0.0.0.0:30003".parse().unwrap()),
            "https://127.0.0.1:30003"
        );
        assert_eq!(
            default_public_api_url("[::]:1".parse().unwrap()),
            "https://127.0.0.1:1"
        );
        assert_eq!(
            default_public_api_url("127.0.0.1:5".parse().unwrap()),
            "https://127.0.0.1:5"
        );
    }

    #[test]
    fn url_hosts_are_extracted_without_port_or_brackets() {
        assert_eq!(
            url_host("https://api.example.org:30003/x").as_deref(),
            Some("api.example.org")
        );
        assert_eq!(url_host("https://[::1]:5").as_deref(), Some("::1"));
        assert_eq!(url_host("http://h").as_deref(), Some("h"));
        assert_eq!(url_host("nonsense"), None);
    }
}
