//! Two writers at once: constraint and rule checks must leave exactly one winner and a
//! consistent database. Each race runs a few rounds, the two tasks on separate threads.

use std::sync::Arc;

use steward_app::query::{ListQuery, RESOURCE_ROLES, Relation};
use steward_app::{Store, StoreError};
use steward_domain::DomainError;
use steward_domain::catalog;
use steward_store::SqlStore;
use tokio::sync::Barrier;

use crate::fixtures::*;

const ROUNDS: usize = 6;

/// Runs `a` and `b` on two tasks released together; returns both results.
async fn race<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: Future<Output = RA> + Send + 'static,
    B: Future<Output = RB> + Send + 'static,
    RA: Send + 'static,
    RB: Send + 'static,
{
    let gate = Arc::new(Barrier::new(2));
    let (ga, gb) = (gate.clone(), gate);
    let ta = tokio::spawn(async move {
        ga.wait().await;
        a.await
    });
    let tb = tokio::spawn(async move {
        gb.wait().await;
        b.await
    });
    let (ra, rb) = tokio::join!(ta, tb);
    (ra.unwrap(), rb.unwrap())
}

pub async fn concurrent_incompatibility_links_have_one_winner(s: SqlStore) {
    let c = catalog_named("Race");
    s.insert_catalog(&c, None, &audit()).await.unwrap();
    for round in 0..ROUNDS {
        let (a, b) =
            (package(c.id, &format!("a{round}"), None, at(1)), package(c.id, &format!("b{round}"), None, at(2)));
        s.insert_package(&a, &audit()).await.unwrap();
        s.insert_package(&b, &audit()).await.unwrap();
        let (s1, s2) = (s.clone(), s.clone());
        let (r1, r2) = race(async move { s1.add_incompatible_package(a.id, b.id, &audit()).await }, async move {
            s2.add_incompatible_package(a.id, b.id, &audit()).await
        })
        .await;
        let results = [r1, r2];
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "round {round}: {results:?}");
        assert_eq!(
            results.iter().filter(|r| matches!(r, Err(StoreError::Conflict(_)))).count(),
            1,
            "round {round}: {results:?}"
        );
    }
}

pub async fn concurrent_resource_adds_have_one_winner(s: SqlStore) {
    let c = catalog_named("Race");
    s.insert_catalog(&c, None, &audit()).await.unwrap();
    for round in 0..ROUNDS {
        let g = group(&format!("G{round}"));
        s.insert_group(&g).await.unwrap();
        let (x, y) = (catalog::group_resource(c.id, &g, at(1)), catalog::group_resource(c.id, &g, at(2)));
        let (s1, s2) = (s.clone(), s.clone());
        let (r1, r2) = race(async move { s1.add_resource(&x, &add_request(&x), &audit()).await }, async move {
            s2.add_resource(&y, &add_request(&y), &audit()).await
        })
        .await;
        let results = [r1, r2];
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "round {round}: {results:?}");
        assert_eq!(
            results.iter().filter(|r| matches!(r, Err(StoreError::Conflict(_)))).count(),
            1,
            "round {round}: {results:?}"
        );
    }
    let roles =
        s.list_resource_roles(&ListQuery::all(&RESOURCE_ROLES).related(Relation::CatalogRoles, c.id)).await.unwrap();
    assert_eq!(roles.items.len(), 2 * ROUNDS, "exactly one resource (two roles) per group");
}

pub async fn concurrent_users_with_one_upn_have_one_winner(s: SqlStore) {
    for round in 0..ROUNDS {
        let (a, b) = (user(&format!("dup{round}@x.io")), user(&format!("DUP{round}@X.io")));
        let (s1, s2) = (s.clone(), s.clone());
        let (r1, r2) = race(async move { s1.insert_user(&a).await }, async move { s2.insert_user(&b).await }).await;
        let results = [r1, r2];
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "round {round}: {results:?}");
        assert_eq!(
            results.iter().filter(|r| matches!(r, Err(StoreError::Conflict(_)))).count(),
            1,
            "round {round}: {results:?}"
        );
    }
}

