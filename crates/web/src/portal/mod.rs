//! My Access, the portal for requestors and approvers: server-rendered pages (askama templates
//! under `crates/web/templates`, HTML escaped) beside the Graph API and outside its route
//! registry. Every page reads the signed-in user from the session cookie (`session::principal`)
//! and goes through the same use cases as the API, so the same authorization applies; every form
//! is a POST checked as the session layer checks forms (Origin/Referer and the session's
//! `csrf_token`). Nothing here needs JavaScript; `/static/steward.js` only shows dates in the
//! viewer's time zone.

mod access;
mod approvals;
mod packages;
pub(crate) mod requests;
mod reviews;

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use steward_app::AppError;
use steward_app::auth::{Principal, UserCap};
use steward_app::sessions::BrowserSecret;
use steward_domain::ids::UserId;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::AppState;
use crate::session::{SESSION_COOKIE, cookie};

/// The largest form the portal reads.
const FORM_LIMIT: usize = 64 * 1024;

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/access-packages") }))
        .route("/static/steward.css", get(stylesheet))
        .route("/static/steward.js", get(script))
        .route("/access-packages", get(packages::list))
        .route("/access-packages/{id}", get(packages::show))
        .route("/access-packages/{id}/request", post(packages::request))
        .route("/requests", get(requests::list))
        .route("/requests/{id}", get(requests::show))
        .route("/requests/{id}/cancel", post(requests::cancel))
        .route("/access", get(access::list))
        .route("/access/{id}/extend", post(access::extend))
        .route("/access/{id}/remove", post(access::remove))
        .route("/approvals", get(approvals::list))
        .route("/approvals/{id}", get(approvals::show))
        .route("/approvals/{id}/decide", post(approvals::decide))
        .route("/approvals/{id}/link", get(approvals::link).post(approvals::link_decide))
        .route("/reviews", get(reviews::list))
        .route("/reviews/{definition}/{instance}", get(reviews::show))
        .route("/reviews/{definition}/{instance}/accept", post(reviews::accept))
        .route("/reviews/{definition}/{instance}/decisions/{decision}", post(reviews::decide))
        .merge(crate::console::routes())
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, crate::REQUEST_TIMEOUT))
        .layer(CatchPanicLayer::new())
        .with_state(state)
}

const CSS: &str = include_str!("../../static/steward.css");
const JS: &str = include_str!("../../static/steward.js");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

/// What every page's frame shows: who is signed in, the sign-out form's token, which tab is open.
pub(crate) struct Layout {
    pub name: String,
    pub csrf: String,
    pub nav: &'static str,
    /// Whether the viewer holds a delegated-administration role (the Admin tab is shown).
    pub admin: bool,
}

/// The signed-in user of a request.
pub(crate) struct Viewer {
    pub principal: Principal,
    pub me: UserCap,
    pub name: String,
    pub csrf: String,
}

/// Whether `p` holds any delegated-administration role: the console has something to show them.
pub(crate) fn administers(p: &Principal) -> bool {
    use steward_domain::role::Task;
    let g = p.grants();
    g.allows_somewhere(Task::ReadCatalog) || g.allows_everywhere(Task::CreateCatalog)
}

impl Viewer {
    pub fn id(&self) -> UserId {
        self.me.id()
    }

    pub fn layout(&self, nav: &'static str) -> Layout {
        Layout { name: self.name.clone(), csrf: self.csrf.clone(), nav, admin: administers(&self.principal) }
    }
}

/// A response that ends a handler early (a redirect to sign in, an error page).
pub(crate) type Early = Box<Response>;

/// Where to sign in to come back to `back`.
fn to_sign_in(back: &str) -> Response {
    let target = format!("/auth/login?returnTo={}", utf8_percent_encode(back, NON_ALPHANUMERIC));
    see_other(&target)
}

pub(crate) fn see_other(location: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The path and query of the request, to come back to after signing in.
fn here(parts: &Parts) -> String {
    parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned())
}

