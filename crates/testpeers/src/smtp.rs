//! PyPI's `aiosmtpd` as the SMTP server mail tests send to: `tests/smtp/server.py`, run by the
//! Python of the virtualenv that `scripts/python-venv.sh` makes, on a free loopback port,
//! storing each message as received in a maildir that `messages` reads back (parsed with the
//! `mail-parser` crate). Optionally STARTTLS or implicit TLS with a certificate from a throwaway
//! CA (as `Slapd::start_tls`), and AUTH with a fixed test user. It can be stopped and started
//! again on the same port with the same maildir, for tests of a relay that goes away.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mail_parser::{MessageParser, MimeHeaders, PartType};

use crate::{free_port, pause, signal};

/// The user and password a server started with `auth` accepts.
pub const SMTP_USER: &str = "steward-mailer";
pub const SMTP_PASSWORD: &str = "smtp-test-secret";

/// How a test SMTP server protects its port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP.
    #[default]
    None,
    /// STARTTLS offered and required before anything else.
    StartTls,
    /// TLS from the first byte (as on port 465).
    Implicit,
}

/// What a test SMTP server offers and requires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SmtpOptions {
    pub tls: SmtpTls,
    /// Require AUTH as `SMTP_USER`/`SMTP_PASSWORD`, offered only over TLS unless
    /// `auth_without_tls`.
    pub auth: bool,
    pub auth_without_tls: bool,
}

/// A running aiosmtpd; killed, and its files deleted, when dropped.
pub struct SmtpServer {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    options: SmtpOptions,
}

/// One message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`) the server accepted.
    pub recipients: Vec<String>,
    /// The addresses of the `To` header.
    pub to: Vec<String>,
    /// The `From` header's address.
    pub from: Option<String>,
    /// The subject, decoded.
    pub subject: String,
    /// The `Message-ID`, with its angle brackets.
    pub message_id: Option<String>,
    /// The `text/plain` body, decoded.
    pub text: Option<String>,
    /// The `text/html` body, decoded.
    pub html: Option<String>,
    /// Whether the message came over TLS (STARTTLS or implicit).
    pub tls: bool,
    /// The user that authenticated, if any.
    pub authenticated_as: Option<String>,
    /// The message as received (after the server's trace headers).
    pub raw: String,
}

impl ReceivedMail {
    /// Every link in the bodies, once each, in order: the `href`s of the HTML body (with `&amp;`
    /// undone), then any further `http(s)://` URL written out in either body.
    pub fn links(&self) -> Vec<String> {
        let mut links: Vec<String> = Vec::new();
        let mut add = |l: String| {
            if !l.is_empty() && !links.contains(&l) {
                links.push(l);
            }
        };
        if let Some(html) = &self.html {
            for quote in ['"', '\''] {
                let marker = format!("href={quote}");
                let mut rest = html.as_str();
                while let Some(at) = rest.find(&marker) {
                    rest = &rest[at + marker.len()..];
                    let end = rest.find(quote).unwrap_or(rest.len());
                    add(rest[..end].replace("&amp;", "&"));
                    rest = &rest[end..];
                }
            }
        }
        for body in [&self.text, &self.html].into_iter().flatten() {
            for scheme in ["https://", "http://"] {
                let mut rest = body.as_str();
                while let Some(at) = rest.find(scheme) {
                    rest = &rest[at..];
                    let end = rest
                        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')'))
                        .unwrap_or(rest.len());
                    add(rest[..end].trim_end_matches(['.', ',', ';']).replace("&amp;", "&"));
                    rest = &rest[end..];
                }
            }
        }
        links
    }

    /// Parses one stored message (the server's trace headers, then the message).
    fn parse(bytes: &[u8]) -> Self {
        let message = MessageParser::default().parse(bytes).expect("the test SMTP server stored a parsable message");
        let trace = |name: &str| message.header_raw(name).map(|v| v.trim().to_owned()).unwrap_or_default();
        let addresses = |a: Option<&mail_parser::Address<'_>>| {
            a.map(|a| a.iter().filter_map(|x| x.address().map(str::to_owned)).collect()).unwrap_or_default()
        };
        let part = |html: bool| {
            message.parts.iter().find_map(|p| match &p.body {
                PartType::Html(t) if html => Some(t.to_string()),
                PartType::Text(t)
                    if !html
                        && p.content_type()
                            .is_none_or(|c| c.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain"))) =>
                {
                    Some(t.to_string())
                }
                _ => None,
            })
        };
        let raw = String::from_utf8_lossy(bytes);
        let raw =
            raw.split_once("X-Test-Auth:").and_then(|(_, r)| r.split_once("\r\n")).map_or(raw.as_ref(), |(_, r)| r);
        let user = trace("X-Test-Auth");
        Self {
            mail_from: trace("X-Test-Mail-From"),
            recipients: trace("X-Test-Rcpt-To").split(", ").filter(|r| !r.is_empty()).map(str::to_owned).collect(),
            to: addresses(message.to()),
            from: addresses(message.from()).into_iter().next(),
            subject: message.subject().unwrap_or_default().to_owned(),
            message_id: message.message_id().map(|id| format!("<{id}>")),
            text: part(false),
            html: part(true),
            tls: trace("X-Test-Tls") == "yes",
            authenticated_as: (!user.is_empty()).then_some(user),
            raw: raw.to_owned(),
        }
    }
}

