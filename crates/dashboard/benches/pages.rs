//! Server time of the dashboard's heavy pages with 3,000 tools in the store (issue 10:
//! under 50 ms): `cargo bench -p dashboard --bench pages`.
//!
//! The store gets 3,000 tools with one or two maintainers each (out of 1,000 users),
//! licence, tags, authors and links, 10,000 audit records and 300 open membership
//! requests. Each page is requested through the dashboard's router in process (the
//! session and CSRF layers included, no network), 200 times after 10 warm-ups, and the
//! table prints p50 and p99 of the time to a complete response body.
//! `toolinfo.json` is served from a cache that is rebuilt when the catalogue changes, so
//! it is measured twice: as served (the catalogue unchanged between requests) and
//! rebuilt (a tool's title changed before each request, outside the timing).
//! The tool page is measured as a visitor sees it and as an admin sees it; this
//! benchmark runs without a jobs engine, so the admin's jobs, envvars and logs panels
//! (which read the engine's memory, the envvars table and the tool's log files) are
//! not part of the number.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

const N_TOOLS: usize = 3_000;
const N_USERS: usize = 1_000;
const N_AUDIT: usize = 10_000;
const N_REQUESTS: usize = 300;
const WARMUP: usize = 10;
const ROUNDS: usize = 200;
const TARGET: Duration = Duration::from_millis(50);
const PASSWORD: &str = "benchmark password";
const TAGS: &[&str] = &[
    "wikidata", "commons", "bots", "maps", "stats", "wiki", "lint",
];
const LICENSES: &[&str] = &["MIT", "Apache-2.0", "GPL-3.0-or-later", "BSD-3-Clause"];

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    // Seeding writes 7,000 transactions with synchronous=FULL; on tmpfs that takes
    // seconds instead of minutes. Pages only read, from the page cache either way.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("a temporary directory");
    let store = store::Store::open(&dir.path().join("db.sqlite"))
        .await
        .expect("the store opens");
    let now = time::OffsetDateTime::now_utc();
    let ca =
        Arc::new(pki::CertificateAuthority::create(now, time::Duration::days(30)).expect("a CA"));
    let accounts = Arc::new(accounts::Accounts::new(
        store.clone(),
        ca,
        accounts::AccountsConfig {
            data_dir: dir.path().to_path_buf(),
            homes_dir: dir.path().join("project"),
            public_api_url: "https://127.0.0.1:30003".to_owned(),
            cert_validity: time::Duration::days(10),
            renew_before: time::Duration::days(1),
            set_ownership: false,
        },
        Arc::new(accounts::SystemClock),
    ));
    let started = Instant::now();
    seed(&accounts, now).await;
    println!(
        "seeded {N_TOOLS} tools, {N_USERS} users, {N_AUDIT} audit records, {N_REQUESTS} membership requests in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let state = dashboard::DashboardState::new(
        accounts,
        dashboard::DashboardConfig::new(
            "http://127.0.0.1:8000".to_owned(),
            "toolforge.org".to_owned(),
            8080,
        ),
    );
    let store = state.store.clone();
    let app = dashboard::router(state);
    let admin_cookie = log_in(&app, "root").await;

    let pages: &[(&str, &str, Option<&str>)] = &[
        ("tool list, page 1", "/tools/", None),
        ("tool list, page 30", "/tools/?page=30", None),
        ("search 'wikidata'", "/tools/?q=wikidata", None),
        ("search, no match", "/tools/?q=zzzz-nothing", None),
        ("search 'number 15'", "/tools/?q=number%2015", None),
        ("search 'wi' (2 chars)", "/tools/?q=wi", None),
        ("tool page (visitor)", "/tools/id/tool-01500", None),
        (
            "tool page (admin)",
            "/tools/id/tool-01500",
            Some(admin_cookie.as_str()),
        ),
        (
            "toolinfo.json v1.2",
            "/tools/toolinfo/v1.2/toolinfo.json",
            None,
        ),
        ("toolinfo.json v1", "/tools/toolinfo/v1/toolinfo.json", None),
        (
            "admin audit log",
            "/admin/audit",
            Some(admin_cookie.as_str()),
        ),
        (
            "admin tools",
            "/admin?q=tool-01",
            Some(admin_cookie.as_str()),
        ),
        (
            "membership queue (open)",
            "/tools/membership/queue?status=open",
            Some(admin_cookie.as_str()),
        ),
    ];
    println!();
    println!(
        "{:<28} {:>10} {:>10} {:>10}  under 50 ms",
        "page", "p50 ms", "p99 ms", "KiB"
    );
    for (label, path, cookie) in pages {
        let mut times = Vec::with_capacity(ROUNDS);
        let mut size = 0;
        for round in 0..WARMUP + ROUNDS {
            let begin = Instant::now();
            let (status, body) = get(&app, path, *cookie).await;
            let elapsed = begin.elapsed();
            assert!(status.is_success(), "{path}: {status}");
            size = body.len();
            if round >= WARMUP {
                times.push(elapsed);
            }
        }
        print_row(label, times, size);
    }
    // The cache's worst case: the catalogue changed since the last request.
    let path = "/tools/toolinfo/v1.2/toolinfo.json";
    let mut times = Vec::with_capacity(ROUNDS);
    let mut size = 0;
    for round in 0..WARMUP + ROUNDS {
        let tool = format!("tool-{:05}", round % N_TOOLS);
        let info = store
            .tool_info(&tool)
            .await
            .expect("the store answers")
            .expect("the tool");
        let title = format!("Tool renamed in round {round}");
        store
            .set_tool_info(
                &tool,
                store::ToolInfoUpdate {
                    title: &title,
                    description: &info.tool.description,
                    info: &info.info,
                },
                time::OffsetDateTime::now_utc(),
            )
            .await
            .expect("a title change");
        let begin = Instant::now();
        let (status, body) = get(&app, path, None).await;
        let elapsed = begin.elapsed();
        assert!(status.is_success(), "{path}: {status}");
        assert!(
            String::from_utf8_lossy(&body).contains(&title),
            "the rebuilt catalogue has the new title"
        );
        size = body.len();
        if round >= WARMUP {
            times.push(elapsed);
        }
    }
    print_row("toolinfo.json v1.2, rebuilt", times, size);

    // Where a rebuild's time goes: the store's read alone.
    let mut times = Vec::with_capacity(ROUNDS);
    for round in 0..WARMUP + ROUNDS {
        let begin = Instant::now();
        let tools = store.all_tool_infos().await.expect("the catalogue");
        let elapsed = begin.elapsed();
        assert_eq!(tools.len(), N_TOOLS);
        if round >= WARMUP {
            times.push(elapsed);
        }
    }
    print_row("(store read of a rebuild)", times, 0);
}

