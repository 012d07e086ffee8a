//! Issue 10 (dashboard), over real HTTP against the real daemon: sign-up, confirmation by
//! the mail a real SMTP sink caught, the membership workflow with the first start's
//! admin, the CSRF refusal and the log-in rate limit.

use std::time::Duration;

use test_support::daemon::{Daemon, DaemonOptions};
use test_support::poll::eventually;
use test_support::smtp::SmtpSink;

use crate::bin;
use crate::dashboard_http::Browser;

const PASSWORD: &str = "a long enough password";

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
