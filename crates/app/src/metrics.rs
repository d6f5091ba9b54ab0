//! Steward's Prometheus metrics, through the `metrics` facade: their names and help text
//! (`describe`), the histogram buckets the binary gives the recorder (`BUCKETS`), the helpers
//! the use cases call where things happen (approvals, deliveries, mail), the gauges read from
//! the database at scrape time (`observe_store`, so they are right however many processes
//! share the database), and the token a scraper must present (`ScrapeAuthenticator`).
//!
//! Which recorder collects the metrics, if any, is the binary's choice: without one every call
//! here is a no-op. Labels stay bounded: states, job kinds, outcomes and connection ids, never
//! a user, a request or a path.

use std::fmt;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use secrecy::{ExposeSecret, SecretString};
use steward_domain::enums::RequestState;
use subtle::ConstantTimeEq;

use crate::auth::hash_secret;
use crate::{AppError, Services};

/// Assignment requests by `state` (gauge, read from the database at scrape time).
pub const REQUESTS: &str = "steward_requests";
/// Jobs due now, waiting or running, by `kind` (gauge, scrape time).
pub const JOBS_PENDING: &str = "steward_jobs_pending";
/// Jobs waiting for a later time (the next sweep, reminders, retries after backoff), by `kind`.
pub const JOBS_SCHEDULED: &str = "steward_jobs_scheduled";
/// How long the oldest due job that no worker holds has waited (gauge, scrape time).
pub const JOBS_OLDEST_DUE_AGE: &str = "steward_jobs_oldest_due_age_seconds";
/// Decisions of access review instances in progress, by `state` (`decided`, `pending`).
pub const REVIEW_DECISIONS: &str = "steward_review_decisions";
/// From a request's creation to the end of its approval, by `outcome`.
pub const APPROVAL_LATENCY: &str = "steward_approval_latency_seconds";
/// How long a connection's target took to carry out a delivery, by `connection`.
pub const DELIVERY_LATENCY: &str = "steward_delivery_latency_seconds";
/// Deliveries given up as failed, by `connection`.
pub const DELIVERY_FAILURES: &str = "steward_delivery_failures_total";
/// Delivery attempts that failed transiently and will be tried again, by `connection`.
pub const DELIVERY_RETRIES: &str = "steward_delivery_retries_total";
/// Emails handed to the mail server.
pub const EMAILS_SENT: &str = "steward_emails_sent_total";
/// Emails that could not be sent, by `reason` (`transient`: tried again; `permanent`).
pub const EMAILS_FAILED: &str = "steward_emails_failed_total";
/// Chat messages a webhook accepted.
pub const CHAT_SENT: &str = "steward_chat_messages_sent_total";
/// Chat messages that could not be posted, by `reason` (`transient`: tried again; `permanent`).
pub const CHAT_FAILED: &str = "steward_chat_messages_failed_total";
/// Time to answer an HTTP request, by `method` and `status` (recorded by the web layer).
pub const HTTP_REQUEST_DURATION: &str = "steward_http_request_duration_seconds";

/// The `connection` label of deliveries into the built-in directory.
pub const DIRECTORY: &str = "directory";