/// The signed-in user, or the response to give instead: a redirect to sign in (no session, or one
/// that ended; `back` is where to come back to), or a refusal (CSRF rules not met, not a user).
pub(crate) async fn viewer(parts: &Parts, state: &AppState, form: Form<'_>, back: &str) -> Result<Viewer, Early> {
    let form_token = match form {
        Form::None => None,
        Form::Token(t) => t,
    };
    let signed_out = || match form {
        Form::None => Box::new(to_sign_in(back)),
        Form::Token(_) => Box::new(session_ended(back)),
    };
    let principal = match crate::session::form_principal(parts, state, form_token).await {
        Ok(Some(p)) => p,
        Ok(None) => return Err(signed_out()),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => return Err(signed_out()),
        Err(e) if e.status == StatusCode::FORBIDDEN => {
            return Err(Box::new(message_page(
                StatusCode::FORBIDDEN,
                "Refused",
                "This form is out of date or did not come from this site, so nothing was changed. Reload the page \
                 and try again.",
                None,
            )));
        }
        Err(e) => return Err(Box::new(message_page(e.status, "Something went wrong", &e.message, None))),
    };
    let me = principal.user().map_err(|e| Box::new(app_error_page(e, None)))?;
    let name = match state.services.store.get_user(me.id()).await {
        Ok(Some(u)) => u.display_name.as_str().to_owned(),
        Ok(None) => return Err(Box::new(to_sign_in(back))),
        Err(e) => return Err(Box::new(app_error_page(e.into(), None))),
    };
    let csrf =
        cookie(&parts.headers, SESSION_COOKIE).map(|v| BrowserSecret::from_cookie(&v).csrf_token()).unwrap_or_default();
    Ok(Viewer { principal, me, name, csrf })
}

/// What a request to the portal carries besides its session.
#[derive(Clone, Copy)]
pub(crate) enum Form<'a> {
    /// A page read (GET): without a session, sign in and come back.
    None,
    /// A form post with its `csrf_token` field (if any): without a session, nothing is done and
    /// the page says so, since what was typed cannot survive the trip to the provider.
    Token(Option<&'a str>),
}

#[derive(Template)]
#[template(path = "session_ended.html")]
struct SessionEndedPage {
    layout: Layout,
    sign_in: String,
}

/// The answer to a form posted without a live session: 401, nothing changed, a link to sign in
/// and come back to `back`.
fn session_ended(back: &str) -> Response {
    let sign_in = format!("/auth/login?returnTo={}", utf8_percent_encode(back, NON_ALPHANUMERIC));
    let layout = Layout { name: String::new(), csrf: String::new(), nav: "", admin: false };
    render(StatusCode::UNAUTHORIZED, &SessionEndedPage { layout, sign_in })
}

/// The viewer of a GET page (come back to the same page after signing in).
pub(crate) async fn page_viewer(parts: &Parts, state: &AppState) -> Result<Viewer, Early> {
    viewer(parts, state, Form::None, &here(parts)).await
}

/// The fields of an urlencoded form body, in order.
pub(crate) fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    std::str::from_utf8(body)
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// The first value of field `name`.
pub(crate) fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A POST's parts, fields and viewer (CSRF checked with the form's `csrf_token`).
pub(crate) async fn form_viewer(
    state: &AppState,
    req: Request,
    back: &str,
) -> Result<(Parts, Vec<(String, String)>, Viewer), Early> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| {
        Box::new(message_page(StatusCode::PAYLOAD_TOO_LARGE, "Too much text", "The form is too large.", None))
    })?;
    let fields = form_fields(&bytes);
    let v = viewer(&parts, state, Form::Token(field(&fields, "csrf_token")), back).await?;
    Ok((parts, fields, v))
}

/// A page rendered from a template, or a 500 page when it cannot be.
pub(crate) fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => {
            let mut resp = (status, Html(body)).into_response();
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "a portal page could not be rendered");
            (StatusCode::INTERNAL_SERVER_ERROR, "The page could not be rendered.").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    /// Without a name: a page for someone not (or no longer) signed in.
    layout: Layout,
    title: &'a str,
    message: &'a str,
}

/// A page that says one thing (errors, refusals).
pub(crate) fn message_page(status: StatusCode, title: &str, message: &str, layout: Option<Layout>) -> Response {
    let layout = layout.unwrap_or(Layout { name: String::new(), csrf: String::new(), nav: "", admin: false });
    render(status, &MessagePage { layout, title, message })
}

