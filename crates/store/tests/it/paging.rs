//! Server-driven (keyset) paging: following `page.next` visits every row exactly once, in
//! order, also while rows are being inserted.

use std::cmp::Ordering;
use std::collections::HashSet;

use steward_app::Store;
use steward_app::query::{ACCESS_PACKAGES, ListQuery};
use steward_domain::ids::AccessPackageId;
use steward_domain::package::AccessPackage;
use steward_store::SqlStore;

use crate::fixtures::*;
use crate::listing::{Key, Seed, ids, order_by, seed};

/// Follows `next` from the first page to the last; returns the pages.
async fn walk(s: &SqlStore, mut q: ListQuery) -> Vec<Vec<AccessPackage>> {
    let mut pages = Vec::new();
    loop {
        let page = s.list_packages(&q).await.unwrap();
        assert!(page.items.len() <= q.top as usize, "a page longer than $top");
        let next = page.next.clone();
        if next.is_some() {
            assert_eq!(page.items.len(), q.top as usize, "a page before the last one is full");
        }
        pages.push(page.items);
        match next {
            Some(n) => q.after = Some(n),
            None => break,
        }
        assert!(pages.len() <= 100, "paging does not end");
    }
    pages
}

pub async fn keyset_paging_visits_every_row_once(s: SqlStore) {
    let Seed { rows, .. } = seed(&s).await;
    for (order, keys, oracle) in [
        ("displayName", vec![(Key::Name, false)], true),
        ("displayName desc", vec![(Key::Name, true)], true),
        ("createdDateTime", vec![(Key::Created, false)], true),
        ("createdDateTime desc", vec![(Key::Created, true)], true),
        ("isHidden desc,displayName", vec![(Key::Hidden, true), (Key::Name, false)], true),
        ("catalog/id,createdDateTime desc", vec![(Key::Catalog, false), (Key::Created, true)], true),
        // a nullable key (nulls sort as empty text); its collation is checked elsewhere, here
        // paging must agree with the same order fetched in one page
        ("description", vec![(Key::Description, false)], false),
        ("description desc", vec![(Key::Description, true)], false),
        ("description,displayName desc", vec![(Key::Description, false), (Key::Name, true)], false),
    ] {
        let pages = walk(&s, query(&ACCESS_PACKAGES, &format!("$orderby={order}&$top=7"))).await;
        assert_eq!(pages.len(), 5, "30 rows in pages of 7, $orderby={order}");
        let seen: Vec<AccessPackageId> = pages.iter().flatten().map(|p| p.id).collect();
        let unique: HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), rows.len(), "every row exactly once, $orderby={order}");
        let one_page = s.list_packages(&query(&ACCESS_PACKAGES, &format!("$orderby={order}&$top=999"))).await.unwrap();
        assert_eq!(seen, ids(&one_page.items), "pages in the order of one big page, $orderby={order}");
        if oracle {
            assert_eq!(seen, ids(&order_by(&rows, &keys)), "the oracle's order, $orderby={order}");
        }
    }

    // With a filter and a count: the count comes with the first page and is reused after.
    let visible: Vec<AccessPackage> = rows.iter().filter(|p| !p.is_hidden).cloned().collect();
    let mut q = query(&ACCESS_PACKAGES, "$filter=isHidden eq false&$orderby=displayName desc&$top=4&$count=true");
    let mut seen = Vec::new();
    for _ in 0..100 {
        let page = s.list_packages(&q).await.unwrap();
        assert_eq!(page.count, Some(visible.len() as u64));
        seen.extend(page.items.iter().map(|p| p.id));
        match page.next {
            Some(n) => {
                q.after = Some(n);
                q.known_count = page.count;
            }
            None => break,
        }
    }
    assert_eq!(seen, ids(&order_by(&visible, &[(Key::Name, true)])));

    // Page sizes that divide the total leave no empty last page.
    let pages = walk(&s, query(&ACCESS_PACKAGES, "$orderby=displayName&$top=10")).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 10]);
    let pages = walk(&s, query(&ACCESS_PACKAGES, "$orderby=displayName&$top=30")).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![30]);
}

/// Compares two packages by (displayName, id), ascending or descending.
fn by_name(a: &AccessPackage, b: &AccessPackage, descending: bool) -> Ordering {
    let o = bytes(a.display_name.as_str(), b.display_name.as_str())
        .then_with(|| bytes(&a.id.to_string(), &b.id.to_string()));
    if descending { o.reverse() } else { o }
}

pub async fn keyset_paging_is_stable_under_inserts(s: SqlStore) {
    let Seed { rows, c1, c2 } = seed(&s).await;
    let mut serial = 0;
    // the rows present when a walk starts: the seed, then also what the first walk inserted
    let mut present = rows.clone();
    for descending in [false, true] {
        let dir = if descending { " desc" } else { "" };
        let mut q = query(&ACCESS_PACKAGES, &format!("$orderby=displayName{dir}&$top=7"));
        let mut seen: Vec<AccessPackage> = Vec::new();
        let mut must_see: Vec<AccessPackage> = Vec::new();
        let mut must_not_see: Vec<AccessPackage> = Vec::new();
        for round in 0.. {
            assert!(round < 50, "paging does not end ({dir})");
            let page = s.list_packages(&q).await.unwrap();
            seen.extend(page.items.iter().cloned());
            let Some(next) = page.next else { break };
            q.after = Some(next);
            // Between two pages, insert rows before the cursor, after it, and tied with it on
            // displayName (the id decides).
            let cursor = seen.last().unwrap().clone();
            for display in ["0 first", "zzz last", cursor.display_name.as_str()] {
                serial += 1;
                let p = package(if serial % 2 == 0 { c1 } else { c2 }, display, None, at(serial));
                s.insert_package(&p, &audit()).await.unwrap();
                if by_name(&p, &cursor, descending) == Ordering::Greater {
                    must_see.push(p);
                } else {
                    must_not_see.push(p);
                }
            }
        }
        let seen_ids: Vec<AccessPackageId> = seen.iter().map(|p| p.id).collect();
        let unique: HashSet<_> = seen_ids.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "a row was seen twice ({dir})");
        for w in seen.windows(2) {
            assert_eq!(by_name(&w[0], &w[1], descending), Ordering::Less, "rows out of order ({dir})");
        }
        for p in &present {
            assert!(unique.contains(&p.id), "row {:?}, there from the start, was missed ({dir})", p.display_name);
        }
        assert!(!must_see.is_empty() && !must_not_see.is_empty());
        for p in &must_see {
            assert!(unique.contains(&p.id), "row {:?} inserted after the cursor was missed ({dir})", p.display_name);
        }
        for p in &must_not_see {
            assert!(!unique.contains(&p.id), "row {:?} inserted before the cursor showed up ({dir})", p.display_name);
        }
        assert_eq!(seen.len(), present.len() + must_see.len(), "nothing else showed up ({dir})");
        present.extend(must_see);
        present.extend(must_not_see);
    }
}
