//! Audit events of administrators' changes: each write of a catalog, resource, package, role
//! scope, incompatibility or policy records exactly the event it is given, in its own
//! transaction; a write that is refused records nothing, and an event that cannot be written
//! takes its change with it.

use std::collections::BTreeMap;

use steward_app::{Store, StoreError};
use steward_domain::audit::Activity::{self, *};
use steward_domain::audit::{AuditEvent, Initiator};
use steward_domain::catalog;
use steward_domain::ids::{AccessPackageId, CatalogId, GroupId, PolicyId, ResourceRoleScopeId};
use steward_domain::package::ResourceRoleScope;
use steward_domain::policy::{AssignmentPolicy, PolicySettings};
use steward_store::SqlStore;

use crate::fixtures::*;

const CATALOG: &str = "AccessPackageCatalog";
const RESOURCE_REQUEST: &str = "AccessPackageResourceRequest";
const PACKAGE: &str = "AccessPackage";
const POLICY: &str = "AccessPackageAssignmentPolicy";

/// The audit trail a case expects, per correlation id (the changed object's id, as the app
/// correlates administrators' changes), compared with the store's after every write.
struct Trail {
    s: SqlStore,
    want: BTreeMap<String, Vec<AuditEvent>>,
    step: i64,
}

impl Trail {
    fn new(s: &SqlStore) -> Self {
        Self { s: s.clone(), want: BTreeMap::new(), step: 0 }
    }

    /// A new event about `target`, later than every earlier one.
    fn event(&mut self, activity: Activity, target_type: &str, target: impl ToString) -> AuditEvent {
        self.step += 1;
        let id = target.to_string();
        AuditEvent::new(at(self.step), activity, Initiator::App("admin-token:t".into()), target_type, &id, &id)
            .with_detail(format!("step {}", self.step))
    }

    /// The write carrying `e` succeeded: its object's history grew by exactly `e`, and no
    /// other history changed.
    async fn landed(&mut self, e: AuditEvent) {
        self.want.entry(e.correlation_id.clone()).or_default().push(e);
        self.unchanged().await;
    }

    /// A write was refused: its event `e` is nowhere, and no history changed.
    async fn refused(&self, e: &AuditEvent) {
        let of = self.s.events_of(&e.correlation_id).await.unwrap();
        assert!(of.iter().all(|x| x.id != e.id), "a refused write recorded its event: {e:?}");
        self.unchanged().await;
    }

    async fn unchanged(&self) {
        for (correlation, want) in &self.want {
            assert_eq!(&self.s.events_of(correlation).await.unwrap(), want, "the events of {correlation}");
        }
    }

    fn activities(&self, correlation: impl ToString) -> Vec<Activity> {
        self.want.get(&correlation.to_string()).map(|v| v.iter().map(|e| e.activity).collect()).unwrap_or_default()
    }
}

fn policy(package: AccessPackageId, catalog: CatalogId) -> AssignmentPolicy {
    let settings: PolicySettings =
        serde_json::from_value(serde_json::json!({"allowedTargetScope": "allMemberUsers"})).unwrap();
    AssignmentPolicy {
        id: PolicyId::new(),
        access_package_id: package,
        catalog_id: catalog,
        display_name: name("Policy"),
        description: None,
        settings,
        created_date_time: at(1),
        modified_date_time: at(1),
    }
}