/// The page for an error of a use case, with the text the app gave.
pub(crate) fn app_error_page(e: AppError, layout: Option<Layout>) -> Response {
    let err = crate::error::ApiError::from(e);
    let title = match err.status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::CONFLICT => "Not possible now",
        s if s.is_client_error() => "Not possible",
        _ => "Something went wrong",
    };
    let message = if err.status.is_server_error() { "Try again in a moment." } else { err.message.as_str() };
    message_page(err.status, title, message, layout)
}

/// The status a form answers when the app refused what it asked.
pub(crate) fn form_status(e: &AppError) -> StatusCode {
    match e {
        AppError::Invalid(_) | AppError::Query { .. } | AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::NotFound { .. } => StatusCode::NOT_FOUND,
        AppError::Conflict(_) | AppError::PreconditionFailed(_) => StatusCode::CONFLICT,
        AppError::Forbidden(_) | AppError::ConditionsNotMet { .. } => StatusCode::FORBIDDEN,
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A moment as the pages show it: machine-readable for `<time datetime>`, and readable (UTC;
/// the script turns it into the viewer's time zone).
pub(crate) struct When {
    pub iso: String,
    pub text: String,
}

impl When {
    pub fn of(t: Timestamp) -> Self {
        Self { iso: steward_domain::time::format_datetime(t), text: t.strftime("%Y-%m-%d %H:%M UTC").to_string() }
    }

    pub fn day(t: Timestamp) -> Self {
        Self { iso: steward_domain::time::format_datetime(t), text: t.strftime("%Y-%m-%d").to_string() }
    }
}

/// The display name of a user, or "someone" for one that is gone.
pub(crate) async fn user_name(state: &AppState, id: UserId) -> String {
    match state.services.store.get_user(id).await {
        Ok(Some(u)) => u.display_name.as_str().to_owned(),
        _ => "(a removed user)".to_owned(),
    }
}

/// The display name of a package, or its id.
pub(crate) async fn package_name(state: &AppState, id: steward_domain::ids::AccessPackageId) -> String {
    match state.services.store.get_package(id).await {
        Ok(Some(p)) => p.display_name.as_str().to_owned(),
        _ => id.to_string(),
    }
}

/// What a package grants, in words: "Member of Sales team", one per resource role.
pub(crate) async fn grants_of(
    state: &AppState,
    id: steward_domain::ids::AccessPackageId,
) -> Result<Vec<String>, AppError> {
    Ok(state
        .services
        .store
        .package_grants(id)
        .await?
        .into_iter()
        .map(|g| format!("{} of {}", g.role_name, g.resource_name))
        .collect())
}

/// A request's answers as "question: answer", with the questions' text from its policy.
pub(crate) async fn answers_of(state: &AppState, r: &steward_domain::request::AssignmentRequest) -> Vec<String> {
    let policy = match r.policy_id {
        Some(p) => state.services.store.get_policy(p).await.ok().flatten(),
        None => None,
    };
    let text = |id: &str| {
        policy
            .iter()
            .flat_map(|p| p.settings.questions.iter())
            .map(|q| match q {
                steward_domain::policy::Question::TextInput { base, .. }
                | steward_domain::policy::Question::MultipleChoice { base, .. } => base,
            })
            .find(|b| b.id.as_deref() == Some(id))
            .and_then(|b| b.text.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    r.detail
        .answers
        .iter()
        .map(|a| format!("{} {}", text(&a.question_id), a.display_value.as_deref().unwrap_or(&a.value)))
        .collect()
}

/// Parses an id in a path; a 404 page when it is not one.
pub(crate) fn path_id<T: std::str::FromStr>(s: &str) -> Result<T, Early> {
    s.parse().map_err(|_| Box::new(message_page(StatusCode::NOT_FOUND, "Not found", "There is no such page.", None)))
}

/// The date of a date input (`YYYY-MM-DD`) as the moment it starts (UTC), or its last second
/// when `end_of_day`; none when empty; the message to show next to the field when it is not a
/// date.
pub(crate) fn date_input(text: &str, end_of_day: bool) -> Result<Option<Timestamp>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let d: jiff::civil::Date = text.parse().map_err(|_| format!("'{text}' is not a date; use YYYY-MM-DD."))?;
    let t = if end_of_day {
        d.to_datetime(jiff::civil::time(23, 59, 59, 0))
    } else {
        d.to_datetime(jiff::civil::Time::midnight())
    };
    t.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| Some(z.timestamp()))
        .map_err(|_| format!("'{text}' is not a usable date."))
}
