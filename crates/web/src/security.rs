//! HTTP hardening: the security headers every response carries, the client's address (the TCP
//! peer, or behind trusted proxies the right-most untrusted `X-Forwarded-For` hop), and
//! per-address rate limits (token buckets in a bounded map) on sign-in and on failed
//! bearer-token authentications.
//!
//! Limits, per client address: `/auth/login` and `/auth/callback` 20 requests at once, then one
//! every 3 s (each route its own bucket); failed bearer-token authentications (answers 401 to a
//! request with an `Authorization` header) 10 at once, then one every 6 s, after which requests
//! carrying a bearer token are answered 429 (with `Retry-After`) before they are checked. The
//! map holds at most `MAX_TRACKED` addresses; when full, buckets that have refilled are
//! dropped, and an address that still finds no room is not limited (a flood from that many
//! addresses is a matter for the network in front of Steward).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use crate::AppState;

/// How many client addresses each limiter tracks at most.
pub const MAX_TRACKED: usize = 10_000;

/// A token bucket's size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed at once.
    pub burst: u32,
    /// One more request is allowed each time this passes.
    pub every: Duration,
}

/// The limits per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub login: RateLimit,
    pub callback: RateLimit,
    pub failed_auth: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login: RateLimit { burst: 20, every: Duration::from_secs(3) },
            callback: RateLimit { burst: 20, every: Duration::from_secs(3) },
            failed_auth: RateLimit { burst: 10, every: Duration::from_secs(6) },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by client address, bounded to `MAX_TRACKED` addresses.
#[derive(Debug)]
pub struct Limiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Self {
        Self { limit, buckets: Mutex::new(HashMap::new()) }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let per = self.limit.every.as_secs_f64().max(f64::MIN_POSITIVE);
        let gained = now.saturating_duration_since(b.at).as_secs_f64() / per;
        b.tokens = (b.tokens + gained).min(f64::from(self.limit.burst));
        b.at = now;
    }

    /// How long until a token is there, for `Retry-After` (whole seconds, at least 1).
    fn wait(&self, b: &Bucket) -> Duration {
        let missing = (1.0 - b.tokens).max(0.0);
        Duration::from_secs_f64((missing * self.limit.every.as_secs_f64()).ceil().max(1.0))
    }

    fn with_bucket<T>(&self, ip: IpAddr, now: Instant, f: impl FnOnce(&Self, &mut Bucket) -> T) -> Option<T> {
        let Ok(mut map) = self.buckets.lock() else { return None };
        if !map.contains_key(&ip) && map.len() >= MAX_TRACKED {
            // Full buckets say nothing a fresh one would not.
            let full = f64::from(self.limit.burst);
            map.retain(|_, b| {
                self.refill(b, now);
                b.tokens < full
            });
            if map.len() >= MAX_TRACKED {
                tracing::warn!(tracked = map.len(), "rate limiter full: an address goes unlimited");
                return None;
            }
        }
        let b = map.entry(ip).or_insert(Bucket { tokens: f64::from(self.limit.burst), at: now });
        self.refill(b, now);
        Some(f(self, b))
    }

    /// Takes a token for `ip`: `Err(retry after)` when there is none left.
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        self.with_bucket(ip, now, |l, b| {
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                Ok(())
            } else {
                Err(l.wait(b))
            }
        })
        .unwrap_or(Ok(()))
    }

    /// Whether `ip` has a token left, without taking it.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let Ok(map) = self.buckets.lock() else { return Ok(()) };
        match map.get(&ip) {
            Some(b) => {
                let mut b = *b;
                self.refill(&mut b, now);
                if b.tokens >= 1.0 { Ok(()) } else { Err(self.wait(&b)) }
            }
            None => Ok(()),
        }
    }
}

/// How the web layer protects itself, from configuration.
#[derive(Debug, Clone, Default)]
pub struct SecurityOptions {
    /// Proxies whose `X-Forwarded-For` is believed (CIDRs).
    pub trusted_proxies: Vec<IpNet>,
    /// Steward terminates TLS itself (so `Strict-Transport-Security` is sent).
    pub tls: bool,
    pub limits: RateLimits,
}