/// Every kind of write, once, with the activity the app gives it: each records exactly its
/// event, and the events of an object read back as its history.
pub async fn every_admin_write_records_its_event(s: SqlStore) {
    let mut trail = Trail::new(&s);

    // A catalog, created and changed.
    let c = catalog_named("Audited");
    let e = trail.event(CreateCatalog, CATALOG, c.id);
    s.insert_catalog(&c, None, &e).await.unwrap();
    trail.landed(e).await;
    let mut c2 = c.clone();
    c2.display_name = name("Audited, renamed");
    c2.modified_date_time = at(100);
    let e = trail.event(UpdateCatalog, CATALOG, c.id);
    s.update_catalog(&c2, c.modified_date_time, &e).await.unwrap();
    trail.landed(e).await;

    // A group added to it as a resource.
    let g = group("Audited group");
    s.insert_group(&g).await.unwrap();
    let added = catalog::group_resource(c.id, &g, at(2));
    let add = add_request(&added);
    let e = trail.event(CreateResourceRequest, RESOURCE_REQUEST, add.id);
    s.add_resource(&added, &add, &e).await.unwrap();
    trail.landed(e).await;

    // A package, changed, granting a role, incompatible with another package and a group.
    let p = package(c.id, "Audited package", None, at(3));
    let e = trail.event(CreatePackage, PACKAGE, p.id);
    s.insert_package(&p, &e).await.unwrap();
    trail.landed(e).await;
    let mut p2 = p.clone();
    p2.is_hidden = true;
    p2.modified_date_time = at(101);
    let e = trail.event(UpdatePackage, PACKAGE, p.id);
    s.update_package(&p2, p.modified_date_time, &e).await.unwrap();
    trail.landed(e).await;
    let rrs = role_scope(p.id, &added, 0, at(4));
    let e = trail.event(UpdatePackage, PACKAGE, p.id);
    s.add_role_scope(&rrs, &e).await.unwrap();
    trail.landed(e).await;
    let other = package(c.id, "Other package", None, at(5));
    let e = trail.event(CreatePackage, PACKAGE, other.id);
    s.insert_package(&other, &e).await.unwrap();
    trail.landed(e).await;
    let e = trail.event(CreateIncompatiblePackage, PACKAGE, p.id);
    s.add_incompatible_package(p.id, other.id, &e).await.unwrap();
    trail.landed(e).await;
    let e = trail.event(CreateIncompatibleGroup, PACKAGE, p.id);
    s.add_incompatible_group(p.id, g.id, &e).await.unwrap();
    trail.landed(e).await;

    // A policy, created, changed and deleted.
    let pol = policy(p.id, c.id);
    let e = trail.event(CreatePolicy, POLICY, pol.id);
    s.insert_policy(&pol, &e).await.unwrap();
    trail.landed(e).await;
    let mut pol2 = pol.clone();
    pol2.description = Some("changed".into());
    pol2.modified_date_time = at(102);
    let e = trail.event(UpdatePolicy, POLICY, pol.id);
    s.update_policy(&pol2, pol.modified_date_time, &e).await.unwrap();
    trail.landed(e).await;
    let e = trail.event(DeletePolicy, POLICY, pol.id);
    s.delete_policy(pol.id, &e).await.unwrap();
    trail.landed(e).await;

    // Everything taken apart again.
    let e = trail.event(DeleteIncompatibleGroup, PACKAGE, p.id);
    s.remove_incompatible_group(p.id, g.id, &e).await.unwrap();
    trail.landed(e).await;
    let e = trail.event(DeleteIncompatiblePackage, PACKAGE, p.id);
    s.remove_incompatible_package(p.id, other.id, &e).await.unwrap();
    trail.landed(e).await;
    let e = trail.event(UpdatePackage, PACKAGE, p.id);
    s.remove_role_scope(p.id, rrs.id, &e).await.unwrap();
    trail.landed(e).await;
    let remove = remove_request(&added, at(6));
    let e = trail.event(CreateResourceRemoveRequest, RESOURCE_REQUEST, remove.id);
    s.remove_resource(added.resource.id, &remove, &e).await.unwrap();
    trail.landed(e).await;
    for pkg in [p.id, other.id] {
        let e = trail.event(DeletePackage, PACKAGE, pkg);
        s.delete_package(pkg, &e).await.unwrap();
        trail.landed(e).await;
    }
    let e = trail.event(DeleteCatalog, CATALOG, c.id);
    s.delete_catalog(c.id, &e).await.unwrap();
    trail.landed(e).await;

    // The histories, as `events_of` reads them: in order, each event once.
    assert_eq!(trail.activities(c.id), vec![CreateCatalog, UpdateCatalog, DeleteCatalog]);
    assert_eq!(
        trail.activities(p.id),
        vec![
            CreatePackage,
            UpdatePackage,
            UpdatePackage,
            CreateIncompatiblePackage,
            CreateIncompatibleGroup,
            DeleteIncompatibleGroup,
            DeleteIncompatiblePackage,
            UpdatePackage,
            DeletePackage,
        ]
    );
    assert_eq!(trail.activities(pol.id), vec![CreatePolicy, UpdatePolicy, DeletePolicy]);
    assert_eq!(trail.activities(add.id), vec![CreateResourceRequest]);
    assert_eq!(trail.activities(remove.id), vec![CreateResourceRemoveRequest]);
    let stored = s.events_of(&c.id.to_string()).await.unwrap();
    assert_eq!(stored[0].activity.display_name(), "Create access package catalog");
    assert_eq!(stored[0].initiator, Initiator::App("admin-token:t".into()));
}

