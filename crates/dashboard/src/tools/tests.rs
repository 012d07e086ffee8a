//! Router tests of the tool pages and toolinfo.json against a real store, CA and tool
//! homes: creation with bad and taken names, maintainers, who sees what, the
//! kubeconfig, escaping and CSRF on these forms.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::router;
use crate::testkit::{Browser, Fixture, PASSWORD, Page, assert_redirect, fixture_with};

/// The client address of these tests' browsers.
const VISITOR: &str = "10.1.0.1";

impl Browser {
    async fn logged_in(fixture: &Fixture, user: &str) -> Browser {
        let mut browser = Browser::new(fixture, VISITOR);
        browser.get("/login").await;
        let page = browser
            .post(
                "/login",
                &[("username", user), ("password", PASSWORD), ("next", "/")],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        browser
    }

    /// Creates `name` through the form; the page answered.
    async fn create_tool(&mut self, name: &str, title: &str, tags: &str) -> Page {
        self.get("/tools/create").await;
        self.post(
            "/tools/create",
            &[
                ("name", name),
                ("title", title),
                ("description", "A tool for tests"),
                ("license", "MIT"),
                ("tags", tags),
                ("is_webservice", "on"),
            ],
        )
        .await
    }
}

/// A dashboard with admin `root` and members `alice` and `bob` (accounts an admin made
/// count as members).
async fn fixture() -> Fixture {
    fixture_with(
        &[("root", true), ("alice", false), ("bob", false)],
        "toolforge.org",
    )
    .await
}

#[tokio::test]
async fn a_member_creates_a_tool_with_its_home_and_bad_or_taken_names_are_refused() {
    let fixture = fixture().await;
    let mut alice = Browser::logged_in(&fixture, "alice").await;

    let page = alice.create_tool("Bad_Name", "Bad", "").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.body.contains(crate::tools::NAME_RULE_MESSAGE),
        "{}",
        page.body
    );
    for taken in ["alice", "root"] {
        let page = alice.create_tool(taken, "Taken", "").await;
        assert_eq!(page.status, StatusCode::CONFLICT, "{taken}");
        assert!(
            page.body.contains("Tool name is already in use."),
            "{taken}"
        );
    }
    assert!(fixture.state.store.list_tools().await.unwrap().is_empty());

