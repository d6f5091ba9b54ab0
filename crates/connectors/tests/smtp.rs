//! The SMTP mailer against PyPI's `aiosmtpd`, started by this test on loopback
//! (`steward-testpeers`, `tests/smtp/server.py`; the test command installs it in the project's
//! virtualenv; without it these tests fail, they never skip): plain SMTP to loopback, STARTTLS
//! and implicit TLS with AUTH and a throwaway CA, the server's refusals, and a relay that stops,
//! hangs and comes back. What arrived is read back from the server's maildir.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use secrecy::SecretString;
use steward_app::mail::{Address, MailError, Mailer, OutgoingMail};
use steward_connectors::smtp::{SmtpMailer, SmtpSecurity, SmtpSettings};
use steward_testpeers::smtp::{SMTP_PASSWORD, SMTP_USER};
use steward_testpeers::{SmtpOptions, SmtpServer, SmtpTls};

const WAIT: Duration = Duration::from_secs(10);

fn from() -> Address {
    Address::new(Some("Steward".into()), "steward@example.test").unwrap()
}

/// Plain SMTP to the server on 127.0.0.1, a 2 s timeout.
fn plain(server: &SmtpServer) -> SmtpSettings {
    SmtpSettings {
        port: server.port(),
        timeout_seconds: 2,
        ..SmtpSettings::new("127.0.0.1", SmtpSecurity::None, from())
    }
}

/// TLS to the server, trusting its CA alone, authenticating with `password`.
fn tls(server: &SmtpServer, security: SmtpSecurity, password: &str) -> SmtpSettings {
    SmtpSettings {
        security,
        username: Some(SMTP_USER.into()),
        password: Some(SecretString::from(password)),
        ca_certificate: Some(server.ca_pem()),
        ..plain(server)
    }
}

fn mail(key: &str, to: &[&str]) -> OutgoingMail {
    OutgoingMail {
        message_id: format!("<{key}@steward>"),
        to: to.iter().map(|t| Address::new(Some("Jane Müller".into()), *t).unwrap()).collect(),
        subject: "Zugang gewährt: Finance readers".into(),
        text: "Your request was approved.\nSee https://steward.test/my-access/requests/42 for details.\n".into(),
        html: "<p>Your request was approved.</p>\n<p><a href=\"https://steward.test/my-access/requests/42?tab=details&amp;from=mail\">See details</a></p>\n".into(),
    }
}

#[tokio::test]
async fn plain_smtp_to_loopback_delivers_both_bodies_and_the_links() {
    let server = SmtpServer::start();
    let mailer = SmtpMailer::new(plain(&server)).unwrap();
    let out = mail("req-42-approved", &["jane@example.test", "joe@example.test"]);
    mailer.send(&out).await.unwrap();

    let got = server.wait_for(1, WAIT).remove(0);
    assert_eq!(got.mail_from, "steward@example.test");
    assert_eq!(got.recipients, ["jane@example.test", "joe@example.test"]);
    assert_eq!(got.to, ["jane@example.test", "joe@example.test"]);
    assert_eq!(got.from.as_deref(), Some("steward@example.test"));
    assert_eq!(got.subject, "Zugang gewährt: Finance readers");
    assert_eq!(got.message_id.as_deref(), Some("<req-42-approved@steward>"));
    assert_eq!(got.text.as_deref().map(|t| t.replace("\r\n", "\n")).as_deref(), Some(out.text.as_str()));
    assert_eq!(got.html.as_deref().map(|t| t.replace("\r\n", "\n")).as_deref(), Some(out.html.as_str()));
    assert!(got.raw.contains("multipart/alternative"), "{}", got.raw);
    assert_eq!(
        got.links(),
        [
            "https://steward.test/my-access/requests/42?tab=details&from=mail",
            "https://steward.test/my-access/requests/42"
        ]
    );
    assert!(!got.tls);
    assert_eq!(got.authenticated_as, None);

    // Sent again (a retried job), it is recognisably the same message.
    mailer.send(&out).await.unwrap();
    let both = server.wait_for(2, WAIT);
    assert_eq!(both[1].message_id, both[0].message_id);
}

