//! Portal sign-in with OpenID Connect, at `/auth` beside the Graph API (outside its route
//! registry, its path normalisation and its error shape): `GET /auth/login` begins the
//! authorization-code flow (PKCE, state, nonce) and keeps the pending sign-in server-side;
//! `GET /auth/callback` finishes it, names the directory user and starts a session;
//! `POST /auth/logout` ends it (CSRF-protected) and sends the browser to the provider's
//! end-session endpoint; `GET /auth/me` says who is signed in. Errors are small HTML pages (JSON
//! for `/auth/me`); nothing here logs a code, token or secret.

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use steward_app::identity::ClaimMapping;
use steward_app::sessions::{self, BrowserSecret, SessionPolicy, SignInRefused};
use steward_oidc::{PendingSignIn, SignInError, SignInOptions};

use crate::AppState;
use crate::identity::IdentityProvider;
use crate::session::{CSRF_HEADER, SESSION_COOKIE, SIGN_IN_COOKIE, cookie, same_origin, set_cookie};

/// Where the sign-in routes live.
pub const PREFIX: &str = "/auth";

/// Sign-in through the identity provider, as configured.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub provider: IdentityProvider,
    /// Where the provider sends the browser back: the public URL's `/auth/callback`, registered
    /// at the provider.
    pub redirect_url: String,
    /// Where the provider sends the browser after signing out there (registered at the
    /// provider); none: the provider's own page.
    pub post_logout_redirect_url: Option<String>,
    /// Scopes asked for beyond `openid profile email`.
    pub scopes: Vec<String>,
}

/// The sign-in configuration and how long sessions last.
#[derive(Debug, Clone, Default)]
pub struct Portal {
    pub sign_in: Option<SignIn>,
    pub sessions: SessionPolicy,
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
        .route("/me", get(me))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(state)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#x27;")
}

/// A small HTML page (errors of the sign-in routes).
pub(crate) fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} – Steward</title></head>\n\
         <body>\n<h1>{t}</h1>\n<p>{m}</p>\n<p><a href=\"/auth/login\">Sign in again</a></p>\n</body></html>\n",
        t = escape(title),
        m = escape(message)
    );
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], body)
        .into_response()
}

