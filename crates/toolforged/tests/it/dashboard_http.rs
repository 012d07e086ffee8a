//! A browser's HTTP side for the dashboard's system tests, over plain HTTP/1.1: one
//! connection per request, the session cookie (checked to be `HttpOnly` and
//! `SameSite=Lax`), and the CSRF token of the last page that had a form.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use test_support::daemon::Daemon;

/// A browser over plain HTTP/1.1: one connection per request, one session cookie, the
/// last CSRF token seen.
pub struct Browser {
    addr: SocketAddr,
    cookie: Option<String>,
    pub csrf: Option<String>,
}

#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

impl Browser {
    pub fn new(daemon: &Daemon) -> Browser {
        Browser {
            addr: daemon.addresses().web,
            cookie: None,
            csrf: None,
        }
    }

    pub fn request(&mut self, method: &str, path: &str, form: Option<&str>) -> Page {
        let mut stream = TcpStream::connect(self.addr).expect("connect to the dashboard");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(cookie) = &self.cookie {
            head.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        let body = form.unwrap_or("");
        if form.is_some() {
            head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        let mut location = None;
        let mut content_type = None;
        let mut chunked = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "set-cookie" => {
                    assert!(value.contains("HttpOnly") && value.contains("SameSite=Lax"));
                    let pair = value.split(';').next().unwrap().to_owned();
                    self.cookie = (!pair.ends_with('=')).then_some(pair);
                }
                "location" => location = Some(value.to_owned()),
                "content-type" => content_type = Some(value.to_owned()),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                _ => {}
            }
        }
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        };
        if let Some(token) = csrf_token(&body) {
            self.csrf = Some(token);
        }
        Page {
            status,
            location,
            content_type,
            body,
        }
    }

    pub fn get(&mut self, path: &str) -> Page {
        self.request("GET", path, None)
    }

    /// Posts `fields` with the CSRF token of the last page that had a form.
    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self
            .csrf
            .clone()
            .expect("a page with a form was loaded first");
        let mut form = format!("csrf_token={token}");
        for (key, value) in fields {
            form.push_str(&format!("&{}={}", encode(key), encode(value)));
        }
        self.request("POST", path, Some(&form))
    }

    pub fn log_in(&mut self, user: &str, password: &str) -> Page {
        self.get("/login");
        self.post(
            "/login",
            &[("username", user), ("password", password), ("next", "/")],
        )
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    out
}

pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

pub fn csrf_token(body: &str) -> Option<String> {
    let marker = r#"name="csrf_token" value=""#;
    let start = body.find(marker)? + marker.len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].to_owned())
}