#[tokio::test]
async fn smtp_starttls_with_auth_is_used_and_checked() {
    let server = SmtpServer::start_with(SmtpOptions { tls: SmtpTls::StartTls, auth: true, auth_without_tls: false });
    let mailer = SmtpMailer::new(tls(&server, SmtpSecurity::StartTls, SMTP_PASSWORD)).unwrap();
    mailer.send(&mail("starttls", &["jane@example.test"])).await.unwrap();
    let got = server.wait_for(1, WAIT).remove(0);
    assert!(got.tls, "the message came in the clear");
    assert_eq!(got.authenticated_as.as_deref(), Some(SMTP_USER));
    assert_eq!(got.message_id.as_deref(), Some("<starttls@steward>"));

    // A wrong password is refused (535): retrying will not help.
    let wrong = SmtpMailer::new(tls(&server, SmtpSecurity::StartTls, "not-the-password")).unwrap();
    let e = wrong.send(&mail("wrong-password", &["jane@example.test"])).await.unwrap_err();
    assert!(matches!(&e, MailError::Permanent(m) if m.contains("535")), "{e}");
    assert!(!e.to_string().contains("not-the-password"), "{e}");

    // Without the test CA, the certificate is not trusted (Mozilla's roots only).
    let untrusted =
        SmtpMailer::new(SmtpSettings { ca_certificate: None, ..tls(&server, SmtpSecurity::StartTls, SMTP_PASSWORD) })
            .unwrap();
    let e = untrusted.send(&mail("untrusted", &["jane@example.test"])).await.unwrap_err();
    assert!(matches!(&e, MailError::Permanent(m) if m.contains("TLS")), "{e}");

    // Plain SMTP (to loopback) to a server that requires STARTTLS is refused before any mail.
    let clear = SmtpMailer::new(SmtpSettings {
        security: SmtpSecurity::None,
        ca_certificate: None,
        ..tls(&server, SmtpSecurity::None, SMTP_PASSWORD)
    })
    .unwrap();
    let e = clear.send(&mail("clear", &["jane@example.test"])).await.unwrap_err();
    assert!(matches!(e, MailError::Permanent(_)), "{e}");
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn smtp_implicit_tls_with_auth() {
    let server = SmtpServer::start_with(SmtpOptions { tls: SmtpTls::Implicit, auth: true, auth_without_tls: false });
    let mailer = SmtpMailer::new(tls(&server, SmtpSecurity::Tls, SMTP_PASSWORD)).unwrap();
    mailer.send(&mail("implicit", &["jane@example.test"])).await.unwrap();
    let got = server.wait_for(1, WAIT).remove(0);
    assert!(got.tls);
    assert_eq!(got.authenticated_as.as_deref(), Some(SMTP_USER));
}

#[tokio::test]
async fn smtp_refused_recipients_are_permanent_deferred_ones_transient() {
    let server = SmtpServer::start();
    let mailer = SmtpMailer::new(plain(&server)).unwrap();
    let e = mailer.send(&mail("rejected", &["reject-me@example.test"])).await.unwrap_err();
    assert!(matches!(&e, MailError::Permanent(m) if m.contains("550")), "{e}");
    let e = mailer.send(&mail("deferred", &["defer-me@example.test"])).await.unwrap_err();
    assert!(matches!(&e, MailError::Transient(m) if m.contains("451")), "{e}");
    // The connection that saw both refusals still carries the next mail.
    mailer.send(&mail("accepted", &["jane@example.test"])).await.unwrap();
    let got = server.wait_for(1, WAIT);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id.as_deref(), Some("<accepted@steward>"));
}

#[tokio::test]
async fn smtp_relay_stopped_is_transient_at_once_and_mail_flows_after_its_restart() {
    let mut server = SmtpServer::start();
    let mailer = SmtpMailer::new(plain(&server)).unwrap();
    // A first mail leaves a connection in the pool, which the stop breaks.
    mailer.send(&mail("before", &["jane@example.test"])).await.unwrap();

    server.stop();
    let started = Instant::now();
    let e = mailer.send(&mail("while-down", &["jane@example.test"])).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}: {e}", started.elapsed());

    server.restart();
    mailer.send(&mail("after", &["jane@example.test"])).await.unwrap();
    let got = server.wait_for(2, WAIT);
    let ids: Vec<_> = got.iter().map(|m| m.message_id.clone().unwrap()).collect();
    assert_eq!(ids, ["<before@steward>", "<after@steward>"]);
}

#[tokio::test]
async fn smtp_relay_hung_is_transient_within_the_timeout_and_then_left_behind() {
    let server = SmtpServer::start();
    let mailer = SmtpMailer::new(plain(&server)).unwrap();
    mailer.send(&mail("before", &["jane@example.test"])).await.unwrap();

    server.freeze();
    let started = Instant::now();
    let e = mailer.send(&mail("while-hung", &["jane@example.test"])).await.unwrap_err();
    let took = started.elapsed();
    server.thaw();
    assert!(matches!(&e, MailError::Transient(m) if m.contains("within 2 s")), "{e}");
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(3), "took {took:?}");

    // The next mail goes on a fresh connection, not the one abandoned mid-exchange.
    mailer.send(&mail("after", &["jane@example.test"])).await.unwrap();
    let got = server.wait_for(2, WAIT);
    let ids: Vec<_> = got.iter().map(|m| m.message_id.clone().unwrap()).collect();
    assert_eq!(ids, ["<before@steward>", "<after@steward>"]);
}