/// Writes that are refused (a duplicate, a stale read, a rule, something missing) record no
/// event, and leave every history as it was.
pub async fn refused_admin_writes_record_nothing(s: SqlStore) {
    let mut trail = Trail::new(&s);
    let (c, g, added) = catalog_with_group(&s, "Refusals", "Refused group").await;
    let p = package(c.id, "P", None, at(3));
    let e = trail.event(CreatePackage, PACKAGE, p.id);
    s.insert_package(&p, &e).await.unwrap();
    trail.landed(e).await;
    let other = package(c.id, "Other", None, at(4));
    s.insert_package(&other, &audit()).await.unwrap();
    let rrs = role_scope(p.id, &added, 0, at(5));
    s.add_role_scope(&rrs, &audit()).await.unwrap();
    s.add_incompatible_package(p.id, other.id, &audit()).await.unwrap();
    s.add_incompatible_group(p.id, g.id, &audit()).await.unwrap();
    let pol = policy(p.id, c.id);
    s.insert_policy(&pol, &audit()).await.unwrap();

    // Catalogs: a duplicate, a stale write, an unknown one, one that holds packages.
    let e = trail.event(CreateCatalog, CATALOG, c.id);
    assert_conflict(s.insert_catalog(&c, None, &e).await, "the same catalog twice");
    trail.refused(&e).await;
    let mut stale = c.clone();
    stale.modified_date_time = at(200);
    let e = trail.event(UpdateCatalog, CATALOG, c.id);
    assert_conflict(s.update_catalog(&stale, at(199), &e).await, "a catalog write on a stale read");
    trail.refused(&e).await;
    let gone = catalog_named("Gone");
    let e = trail.event(UpdateCatalog, CATALOG, gone.id);
    assert_not_found(s.update_catalog(&gone, gone.modified_date_time, &e).await, "an unknown catalog");
    trail.refused(&e).await;
    let e = trail.event(DeleteCatalog, CATALOG, c.id);
    assert_rule_conflict(s.delete_catalog(c.id, &e).await, "a catalog holding packages");
    trail.refused(&e).await;
    let e = trail.event(DeleteCatalog, CATALOG, gone.id);
    assert_not_found(s.delete_catalog(gone.id, &e).await, "delete of an unknown catalog");
    trail.refused(&e).await;

    // Resources: the same group twice, and one a package uses.
    let again = catalog::group_resource(c.id, &g, at(6));
    let req = add_request(&again);
    let e = trail.event(CreateResourceRequest, RESOURCE_REQUEST, req.id);
    assert_conflict(s.add_resource(&again, &req, &e).await, "the same group twice in a catalog");
    trail.refused(&e).await;
    let req = remove_request(&added, at(7));
    let e = trail.event(CreateResourceRemoveRequest, RESOURCE_REQUEST, req.id);
    assert_rule_conflict(s.remove_resource(added.resource.id, &req, &e).await, "a resource in use");
    trail.refused(&e).await;

    // Packages: unknown catalog, stale write, a policy still on it, duplicate links, and
    // links or role scopes that are not there.
    let orphan = package(CatalogId::new(), "Orphan", None, at(8));
    let e = trail.event(CreatePackage, PACKAGE, orphan.id);
    assert_not_found(s.insert_package(&orphan, &e).await, "a package in an unknown catalog");
    trail.refused(&e).await;
    let mut stale = p.clone();
    stale.modified_date_time = at(201);
    let e = trail.event(UpdatePackage, PACKAGE, p.id);
    assert_conflict(s.update_package(&stale, at(199), &e).await, "a package write on a stale read");
    trail.refused(&e).await;
    let e = trail.event(DeletePackage, PACKAGE, p.id);
    assert_rule_conflict(s.delete_package(p.id, &e).await, "a package with a policy");
    trail.refused(&e).await;
    let e = trail.event(UpdatePackage, PACKAGE, p.id);
    let twice = ResourceRoleScope { id: ResourceRoleScopeId::new(), ..rrs.clone() };
    assert_conflict(s.add_role_scope(&twice, &e).await, "the same role scope twice");
    trail.refused(&e).await;
    let e = trail.event(UpdatePackage, PACKAGE, other.id);
    assert_not_found(s.remove_role_scope(other.id, rrs.id, &e).await, "a role scope of another package");
    trail.refused(&e).await;
    let e = trail.event(CreateIncompatiblePackage, PACKAGE, p.id);
    assert_conflict(s.add_incompatible_package(p.id, other.id, &e).await, "the same incompatibility twice");
    trail.refused(&e).await;
    let e = trail.event(DeleteIncompatiblePackage, PACKAGE, other.id);
    assert_not_found(s.remove_incompatible_package(other.id, p.id, &e).await, "a link that is not there");
    trail.refused(&e).await;
    let e = trail.event(CreateIncompatibleGroup, PACKAGE, p.id);
    assert_not_found(s.add_incompatible_group(p.id, GroupId::new(), &e).await, "an unknown group");
    trail.refused(&e).await;
    let e = trail.event(DeleteIncompatibleGroup, PACKAGE, other.id);
    assert_not_found(s.remove_incompatible_group(other.id, g.id, &e).await, "a group link that is not there");
    trail.refused(&e).await;

    // Policies: a duplicate, a stale write, an unknown one.
    let e = trail.event(CreatePolicy, POLICY, pol.id);
    assert_conflict(s.insert_policy(&pol, &e).await, "the same policy twice");
    trail.refused(&e).await;
    let mut stale = pol.clone();
    stale.modified_date_time = at(202);
    let e = trail.event(UpdatePolicy, POLICY, pol.id);
    assert_conflict(s.update_policy(&stale, at(199), &e).await, "a policy write on a stale read");
    trail.refused(&e).await;
    let e = trail.event(DeletePolicy, POLICY, PolicyId::new());
    assert_not_found(s.delete_policy(PolicyId::new(), &e).await, "delete of an unknown policy");
    trail.refused(&e).await;

    assert_eq!(trail.activities(p.id), vec![CreatePackage], "only the one write that landed");
    assert!(s.events_of(&c.id.to_string()).await.unwrap().is_empty(), "no refused catalog write recorded anything");
}