pub async fn concurrent_optimistic_updates_have_one_winner(s: SqlStore) {
    let c = catalog_named("Edit");
    s.insert_catalog(&c, None, &audit()).await.unwrap();
    let p = package(c.id, "P", None, at(1));
    s.insert_package(&p, &audit()).await.unwrap();
    let (mut c_read, mut p_read) = (c.clone(), p.clone());
    for round in 0..ROUNDS as i64 {
        // catalogs
        let mut first = c_read.clone();
        first.display_name = name(&format!("first {round}"));
        first.modified_date_time = at(10 * round + 2);
        let mut second = c_read.clone();
        second.description = Some(format!("second {round}"));
        second.modified_date_time = at(10 * round + 3);
        let read_at = c_read.modified_date_time;
        let (s1, s2, f, g) = (s.clone(), s.clone(), first.clone(), second.clone());
        let (r1, r2) = race(async move { s1.update_catalog(&f, read_at, &audit()).await }, async move {
            s2.update_catalog(&g, read_at, &audit()).await
        })
        .await;
        assert!(r1.is_ok() != r2.is_ok(), "round {round}: one catalog write wins: {r1:?} {r2:?}");
        assert!(matches!(if r1.is_ok() { &r2 } else { &r1 }, Err(StoreError::Conflict(_))), "{r1:?} {r2:?}");
        c_read = s.get_catalog(c.id).await.unwrap().unwrap();
        assert_eq!(c_read, if r1.is_ok() { first } else { second }, "round {round}: the winner's write is stored");

        // packages
        let mut first = p_read.clone();
        first.is_hidden = !p_read.is_hidden;
        first.modified_date_time = at(10 * round + 4);
        let mut second = p_read.clone();
        second.description = Some(format!("second {round}"));
        second.modified_date_time = at(10 * round + 5);
        let read_at = p_read.modified_date_time;
        let (s1, s2, f, g) = (s.clone(), s.clone(), first.clone(), second.clone());
        let (r1, r2) = race(async move { s1.update_package(&f, read_at, &audit()).await }, async move {
            s2.update_package(&g, read_at, &audit()).await
        })
        .await;
        assert!(r1.is_ok() != r2.is_ok(), "round {round}: one package write wins: {r1:?} {r2:?}");
        assert!(matches!(if r1.is_ok() { &r2 } else { &r1 }, Err(StoreError::Conflict(_))), "{r1:?} {r2:?}");
        p_read = s.get_package(p.id).await.unwrap().unwrap();
        assert_eq!(p_read, if r1.is_ok() { first } else { second }, "round {round}: the winner's write is stored");
    }
}

/// A catalog deleted while a package is created in it: either the package is refused and the
/// catalog is gone, or the package is stored and the catalog stays.
pub async fn concurrent_catalog_delete_and_package_insert(s: SqlStore) {
    for round in 0..ROUNDS {
        let c = catalog_named(&format!("C{round}"));
        s.insert_catalog(&c, None, &audit()).await.unwrap();
        let p = package(c.id, "P", None, at(1));
        let (s1, s2, cid, pp) = (s.clone(), s.clone(), c.id, p.clone());
        let (deleted, inserted) = race(async move { s1.delete_catalog(cid, &audit()).await }, async move {
            s2.insert_package(&pp, &audit()).await
        })
        .await;
        let catalog_there = s.get_catalog(c.id).await.unwrap().is_some();
        let package_there = s.get_package(p.id).await.unwrap().is_some();
        assert!(deleted.is_ok() != inserted.is_ok(), "round {round}: exactly one wins: {deleted:?} {inserted:?}");
        if deleted.is_ok() {
            assert!(!catalog_there && !package_there, "round {round}: no package in a deleted catalog");
            assert!(matches!(inserted, Err(StoreError::NotFound { .. } | StoreError::Conflict(_))), "{inserted:?}");
        } else {
            assert!(catalog_there && package_there, "round {round}");
            assert!(
                matches!(deleted, Err(StoreError::Rule(DomainError::Conflict(_)) | StoreError::Conflict(_))),
                "{deleted:?}"
            );
        }
    }
}

/// A resource removed while a package starts using one of its roles.
pub async fn concurrent_resource_removal_and_role_scope_add(s: SqlStore) {
    for round in 0..ROUNDS {
        let (c, _g, added) = catalog_with_group(&s, &format!("C{round}"), &format!("G{round}")).await;
        let p = package(c.id, "P", None, at(3));
        s.insert_package(&p, &audit()).await.unwrap();
        let rrs = role_scope(p.id, &added, round % 2, at(4));
        let (s1, s2, rid, req, r) =
            (s.clone(), s.clone(), added.resource.id, remove_request(&added, at(5)), rrs.clone());
        let (removed, granted) = race(async move { s1.remove_resource(rid, &req, &audit()).await }, async move {
            s2.add_role_scope(&r, &audit()).await
        })
        .await;
        assert!(removed.is_ok() != granted.is_ok(), "round {round}: exactly one wins: {removed:?} {granted:?}");
        let resource_there = s.get_resource(added.resource.id).await.unwrap().is_some();
        let grant_there = s.get_role_scope(rrs.id).await.unwrap().is_some();
        assert_eq!(resource_there, granted.is_ok(), "round {round}");
        assert_eq!(grant_there, granted.is_ok(), "round {round}: no role scope on a removed role");
    }
}