fn redirect(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Where to go after signing in: a same-origin path (one `/`, then no second `/` or `\`, no
/// control characters, at most 2 KiB), else `/`. Refuses `//evil.example`, `/\evil.example`,
/// `https://evil.example` and the like (an open redirect).
pub fn safe_return_to(return_to: Option<&str>) -> String {
    let ok = |p: &str| {
        p.len() <= 2048
            && p.starts_with('/')
            && !p.starts_with("//")
            && !p.contains('\\')
            && !p.chars().any(|c| c.is_control() || c.is_whitespace())
            && !p.to_ascii_lowercase().contains("%2f%2f")
            && !p.get(1..).is_some_and(|rest| {
                rest.starts_with("%2f") || rest.starts_with("%2F") || rest.starts_with("%5c") || rest.starts_with("%5C")
            })
    };
    match return_to {
        Some(p) if ok(p) => p.to_owned(),
        _ => "/".to_owned(),
    }
}

fn limited(
    limiter: &crate::security::Limiter,
    state: &AppState,
    headers: &HeaderMap,
    ext: &axum::http::Extensions,
) -> Option<Response> {
    let ip = crate::security::client_ip_of(headers, ext, &state.security.trusted_proxies)?;
    match limiter.take(ip, Instant::now()) {
        Ok(()) => None,
        Err(wait) => {
            tracing::warn!(client = %ip, "too many sign-in requests: refused");
            Some(crate::security::too_many_page(wait))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginQuery {
    return_to: Option<String>,
    #[serde(rename = "acr_values")]
    acr_values: Option<String>,
    #[serde(rename = "max_age")]
    max_age: Option<String>,
}

fn not_configured() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Sign-in is not configured",
        "This Steward has no identity provider configured ([oidc] in its configuration).",
    )
}

async fn login(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    let (parts, _) = req.into_parts();
    if let Some(r) = limited(&state.security.login, &state, &parts.headers, &parts.extensions) {
        return r;
    }
    let Some(sign_in) = &state.portal.sign_in else { return not_configured() };
    let Ok(Query(q)) = Query::<LoginQuery>::try_from_uri(&parts.uri) else {
        return page(StatusCode::BAD_REQUEST, "Bad sign-in request", "The sign-in link's parameters do not parse.");
    };
    let acr_values = match q.acr_values.filter(|v| !v.trim().is_empty()) {
        Some(v) if v.len() <= 256 && v.bytes().all(|b| b.is_ascii_graphic() || b == b' ') => Some(v),
        Some(_) => return page(StatusCode::BAD_REQUEST, "Bad sign-in request", "acr_values is not valid."),
        None => None,
    };
    let max_age = match q.max_age.filter(|v| !v.is_empty()) {
        Some(v) => match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return page(StatusCode::BAD_REQUEST, "Bad sign-in request", "max_age must be a number of seconds.");
            }
        },
        None => None,
    };
    let return_to = safe_return_to(q.return_to.as_deref());
    let provider = match sign_in.provider.provider().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "the identity provider could not be discovered");
            return page(
                StatusCode::BAD_GATEWAY,
                "The identity provider is unavailable",
                "The identity provider could not be reached. Try again in a moment.",
            );
        }
    };
    let options = SignInOptions { acr_values, max_age, scopes: sign_in.scopes.clone(), ..SignInOptions::default() };
    let (url, pending) = match provider.begin_sign_in(&sign_in.redirect_url, &options) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "a sign-in could not be begun");
            return page(StatusCode::INTERNAL_SERVER_ERROR, "Sign-in failed", "The sign-in could not be begun.");
        }
    };
    let kept = serde_json::to_string(&pending).map(SecretString::from);
    let browser = BrowserSecret::generate();
    let (Ok(kept), Ok(browser)) = (kept, browser) else {
        return page(StatusCode::INTERNAL_SERVER_ERROR, "Sign-in failed", "The sign-in could not be begun.");
    };
    if let Err(e) = sessions::remember_sign_in(&state.services, pending.state(), &browser, &kept, &return_to).await {
        tracing::error!(error = %e, "a sign-in could not be kept");
        return page(StatusCode::SERVICE_UNAVAILABLE, "Sign-in failed", "The sign-in could not be begun; try again.");
    }
    let mut resp = redirect(&url);
    resp.headers_mut().insert(header::SET_COOKIE, set_cookie(SIGN_IN_COOKIE, browser.expose(), 600));
    resp
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn refused_page(message: &str) -> Response {
    page(StatusCode::BAD_REQUEST, "Sign-in refused", message)
}

