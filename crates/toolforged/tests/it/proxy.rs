//! System tests of the front proxy in the real daemon: fourohfour pages from the real
//! store, `admin web-stats` over the real access log, and bans through `admin ban-ip`
//! that apply at once and survive a restart.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use test_support::poll::eventually;

use crate::daemon_with_tool;

/// `GET path` with `Host: host` over a new connection; the status and the body.
fn get(proxy: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(proxy).expect("the proxy accepts connections");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn an_unknown_host_gets_a_404_page_suggesting_real_tools() {
    let daemon = daemon_with_tool();
    daemon.create_tool("histmerge", "alice");
    let proxy = daemon.addresses().proxy;
    let (status, body) = get(proxy, &format!("mytoll.localhost:{}", proxy.port()), "/");
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("There is no tool named <strong>mytoll</strong>"),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "<a href=\"http://mytool.localhost:{}/\">mytool</a>",
            proxy.port()
        )),
        "{body}"
    );
    assert!(!body.contains("histmerge"), "{body}");
}

#[test]
fn an_existing_tool_without_a_webservice_gets_a_404_page_with_its_maintainers() {
    let daemon = daemon_with_tool();
    daemon.create_tool("helperbot", "alice");
    daemon.admin_ok(&["tool", "add-maintainer", "mytool", "helperbot"]);
    let proxy = daemon.addresses().proxy;
    let (status, body) = get(proxy, "mytool.localhost", "/index.html");
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("<strong>mytool</strong> exists, but it is not running a webservice"),
        "{body}"
    );
    let web = daemon.addresses().web;
    assert!(body.contains("<li>alice (user)</li>"), "{body}");
    assert!(
        body.contains(&format!(
            "<a href=\"http://{web}/tools/id/helperbot\">helperbot</a> (tool)"
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!("http://{web}/tools/id/mytool")),
        "{body}"
    );
    // Odd hosts are refused with the rule, and the bare domain has a landing page.
    let (status, body) = get(proxy, "my_tool.localhost", "/");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not a valid DNS name"), "{body}");
    let (status, _) = get(proxy, "localhost", "/");
    assert_eq!(status, 200);
}

#[test]
fn web_stats_summarises_the_requests_the_proxy_served() {
    let daemon = daemon_with_tool();
    let proxy = daemon.addresses().proxy;
    for path in ["/a", "/a?x=1", "/b"] {
        get(proxy, "mytool.localhost", path);
    }
    get(proxy, "other.localhost", "/a");
    let stats = eventually(Duration::from_secs(10), || {
        let stats = daemon.admin_json(&["web-stats", "--tool", "mytool", "--since", "1h"]);
        (stats["requests"] == 3).then_some(stats)
    })
    .expect("web-stats counts the three requests for mytool");
    assert_eq!(
        stats["statuses"],
        serde_json::json!([{"key": "404", "requests": 3}])
    );
    assert_eq!(
        stats["top_paths"][0],
        serde_json::json!({"key": "/a", "requests": 2})
    );
    assert_eq!(
        stats["top_clients"][0],
        serde_json::json!({"key": "127.0.0.1", "requests": 3})
    );
    let all = daemon.admin_json(&["web-stats"]);
    assert_eq!(all["requests"], 4);
    let text = daemon.admin_ok(&["web-stats"]);
    assert!(text.contains("Requests:        4"), "{text}");
    assert!(text.contains("Top tools"), "{text}");
    let refused = daemon.admin(&["web-stats", "--since", "yesterday"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("invalid --since"));
}

#[test]
fn a_banned_client_gets_403_at_once_until_unbanned_also_after_a_restart() {
    let mut daemon = daemon_with_tool();
    let proxy = daemon.addresses().proxy;
    assert_eq!(get(proxy, "mytool.localhost", "/").0, 404);
    daemon.admin_ok(&["ban-ip", "127.0.0.0/8", "--reason", "flooding <the> proxy"]);
    let (status, body) = eventually(Duration::from_secs(1), || {
        let (status, body) = get(proxy, "mytool.localhost", "/");
        (status == 403).then_some((status, body))
    })
    .expect("the ban applies within a second");
    assert_eq!(status, 403);
    assert!(body.contains("flooding &#60;the&#62; proxy"), "{body}");
    daemon.restart();
    let proxy = daemon.addresses().proxy;
    assert_eq!(
        get(proxy, "mytool.localhost", "/").0,
        403,
        "the ban survives a restart"
    );
    daemon.admin_ok(&["unban-ip", "127.0.0.0/8"]);
    eventually(Duration::from_secs(1), || {
        (get(proxy, "mytool.localhost", "/").0 == 404).then_some(())
    })
    .expect("the unbanned client gets through within a second");
    daemon.restart();
    let proxy = daemon.addresses().proxy;
    assert_eq!(
        get(proxy, "mytool.localhost", "/").0,
        404,
        "the unban survives a restart"
    );
}
