//! The port through which notification email leaves Steward (`Mailer`, implemented over SMTP by
//! the connectors crate) and what crosses it: checked addresses and one rendered message with a
//! stable id. Also `MemoryMailer`, an in-memory outbox for tests. Renders nothing and speaks no
//! SMTP itself.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

/// Why an email address (or the name shown with it) was refused. It quotes the value with
/// `{:?}`, so a line break in it shows as `\n` and cannot forge a log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a usable email address: {reason}")]
pub struct InvalidAddress {
    pub value: String,
    pub reason: &'static str,
}

/// A recipient or sender: an email address and, optionally, the name shown with it.
///
/// Build it with [`Address::new`], which refuses what would break a mail header (a line break)
/// or is no address at all (not exactly one `@`). The fields are public for reading; a sender
/// checks addresses again, so one assembled by hand cannot inject a header either.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    pub name: Option<String>,
    pub email: String,
}

impl Address {
    /// A checked address. `name` is trimmed and dropped when empty.
    pub fn new(name: Option<String>, email: impl Into<String>) -> Result<Self, InvalidAddress> {
        let email = email.into();
        check_email(&email)?;
        let name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        if let Some(n) = &name
            && n.chars().any(char::is_control)
        {
            return Err(InvalidAddress {
                value: n.clone(),
                reason: "the name must not hold line breaks or control characters",
            });
        }
        Ok(Self { name, email })
    }

    /// An address without a name.
    pub fn email(email: impl Into<String>) -> Result<Self, InvalidAddress> {
        Self::new(None, email)
    }

    /// Checks an address assembled by hand (the fields are public) as [`Address::new`] would.
    pub fn check(&self) -> Result<(), InvalidAddress> {
        Self::new(self.name.clone(), self.email.clone()).map(|_| ())
    }
}

/// Exactly one `@` with something on both sides, and nothing that could end a header line or
/// split an address list (line breaks, other control characters, spaces, angle brackets).
fn check_email(email: &str) -> Result<(), InvalidAddress> {
    let bad = |reason| Err(InvalidAddress { value: email.to_owned(), reason });
    if email.contains(['\r', '\n']) {
        return bad("it must not hold line breaks");
    }
    if email.chars().any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ',')) {
        return bad("it must not hold spaces, control characters, commas or angle brackets");
    }
    match email.split_once('@') {
        Some((local, domain)) if !domain.contains('@') => {
            if local.is_empty() || domain.is_empty() {
                bad("it needs something before and after the '@'")
            } else {
                Ok(())
            }
        }
        _ => bad("it must hold exactly one '@'"),
    }
}

/// `Name <email>`, or the bare address without a name; a name with characters that are special
/// in a mail header (`,` `;` `"` …) is quoted, as RFC 5322 shows it.
impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            None => f.write_str(&self.email),
            Some(name) if name.contains(|c: char| "()<>[]:;@\\,.\"".contains(c)) => {
                let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
                write!(f, "\"{quoted}\" <{}>", self.email)
            }
            Some(name) => write!(f, "{name} <{}>", self.email),
        }
    }
}

/// One rendered email on its way out: both bodies, so every mail client shows something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// A stable id in Message-ID form (`<key@steward>`), derived from what the mail is about,
    /// not made up per attempt: the sender sets the `Message-ID` header from it, so a mail
    /// sent again after a failed attempt is recognisably the same message.
    pub message_id: String,
    pub to: Vec<Address>,
    pub subject: String,
    /// The `text/plain` body.
    pub text: String,
    /// The `text/html` body.
    pub html: String,
}

/// Why a mail was not sent: worth another try later, or not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Retry later: the server refused the connection, did not answer in time, or answered
    /// with a 4xx reply ("try again").
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help: a 5xx reply (an unknown mailbox, refused credentials), an
    /// address or a message that cannot be sent, a certificate that is not trusted.
    #[error("{0}")]
    Permanent(String),
}

impl MailError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// Sends notification email. `Ok` once the server accepted the message for delivery.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError>;
}

/// An in-memory outbox for tests: records what was sent, or fails every send with
/// `MailError::Transient` while switched to failing.
#[derive(Debug, Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<OutgoingMail>>,
    failing: AtomicBool,
}

impl MemoryMailer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The mail sent so far, oldest first.
    pub fn sent(&self) -> Vec<OutgoingMail> {
        self.sent.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// While `true`, every send fails with `MailError::Transient` and records nothing.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(MailError::Transient("the in-memory mailer is switched to fail".into()));
        }
        self.sent.lock().unwrap_or_else(PoisonError::into_inner).push(mail.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_need_exactly_one_at_and_no_line_break() {
        for bad in
            ["", "jane", "@example.test", "jane@", "jane@@example.test", "a@b@c", "jane@example.test\r\nBcc: x@y"]
        {
            assert!(Address::email(bad).is_err(), "{bad:?} was accepted");
        }
        for bad in ["jane doe@example.test", "<jane@example.test>", "a@b,c@d"] {
            assert!(Address::email(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Address::new(Some("Jane\nBcc: x@y".into()), "jane@example.test").is_err());
        let err = Address::email("jane\n@example.test").unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    #[test]
    fn addresses_display_with_their_name() {
        let a = Address::new(Some("Jane Doe".into()), "jane@example.test").unwrap();
        assert_eq!(a.to_string(), "Jane Doe <jane@example.test>");
        assert_eq!(Address::email("jane@example.test").unwrap().to_string(), "jane@example.test");
        assert_eq!(Address::new(Some("  ".into()), "jane@example.test").unwrap().name, None);
        let quoted = Address::new(Some("Doe, \"J\"".into()), "jane@example.test").unwrap();
        assert_eq!(quoted.to_string(), "\"Doe, \\\"J\\\"\" <jane@example.test>");
        assert!(Address { name: None, email: "x".into() }.check().is_err());
    }

    #[tokio::test]
    async fn the_memory_mailer_records_or_fails() {
        let m = MemoryMailer::new();
        let mail = OutgoingMail {
            message_id: "<1@steward>".into(),
            to: vec![Address::email("jane@example.test").unwrap()],
            subject: "s".into(),
            text: "t".into(),
            html: "<p>t</p>".into(),
        };
        m.send(&mail).await.unwrap();
        m.set_failing(true);
        assert!(m.send(&mail).await.unwrap_err().is_transient());
        m.set_failing(false);
        assert_eq!(m.sent(), vec![mail]);
    }
}
