//! A real headless Chromium for end-to-end tests, driven over the Chrome DevTools Protocol.
//!
//! [`Browser::launch`] starts Debian's `chromium` (`TOOLFORGE_TEST_CHROMIUM`, which
//! `cargo xtask test` sets, else `/usr/bin/chromium`) with `--remote-debugging-port=0` on a
//! temporary profile, reads the port from `<profile>/DevToolsActivePort` and connects to the
//! browser's WebSocket. A small client here speaks the protocol: commands with ids, answers
//! matched to them, sessions of pages attached with `flatten`.
//!
//! Each [`Browser::new_page`] is a tab in a browser context of its own (an incognito-like
//! profile), so two pages of one browser are two people with two cookie jars.
//! Page calls are synchronous for tests (the protocol runs on a runtime in a thread of its own)
//! and each has a timeout ([`DEFAULT_TIMEOUT`], see [`Page::set_timeout`]) and an error that
//! says what was asked, on which URL, and what the page showed.
//!
//! Invariants:
//! - dropping the [`Browser`] kills Chromium's whole process group and removes its profile;
//! - JavaScript dialogs (`confirm()`, `alert()`) are accepted at once and recorded
//!   ([`Page::dialogs`]), so a page never hangs on one;
//! - a navigation is over when a new document has replaced the old one and is fully loaded;
//!   the old one is told apart by a marker property set on its `window` before the action.
//!
//! Screenshots for review go to `target/screenshots/<test>/NN-<page>.png` ([`Screenshots`]).

use std::collections::HashMap;
use std::future::Future;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::skip::prerequisite_missing;

/// How long one page call may take unless [`Page::set_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long Chromium may take to start and open its DevTools port.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Where Debian installs Chromium.
const DEBIAN_CHROMIUM: &str = "/usr/bin/chromium";

/// The size of new tabs, and so of screenshots' width.
const WINDOW: (u32, u32) = (1280, 900);

/// The property set on the old document's `window` before an action that navigates.
const MARKER: &str = "__toolforgeTestOldDocument";

/// A running headless Chromium; dropping it kills the browser.
pub struct Browser {
    conn: Arc<Connection>,
    runtime: RuntimeThread,
    child: Child,
    /// Chromium's profile, removed on drop (after the browser is dead).
    profile: tempfile::TempDir,
}

/// One tab, in a browser context (cookie jar) of its own.
pub struct Page {
    conn: Arc<Connection>,
    handle: tokio::runtime::Handle,
    session: String,
    target: String,
    context: String,
    timeout: Duration,
    /// Where this page's downloads go, one numbered subdirectory per [`Page::download`].
    downloads: tempfile::TempDir,
    n_downloads: std::sync::atomic::AtomicU32,
}

/// A file the browser downloaded ([`Page::download`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// The name the browser saved it under (from `Content-Disposition`, else the URL).
    pub file_name: String,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// A cookie as the browser holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cookie {
    /// The cookie's name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// The domain it is sent to.
    pub domain: String,
    /// The path it is sent under.
    pub path: String,
    /// Whether scripts cannot read it (`HttpOnly`).
    pub http_only: bool,
    /// Whether it is sent only over secure connections (`Secure`).
    pub secure: bool,
    /// `Strict`, `Lax` or `None` when the server set one.
    pub same_site: Option<String>,
    /// Whether it lasts only as long as the browsing session (no `Expires`/`Max-Age`).
    pub session: bool,
}

/// What [`Page::fetch`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` header, empty when there was none.
    pub content_type: String,
    /// The `Content-Disposition` header, empty when there was none.
    pub content_disposition: String,
    /// The body, as text.
    pub body: String,
}

impl Browser {
    /// Starts headless Chromium; `Err` says why it is not installed, for
    /// [`crate::skip::prerequisite_missing`].
    ///
    /// Panics when Chromium is installed but does not start: that is a failure, not a skip.
    pub fn launch() -> Result<Browser, String> {
        let bin = chromium_bin()?;
        Ok(Browser::launch_bin(&bin).unwrap_or_else(|err| panic!("{err}")))
    }

    /// [`launch`](Browser::launch), reporting the skip for `test` when Chromium is missing.
    #[track_caller]
    pub fn start(test: &str) -> Option<Browser> {
        match Browser::launch() {
            Ok(browser) => Some(browser),
            Err(reason) => {
                prerequisite_missing(test, &reason);
                None
            }
        }
    }

