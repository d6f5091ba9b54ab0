//! The notification outbox: chained audit events read after a `seq`, notices queued at most
//! once with the cursor's compare-and-set move (a lost race writes nothing), timer watermarks
//! likewise, and leases on due notices as on jobs: claimed by one sender at a time, sent,
//! retried later, postponed untried or given up; the timers' reads of ending assignments and
//! due requests.

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};
use steward_app::Store;
use steward_app::notify::{Channel, Notice, NoticeState, NotificationKind, key};
use steward_app::ports::{Batch, Put};
use steward_domain::assignment::Assignment;
use steward_domain::audit::{Activity, AuditEvent, Initiator};
use steward_domain::enums::{AssignmentState, RequestState, RequestType};
use steward_domain::ids::{AccessPackageId, AssignmentId, CatalogId, RequestId, UserId};
use steward_domain::request::{AssignmentRequest, RequestDetail, RequestStatus};
use steward_domain::schedule::Window;
use steward_store::SqlStore;

use crate::fixtures::*;

fn notice(source: &str, next_at: Timestamp) -> Notice {
    let recipient = "ada@example.test";
    Notice {
        id: key(NotificationKind::AccessDelivered, source, recipient),
        kind: NotificationKind::AccessDelivered,
        channel: Channel::Mail,
        recipient: recipient.into(),
        recipient_name: Some("Ada Lovelace".into()),
        user_id: Some(UserId::new()),
        subject: format!("You now have access ({source})"),
        text_body: "Hello Ada,\n\nYour access is ready.".into(),
        html_body: "<p>Hello Ada, &#38; welcome</p>".into(),
        source: source.into(),
        created_at: at(0),
        next_at,
        attempts: 0,
        state: NoticeState::Pending,
        last_error: None,
        sent_at: None,
    }
}

fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

fn later(n: i64) -> Timestamp {
    at(0).checked_add(secs(n)).unwrap()
}

