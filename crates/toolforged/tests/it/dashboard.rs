//! Issue 10 (dashboard), over real HTTP against the real daemon: sign-up, confirmation by
//! the mail a real SMTP sink caught, the membership workflow with the first start's
//! admin, the CSRF refusal and the log-in rate limit.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use test_support::daemon::{Daemon, DaemonOptions};
use test_support::poll::eventually;
use test_support::smtp::SmtpSink;

use crate::bin;

const PASSWORD: &str = "a long enough password";

/// A browser over plain HTTP/1.1: one connection per request, one session cookie.
struct Browser {
    addr: SocketAddr,
    cookie: Option<String>,
    csrf: Option<String>,
}

#[derive(Debug)]
struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new(daemon: &Daemon) -> Browser {
        Browser {
            addr: daemon.addresses().web,
            cookie: None,
            csrf: None,
        }
    }

    fn request(&mut self, method: &str, path: &str, form: Option<&str>) -> Page {
        let mut stream = TcpStream::connect(self.addr).expect("connect to the dashboard");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
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
            body,
        }
    }

    fn get(&mut self, path: &str) -> Page {
        self.request("GET", path, None)
    }

    fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
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

    fn log_in(&mut self, user: &str, password: &str) -> Page {
        self.get("/login");
        self.post("/login", &[("username", user), ("password", password)])
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

fn encode(text: &str) -> String {
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

fn csrf_token(body: &str) -> Option<String> {
    let marker = r#"name="csrf_token" value=""#;
    let start = body.find(marker)? + marker.len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].to_owned())
}

/// The body of the one mail to `to` whose subject contains `subject`, once it arrived.
fn mail_to(sink: &SmtpSink, to: &str, subject: &str) -> String {
    eventually(Duration::from_secs(30), || {
        sink.messages()
            .into_iter()
            .find(|mail| {
                mail.rcpt_to.iter().any(|rcpt| rcpt == to) && mail.subject.contains(subject)
            })
            .map(|mail| quoted_printable_decoded(&mail.raw))
    })
    .unwrap_or_else(|| {
        panic!(
            "no mail to {to} about '{subject}' arrived: {:?}",
            sink.messages()
        )
    })
}

