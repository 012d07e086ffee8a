//! The front proxy's benchmark: requests/s and p50/p99 latency of our proxy and of
//! Debian's nginx configured as a reverse proxy to the same upstream (a small Rust HTTP
//! server started here), with and without client keep-alive, from an in-bench load
//! generator; the upstream alone is measured as the baseline. Our proxy runs on a tokio
//! runtime of its own with two worker threads, as nginx runs two worker processes.
//! Prints a table.
//!
//! `cargo bench -p proxy --bench proxy`; `PROXY_BENCH_SECS` (default 3) is the length of
//! each run, `PROXY_BENCH_CONNECTIONS` (default 32) the concurrent client connections.
//! When nginx is missing it is installed with apt-get if we are root; otherwise its rows
//! say why they are missing. Asserts nothing.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use proxy::{BoxFuture, Directory, DirectoryError, Proxy, ProxyConfig, ToolInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const HOST: &str = "bench.localhost";

fn main() {
    let secs: u64 = env_number("PROXY_BENCH_SECS", 3);
    let connections: usize = env_number("PROXY_BENCH_CONNECTIONS", 32);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(Duration::from_secs(secs), connections));
}

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

struct Row {
    target: &'static str,
    keep_alive: bool,
    result: Result<Measurement, String>,
}

struct Measurement {
    requests_per_second: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
}

async fn run(duration: Duration, connections: usize) {
    let upstream = start_upstream().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ours = start_our_proxy(upstream, dir.path()).await;
    let nginx = start_nginx(upstream, dir.path()).await;
    println!(
        "proxy benchmark: {connections} connections, {} s per run, GET / of 13 bytes, 2 cores shared by load generator, proxy and upstream",
        duration.as_secs()
    );
    let mut rows = Vec::new();
    for keep_alive in [true, false] {
        let targets: [(&'static str, Result<SocketAddr, String>); 3] = [
            ("upstream alone", Ok(upstream)),
            ("toolforge proxy", Ok(ours)),
            (
                "nginx",
                nginx.as_ref().map(|nginx| nginx.addr).map_err(Clone::clone),
            ),
        ];
        for (target, addr) in targets {
            let result = match addr {
                Ok(addr) => Ok(load(addr, keep_alive, connections, duration).await),
                Err(reason) => Err(reason),
            };
            rows.push(Row {
                target,
                keep_alive,
                result,
            });
        }
    }
    println!();
    println!(
        "{:<16} {:<10} {:>12} {:>9} {:>9} {:>7}",
        "target", "keep-alive", "requests/s", "p50 ms", "p99 ms", "errors"
    );
    for row in &rows {
        let keep_alive = if row.keep_alive { "yes" } else { "no" };
        match &row.result {
            Ok(m) => println!(
                "{:<16} {:<10} {:>12.0} {:>9.3} {:>9.3} {:>7}",
                row.target,
                keep_alive,
                m.requests_per_second,
                m.p50.as_secs_f64() * 1000.0,
                m.p99.as_secs_f64() * 1000.0,
                m.errors
            ),
            Err(reason) => println!("{:<16} {:<10} missing: {reason}", row.target, keep_alive),
        }
    }
    if let Ok(mut nginx) = nginx {
        let _ = nginx.child.kill();
        let _ = nginx.child.wait();
    }
}

/// The upstream: answers every request with 13 bytes.
async fn start_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                        b"hello, world\n",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

struct OneTool(SocketAddr);

impl Directory for OneTool {
    fn upstreams<'a>(&'a self, tool: &'a str) -> BoxFuture<'a, Vec<SocketAddr>> {
        let addrs = if tool == "bench" {
            vec![self.0]
        } else {
            Vec::new()
        };
        Box::pin(async move { addrs })
    }

    fn tool<'a>(
        &'a self,
        _tool: &'a str,
    ) -> BoxFuture<'a, Result<Option<ToolInfo>, DirectoryError>> {
        Box::pin(async { Ok(None) })
    }

    fn tool_names(&self) -> BoxFuture<'_, Result<Vec<String>, DirectoryError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Our proxy as the daemon runs it: with its access log, on a runtime of its own with
/// two worker threads (as nginx gets two worker processes), so that both proxies get
/// the same share of the CPUs next to the load generator and the upstream.
async fn start_our_proxy(upstream: SocketAddr, dir: &Path) -> SocketAddr {
    let dir = dir.to_owned();
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("our-proxy")
            .enable_all()
            .build()
            .expect("the proxy's tokio runtime");
        runtime.block_on(async move {
            let tracker = TaskTracker::new();
            let cancel = CancellationToken::new();
            let log = proxy::AccessLog::start(
                &dir.join("ours-logs"),
                proxy::access_log::Rotation::default(),
                &tracker,
                cancel.clone(),
            )
            .expect("the access log");
            let proxy = Proxy::new(
                ProxyConfig::new("localhost"),
                Arc::new(OneTool(upstream)),
                Some(log),
                tracker.clone(),
                cancel.clone(),
            );
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let _ = addr_tx.send(listener.local_addr().expect("address"));
            // Serves until the benchmark's process exits.
            proxy::serve(proxy, listener, None, cancel, tracker).await;
        });
    });
    addr_rx.await.expect("the proxy's address")
}