pub async fn notices_are_queued_once_as_the_cursor_moves(s: SqlStore) {
    assert_eq!(s.notify_cursor().await.unwrap(), 0, "a new database starts at the chain's head");
    let events: Vec<AuditEvent> = (0..3)
        .map(|i| AuditEvent::new(at(i), Activity::Approve, Initiator::System, "AccessPackageAssignmentRequest", i, i))
        .collect();
    s.apply(&Batch { events: events.clone(), ..Batch::default() }).await.unwrap();
    assert!(s.chained_events(0, 10).await.unwrap().is_empty(), "only chained events are read");
    assert_eq!(chain_everything(&s).await, 3);
    let read = s.chained_events(0, 10).await.unwrap();
    assert_eq!(read.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(read.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(), events, "read back as written");
    assert_eq!(s.chained_events(2, 10).await.unwrap().len(), 1);
    assert_eq!(s.chained_events(0, 2).await.unwrap().len(), 2);

    let (a, b, c) = (notice("a", at(0)), notice("b", at(0)), notice("c", at(0)));
    assert!(s.queue_notices(&[a.clone(), b.clone(), a.clone()], 0, 2).await.unwrap());
    assert_eq!(s.notify_cursor().await.unwrap(), 2);
    assert_eq!(s.get_notice(&a.id).await.unwrap(), Some(a.clone()), "read back exactly");
    // Another process read from 0 too: it lost, and wrote nothing.
    assert!(!s.queue_notices(std::slice::from_ref(&c), 0, 3).await.unwrap());
    assert_eq!(s.get_notice(&c.id).await.unwrap(), None);
    assert_eq!(s.notify_cursor().await.unwrap(), 2);
    // The same notice again is left as it was; new ones are added.
    let mut again = a.clone();
    again.subject = "changed".into();
    assert!(s.queue_notices(&[again, c.clone()], 2, 3).await.unwrap());
    assert_eq!(s.get_notice(&a.id).await.unwrap().unwrap().subject, a.subject);
    assert!(s.get_notice(&c.id).await.unwrap().is_some());
    assert_eq!(s.notify_cursor().await.unwrap(), 3);
    // Moving without notices is one write.
    assert!(s.queue_notices(&[], 3, 3).await.unwrap());
    // Without a mailer the cursor follows the chain's head, never going back.
    let more = AuditEvent::new(at(9), Activity::Deny, Initiator::System, "AccessPackageAssignmentRequest", 9, 9);
    s.apply(&Batch { events: vec![more], ..Batch::default() }).await.unwrap();
    chain_everything(&s).await;
    s.notify_cursor_to_head().await.unwrap();
    assert_eq!(s.notify_cursor().await.unwrap(), 4);
    assert!(s.queue_notices(&[], 4, 9).await.unwrap());
    s.notify_cursor_to_head().await.unwrap();
    assert_eq!(s.notify_cursor().await.unwrap(), 9, "ahead of the head (another process) stays");
}

pub async fn timer_watermarks_move_by_compare_and_set(s: SqlStore) {
    assert_eq!(s.notify_timer("expiry:14d").await.unwrap(), None);
    let (a, b) = (notice("expiry:a", at(0)), notice("expiry:b", at(0)));
    assert!(s.queue_timer_notices("expiry:14d", None, later(10), &[]).await.unwrap());
    assert!(!s.queue_timer_notices("expiry:14d", None, later(20), std::slice::from_ref(&a)).await.unwrap());
    assert_eq!(s.get_notice(&a.id).await.unwrap(), None, "a lost race writes nothing");
    assert_eq!(s.notify_timer("expiry:14d").await.unwrap(), Some(later(10)));
    assert!(!s.queue_timer_notices("expiry:14d", Some(later(9)), later(20), std::slice::from_ref(&a)).await.unwrap());
    assert!(s.queue_timer_notices("expiry:14d", Some(later(10)), later(20), &[a.clone(), b.clone()]).await.unwrap());
    assert_eq!(s.notify_timer("expiry:14d").await.unwrap(), Some(later(20)));
    assert!(s.get_notice(&a.id).await.unwrap().is_some() && s.get_notice(&b.id).await.unwrap().is_some());
    assert_eq!(s.notify_timer("expiry:1d").await.unwrap(), None, "timers are apart");
}

pub async fn notices_are_leased_sent_retried_and_given_up(s: SqlStore) {
    let now = later(100);
    let lease = later(400);
    let (due1, due2, mut due3, tomorrow) =
        (notice("1", later(10)), notice("2", later(20)), notice("3", later(30)), notice("4", later(86_400)));
    // A chat message rides in the same outbox.
    due3.channel = Channel::Chat;
    due3.recipient = "webhook-id".into();
    s.queue_notices(&[due2.clone(), due1.clone(), tomorrow.clone(), due3.clone()], 0, 0).await.unwrap();

    let mine = s.claim_notices("w1", now, lease, 2).await.unwrap();
    assert_eq!(
        mine.iter().map(|n| n.id.clone()).collect::<Vec<_>>(),
        [due1.id.clone(), due2.id.clone()],
        "earliest first"
    );
    let theirs = s.claim_notices("w2", now, lease, 10).await.unwrap();
    assert_eq!(theirs.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), [due3.id.as_str()], "leased ones are skipped");
    assert_eq!((theirs[0].channel, theirs[0].recipient.as_str()), (Channel::Chat, "webhook-id"));
    assert_eq!(mine[0].channel, Channel::Mail);
    assert!(s.claim_notices("w3", now, lease, 10).await.unwrap().is_empty());

    // Sent: only by its holder.
    assert!(!s.notice_sent(&due1.id, "w2", now).await.unwrap());
    assert!(s.notice_sent(&due1.id, "w1", later(101)).await.unwrap());
    let sent = s.get_notice(&due1.id).await.unwrap().unwrap();
    assert_eq!((sent.state, sent.attempts, sent.sent_at), (NoticeState::Sent, 1, Some(later(101))));
    assert!(!s.notice_sent(&due1.id, "w1", later(102)).await.unwrap(), "once");

    // Retried: due again later, with the attempt and its error.
    assert!(s.notice_retry(&due2.id, "w1", later(130), "451 try again").await.unwrap());
    let r = s.get_notice(&due2.id).await.unwrap().unwrap();
    assert_eq!((r.state, r.attempts, r.next_at), (NoticeState::Pending, 1, later(130)));
    assert_eq!(r.last_error.as_deref(), Some("451 try again"));
    assert!(s.claim_notices("w3", later(129), later(500), 10).await.unwrap().is_empty(), "not before its time");
    let again = s.claim_notices("w3", later(130), later(500), 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);

    // Postponed untried: the attempts stay.
    assert!(s.notice_postpone(&due2.id, "w3", later(200)).await.unwrap());
    assert_eq!(s.get_notice(&due2.id).await.unwrap().unwrap().attempts, 1);

    // A lease that ran out is taken over; the old holder can no longer record.
    let taken = s.claim_notices("w4", later(400), later(900), 10).await.unwrap();
    assert_eq!(
        taken.iter().map(|n| n.id.clone()).collect::<HashSet<_>>(),
        HashSet::from([due2.id.clone(), due3.id.clone()])
    );
    assert!(!s.notice_failed(&due3.id, "w2", "too late").await.unwrap());
    assert!(s.notice_failed(&due3.id, "w4", "550 no such mailbox").await.unwrap());
    let f = s.get_notice(&due3.id).await.unwrap().unwrap();
    assert_eq!((f.state, f.attempts), (NoticeState::Failed, 1));
    assert_eq!(f.last_error.as_deref(), Some("550 no such mailbox"));
    assert!(s.claim_notices("w5", later(86_400), later(90_000), 10).await.unwrap().iter().all(|n| n.id != due3.id));
}

