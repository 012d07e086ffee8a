//! The gateway benchmark of issue 3: requests/s and p50/p99 latency of an
//! authenticated request over keep-alive mTLS, at 1 and 50 concurrent clients, beside
//! a bare rustls hello-world server measured in the same run on the same machine.
//!
//! The gateway is built in-process the way `toolforged serve` builds it: a store, a
//! CA, a server certificate for `localhost`/`127.0.0.1`, accounts with a user and a
//! tool, this crate's TLS configuration and router, served by
//! [`api_server::listener::serve_tls`]. Each client holds one persistent connection
//! that presents the tool's client certificate (from the tool's home, as the official
//! clients read it) and sends `GET /jobs/v1/tool/mytool/jobs/`. While the jobs service
//! is not built that answers 404 from the service, which comes only after certificate
//! verification, the store lookups and authorization: the whole authenticated path.
//!
//! The hello-world server has the same certificate, the same TLS settings (it asks
//! for the client certificate too) and the same hyper connection settings, and answers
//! `200 {"hello":"world"}`; the difference between the two rows is the gateway's cost.
//! Connections are made before the clock starts, so handshakes are not measured.
//!
//! Run with `cargo bench -p api-server --bench gateway [-- --duration SECS --clients 1,50]`.
//! It prints a table and asserts nothing about timings; it exits non-zero only when
//! a server does not answer as expected, since the numbers would then mean nothing.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accounts::{Accounts, AccountsConfig, SystemClock};
use api_server::{AppState, PlatformFacts};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use pki::CertificateAuthority;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use store::Store;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Requests before this much time has passed are not counted.
const WARM_UP: Duration = Duration::from_millis(500);
/// How long each row is measured unless `--duration` says otherwise.
const DEFAULT_DURATION: Duration = Duration::from_secs(3);
/// The concurrency levels of issue 3.
const DEFAULT_CLIENTS: &[usize] = &[1, 50];
/// The tool whose certificate the clients present.
const TOOL: &str = "mytool";
/// An authenticated, authorized, tool-scoped route of the gateway.
const GATEWAY_PATH: &str = "/jobs/v1/tool/mytool/jobs/";
/// What the gateway says once the caller is admitted but the jobs service is missing.
const SERVICE_MISSING_BODY: &str = "the jobs service is not available";
/// The hello-world server's only answer.
const HELLO_BODY: &str = r#"{"hello":"world"}"#;
/// How long the servers may take to drain at the end.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

fn main() {
    let config = match BenchConfig::from_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("gateway bench: {message}");
            std::process::exit(2);
        }
    };
    let n_cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    // Servers and load generator get separate runtimes, so neither schedules the
    // other's tasks; they still share the machine's cores, as the output says.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(n_cores)
        .thread_name("bench-server")
        .enable_all()
        .build()
        .expect("the servers' tokio runtime");
    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(n_cores)
        .thread_name("bench-load")
        .enable_all()
        .build()
        .expect("the load generator's tokio runtime");

    let fixture = servers.block_on(Fixture::start());
    let targets = [fixture.gateway.clone(), fixture.hello.clone()];

    println!(
        "gateway benchmark (issue 3): one keep-alive mTLS connection per client, {} warm-up, then {} measured per row",
        seconds(WARM_UP),
        seconds(config.duration),
    );
    println!(
        "machine: {n_cores} cores; servers and load generator share them ({n_cores} tokio workers each), over loopback"
    );
    if let Ok(load_average) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "load average before the run: {} (other processes compete for the same cores)",
            load_average
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let mut expected_statuses = Vec::new();
    for target in &targets {
        let (status, description) = load.block_on(preflight(target));
        println!("{:<11}  GET {}  -> {description}", target.name, target.path);
        expected_statuses.push(status);
    }
    if expected_statuses[0] == StatusCode::NOT_FOUND {
        println!(
            "note: the jobs service is not built yet, so the gateway answers 404 from the service; that answer comes after certificate verification, the store lookups and authorization, so it exercises the whole authenticated path"
        );
    } else {
        println!(
            "note: the jobs service answered, so the gateway rows include the jobs service's own work behind the authenticated path"
        );
    }
    println!();

    let mut rows = Vec::new();
    for &n_clients in &config.clients {
        for (target, &expected_status) in targets.iter().zip(&expected_statuses) {
            rows.push(load.block_on(measure(target, expected_status, n_clients, config.duration)));
        }
    }
    print_table(&rows);

    drop(load);
    servers.block_on(fixture.stop());
}

/// What to measure, from the command line.
#[derive(Debug)]
struct BenchConfig {
    /// How long each row is measured, after the warm-up.
    duration: Duration,
    /// The concurrency levels, each measured against both servers.
    clients: Vec<usize>,
}

