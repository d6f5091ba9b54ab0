//! Sending the outbox: each round leases up to `CLAIM` due notices, sends each outside any
//! transaction (mail through the `Mailer`, chat messages through the `ChatSender`), and
//! records the outcome: sent; deferred with backoff (30 s doubling to an hour) after a
//! transient failure, given up after `GIVE_UP_AFTER`; failed at once on a permanent one. After
//! a transient failure of the mail relay the rest of the round's mail goes back untried, due
//! when the failed one is tried again: the relay is likely down, and each would wait for its
//! timeout while the worker's round waits for them. Chat webhooks are each their own service,
//! so one that fails holds back only its own messages.

use jiff::{SignedDuration, Timestamp};

use super::{Channel, Notice};
use crate::mail::{Address, MailError, OutgoingMail};
use crate::{AppError, Services, chat, metrics};

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

/// Sends one notice through its channel.
async fn deliver(s: &Services, n: &Notice) -> Result<(), MailError> {
    match n.channel {
        Channel::Mail => {
            let mailer = s.mailer.as_ref().ok_or_else(|| MailError::Transient("no SMTP relay is configured".into()))?;
            mailer.send(&outgoing(n)?).await
        }
        Channel::Chat => {
            let sender =
                s.chat.as_ref().ok_or_else(|| MailError::Transient("this server sends no chat messages".into()))?;
            chat::send(s, &**sender, n).await
        }
    }
}

/// Sends what is due at `now` as `owner`; returns how many notices were tried.
pub(crate) async fn pass(s: &Services, owner: &str, now: Timestamp) -> Result<usize, AppError> {
    let lease_until = now.saturating_add(LEASE).unwrap_or(now);
    let claimed = s.store.claim_notices(owner, now, lease_until, CLAIM).await?;
    let mut tried = 0;
    // When the mail relay, or a chat webhook (by id), failed for now: the retry time.
    let mut down: std::collections::HashMap<String, Timestamp> = std::collections::HashMap::new();
    for n in &claimed {
        let service = match n.channel {
            Channel::Mail => String::new(),
            Channel::Chat => n.recipient.clone(),
        };
        if let Some(again) = down.get(&service) {
            s.store.notice_postpone(&n.id, owner, (*again).max(n.next_at)).await?;
            continue;
        }
        tried += 1;
        let result = deliver(s, n).await;
        // The time of the outcome: a send may take a while.
        let at = s.clock.now();
        let (sent, failed): (fn(), fn(bool)) = match n.channel {
            Channel::Mail => (metrics::mail_sent, metrics::mail_failed),
            Channel::Chat => (metrics::chat_sent, metrics::chat_failed),
        };
        match result {
            Ok(()) => {
                sent();
                if !s.store.notice_sent(&n.id, owner, at).await? {
                    tracing::warn!(notice = %n.id, "a notice was sent after its lease ran out; it may be sent twice");
                }
            }
            Err(MailError::Transient(why)) => {
                let attempts = n.attempts.saturating_add(1);
                let next = at.saturating_add(backoff(attempts)).unwrap_or(at);
                down.insert(service, next);
                if next.duration_since(n.created_at) > GIVE_UP_AFTER {
                    failed(false);
                    tracing::warn!(notice = %n.id, kind = %n.kind, attempts, error = %why, "giving up on a notice");
                    let why = format!("given up after {attempts} attempts: {why}");
                    s.store.notice_failed(&n.id, owner, &why).await?;
                } else {
                    failed(true);
                    tracing::info!(notice = %n.id, kind = %n.kind, attempts, error = %why, retry_at = %next, "notice deferred");
                    s.store.notice_retry(&n.id, owner, next, &why).await?;
                }
            }
            Err(MailError::Permanent(why)) => {
                failed(false);
                tracing::warn!(notice = %n.id, kind = %n.kind, error = %why, "notice refused for good");
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