/// Bucket upper bounds of each histogram, in seconds. Histograms rather than summaries, so
/// several processes' figures add up in Prometheus.
pub const BUCKETS: &[(&str, &[f64])] = &[
    // Minutes to weeks: approvers are people.
    (
        APPROVAL_LATENCY,
        &[60.0, 300.0, 900.0, 3_600.0, 14_400.0, 28_800.0, 86_400.0, 172_800.0, 345_600.0, 604_800.0, 1_209_600.0],
    ),
    // A directory write to a slow remote target.
    (DELIVERY_LATENCY, &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
    (HTTP_REQUEST_DURATION, &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
];

/// Registers every metric's help text and unit with the recorder, and the counters without
/// variable labels at zero (so they are scraped before the first event). Call once, after
/// installing the recorder.
pub fn describe() {
    describe_gauge!(REQUESTS, Unit::Count, "Assignment requests by state (all of them, read from the database).");
    describe_gauge!(
        JOBS_PENDING,
        Unit::Count,
        "Background jobs due now, waiting or running, by kind (read from the database)."
    );
    describe_gauge!(
        JOBS_SCHEDULED,
        Unit::Count,
        "Background jobs waiting for a later time (next sweep, reminders, retries), by kind."
    );
    describe_gauge!(
        JOBS_OLDEST_DUE_AGE,
        Unit::Seconds,
        "How long the oldest due job that no worker holds has waited; 0 when the workers keep up."
    );
    describe_gauge!(
        REVIEW_DECISIONS,
        Unit::Count,
        "Decisions of the access review instances in progress: decided, or pending (not reviewed yet)."
    );
    describe_histogram!(
        APPROVAL_LATENCY,
        Unit::Seconds,
        "From a request's creation to the end of its approval, by outcome (approved, denied, timedOut)."
    );
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "How long a connection's target took to carry out a grant or revoke that completed or failed \
         (directory: the built-in directory)."
    );
    describe_counter!(DELIVERY_FAILURES, Unit::Count, "Deliveries given up as failed, by connection.");
    describe_counter!(
        DELIVERY_RETRIES,
        Unit::Count,
        "Delivery attempts that failed transiently and will be retried, by connection."
    );
    describe_counter!(EMAILS_SENT, Unit::Count, "Emails handed to the mail server.");
    describe_counter!(EMAILS_FAILED, Unit::Count, "Emails that could not be sent, by reason (transient, permanent).");
    describe_counter!(CHAT_SENT, Unit::Count, "Chat messages a webhook accepted.");
    describe_counter!(
        CHAT_FAILED,
        Unit::Count,
        "Chat messages that could not be posted, by reason (transient, permanent)."
    );
    describe_histogram!(HTTP_REQUEST_DURATION, Unit::Seconds, "Time to answer an HTTP request, by method and status.");
    describe_counter!(
        "steward_http_server_errors_total",
        Unit::Count,
        "HTTP responses with a 5xx status (Graph API and SCIM)."
    );
    describe_gauge!(
        "steward_reconciliation_drift",
        Unit::Count,
        "Holders found in a connection's target whom Steward did not grant, at its last reconciliation pass."
    );
    describe_counter!(
        "steward_reconciliation_restored_total",
        Unit::Count,
        "Grants that reconciliation put back in a connection's target."
    );
    describe_counter!(
        "steward_reconciliation_removed_total",
        Unit::Count,
        "Holders nobody granted that reconciliation removed from an authoritative connection's target."
    );
    counter!(EMAILS_SENT).increment(0);
    counter!(EMAILS_FAILED, "reason" => "transient").increment(0);
    counter!(EMAILS_FAILED, "reason" => "permanent").increment(0);
}

/// One email was handed to the mail server. For the mail sender.
pub fn mail_sent() {
    counter!(EMAILS_SENT).increment(1);
}

/// One email could not be sent: `transient` when it will be tried again. For the mail sender.
pub fn mail_failed(transient: bool) {
    counter!(EMAILS_FAILED, "reason" => if transient { "transient" } else { "permanent" }).increment(1);
}

/// One chat message was accepted by its webhook. For the notice sender.
pub fn chat_sent() {
    counter!(CHAT_SENT).increment(1);
}

/// One chat message could not be posted: `transient` when it will be tried again.
pub fn chat_failed(transient: bool) {
    counter!(CHAT_FAILED, "reason" => if transient { "transient" } else { "permanent" }).increment(1);
}

/// How a request's approval ended, for `steward_approval_latency_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApprovalEnd {
    Approved,
    Denied,
    TimedOut,
}

impl ApprovalEnd {
    const fn label(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::TimedOut => "timedOut",
        }
    }
}

/// A request created at `created` ended its approval at `now` (written to the store).
pub(crate) fn approval_ended(end: ApprovalEnd, created: Timestamp, now: Timestamp) {
    let secs = now.duration_since(created).as_secs_f64().max(0.0);
    histogram!(APPROVAL_LATENCY, "outcome" => end.label()).record(secs);
}

/// A delivery through `connection` completed (`failed` false) or was given up as failed;
/// `call` is how long the target took, `None` when it was decided without calling it.
pub(crate) fn delivery_ended(connection: &str, failed: bool, call: Option<Duration>) {
    if let Some(d) = call {
        histogram!(DELIVERY_LATENCY, "connection" => connection.to_owned()).record(d.as_secs_f64());
    }
    if failed {
        counter!(DELIVERY_FAILURES, "connection" => connection.to_owned()).increment(1);
    }
}

/// A delivery through `connection` failed transiently and goes back to the queue.
pub(crate) fn delivery_retried(connection: &str) {
    counter!(DELIVERY_RETRIES, "connection" => connection.to_owned()).increment(1);
}

/// Jobs of one kind, as `Store::metrics_snapshot` counts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCounts {
    /// `JobKind::name`.
    pub kind: String,
    /// Due at the snapshot's `now` (waiting, or held by a worker).
    pub due: u64,
    /// To run later.
    pub scheduled: u64,
}

/// What the gauges read from the database at scrape time show (`Store::metrics_snapshot`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Assignment requests by state as stored (Graph's name); states without any left out.
    pub requests: Vec<(String, u64)>,
    /// Jobs by kind; kinds without any left out.
    pub jobs: Vec<JobCounts>,
    /// How long the oldest job that is due and held by no worker has waited since it became
    /// due; zero when there is none.
    pub oldest_due_job_age: SignedDuration,
    /// Decisions of the access review instances in progress.
    pub review_decisions: u64,
    /// Of those, the ones a reviewer (or the system) decided.
    pub review_decisions_decided: u64,
}

/// Reads the database's figures and sets the gauges from them. Called just before rendering.
pub async fn observe_store(s: &Services) -> Result<(), AppError> {
    let snapshot = s.store.metrics_snapshot(s.clock.now()).await?;
    record_snapshot(&snapshot);
    Ok(())
}

