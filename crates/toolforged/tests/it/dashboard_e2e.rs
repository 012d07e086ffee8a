//! Issue 10's end-to-end test: a real headless Chromium drives the dashboard of a real
//! daemon whose mail goes to a real SMTP sink, from sign-up to an admin disabling the tool,
//! and the official `toolforge jobs` client uses the kubeconfig the browser downloaded.
//!
//! Screenshots of every page are saved under `target/screenshots/<test>/` for review.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use base64::Engine as _;
use test_support::browser::{Browser, Page, Screenshots};
use test_support::daemon::{Daemon, DaemonOptions};
use test_support::poll::eventually;
use test_support::skip::{is_root, prerequisite_missing};
use test_support::smtp::{ReceivedMail, SmtpSink};

use crate::bin;

const APPLICANT: &str = "newcomer";
const APPLICANT_EMAIL: &str = "newcomer@example.org";
const APPLICANT_PASSWORD: &str = "correct horse battery staple";
const TOOL: &str = "e2e-tool";
const HELPER: &str = "helper";

/// How long mail may take to reach the sink.
const MAIL_TIMEOUT: Duration = Duration::from_secs(30);

/// Panics with the harness's error (which says what was asked and what the page showed).
#[track_caller]
fn ok<T>(res: Result<T, String>) -> T {
    res.unwrap_or_else(|err| panic!("{err}"))
}

/// Asserts that an action on `page` ended on a 200 page, showing the page otherwise.
#[track_caller]
fn assert_200(page: &Page, status: u16, what: &str) {
    assert_eq!(
        status,
        200,
        "{what}: HTTP {status} on {}; the page shows:\n{}",
        ok(page.url()),
        ok(page.body_text())
    );
}

/// Saves a screenshot of `page` as the next one of the test.
#[track_caller]
fn shot(shots: &mut Screenshots, page: &Page, name: &str) {
    let path = ok(shots.take(page, name));
    eprintln!("screenshot: {}", path.display());
}

/// The text part of a single-part mail, with its transfer encoding undone.
fn mail_body(mail: &ReceivedMail) -> String {
    let (head, body) = mail.raw.split_once("\n\n").unwrap_or((&mail.raw, ""));
    let encoding = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-transfer-encoding")
                .then(|| value.trim().to_ascii_lowercase())
        })
        .unwrap_or_default();
    match encoding.as_str() {
        "base64" => {
            let compact: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .unwrap_or_else(|err| {
                    panic!("the mail's base64 body is invalid ({err}):\n{}", mail.raw)
                });
            String::from_utf8_lossy(&bytes).into_owned()
        }
        "quoted-printable" => quoted_printable(body),
        _ => body.to_owned(),
    }
}

/// Decodes quoted-printable text (RFC 2045 §6.7): soft line breaks and `=XX` bytes.
fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && let Some(byte) = joined
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

/// Waits for the first mail to `to` whose subject contains `subject`.
#[track_caller]
fn wait_for_mail(smtp: &SmtpSink, to: &str, subject: &str) -> ReceivedMail {
    eventually(MAIL_TIMEOUT, || {
        smtp.messages().into_iter().find(|mail| {
            mail.rcpt_to.iter().any(|rcpt| rcpt == to) && mail.subject.contains(subject)
        })
    })
    .unwrap_or_else(|| {
        let got: Vec<(Vec<String>, String)> = smtp
            .messages()
            .into_iter()
            .map(|mail| (mail.rcpt_to, mail.subject))
            .collect();
        panic!("no mail to {to} about {subject:?} within {MAIL_TIMEOUT:?}; the sink has {got:?}")
    })
}

/// Logs `page` in as `user`.
#[track_caller]
fn log_in(page: &Page, web: &str, user: &str, password: &str) {
    ok(page.goto(&format!("{web}/login")));
    ok(page.fill("#id_username", user));
    ok(page.fill("#id_password", password));
    let status = ok(page.submit("#login-form"));
    assert_eq!(
        status,
        200,
        "logging in as {user}: {}",
        ok(page.body_text())
    );
    assert!(
        !ok(page.exists("#login-error")),
        "logging in as {user} failed: {}",
        ok(page.text("#login-error"))
    );
}

/// The `data-status` of a membership request page.
#[track_caller]
fn request_status(page: &Page) -> String {
    ok(page.attribute("#request-status", "data-status")).unwrap_or_default()
}