async fn callback(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    let (parts, _) = req.into_parts();
    if let Some(r) = limited(&state.security.callback, &state, &parts.headers, &parts.extensions) {
        return r;
    }
    let Some(sign_in) = &state.portal.sign_in else { return not_configured() };
    let Ok(Query(q)) = Query::<CallbackQuery>::try_from_uri(&parts.uri) else {
        return refused_page("The sign-in answer's parameters do not parse.");
    };
    let browser = cookie(&parts.headers, SIGN_IN_COOKIE).map(|v| BrowserSecret::from_cookie(&v));
    let Some(returned_state) = q.state.filter(|s| !s.is_empty() && s.len() <= 512) else {
        return refused_page("The sign-in answer carries no state.");
    };
    // Taken whatever comes next: a sign-in is finished once, or not at all.
    let taken = match sessions::take_sign_in(&state.services, &returned_state, browser.as_ref()).await {
        Ok(t) => t,
        Err(SignInRefused::App(e)) => {
            tracing::error!(error = %e, "a sign-in could not be read");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in failed",
                "The sign-in could not be finished; try again.",
            );
        }
        Err(e) => {
            tracing::warn!(reason = %e, "a sign-in callback was refused");
            return clear_sign_in(refused_page(&e.to_string()));
        }
    };
    if let Some(error) = q.error {
        let description =
            q.error_description.map(|d| format!(" ({})", steward_domain::text::clip(&d, 200))).unwrap_or_default();
        tracing::warn!(error = %steward_domain::text::clip(&error, 80), "the identity provider refused a sign-in");
        return clear_sign_in(refused_page(&format!(
            "The identity provider did not sign you in: {}{description}.",
            steward_domain::text::clip(&error, 80)
        )));
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return clear_sign_in(refused_page("The sign-in answer carries no code."));
    };
    let Ok(pending) = serde_json::from_str::<PendingSignIn>(taken.pending.expose_secret()) else {
        return clear_sign_in(refused_page("This sign-in cannot be finished. Start again."));
    };
    let provider = match sign_in.provider.provider().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "the identity provider could not be discovered");
            return page(StatusCode::BAD_GATEWAY, "The identity provider is unavailable", "Try again in a moment.");
        }
    };
    let signed = match provider.finish_sign_in(&pending, &code, &returned_state, state.services.clock.now()).await {
        Ok(s) => s,
        Err(SignInError::ProviderUnavailable(m)) => {
            tracing::warn!(error = %m, "the identity provider could not be reached to finish a sign-in");
            return clear_sign_in(page(
                StatusCode::BAD_GATEWAY,
                "The identity provider is unavailable",
                "The sign-in could not be finished. Try again in a moment.",
            ));
        }
        Err(e) => {
            tracing::warn!(error = %e, "a sign-in was refused");
            return clear_sign_in(refused_page(&format!("The sign-in was refused: {e}.")));
        }
    };
    let default_mapping = ClaimMapping::default();
    let mapping = state.auth.claim_mapping().unwrap_or(&default_mapping);
    let id_token = signed.id_token.clone();
    let identity = crate::identity::identity_of(signed.claims);
    let user = match steward_app::identity::user_for(&state.services, mapping, &identity).await {
        Ok(Some(u)) => u,
        // Portal sessions are for directory users; someone of a connected organization requests
        // through the API until they are a guest.
        Ok(None) => {
            let m = "You are not a user of this directory.";
            tracing::warn!(reason = m, "a signed-in identity names no usable directory user");
            return clear_sign_in(page(StatusCode::FORBIDDEN, "You cannot sign in here", m));
        }
        Err(steward_app::AppError::Unauthenticated(m)) => {
            tracing::warn!(reason = %m, "a signed-in identity names no usable directory user");
            return clear_sign_in(page(StatusCode::FORBIDDEN, "You cannot sign in here", &m));
        }
        Err(e) => {
            tracing::error!(error = %e, "the directory user of a sign-in could not be resolved");
            return clear_sign_in(page(StatusCode::SERVICE_UNAVAILABLE, "Sign-in failed", "Try again in a moment."));
        }
    };
    // A new session, never the one the browser may already hold (no fixation).
    if let Some(old) = cookie(&parts.headers, SESSION_COOKIE) {
        let _ = sessions::end(&state.services, &BrowserSecret::from_cookie(&old)).await;
    }
    let facts = mapping.facts(&identity);
    let policy = state.portal.sessions;
    let (token, session) = match sessions::start(&state.services, &policy, user.id, &facts, Some(&id_token)).await {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "a session could not be started");
            return clear_sign_in(page(StatusCode::SERVICE_UNAVAILABLE, "Sign-in failed", "Try again in a moment."));
        }
    };
    let lifetime = session.expires_at.duration_since(state.services.clock.now()).as_secs();
    let mut resp = clear_sign_in(redirect(&taken.return_to));
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, token.expose(), lifetime));
    resp
}

fn clear_sign_in(mut resp: Response) -> Response {
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(SIGN_IN_COOKIE, "", 0));
    resp
}

/// The `csrf_token` field of an urlencoded form body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_encoding::percent_decode_str(&v.replace('+', " ")).decode_utf8_lossy().into_owned())
}

