//! Tests of the browser harness against a tiny HTTP server with a form, a cookie, a redirect,
//! a download and a page with a script.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::browser::{Browser, Screenshots, file_name, parse_devtools_active_port, target_dir};

/// A tiny HTTP/1.1 server on 127.0.0.1 (one thread per connection, `Connection: close`).
struct TinyServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl TinyServer {
    fn start() -> TinyServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port on 127.0.0.1");
        let addr = listener.local_addr().expect("the listener's address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    std::thread::spawn(move || handle(stream));
                }
            }
        });
        TinyServer { addr, stop }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TinyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// One request: method, path, headers (lower-case names) and body.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.header("cookie").split(';').find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (key, value) = line.split_once(':')?;
        headers.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(key, _)| key == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The value of `name` in an `application/x-www-form-urlencoded` body (`+` and `%XX` decoded).
fn form_value(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| percent_decode(&value.replace('+', " ")))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = s
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const FORM_PAGE: &str = r#"<!doctype html>
<html><head><title>Sign in</title></head><body>
<h1>Who are you?</h1>
<form id="who" method="post" action="/submit">
  <label>Name <input name="name" id="name" required maxlength="40"></label>
  <label>Colour <select name="colour" id="colour"><option value="red">Red</option><option value="blue">Blue</option></select></label>
  <button type="submit" id="go">Go</button>
</form>
<a id="other" href="/other">another page</a>
<form id="get-file" method="post" action="/download"><input type="hidden" name="x" value="1"><button id="get-file-button">Download</button></form>
</body></html>"#;

const SCRIPT_PAGE: &str = r#"<!doctype html>
<html><head><title>Script</title></head><body>
<p id="out">nothing yet</p>
<button id="change" onclick="document.getElementById('out').textContent = 'changed';">Change</button>
<button id="ask" onclick="document.getElementById('out').textContent = confirm('Really?') ? 'yes' : 'no';">Ask</button>
<button id="late" onclick="setTimeout(() => { const p = document.createElement('p'); p.id = 'late-p'; p.textContent = 'late'; document.body.append(p); }, 50);">Late</button>
</body></html>"#;