    fn launch_bin(bin: &Path) -> Result<Browser, String> {
        let profile = tempfile::Builder::new()
            .prefix("toolforge-chromium-")
            .tempdir()
            .map_err(|err| format!("could not create a Chromium profile directory: {err}"))?;
        let log_path = profile.path().join("chromium.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|err| format!("could not create {}: {err}", log_path.display()))?;
        let mut cmd = Command::new(bin);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--remote-debugging-port=0",
            "--no-proxy-server",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--password-store=basic",
            "--use-mock-keychain",
        ])
        .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        // A group of its own, so that drop can kill the renderers and helpers too.
        .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|err| format!("could not start {}: {err}", bin.display()))?;

        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + LAUNCH_TIMEOUT;
        let mut pause = Duration::from_millis(10);
        let ws_url = loop {
            if let Some((port, path)) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|text| parse_devtools_active_port(&text))
            {
                break format!("ws://127.0.0.1:{port}{path}");
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "{} exited during start-up ({status}); its log ends with:\n{}",
                    bin.display(),
                    log_tail(&log_path)
                ));
            }
            if Instant::now() >= deadline {
                kill_group(&mut child);
                return Err(format!(
                    "{} did not write {} within {LAUNCH_TIMEOUT:?}; its log ends with:\n{}",
                    bin.display(),
                    port_file.display(),
                    log_tail(&log_path)
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        };

        let runtime = RuntimeThread::start()?;
        let (tx, rx) = std::sync::mpsc::channel();
        let url = ws_url.clone();
        runtime.handle.spawn(async move {
            let res = tokio::time::timeout(LAUNCH_TIMEOUT, Connection::open(&url)).await;
            let _ = tx.send(res);
        });
        let conn = match rx.recv() {
            Ok(Ok(Ok(conn))) => conn,
            Ok(Ok(Err(err))) => {
                kill_group(&mut child);
                return Err(err);
            }
            Ok(Err(_)) | Err(_) => {
                kill_group(&mut child);
                return Err(format!(
                    "no WebSocket connection to {ws_url} within {LAUNCH_TIMEOUT:?}"
                ));
            }
        };
        Ok(Browser {
            conn,
            runtime,
            child,
            profile,
        })
    }

    /// Opens a tab on `about:blank` in a fresh browser context (no cookies, no storage).
    pub fn new_page(&self) -> Result<Page, String> {
        let conn = Arc::clone(&self.conn);
        let opened = block_on(
            &self.runtime.handle,
            DEFAULT_TIMEOUT,
            "opening a tab",
            async move {
                let context = conn
                    .call(
                        None,
                        "Target.createBrowserContext",
                        json!({"disposeOnDetach": true}),
                    )
                    .await?;
                let context = str_field(&context, "browserContextId")?;
                let target = conn
                    .call(
                        None,
                        "Target.createTarget",
                        json!({
                            "url": "about:blank",
                            "browserContextId": context,
                            "width": WINDOW.0,
                            "height": WINDOW.1,
                        }),
                    )
                    .await?;
                let target = str_field(&target, "targetId")?;
                let session = conn
                    .call(
                        None,
                        "Target.attachToTarget",
                        json!({"targetId": target, "flatten": true}),
                    )
                    .await?;
                let session = str_field(&session, "sessionId")?;
                for domain in ["Page.enable", "Runtime.enable", "Network.enable"] {
                    conn.call(Some(&session), domain, json!({})).await?;
                }
                Ok((context, target, session))
            },
        )?;
        let (context, target, session) = opened;
        Ok(Page {
            conn: Arc::clone(&self.conn),
            handle: self.runtime.handle.clone(),
            session,
            target,
            context,
            timeout: DEFAULT_TIMEOUT,
            downloads: tempfile::Builder::new()
                .prefix("toolforge-downloads-")
                .tempdir()
                .map_err(|err| format!("could not create a download directory: {err}"))?,
            n_downloads: std::sync::atomic::AtomicU32::new(0),
        })
    }

    /// The browser's version string, e.g. `Chrome/120.0.6099.224`.
    pub fn version(&self) -> Result<String, String> {
        let conn = Arc::clone(&self.conn);
        let version = block_on(
            &self.runtime.handle,
            DEFAULT_TIMEOUT,
            "Browser.getVersion",
            async move { conn.call(None, "Browser.getVersion", json!({})).await },
        )?;
        str_field(&version, "product")
    }

    /// The profile directory (holding `chromium.log`, the browser's own log).
    pub fn profile_dir(&self) -> &Path {
        self.profile.path()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.child);
        self.runtime.stop();
    }
}