/// The message with quoted-printable undone (lettre picks it for lines over 76
/// characters, such as the confirmation link's).
fn quoted_printable_decoded(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let mut out = String::with_capacity(joined.len());
    let mut rest = joined.as_str();
    while let Some(idx) = rest.find('=') {
        out.push_str(&rest[..idx]);
        let hex = rest.get(idx + 1..idx + 3).unwrap_or("");
        match u8::from_str_radix(hex, 16) {
            Ok(byte) if hex.len() == 2 => {
                out.push(byte as char);
                rest = &rest[idx + 3..];
            }
            _ => {
                out.push('=');
                rest = &rest[idx + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn a_new_user_signs_up_confirms_by_mail_and_becomes_a_member_after_feedback() {
    let test = "a_new_user_signs_up_confirms_by_mail_and_becomes_a_member_after_feedback";
    let Some(sink) = SmtpSink::start(test) else {
        return;
    };
    let daemon = DaemonOptions::default()
        .arg("--smtp-url")
        .arg(sink.url())
        .arg("--mail-from")
        .arg("noreply@toolforge.example")
        .start(bin());
    let mut carol = Browser::new(&daemon);
    carol.get("/signup");
    let page = carol.post(
        "/signup",
        &[
            ("username", "carol"),
            ("email", "carol@example.org"),
            ("password", PASSWORD),
            ("password2", PASSWORD),
        ],
    );
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/profile")),
        "{}",
        page.body
    );
    let page = carol.get("/profile");
    assert!(
        page.body
            .contains("We sent a confirmation link to carol@example.org"),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"id="email-status">not confirmed"#));

    // The link in the mail points at the dashboard's URL and works once.
    let mail = mail_to(&sink, "carol@example.org", "Confirm your e-mail address");
    let web = daemon.addresses().web;
    let prefix = format!("http://{web}/register/confirm/");
    let start = mail
        .find(&prefix)
        .unwrap_or_else(|| panic!("no link to {prefix} in {mail}"));
    let link: String = mail[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let path = &link[prefix.len() - "/register/confirm/".len()..];
    let page = carol.get(path);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(r#"data-result="confirmed""#),
        "{}",
        page.body
    );
    assert_eq!(
        carol.get(path).status,
        404,
        "a confirmation link works once"
    );

    carol.get("/tools/membership/apply");
    let page = carol.post(
        "/tools/membership/apply",
        &[("reason", "I run a spelling bot")],
    );
    let request_url = page.location.clone().expect("a redirect to the request");
    assert!(
        request_url.starts_with("/tools/membership/status/"),
        "{request_url}"
    );
    assert_eq!(
        carol.get("/tools/membership/").location.as_deref(),
        Some(request_url.as_str()),
        "a user with an open request is sent to it"
    );

    // The first start's admin logs in with the password printed on stdout.
    let mut admin = Browser::new(&daemon);
    let page = admin.log_in("admin", daemon.admin_password());
    assert_eq!(page.status, 303, "{}", page.body);
    let page = admin.get("/tools/membership/queue?status=pending");
    assert!(page.body.contains("I run a spelling bot"), "{}", page.body);
    admin.get(&request_url);
    admin.post(
        &format!("{request_url}/comment"),
        &[("comment", "Which wiki?")],
    );
    let mail = mail_to(&sink, "carol@example.org", "commented on");
    assert!(mail.contains("Which wiki?"), "{mail}");
    let page = carol.get(&request_url);
    assert!(
        page.body.contains(r#"data-status="feedback""#),
        "{}",
        page.body
    );
    assert!(page.body.contains("Which wiki?"));

    carol.post(
        &format!("{request_url}/comment"),
        &[("comment", "The German one")],
    );
    let page = admin.get(&request_url);
    assert!(
        page.body.contains(r#"data-status="pending""#),
        "{}",
        page.body
    );
    assert!(page.body.contains("The German one"));
    let page = admin.post(&format!("{request_url}/decide"), &[("action", "approve")]);
    assert_eq!(page.status, 303, "{}", page.body);
    mail_to(&sink, "carol@example.org", "approved");
    let page = carol.get("/tools/membership/");
    assert!(
        page.body.contains("You are already a member of Toolforge"),
        "{}",
        page.body
    );

    // The approval is in the audit log, with who did it.
    let audit = daemon.admin_ok(&["audit"]);
    assert!(
        audit.contains("membership approve") && audit.contains("admin"),
        "{audit}"
    );
}

#[test]
fn a_cross_site_form_post_without_the_token_is_refused() {
    let daemon = Daemon::start(bin());
    let mut admin = Browser::new(&daemon);
    admin.log_in("admin", daemon.admin_password());
    // Another site's form: the browser sends the cookie (were it not SameSite), not the token.
    let page = admin.request(
        "POST",
        "/profile/settings/change_password/",
        Some("old_password=x&new_password=yyyyyyyyyyyy&new_password2=yyyyyyyyyyyy"),
    );
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("security token (CSRF)"), "{}", page.body);
    assert_eq!(
        admin.get("/profile").status,
        200,
        "the session is untouched"
    );
}

#[test]
fn the_eleventh_failed_log_in_within_a_minute_is_refused_with_429() {
    let daemon = Daemon::start(bin());
    let mut browser = Browser::new(&daemon);
    for attempt in 1..=10 {
        let page = browser.log_in("admin", "not the password");
        assert_eq!(page.status, 401, "attempt {attempt}: {}", page.body);
    }
    let page = browser.log_in("admin", "not the password");
    assert_eq!(page.status, 429, "{}", page.body);
    assert!(
        page.body.contains("Too many failed log-ins"),
        "{}",
        page.body
    );
    assert_eq!(browser.log_in("admin", daemon.admin_password()).status, 429);
}