/// An event that cannot be written (here: its id is taken) fails the write, and the change
/// does not land either: on the single-statement path and on the multi-statement one.
pub async fn an_event_that_cannot_be_written_undoes_the_change(s: SqlStore) {
    let c = catalog_named("First");
    let first = AuditEvent::new(at(1), CreateCatalog, Initiator::System, CATALOG, c.id, c.id);
    s.insert_catalog(&c, None, &first).await.unwrap();
    let taken = |target: String| AuditEvent { target_id: target.clone(), correlation_id: target, ..first.clone() };
    let internal = |r: Result<(), StoreError>, what: &str| {
        assert!(matches!(r, Err(StoreError::Internal(_))), "{what}: expected Internal, got {r:?}");
    };

    let c2 = catalog_named("Second");
    internal(s.insert_catalog(&c2, None, &taken(c2.id.to_string())).await, "an insert");
    assert!(s.get_catalog(c2.id).await.unwrap().is_none(), "the catalog was not created");

    let mut renamed = c.clone();
    renamed.display_name = name("Renamed");
    renamed.modified_date_time = at(50);
    internal(s.update_catalog(&renamed, c.modified_date_time, &taken(c.id.to_string())).await, "an update");
    assert_eq!(s.get_catalog(c.id).await.unwrap().unwrap(), c, "the catalog is unchanged");

    let p = package(c.id, "P", None, at(2));
    s.insert_package(&p, &audit()).await.unwrap();
    internal(s.delete_package(p.id, &taken(p.id.to_string())).await, "a delete");
    assert_eq!(s.get_package(p.id).await.unwrap().unwrap(), p, "the package is still there");

    let g = group("G");
    s.insert_group(&g).await.unwrap();
    let added = catalog::group_resource(c.id, &g, at(3));
    let req = add_request(&added);
    internal(s.add_resource(&added, &req, &taken(req.id.to_string())).await, "a resource request");
    assert!(s.get_resource(added.resource.id).await.unwrap().is_none(), "the resource was not added");

    let pol = policy(p.id, c.id);
    internal(s.insert_policy(&pol, &taken(pol.id.to_string())).await, "a policy");
    assert!(s.get_policy(pol.id).await.unwrap().is_none(), "the policy was not created");

    assert_eq!(s.events_of(&c.id.to_string()).await.unwrap(), vec![first], "only the first event exists");
}

