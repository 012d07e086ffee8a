//! Health checks of continuous jobs, with the original's timing: a startup probe every
//! second for up to 120 failures, then a liveness probe every 10 seconds, 3 failures in a
//! row meaning unhealthy (Kubernetes' probes as jobs-api configures them).
//!
//! An `http` check GETs the path on the replica's port, a `script` check runs the script
//! inside the replica's namespaces as the tool's user, and a job with a port but no
//! check gets a `tcp` check (a connection to the port).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How often and how patiently replicas are probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTiming {
    /// Period of the startup probe.
    pub startup_period: Duration,
    /// Failures of the startup probe before the replica is restarted.
    pub startup_failures: u32,
    /// Period of the liveness probe.
    pub liveness_period: Duration,
    /// Failures in a row of the liveness probe before the replica is restarted.
    pub liveness_failures: u32,
    /// How long one probe may take.
    pub timeout: Duration,
}

impl Default for ProbeTiming {
    fn default() -> Self {
        Self {
            startup_period: Duration::from_secs(1),
            startup_failures: 120,
            liveness_period: Duration::from_secs(10),
            liveness_failures: 3,
            timeout: Duration::from_secs(1),
        }
    }
}

/// What to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `GET path` on the replica's port; 200-399 is healthy.
    Http { endpoint: SocketAddr, path: String },
    /// A connection to the replica's port.
    Tcp { endpoint: SocketAddr },
    /// `/bin/sh -c script` in the replica's namespaces, as the tool's user; exit 0 is healthy.
    Script {
        pid: u32,
        uid: u32,
        gid: u32,
        script: String,
    },
}

impl Probe {
    /// Probes once; `Err` says why it failed.
    pub async fn check(&self, timeout: Duration) -> Result<(), String> {
        match tokio::time::timeout(timeout, self.check_inner()).await {
            Ok(res) => res,
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }

    async fn check_inner(&self) -> Result<(), String> {
        match self {
            Probe::Tcp { endpoint } => tokio::net::TcpStream::connect(endpoint)
                .await
                .map(drop)
                .map_err(|err| format!("connecting to {endpoint}: {err}")),
            Probe::Http { endpoint, path } => {
                let mut stream = tokio::net::TcpStream::connect(endpoint)
                    .await
                    .map_err(|err| format!("connecting to {endpoint}: {err}"))?;
                let request = format!(
                    "GET {path} HTTP/1.1\r\nHost: {endpoint}\r\nUser-Agent: toolforge-probe\r\nConnection: close\r\n\r\n"
                );
                stream
                    .write_all(request.as_bytes())
                    .await
                    .map_err(|err| format!("sending the request: {err}"))?;
                let mut head = [0u8; 64];
                let read = stream
                    .read(&mut head)
                    .await
                    .map_err(|err| format!("reading the answer: {err}"))?;
                let line = String::from_utf8_lossy(&head[..read]);
                let status: u16 = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|code| code.parse().ok())
                    .ok_or_else(|| format!("not an HTTP answer: {line:?}"))?;
                if (200..400).contains(&status) {
                    Ok(())
                } else {
                    Err(format!("GET {path} answered {status}"))
                }
            }
            Probe::Script {
                pid,
                uid,
                gid,
                script,
            } => {
                let status = tokio::process::Command::new("nsenter")
                    .arg(format!("--target={pid}"))
                    .args(["--mount", "--uts", "--ipc", "--net", "--pid"])
                    .arg(format!("--setuid={uid}"))
                    .arg(format!("--setgid={gid}"))
                    .args(["--", "/bin/sh", "-c", script])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .status()
                    .await
                    .map_err(|err| format!("running nsenter: {err}"))?;
                if status.success() {
                    Ok(())
                } else {
                    Err(format!("the script exited with {status}"))
                }
            }
        }
    }
}

/// Probes until the replica is unhealthy (returns the reason) or `cancel` fires (`None`);
/// `on_ready` is called once, when the first probe passes.
pub async fn watch(
    probe: Probe,
    timing: ProbeTiming,
    cancel: tokio_util::sync::CancellationToken,
    on_ready: impl FnOnce() + Send,
) -> Option<String> {
    let mut failures = 0;
    // Startup: until the first success.
    loop {
        tokio::select! {
            () = cancel.cancelled() => return None,
            () = tokio::time::sleep(timing.startup_period) => {}
        }
        match probe.check(timing.timeout).await {
            Ok(()) => {
                on_ready();
                break;
            }
            Err(reason) => {
                failures += 1;
                if failures >= timing.startup_failures {
                    return Some(format!("startup probe failed {failures} times: {reason}"));
                }
            }
        }
    }
    failures = 0;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return None,
            () = tokio::time::sleep(timing.liveness_period) => {}
        }
        match probe.check(timing.timeout).await {
            Ok(()) => failures = 0,
            Err(reason) => {
                failures += 1;
                if failures >= timing.liveness_failures {
                    return Some(format!(
                        "liveness probe failed {failures} times in a row: {reason}"
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn http_and_tcp_probes_tell_healthy_from_unhealthy() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            for _ in 0..3 {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 256];
                let read = stream.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..read]).into_owned();
                let answer = if request.starts_with("GET /ok ") {
                    "HTTP/1.1 200 OK\r\n\r\n"
                } else {
                    "HTTP/1.1 500 Oops\r\n\r\n"
                };
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        let timeout = Duration::from_secs(2);
        assert_eq!(
            Probe::Http {
                endpoint,
                path: "/ok".into()
            }
            .check(timeout)
            .await,
            Ok(())
        );
        let err = Probe::Http {
            endpoint,
            path: "/bad".into(),
        }
        .check(timeout)
        .await
        .unwrap_err();
        assert!(err.contains("answered 500"), "{err}");
        assert_eq!(Probe::Tcp { endpoint }.check(timeout).await, Ok(()));
        server.await.unwrap();
        let closed = Probe::Tcp {
            endpoint: "127.0.0.1:1".parse().unwrap(),
        };
        assert!(closed.check(timeout).await.is_err());
    }

    #[tokio::test]
    async fn a_replica_that_never_starts_answering_is_unhealthy_after_its_startup_failures() {
        let timing = ProbeTiming {
            startup_period: Duration::from_millis(10),
            startup_failures: 3,
            ..ProbeTiming::default()
        };
        let probe = Probe::Tcp {
            endpoint: "127.0.0.1:1".parse().unwrap(),
        };
        let reason = watch(
            probe,
            timing,
            tokio_util::sync::CancellationToken::new(),
            || panic!("a probe that never passes made the replica ready"),
        )
        .await
        .unwrap();
        assert!(
            reason.starts_with("startup probe failed 3 times"),
            "{reason}"
        );
    }
}
