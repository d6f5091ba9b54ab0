//! Sending the outbox: each round leases up to `CLAIM` due notices, sends each through the
//! `Mailer` outside any transaction, and records the outcome: sent; deferred with backoff
//! (30 s doubling to an hour) after a transient failure, given up after `GIVE_UP_AFTER`;
//! failed at once on a permanent one. After a transient failure the rest of the round's
//! notices go back untried, due when the failed one is tried again: the relay is likely down,
//! and each would wait for its timeout while the worker's round waits for them.

use jiff::{SignedDuration, Timestamp};

use super::Notice;
use crate::mail::{Address, MailError, Mailer, OutgoingMail};
use crate::{AppError, Services, metrics};

/// Notices leased per round.
pub const CLAIM: u32 = 50;
/// How long a leased notice stays with its sender: longer than a round of sends can take.
pub const LEASE: SignedDuration = SignedDuration::from_mins(15);
/// The wait after the first failed attempt; it doubles with each further one…
pub const FIRST_RETRY: SignedDuration = SignedDuration::from_secs(30);
/// …up to this.
pub const MAX_RETRY: SignedDuration = SignedDuration::from_hours(1);
/// A notice that could not be sent this long after it was queued is given up.
pub const GIVE_UP_AFTER: SignedDuration = SignedDuration::from_hours(48);

/// The wait before attempt `attempts + 1`, after `attempts` failed ones (at least one).
pub fn backoff(attempts: u32) -> SignedDuration {
    let doublings = attempts.saturating_sub(1).min(16);
    let secs = FIRST_RETRY.as_secs().saturating_mul(1_i64 << doublings);
    SignedDuration::from_secs(secs).min(MAX_RETRY)
}

/// The mail of a notice.
fn outgoing(n: &Notice) -> Result<OutgoingMail, MailError> {
    let to =
        Address::new(n.recipient_name.clone(), n.recipient.clone()).map_err(|e| MailError::Permanent(e.to_string()))?;
    Ok(OutgoingMail {
        message_id: n.message_id(),
        to: vec![to],
        subject: n.subject.clone(),
        text: n.text_body.clone(),
        html: n.html_body.clone(),
    })
}

/// Sends what is due at `now` as `owner`; returns how many notices were tried.
pub(crate) async fn pass(s: &Services, mailer: &dyn Mailer, owner: &str, now: Timestamp) -> Result<usize, AppError> {
    let lease_until = now.saturating_add(LEASE).unwrap_or(now);
    let claimed = s.store.claim_notices(owner, now, lease_until, CLAIM).await?;
    let mut tried = 0;
    let mut relay_down: Option<Timestamp> = None;
    for n in &claimed {
        if let Some(again) = relay_down {
            s.store.notice_postpone(&n.id, owner, again.max(n.next_at)).await?;
            continue;
        }
        tried += 1;
        let result = match outgoing(n) {
            Ok(mail) => mailer.send(&mail).await,
            Err(e) => Err(e),
        };
        // The time of the outcome: a send may take a while.
        let at = s.clock.now();
        match result {
            Ok(()) => {
                metrics::mail_sent();
                if !s.store.notice_sent(&n.id, owner, at).await? {
                    tracing::warn!(notice = %n.id, "a notice was sent after its lease ran out; it may be sent twice");
                }
            }
            Err(MailError::Transient(why)) => {
                let attempts = n.attempts.saturating_add(1);
                let next = at.saturating_add(backoff(attempts)).unwrap_or(at);
                relay_down = Some(next);
                if next.duration_since(n.created_at) > GIVE_UP_AFTER {
                    metrics::mail_failed(false);
                    tracing::warn!(notice = %n.id, kind = %n.kind, attempts, error = %why, "giving up on a notice");
                    let why = format!("given up after {attempts} attempts: {why}");
                    s.store.notice_failed(&n.id, owner, &why).await?;
                } else {
                    metrics::mail_failed(true);
                    tracing::info!(notice = %n.id, kind = %n.kind, attempts, error = %why, retry_at = %next, "mail deferred");
                    s.store.notice_retry(&n.id, owner, next, &why).await?;
                }
            }
            Err(MailError::Permanent(why)) => {
                metrics::mail_failed(false);
                tracing::warn!(notice = %n.id, kind = %n.kind, error = %why, "mail refused for good");
                s.store.notice_failed(&n.id, owner, &why).await?;
            }
        }
    }
    Ok(tried)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_thirty_seconds_to_an_hour() {
        assert_eq!(backoff(1), SignedDuration::from_secs(30));
        assert_eq!(backoff(2), SignedDuration::from_secs(60));
        assert_eq!(backoff(3), SignedDuration::from_secs(120));
        assert_eq!(backoff(7), SignedDuration::from_secs(1920));
        assert_eq!(backoff(8), MAX_RETRY);
        assert_eq!(backoff(1_000), MAX_RETRY);
        assert_eq!(backoff(0), SignedDuration::from_secs(30));
    }
}