impl Page {
    /// Sets how long each later call on this page may take.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Loads `url` and waits until it is fully loaded; returns the HTTP status.
    pub fn goto(&self, url: &str) -> Result<u16, String> {
        self.mark_document()?;
        let navigated = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(err) = navigated.get("errorText").and_then(Value::as_str)
            && !err.is_empty()
        {
            return Err(format!("loading {url} failed: {err}"));
        }
        self.wait_for_new_document(&format!("loading {url}"))
    }

    /// Types `text` into the field `css` (after emptying it), as a keyboard would, then fires
    /// `change`; a `<select>` gets the option whose value is `text`.
    pub fn fill(&self, css: &str, text: &str) -> Result<(), String> {
        let kind = self.eval(&format!(
            r#"(() => {{
                const el = document.querySelector({css});
                if (!el) return "missing";
                if (el.disabled || el.readOnly) return "disabled";
                if (el.tagName === "SELECT") {{
                    if (![...el.options].some(o => o.value === {text})) return "no option";
                    el.value = {text};
                    el.dispatchEvent(new Event("input", {{bubbles: true}}));
                    el.dispatchEvent(new Event("change", {{bubbles: true}}));
                    return "select";
                }}
                if (!("value" in el)) return "not a field";
                el.focus();
                el.value = "";
                return "field";
            }})()"#,
            css = js_str(css),
            text = js_str(text),
        ))?;
        match kind.as_str().unwrap_or_default() {
            "select" => return Ok(()),
            "field" => {}
            "missing" => return Err(self.missing(css, "fill")),
            "disabled" => return Err(format!("cannot fill `{css}`: it is disabled or read-only")),
            "no option" => {
                return Err(format!(
                    "cannot choose `{text}` in `{css}`: it has no such option"
                ));
            }
            other => return Err(format!("cannot fill `{css}`: {other}")),
        }
        if !text.is_empty() {
            self.call("Input.insertText", json!({"text": text}))?;
        }
        let value = self.eval(&format!(
            r#"(() => {{
                const el = document.querySelector({css});
                el.dispatchEvent(new Event("change", {{bubbles: true}}));
                return el.value;
            }})()"#,
            css = js_str(css)
        ))?;
        if value.as_str() != Some(text) {
            return Err(format!(
                "typed {text:?} into `{css}` but it holds {value} (a maxlength, or a script \
                 that rewrites it?)"
            ));
        }
        Ok(())
    }

    /// Clicks the middle of the element `css` with the mouse and waits for the page it loads;
    /// returns that page's HTTP status.
    pub fn click(&self, css: &str) -> Result<u16, String> {
        self.mark_document()?;
        self.click_in_place(css)?;
        self.wait_for_new_document(&format!("the page loaded by clicking `{css}`"))
    }

    /// Clicks the element `css` with the mouse without waiting for a navigation (for buttons
    /// that run a script).
    pub fn click_in_place(&self, css: &str) -> Result<(), String> {
        let point = self.eval(&format!(
            r#"(() => {{
                const el = document.querySelector({css});
                if (!el) return null;
                el.scrollIntoView({{block: "center", inline: "center"}});
                const r = el.getBoundingClientRect();
                if (r.width === 0 || r.height === 0) return {{hidden: true}};
                const x = r.left + r.width / 2, y = r.top + r.height / 2;
                const top = document.elementFromPoint(x, y);
                if (top && top !== el && !el.contains(top)) {{
                    return {{covered: top.outerHTML.slice(0, 200)}};
                }}
                return {{x, y}};
            }})()"#,
            css = js_str(css)
        ))?;
        if point.is_null() {
            return Err(self.missing(css, "click"));
        }
        if point.get("hidden").is_some() {
            return Err(format!(
                "cannot click `{css}` on {}: it is not visible",
                self.url_or_unknown()
            ));
        }
        if let Some(top) = point.get("covered") {
            return Err(format!(
                "cannot click `{css}`: another element is on top of it: {top}"
            ));
        }
        let (x, y) = (point["x"].clone(), point["y"].clone());
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": x, "y": y}),
        )?;
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )?;
        }
        Ok(())
    }

    /// Submits the form `form_css` as its first submit button would (after the browser's own
    /// validation), and waits for the page it loads; returns that page's HTTP status.
    pub fn submit(&self, form_css: &str) -> Result<u16, String> {
        let check = self.eval(&format!(
            r#"(() => {{
                const form = document.querySelector({css});
                if (!form) return null;
                if (form.tagName !== "FORM") return {{error: "is a " + form.tagName.toLowerCase() + ", not a form"}};
                const invalid = [...form.elements].filter(el => el.willValidate && !el.checkValidity())
                    .map(el => (el.name || el.id || el.tagName) + ": " + el.validationMessage);
                if (invalid.length) return {{error: "does not validate: " + invalid.join("; ")}};
                return {{}};
            }})()"#,
            css = js_str(form_css)
        ))?;
        if check.is_null() {
            return Err(self.missing(form_css, "submit"));
        }
        if let Some(err) = check.get("error").and_then(Value::as_str) {
            return Err(format!("cannot submit `{form_css}`: it {err}"));
        }
        self.mark_document()?;
        self.eval(&format!(
            r#"(() => {{
                const form = document.querySelector({css});
                const button = form.querySelector("button:not([type]), button[type=submit], input[type=submit]");
                form.requestSubmit(button || undefined);
                return null;
            }})()"#,
            css = js_str(form_css)
        ))?;
        self.wait_for_new_document(&format!("the page loaded by submitting `{form_css}`"))
    }

    /// The rendered text (`innerText`) of the first element matching `css`.
    pub fn text(&self, css: &str) -> Result<String, String> {
        let text = self.eval(&format!(
            "(() => {{ const el = document.querySelector({}); return el ? el.innerText : null; }})()",
            js_str(css)
        ))?;
        match text {
            Value::String(text) => Ok(text),
            _ => Err(self.missing(css, "read")),
        }
    }

    /// The rendered text of every element matching `css`, in document order.
    pub fn texts(&self, css: &str) -> Result<Vec<String>, String> {
        let texts = self.eval(&format!(
            "[...document.querySelectorAll({})].map(el => el.innerText)",
            js_str(css)
        ))?;
        serde_json::from_value(texts).map_err(|err| format!("reading `{css}`: {err}"))
    }

    /// An attribute of the first element matching `css` (`None` when it lacks it).
    pub fn attribute(&self, css: &str, name: &str) -> Result<Option<String>, String> {
        let value = self.eval(&format!(
            "(() => {{ const el = document.querySelector({}); return el ? [el.getAttribute({})] : null; }})()",
            js_str(css),
            js_str(name)
        ))?;
        match value {
            Value::Array(mut values) => {
                Ok(values.pop().and_then(|v| v.as_str().map(str::to_owned)))
            }
            _ => Err(self.missing(css, "read an attribute of")),
        }
    }

    /// Whether an element matches `css` now.
    pub fn exists(&self, css: &str) -> Result<bool, String> {
        let found = self.eval(&format!("document.querySelector({}) !== null", js_str(css)))?;
        Ok(found == Value::Bool(true))
    }

    /// The whole document as HTML.
    pub fn html(&self) -> Result<String, String> {
        let html = self.eval("document.documentElement.outerHTML")?;
        html.as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("the document has no HTML: {html}"))
    }

    /// The rendered text of the whole page.
    pub fn body_text(&self) -> Result<String, String> {
        let text = self.eval("document.body ? document.body.innerText : ''")?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    /// The document's URL.
    pub fn url(&self) -> Result<String, String> {
        let url = self.eval("location.href")?;
        url.as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("location.href is not a string: {url}"))
    }

    /// The document's title.
    pub fn title(&self) -> Result<String, String> {
        let title = self.eval("document.title")?;
        Ok(title.as_str().unwrap_or_default().to_owned())
    }

    /// The HTTP status of the current document's response (0 when it had none).
    pub fn status(&self) -> Result<u16, String> {
        let status = self.eval(
            "(() => { const nav = performance.getEntriesByType('navigation')[0]; \
             return nav ? nav.responseStatus : 0; })()",
        )?;
        status
            .as_u64()
            .and_then(|status| u16::try_from(status).ok())
            .ok_or_else(|| format!("the navigation entry has no status: {status}"))
    }

    /// Evaluates the JavaScript expression `js` in the page (awaiting a promise) and returns
    /// its value as JSON (`null` for `undefined`); an exception is an error with its message.
    pub fn eval(&self, js: &str) -> Result<Value, String> {
        let answer = self.call(
            "Runtime.evaluate",
            json!({
                "expression": js,
                "returnByValue": true,
                "awaitPromise": true,
                "userGesture": true,
            }),
        )?;
        eval_value(answer)
    }

    /// Waits until an element matches `css`.
    pub fn wait_for(&self, css: &str) -> Result<(), String> {
        self.wait_until(
            &format!("document.querySelector({}) !== null", js_str(css)),
            &format!("an element matching `{css}`"),
        )
    }

    /// Waits until the JavaScript expression `condition` is truthy; `what` names it in the error.
    pub fn wait_until(&self, condition: &str, what: &str) -> Result<(), String> {
        let expression = format!("!!({condition})");
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(5);
        let mut last_err = String::new();
        loop {
            match self.eval(&expression) {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(_) => {}
                Err(err) => last_err = err,
            }
            if Instant::now() >= deadline {
                let last = if last_err.is_empty() {
                    String::new()
                } else {
                    format!(" (last error: {last_err})")
                };
                return Err(format!(
                    "waited {:?} for {what} on {}{last}; the page shows:\n{}",
                    self.timeout,
                    self.url_or_unknown(),
                    self.text_excerpt()
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Saves a PNG of the whole page (beyond the window's height) at `path`, creating its
    /// directory.
    pub fn screenshot(&self, path: &Path) -> Result<(), String> {
        let metrics = self.call("Page.getLayoutMetrics", json!({}))?;
        let size = &metrics["cssContentSize"];
        let width = size["width"].as_f64().unwrap_or(f64::from(WINDOW.0)).ceil();
        let height = size["height"]
            .as_f64()
            .unwrap_or(f64::from(WINDOW.1))
            .ceil();
        let shot = self.call(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": width.max(1.0), "height": height.max(1.0), "scale": 1},
            }),
        )?;
        let data = str_field(&shot, "data")?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|err| format!("Page.captureScreenshot sent invalid base64: {err}"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|err| format!("could not create {}: {err}", dir.display()))?;
        }
        std::fs::write(path, png)
            .map_err(|err| format!("could not write {}: {err}", path.display()))
    }

    /// Fetches `url` (relative to the page) from the page with its cookies, as a download
    /// link would, without leaving the page.
    pub fn fetch(&self, url: &str) -> Result<Fetched, String> {
        let answer = self.eval(&format!(
            r#"fetch({url}, {{credentials: "include", redirect: "follow"}}).then(async r => ({{
                status: r.status,
                contentType: r.headers.get("content-type") || "",
                contentDisposition: r.headers.get("content-disposition") || "",
                body: await r.text(),
            }}))"#,
            url = js_str(url)
        ))?;
        let field = |name: &str| answer[name].as_str().unwrap_or_default().to_owned();
        Ok(Fetched {
            status: answer["status"]
                .as_u64()
                .and_then(|status| u16::try_from(status).ok())
                .ok_or_else(|| format!("fetching {url}: no status in {answer}"))?,
            content_type: field("contentType"),
            content_disposition: field("contentDisposition"),
            body: field("body"),
        })
    }

    /// [`fetch`](Page::fetch), requiring a 2xx status; returns the body.
    pub fn fetch_text(&self, url: &str) -> Result<String, String> {
        let fetched = self.fetch(url)?;
        if !(200..300).contains(&fetched.status) {
            return Err(format!(
                "fetching {url} from {} gave HTTP {}: {}",
                self.url_or_unknown(),
                fetched.status,
                excerpt(&fetched.body)
            ));
        }
        Ok(fetched.body)
    }

    /// Clicks `css` (a download link, or a form's button whose answer is an attachment) and
    /// waits until the browser has saved the file; the page stays where it is.
    pub fn download(&self, css: &str) -> Result<Download, String> {
        let n = self.n_downloads.fetch_add(1, Ordering::Relaxed) + 1;
        let dir = self.downloads.path().join(n.to_string());
        std::fs::create_dir_all(&dir)
            .map_err(|err| format!("could not create {}: {err}", dir.display()))?;
        let conn = Arc::clone(&self.conn);
        let params = json!({
            "behavior": "allow",
            "browserContextId": self.context,
            "downloadPath": dir.to_string_lossy(),
        });
        block_on(
            &self.handle,
            self.timeout,
            "Browser.setDownloadBehavior",
            async move { conn.call(None, "Browser.setDownloadBehavior", params).await },
        )?;
        self.click_in_place(css)?;
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            // Chromium writes `<name>.crdownload` and renames it to `<name>` when complete.
            let done = std::fs::read_dir(&dir)
                .map_err(|err| format!("could not read {}: {err}", dir.display()))?
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .find(|name| !name.ends_with(".crdownload"));
            if let Some(file_name) = done {
                let path = dir.join(&file_name);
                let bytes = std::fs::read(&path)
                    .map_err(|err| format!("could not read {}: {err}", path.display()))?;
                return Ok(Download { file_name, bytes });
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "clicking `{css}` on {} downloaded nothing within {:?}; the page shows:\n{}",
                    self.url_or_unknown(),
                    self.timeout,
                    self.text_excerpt()
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// The cookies the browser would send to the current page.
    pub fn cookies(&self) -> Result<Vec<Cookie>, String> {
        let answer = self.call("Network.getCookies", json!({}))?;
        let cookies = answer["cookies"]
            .as_array()
            .ok_or_else(|| format!("Network.getCookies sent no cookies array: {answer}"))?;
        Ok(cookies
            .iter()
            .map(|cookie| Cookie {
                name: cookie["name"].as_str().unwrap_or_default().to_owned(),
                value: cookie["value"].as_str().unwrap_or_default().to_owned(),
                domain: cookie["domain"].as_str().unwrap_or_default().to_owned(),
                path: cookie["path"].as_str().unwrap_or_default().to_owned(),
                http_only: cookie["httpOnly"] == Value::Bool(true),
                secure: cookie["secure"] == Value::Bool(true),
                same_site: cookie["sameSite"].as_str().map(str::to_owned),
                session: cookie["session"] == Value::Bool(true),
            })
            .collect())
    }

    /// The cookie `name` sent to the current page, if any.
    pub fn cookie(&self, name: &str) -> Result<Option<Cookie>, String> {
        Ok(self
            .cookies()?
            .into_iter()
            .find(|cookie| cookie.name == name))
    }

    /// Removes every cookie of this page's browser context.
    pub fn clear_cookies(&self) -> Result<(), String> {
        self.call("Network.clearBrowserCookies", json!({}))?;
        Ok(())
    }

    /// The messages of the JavaScript dialogs that were accepted, oldest first.
    pub fn dialogs(&self) -> Vec<String> {
        lock(&self.conn.sessions)
            .get(&self.session)
            .map(|log| log.dialogs.clone())
            .unwrap_or_default()
    }

    /// Uncaught JavaScript exceptions and `console.error` messages, oldest first.
    pub fn js_errors(&self) -> Vec<String> {
        lock(&self.conn.sessions)
            .get(&self.session)
            .map(|log| log.errors.clone())
            .unwrap_or_default()
    }

    /// Sends `method` to this page's session, waiting at most the page's timeout.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        let conn = Arc::clone(&self.conn);
        let session = self.session.clone();
        let name = method.to_owned();
        block_on(&self.handle, self.timeout, method, async move {
            conn.call(Some(&session), &name, params).await
        })
    }

    /// Marks the current document, so that [`wait_for_new_document`] knows when it is gone.
    fn mark_document(&self) -> Result<(), String> {
        self.eval(&format!("window.{MARKER} = true"))?;
        Ok(())
    }

    /// Waits until the marked document is replaced and the new one has loaded; returns the
    /// new document's HTTP status.
    fn wait_for_new_document(&self, what: &str) -> Result<u16, String> {
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(5);
        let probe = format!("!window.{MARKER} && document.readyState === 'complete'");
        loop {
            // While the old document is torn down, evaluation may fail: keep polling.
            if let Ok(Value::Bool(true)) = self.eval(&probe) {
                return self.status();
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{what}: no new page within {:?} (a click that does not navigate needs \
                     click_in_place); still on {}, showing:\n{}",
                    self.timeout,
                    self.url_or_unknown(),
                    self.text_excerpt()
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// The error for an element that is not there.
    fn missing(&self, css: &str, action: &str) -> String {
        format!(
            "cannot {action} `{css}`: no element matches it on {}; the page shows:\n{}",
            self.url_or_unknown(),
            self.text_excerpt()
        )
    }

    fn url_or_unknown(&self) -> String {
        self.url()
            .unwrap_or_else(|err| format!("<unknown URL: {err}>"))
    }

    /// The start of the page's text, for error messages.
    fn text_excerpt(&self) -> String {
        match self.body_text() {
            Ok(text) => excerpt(&text),
            Err(err) => format!("<could not read the page: {err}>"),
        }
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let conn = Arc::clone(&self.conn);
        let target = self.target.clone();
        let context = self.context.clone();
        lock(&conn.sessions).remove(&self.session);
        // Nobody waits: a browser that is going away anyway need not answer.
        drop(self.handle.spawn(async move {
            let _ = conn
                .call(None, "Target.closeTarget", json!({"targetId": target}))
                .await;
            let _ = conn
                .call(
                    None,
                    "Target.disposeBrowserContext",
                    json!({"browserContextId": context}),
                )
                .await;
        }));
    }
}

/// Screenshots of one test, numbered in the order taken:
/// `<target>/screenshots/<test>/NN-<page>.png`.
pub struct Screenshots {
    dir: PathBuf,
    taken: u32,
}

impl Screenshots {
    /// The screenshots of `test`; the directory is emptied of an earlier run's.
    pub fn new(test: &str) -> Screenshots {
        let dir = target_dir().join("screenshots").join(file_name(test));
        let _ = std::fs::remove_dir_all(&dir);
        Screenshots { dir, taken: 0 }
    }

    /// The directory the screenshots go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Saves `page` as the next numbered screenshot named after `name`; returns its path.
    pub fn take(&mut self, page: &Page, name: &str) -> Result<PathBuf, String> {
        self.taken += 1;
        let path = self
            .dir
            .join(format!("{:02}-{}.png", self.taken, file_name(name)));
        page.screenshot(&path)?;
        Ok(path)
    }
}

/// The Cargo target directory: `CARGO_TARGET_DIR`, else the one holding the running test
/// binary (`<target>/<profile>/deps/<binary>`), else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            crate::workspace_root().join(dir)
        };
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            let deps = exe.parent()?;
            (deps.file_name()? == "deps").then(|| deps.parent()?.parent().map(Path::to_path_buf))?
        })
        .unwrap_or_else(|| crate::workspace_root().join("target"))
}

