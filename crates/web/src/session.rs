//! The portal session as HTTP sees it: the `__Host-steward_session` cookie (HttpOnly, Secure,
//! SameSite=Lax, Path=/, no Domain), the principal it authenticates, and the CSRF rules for
//! requests it authenticates.
//!
//! CSRF: a request authenticated by the cookie that changes state (any method but GET, HEAD,
//! OPTIONS) must come from Steward's own origin: its `Origin` header (or, when a browser sent
//! none, its `Referer`) must be the configured public URL's origin, or, without one, name the
//! request's `Host`. A request with neither header is refused. Requests whose body an HTML form
//! of another site could have produced (`application/x-www-form-urlencoded`,
//! `multipart/form-data`, `text/plain`) must also carry the session's synchronizer token in the
//! `X-CSRF-Token` header, or, for the portal's own forms, in a `csrf_token` field (checked by
//! the form's handler, as `/auth/logout` does). The token is derived one-way from the session
//! token (`BrowserSecret::csrf_token`), stays the same for the session, and is given out by
//! `GET /auth/me`. Bearer-token requests carry no cookie and need none of this.

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use steward_app::AppError;
use steward_app::auth::{Authenticator, Principal};
use steward_app::sessions::{self, BrowserSecret, SessionRefused};

use crate::AppState;
use crate::error::ApiError;

/// The session cookie. `__Host-`: the browser keeps it only if it is Secure, has Path=/ and no
/// Domain, so no sibling host can set or shadow it.
pub const SESSION_COOKIE: &str = "__Host-steward_session";
/// Binds a sign-in to the browser that began it, from `/auth/login` to `/auth/callback`.
pub const SIGN_IN_COOKIE: &str = "__Host-steward_signin";
/// The header that carries the session's anti-CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name` in the request, if sent (the first, should there be several).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a `__Host-` cookie holding `value` for `max_age` seconds (`0` clears it).
pub fn set_cookie(name: &str, value: &str, max_age: i64) -> HeaderValue {
    let v = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}", max_age.max(0));
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("__Host-steward_invalid=; Path=/; Secure; Max-Age=0"))
}

/// Whether a method changes state (and so needs CSRF protection).
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// scheme://host[:port] of a URL, lowercased, without a default port; `None` if it is not an
/// absolute http(s) URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = match authority.rsplit_once(':') {
        Some((host, port)) if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") => {
            host.to_owned()
        }
        _ => authority,
    };
    Some(format!("{scheme}://{authority}"))
}

/// Whether the request comes from Steward's own origin (see the module's notes).
pub fn same_origin(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    let claimed = match headers.get(header::ORIGIN) {
        Some(o) => o.to_str().ok().and_then(origin_of),
        None => headers.get(header::REFERER).and_then(|r| r.to_str().ok()).and_then(origin_of),
    };
    let Some(claimed) = claimed else { return false };
    match public_url.and_then(origin_of) {
        Some(expected) => claimed == expected,
        None => {
            let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
            claimed
                .split_once("://")
                .is_some_and(|(scheme, _)| origin_of(&format!("{scheme}://{host}")).is_some_and(|o| o == claimed))
        }
    }
}

/// Whether a content type is one an HTML form of any site can send.
fn form_like(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    matches!(mime.as_str(), "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain")
}

fn forbidden(message: &str) -> ApiError {
    AppError::Forbidden(message.to_owned()).into()
}

/// The principal of the session cookie, when the request has one (`Ok(None)` when it has
/// none); refused when the session is not valid (401) or the CSRF rules are not met (403).
pub async fn principal(parts: &Parts, state: &AppState) -> Result<Option<Principal>, ApiError> {
    principal_with(parts, state, None).await
}

/// As `principal`, for the portal's own forms: the synchronizer token may also come in the
/// form's `csrf_token` field (`form_token`); the same Origin/Referer and token rules apply.
pub async fn form_principal(
    parts: &Parts,
    state: &AppState,
    form_token: Option<&str>,
) -> Result<Option<Principal>, ApiError> {
    principal_with(parts, state, form_token).await
}

async fn principal_with(
    parts: &Parts,
    state: &AppState,
    form_token: Option<&str>,
) -> Result<Option<Principal>, ApiError> {
    let Some(value) = cookie(&parts.headers, SESSION_COOKIE) else { return Ok(None) };
    let token = BrowserSecret::from_cookie(&value);
    let session = sessions::resume(&state.services, &token).await.map_err(refused)?;
    if is_unsafe(&parts.method) {
        if !same_origin(&parts.headers, state.public_url.as_deref()) {
            tracing::warn!(user = %session.user_id, method = %parts.method, "cross-origin request with the session cookie refused");
            return Err(forbidden(
                "A request authenticated by the session cookie that changes state must come from this site: its \
                 Origin (or Referer) header must be this site's.",
            ));
        }
        let presented = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).or(form_token);
        if form_like(&parts.headers) && !presented.is_some_and(|t| token.csrf_matches(t)) {
            return Err(forbidden("This request needs the session's anti-CSRF token in the X-CSRF-Token header."));
        }
        if let Some(t) = presented
            && !token.csrf_matches(t)
        {
            return Err(forbidden("The anti-CSRF token does not match the session."));
        }
    }
    let mut facts = session.facts();
    facts.source = crate::client_ip(parts, state);
    let p = Authenticator::signed_in(&state.services, session.user_id, facts).await?;
    tracing::debug!(principal = %p.label(), "authenticated by the session cookie");
    Ok(Some(p))
}

pub(crate) fn refused(e: SessionRefused) -> ApiError {
    match e {
        SessionRefused::App(e) => e.into(),
        other => AppError::Unauthenticated(other.to_string()).into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(origin_of("https://Steward.Example:443/x?y").as_deref(), Some("https://steward.example"));
        assert_eq!(origin_of("http://[::1]:8080/").as_deref(), Some("http://[::1]:8080"));
        assert_eq!(origin_of("https://[::1]:443").as_deref(), Some("https://[::1]"));
        assert_eq!(origin_of("null"), None);
        assert_eq!(origin_of("https://user@evil.example"), None);
        let public = Some("https://steward.example");
        assert!(same_origin(&headers(&[("origin", "https://steward.example")]), public));
        assert!(!same_origin(&headers(&[("origin", "https://evil.example")]), public));
        assert!(!same_origin(&headers(&[("origin", "http://steward.example")]), public));
        assert!(!same_origin(&headers(&[("origin", "null")]), public));
        assert!(!same_origin(&headers(&[]), public), "neither Origin nor Referer");
        assert!(same_origin(&headers(&[("referer", "https://steward.example/portal?x=1")]), public));
        assert!(!same_origin(&headers(&[("referer", "https://steward.example.evil.example/")]), public));
        assert!(
            !same_origin(
                &headers(&[("origin", "https://evil.example"), ("referer", "https://steward.example/")]),
                public
            ),
            "Origin wins over Referer"
        );
        // Without a public URL, the Host header names the site.
        let h = headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")]);
        assert!(same_origin(&h, None));
        let h = headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:9090")]);
        assert!(!same_origin(&h, None));
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let h = headers(&[("cookie", "a=1; __Host-steward_session=tok; b=2"), ("cookie", "c=3")]);
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("tok"));
        assert_eq!(cookie(&h, "c").as_deref(), Some("3"));
        assert_eq!(cookie(&h, "steward_session"), None);
        let v = set_cookie(SESSION_COOKIE, "tok", 60);
        assert_eq!(v, "__Host-steward_session=tok; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=60");
    }
}