struct Nginx {
    addr: SocketAddr,
    child: Child,
}

/// Debian's nginx with 2 workers, upstream keep-alive and an access log, as a reverse
/// proxy to `upstream`.
async fn start_nginx(upstream: SocketAddr, dir: &Path) -> Result<Nginx, String> {
    let binary = match find_nginx() {
        Some(binary) => binary,
        None => install_nginx()?,
    };
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|err| err.to_string())?;
        listener.local_addr().map_err(|err| err.to_string())?.port()
    };
    let prefix = dir.join("nginx");
    std::fs::create_dir_all(prefix.join("logs")).map_err(|err| err.to_string())?;
    let user = if test_support::skip::is_root() {
        "user root;\n"
    } else {
        ""
    };
    let conf = format!(
        "{user}worker_processes 2;\npid {p}/nginx.pid;\nerror_log {p}/logs/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log {p}/logs/access.log;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n\
         fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
         keepalive_requests 1000000;\n\
         upstream tool {{ server {upstream}; keepalive 64; }}\n\
         server {{\n    listen 127.0.0.1:{port};\n    server_name {HOST};\n\
         location / {{\n      proxy_pass http://tool;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n\
         proxy_set_header Host $host;\n      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n      proxy_set_header X-Forwarded-Proto $scheme;\n    }}\n  }}\n}}\n",
        p = prefix.display()
    );
    let conf_path = prefix.join("nginx.conf");
    std::fs::write(&conf_path, conf).map_err(|err| err.to_string())?;
    let child = Command::new(&binary)
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&conf_path)
        .arg("-g")
        .arg("daemon off;")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", binary.display()))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            return Err("nginx did not start listening within 10 s".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Nginx { addr, child })
}

fn find_nginx() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

fn install_nginx() -> Result<PathBuf, String> {
    if !test_support::skip::is_root() {
        return Err(
            "nginx is not installed and installing it needs root (apt-get install nginx-light)"
                .to_owned(),
        );
    }
    eprintln!("installing nginx with apt-get…");
    for package in ["nginx-light", "nginx"] {
        let status = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status();
        if status.is_ok_and(|status| status.success())
            && let Some(binary) = find_nginx()
        {
            return Ok(binary);
        }
    }
    Err("apt-get could not install nginx-light or nginx".to_owned())
}

/// `connections` clients sending GETs for `duration`; over one kept-alive connection
/// each, or a new connection per request (`Connection: close`).
async fn load(
    addr: SocketAddr,
    keep_alive: bool,
    connections: usize,
    duration: Duration,
) -> Measurement {
    let start = Instant::now();
    let deadline = start + duration;
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..connections {
        clients.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            if keep_alive {
                let Ok(mut sender) = connect(addr).await else {
                    return (latencies, 1);
                };
                while Instant::now() < deadline {
                    let begin = Instant::now();
                    let ok = async {
                        sender.ready().await.ok()?;
                        let req = Request::get("/")
                            .header("host", HOST)
                            .body(Full::new(Bytes::new()))
                            .ok()?;
                        let response = sender.send_request(req).await.ok()?;
                        let ok = response.status().is_success();
                        response.into_body().collect().await.ok()?;
                        ok.then_some(())
                    }
                    .await;
                    match ok {
                        Some(()) => latencies.push(begin.elapsed()),
                        None => {
                            errors += 1;
                            match connect(addr).await {
                                Ok(new) => sender = new,
                                Err(()) => return (latencies, errors),
                            }
                        }
                    }
                }
            } else {
                let request =
                    format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
                let mut buf = Vec::with_capacity(1024);
                while Instant::now() < deadline {
                    let begin = Instant::now();
                    let ok = async {
                        let mut tcp = TcpStream::connect(addr).await.ok()?;
                        tcp.set_nodelay(true).ok()?;
                        tcp.write_all(request.as_bytes()).await.ok()?;
                        buf.clear();
                        tcp.read_to_end(&mut buf).await.ok()?;
                        buf.starts_with(b"HTTP/1.1 200").then_some(())
                    }
                    .await;
                    match ok {
                        Some(()) => latencies.push(begin.elapsed()),
                        None => errors += 1,
                    }
                }
            }
            (latencies, errors)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(res) = clients.join_next().await {
        if let Ok((mut client, client_errors)) = res {
            latencies.append(&mut client);
            errors += client_errors;
        }
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        if latencies.is_empty() {
            return Duration::ZERO;
        }
        latencies[((latencies.len() - 1) as f64 * p).round() as usize]
    };
    Measurement {
        requests_per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(0.5),
        p99: percentile(0.99),
        errors,
    }
}

async fn connect(
    addr: SocketAddr,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, ()> {
    let tcp = TcpStream::connect(addr).await.map_err(|_| ())?;
    tcp.set_nodelay(true).map_err(|_| ())?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|_| ())?;
    tokio::spawn(conn);
    Ok(sender)
}