/// The hardening state every request shares.
#[derive(Debug)]
pub struct Security {
    pub trusted_proxies: Vec<IpNet>,
    /// Whether browsers reach Steward over HTTPS (its own TLS, or an `https` public URL).
    pub https: bool,
    /// The `Content-Security-Policy` sent.
    pub csp: HeaderValue,
    pub login: Limiter,
    pub callback: Limiter,
    pub failed_auth: Limiter,
}

impl Security {
    /// `form_action` is an extra origin forms may post (or be redirected) to: the identity
    /// provider's, for the logout form's redirect to its end-session endpoint.
    pub fn new(options: &SecurityOptions, public_url: Option<&str>, form_action: Option<&str>) -> Self {
        let https = options.tls || public_url.is_some_and(|u| u.starts_with("https://"));
        let mut csp =
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'"
                .to_owned();
        if let Some(origin) = form_action.filter(|o| o.bytes().all(|b| b.is_ascii_graphic())) {
            csp.push(' ');
            csp.push_str(origin);
        }
        Self {
            trusted_proxies: options.trusted_proxies.clone(),
            https,
            csp: HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static("default-src 'self'")),
            login: Limiter::new(options.limits.login),
            callback: Limiter::new(options.limits.callback),
            failed_auth: Limiter::new(options.limits.failed_auth),
        }
    }
}

/// The address of the client: the TCP peer; when the peer is a trusted proxy, the right-most
/// address of `X-Forwarded-For` that is not a trusted proxy (every header of that name, in
/// order). A hop that does not parse ends the walk at the last trusted one: what lies to its
/// left was written by someone we do not trust. `None` when the server gave no peer address
/// (a router called directly, as in tests).
pub fn client_ip(parts: &Parts, state: &AppState) -> Option<IpAddr> {
    client_ip_of(&parts.headers, &parts.extensions, &state.security.trusted_proxies)
}

pub(crate) fn client_ip_of(headers: &HeaderMap, extensions: &Extensions, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(&canonical(ip)));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut last = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else { return Some(last) };
        if !is_trusted(ip) {
            return Some(ip);
        }
        last = ip;
    }
    Some(last)
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip())).map(canonical)
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, from a dual-stack socket) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// Adds the security headers to every response (keeping any a handler set itself).
/// Runs the request inside its audit origin (`steward_app::audit::origin`): the events it
/// causes record the client's address.
pub async fn audit_origin(State(security): State<std::sync::Arc<Security>>, req: Request, next: Next) -> Response {
    let ip = client_ip_of(req.headers(), req.extensions(), &security.trusted_proxies).map(|ip| ip.to_string());
    steward_app::audit::origin::scope(steward_app::audit::origin::Origin { ip }, next.run(req)).await
}

pub async fn headers(State(security): State<std::sync::Arc<Security>>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let mut set = |name: HeaderName, value: HeaderValue| {
        h.entry(name).or_insert(value);
    };
    set(header::CONTENT_SECURITY_POLICY, security.csp.clone());
    set(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    set(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: under it browsers send `Origin: null` with form posts, and the
    // session layer's CSRF check could no longer tell this site's forms from another's.
    set(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if security.https {
        set(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    resp
}

/// How a limited part of the application words its 429.
#[derive(Debug, Clone, Copy)]
pub enum Dialect {
    Graph,
    Scim,
}

/// Refuses requests carrying a bearer token from an address that failed to authenticate too
/// often, and counts the failures (401 answers to requests with an `Authorization` header).
pub async fn limit_failed_auth(
    State((security, dialect)): State<(std::sync::Arc<Security>, Dialect)>,
    req: Request,
    next: Next,
) -> Response {
    if !req.headers().contains_key(header::AUTHORIZATION) {
        return next.run(req).await;
    }
    let ip = client_ip_of(req.headers(), req.extensions(), &security.trusted_proxies);
    if let Some(ip) = ip
        && let Err(wait) = security.failed_auth.check(ip, Instant::now())
    {
        tracing::warn!(client = %ip, "too many failed authentications: refused");
        return too_many(dialect, wait);
    }
    let resp = next.run(req).await;
    if resp.status() == StatusCode::UNAUTHORIZED
        && let Some(ip) = ip
    {
        let _ = security.failed_auth.take(ip, Instant::now());
    }
    resp
}

fn retry_after(wait: Duration) -> HeaderValue {
    HeaderValue::from(wait.as_secs().max(1))
}

fn too_many(dialect: Dialect, wait: Duration) -> Response {
    let message = "Too many failed authentications from this address; try again later.";
    let mut resp = match dialect {
        Dialect::Graph => {
            crate::error::ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", message).into_response()
        }
        Dialect::Scim => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::CONTENT_TYPE, "application/scim+json")],
            serde_json::json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "429",
                "detail": message,
            })
            .to_string(),
        )
            .into_response(),
    };
    resp.headers_mut().insert(header::RETRY_AFTER, retry_after(wait));
    resp
}