async fn logout(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if !same_origin(&headers, state.public_url.as_deref()) {
        tracing::warn!("a cross-origin sign-out was refused");
        return page(StatusCode::FORBIDDEN, "Sign-out refused", "Sign out from this site's own page.");
    }
    let cleared = |resp: Response| {
        let mut resp = resp;
        resp.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0));
        resp
    };
    let Some(value) = cookie(&headers, SESSION_COOKIE) else { return cleared(redirect("/")) };
    let token = BrowserSecret::from_cookie(&value);
    let presented = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| form_field(&body, "csrf_token"));
    if !presented.is_some_and(|t| token.csrf_matches(&t)) {
        tracing::warn!("a sign-out without the session's anti-CSRF token was refused");
        return page(StatusCode::FORBIDDEN, "Sign-out refused", "The sign-out form is out of date; reload the page.");
    }
    let id_token = match sessions::end(&state.services, &token).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "a session could not be ended");
            return page(StatusCode::SERVICE_UNAVAILABLE, "Sign-out failed", "Try again in a moment.");
        }
    };
    let mut target = "/".to_owned();
    if let Some(sign_in) = &state.portal.sign_in
        && let Ok(provider) = sign_in.provider.provider().await
        && let Some(url) = provider
            .logout_url(id_token.as_ref().map(|t| t.expose_secret()), sign_in.post_logout_redirect_url.as_deref())
    {
        target = url;
    }
    cleared(redirect(&target))
}

fn me_error(status: StatusCode, message: &str) -> Response {
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")],
        json!({"error": {"code": "InvalidAuthenticationToken", "message": message}}).to_string(),
    )
        .into_response();
    resp.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0));
    resp
}

async fn me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(value) = cookie(&headers, SESSION_COOKIE) else {
        return me_error(StatusCode::UNAUTHORIZED, "Not signed in.");
    };
    let token = BrowserSecret::from_cookie(&value);
    let session = match sessions::resume(&state.services, &token).await {
        Ok(s) => s,
        Err(sessions::SessionRefused::App(e)) => {
            tracing::error!(error = %e, "a session could not be read");
            return (StatusCode::SERVICE_UNAVAILABLE, [(header::CACHE_CONTROL, "no-store")]).into_response();
        }
        Err(e) => return me_error(StatusCode::UNAUTHORIZED, &e.to_string()),
    };
    let user = match state.services.store.get_user(session.user_id).await {
        Ok(Some(u)) => u,
        Ok(None) => return me_error(StatusCode::UNAUTHORIZED, "The user no longer exists."),
        Err(e) => {
            tracing::error!(error = %e, "a signed-in user could not be read");
            return (StatusCode::SERVICE_UNAVAILABLE, [(header::CACHE_CONTROL, "no-store")]).into_response();
        }
    };
    let time = |t: jiff::Timestamp| steward_domain::time::format_datetime(t);
    let body = json!({
        "id": user.id.to_string(),
        "displayName": user.display_name.as_str(),
        "userPrincipalName": user.user_principal_name,
        "amr": session.amr,
        "acr": session.acr,
        "authTime": session.auth_time.map(time),
        "deviceCompliant": session.device_compliant,
        "signedInDateTime": time(session.created_at),
        "sessionExpiresDateTime": time(session.ends_at()),
        "sessionAbsoluteExpiresDateTime": time(session.expires_at),
        "csrfToken": token.csrf_token(),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_paths_are_returned_to() {
        for ok in ["/", "/portal", "/portal/requests?tab=mine&x=%2F", "/a/b#frag"] {
            assert_eq!(safe_return_to(Some(ok)), ok, "{ok}");
        }
        for bad in [
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil.example",
            "",
            "/%2F%2Fevil.example",
            "/%5cevil.example",
            "/ok\r\nSet-Cookie: x=1",
            "/\tevil",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return_to(None), "/");
        assert_eq!(safe_return_to(Some(&format!("/{}", "a".repeat(3000)))), "/");
    }

    #[test]
    fn form_fields_are_decoded() {
        assert_eq!(form_field(b"a=1&csrf_token=ab%2Dc+d", "csrf_token").as_deref(), Some("ab-c d"));
        assert_eq!(form_field(b"a=1", "csrf_token"), None);
        assert!(escape("<a href=\"x\">'&") == "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;");
    }
}