/// Sets the gauges from `snap`: every known state and job kind, at zero when absent, so a
/// series that fell to nothing does not keep its last value.
pub fn record_snapshot(snap: &MetricsSnapshot) {
    let requests = |state: &str| snap.requests.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n);
    for state in RequestState::ALL.iter().filter(|s| **s != RequestState::UnknownFutureValue) {
        gauge!(REQUESTS, "state" => state.as_str()).set(requests(state.as_str()) as f64);
    }
    for (state, n) in snap.requests.iter().filter(|(s, _)| !RequestState::ALL.iter().any(|k| k.as_str() == s)) {
        gauge!(REQUESTS, "state" => state.clone()).set(*n as f64);
    }
    let jobs = |kind: &str| snap.jobs.iter().find(|j| j.kind == kind);
    for kind in crate::jobs::JobKind::NAMES {
        let j = jobs(kind);
        gauge!(JOBS_PENDING, "kind" => *kind).set(j.map_or(0, |j| j.due) as f64);
        gauge!(JOBS_SCHEDULED, "kind" => *kind).set(j.map_or(0, |j| j.scheduled) as f64);
    }
    for j in snap.jobs.iter().filter(|j| !crate::jobs::JobKind::NAMES.contains(&j.kind.as_str())) {
        gauge!(JOBS_PENDING, "kind" => j.kind.clone()).set(j.due as f64);
        gauge!(JOBS_SCHEDULED, "kind" => j.kind.clone()).set(j.scheduled as f64);
    }
    gauge!(JOBS_OLDEST_DUE_AGE).set(snap.oldest_due_job_age.as_secs_f64().max(0.0));
    let decided = snap.review_decisions_decided.min(snap.review_decisions);
    gauge!(REVIEW_DECISIONS, "state" => "decided").set(decided as f64);
    gauge!(REVIEW_DECISIONS, "state" => "pending").set((snap.review_decisions - decided) as f64);
}

/// Why a scrape was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrapeRefused {
    /// No metrics token is configured: the endpoint is off.
    Disabled,
    /// The request carried no bearer token.
    Missing,
    /// The bearer token is not the metrics token.
    Wrong,
}

/// Checks the bearer token of a scrape against the configured metrics token (`metrics_token`,
/// `STEWARD_METRICS_TOKEN`), kept only as its SHA-256 and compared in constant time, as the
/// SCIM token is. Metrics reveal counts, so they are off until a token is configured.
#[derive(Clone, Default)]
pub struct ScrapeAuthenticator {
    hash: Option<String>,
}

impl fmt::Debug for ScrapeAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScrapeAuthenticator").field("enabled", &self.hash.is_some()).finish()
    }
}

impl ScrapeAuthenticator {
    /// With the configured token; `None` or an empty one leaves the metrics off.
    pub fn new(token: Option<&SecretString>) -> Self {
        Self { hash: token.map(|t| t.expose_secret()).filter(|t| !t.is_empty()).map(hash_secret) }
    }

    pub fn is_enabled(&self) -> bool {
        self.hash.is_some()
    }

    /// Checks the bearer token of a scrape (`None`: the request had none).
    pub fn check(&self, bearer: Option<&str>) -> Result<(), ScrapeRefused> {
        let Some(hash) = &self.hash else {
            return Err(ScrapeRefused::Disabled);
        };
        let Some(bearer) = bearer.filter(|b| !b.is_empty()) else {
            return Err(ScrapeRefused::Missing);
        };
        if bool::from(hash.as_bytes().ct_eq(hash_secret(bearer).as_bytes())) {
            Ok(())
        } else {
            Err(ScrapeRefused::Wrong)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrape_token_is_checked_and_never_printed() {
        let secret = SecretString::from("metrics-secret-token-0123".to_owned());
        let a = ScrapeAuthenticator::new(Some(&secret));
        assert!(a.is_enabled());
        assert_eq!(a.check(Some("metrics-secret-token-0123")), Ok(()));
        assert_eq!(a.check(Some("metrics-secret-token-012")), Err(ScrapeRefused::Wrong));
        assert_eq!(a.check(None), Err(ScrapeRefused::Missing));
        assert_eq!(a.check(Some("")), Err(ScrapeRefused::Missing));
        let shown = format!("{a:?}");
        assert!(!shown.contains("metrics-secret") && !shown.contains(&hash_secret("metrics-secret-token-0123")));
        let empty = SecretString::from(String::new());
        for off in
            [ScrapeAuthenticator::default(), ScrapeAuthenticator::new(None), ScrapeAuthenticator::new(Some(&empty))]
        {
            assert!(!off.is_enabled());
            assert_eq!(off.check(Some("anything")), Err(ScrapeRefused::Disabled));
        }
    }

    #[test]
    fn every_histogram_has_increasing_buckets() {
        for (name, b) in BUCKETS {
            assert!(name.ends_with("_seconds") && !b.is_empty(), "{name}");
            assert!(b.windows(2).all(|w| w.first() < w.last()), "{name}: {b:?}");
        }
    }
}
