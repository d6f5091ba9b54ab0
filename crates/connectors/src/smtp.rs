//! Notification email over SMTP: the app's `Mailer` port on lettre. `SmtpSettings` says where
//! the relay is and how to reach it (STARTTLS, implicit TLS, or plain SMTP to a relay on this
//! machine only), `SmtpMailer` keeps one pooled lettre transport for them and sends each
//! `OutgoingMail` as multipart/alternative (plain text and HTML, UTF-8) with the mail's own
//! Message-ID. Failures come back as `MailError::Transient` (retry later: no connection, no
//! answer in time, a 4xx reply) or `MailError::Permanent` (a 5xx reply, an unusable address,
//! a TLS failure). Renders nothing; retries nothing itself.

use std::error::Error as _;
use std::fmt;
use std::net::IpAddr;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::{self, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use secrecy::{ExposeSecret, SecretString};
use steward_app::mail::{Address, MailError, Mailer, OutgoingMail};

/// The longest part of a server's reply repeated in an error.
const REPLY_SHOWN: usize = 300;

/// How long closing an abandoned pool's connections may take.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpSecurity {
    /// Plain SMTP: mail and credentials travel unencrypted, so only to a relay on this machine
    /// (a loopback host), never across a network.
    None,
    /// Plain connection upgraded with STARTTLS, which is required: a server that does not
    /// offer it is refused rather than spoken to in the clear (usually port 587).
    #[default]
    StartTls,
    /// TLS from the first byte ("implicit TLS", SMTPS, usually port 465).
    Tls,
}

impl SmtpSecurity {
    /// The port such a relay usually listens on: 25, 587 or 465.
    pub fn default_port(self) -> u16 {
        match self {
            Self::None => 25,
            Self::StartTls => 587,
            Self::Tls => 465,
        }
    }
}

/// Where the SMTP relay is, how to reach it and who the mail is from. `Debug` never shows the
/// password.
#[derive(Clone)]
pub struct SmtpSettings {
    /// A host name or an IP address (not a URL). Over TLS, the name the certificate must carry.
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// Authenticate (AUTH PLAIN or LOGIN, whichever the server offers) as this user; needs
    /// `password`.
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// The `From` of every mail, and the envelope sender.
    pub from: Address,
    /// The longest one send may take, from connecting to the server's acceptance of the
    /// message: a relay that accepts connections but never answers cannot hold a sender.
    pub timeout_seconds: u64,
    /// Connections kept open for reuse.
    pub pool_max_size: u32,
    /// PEM text of the CA certificate(s) trusted instead of the public ones (Mozilla's list):
    /// for a relay whose certificate an internal CA issued. Public, not a secret.
    pub ca_certificate: Option<String>,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("from", &self.from)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("pool_max_size", &self.pool_max_size)
            .field("ca_certificate", &self.ca_certificate.as_ref().map(|_| "[PEM]"))
            .finish()
    }
}

/// Why an SMTP mailer cannot be made. Never carries the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpConfigError {
    #[error("SMTP settings: {0}")]
    Invalid(String),
    #[error("the SMTP mailer must be made inside a Tokio runtime: its connection pool runs a task there")]
    NoRuntime,
}

/// A loopback host: `localhost` or an address in 127.0.0.0/8 or `::1`.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The certificates of a PEM bundle, refusing a private key, an empty bundle and anything
/// that is not a usable CA certificate.
fn ca_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    if pem.contains("PRIVATE KEY-----") {
        return Err("ca_certificate holds a private key: give only the CA's certificate, and replace that key".into());
    }
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("ca_certificate is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("ca_certificate holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    let mut roots = rustls::RootCertStore::empty();
    for (n, cert) in certs.iter().enumerate() {
        roots
            .add(cert.clone())
            .map_err(|e| format!("certificate {} of ca_certificate is not a usable CA certificate: {e}", n + 1))?;
    }
    Ok(certs)
}