fn handle(mut stream: TcpStream) {
    let Some(request) = read_request(&stream) else {
        return;
    };
    let html = |status: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let response = match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/form") => html("200 OK", FORM_PAGE),
        ("GET", "/script") => html("200 OK", SCRIPT_PAGE),
        ("GET", "/other") => html("200 OK", "<title>Other</title><p id=msg>the other page</p>"),
        ("POST", "/submit") => {
            let name = form_value(&request.body, "name").unwrap_or_default();
            let colour = form_value(&request.body, "colour").unwrap_or_default();
            let value = format!("{}-{}", hex(&name), colour);
            format!(
                "HTTP/1.1 303 See Other\r\nLocation: /hello\r\nSet-Cookie: who={value}; Path=/; HttpOnly; SameSite=Lax\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        }
        ("GET", "/hello") => {
            let who = request.cookie("who").unwrap_or_default();
            let (name, colour) = who.rsplit_once('-').unwrap_or(("", ""));
            let name = unhex(name);
            html(
                "200 OK",
                &format!(
                    "<title>Hello</title><p id=greeting>Hello, {}! You like {}.</p>",
                    escape(&name),
                    escape(colour)
                ),
            )
        }
        ("GET" | "POST", "/download") => {
            let body = format!("cookie={}\n", request.cookie("who").unwrap_or_default());
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"who.txt\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        _ => html(
            "404 Not Found",
            "<title>Not found</title><p>no such page</p>",
        ),
    };
    let _ = stream.write_all(response.as_bytes());
}

/// The cookie value carries any text safely as hex.
fn hex(s: &str) -> String {
    s.bytes().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(s: &str) -> String {
    let bytes: Vec<u8> = (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn a_form_is_filled_and_submitted_and_its_cookie_is_sent_back() {
    const TEST: &str = "a_form_is_filled_and_submitted_and_its_cookie_is_sent_back";
    let Some(browser) = Browser::start(TEST) else {
        return;
    };
    let server = TinyServer::start();
    let page = browser.new_page().expect("a new tab");
    assert_eq!(
        page.goto(&server.url("/form")).expect("the form loads"),
        200
    );
    assert_eq!(page.title().expect("a title"), "Sign in");
    assert_eq!(page.text("h1").expect("a heading"), "Who are you?");

    // Submitting with the required field empty is refused by the browser, with the reason.
    let err = page.submit("#who").expect_err("the name is required");
    assert!(
        err.contains("does not validate") && err.contains("name"),
        "{err}"
    );

    page.fill("#name", "Zoë <b>&</b>").expect("typing a name");
    page.fill("#colour", "blue").expect("choosing a colour");
    assert_eq!(page.submit("#who").expect("the form submits"), 200);
    assert!(page.url().expect("a URL").ends_with("/hello"));
    assert_eq!(
        page.text("#greeting").expect("a greeting"),
        "Hello, Zoë <b>&</b>! You like blue."
    );
    let cookie = page
        .cookie("who")
        .expect("cookies")
        .expect("the cookie is set");
    assert!(cookie.http_only, "{cookie:?}");
    assert!(cookie.session, "{cookie:?}");
    assert_eq!(cookie.same_site.as_deref(), Some("Lax"));
    assert_eq!(cookie.path, "/");

    // A download, fetched with the page's cookies.
    let fetched = page.fetch("/download").expect("the download");
    assert_eq!(fetched.status, 200);
    assert_eq!(
        fetched.content_disposition,
        "attachment; filename=\"who.txt\""
    );
    assert_eq!(fetched.body, format!("cookie={}\n", cookie.value));
    assert!(
        page.fetch_text("/nope")
            .expect_err("a 404")
            .contains("HTTP 404")
    );

    // A second page is another person: no cookie.
    let stranger = browser.new_page().expect("another tab");
    stranger
        .goto(&server.url("/hello"))
        .expect("the page loads");
    assert_eq!(
        stranger.text("#greeting").expect("a greeting"),
        "Hello, ! You like ."
    );
    assert_eq!(stranger.cookies().expect("cookies"), []);

    page.clear_cookies().expect("cookies can be cleared");
    assert_eq!(page.cookie("who").expect("cookies"), None);
}

#[test]
fn clicking_a_link_waits_for_the_new_page_and_errors_name_what_was_missing() {
    const TEST: &str = "clicking_a_link_waits_for_the_new_page_and_errors_name_what_was_missing";
    let Some(browser) = Browser::start(TEST) else {
        return;
    };
    let server = TinyServer::start();
    let mut page = browser.new_page().expect("a new tab");
    page.goto(&server.url("/form")).expect("the form loads");
    assert_eq!(page.click("#other").expect("the link navigates"), 200);
    assert_eq!(page.text("#msg").expect("the message"), "the other page");
    assert_eq!(
        page.attribute("#msg", "id").expect("the attribute"),
        Some("msg".to_owned())
    );
    assert!(page.html().expect("the HTML").contains("the other page"));

    let err = page.click("#nothing").expect_err("no such element");
    assert!(
        err.contains("`#nothing`") && err.contains("/other"),
        "{err}"
    );
    assert!(
        err.contains("the other page"),
        "the error shows the page: {err}"
    );
    let err = page.fill("#nothing", "x").expect_err("no such field");
    assert!(err.contains("cannot fill `#nothing`"), "{err}");

    assert_eq!(
        page.goto(&server.url("/missing"))
            .expect("a 404 page loads"),
        404
    );
    assert_eq!(page.status().expect("the status"), 404);

    page.set_timeout(Duration::from_millis(300));
    let err = page.wait_for("#never").expect_err("never appears");
    assert!(
        err.contains("`#never`") && err.contains("no such page"),
        "{err}"
    );

    // A port that was free a moment ago: nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let err = page
        .goto(&format!("http://{closed}/"))
        .expect_err("nothing listens there");
    assert!(err.contains("ERR_CONNECTION_REFUSED"), "{err}");
}

#[test]
fn scripts_run_dialogs_are_accepted_and_late_elements_are_waited_for() {
    const TEST: &str = "scripts_run_dialogs_are_accepted_and_late_elements_are_waited_for";
    let Some(browser) = Browser::start(TEST) else {
        return;
    };
    let server = TinyServer::start();
    let page = browser.new_page().expect("a new tab");
    page.goto(&server.url("/script")).expect("the page loads");
    page.click_in_place("#change")
        .expect("the button can be clicked");
    assert_eq!(page.text("#out").expect("the output"), "changed");
    page.click_in_place("#ask")
        .expect("the button can be clicked");
    assert_eq!(page.text("#out").expect("the output"), "yes");
    assert_eq!(page.dialogs(), ["Really?"]);
    page.click_in_place("#late")
        .expect("the button can be clicked");
    page.wait_for("#late-p").expect("the paragraph appears");

    assert_eq!(page.eval("1 + 2").expect("arithmetic"), 3);
    assert_eq!(
        page.eval("Promise.resolve({a: [1, 'b']})")
            .expect("a promise"),
        serde_json::json!({"a": [1, "b"]})
    );
    let err = page.eval("null.x").expect_err("a TypeError");
    assert!(err.contains("TypeError"), "{err}");
    page.eval("setTimeout(() => { throw new Error('boom'); }, 0)")
        .expect("scheduling the throw");
    page.wait_until("true", "nothing")
        .expect("a true condition");
    crate::poll::eventually(Duration::from_secs(10), || {
        page.js_errors()
            .iter()
            .any(|err| err.contains("boom"))
            .then_some(())
    })
    .expect("the uncaught exception is recorded");
}

#[test]
fn screenshots_are_numbered_pngs_under_the_target_directory() {
    const TEST: &str = "screenshots_are_numbered_pngs_under_the_target_directory";
    let Some(browser) = Browser::start(TEST) else {
        return;
    };
    let server = TinyServer::start();
    let page = browser.new_page().expect("a new tab");
    page.goto(&server.url("/form")).expect("the form loads");
    let mut shots = Screenshots::new(TEST);
    assert!(shots.dir().starts_with(target_dir().join("screenshots")));
    let first = shots.take(&page, "the form").expect("a screenshot");
    page.click("#other").expect("the link navigates");
    let second = shots.take(&page, "other").expect("a screenshot");
    assert!(
        first.ends_with(format!("screenshots/{TEST}/01-the-form.png")),
        "{first:?}"
    );
    assert!(
        second.ends_with(format!("screenshots/{TEST}/02-other.png")),
        "{second:?}"
    );
    for path in [first, second] {
        let png = std::fs::read(&path).expect("the screenshot exists");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is a PNG",
            path.display()
        );
        // The IHDR chunk: the width is the window's.
        let width = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
        assert_eq!(width, 1280);
    }
}

#[test]
fn dropping_the_browser_kills_chromium_and_removes_its_profile() {
    const TEST: &str = "dropping_the_browser_kills_chromium_and_removes_its_profile";
    let Some(browser) = Browser::start(TEST) else {
        return;
    };
    let version = browser.version().expect("the version");
    assert!(version.contains("Chrome/"), "{version}");
    let pid = i32::try_from(browser.child.id()).expect("pids fit");
    let profile = browser.profile_dir().to_path_buf();
    let page = browser.new_page().expect("a new tab");
    drop(browser);
    assert!(!profile.exists(), "{} is removed", profile.display());
    // Nothing of the group is left running (zombies wait for PID 1 to reap them).
    let left = crate::poll::eventually(Duration::from_secs(10), || {
        let left = live_members_of_group(pid);
        left.is_empty().then_some(())
    });
    assert!(
        left.is_some(),
        "chromium's process group {pid} still has {:?}",
        live_members_of_group(pid)
    );
    let err = page.url().expect_err("the browser is gone");
    assert!(err.contains("gone") || err.contains("closed"), "{err}");
}

/// The pids of the processes of group `pgid` that are not zombies, from `/proc/*/stat`.
fn live_members_of_group(pgid: i32) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .expect("/proc is readable")
        .flatten()
    {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces, so split after the last `)`.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn the_devtools_port_file_is_parsed() {
    assert_eq!(
        parse_devtools_active_port("41235\n/devtools/browser/0d9e-11\n"),
        Some((41235, "/devtools/browser/0d9e-11".to_owned()))
    );
    assert_eq!(parse_devtools_active_port("41235\n"), None);
    assert_eq!(parse_devtools_active_port(""), None);
    assert_eq!(parse_devtools_active_port("x\n/devtools/browser/a"), None);
}

#[test]
fn screenshot_names_are_safe_file_names() {
    assert_eq!(file_name("sign up/../confirm"), "sign-up----confirm");
    assert_eq!(file_name(""), "page");
    assert_eq!(file_name("tool_page-2"), "tool_page-2");
}
