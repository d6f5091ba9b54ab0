//! Portal sign-in in the store: sign-ins in flight are taken once, sessions read back with
//! their user's `account_enabled`, go with their user, move `last_seen_at` forward only, and
//! the sweep deletes exactly what has ended.

use jiff::SignedDuration;
use steward_app::Store;
use steward_app::sessions::{Session, StoredSignIn};
use steward_domain::ids::UserId;
use steward_store::SqlStore;

use crate::fixtures::*;

fn sign_in(key: &str, created: i64) -> StoredSignIn {
    StoredSignIn {
        state_hash: format!("state-{key}"),
        browser_hash: format!("browser-{key}"),
        sealed: format!("v1:sealed-{key}"),
        return_to: "/portal/requests?tab=mine".into(),
        created_at: at(created),
        expires_at: at(created + 600_000_000),
    }
}

fn session(key: &str, user: UserId, created: i64) -> Session {
    Session {
        id_hash: format!("session-{key}"),
        user_id: user,
        created_at: at(created),
        last_seen_at: at(created),
        expires_at: at(created + 43_200_000_000),
        idle_timeout: SignedDuration::from_mins(30),
        amr: vec!["pwd".into(), "mfa".into()],
        acr: Some("urn:steward:test:mfa".into()),
        auth_time: Some(at(created - 5_000_000)),
        device_compliant: Some(true),
        id_token: Some("v1:sealed-id-token".into()),
    }
}

pub async fn sign_ins_and_sessions(s: SqlStore) {
    // A sign-in in flight is taken exactly once.
    let a = sign_in("a", 0);
    s.insert_sign_in(&a).await.unwrap();
    assert_conflict(s.insert_sign_in(&a).await, "the same state twice");
    assert_eq!(s.take_sign_in("state-a").await.unwrap(), Some(a.clone()));
    assert_eq!(s.take_sign_in("state-a").await.unwrap(), None, "a replay finds nothing");
    assert_eq!(s.take_sign_in("state-unknown").await.unwrap(), None);

    // A session round-trips, with its user's account state.
    let mut u = user("ada@contoso.example");
    s.insert_user(&u).await.unwrap();
    let mut one = session("one", u.id, 0);
    s.insert_session(&one).await.unwrap();
    assert_eq!(s.session("session-one").await.unwrap(), Some((one.clone(), true)));
    assert_conflict(s.insert_session(&one).await, "the same token twice");
    assert_not_found(s.insert_session(&session("ghost", UserId::new(), 0)).await, "a session of nobody");
    let bare = Session {
        amr: vec![],
        acr: None,
        auth_time: None,
        device_compliant: None,
        id_token: None,
        ..session("bare", u.id, 0)
    };
    s.insert_session(&bare).await.unwrap();
    assert_eq!(s.session("session-bare").await.unwrap(), Some((bare.clone(), true)), "absent facts stay absent");
    assert_eq!(s.session("session-unknown").await.unwrap(), None);

    // Touching moves last_seen_at forward, never back.
    s.touch_session("session-one", at(90_000_000), at(90_000_000 + 1_800_000_000)).await.unwrap();
    one.last_seen_at = at(90_000_000);
    assert_eq!(s.session("session-one").await.unwrap().unwrap().0, one);
    s.touch_session("session-one", at(60_000_000), at(60_000_000 + 1_800_000_000)).await.unwrap();
    assert_eq!(s.session("session-one").await.unwrap().unwrap().0.last_seen_at, at(90_000_000), "not moved back");

    // A disabled user's session reads as such.
    u.account_enabled = false;
    s.update_user(&u).await.unwrap();
    assert_eq!(s.session("session-one").await.unwrap().map(|(_, enabled)| enabled), Some(false));

    // The sweep deletes what has ended by then, and nothing else. `bare` idles out at 30
    // minutes; `one` was seen at 90 s, so it lasts 90 s longer.
    s.insert_sign_in(&sign_in("b", 0)).await.unwrap();
    s.insert_sign_in(&sign_in("c", 1_500_000_000)).await.unwrap();
    assert_eq!(s.sweep_sessions(at(0)).await.unwrap(), 0, "nothing has ended yet");
    assert_eq!(s.sweep_sessions(at(1_800_000_000)).await.unwrap(), 2, "sign-in b and session bare");
    assert_eq!(s.session("session-bare").await.unwrap(), None);
    assert!(s.session("session-one").await.unwrap().is_some());
    assert_eq!(s.take_sign_in("state-b").await.unwrap(), None);
    assert_eq!(s.sweep_sessions(at(1_890_000_000)).await.unwrap(), 1, "session one");
    assert_eq!(s.take_sign_in("state-c").await.unwrap().map(|r| r.return_to), Some(a.return_to.clone()));

    // Deleting a session says whether there was one; deleting a user deletes theirs.
    let v = user("bo@contoso.example");
    s.insert_user(&v).await.unwrap();
    s.insert_session(&session("two", v.id, 0)).await.unwrap();
    s.insert_session(&session("three", v.id, 0)).await.unwrap();
    assert!(s.delete_session("session-two").await.unwrap());
    assert!(!s.delete_session("session-two").await.unwrap());
    s.delete_user(v.id).await.unwrap();
    assert_eq!(s.session("session-three").await.unwrap(), None, "gone with the user");
}