    let api = alice.get("/tools/api/toolname/mytool").await;
    assert_eq!(api.status, StatusCode::OK);
    assert!(api.body.contains(r#""available":true"#), "{}", api.body);

    let page = alice.create_tool("mytool", "My tool", "wiki, bots").await;
    assert_redirect(&page, "/tools/id/mytool");
    let home = fixture.state.accounts.tool_home("mytool");
    assert!(home.client_cert().is_file() && home.kubeconfig().is_file());
    let page = alice.get("/tools/id/mytool").await;
    assert!(page.body.contains("Tool mytool created"), "{}", page.body);
    assert!(page.body.contains("http://mytool.toolforge.org:8080/"));
    assert!(page.body.contains("MIT License (MIT)"));

    let api = alice.get("/tools/api/toolname/mytool").await;
    assert_eq!(api.status, StatusCode::NOT_ACCEPTABLE);
    assert!(
        api.body.contains("Tool name is already in use."),
        "{}",
        api.body
    );
    let api = alice.get("/tools/api/toolname/-x").await;
    assert_eq!(api.status, StatusCode::NOT_ACCEPTABLE);
    assert!(api.body.contains("Must start with a-z"), "{}", api.body);
    let page = alice.create_tool("mytool", "Again", "").await;
    assert_eq!(page.status, StatusCode::CONFLICT);

    let audit = fixture
        .state
        .store
        .list_audit(&store::AuditFilter::default())
        .await
        .unwrap();
    assert!(audit.iter().any(|entry| entry.action == "tool create"
        && entry.actor == "alice"
        && entry.target == "mytool"));
}

#[tokio::test]
async fn the_tool_list_searches_names_titles_descriptions_and_tags() {
    let fixture = fixture().await;
    let mut alice = Browser::logged_in(&fixture, "alice").await;
    alice.create_tool("alpha", "First", "wikidata").await;
    alice.create_tool("beta", "Second", "commons").await;
    let mut visitor = Browser::new(&fixture, VISITOR);
    let page = visitor.get("/tools/").await;
    assert!(page.body.contains("2 tools"), "{}", page.body);
    let page = visitor.get("/tools/?q=WIKIDATA").await;
    assert!(page.body.contains("/tools/id/alpha") && !page.body.contains("/tools/id/beta"));
    let page = visitor.get("/tools/?q=second").await;
    assert!(page.body.contains("/tools/id/beta") && !page.body.contains("/tools/id/alpha"));
    let page = visitor.get("/tools/?page=0").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("pages are numbered from 1"));
}

#[tokio::test]
async fn maintainers_add_and_remove_users_and_tools_and_others_get_403() {
    let fixture = fixture().await;
    let mut alice = Browser::logged_in(&fixture, "alice").await;
    alice.create_tool("mytool", "Mine", "").await;
    alice.create_tool("helper", "Helper", "").await;

    let mut bob = Browser::logged_in(&fixture, "bob").await;
    let page = bob.get("/tools/id/mytool").await;
    assert!(!page.body.contains("maintainer-add-form") && !page.body.contains("kubeconfig-form"));
    let page = bob
        .post("/tools/id/mytool/maintainers/add", &[("member", "bob")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = bob.post("/tools/id/mytool/kubeconfig", &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);

    alice.get("/tools/id/mytool").await;
    for member in ["bob", "helper"] {
        let page = alice
            .post("/tools/id/mytool/maintainers/add", &[("member", member)])
            .await;
        assert_redirect(&page, "/tools/id/mytool");
        assert!(
            alice
                .get("/tools/id/mytool")
                .await
                .body
                .contains("Maintainers updated")
        );
    }
    alice
        .post("/tools/id/mytool/maintainers/add", &[("member", "bob")])
        .await;
    assert!(
        alice
            .get("/tools/id/mytool")
            .await
            .body
            .contains("Maintainers unchanged")
    );
    let page = alice
        .post("/tools/id/mytool/maintainers/add", &[("member", "nobody")])
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        page.body
            .contains("There is no user or tool named &#39;nobody&#39;."),
        "{}",
        page.body
    );

    let maintainers = fixture.state.store.maintainers("mytool").await.unwrap();
    let names: Vec<&str> = maintainers.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "helper"]);
    // bob is a maintainer now: he sees the forms.
    let page = bob.get("/tools/id/mytool").await;
    assert!(page.body.contains("maintainer-add-form") && page.body.contains("kubeconfig-form"));