impl BenchConfig {
    /// Reads `--duration SECS` and `--clients 1,50` (also as `--flag=value`) and ignores
    /// anything else, such as the `--bench` that cargo passes.
    fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut config = BenchConfig {
            duration: DEFAULT_DURATION,
            clients: DEFAULT_CLIENTS.to_vec(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline_value) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (arg, None),
            };
            if flag != "--duration" && flag != "--clients" {
                continue;
            }
            let value = inline_value
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))?;
            if flag == "--duration" {
                config.duration = value
                    .parse::<f64>()
                    .ok()
                    .filter(|secs| secs.is_finite() && *secs > 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| {
                        format!("--duration must be a positive number of seconds, not '{value}'")
                    })?;
            } else {
                config.clients = value
                    .split(',')
                    .map(|part| part.trim().parse::<usize>().ok().filter(|n| *n > 0))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        format!("--clients must be a comma-separated list of positive numbers, not '{value}'")
                    })?;
            }
        }
        Ok(config)
    }
}

/// A server under load and what a correct answer from it looks like.
#[derive(Debug)]
struct Target {
    /// The table's `server` column.
    name: &'static str,
    addr: SocketAddr,
    path: &'static str,
    /// Whether an answer proves the request took the intended path (for the gateway:
    /// the caller was admitted), given its status and body.
    is_expected: fn(StatusCode, &str) -> bool,
    /// Trusts the CA and presents the tool's client certificate.
    client_tls: Arc<rustls::ClientConfig>,
}

/// Both servers, running on the servers' runtime, and what they need to stay alive.
struct Fixture {
    gateway: Arc<Target>,
    hello: Arc<Target>,
    store: Store,
    cancel: CancellationToken,
    tracker: TaskTracker,
    /// Removed on drop, after the servers stopped.
    _data_dir: tempfile::TempDir,
}

impl Fixture {
    /// Provisions a platform as `toolforged serve` does and starts both servers.
    async fn start() -> Self {
        let data_dir = tempfile::Builder::new()
            .prefix("gateway-bench-")
            .tempdir()
            .expect("a temporary data directory");
        let homes_dir = data_dir.path().join("project");
        let now = time::OffsetDateTime::now_utc();

        let store = Store::open(&data_dir.path().join("toolforge.sqlite"))
            .await
            .expect("the store opens");
        let ca = CertificateAuthority::create(now, time::Duration::days(3650))
            .expect("the CA is created");
        let gateway_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("a loopback port for the gateway");
        let hello_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("a loopback port for the hello-world server");
        let gateway_addr = gateway_listener
            .local_addr()
            .expect("the gateway's address");
        let hello_addr = hello_listener
            .local_addr()
            .expect("the hello-world server's address");

        let server_cert = ca
            .issue_server(
                &["localhost".to_owned(), "127.0.0.1".to_owned()],
                now,
                time::Duration::days(397),
            )
            .expect("the server certificate is issued");
        let server_tls =
            api_server::tls::server_config(&server_cert.cert_pem, &server_cert.key_pem)
                .expect("the gateway's TLS configuration");
        let ca_pem = ca.cert_pem().to_owned();

        let accounts = Arc::new(Accounts::new(
            store.clone(),
            Arc::new(ca),
            AccountsConfig {
                data_dir: data_dir.path().to_path_buf(),
                homes_dir,
                public_api_url: format!("https://{gateway_addr}"),
                cert_validity: time::Duration::days(30),
                renew_before: time::Duration::days(7),
                set_ownership: false,
            },
            Arc::new(SystemClock),
        ));
        accounts
            .create_user("alice", "alice@example.org", "bench-password", false)
            .await
            .expect("the user is created");
        accounts
            .create_tool(TOOL, "alice", "", "")
            .await
            .expect("the tool is created");
        let home = accounts.tool_home(TOOL);
        let client_tls = client_config(&ca_pem, &home.client_cert(), &home.client_key());

        let state = AppState::new(
            accounts,
            PlatformFacts {
                isolation: "none".into(),
                limits: false,
                mail: false,
            },
        );
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(api_server::listener::serve_tls(
            gateway_listener,
            server_tls.clone(),
            api_server::router(state),
            cancel.clone(),
            tracker.clone(),
        ));
        tracker.spawn(serve_hello(
            hello_listener,
            server_tls,
            cancel.clone(),
            tracker.clone(),
        ));

        Fixture {
            gateway: Arc::new(Target {
                name: "gateway",
                addr: gateway_addr,
                path: GATEWAY_PATH,
                is_expected: is_admitted,
                client_tls: client_tls.clone(),
            }),
            hello: Arc::new(Target {
                name: "hello-world",
                addr: hello_addr,
                path: "/",
                is_expected: |status, body| status == StatusCode::OK && body == HELLO_BODY,
                client_tls,
            }),
            store,
            cancel,
            tracker,
            _data_dir: data_dir,
        }
    }