impl SmtpSettings {
    /// Settings for `host` with the usual port for `security`, no credentials, a 30 s
    /// timeout and a pool of 4 connections.
    pub fn new(host: impl Into<String>, security: SmtpSecurity, from: Address) -> Self {
        Self {
            host: host.into(),
            port: security.default_port(),
            security,
            username: None,
            password: None,
            from,
            timeout_seconds: 30,
            pool_max_size: 4,
            ca_certificate: None,
        }
    }

    /// Whether these settings can work, with what to change when not.
    pub fn check(&self) -> Result<(), SmtpConfigError> {
        let bad = |m: String| Err(SmtpConfigError::Invalid(m));
        let host = self.host.as_str();
        if host.trim().is_empty() {
            return bad("host must not be empty".into());
        }
        if host.contains("://") || host.contains(|c: char| c.is_whitespace() || c.is_control() || c == '/') {
            return bad(format!("host {host:?} must be a host name or an IP address, not a URL"));
        }
        if self.port == 0 {
            return bad(
                "port must not be 0 (the usual ports: 587 for STARTTLS, 465 for TLS, 25 for a local relay)".into()
            );
        }
        match self.security {
            SmtpSecurity::None if !is_loopback(host) => {
                return bad(format!(
                    "plain SMTP (security None) sends mail and credentials unencrypted, so it is only allowed to a relay \
                     on this machine (localhost, 127.0.0.1, ::1); use StartTls or Tls for {host}"
                ));
            }
            SmtpSecurity::None => {
                if self.ca_certificate.is_some() {
                    return bad("ca_certificate is only used over TLS: set security to StartTls or Tls".into());
                }
            }
            SmtpSecurity::StartTls | SmtpSecurity::Tls => {
                if ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']')).is_err() {
                    return bad(format!(
                        "host {host:?} is not a DNS name or IP address a TLS certificate can be checked for"
                    ));
                }
            }
        }
        match (&self.username, &self.password) {
            (Some(u), _) if u.trim().is_empty() => return bad("username must not be empty".into()),
            (Some(_), None) => return bad("a username needs a password".into()),
            (None, Some(_)) => return bad("a password needs a username".into()),
            _ => {}
        }
        if self.timeout_seconds == 0 {
            return bad("timeout_seconds must be at least 1".into());
        }
        if self.pool_max_size == 0 {
            return bad("pool_max_size must be at least 1".into());
        }
        if let Some(pem) = &self.ca_certificate {
            ca_certificates(pem).map_err(SmtpConfigError::Invalid)?;
        }
        self.from.check().map_err(|e| SmtpConfigError::Invalid(format!("from: {e}")))
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    /// `host:port`, for errors.
    fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The TLS parameters: the configured CA alone, else Mozilla's roots.
    fn tls_parameters(&self) -> Result<TlsParameters, SmtpConfigError> {
        let domain = self.host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let mut builder = TlsParameters::builder(domain);
        builder = match &self.ca_certificate {
            Some(pem) => {
                let cert = Certificate::from_pem(pem.as_bytes())
                    .map_err(|e| SmtpConfigError::Invalid(format!("ca_certificate: {e}")))?;
                builder.certificate_store(CertificateStore::None).add_root_certificate(cert)
            }
            None => builder.certificate_store(CertificateStore::WebpkiRoots),
        };
        builder
            .build_rustls()
            .map_err(|e| SmtpConfigError::Invalid(format!("no TLS configuration for {}: {e}", self.host)))
    }

    /// A new pooled transport. Its pool's housekeeping task is spawned on the current runtime.
    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, SmtpConfigError> {
        tokio::runtime::Handle::try_current().map_err(|_| SmtpConfigError::NoRuntime)?;
        let tls = match self.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::StartTls => Tls::Required(self.tls_parameters()?),
            SmtpSecurity::Tls => Tls::Wrapper(self.tls_parameters()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.as_str())
            .port(self.port)
            .tls(tls)
            // lettre bounds only the TCP connect with this; `SmtpMailer::send` bounds the rest.
            .timeout(Some(self.timeout()))
            .pool_config(PoolConfig::new().max_size(self.pool_max_size));
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
        }
        Ok(builder.build())
    }
}