pub async fn concurrent_senders_claim_each_notice_once(s: SqlStore) {
    let notices: Vec<Notice> = (0..60).map(|i| notice(&format!("n{i}"), at(i))).collect();
    s.queue_notices(&notices, 0, 0).await.unwrap();
    let now = later(10);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..4 {
        let s = s.clone();
        tasks.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = s.claim_notices(&format!("w{w}"), now, later(100), 7).await.unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|n| n.id));
            }
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    let distinct: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), 60, "each claimed once");
    assert_eq!(distinct.len(), 60);
}

fn assignment(end: Option<Timestamp>, active: bool) -> Assignment {
    Assignment {
        id: AssignmentId::new(),
        access_package_id: AccessPackageId::new(),
        catalog_id: CatalogId::new(),
        policy_id: None,
        target_id: UserId::new(),
        state: if active { AssignmentState::Delivered } else { AssignmentState::Expired },
        status: if active { "Delivered".into() } else { "Expired".into() },
        window: Window { start: at(0), end },
        expired_date_time: None,
        created_date_time: at(0),
        modified_date_time: at(0),
    }
}

fn request(state: RequestState, due: Option<Timestamp>) -> AssignmentRequest {
    AssignmentRequest {
        id: RequestId::new(),
        request_type: RequestType::UserAdd,
        state,
        status: RequestStatus::PendingApproval,
        access_package_id: AccessPackageId::new(),
        catalog_id: CatalogId::new(),
        policy_id: None,
        target_id: UserId::new(),
        requestor_id: None,
        assignment_id: None,
        detail: RequestDetail::default(),
        created_date_time: at(0),
        completed_date_time: None,
        modified_date_time: at(0),
        due,
    }
}

pub async fn timers_read_ending_assignments_and_due_requests(s: SqlStore) {
    let a1 = assignment(Some(later(100)), true);
    let a2 = assignment(Some(later(200)), true);
    let a3 = assignment(Some(later(300)), true);
    let ended = assignment(Some(later(150)), false);
    let forever = assignment(None, true);
    let r1 = request(RequestState::PendingApproval, Some(later(100)));
    let r2 = request(RequestState::PendingApproval, Some(later(200)));
    let r0 = request(RequestState::PendingApproval, None);
    let batch = Batch {
        assignments: [&a1, &a2, &a3, &ended, &forever].into_iter().cloned().map(Put::New).collect(),
        requests: [&r1, &r2, &r0].into_iter().cloned().map(Put::New).collect(),
        ..Batch::default()
    };
    s.apply(&batch).await.unwrap();
    let ids = |v: Vec<Assignment>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(ids(s.assignments_ending_between(later(100), later(300), 10).await.unwrap()), [a2.id, a3.id]);
    assert_eq!(ids(s.assignments_ending_between(later(0), later(300), 2).await.unwrap()), [a1.id, a2.id]);
    assert!(s.assignments_ending_between(later(300), later(9_000), 10).await.unwrap().is_empty());
    let rids = |v: Vec<AssignmentRequest>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(rids(s.requests_due_between(later(0), later(150), 10).await.unwrap()), [r1.id]);
    assert_eq!(rids(s.requests_due_between(later(100), later(200), 10).await.unwrap()), [r2.id]);
}