/// Where Chromium is, or why it is not usable.
pub fn chromium_bin() -> Result<PathBuf, String> {
    let bin = std::env::var_os("TOOLFORGE_TEST_CHROMIUM")
        .filter(|bin| !bin.is_empty())
        .map_or_else(|| PathBuf::from(DEBIAN_CHROMIUM), PathBuf::from);
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "Chromium is not installed ({} is missing; `cargo xtask test` installs Debian's \
             chromium package, or run `apt-get install chromium`)",
            bin.display()
        ))
    }
}

/// `<port>\n<path>` from `DevToolsActivePort`.
fn parse_devtools_active_port(text: &str) -> Option<(u16, String)> {
    let mut lines = text.lines();
    let port = lines.next()?.trim().parse().ok()?;
    let path = lines.next()?.trim();
    path.starts_with("/devtools/browser/")
        .then(|| (port, path.to_owned()))
}

/// The value of a `Runtime.evaluate` answer, or the exception it threw.
fn eval_value(answer: Value) -> Result<Value, String> {
    if let Some(details) = answer.get("exceptionDetails") {
        let message = details["exception"]["description"]
            .as_str()
            .or_else(|| details["text"].as_str())
            .unwrap_or("an exception without a message");
        return Err(format!("the page's JavaScript threw: {message}"));
    }
    Ok(answer["result"]
        .get("value")
        .cloned()
        .unwrap_or(Value::Null))
}