    /// Stops both servers, drains their tasks and closes the store.
    async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_DEADLINE, self.tracker.wait())
            .await
            .is_err()
        {
            eprintln!("gateway bench: the servers did not stop within {SHUTDOWN_DEADLINE:?}");
        }
        self.store.close().await;
    }
}

/// Whether the gateway admitted the caller: the jobs service answered, or (while it is
/// not built) the gateway said so after admission. 401, 403 and "no such tool" are not.
fn is_admitted(status: StatusCode, body: &str) -> bool {
    status.is_success() || (status == StatusCode::NOT_FOUND && body.contains(SERVICE_MISSING_BODY))
}

/// The load generator's TLS: trusts the platform CA and presents the tool's certificate
/// from its home, as the official clients do.
fn client_config(ca_pem: &str, cert_path: &Path, key_path: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("the CA certificate parses");
    roots.add(ca).expect("the CA certificate is a trust anchor");
    let chain = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .expect("the tool's client certificate is readable");
    let key = PrivateKeyDer::from_pem_file(key_path).expect("the tool's client key is readable");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("rustls supports its default protocol versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("rustls accepts the tool's certificate and key");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The bare server: the gateway's TLS configuration and hyper settings (see
/// [`api_server::listener::serve_tls`]), answering `200 {"hello":"world"}` to everything.
async fn serve_hello(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let tcp = tokio::select! {
            () = cancel.cancelled() => break,
            res = listener.accept() => match res {
                Ok((tcp, _peer)) => tcp,
                Err(err) => {
                    eprintln!("gateway bench: the hello-world server could not accept: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(|_req| async {
                let mut response =
                    Response::new(Full::new(Bytes::from_static(HELLO_BODY.as_bytes())));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                Ok::<_, Infallible>(response)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30));
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = cancel.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

/// One client connection: TCP, the mTLS handshake, the HTTP/1.1 handshake. The
/// connection's driver goes into `drivers`, which owns it until the sender is dropped.
async fn connect(
    target: &Target,
    drivers: &mut JoinSet<()>,
) -> Result<(SendRequest<Empty<Bytes>>, TlsFacts), String> {
    let tcp = TcpStream::connect(target.addr)
        .await
        .map_err(|err| format!("connecting to {}: {err}", target.addr))?;
    // The client sends each request in one write and waits; Nagle would only delay it.
    tcp.set_nodelay(true)
        .map_err(|err| format!("setting TCP_NODELAY: {err}"))?;
    let connector = tokio_rustls::TlsConnector::from(target.client_tls.clone());
    let server_name = ServerName::try_from("localhost").expect("a valid server name");
    let tls = connector
        .connect(server_name, tcp)
        .await
        .map_err(|err| format!("the TLS handshake with {} failed: {err}", target.addr))?;
    let session = tls.get_ref().1;
    let facts = TlsFacts {
        version: session
            .protocol_version()
            .map_or_else(|| "?".to_owned(), |version| format!("{version:?}")),
        cipher_suite: session
            .negotiated_cipher_suite()
            .map_or_else(|| "?".to_owned(), |suite| format!("{:?}", suite.suite())),
    };
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|err| format!("the HTTP/1.1 handshake failed: {err}"))?;
    drivers.spawn(async move {
        // Ends when the sender is dropped; an error surfaces through the sender too.
        let _ = conn.await;
    });
    Ok((sender, facts))
}

/// What the handshake negotiated, for the preflight line.
struct TlsFacts {
    version: String,
    cipher_suite: String,
}

/// Sends one request to `target` on `sender` and reads the whole answer.
async fn request(
    sender: &mut SendRequest<Empty<Bytes>>,
    target: &Target,
) -> Result<(StatusCode, Bytes), hyper::Error> {
    sender.ready().await?;
    let request = Request::get(target.path)
        .header(header::HOST, format!("localhost:{}", target.addr.port()))
        .body(Empty::new())
        .expect("a well-formed request");
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Makes sure `target` answers as expected (otherwise the numbers would measure an
/// error path) and describes the answer and the connection; exits when it does not.
async fn preflight(target: &Target) -> (StatusCode, String) {
    let mut drivers = JoinSet::new();
    let outcome = async {
        let (mut sender, facts) = connect(target, &mut drivers).await?;
        let (status, body) = request(&mut sender, target)
            .await
            .map_err(|err| format!("the request failed: {err}"))?;
        let body = String::from_utf8_lossy(&body).into_owned();
        if !(target.is_expected)(status, &body) {
            return Err(format!("got {status}: {body}"));
        }
        let description = format!(
            "{status} {body} ({}, {})",
            facts.version, facts.cipher_suite
        );
        Ok((status, description))
    }
    .await;
    drivers.join_all().await;
    outcome.unwrap_or_else(|message| {
        eprintln!(
            "gateway bench: {} does not answer as expected: {message}",
            target.name
        );
        std::process::exit(1);
    })
}

/// One row of the table.
#[derive(Debug)]
struct Row {
    server: &'static str,
    n_clients: usize,
    /// Requests completed inside the measured window, each with its latency.
    latencies: Vec<Duration>,
    window: Duration,
    /// Answers with another status than the preflight's (counted over the whole run).
    n_unexpected: usize,
    /// Clients that stopped early, with the reason.
    errors: Vec<String>,
}

/// Runs `n_clients` clients against `target` for the warm-up plus `window`.
async fn measure(
    target: &Arc<Target>,
    expected_status: StatusCode,
    n_clients: usize,
    window: Duration,
) -> Row {
    let mut drivers = JoinSet::new();
    let mut senders = Vec::with_capacity(n_clients);
    for _ in 0..n_clients {
        match connect(target, &mut drivers).await {
            Ok((sender, _facts)) => senders.push(sender),
            Err(message) => {
                eprintln!("gateway bench: {}: {message}", target.name);
                std::process::exit(1);
            }
        }
    }
    let measure_from = Instant::now() + WARM_UP;
    let measure_until = measure_from + window;
    let mut clients = JoinSet::new();
    for sender in senders {
        clients.spawn(run_client(
            sender,
            target.clone(),
            expected_status,
            measure_from,
            measure_until,
        ));
    }
    let mut row = Row {
        server: target.name,
        n_clients,
        latencies: Vec::new(),
        window,
        n_unexpected: 0,
        errors: Vec::new(),
    };
    while let Some(res) = clients.join_next().await {
        let outcome = res.expect("a load client does not panic");
        row.latencies.extend(outcome.latencies);
        row.n_unexpected += outcome.n_unexpected;
        row.errors.extend(outcome.error);
    }
    // Every sender is gone with its client, so every connection closes.
    drivers.join_all().await;
    row.latencies.sort_unstable();
    row
}

/// What one client saw.
#[derive(Debug, Default)]
struct ClientOutcome {
    latencies: Vec<Duration>,
    n_unexpected: usize,
    error: Option<String>,
}

/// Sends requests back to back on one connection until `measure_until`, keeping the
/// latency of every request that completes inside the window.
async fn run_client(
    mut sender: SendRequest<Empty<Bytes>>,
    target: Arc<Target>,
    expected_status: StatusCode,
    measure_from: Instant,
    measure_until: Instant,
) -> ClientOutcome {
    let mut outcome = ClientOutcome::default();
    loop {
        let started = Instant::now();
        if started >= measure_until {
            break;
        }
        match request(&mut sender, &target).await {
            Ok((status, _body)) => {
                let finished = Instant::now();
                if status != expected_status {
                    outcome.n_unexpected += 1;
                }
                if finished >= measure_from && finished <= measure_until {
                    outcome.latencies.push(finished - started);
                }
            }
            Err(err) => {
                outcome.error = Some(err.to_string());
                break;
            }
        }
    }
    outcome
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<11} | {:>7} | {:>8} | {:>9} | {:>8} | {:>8}",
        "server", "clients", "requests", "req/s", "p50 ms", "p99 ms"
    );
    println!("{}", "-".repeat(11 + 7 + 8 + 9 + 8 + 8 + 5 * 3));
    for row in rows {
        let n_requests = row.latencies.len();
        println!(
            "{:<11} | {:>7} | {:>8} | {:>9.0} | {:>8} | {:>8}",
            row.server,
            row.n_clients,
            n_requests,
            n_requests as f64 / row.window.as_secs_f64(),
            percentile_ms(&row.latencies, 50.0),
            percentile_ms(&row.latencies, 99.0),
        );
    }
    for row in rows {
        if row.n_unexpected > 0 {
            println!(
                "warning: {} at {} clients: {} answers had an unexpected status",
                row.server, row.n_clients, row.n_unexpected
            );
        }
        for error in &row.errors {
            println!(
                "warning: {} at {} clients: a client stopped early: {error}",
                row.server, row.n_clients
            );
        }
    }
}

/// The nearest-rank percentile of sorted latencies, in milliseconds.
fn percentile_ms(sorted: &[Duration], percent: f64) -> String {
    if sorted.is_empty() {
        return "-".to_owned();
    }
    let rank = (percent / 100.0 * sorted.len() as f64).ceil() as usize;
    let latency = sorted[rank.clamp(1, sorted.len()) - 1];
    format!("{:.3}", latency.as_secs_f64() * 1000.0)
}

fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}