    for member in ["helper", "alice"] {
        let page = bob
            .post("/tools/id/mytool/maintainers/remove", &[("member", member)])
            .await;
        assert_redirect(&page, "/tools/id/mytool");
    }
    let page = bob
        .post("/tools/id/mytool/maintainers/remove", &[("member", "bob")])
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert!(page.body.contains("last maintainer"), "{}", page.body);
    let page = alice
        .post("/tools/id/mytool/maintainers/add", &[("member", "alice")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_maintainer_downloads_the_kubeconfig_with_the_tools_certificate_inline() {
    let fixture = fixture().await;
    let mut alice = Browser::logged_in(&fixture, "alice").await;
    alice.create_tool("mytool", "Mine", "").await;
    alice.get("/tools/id/mytool").await;
    let page = alice.post("/tools/id/mytool/kubeconfig", &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.content_type, "application/yaml");
    let yaml: serde_json::Value = serde_norway::from_str(&page.body).unwrap();
    assert_eq!(yaml["contexts"][0]["context"]["namespace"], "tool-mytool");
    assert_eq!(
        yaml["clusters"][0]["cluster"]["server"],
        "https://127.0.0.1:30003"
    );
    let user = &yaml["users"][0]["user"];
    use base64::Engine;
    let cert = base64::engine::general_purpose::STANDARD
        .decode(user["client-certificate-data"].as_str().unwrap())
        .unwrap();
    let home = fixture.state.accounts.tool_home("mytool");
    assert_eq!(cert, std::fs::read(home.client_cert()).unwrap());
    assert!(user["client-key-data"].is_string());
    let audit = fixture
        .state
        .store
        .list_audit(&store::AuditFilter::default())
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|entry| entry.action == "tool kubeconfig download"
                && entry.actor == "alice"
                && entry.target == "mytool")
    );
}

#[tokio::test]
async fn toolinfo_json_has_the_v1_and_v1_2_shapes_for_every_tool() {
    let fixture = fixture().await;
    let mut alice = Browser::logged_in(&fixture, "alice").await;
    alice.create_tool("mytool", "Mine", "wiki, bots").await;
    fixture
        .state
        .accounts
        .create_tool("plain", "bob", "Plain", "")
        .await
        .unwrap();
    let mut visitor = Browser::new(&fixture, VISITOR);

    let page = visitor.get("/tools/toolinfo/v1/toolinfo.json").await;
    assert_eq!(page.content_type, "application/json; charset=utf-8");
    let v1: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(
        v1,
        serde_json::json!([
            {"name": "toolforge-mytool", "title": "Mine", "description": "A tool for tests",
             "url": "http://mytool.toolforge.org:8080/", "keywords": "bots, wiki",
             "author": "alice", "repository": null},
            {"name": "toolforge-plain", "title": "Plain", "description": "",
             "url": "http://127.0.0.1:8000/tools/id/plain", "keywords": "",
             "author": "", "repository": null},
        ])
    );
    let page = visitor.get("/tools/toolinfo/v1.2/toolinfo.json").await;
    let v1_2: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(
        v1_2[0],
        serde_json::json!({"name": "toolforge-mytool", "title": "Mine",
            "description": "A tool for tests", "url": "http://mytool.toolforge.org:8080/",
            "keywords": "bots, wiki", "author": [{"name": "alice"}], "license": "MIT",
            "technology_used": ["Toolforge"], "tool_type": "web app",
            "_schema": "/toolinfo/1.2.2"})
    );
    // Striker's key order: name first, _schema last.
    let at = |key: &str| page.body.find(&format!("\"{key}\"")).unwrap();
    assert!(at("name") < at("author") && at("author") < at("technology_used"));
    assert!(at("technology_used") < at("_schema"));
    assert_eq!(v1_2[1]["author"], serde_json::json!([]));
    assert!(v1_2[1].get("tool_type").is_none());
}

#[tokio::test]
async fn script_in_every_tool_field_comes_back_escaped() {
    let fixture = fixture().await;
    let mut alice = Browser::logged_in(&fixture, "alice").await;
    let script = "<script>alert(1)</script>";
    alice.create_tool("mytool", script, script).await;
    alice.get("/tools/id/mytool/edit").await;
    let page = alice
        .post(
            "/tools/id/mytool/edit",
            &[
                ("title", script),
                ("description", script),
                ("license", "MIT"),
                ("tags", script),
                ("authors", script),
                ("repository", "https://example.org/<script>"),
                ("issues", ""),
                ("docs", ""),
                ("suburl", ""),
            ],
        )
        .await;
    assert_redirect(&page, "/tools/id/mytool");
    let bad_edit = alice
        .post(
            "/tools/id/mytool/edit",
            &[
                ("title", script),
                ("description", script),
                ("license", script),
                ("suburl", script),
            ],
        )
        .await;
    assert_eq!(bad_edit.status, StatusCode::BAD_REQUEST);
    let bad_maintainer = alice
        .post("/tools/id/mytool/maintainers/add", &[("member", script)])
        .await;
    let bad_create = alice.create_tool(script, script, script).await;
    for page in [
        alice.get("/tools/id/mytool").await,
        alice.get("/tools/id/mytool/edit").await,
        alice.get("/tools/").await,
        alice.get("/tools/?q=%3Cscript%3E").await,
        bad_edit,
        bad_maintainer,
        bad_create,
    ] {
        assert!(!page.body.contains("<script>alert"), "{}", page.body);
        assert!(
            page.body.contains("&#60;script&#62;") || page.body.contains("&lt;script&gt;"),
            "{}",
            page.body
        );
    }
}

#[tokio::test]
async fn the_tool_forms_refuse_a_post_without_the_csrf_token() {
    let fixture = fixture().await;
    let mut alice = Browser::logged_in(&fixture, "alice").await;
    alice.create_tool("mytool", "Mine", "").await;
    for (path, fields) in [
        (
            "/tools/create",
            vec![
                ("name", "other"),
                ("title", "t"),
                ("description", "d"),
                ("license", "MIT"),
            ],
        ),
        ("/tools/id/mytool/maintainers/add", vec![("member", "bob")]),
        (
            "/tools/id/mytool/maintainers/remove",
            vec![("member", "alice")],
        ),
        (
            "/tools/id/mytool/edit",
            vec![("title", "t"), ("description", "d"), ("license", "MIT")],
        ),
        ("/tools/id/mytool/kubeconfig", vec![]),
    ] {
        let page = alice.post_raw(path, &fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        let mut wrong = vec![("csrf_token", "0123abcd")];
        wrong.extend(fields);
        let page = alice.post_raw(path, &wrong).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(fixture.state.store.list_tools().await.unwrap().len(), 1);
    assert_eq!(
        fixture
            .state
            .store
            .maintainers("mytool")
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn only_members_and_admins_create_tools() {
    let fixture = fixture().await;
    let mut visitor = Browser::new(&fixture, VISITOR);
    let page = visitor.get("/tools/create").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    // A signed-up user without approved membership is refused.
    let mut carol = Browser::new(&fixture, VISITOR);
    carol.get("/signup").await;
    carol
        .post(
            "/signup",
            &[
                ("username", "carol"),
                ("email", "carol@example.org"),
                ("password", PASSWORD),
                ("password2", PASSWORD),
            ],
        )
        .await;
    let page = carol.get("/tools/create").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("Only Toolforge members create tools"));
    let mut root = Browser::logged_in(&fixture, "root").await;
    assert_redirect(
        &root.create_tool("admintool", "A", "").await,
        "/tools/id/admintool",
    );
}

#[tokio::test]
async fn toolinfo_json_is_never_stale_a_changed_title_new_tool_or_deletion_shows_on_the_next_request()
 {
    let fixture = fixture().await;
    let mut alice = Browser::logged_in(&fixture, "alice").await;
    alice.create_tool("mytool", "First title", "wiki").await;
    let mut visitor = Browser::new(&fixture, VISITOR);
    let titles = |page: &Page| -> Vec<(String, String)> {
        let records: serde_json::Value = serde_json::from_str(&page.body).unwrap();
        records
            .as_array()
            .unwrap()
            .iter()
            .map(|record| {
                (
                    record["name"].as_str().unwrap().to_owned(),
                    record["title"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    for path in [
        "/tools/toolinfo/v1/toolinfo.json",
        "/tools/toolinfo/v1.2/toolinfo.json",
    ] {
        let page = visitor.get(path).await;
        assert_eq!(
            titles(&page),
            [("toolforge-mytool".to_owned(), "First title".to_owned())]
        );
    }

    // Through the edit form.
    alice.get("/tools/id/mytool/edit").await;
    let page = alice
        .post(
            "/tools/id/mytool/edit",
            &[
                ("title", "Second title"),
                ("description", "A tool for tests"),
                ("license", "MIT"),
                ("tags", "wiki"),
                ("authors", "alice"),
                ("repository", ""),
                ("issues", ""),
                ("docs", ""),
                ("suburl", ""),
            ],
        )
        .await;
    assert_redirect(&page, "/tools/id/mytool");
    for path in [
        "/tools/toolinfo/v1/toolinfo.json",
        "/tools/toolinfo/v1.2/toolinfo.json",
    ] {
        let page = visitor.get(path).await;
        assert_eq!(
            titles(&page),
            [("toolforge-mytool".to_owned(), "Second title".to_owned())],
            "{path}"
        );
    }

    // Through the store, not the dashboard: the dashboard has no hook to invalidate it.
    set_title_in_the_store(&fixture, "mytool", "Third title").await;
    let page = visitor.get("/tools/toolinfo/v1/toolinfo.json").await;
    assert_eq!(
        titles(&page),
        [("toolforge-mytool".to_owned(), "Third title".to_owned())]
    );

    // A tool made by the admin command's code path, then deleted.
    fixture
        .state
        .accounts
        .create_tool("other", "bob", "Other", "")
        .await
        .unwrap();
    let page = visitor.get("/tools/toolinfo/v1.2/toolinfo.json").await;
    assert_eq!(titles(&page).len(), 2);
    fixture.state.accounts.delete_tool("other").await.unwrap();
    let page = visitor.get("/tools/toolinfo/v1.2/toolinfo.json").await;
    assert_eq!(
        titles(&page),
        [("toolforge-mytool".to_owned(), "Third title".to_owned())]
    );
}

/// Changes a title through the store directly, keeping the rest of the metadata.
async fn set_title_in_the_store(fixture: &Fixture, tool: &str, title: &str) {
    let info = fixture.state.store.tool_info(tool).await.unwrap().unwrap();
    fixture
        .state
        .store
        .set_tool_info(
            tool,
            store::ToolInfoUpdate {
                title,
                description: &info.tool.description,
                info: &info.info,
            },
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn toolinfo_json_answers_304_to_its_etag_until_the_catalogue_changes() {
    let fixture = fixture().await;
    let mut alice = Browser::logged_in(&fixture, "alice").await;
    alice.create_tool("mytool", "Mine", "wiki").await;
    let app = router(fixture.state.clone());
    let fetch = |if_none_match: Option<String>| {
        let app = app.clone();
        async move {
            let mut request = Request::get("/tools/toolinfo/v1.2/toolinfo.json");
            if let Some(tag) = if_none_match {
                request = request.header(header::IF_NONE_MATCH, tag);
            }
            let mut request = request.body(Body::empty()).unwrap();
            request
                .extensions_mut()
                .insert(ConnectInfo("10.1.0.2:40000".parse::<SocketAddr>().unwrap()));
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let etag = response
                .headers()
                .get(header::ETAG)
                .map(|value| value.to_str().unwrap().to_owned());
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, etag, body)
        }
    };
    let (status, etag, body) = fetch(None).await;
    assert_eq!(status, StatusCode::OK);
    let etag = etag.expect("an ETag");
    assert!(!body.is_empty());
    let (status, again, body) = fetch(Some(etag.clone())).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.as_deref(), Some(etag.as_str()));
    assert!(body.is_empty());
    let (status, _, _) = fetch(Some(format!("\"other\", W/{etag}"))).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    let (status, _, _) = fetch(Some("\"something else\"".to_owned())).await;
    assert_eq!(status, StatusCode::OK);

    fixture
        .state
        .accounts
        .create_tool("other", "bob", "Other", "")
        .await
        .unwrap();
    let (status, changed, body) = fetch(Some(etag.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(changed.as_deref(), Some(etag.as_str()));
    assert!(String::from_utf8_lossy(&body).contains("toolforge-other"));
}
