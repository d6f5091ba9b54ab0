//! Custom extension callouts over HTTP: the app's `CalloutSender` port on reqwest. One POST of
//! the signed JSON body to the extension's target URL, no redirect followed (the URL was checked
//! when the extension was written, a redirect could lead anywhere), within the extension's
//! timeout. Timeouts, connection failures, 408, 429 and 5xx answers are worth retrying; any
//! other answer is a refusal. Errors never carry the URL's query or the body.

use std::time::Duration;

use async_trait::async_trait;
use steward_app::extensions::{CalloutError, CalloutSender, Outgoing};
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

#[async_trait]
impl CalloutSender for HttpCallouts {
    async fn send(&self, out: &Outgoing<'_>) -> Result<u16, CalloutError> {
        let resp = self
            .http
            .post(out.url)
            .timeout(out.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, out.signature)
            .body(out.body.to_vec())
            .send()
            .await
            .map_err(|e| CalloutError::Transient(transport(&e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(status.as_u16());
        }
        let text = if status.is_redirection() {
            "a redirect, which Steward does not follow; set targetUrl to the final address".to_owned()
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
        Err(if retry { CalloutError::Transient(why) } else { CalloutError::Permanent(why) })
    }
}
