//! HTTP to the provider: the client we build (no redirects, timeouts), bounded response
//! bodies, and the small adapter through which `openidconnect` sends its requests over our
//! reqwest 0.13 client instead of its own reqwest 0.12.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};
use reqwest::Url;

/// The largest response body read from the provider (discovery, JWKS, token responses).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A reqwest client fit for talking to an OpenID Connect provider: it never follows
/// redirects (a redirect from discovery, JWKS or the token endpoint is an error, not a hint:
/// following it would let whoever controls a response point Steward at another host), and it
/// gives up after `timeout` (connecting: at most 5 s).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout)
        .user_agent(concat!("steward-oidc/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Why a request to the provider failed; the text never holds a token or secret.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(pub String);

/// Sends `request` and reads at most [`MAX_BODY_BYTES`] of the answer. A response from another
/// URL than the one asked (a client that followed a redirect) is refused.
pub(crate) async fn send(client: &reqwest::Client, request: reqwest::Request) -> Result<HttpResponse, HttpError> {
    let url = request.url().clone();
    let mut response = client.execute(request).await.map_err(|e| HttpError(describe(&url, &e)))?;
    if response.url() != &url {
        return Err(HttpError(format!("{} redirected to another URL; redirects are not followed", redacted(&url))));
    }
    if response.content_length().is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(HttpError(format!("{} answered more than {MAX_BODY_BYTES} bytes", redacted(&url))));
    }
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| HttpError(describe(&url, &e)))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(HttpError(format!("{} answered more than {MAX_BODY_BYTES} bytes", redacted(&url))));
        }
        body.extend_from_slice(&chunk);
    }
    let mut out = HttpResponse::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// GETs a JSON document: 200 and a body, else an error naming the URL and the status.
pub(crate) async fn get_json(client: &reqwest::Client, url: &Url) -> Result<serde_json::Value, HttpError> {
    let request = client
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .build()
        .map_err(|e| HttpError(describe(url, &e)))?;
    let response = send(client, request).await?;
    if response.status().is_redirection() {
        return Err(HttpError(format!(
            "{} answered {} (a redirect); redirects are not followed",
            redacted(url),
            response.status()
        )));
    }
    if !response.status().is_success() {
        return Err(HttpError(format!("{} answered {}", redacted(url), response.status())));
    }
    serde_json::from_slice(response.body())
        .map_err(|e| HttpError(format!("{} answered a body that is not JSON: {e}", redacted(url))))
}

/// The URL without its query (which could hold a code or token in other flows).
fn redacted(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

fn describe(url: &Url, e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not be reached"
    } else if e.is_builder() {
        "could not be asked"
    } else {
        "failed"
    };
    // reqwest's own message names the URL with its query; ours does not.
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() { format!("{} {what}", redacted(url)) } else { format!("{} {what}: {cause}", redacted(url)) }
}

/// `openidconnect`'s HTTP client: our reqwest 0.13 client, bounded bodies, no redirects.
pub(crate) struct Adapter<'a>(pub &'a reqwest::Client);

impl<'c> AsyncHttpClient<'c> for Adapter<'_> {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|e| HttpError(format!("the request could not be built: {e}")))?;
            send(self.0, request).await
        })
    }
}