fn print_row(label: &str, mut times: Vec<Duration>, size: usize) {
    times.sort();
    let p50 = times[times.len() / 2];
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    println!(
        "{:<28} {:>10.2} {:>10.2} {:>10.1}  {}",
        label,
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
        size as f64 / 1024.0,
        if p99 < TARGET { "yes" } else { "NO" }
    );
}

async fn seed(accounts: &accounts::Accounts, now: time::OffsetDateTime) {
    let store = accounts.store();
    accounts
        .create_user("root", "root@example.org", PASSWORD, true)
        .await
        .expect("the admin");
    for user_idx in 0..N_USERS {
        store
            .create_user(store::NewUser {
                name: &format!("user-{user_idx:04}"),
                email: "someone@example.org",
                password_hash: "not a real hash",
                is_admin: false,
                now,
            })
            .await
            .expect("a user");
    }
    for tool_idx in 0..N_TOOLS {
        let name = format!("tool-{tool_idx:05}");
        let maintainer = format!("user-{:04}", tool_idx % N_USERS);
        let title = format!("Tool number {tool_idx}");
        let description = format!(
            "Tool {tool_idx} does {} work for the {} community, every day.",
            TAGS[tool_idx % TAGS.len()],
            TAGS[(tool_idx / 7) % TAGS.len()]
        );
        store
            .create_tool(store::NewTool {
                name: &name,
                title: &title,
                description: &description,
                maintainer: &maintainer,
                now,
            })
            .await
            .expect("a tool");
        if tool_idx % 2 == 0 {
            let second = format!("user-{:04}", (tool_idx + 1) % N_USERS);
            store
                .add_maintainer(&name, &second, now)
                .await
                .expect("a second maintainer");
        }
        let info = store::ToolInfo {
            license: Some(LICENSES[tool_idx % LICENSES.len()].to_owned()),
            tags: vec![
                TAGS[tool_idx % TAGS.len()].to_owned(),
                TAGS[(tool_idx + 3) % TAGS.len()].to_owned(),
            ],
            authors: vec![maintainer.clone()],
            repository: format!("https://gitlab.example.org/toolforge-repos/{name}"),
            issues: String::new(),
            docs: format!("https://wiki.example.org/Tool:{name}"),
            is_webservice: tool_idx % 3 != 0,
            suburl: String::new(),
        };
        store
            .set_tool_info(
                &name,
                store::ToolInfoUpdate {
                    title: &title,
                    description: &description,
                    info: &info,
                },
                now,
            )
            .await
            .expect("tool metadata");
    }
    for audit_idx in 0..N_AUDIT {
        store
            .record_audit(&store::NewAudit {
                actor: "root",
                action: "quota set",
                target: &format!("tool-{:05}", audit_idx % N_TOOLS),
                detail: "pods=20",
                at: now - time::Duration::seconds(i64::try_from(N_AUDIT - audit_idx).unwrap_or(0)),
            })
            .await
            .expect("an audit record");
    }
    for request_idx in 0..N_REQUESTS {
        store
            .create_access_request(
                &format!("user-{request_idx:04}"),
                "I would like to run a bot that fixes links.",
                now,
            )
            .await
            .expect("a membership request");
    }
}

async fn send(app: &axum::Router, mut request: Request<Body>) -> axum::response::Response {
    let addr: SocketAddr = "127.0.0.1:40000".parse().expect("an address");
    request.extensions_mut().insert(ConnectInfo(addr));
    app.clone()
        .oneshot(request)
        .await
        .expect("the router answers")
}

async fn get(
    app: &axum::Router,
    path: &str,
    cookie: Option<&str>,
) -> (axum::http::StatusCode, axum::body::Bytes) {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let response = send(app, request.body(Body::empty()).expect("a request")).await;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (status, body)
}

/// Logs `user` in through the log-in form; returns the session cookie.
async fn log_in(app: &axum::Router, user: &str) -> String {
    let response = send(
        app,
        Request::get("/login")
            .body(Body::empty())
            .expect("a request"),
    )
    .await;
    let cookie = session_cookie(&response).expect("an anonymous session");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    let body = String::from_utf8_lossy(&body);
    let marker = r#"name="csrf_token" value=""#;
    let start = body.find(marker).expect("a CSRF field") + marker.len();
    let token = &body[start..start + body[start..].find('"').expect("its end")];
    let form = format!("csrf_token={token}&username={user}&password=benchmark%20password&next=%2F");
    let response = send(
        app,
        Request::post("/login")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .expect("a request"),
    )
    .await;
    session_cookie(&response).expect("a logged-in session")
}

fn session_cookie(response: &axum::response::Response) -> Option<String> {
    let set = response.headers().get(header::SET_COOKIE)?.to_str().ok()?;
    Some(set.split(';').next()?.to_owned())
}
