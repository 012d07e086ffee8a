//! The proxy's own pages: landing, odd hosts, fourohfour, replaced error pages, and
//! the access log they are counted in.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use proxy::{Maintainer, MaintainerKind, ToolInfo};
use test_support::poll::eventually;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::support::{dead_address, get, start_proxy, start_upstream};

#[tokio::test(flavor = "multi_thread")]
async fn odd_hosts_get_a_400_page_naming_the_rule_and_the_bare_domain_a_landing_page() {
    let proxy = start_proxy(|_| {}, None, None).await;
    for (host, rule) in [
        ("my_tool.localhost", "not a valid DNS name"),
        ("<script>x</script>.localhost", "not a valid DNS name"),
        ("a.b.localhost", "tool names match"),
        ("9lives.localhost", "tool names match"),
        ("mytool.localhost:http", "invalid port"),
    ] {
        let reply = get(proxy.addr, host, "/").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{host}");
        assert!(reply.body.contains(rule), "{host}: {}", reply.body);
        assert!(!reply.body.contains("<script>x"), "{}", reply.body);
    }
    let reply = get(proxy.addr, &format!("localhost:{}", proxy.addr.port()), "/").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.body.contains(&format!(
            "http://&lt;tool&gt;.localhost:{}/",
            proxy.addr.port()
        )),
        "{}",
        reply.body
    );
    let reply = get(proxy.addr, "example.org", "/").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.body.contains("serves tools at"), "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_without_a_webservice_gets_a_404_page_naming_its_maintainers_and_how_to_reach_them()
{
    let proxy = start_proxy(
        |config| {
            config.dashboard_url = Some("http://dash.example:8000".to_owned());
            config.mail_domain = Some("tools.example.org".to_owned());
        },
        None,
        None,
    )
    .await;
    proxy.directory.add_tool(
        "mytool",
        ToolInfo {
            maintainers: vec![
                Maintainer {
                    name: "alice".to_owned(),
                    kind: MaintainerKind::User,
                },
                Maintainer {
                    name: "helper-bot".to_owned(),
                    kind: MaintainerKind::Tool,
                },
            ],
        },
    );
    let reply = get(proxy.addr, "mytool.localhost", "/some/page").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let body = &reply.body;
    assert!(
        body.contains("<strong>mytool</strong> exists, but it is not running a webservice"),
        "{body}"
    );
    assert!(body.contains("<li>alice (user)</li>"), "{body}");
    assert!(
        body.contains(
            "<a href=\"http://dash.example:8000/tools/id/helper-bot\">helper-bot</a> (tool)"
        ),
        "{body}"
    );
    assert!(
        body.contains("http://dash.example:8000/tools/id/mytool"),
        "{body}"
    );
    assert!(
        body.contains("mailto:tools.mytool@tools.example.org"),
        "{body}"
    );
    // A webservice whose replicas are all gone is a 502, not fourohfour.
    proxy
        .directory
        .set_upstreams("mytool", vec![dead_address().await]);
    assert_eq!(
        get(proxy.addr, "mytool.localhost", "/").await.status,
        StatusCode::BAD_GATEWAY
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_tool_gets_a_404_page_with_the_nearest_tool_names_or_none() {
    let proxy = start_proxy(|_| {}, None, None).await;
    for name in ["mytool", "my-tool", "histmerge", "other"] {
        proxy.directory.add_tool(name, ToolInfo::default());
    }
    let host = format!("mytoll.localhost:{}", proxy.addr.port());
    let reply = get(proxy.addr, &host, "/").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(
        reply
            .body
            .contains("There is no tool named <strong>mytoll</strong>"),
        "{}",
        reply.body
    );
    assert!(reply.body.contains("Did you mean"), "{}", reply.body);
    let port = proxy.addr.port();
    assert!(
        reply.body.contains(&format!(
            "<a href=\"http://mytool.localhost:{port}/\">mytool</a>"
        )),
        "{}",
        reply.body
    );
    assert!(reply.body.contains(">my-tool</a>"), "{}", reply.body);
    assert!(!reply.body.contains("histmerge"), "{}", reply.body);
    let reply = get(proxy.addr, "zzzzzzzzzz.localhost", "/").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(
        reply.body.contains("No tool has a similar name"),
        "{}",
        reply.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_in_the_errors_directory_replaces_the_platforms_page() {
    let dir = tempfile::tempdir().unwrap();
    let errors = dir.path().to_owned();
    let proxy = start_proxy(|config| config.errors_dir = Some(errors), None, None).await;
    proxy
        .directory
        .set_upstreams("mytool", vec![dead_address().await]);
    let reply = get(proxy.addr, "mytool.localhost", "/").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert!(
        reply.body.contains("none of its replicas"),
        "{}",
        reply.body
    );
    std::fs::write(
        dir.path().join("502.html"),
        "<p>Our own bad gateway page</p>",
    )
    .unwrap();
    let reply = get(proxy.addr, "mytool.localhost", "/").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.body, "<p>Our own bad gateway page</p>");
    assert_eq!(reply.headers["content-type"], "text/html; charset=utf-8");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_gets_one_access_log_line_with_tool_status_bytes_and_client() {
    let dir = tempfile::tempdir().unwrap();
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let log = proxy::AccessLog::start(
        dir.path(),
        proxy::access_log::Rotation::default(),
        &tracker,
        cancel.clone(),
    )
    .unwrap();
    let a = start_upstream("a", Arc::default()).await;
    let proxy = start_proxy(|_| {}, None, Some(log)).await;
    proxy.directory.set_upstreams("mytool", vec![a]);
    let ok = get(proxy.addr, "mytool.localhost", "/page?x=1").await;
    get(proxy.addr, "nosuchtool.localhost", "/missing").await;
    let path = dir.path().join(proxy::access_log::FILE_NAME);
    let lines = tokio::task::spawn_blocking(move || {
        eventually(Duration::from_secs(10), || {
            let text = std::fs::read_to_string(&path).ok()?;
            let lines: Vec<serde_json::Value> = text
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect();
            (lines.len() == 2).then_some(lines)
        })
    })
    .await
    .unwrap()
    .expect("two access log lines");
    assert_eq!(lines[0]["tool"], "mytool");
    assert_eq!(lines[0]["path"], "/page?x=1");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["bytes"], ok.body.len());
    assert_eq!(lines[0]["client"], "127.0.0.1");
    assert_eq!(lines[0]["method"], "GET");
    assert_eq!(lines[1]["tool"], "nosuchtool");
    assert_eq!(lines[1]["status"], 404);
    let stats = proxy::access_log::summarize(dir.path(), &Default::default()).unwrap();
    assert_eq!(stats.requests, 2);
    cancel.cancel();
}