/// Sends mail through one SMTP relay over a pool of connections. Made once from settings,
/// inside a Tokio runtime (the pool keeps a task there), and shared.
pub struct SmtpMailer {
    settings: SmtpSettings,
    from: Mailbox,
    /// Replaced by a fresh one when a send overran its time: the abandoned exchange may have
    /// left a pooled connection in the middle of a command, and a later mail must never
    /// continue it.
    transport: RwLock<AsyncSmtpTransport<Tokio1Executor>>,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// lettre's form of an address, checked again (the app's `Address` fields are public).
fn mailbox(a: &Address) -> Result<Mailbox, MailError> {
    a.check().map_err(|e| MailError::Permanent(e.to_string()))?;
    let email = a
        .email
        .parse::<lettre::Address>()
        .map_err(|e| MailError::Permanent(format!("{:?} is not an address SMTP can send to: {e}", a.email)))?;
    Ok(Mailbox::new(a.name.clone(), email))
}

/// The `Message-ID` header's value: `<left@right>`, the angle brackets added when missing.
fn message_id(id: &str) -> Result<String, MailError> {
    let inner = id.strip_prefix('<').and_then(|i| i.strip_suffix('>')).unwrap_or(id);
    let ok = inner.split_once('@').is_some_and(|(l, r)| !l.is_empty() && !r.is_empty() && !r.contains('@'))
        && !inner.contains(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | '\\'));
    if ok {
        Ok(format!("<{inner}>"))
    } else {
        Err(MailError::Permanent(format!("{id:?} is not a Message-ID (<left@right>, no spaces)")))
    }
}

/// Printable text only, on one line and clipped: a server's reply is shown to administrators.
/// lettre repeats a cause's kind ("Connection error: Connection error: …"): said once.
fn clean(s: &str) -> String {
    let one_line: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let mut parts: Vec<&str> = one_line.split(": ").collect();
    parts.dedup();
    parts.join(": ").chars().take(REPLY_SHOWN).collect()
}