/// `s` as a JavaScript string literal (JSON's string syntax is a subset of JavaScript's).
fn js_str(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

fn str_field(value: &Value, name: &str) -> Result<String, String> {
    value[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("the browser's answer has no `{name}`: {value}"))
}

/// A name usable as a file name: letters, digits, `-` and `_`; anything else becomes `-`.
fn file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "page".to_owned()
    } else {
        cleaned
    }
}

/// The first 1,000 characters of `text`.
fn excerpt(text: &str) -> String {
    const MAX: usize = 1000;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The last lines of Chromium's log, for start-up errors.
fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    let _ = std::fs::File::open(path).and_then(|mut file| file.read_to_string(&mut text));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// SIGKILL to Chromium's process group (it leads it), then reaps it.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = signal::killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `fut` on the protocol's runtime and waits for it, at most `timeout`.
fn block_on<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    timeout: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    handle.spawn(async move {
        let _ = tx.send(tokio::time::timeout(timeout, fut).await);
    });
    match rx.recv() {
        Ok(Ok(res)) => res.map_err(|err| format!("{what}: {err}")),
        Ok(Err(_)) => Err(format!(
            "{what}: the browser did not answer within {timeout:?}"
        )),
        Err(_) => Err(format!(
            "{what}: the browser is gone (its runtime has stopped)"
        )),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A tokio runtime on a thread of its own, so that callers need no runtime (or may be in one).
struct RuntimeThread {
    handle: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RuntimeThread {
    fn start() -> Result<RuntimeThread, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| format!("could not build a tokio runtime: {err}"))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("chromium-devtools".to_owned())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                runtime.shutdown_background();
            })
            .map_err(|err| format!("could not start the DevTools thread: {err}"))?;
        Ok(RuntimeThread {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a page's session reported on its own: dialogs and errors.
#[derive(Default)]
struct SessionLog {
    dialogs: Vec<String>,
    errors: Vec<String>,
}

type Pending = HashMap<u64, oneshot::Sender<Result<Value, String>>>;

/// One DevTools WebSocket: commands out, answers matched by id, events logged.
struct Connection {
    outgoing: mpsc::UnboundedSender<String>,
    pending: Mutex<Option<Pending>>,
    next_id: AtomicU64,
    sessions: Mutex<HashMap<String, SessionLog>>,
}

impl Connection {
    async fn open(url: &str) -> Result<Arc<Connection>, String> {
        // Screenshots of long pages are large single messages.
        let config = WebSocketConfig::default()
            .max_message_size(Some(512 << 20))
            .max_frame_size(Some(512 << 20));
        let (socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
            .await
            .map_err(|err| format!("could not connect to Chromium's DevTools at {url}: {err}"))?;
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut to_send) = mpsc::unbounded_channel::<String>();
        let conn = Arc::new(Connection {
            outgoing,
            pending: Mutex::new(Some(HashMap::new())),
            next_id: AtomicU64::new(1),
            sessions: Mutex::new(HashMap::new()),
        });
        tokio::spawn(async move {
            while let Some(text) = to_send.recv().await {
                if sink.send(Message::text(text)).await.is_err() {
                    break;
                }
            }
        });
        let reader = Arc::clone(&conn);
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                if let Ok(value) = serde_json::from_str::<Value>(text.as_str()) {
                    reader.dispatch(value);
                }
            }
            // The browser is gone: every caller still waiting gets an error at once.
            let pending = lock(&reader.pending).take().unwrap_or_default();
            for (_, waiter) in pending {
                let _ = waiter.send(Err("the browser closed the DevTools connection".to_owned()));
            }
        });
        Ok(conn)
    }

    async fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = Value::String(session.to_owned());
        }
        let (tx, rx) = oneshot::channel();
        match lock(&self.pending).as_mut() {
            Some(pending) => pending.insert(id, tx),
            None => return Err("the browser closed the DevTools connection".to_owned()),
        };
        if self.outgoing.send(message.to_string()).is_err() {
            return Err("the DevTools connection is closed".to_owned());
        }
        let answer = rx
            .await
            .map_err(|_| "the DevTools connection closed before answering".to_owned())??;
        Ok(answer)
    }

    /// Routes one message: an answer to its caller, an event to the page's log.
    fn dispatch(&self, message: Value) {
        if let Some(id) = message.get("id").and_then(Value::as_u64) {
            let waiter = lock(&self.pending)
                .as_mut()
                .and_then(|pending| pending.remove(&id));
            if let Some(waiter) = waiter {
                let res = match message.get("error") {
                    Some(error) => Err(format!(
                        "{}{}",
                        error["message"]
                            .as_str()
                            .unwrap_or("an error without a message"),
                        error["data"]
                            .as_str()
                            .map(|data| format!(" ({data})"))
                            .unwrap_or_default()
                    )),
                    None => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
                };
                let _ = waiter.send(res);
            }
            return;
        }
        let (Some(method), Some(session)) = (
            message.get("method").and_then(Value::as_str),
            message.get("sessionId").and_then(Value::as_str),
        ) else {
            return;
        };
        let params = &message["params"];
        match method {
            "Page.javascriptDialogOpening" => {
                let text = params["message"].as_str().unwrap_or_default().to_owned();
                lock(&self.sessions)
                    .entry(session.to_owned())
                    .or_default()
                    .dialogs
                    .push(text);
                // Answered without waiting: the reader must go on reading for the answer.
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                let accept = json!({
                    "id": id,
                    "sessionId": session,
                    "method": "Page.handleJavaScriptDialog",
                    "params": {"accept": true},
                });
                let _ = self.outgoing.send(accept.to_string());
            }
            "Runtime.exceptionThrown" => {
                let details = &params["exceptionDetails"];
                let text = details["exception"]["description"]
                    .as_str()
                    .or_else(|| details["text"].as_str())
                    .unwrap_or("an exception")
                    .to_owned();
                lock(&self.sessions)
                    .entry(session.to_owned())
                    .or_default()
                    .errors
                    .push(text);
            }
            "Runtime.consoleAPICalled" if params["type"] == "error" => {
                let text = params["args"]
                    .as_array()
                    .map(|args| {
                        args.iter()
                            .map(|arg| match arg.get("value") {
                                Some(Value::String(s)) => s.clone(),
                                Some(value) => value.to_string(),
                                None => arg["description"].as_str().unwrap_or_default().to_owned(),
                            })
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                lock(&self.sessions)
                    .entry(session.to_owned())
                    .or_default()
                    .errors
                    .push(format!("console.error: {text}"));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