/// The Python of `$STEWARD_VENV`, else of the repository's `.venv`.
fn python() -> PathBuf {
    crate::venv_python("PyPI's aiosmtpd")
}

impl SmtpServer {
    /// A plain SMTP server without authentication.
    pub fn start() -> Self {
        Self::start_with(SmtpOptions::default())
    }

    /// A server offering what `options` say.
    pub fn start_with(options: SmtpOptions) -> Self {
        let dir = std::env::temp_dir().join(format!("steward-smtp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if options.tls != SmtpTls::None {
            crate::slapd::make_certificates(&dir);
        }
        let mut server = Self { child: None, dir, port: free_port(), options };
        server.run();
        server
    }

    fn run(&mut self) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/smtp/server.py");
        let log = std::fs::File::create(self.dir.join("server.log")).unwrap();
        let mut cmd = Command::new(python());
        cmd.arg(script).arg("--port").arg(self.port.to_string()).arg("--maildir").arg(self.maildir());
        match self.options.tls {
            SmtpTls::None => {}
            SmtpTls::StartTls => {
                cmd.arg("--starttls");
            }
            SmtpTls::Implicit => {
                cmd.arg("--implicit-tls");
            }
        }
        if self.options.tls != SmtpTls::None {
            cmd.arg("--cert").arg(self.dir.join("server.pem")).arg("--key").arg(self.dir.join("server.key"));
        }
        if self.options.auth {
            cmd.args(["--user", SMTP_USER, "--password", SMTP_PASSWORD]);
            if self.options.auth_without_tls {
                cmd.arg("--auth-without-tls");
            }
        }
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn().expect("python runs");
        // Up when it listens; a server that exits first says why in its log.
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("tests/smtp/server.py exited ({status}): {}", self.log());
            }
            assert!(Instant::now() < deadline, "aiosmtpd did not listen on 127.0.0.1:{}: {}", self.port, self.log());
            pause();
        }
        self.child = Some(child);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn maildir(&self) -> PathBuf {
        self.dir.join("maildir")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM text of the CA that issued the certificate of a server started with TLS.
    pub fn ca_pem(&self) -> String {
        assert!(self.options.tls != SmtpTls::None, "this SMTP server serves no TLS: start it with SmtpTls");
        std::fs::read_to_string(self.dir.join("ca.pem")).unwrap()
    }

    /// Every message received so far, oldest first (also across restarts).
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(self.maildir().join(sub)).ok())
            .flatten()
            .filter_map(|e| {
                let e = e.ok()?;
                Some((e.metadata().ok()?.modified().ok()?, e.path()))
            })
            .collect();
        // Maildir names start with the time of delivery; the name breaks ties within a second.
        files.sort();
        files.iter().map(|(_, path)| ReceivedMail::parse(&std::fs::read(path).unwrap())).collect()
    }

    /// The messages once there are at least `n`, or a panic after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "the test SMTP server received {} message(s) in {timeout:?}, not {n}",
                messages.len()
            );
            pause();
        }
    }

    /// Kills the server: its port refuses connections until `restart`. Received mail stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = signal(child.id(), "CONT");
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a stopped server again, on the same port, with the same maildir and options.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// Freezes the server (`SIGSTOP`): connections are accepted by the kernel but nothing is
    /// answered, as with a hung relay.
    pub fn freeze(&self) {
        let child = self.child.as_ref().expect("the SMTP server is running");
        assert!(signal(child.id(), "STOP"), "aiosmtpd could not be stopped");
    }

    /// Lets a frozen server go on (`SIGCONT`).
    pub fn thaw(&self) {
        let child = self.child.as_ref().expect("the SMTP server is running");
        assert!(signal(child.id(), "CONT"), "aiosmtpd could not be continued");
    }

    /// The directory holding the maildir, the log and the certificates.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_message_is_read_back() {
        let raw = "X-Test-Mail-From: steward@example.test\r\nX-Test-Rcpt-To: a@example.test, b@example.test\r\n\
            X-Test-Tls: yes\r\nX-Test-Auth: steward-mailer\r\n\
            From: Steward <steward@example.test>\r\nTo: Jane <a@example.test>, b@example.test\r\n\
            Subject: =?utf-8?b?R3LDvMOfZQ==?=\r\nMessage-ID: <k1@steward>\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n\
            --b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
            Open https://steward.test/requests/1?x=1.=0D=0A\r\n\
            --b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
            <p><a href=\"https://steward.test/requests/1?x=1&amp;y=2\">open</a></p>\r\n--b--\r\n";
        let m = ReceivedMail::parse(raw.as_bytes());
        assert_eq!(m.mail_from, "steward@example.test");
        assert_eq!(m.recipients, ["a@example.test", "b@example.test"]);
        assert_eq!(m.to, ["a@example.test", "b@example.test"]);
        assert_eq!(m.from.as_deref(), Some("steward@example.test"));
        assert_eq!(m.subject, "Grüße");
        assert_eq!(m.message_id.as_deref(), Some("<k1@steward>"));
        assert!(m.tls);
        assert_eq!(m.authenticated_as.as_deref(), Some("steward-mailer"));
        assert!(m.text.as_deref().unwrap().starts_with("Open https://steward.test/requests/1?x=1.\r\n"));
        assert!(m.html.as_deref().unwrap().contains("<a href"));
        assert_eq!(m.links(), ["https://steward.test/requests/1?x=1&y=2", "https://steward.test/requests/1?x=1"]);
        assert!(m.raw.starts_with("From: Steward"), "{}", m.raw);
    }
}