/// Whether rustls refused somewhere in `e`'s causes: an untrusted or mismatched certificate,
/// or a peer that does not speak TLS. tokio-rustls wraps rustls's error in an `io::Error`,
/// whose own `source()` skips it, hence the look inside.
fn tls_refused(e: &smtp::Error) -> bool {
    if e.is_tls() {
        return true;
    }
    let mut cause = e.source();
    while let Some(c) = cause {
        if c.is::<rustls::Error>()
            || c.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).is_some_and(|i| i.is::<rustls::Error>())
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A lettre error as the port's: what a retry can fix is transient.
fn classify(e: &smtp::Error, server: &str) -> MailError {
    let detail = clean(&e.to_string());
    if e.is_permanent() {
        MailError::Permanent(format!("the SMTP server {server} refused the mail: {detail}"))
    } else if e.is_transient() {
        MailError::Transient(format!("the SMTP server {server} deferred the mail: {detail}"))
    } else if e.is_timeout() {
        MailError::Transient(format!("the SMTP server {server} did not answer in time: {detail}"))
    } else if tls_refused(e) {
        MailError::Permanent(format!(
            "TLS with the SMTP server {server} failed: {detail} (is its certificate issued for this host name, by a \
             CA that is trusted or set as ca_certificate? is it the right port for the security chosen?)"
        ))
    } else if e.is_client() {
        // What the server does not offer: STARTTLS, a usable AUTH mechanism, SMTPUTF8.
        MailError::Permanent(format!("cannot send through the SMTP server {server}: {detail}"))
    } else {
        MailError::Transient(format!("could not exchange with the SMTP server {server}: {detail}"))
    }
}

impl SmtpMailer {
    /// A mailer for `settings`, once they pass `check`. Connects only when sending.
    pub fn new(settings: SmtpSettings) -> Result<Self, SmtpConfigError> {
        settings.check()?;
        let from = mailbox(&settings.from).map_err(|e| SmtpConfigError::Invalid(format!("from: {e}")))?;
        let transport = settings.transport()?;
        Ok(Self { settings, from, transport: RwLock::new(transport) })
    }

    pub fn settings(&self) -> &SmtpSettings {
        &self.settings
    }

    fn message(&self, mail: &OutgoingMail) -> Result<Message, MailError> {
        if mail.to.is_empty() {
            return Err(MailError::Permanent("the mail has no recipient".into()));
        }
        // lettre encodes the subject; a line break in it is still nobody's intent.
        let subject: String = mail.subject.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let mut builder =
            Message::builder().from(self.from.clone()).message_id(Some(message_id(&mail.message_id)?)).subject(subject);
        for to in &mail.to {
            builder = builder.to(mailbox(to)?);
        }
        builder
            .multipart(MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone()))
            .map_err(|e| MailError::Permanent(format!("the mail cannot be built: {e}")))
    }

    fn current(&self) -> AsyncSmtpTransport<Tokio1Executor> {
        self.transport.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Swaps in a fresh transport and shuts the abandoned one down, closing its connections.
    fn renew(&self, abandoned: AsyncSmtpTransport<Tokio1Executor>) {
        match self.settings.transport() {
            Ok(fresh) => *self.transport.write().unwrap_or_else(PoisonError::into_inner) = fresh,
            // Cannot happen with settings that made the first one; the old pool then stays.
            Err(e) => tracing::warn!(error = %e, "could not renew the SMTP transport"),
        }
        // lettre says QUIT on each connection it closes and waits for the reply, which a hung
        // server never sends: bounded, and not on the caller's time. The task ends by itself.
        tokio::spawn(async move {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, abandoned.shutdown()).await;
        });
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    #[tracing::instrument(skip_all, fields(message_id = %mail.message_id, recipients = mail.to.len()))]
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = self.message(mail)?;
        let transport = self.current();
        match tokio::time::timeout(self.settings.timeout(), transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e, &self.settings.server())),
            Err(_) => {
                self.renew(transport);
                Err(MailError::Transient(format!(
                    "the SMTP server {} did not take the mail within {} s",
                    self.settings.server(),
                    self.settings.timeout_seconds
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    use super::*;

    fn from() -> Address {
        Address::new(Some("Steward".into()), "steward@example.test").unwrap()
    }

    fn plain(port: u16) -> SmtpSettings {
        SmtpSettings { port, timeout_seconds: 2, ..SmtpSettings::new("127.0.0.1", SmtpSecurity::None, from()) }
    }

    fn mail(to: &str) -> OutgoingMail {
        OutgoingMail {
            message_id: "<test-1@steward>".into(),
            to: vec![Address::email(to).unwrap()],
            subject: "Access granted".into(),
            text: "Hello".into(),
            html: "<p>Hello</p>".into(),
        }
    }

    fn invalid(s: &SmtpSettings) -> String {
        match s.check() {
            Err(SmtpConfigError::Invalid(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn settings_are_checked() {
        let ok = SmtpSettings::new("smtp.example.test", SmtpSecurity::StartTls, from());
        assert_eq!(ok.check(), Ok(()));
        assert_eq!(ok.port, 587);
        assert_eq!(SmtpSettings::new("localhost", SmtpSecurity::None, from()).check(), Ok(()));
        assert_eq!(SmtpSettings::new("::1", SmtpSecurity::None, from()).check(), Ok(()));
        assert_eq!(SmtpSettings::new("127.0.0.2", SmtpSecurity::None, from()).check(), Ok(()));

        assert!(invalid(&SmtpSettings { host: " ".into(), ..ok.clone() }).contains("host must not be empty"));
        assert!(invalid(&SmtpSettings { host: "smtp://x".into(), ..ok.clone() }).contains("not a URL"));
        assert!(invalid(&SmtpSettings { port: 0, ..ok.clone() }).contains("port must not be 0"));
        let plain_remote = SmtpSettings::new("smtp.example.test", SmtpSecurity::None, from());
        assert!(invalid(&plain_remote).contains("only allowed to a relay on this machine"));
        let user_only = SmtpSettings { username: Some("steward".into()), ..ok.clone() };
        assert!(invalid(&user_only).contains("a username needs a password"));
        let password_only = SmtpSettings { password: Some(SecretString::from("pw")), ..ok.clone() };
        assert!(invalid(&password_only).contains("a password needs a username"));
        assert!(invalid(&SmtpSettings { timeout_seconds: 0, ..ok.clone() }).contains("timeout_seconds"));
        assert!(invalid(&SmtpSettings { pool_max_size: 0, ..ok.clone() }).contains("pool_max_size"));
        let bad_from = SmtpSettings { from: Address { name: None, email: "nobody".into() }, ..ok.clone() };
        assert!(invalid(&bad_from).starts_with("from: "));
        let not_pem = SmtpSettings { ca_certificate: Some("hello".into()), ..ok.clone() };
        assert!(invalid(&not_pem).contains("no PEM certificate"));
        let key = "-----BEGIN PRIVATE KEY-----\nMC4=\n-----END PRIVATE KEY-----\n";
        assert!(invalid(&SmtpSettings { ca_certificate: Some(key.into()), ..ok.clone() }).contains("private key"));
        let ca_plain = SmtpSettings { ca_certificate: Some("x".into()), ..plain(25) };
        assert!(invalid(&ca_plain).contains("only used over TLS"));
    }

    #[tokio::test]
    async fn debug_never_shows_the_password() {
        let s = SmtpSettings {
            username: Some("steward".into()),
            password: Some(SecretString::from("hunter2-smtp")),
            ..SmtpSettings::new("smtp.example.test", SmtpSecurity::Tls, from())
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2-smtp"), "{shown}");
        assert!(shown.contains("[REDACTED]") && shown.contains("steward"), "{shown}");
        let mailer = SmtpMailer::new(s).unwrap();
        let shown = format!("{mailer:?}");
        assert!(!shown.contains("hunter2-smtp") && shown.contains("smtp.example.test"), "{shown}");
    }

    #[test]
    fn a_mailer_needs_a_runtime() {
        assert_eq!(SmtpMailer::new(plain(25)).unwrap_err(), SmtpConfigError::NoRuntime);
    }

    #[test]
    fn errors_are_one_clipped_line_without_repeats() {
        assert_eq!(clean("Connection error: Connection error: refused\r\nx"), "Connection error: refused  x");
        assert_eq!(clean(&"y".repeat(1000)).len(), REPLY_SHOWN);
    }

    #[test]
    fn message_ids_get_angle_brackets_and_refuse_line_breaks() {
        assert_eq!(message_id("a.b@steward").unwrap(), "<a.b@steward>");
        assert_eq!(message_id("<a.b@steward>").unwrap(), "<a.b@steward>");
        for bad in ["", "<>", "nokey", "a@b\r\nBcc: x@y", "a b@steward", "<a@b@c>"] {
            assert!(message_id(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn messages_have_both_bodies_and_the_stable_id() {
        let mailer = SmtpMailer::new(plain(25)).unwrap();
        let mut m = mail("jane@example.test");
        m.subject = "Grant\r\nBcc: eve@example.test".into();
        m.text = "Grüße".into();
        let raw = String::from_utf8(mailer.message(&m).unwrap().formatted()).unwrap();
        assert!(raw.contains("Message-ID: <test-1@steward>\r\n"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/plain; charset=utf-8") && raw.contains("text/html; charset=utf-8"), "{raw}");
        assert!(!raw.to_ascii_lowercase().contains("\nbcc:"), "{raw}");
        let hand_made = OutgoingMail { to: vec![Address { name: None, email: "x@y\nz".into() }], ..mail("a@b") };
        assert!(matches!(mailer.message(&hand_made), Err(MailError::Permanent(_))));
        assert!(matches!(mailer.message(&OutgoingMail { to: vec![], ..mail("a@b") }), Err(MailError::Permanent(_))));
    }

    /// A scripted SMTP server on loopback: `greeting` (or silence), then fixed replies, with
    /// `rcpt` as the reply to every RCPT. It offers no STARTTLS and no AUTH.
    async fn scripted(greeting: Option<&'static str>, rcpt: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { return };
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let Some(greeting) = greeting else {
                        // Hold the connection without a word, as a hung server does.
                        let _keep = (read, write);
                        std::future::pending::<()>().await;
                        return;
                    };
                    write.write_all(format!("{greeting}\r\n").as_bytes()).await.unwrap();
                    let mut lines = BufReader::new(read).lines();
                    let mut in_data = false;
                    while let Ok(Some(line)) = lines.next_line().await {
                        let reply = if in_data {
                            if line != "." {
                                continue;
                            }
                            in_data = false;
                            "250 queued".to_owned()
                        } else {
                            match line.get(..4).unwrap_or_default().to_ascii_uppercase().as_str() {
                                "EHLO" => "250-scripted\r\n250 8BITMIME".to_owned(),
                                "RCPT" => rcpt.to_owned(),
                                "DATA" => {
                                    in_data = true;
                                    "354 go on".to_owned()
                                }
                                "QUIT" => "221 bye".to_owned(),
                                _ => "250 ok".to_owned(),
                            }
                        };
                        if write.write_all(format!("{reply}\r\n").as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    async fn send_to(port: u16, security: SmtpSecurity, to: &str) -> Result<(), MailError> {
        let mailer = SmtpMailer::new(SmtpSettings { security, ..plain(port) }).unwrap();
        mailer.send(&mail(to)).await
    }

    #[tokio::test]
    async fn replies_map_to_transient_or_permanent() {
        let ok = scripted(Some("220 hi"), "250 ok").await;
        assert_eq!(send_to(ok, SmtpSecurity::None, "jane@example.test").await, Ok(()));

        let busy = scripted(Some("421 4.3.2 busy"), "250 ok").await;
        let e = send_to(busy, SmtpSecurity::None, "jane@example.test").await.unwrap_err();
        assert!(e.is_transient() && e.to_string().contains("421"), "{e}");

        let unknown = scripted(Some("220 hi"), "550 5.1.1 no such mailbox").await;
        let e = send_to(unknown, SmtpSecurity::None, "jane@example.test").await.unwrap_err();
        assert!(matches!(&e, MailError::Permanent(m) if m.contains("550") && m.contains("no such mailbox")), "{e}");

        let later = scripted(Some("220 hi"), "451 4.3.0 try later").await;
        let e = send_to(later, SmtpSecurity::None, "jane@example.test").await.unwrap_err();
        assert!(e.is_transient() && e.to_string().contains("451"), "{e}");
    }

    #[tokio::test]
    async fn no_connection_or_no_answer_is_transient() {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let e = send_to(closed, SmtpSecurity::None, "jane@example.test").await.unwrap_err();
        assert!(e.is_transient(), "{e}");

        let silent = scripted(None, "250 ok").await;
        let started = Instant::now();
        let e = send_to(silent, SmtpSecurity::None, "jane@example.test").await.unwrap_err();
        assert!(e.is_transient() && e.to_string().contains("within 2 s"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn tls_that_cannot_be_had_is_permanent() {
        // STARTTLS required, and the server does not offer it.
        let no_starttls = scripted(Some("220 hi"), "250 ok").await;
        let e = send_to(no_starttls, SmtpSecurity::StartTls, "jane@example.test").await.unwrap_err();
        assert!(matches!(&e, MailError::Permanent(m) if m.contains("STARTTLS")), "{e}");

        // Implicit TLS to a server speaking plain SMTP: the handshake reads "220 hi".
        let plain_port = scripted(Some("220 hi"), "250 ok").await;
        let e = send_to(plain_port, SmtpSecurity::Tls, "jane@example.test").await.unwrap_err();
        assert!(matches!(&e, MailError::Permanent(m) if m.contains("TLS")), "{e}");
    }
}
