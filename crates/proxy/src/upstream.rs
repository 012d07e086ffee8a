//! Connections to webservice replicas: HTTP/1.1, kept alive in a small pool per
//! replica address.
//!
//! A connection goes back to the pool only after its response body was read to the end
//! (so a long stream never holds up another request); a connection the replica closed
//! is noticed when it is taken ([`SendRequest::ready`] fails) or when sending finds it
//! closed before the request was written (hyper hands the request back), and the caller
//! then tries again. Upgraded (WebSocket) connections never return.
//! Once the proxy shuts down, the pool is emptied and refuses connections, so idle
//! connection tasks end.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_util::task::TaskTracker;

use crate::body::LimitedBody;

/// Idle connections kept per replica.
const MAX_IDLE_PER_UPSTREAM: usize = 64;
/// How long a pooled connection may take to become ready before it is given up.
const READY_TIMEOUT: Duration = Duration::from_millis(200);

/// A sender on one upstream connection.
pub type Sender = SendRequest<LimitedBody>;

/// Why no connection could be made.
#[derive(Debug)]
pub enum ConnectError {
    /// The replica refused or reset the connection, or the handshake failed.
    Failed(std::io::Error),
    /// Connecting took longer than the upstream timeout.
    TimedOut,
}

/// Idle upstream connections by replica address.
#[derive(Debug, Default)]
pub struct Pool {
    idle: Mutex<HashMap<SocketAddr, Vec<Sender>>>,
    closed: AtomicBool,
}

impl Pool {
    /// An idle, ready connection to `addr`, if the pool has one.
    pub async fn take(&self, addr: SocketAddr) -> Option<Sender> {
        loop {
            let mut sender = {
                let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                idle.get_mut(&addr)?.pop()?
            };
            if sender.is_closed() {
                continue;
            }
            match tokio::time::timeout(READY_TIMEOUT, sender.ready()).await {
                Ok(Ok(())) => return Some(sender),
                _ => continue,
            }
        }
    }

    /// Keeps `sender` for the next request to `addr`.
    pub fn put(&self, addr: SocketAddr, sender: Sender) {
        if self.closed.load(Ordering::Acquire) || sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let senders = idle.entry(addr).or_default();
        if senders.len() < MAX_IDLE_PER_UPSTREAM {
            senders.push(sender);
        }
    }

    /// Drops every idle connection and refuses new ones (at shutdown).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Opens a new HTTP/1.1 connection to `addr`, its task owned by `tracker`.
pub async fn connect(
    addr: SocketAddr,
    timeout: Duration,
    tracker: &TaskTracker,
) -> Result<Sender, ConnectError> {
    let handshake = async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(tcp))
            .await
            .map_err(std::io::Error::other)?;
        Ok::<_, std::io::Error>((sender, conn))
    };
    let (sender, conn) = match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(err)) => return Err(ConnectError::Failed(err)),
        Err(_) => return Err(ConnectError::TimedOut),
    };
    tracker.spawn(async move {
        if let Err(err) = conn.with_upgrades().await {
            tracing::debug!(%addr, error = %err, "an upstream connection ended with an error");
        }
    });
    Ok(sender)
}