/// Runs `toolforge jobs <args>` from a home holding nothing but the downloaded kubeconfig
/// (and no `~/.toolforge.yaml`: the gateway's URL comes from `TOOL_TOOLFORGE_API_URL`, as the
/// tool page tells maintainers to set it).
fn jobs_with_kubeconfig(daemon: &Daemon, home: &Path, args: &[&str]) -> Result<Output, String> {
    let mut cmd = daemon.official_client(TOOL, "toolforge")?;
    cmd.env("HOME", home)
        .env("KUBECONFIG", home.join(".kube").join("config"))
        .env("TOOL_TOOLFORGE_API_URL", daemon.api_url())
        .current_dir(home)
        .arg("jobs")
        .args(args);
    cmd.output()
        .map_err(|err| format!("could not run toolforge jobs: {err}"))
}

fn printed(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether a process has `marker` as one of its arguments.
fn process_with_argument_runs(marker: &str) -> bool {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries.filter_map(Result::ok).any(|entry| {
                let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                cmdline
                    .split(|b| *b == 0)
                    .any(|arg| arg == marker.as_bytes())
            })
        })
        .unwrap_or(false)
}

#[test]
fn a_newcomer_signs_up_becomes_a_member_creates_a_tool_and_an_admin_disables_it() {
    const TEST: &str =
        "a_newcomer_signs_up_becomes_a_member_creates_a_tool_and_an_admin_disables_it";
    if !is_root() {
        prerequisite_missing(
            TEST,
            "the tool's job runs isolated as its tool's uid only as root",
        );
        return;
    }
    if let Err(reason) = test_support::clients::clients_venv() {
        prerequisite_missing(TEST, &reason);
        return;
    }
    let Some(smtp) = SmtpSink::start(TEST) else {
        return;
    };
    let Some(browser) = Browser::start(TEST) else {
        return;
    };
    let daemon = DaemonOptions::default()
        .arg("--smtp-url")
        .arg(smtp.url())
        .start(bin());
    let web = format!("http://{}", daemon.addresses().web);
    let mut shots = Screenshots::new(TEST);
    // The applicant and the admin are two people: two pages with two cookie jars.
    let applicant = ok(browser.new_page());
    let admin = ok(browser.new_page());

    // 1. Sign up; the user name is checked as it is typed.
    ok(applicant.goto(&format!("{web}/")));
    shot(&mut shots, &applicant, "home");
    ok(applicant.click("#nav-signup"));
    assert!(
        ok(applicant.url()).ends_with("/signup"),
        "{}",
        ok(applicant.url())
    );
    ok(applicant.fill("#id_username", APPLICANT));
    ok(applicant.wait_until(
        &format!(
            "document.getElementById('username-availability').textContent.includes({})",
            serde_json::Value::from(format!("'{APPLICANT}' is available"))
        ),
        "the user name's availability",
    ));
    ok(applicant.fill("#id_email", APPLICANT_EMAIL));
    ok(applicant.fill("#id_password", APPLICANT_PASSWORD));
    ok(applicant.fill("#id_password2", APPLICANT_PASSWORD));
    shot(&mut shots, &applicant, "sign-up-filled");
    let status = ok(applicant.submit("#signup-form"));
    assert_200(&applicant, status, "submitting #signup-form");
    let welcome = ok(applicant.body_text());
    assert!(
        welcome.contains(&format!("Welcome, {APPLICANT}!")),
        "{welcome}"
    );
    assert!(welcome.contains(APPLICANT_EMAIL), "{welcome}");
    shot(&mut shots, &applicant, "signed-up");

    // Not confirmed yet: no membership request.
    ok(applicant.goto(&format!("{web}/tools/membership/")));
    assert!(ok(applicant.exists("#membership-unconfirmed")));
    assert!(!ok(applicant.exists("#membership-apply-link")));

    // 2. Confirm the address by the link in the mail the sink caught.
    let mail = wait_for_mail(&smtp, APPLICANT_EMAIL, "Confirm your e-mail address");
    let body = mail_body(&mail);
    let link = body
        .split_whitespace()
        .find(|word| word.starts_with("http") && word.contains("/register/confirm/"))
        .unwrap_or_else(|| panic!("no confirmation link in the mail:\n{body}"))
        .to_owned();
    assert!(
        link.starts_with(&web),
        "the link {link} points at the dashboard {web}"
    );
    let status = ok(applicant.goto(&link));
    assert_200(&applicant, status, "opening the confirmation link");
    assert_eq!(
        ok(applicant.attribute("#confirm-result", "data-result")).as_deref(),
        Some("confirmed"),
        "{}",
        ok(applicant.body_text())
    );
    shot(&mut shots, &applicant, "e-mail-confirmed");
    // The link works once.
    ok(applicant.goto(&link));
    assert_eq!(
        ok(applicant.attribute("#confirm-result", "data-result")).as_deref(),
        Some("invalid")
    );

    // 3. Request membership.
    ok(applicant.goto(&format!("{web}/tools/membership/")));
    assert!(ok(applicant.exists("#membership-not-member")));
    shot(&mut shots, &applicant, "membership-not-member");
    ok(applicant.click("#membership-apply-link"));
    ok(applicant.fill(
        "#id_reason",
        "I maintain a bot that fixes broken links on the English Wikipedia.",
    ));
    shot(&mut shots, &applicant, "membership-apply");
    let status = ok(applicant.submit("#membership-form"));
    assert_200(&applicant, status, "submitting #membership-form");
    let request_url = ok(applicant.url());
    assert!(
        request_url.contains("/tools/membership/status/"),
        "the applicant lands on the request: {request_url}"
    );
    assert_eq!(request_status(&applicant), "pending");
    shot(&mut shots, &applicant, "membership-requested");

    // 4. The admin asks for feedback.
    log_in(&admin, &web, "admin", daemon.admin_password());
    shot(&mut shots, &admin, "admin-logged-in");
    ok(admin.goto(&format!("{web}/tools/membership/queue?status=open")));
    let queue = ok(admin.text("#queue"));
    assert!(
        queue.contains(APPLICANT) && queue.contains("broken links"),
        "{queue}"
    );
    shot(&mut shots, &admin, "admin-queue");
    ok(admin.goto(&request_url));
    assert_eq!(ok(admin.text("#request-user")), APPLICANT);
    ok(admin.fill("#id_decision_comment", "Which bot framework will you use?"));
    shot(&mut shots, &admin, "admin-request");
    let status = ok(admin.click("#feedback-button"));
    assert_200(&admin, status, "clicking #feedback-button");
    assert_eq!(request_status(&admin), "feedback");
    shot(&mut shots, &admin, "admin-asked-for-feedback");
    let feedback_mail = wait_for_mail(
        &smtp,
        APPLICANT_EMAIL,
        "membership request was commented on",
    );
    assert!(
        mail_body(&feedback_mail).contains("Which bot framework will you use?"),
        "the applicant is told the admin's question by mail:\n{}",
        feedback_mail.raw
    );

    // 5. The applicant answers: the request is pending again.
    ok(applicant.goto(&request_url));
    assert_eq!(request_status(&applicant), "feedback");
    let comments = ok(applicant.texts(".comment-body"));
    assert!(
        comments
            .iter()
            .any(|c| c.contains("Which bot framework will you use?")),
        "the applicant sees the admin's comment: {comments:?}"
    );
    ok(applicant.fill("#id_comment", "Pywikibot, run as a continuous job."));
    shot(&mut shots, &applicant, "membership-answer");
    let status = ok(applicant.submit("#comment-form"));
    assert_200(&applicant, status, "submitting #comment-form");
    assert_eq!(request_status(&applicant), "pending");
    shot(&mut shots, &applicant, "membership-answered");

    // 6. The admin approves.
    ok(admin.goto(&request_url));
    let comments = ok(admin.texts(".comment-body"));
    assert!(
        comments.iter().any(|c| c.contains("Pywikibot")),
        "the admin sees the answer: {comments:?}"
    );
    let status = ok(admin.click("#approve-button"));
    assert_200(&admin, status, "clicking #approve-button");
    assert_eq!(request_status(&admin), "approved");
    shot(&mut shots, &admin, "admin-approved");
    let welcome_mail = wait_for_mail(&smtp, APPLICANT_EMAIL, "membership request was approved");
    assert!(
        mail_body(&welcome_mail).contains(&format!("{web}/tools/create")),
        "the approval mail links to tool creation:\n{}",
        welcome_mail.raw
    );

    // 7. The new member creates a tool; the name is checked as it is typed.
    ok(applicant.goto(&format!("{web}/tools/membership/")));
    assert!(
        ok(applicant.exists("#membership-member")),
        "{}",
        ok(applicant.body_text())
    );
    shot(&mut shots, &applicant, "membership-member");
    ok(applicant.click("#membership-create-tool"));
    ok(applicant.fill("#tool-name", TOOL));
    ok(applicant.wait_until(
        &format!(
            "document.getElementById('tool-name-availability').textContent.includes({})",
            serde_json::Value::from(format!("'{TOOL}' is available"))
        ),
        "the tool name's availability",
    ));
    ok(applicant.fill("#tool-title", "Link fixer"));
    ok(applicant.fill("#tool-description", "Fixes broken external links."));
    let license = ok(applicant.eval(
        "[...document.querySelectorAll('#tool-license option')].map(o => o.value).find(v => v !== '')",
    ));
    let license = license
        .as_str()
        .unwrap_or_else(|| panic!("the licence list has no licence: {license}"))
        .to_owned();
    ok(applicant.fill("#tool-license", &license));
    ok(applicant.fill("#tool-tags", "links, bots"));
    shot(&mut shots, &applicant, "tool-create");
    let status = ok(applicant.submit("#tool-create-form"));
    assert_200(&applicant, status, "submitting #tool-create-form");
    assert!(
        ok(applicant.url()).ends_with(&format!("/tools/id/{TOOL}")),
        "the member lands on the tool page: {}\n{}",
        ok(applicant.url()),
        ok(applicant.body_text())
    );
    assert!(ok(applicant.text("#tool-heading")).contains("Link fixer"));
    assert!(ok(applicant.exists(&format!("#maintainer-{APPLICANT}"))));
    shot(&mut shots, &applicant, "tool-created");

    // 8. Adds a maintainer.
    daemon.create_user(HELPER, "helper@example.org");
    ok(applicant.fill("#maintainer-name", HELPER));
    let status = ok(applicant.submit("#maintainer-add-form"));
    assert_200(&applicant, status, "submitting #maintainer-add-form");
    assert!(
        ok(applicant.exists(&format!("#maintainer-{HELPER}"))),
        "the maintainer list shows {HELPER}: {}",
        ok(applicant.text("#maintainer-list"))
    );
    shot(&mut shots, &applicant, "maintainer-added");

    // 9. Downloads the kubeconfig and uses it with the official client, from a home that
    //    holds nothing else.
    let download = ok(applicant.download("#kubeconfig-download"));
    assert_eq!(download.file_name, format!("{TOOL}-kubeconfig.yaml"));
    let laptop = tempfile::tempdir().expect("a temporary home");
    std::fs::create_dir(laptop.path().join(".kube")).expect("~/.kube can be created");
    std::fs::write(laptop.path().join(".kube").join("config"), &download.bytes)
        .expect("the kubeconfig can be saved");
    let list = match jobs_with_kubeconfig(&daemon, laptop.path(), &["list"]) {
        Ok(out) => out,
        Err(reason) => {
            prerequisite_missing(TEST, &reason);
            return;
        }
    };
    assert!(
        list.status.success(),
        "toolforge jobs list: {}",
        printed(&list)
    );
    assert_eq!(String::from_utf8_lossy(&list.stdout), "", "no jobs yet");

    // A continuous job, found among everyone's processes by an argument no other test uses.
    let marker = format!("{}", 300_000 + std::process::id());
    let run = ok(jobs_with_kubeconfig(
        &daemon,
        laptop.path(),
        &[
            "run",
            "linkfixer",
            "--command",
            &format!("exec sleep {marker}"),
            "--image",
            "bookworm",
            "--continuous",
        ],
    ));
    assert!(
        run.status.success(),
        "toolforge jobs run: {}",
        printed(&run)
    );
    eventually(Duration::from_secs(30), || {
        process_with_argument_runs(&marker).then_some(())
    })
    .expect("the tool's continuous job runs");
    let list = ok(jobs_with_kubeconfig(&daemon, laptop.path(), &["list"]));
    assert!(
        list.status.success(),
        "toolforge jobs list: {}",
        printed(&list)
    );
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("linkfixer"),
        "{}",
        printed(&list)
    );
    ok(applicant.goto(&format!("{web}/tools/id/{TOOL}")));
    assert!(
        ok(applicant.exists("#job-linkfixer")),
        "the tool page lists the job: {}",
        ok(applicant.body_text())
    );
    shot(&mut shots, &applicant, "tool-with-job");

    // 10. An admin disables the tool: its job stops and its kubeconfig is refused.
    disable_tool_as_admin(&admin, &web, &mut shots);
    assert!(
        eventually(Duration::from_secs(30), || {
            (!process_with_argument_runs(&marker)).then_some(())
        })
        .is_some(),
        "the disabled tool's job stopped"
    );
    let refused = ok(jobs_with_kubeconfig(&daemon, laptop.path(), &["list"]));
    assert_eq!(
        refused.status.code(),
        Some(1),
        "a disabled tool's kubeconfig is refused: {}",
        printed(&refused)
    );
    assert!(
        printed(&refused).contains("disabled"),
        "the refusal says the tool is disabled: {}",
        printed(&refused)
    );
    ok(applicant.goto(&format!("{web}/tools/id/{TOOL}")));
    assert!(
        ok(applicant.exists("#tool-disabled")),
        "{}",
        ok(applicant.body_text())
    );
    assert_eq!(
        ok(applicant.attribute("#kubeconfig-download", "disabled")).as_deref(),
        Some(""),
        "the download button of a disabled tool is disabled"
    );
    shot(&mut shots, &applicant, "tool-disabled");

    assert_eq!(
        applicant.js_errors(),
        Vec::<String>::new(),
        "the applicant's pages ran without errors"
    );
    assert_eq!(
        admin.js_errors(),
        Vec::<String>::new(),
        "the admin's pages ran without errors"
    );
}

