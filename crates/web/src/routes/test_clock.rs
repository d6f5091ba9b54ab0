//! Test-only operations, mounted only when `steward serve --test-clock` runs the server on a
//! manual clock: read, set and move that clock (`/ops/clock`), and run every due job in-process
//! (`/ops/jobs/drain`), so end-to-end tests move time instead of sleeping and know when the
//! work it made due is done. Without the test clock these paths are not routed at all (404 like
//! any unknown path), and they are never listed in `/openapi.json`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use jiff::Timestamp;
use serde_json::json;
use steward_app::Clock;
use steward_app::lifecycle::worker::Worker;
use steward_app::ports::ManualClock;
use steward_domain::duration::GraphDuration;
use steward_domain::time::{format_datetime, parse_datetime};

use crate::AppState;
use crate::auth::Caller;
use crate::body::Body;
use crate::error::ApiError;
use crate::odata::json_response;
use crate::routes::no_body;

/// The most job rounds one drain runs; a queue that is still busy after this many is reported
/// by what ran, and the caller may drain again.
pub const DRAIN_ROUNDS: usize = 1_000;

/// What the test routes act on: the manual clock the services read, and the worker of this
/// process (sharing its round lock with the background loop, so a drain never races it).
#[derive(Clone)]
pub struct TestClock {
    clock: Arc<ManualClock>,
    worker: Worker,
}

impl TestClock {
    /// `clock` must be the clock of the services the app is built with, and `worker` must run
    /// those services.
    pub fn new(clock: Arc<ManualClock>, worker: Worker) -> Self {
        Self { clock, worker }
    }
}

type R = Result<Response, ApiError>;

/// The test routes; merged into the app only when a `TestClock` is given.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/ops/clock", get(read_clock).post(move_clock)).route("/ops/jobs/drain", post(drain))
}

fn controls(st: &AppState) -> Result<&TestClock, ApiError> {
    // Unreachable while the routes are mounted only with a test clock; kept as a 404 anyway.
    st.test_clock.as_ref().ok_or_else(|| ApiError::not_found("The requested resource does not exist."))
}

fn now_response(now: Timestamp) -> Response {
    json_response(StatusCode::OK, json!({ "now": format_datetime(now) }))
}

async fn read_clock(State(st): State<AppState>, Caller(p): Caller) -> R {
    p.admin()?;
    Ok(now_response(controls(&st)?.clock.now()))
}

/// `{"advance": "<ISO 8601 duration or Python timedelta>"}` or `{"set": "<RFC 3339>"}`.
async fn move_clock(State(st): State<AppState>, Caller(p): Caller, headers: HeaderMap, bytes: Bytes) -> R {
    p.admin()?;
    let t = controls(&st)?;
    let mut b = Body::parse(&headers, &bytes, "clock")?;
    let advance = b.opt_str("advance")?;
    let set = b.opt_str("set")?;
    b.finish()?;
    match (advance, set) {
        (Some(d), None) => t.clock.advance(GraphDuration::parse(&d)?.as_signed()),
        (None, Some(at)) => t.clock.set(to_micros(parse_datetime(&at)?)),
        _ => return Err(ApiError::invalid_model("Send exactly one of 'advance' (a duration) or 'set' (a date-time).")),
    }
    let now = t.clock.now();
    tracing::info!(now = %format_datetime(now), "test clock moved");
    Ok(now_response(now))
}

/// Runs due jobs in this process until none is due, and says how many ran.
async fn drain(State(st): State<AppState>, Caller(p): Caller, headers: HeaderMap, bytes: Bytes) -> R {
    p.admin()?;
    no_body(&headers, &bytes)?;
    let t = controls(&st)?;
    // A process started with the background worker off has never queued the sweep.
    t.worker.ensure_sweep().await?;
    let ran = t.worker.drain(DRAIN_ROUNDS).await?;
    Ok(json_response(StatusCode::OK, json!({ "ran": ran })))
}

/// What the stores keep: microseconds.
fn to_micros(t: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t)
}