/// The hash chain under concurrency: eight writers add events while two chainers run, as two
/// server processes' workers would. Every event ends up chained exactly once, at consecutive
/// places (1…n, no gap, no repeat), and the chain verifies; a checkpoint is stored once.
pub async fn chainers_and_writers_side_by_side_chain_every_event_once(s: SqlStore) {
    use std::collections::HashSet;
    use steward_app::ports::Batch;
    use steward_domain::audit_chain::{Anchor, Checkpoint, Verifier};

    const WRITERS: i64 = 8;
    const EACH: i64 = 60;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                let n = w * EACH + i;
                let e = AuditEvent::new(at(n % 17), Approve, Initiator::User(format!("u-{w}")), "Request", n, n);
                s.apply(&Batch { events: vec![e], ..Batch::default() }).await.unwrap();
            }
        }));
    }
    let chainers: Vec<_> = (0..2)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut chained = 0u64;
                for _ in 0..200 {
                    chained += u64::from(s.chain_audit(7).await.unwrap().chained);
                    tokio::task::yield_now().await;
                }
                chained
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut total = 0;
    for c in chainers {
        total += c.await.unwrap();
    }
    total += chain_everything(&s).await;
    let n = WRITERS * EACH;
    assert_eq!(total, n as u64, "every event chained once");
    let state = s.audit_chain_state().await.unwrap();
    assert_eq!((state.head.seq, state.unchained, state.anchor), (n, 0, Anchor::default()));

    let links = s.audit_links(0, 10_000).await.unwrap();
    assert_eq!(links.iter().map(|l| l.seq).collect::<Vec<_>>(), (1..=n).collect::<Vec<_>>());
    assert_eq!(links.iter().map(|l| &l.record.id).collect::<HashSet<_>>().len(), n as usize);
    let cp = Checkpoint::new(n, &state.head.hash, 1, None);
    s.insert_audit_checkpoint(&cp).await.unwrap();
    s.insert_audit_checkpoint(&Checkpoint { at: 2, ..cp.clone() }).await.unwrap();
    assert_eq!(
        s.audit_checkpoints().await.unwrap(),
        std::slice::from_ref(&cp),
        "a second checkpoint of one record is ignored"
    );
    let mut v = Verifier::new(Anchor::default(), vec![cp], None);
    for l in &links {
        v.feed(l).unwrap();
    }
    assert_eq!(v.finish().unwrap().records, n as u64);
    // Paged reading walks the same chain.
    let page = s.audit_links(100, 5).await.unwrap();
    assert_eq!(page.iter().map(|l| l.seq).collect::<Vec<_>>(), [101, 102, 103, 104, 105]);
    // The stored event reads back with what the trail adds: its client address, its changes.
    let mut e =
        AuditEvent::new(at(99), UpdateCatalog, Initiator::App("t".into()), CATALOG, "c", "c").with_changes(vec![
            steward_domain::audit::ModifiedProperty {
                display_name: "description".into(),
                old_value: None,
                new_value: Some("\"x\"".into()),
            },
        ]);
    e.ip_address = Some("192.0.2.4".into());
    s.apply(&Batch { events: vec![e.clone()], ..Batch::default() }).await.unwrap();
    assert_eq!(s.get_audit_event(e.id).await.unwrap(), Some(e));
}
