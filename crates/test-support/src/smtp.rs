//! A real SMTP server for tests: Debian's aiosmtpd, listening on 127.0.0.1, storing every
//! message it accepts in a Maildir (its `aiosmtpd.handlers.Mailbox` handler).
//!
//! [`SmtpSink::start`] picks a free port; [`SmtpSink::stop`] and [`SmtpSink::start_again`]
//! take the server away and bring it back on the same port with the same Maildir, so a
//! test can watch a client retry. `TOOLFORGE_TEST_SMTP_SINK` names the Python that has
//! aiosmtpd (`cargo xtask test` sets it); else Debian's `/usr/bin/python3` is tried.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::poll::eventually;
use crate::skip::prerequisite_missing;

/// A running (or stopped) aiosmtpd with its Maildir.
pub struct SmtpSink {
    python: PathBuf,
    port: u16,
    maildir: tempfile::TempDir,
    child: Option<Child>,
}

/// A message the sink received.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The envelope's recipients (aiosmtpd's `X-RcptTo` header), sorted.
    pub rcpt_to: Vec<String>,
    /// The envelope's sender (`X-MailFrom`).
    pub mail_from: String,
    /// The `Subject` header, unfolded and decoded when it is plain ASCII.
    pub subject: String,
    /// The whole message as stored.
    pub raw: String,
}

impl SmtpSink {
    /// Starts a sink on a free port; `None` (after reporting the skip) when aiosmtpd is not
    /// installed.
    pub fn start(test: &str) -> Option<SmtpSink> {
        let python = std::env::var_os("TOOLFORGE_TEST_SMTP_SINK")
            .map_or_else(|| PathBuf::from("/usr/bin/python3"), PathBuf::from);
        let has_aiosmtpd = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !has_aiosmtpd {
            prerequisite_missing(
                test,
                &format!(
                    "{} cannot import aiosmtpd (install Debian's python3-aiosmtpd; `cargo xtask test` does)",
                    python.display()
                ),
            );
            return None;
        }
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .expect("a free port on 127.0.0.1")
            .port();
        let mut sink = SmtpSink {
            python,
            port,
            maildir: tempfile::tempdir().expect("a temporary Maildir"),
            child: None,
        };
        sink.start_again();
        Some(sink)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL); what it accepted stays in the Maildir.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and Maildir, and waits until it accepts
    /// connections.
    pub fn start_again(&mut self) {
        self.stop();
        let mailbox = self.maildir.path().join("mail");
        let child = Command::new(&self.python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&mailbox)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting aiosmtpd");
        self.child = Some(child);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        eventually(Duration::from_secs(20), || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                .ok()
                .map(|_| ())
        })
        .unwrap_or_else(|| panic!("aiosmtpd did not listen on {addr} within 20 s"));
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mailbox = self.maildir.path().join("mail");
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(mailbox.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let modified = entry
                    .metadata()
                    .and_then(|meta| meta.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                files.push((modified, entry.path()));
            }
        }
        files.sort();
        files.iter().filter_map(|(_, path)| parse(path)).collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

fn parse(path: &Path) -> Option<ReceivedMail> {
    let raw = std::fs::read_to_string(path).ok()?;
    let raw = raw.replace("\r\n", "\n");
    let head = raw.split("\n\n").next().unwrap_or_default();
    // Unfold continuation lines (RFC 5322 §2.2.3).
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    let mut rcpt_to: Vec<String> = header("x-rcptto")
        .split(',')
        .map(|address| address.trim().to_owned())
        .filter(|address| !address.is_empty())
        .collect();
    rcpt_to.sort();
    Some(ReceivedMail {
        rcpt_to,
        mail_from: header("x-mailfrom"),
        subject: header("subject"),
        raw,
    })
}
