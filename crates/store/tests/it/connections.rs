//! Connections: written with their audit event, read back without their sealed credentials
//! (only whether there are some), which are read apart and kept, replaced or removed as asked;
//! an update on a stale read is a conflict and changes nothing. Reconciliation passes come
//! due by connection, and the drift a pass records replaces the last one's.

use serde_json::json;
use steward_app::{Store, StoreError};
use steward_domain::audit::{Activity, AuditEvent, Initiator};
use steward_domain::connection::{Connection, Reconciliation};
use steward_domain::enums::ConnectionKind;
use steward_domain::ids::ConnectionId;
use steward_domain::text::DisplayName;
use steward_store::SqlStore;

use crate::fixtures::at;

fn event(activity: Activity, id: ConnectionId) -> AuditEvent {
    let id = id.to_string();
    AuditEvent::new(at(5), activity, Initiator::App("test".into()), "Connection", &id, &id)
}

fn connection(name: &str, with_credentials: bool) -> Connection {
    Connection {
        id: ConnectionId::new(),
        display_name: DisplayName::parse(name).unwrap(),
        description: Some("the analytics server".into()),
        kind: ConnectionKind::PostgreSqlRoles,
        settings: json!({"host": "db.example.test", "database": "analytics", "user": "steward"}),
        has_credentials: with_credentials,
        reconciliation: Reconciliation::default(),
        created_date_time: at(1),
        modified_date_time: at(1),
    }
}

pub async fn connections_round_trip(s: SqlStore) {
    let a = connection("Zeta", true);
    let b = connection("Alpha", false);
    s.insert_connection(&a, Some("v1:sealed-a"), &event(Activity::CreateConnection, a.id)).await.unwrap();
    s.insert_connection(&b, None, &event(Activity::CreateConnection, b.id)).await.unwrap();
    assert_eq!(s.get_connection(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(s.get_connection(ConnectionId::new()).await.unwrap(), None);
    let names: Vec<String> =
        s.list_connections().await.unwrap().iter().map(|c| c.display_name.as_str().to_owned()).collect();
    assert_eq!(names, ["Alpha", "Zeta"]);
    assert_eq!(s.connection_credentials(a.id).await.unwrap().as_deref(), Some("v1:sealed-a"));
    assert_eq!(s.connection_credentials(b.id).await.unwrap(), None);

    // Passes come due an interval after creation, or when set.
    let hour = jiff::SignedDuration::from_hours(1);
    assert!(s.due_reconciliations(at(1).saturating_add(hour).unwrap()).await.unwrap().len() == 2);
    assert!(s.due_reconciliations(at(0)).await.unwrap().is_empty());
    s.set_reconcile_at(b.id, None).await.unwrap();
    let due = s.due_reconciliations(at(1).saturating_add(hour).unwrap()).await.unwrap();
    assert_eq!(due.iter().map(|c| c.id).collect::<Vec<_>>(), [a.id]);
    assert_eq!(due[0].reconciliation, Reconciliation::default());

    // Drift: replaced by each pass, first sighting kept.
    let role = steward_domain::ids::ResourceRoleId::new();
    s.replace_drift(a.id, role, &["cn=x".into(), "cn=y".into()], at(2)).await.unwrap();
    s.replace_drift(a.id, role, &["cn=y".into(), "cn=z".into()], at(3)).await.unwrap();
    let drift = s.drift(a.id).await.unwrap();
    let seen: Vec<(&str, _, _)> = drift.iter().map(|d| (d.holder.as_str(), d.first_seen, d.last_seen)).collect();
    assert_eq!(seen, [("cn=y", at(2), at(3)), ("cn=z", at(3), at(3))]);
    assert!(s.drift(b.id).await.unwrap().is_empty());
    s.replace_drift(a.id, role, &[], at(4)).await.unwrap();
    assert!(s.drift(a.id).await.unwrap().is_empty());
    assert!(s.connection_role_grants(a.id).await.unwrap().is_empty(), "no resource from it in a catalog");

    // Settings changed, credentials kept.
    let mut a2 = a.clone();
    a2.settings = json!({"host": "db2.example.test", "database": "analytics", "user": "steward"});
    a2.modified_date_time = at(10);
    s.update_connection(&a2, None, a.modified_date_time, &event(Activity::UpdateConnection, a.id)).await.unwrap();
    assert_eq!(s.get_connection(a.id).await.unwrap(), Some(a2.clone()));
    assert_eq!(s.connection_credentials(a.id).await.unwrap().as_deref(), Some("v1:sealed-a"));

    // A write on a stale read changes nothing.
    let mut stale = a2.clone();
    stale.display_name = DisplayName::parse("Stale").unwrap();
    stale.modified_date_time = at(20);
    let e = event(Activity::UpdateConnection, a.id);
    let lost = s.update_connection(&stale, Some(None), a.modified_date_time, &e).await;
    assert!(matches!(lost, Err(StoreError::Conflict(_))), "{lost:?}");
    assert_eq!(s.get_connection(a.id).await.unwrap(), Some(a2.clone()));
    assert_eq!(s.connection_credentials(a.id).await.unwrap().as_deref(), Some("v1:sealed-a"));

    // Replaced, then removed.
    let mut a3 = a2.clone();
    a3.modified_date_time = at(30);
    s.update_connection(
        &a3,
        Some(Some("v1:sealed-b")),
        a2.modified_date_time,
        &event(Activity::UpdateConnection, a.id),
    )
    .await
    .unwrap();
    assert_eq!(s.connection_credentials(a.id).await.unwrap().as_deref(), Some("v1:sealed-b"));
    let mut a4 = a3.clone();
    a4.has_credentials = false;
    a4.modified_date_time = at(40);
    s.update_connection(&a4, Some(None), a3.modified_date_time, &event(Activity::UpdateConnection, a.id))
        .await
        .unwrap();
    assert_eq!(s.get_connection(a.id).await.unwrap().map(|c| c.has_credentials), Some(false));
    assert_eq!(s.connection_credentials(a.id).await.unwrap(), None);

    s.delete_connection(a.id, &event(Activity::DeleteConnection, a.id)).await.unwrap();
    assert_eq!(s.get_connection(a.id).await.unwrap(), None);
    let gone = s.delete_connection(a.id, &event(Activity::DeleteConnection, a.id)).await;
    assert!(matches!(gone, Err(StoreError::NotFound { .. })), "{gone:?}");
    let history: Vec<Activity> = s.events_of(&a.id.to_string()).await.unwrap().iter().map(|e| e.activity).collect();
    use Activity::*;
    assert_eq!(history, [CreateConnection, UpdateConnection, UpdateConnection, UpdateConnection, DeleteConnection]);
}
