//! Outgoing webhooks over HTTP on reqwest: custom extension callouts (the app's `CalloutSender`
//! port) and chat messages (`ChatSender`). One POST of the JSON body, no redirect followed (the
//! URL was checked when it was written, a redirect could lead anywhere), within a timeout.
//! Timeouts, connection failures, 408, 429 and 5xx answers are worth retrying; any other
//! answer is a refusal. Errors never carry the URL or the body.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use steward_app::chat::ChatSender;
use steward_app::extensions::{CalloutError, CalloutSender, Outgoing};
use steward_app::mail::MailError;
use steward_domain::extension::SIGNATURE_HEADER;

/// The longest part of an error answer repeated in a callout's detail.
const ANSWER_SHOWN: usize = 200;

/// Sends callouts with one shared client.
#[derive(Debug, Clone)]
pub struct HttpCallouts {
    http: reqwest::Client,
}

impl HttpCallouts {
    pub fn new() -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        Ok(Self { http })
    }
}

/// Only printable ASCII, clipped: an answer's text is shown to administrators.
fn clean(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(ANSWER_SHOWN).collect()
}

/// A transport error in words, without the URL.
fn transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "the endpoint did not answer in time"
    } else if e.is_connect() {
        "could not connect to the endpoint"
    } else {
        "the exchange with the endpoint failed"
    };
    match crate::innermost_cause(e, clean) {
        Some(d) => format!("{kind} ({d})"),
        None => kind.to_owned(),
    }
}

/// How long a chat webhook has to answer.
const CHAT_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a POST failed: whether it is worth retrying, and what happened in words.
struct Failed {
    retry: bool,
    why: String,
}

impl HttpCallouts {
    /// POSTs `body` as JSON (with the `signature`, if any); the status of a 2xx answer.
    async fn post(
        &self,
        url: &str,
        timeout: Duration,
        signature: Option<&str>,
        body: Vec<u8>,
        redirect_hint: &str,
    ) -> Result<u16, Failed> {
        let mut req = self.http.post(url).timeout(timeout).header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(sig) = signature {
            req = req.header(SIGNATURE_HEADER, sig);
        }
        let resp = req.body(body).send().await.map_err(|e| Failed { retry: true, why: transport(&e) })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(status.as_u16());
        }
        let text = if status.is_redirection() {
            format!("a redirect, which Steward does not follow; {redirect_hint}")
        } else {
            let body = tokio::time::timeout(Duration::from_secs(2), resp.text()).await.ok().and_then(Result::ok);
            clean(&body.unwrap_or_default())
        };
        let why = format!(
            "the endpoint answered HTTP {}{}",
            status.as_u16(),
            if text.is_empty() { String::new() } else { format!(": {text}") }
        );
        let retry = status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::REQUEST_TIMEOUT;
        Err(Failed { retry, why })
    }
}

#[async_trait]
impl CalloutSender for HttpCallouts {
    async fn send(&self, out: &Outgoing<'_>) -> Result<u16, CalloutError> {
        let hint = "set targetUrl to the final address";
        self.post(out.url, out.timeout, Some(out.signature), out.body.to_vec(), hint)
            .await
            .map_err(|f| if f.retry { CalloutError::Transient(f.why) } else { CalloutError::Permanent(f.why) })
    }
}

#[async_trait]
impl ChatSender for HttpCallouts {
    async fn post(&self, url: &SecretString, body: &str) -> Result<(), MailError> {
        let hint = "give the webhook's final address";
        let sent = HttpCallouts::post(self, url.expose_secret(), CHAT_TIMEOUT, None, body.as_bytes().to_vec(), hint);
        sent.await
            .map(|_| ())
            .map_err(|f| if f.retry { MailError::Transient(f.why) } else { MailError::Permanent(f.why) })
    }
}