/// The admin disables [`TOOL`] from the dashboard's admin pages, with a reason, and the
/// admin pages show the 40-day schedule and the audit record.
fn disable_tool_as_admin(admin: &Page, web: &str, shots: &mut Screenshots) {
    ok(admin.goto(&format!("{web}/")));
    ok(admin.click("#nav-admin"));
    ok(admin.fill("#admin-tool-q", TOOL));
    ok(admin.submit("#admin-tool-search"));
    assert_eq!(
        ok(admin.text(&format!("#admin-tool-{TOOL} .status"))),
        "active",
        "{}",
        ok(admin.body_text())
    );
    shot(shots, admin, "admin-tools");
    ok(admin.click(&format!("#admin-tool-{TOOL} a")));
    assert!(ok(admin.url()).ends_with(&format!("/admin/tools/{TOOL}")));
    shot(shots, admin, "admin-tool");
    ok(admin.click("#tool-disable-link"));
    ok(admin.fill("#tool-disable-reason", "Edits too fast; talk to us first."));
    shot(shots, admin, "admin-disable-confirm");
    let status = ok(admin.click("#tool-disable-confirm"));
    assert_200(admin, status, "clicking #tool-disable-confirm");
    assert!(
        ok(admin.url()).ends_with(&format!("/admin/tools/{TOOL}")),
        "{}",
        ok(admin.url())
    );
    assert_eq!(ok(admin.text("#admin-tool-status")), "disabled");
    let schedule = ok(admin.text("#admin-tool-disablement"));
    assert!(
        schedule.contains("Disabled by admin")
            && schedule.contains("Edits too fast")
            && schedule.contains("archive on")
            && schedule.contains("deletion on"),
        "{schedule}"
    );
    // As the original: archive and deletion 40 days after the disablement.
    let dates: Vec<time::Date> = schedule
        .split_whitespace()
        .filter_map(|word| {
            time::Date::parse(
                word,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .ok()
        })
        .collect();
    let [disabled, archive, deletion] = dates[..] else {
        panic!("the schedule names three dates (disabled, archive, deletion): {schedule}");
    };
    assert_eq!(archive - disabled, time::Duration::days(40), "{schedule}");
    assert_eq!(deletion - disabled, time::Duration::days(40), "{schedule}");
    assert!(ok(admin.exists("#tool-enable-form")));
    shot(shots, admin, "admin-tool-disabled");

    ok(admin.goto(&format!("{web}/admin/audit?target={TOOL}")));
    let audit = ok(admin.texts("#audit tbody tr"));
    assert!(
        audit
            .iter()
            .any(|row| row.contains("admin") && row.contains("disable")),
        "the audit log records who disabled the tool: {audit:?}"
    );
    shot(shots, admin, "admin-audit");
}