/// A 429 page for the sign-in routes.
pub(crate) fn too_many_page(wait: Duration) -> Response {
    let mut resp = crate::signin::page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many sign-in attempts",
        "Too many sign-in requests came from this address. Wait a moment and try again.",
    );
    resp.headers_mut().insert(header::RETRY_AFTER, retry_after(wait));
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn with_peer(peer: &str, xff: &[&str]) -> (HeaderMap, Extensions) {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        let mut e = Extensions::new();
        e.insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        (h, e)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "2001:db8::/32".parse().unwrap()];
        let at = |peer: &str, xff: &[&str]| {
            let (h, e) = with_peer(peer, xff);
            client_ip_of(&h, &e, &trusted)
        };
        // An untrusted peer is the client, whatever it claims.
        assert_eq!(at("203.0.113.9:5000", &["198.51.100.1"]), ip("203.0.113.9"));
        // Behind a trusted proxy: the right-most hop that is not a proxy.
        assert_eq!(at("10.0.0.2:5000", &["198.51.100.1, 203.0.113.7, 10.0.0.3"]), ip("203.0.113.7"));
        assert_eq!(at("10.0.0.2:5000", &["198.51.100.1", "203.0.113.7:4444"]), ip("203.0.113.7"));
        assert_eq!(at("[2001:db8::5]:443", &["[2001:db9::7]:1234"]), ip("2001:db9::7"));
        // Only proxies: the left-most one; no header: the peer.
        assert_eq!(at("10.0.0.2:5000", &["10.0.0.9"]), ip("10.0.0.9"));
        assert_eq!(at("10.0.0.2:5000", &[]), ip("10.0.0.2"));
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(at("10.0.0.2:5000", &["198.51.100.1, unknown, 10.0.0.4"]), ip("10.0.0.4"));
        // IPv4-mapped peers count as IPv4.
        assert_eq!(at("[::ffff:10.0.0.2]:80", &["192.0.2.1"]), ip("192.0.2.1"));
        // No peer known: no address.
        assert_eq!(client_ip_of(&HeaderMap::new(), &Extensions::new(), &trusted), None);
    }

    #[test]
    fn buckets_empty_refill_and_stay_bounded() {
        let l = Limiter::new(RateLimit { burst: 2, every: Duration::from_secs(10) });
        let t0 = Instant::now();
        let a = ip("192.0.2.1").unwrap();
        assert!(l.take(a, t0).is_ok() && l.take(a, t0).is_ok());
        assert_eq!(l.take(a, t0), Err(Duration::from_secs(10)));
        assert!(l.check(a, t0).is_err());
        assert!(l.take(ip("192.0.2.2").unwrap(), t0).is_ok(), "per address");
        assert_eq!(l.check(a, t0 + Duration::from_secs(4)), Err(Duration::from_secs(6)));
        assert!(l.take(a, t0 + Duration::from_secs(10)).is_ok(), "refilled");
        for i in 0..MAX_TRACKED + 5 {
            let octets = u32::try_from(i).unwrap().to_be_bytes();
            let _ = l.take(IpAddr::from([10, octets[1], octets[2], octets[3]]), t0);
        }
        assert!(l.buckets.lock().unwrap().len() <= MAX_TRACKED);
    }
}
