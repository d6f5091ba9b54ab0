//! OData list semantics, checked against an oracle: every `$filter`, `$orderby`, `$top`,
//! `$skip`, `$count` and `$search` result is compared with the same predicate and order
//! computed in Rust over the rows that were inserted.

use std::cmp::Ordering;

use jiff::Timestamp;
use steward_app::Store;
use steward_app::ports::{Batch, Put};
use steward_app::query::{
    ACCESS_PACKAGES, CATALOGS, FieldType, GROUPS, ListQuery, POLICIES, RESOURCE_ROLES, RESOURCE_SCOPES, RESOURCES,
    REVIEW_DEFINITIONS, Schema, USERS,
};
use steward_domain::catalog;
use steward_domain::directory::{Group, User};
use steward_domain::ids::{AccessPackageId, CatalogId, PolicyId};
use steward_domain::package::AccessPackage;
use steward_domain::policy::{AssignmentPolicy, PolicySettings};
use steward_store::SqlStore;

use crate::fixtures::*;

pub const HOUR: i64 = 3_600_000_000;

/// 30 packages over two catalogs: names repeat (each twice) and mix case, descriptions are
/// sometimes null or empty and carry LIKE metacharacters, creation times come in equal pairs.
pub struct Seed {
    pub rows: Vec<AccessPackage>,
    pub c1: CatalogId,
    pub c2: CatalogId,
}

pub const NAMES: [&str; 15] = [
    "alpha",
    "Alpha",
    "ALPHA beta",
    "beta",
    "Beta",
    "gamma ray",
    "Gamma",
    "delta",
    "Delta Force",
    "50% off",
    "under_score",
    "back\\slash",
    "it's",
    "zeta",
    "Zeta",
];

pub fn seed_row(c1: CatalogId, c2: CatalogId, i: usize) -> AccessPackage {
    let description = match i % 4 {
        0 => None,
        1 => Some("Finance tools"),
        2 => Some("engineering"),
        _ if i % 8 == 3 => Some(""),
        _ => Some("Ops & it's 100% support_desk"),
    };
    let created = at((i as i64 / 2) * 3 * HOUR + 123_456);
    let mut p = package(if i.is_multiple_of(2) { c1 } else { c2 }, NAMES[i % NAMES.len()], description, created);
    p.is_hidden = i.is_multiple_of(3);
    p.modified_date_time = at(100 * HOUR - i as i64);
    p
}

pub async fn seed(s: &SqlStore) -> Seed {
    let (c1, c2) = (catalog_named("One"), catalog_named("Two"));
    s.insert_catalog(&c1, None, &audit()).await.unwrap();
    s.insert_catalog(&c2, None, &audit()).await.unwrap();
    let mut rows = Vec::new();
    for i in 0..30 {
        let p = seed_row(c1.id, c2.id, i);
        s.insert_package(&p, &audit()).await.unwrap();
        rows.push(p);
    }
    Seed { rows, c1: c1.id, c2: c2.id }
}

/// A sort key of the package oracle.
#[derive(Debug, Clone, Copy)]
pub enum Key {
    Name,
    Description,
    Created,
    Hidden,
    Catalog,
}

fn cmp_key(k: Key, a: &AccessPackage, b: &AccessPackage) -> Ordering {
    match k {
        Key::Name => bytes(a.display_name.as_str(), b.display_name.as_str()),
        // the store sorts a missing description as empty text
        Key::Description => bytes(a.description.as_deref().unwrap_or(""), b.description.as_deref().unwrap_or("")),
        Key::Created => a.created_date_time.cmp(&b.created_date_time),
        Key::Hidden => a.is_hidden.cmp(&b.is_hidden),
        Key::Catalog => bytes(&a.catalog_id.to_string(), &b.catalog_id.to_string()),
    }
}

/// The oracle's order: the keys given, then `id` in the direction of the last key.
pub fn order_by(rows: &[AccessPackage], keys: &[(Key, bool)]) -> Vec<AccessPackage> {
    let last_desc = keys.last().is_some_and(|k| k.1);
    let mut v = rows.to_vec();
    v.sort_by(|a, b| {
        for (k, desc) in keys {
            let o = cmp_key(*k, a, b);
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        let o = bytes(&a.id.to_string(), &b.id.to_string());
        if last_desc { o.reverse() } else { o }
    });
    v
}

pub fn ids(v: &[AccessPackage]) -> Vec<AccessPackageId> {
    v.iter().map(|p| p.id).collect()
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}
fn nm(p: &AccessPackage) -> &str {
    p.display_name.as_str()
}
fn desc(p: &AccessPackage) -> Option<&str> {
    p.description.as_deref()
}

type Pred = Box<dyn Fn(&AccessPackage) -> bool + Send + Sync>;

/// Runs `$filter` cases against the oracle; returns every mismatch (so one run shows them all).
async fn check_filters(s: &SqlStore, rows: &[AccessPackage], cases: Vec<(String, Pred)>) -> Vec<String> {
    let default_order = order_by(rows, &[(Key::Name, false)]);
    let mut failures = Vec::new();
    for (filter, pred) in cases {
        let want: Vec<AccessPackageId> = default_order.iter().filter(|p| pred(p)).map(|p| p.id).collect();
        let names = |ids: &[AccessPackageId]| -> Vec<String> {
            ids.iter()
                .map(|id| rows.iter().find(|p| p.id == *id).map_or("?".into(), |p| format!("{:?}", nm(p))))
                .collect()
        };
        // the whole result, in order
        let full = match s.list_packages(&query(&ACCESS_PACKAGES, &format!("$filter={}&$top=999", enc(&filter)))).await
        {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("$filter={filter}: error {e}"));
                continue;
            }
        };
        let got: Vec<AccessPackageId> = full.items.iter().map(|p| p.id).collect();
        if got != want {
            failures.push(format!("$filter={filter}:\n    got  {:?}\n    want {:?}", names(&got), names(&want)));
            continue;
        }
        // a first page of 5 with the total
        let page = s
            .list_packages(&query(&ACCESS_PACKAGES, &format!("$filter={}&$top=5&$count=true", enc(&filter))))
            .await
            .unwrap();
        let first: Vec<AccessPackageId> = page.items.iter().map(|p| p.id).collect();
        if first.as_slice() != &want[..want.len().min(5)]
            || page.count != Some(want.len() as u64)
            || page.next.is_some() != (want.len() > 5)
        {
            failures.push(format!(
                "$filter={filter}&$top=5&$count=true: got {} rows, count {:?}, next {}; want {} of {}",
                first.len(),
                page.count,
                page.next.is_some(),
                want.len().min(5),
                want.len()
            ));
        }
    }
    failures
}

pub async fn filters_match_an_oracle(s: SqlStore) {
    let Seed { rows, c1, c2 } = seed(&s).await;
    assert!(rows.iter().any(|p| p.description.is_none()) && rows.iter().any(|p| desc(p) == Some("")));
    let x = rows[10].created_date_time;
    let x_text = x.to_string();
    let day: Timestamp = t("2030-03-19T00:00:00Z");
    let some = rows[5].id;
    let other = rows[17].id;
    let c1_upper = c1.to_string().to_uppercase();

    let cases: Vec<(String, Pred)> = vec![
        ("displayName eq 'alpha'".into(), Box::new(|p| nm(p) == "alpha")),
        ("displayName ne 'alpha'".into(), Box::new(|p| nm(p) != "alpha")),
        ("'beta' eq displayName".into(), Box::new(|p| nm(p) == "beta")),
        ("displayName eq 'it''s'".into(), Box::new(|p| nm(p) == "it's")),
        ("displayName eq 'back\\slash'".into(), Box::new(|p| nm(p) == "back\\slash")),
        ("displayName gt 'beta'".into(), Box::new(|p| bytes(nm(p), "beta").is_gt())),
        ("displayName le 'Delta Force'".into(), Box::new(|p| bytes(nm(p), "Delta Force").is_le())),
        ("description eq 'Finance tools'".into(), Box::new(|p| desc(p) == Some("Finance tools"))),
        ("description ne 'Finance tools'".into(), Box::new(|p| desc(p) != Some("Finance tools"))),
        ("description eq null".into(), Box::new(|p| desc(p).is_none())),
        ("description ne null".into(), Box::new(|p| desc(p).is_some())),
        ("null eq description".into(), Box::new(|p| desc(p).is_none())),
        ("description eq ''".into(), Box::new(|p| desc(p) == Some(""))),
        (format!("createdDateTime gt {x_text}"), Box::new(move |p| p.created_date_time > x)),
        (format!("createdDateTime ge {x_text}"), Box::new(move |p| p.created_date_time >= x)),
        (format!("createdDateTime lt {x_text}"), Box::new(move |p| p.created_date_time < x)),
        (format!("createdDateTime le {x_text}"), Box::new(move |p| p.created_date_time <= x)),
        (format!("createdDateTime eq {x_text}"), Box::new(move |p| p.created_date_time == x)),
        (format!("{x_text} lt createdDateTime"), Box::new(move |p| p.created_date_time > x)),
        ("createdDateTime lt 2030-03-19".into(), Box::new(move |p| p.created_date_time < day)),
        (format!("modifiedDateTime ge {}", rows[12].modified_date_time), {
            let m = rows[12].modified_date_time;
            Box::new(move |p| p.modified_date_time >= m)
        }),
        ("startswith(displayName,'AL')".into(), Box::new(|p| lower(nm(p)).starts_with("al"))),
        ("endswith(displayName,'TA')".into(), Box::new(|p| lower(nm(p)).ends_with("ta"))),
        ("contains(displayName,'Ta')".into(), Box::new(|p| lower(nm(p)).contains("ta"))),
        ("contains(description,'FIN')".into(), Box::new(|p| desc(p).is_some_and(|d| lower(d).contains("fin")))),
        ("contains(displayName,'50%')".into(), Box::new(|p| nm(p).contains("50%"))),
        ("contains(displayName,'%')".into(), Box::new(|p| nm(p).contains('%'))),
        ("contains(displayName,'_')".into(), Box::new(|p| nm(p).contains('_'))),
        ("startswith(displayName,'under_')".into(), Box::new(|p| nm(p).starts_with("under_"))),
        ("contains(displayName,'\\')".into(), Box::new(|p| nm(p).contains('\\'))),
        ("contains(displayName,'''')".into(), Box::new(|p| nm(p).contains('\''))),
        ("contains(description,'100% s')".into(), Box::new(|p| desc(p).is_some_and(|d| d.contains("100% s")))),
        ("endswith(description,'_DESK')".into(), Box::new(|p| desc(p).is_some_and(|d| d.ends_with("_desk")))),
        ("contains(description,'&')".into(), Box::new(|p| desc(p).is_some_and(|d| d.contains('&')))),
        ("tolower(displayName) eq 'alpha'".into(), Box::new(|p| lower(nm(p)) == "alpha")),
        ("toupper(displayName) eq 'ALPHA'".into(), Box::new(|p| nm(p).to_uppercase() == "ALPHA")),
        ("tolower(displayName) ne 'alpha'".into(), Box::new(|p| lower(nm(p)) != "alpha")),
        (
            "tolower(description) eq 'finance tools'".into(),
            Box::new(|p| desc(p).is_some_and(|d| lower(d) == "finance tools")),
        ),
        (
            "tolower(displayName) in ('alpha', 'zeta')".into(),
            Box::new(|p| ["alpha", "zeta"].contains(&lower(nm(p)).as_str())),
        ),
        ("displayName in ('Alpha', 'zeta', 'nope')".into(), Box::new(|p| ["Alpha", "zeta"].contains(&nm(p)))),
        (format!("catalog/id in ('{c2}')"), Box::new(move |p| p.catalog_id == c2)),
        (format!("catalog/id eq '{c1}'"), Box::new(move |p| p.catalog_id == c1)),
        (format!("catalog/id eq '{c1_upper}'"), Box::new(move |p| p.catalog_id == c1)),
        (format!("catalog/id ne '{c1}'"), Box::new(move |p| p.catalog_id != c1)),
        (format!("id eq '{some}'"), Box::new(move |p| p.id == some)),
        (format!("id in ('{some}', '{other}')"), Box::new(move |p| p.id == some || p.id == other)),
        ("isHidden".into(), Box::new(|p| p.is_hidden)),
        ("isHidden eq false".into(), Box::new(|p| !p.is_hidden)),
        ("not isHidden".into(), Box::new(|p| !p.is_hidden)),
        ("true".into(), Box::new(|_| true)),
        ("false".into(), Box::new(|_| false)),
        (
            "(startswith(displayName,'a') or startswith(displayName,'b')) and not (isHidden eq true)".into(),
            Box::new(|p| (lower(nm(p)).starts_with('a') || lower(nm(p)).starts_with('b')) && !p.is_hidden),
        ),
        (
            "startswith(displayName,'a') or startswith(displayName,'b') and isHidden".into(),
            Box::new(|p| lower(nm(p)).starts_with('a') || (lower(nm(p)).starts_with('b') && p.is_hidden)),
        ),
        ("not (description eq 'engineering')".into(), Box::new(|p| desc(p) != Some("engineering"))),
        ("not contains(description,'fin')".into(), Box::new(|p| !desc(p).is_some_and(|d| lower(d).contains("fin")))),
        ("not (description ne 'engineering')".into(), Box::new(|p| desc(p) == Some("engineering"))),
        ("not (description eq null) and not (isHidden)".into(), Box::new(|p| desc(p).is_some() && !p.is_hidden)),
        (
            format!("catalog/id eq '{c1}' and (isHidden eq true or not (contains(description,'fin')))"),
            Box::new(move |p| {
                p.catalog_id == c1 && (p.is_hidden || !desc(p).is_some_and(|d| lower(d).contains("fin")))
            }),
        ),
        (
            format!("(createdDateTime ge {x_text} and isHidden) or description eq null or displayName eq 'zeta'"),
            Box::new(move |p| (p.created_date_time >= x && p.is_hidden) || desc(p).is_none() || nm(p) == "zeta"),
        ),
    ];
    let failures = check_filters(&s, &rows, cases).await;
    assert!(failures.is_empty(), "{} filter(s) disagree with the oracle:\n{}", failures.len(), failures.join("\n"));

    // $search looks at displayName and description; combined with $filter it narrows further.
    let search =
        |p: &AccessPackage, term: &str| lower(nm(p)).contains(term) || desc(p).is_some_and(|d| lower(d).contains(term));
    let default_order = order_by(&rows, &[(Key::Name, false)]);
    for (q, pred) in [
        ("$search=\"FIN\"", Box::new(move |p: &AccessPackage| search(p, "fin")) as Pred),
        ("$search=\"eta\"", Box::new(move |p: &AccessPackage| search(p, "eta"))),
        ("$search=\"displayName:ALP\"", Box::new(|p: &AccessPackage| lower(nm(p)).contains("alp"))),
        (
            "$search=\"description:ops\"",
            Box::new(|p: &AccessPackage| desc(p).is_some_and(|d| lower(d).contains("ops"))),
        ),
        ("$search=\"beta\"&$filter=isHidden", Box::new(move |p: &AccessPackage| search(p, "beta") && p.is_hidden)),
    ] {
        let page = s.list_packages(&query(&ACCESS_PACKAGES, &format!("{q}&$count=true"))).await.unwrap();
        let want: Vec<AccessPackageId> = default_order.iter().filter(|p| pred(p)).map(|p| p.id).collect();
        assert!(!want.is_empty(), "{q} should match something");
        assert_eq!(page.items.iter().map(|p| p.id).collect::<Vec<_>>(), want, "{q}");
        assert_eq!(page.count, Some(want.len() as u64), "{q}");
    }
}

pub async fn ordering_top_skip_and_count(s: SqlStore) {
    let Seed { rows, .. } = seed(&s).await;
    let n = rows.len();
    for (q, keys) in [
        ("", vec![(Key::Name, false)]),
        ("$orderby=displayName", vec![(Key::Name, false)]),
        ("$orderby=displayName desc", vec![(Key::Name, true)]),
        ("$orderby=createdDateTime desc", vec![(Key::Created, true)]),
        ("$orderby=createdDateTime desc,displayName", vec![(Key::Created, true), (Key::Name, false)]),
        ("$orderby=isHidden,createdDateTime desc", vec![(Key::Hidden, false), (Key::Created, true)]),
        ("$orderby=isHidden desc,displayName", vec![(Key::Hidden, true), (Key::Name, false)]),
        ("$orderby=catalog/id,displayName desc", vec![(Key::Catalog, false), (Key::Name, true)]),
    ] {
        let want = ids(&order_by(&rows, &keys));
        let page = s.list_packages(&query(&ACCESS_PACKAGES, &format!("{q}&$top=999"))).await.unwrap();
        assert_eq!(page.items.iter().map(|p| p.id).collect::<Vec<_>>(), want, "{q}");
        assert!(page.next.is_none() && page.count.is_none(), "{q}");
        // $top + $skip cut the same order
        for (top, skip) in [(5, 0), (5, 7), (7, 25), (3, 29), (4, 30), (10, 100)] {
            let page =
                s.list_packages(&query(&ACCESS_PACKAGES, &format!("{q}&$top={top}&$skip={skip}"))).await.unwrap();
            let from = skip.min(n);
            let to = (skip + top).min(n);
            assert_eq!(
                page.items.iter().map(|p| p.id).collect::<Vec<_>>(),
                want[from..to].to_vec(),
                "{q}&$top={top}&$skip={skip}"
            );
            assert_eq!(page.next.is_some(), skip + top < n, "next for {q}&$top={top}&$skip={skip}");
        }
    }

    // $count is the total of the filter, whatever $top and $skip cut.
    for q in ["$count=true&$top=3", "$count=true&$top=1&$skip=29", "$count=true&$skip=40"] {
        let page = s.list_packages(&query(&ACCESS_PACKAGES, q)).await.unwrap();
        assert_eq!(page.count, Some(n as u64), "{q}");
    }
    let hidden = rows.iter().filter(|p| p.is_hidden).count() as u64;
    let page = s.list_packages(&query(&ACCESS_PACKAGES, "$filter=isHidden&$count=true&$top=2&$skip=1")).await.unwrap();
    assert_eq!(page.count, Some(hidden));
    assert_eq!(page.items.len(), 2);
    let page = s.list_packages(&query(&ACCESS_PACKAGES, "$top=2")).await.unwrap();
    assert_eq!(page.count, None, "no count unless asked for");
    let mut q = query(&ACCESS_PACKAGES, "$count=true&$top=2");
    q.known_count = Some(12345);
    assert_eq!(s.list_packages(&q).await.unwrap().count, Some(12345), "a known count is passed through");
    let all = s.list_packages(&ListQuery::all(&ACCESS_PACKAGES)).await.unwrap();
    assert_eq!(ids(&all.items), ids(&order_by(&rows, &[(Key::Name, false)])));
}

/// Text order and comparison must not depend on the database: bytewise (code point) order on
/// every column that can be sorted or compared, including the nullable ones. On PostgreSQL the
/// databases of this suite default to an ICU collation, like many production clusters.
pub async fn text_is_ordered_bytewise_on_every_column(s: SqlStore) {
    let Seed { rows, .. } = seed(&s).await;
    let mut failures = Vec::new();
    for (q, keys) in [
        ("$orderby=description", vec![(Key::Description, false)]),
        ("$orderby=description desc,displayName", vec![(Key::Description, true), (Key::Name, false)]),
    ] {
        let want = ids(&order_by(&rows, &keys));
        let page = s.list_packages(&query(&ACCESS_PACKAGES, &format!("{q}&$top=999"))).await.unwrap();
        if page.items.iter().map(|p| p.id).collect::<Vec<_>>() != want {
            failures.push(format!(
                "packages {q}: got {:?}",
                page.items.iter().map(|p| p.description.clone().unwrap_or_default()).collect::<Vec<_>>()
            ));
        }
    }
    for (f, pred) in [
        ("description gt 'e'", Box::new(|p: &AccessPackage| desc(p).is_some_and(|d| bytes(d, "e").is_gt())) as Pred),
        ("description lt 'F'", Box::new(|p: &AccessPackage| desc(p).is_some_and(|d| bytes(d, "F").is_lt()))),
    ] {
        let page = s.list_packages(&query(&ACCESS_PACKAGES, &format!("$filter={f}&$count=true"))).await.unwrap();
        let want = rows.iter().filter(|p| pred(p)).count() as u64;
        if page.count != Some(want) {
            failures.push(format!("packages $filter={f}: {:?} rows, want {want}", page.count));
        }
    }

    // users: mail (nullable), city (nullable), userPrincipalName
    let mut users: Vec<User> = Vec::new();
    for (i, upn) in ["zed@x.io", "Amy@x.io", "bob@x.io", "Carl@x.io", "dora@x.io", "Émile@x.io"].iter().enumerate() {
        let mut u = user(upn);
        u.city =
            [Some("zürich"), Some("Zagreb"), None, Some("amsterdam"), Some("Berlin"), Some("")][i].map(str::to_owned);
        if i == 2 {
            u.mail = None;
        }
        s.insert_user(&u).await.unwrap();
        users.push(u);
    }
    type UserKey = fn(&User) -> String;
    let user_keys: [(&str, UserKey); 3] = [
        ("mail", |u| u.mail.clone().unwrap_or_default()),
        ("city", |u| u.city.clone().unwrap_or_default()),
        ("userPrincipalName", |u| u.user_principal_name.clone()),
    ];
    for (field, key) in user_keys {
        for descending in [false, true] {
            let mut want = users.clone();
            want.sort_by(|a, b| {
                let o = bytes(&key(a), &key(b)).then_with(|| bytes(&a.id.to_string(), &b.id.to_string()));
                if descending { o.reverse() } else { o }
            });
            let q = format!("$orderby={field}{}", if descending { " desc" } else { "" });
            let page = s.list_users(&query(&USERS, &q)).await.unwrap();
            if page.items.iter().map(|u| u.id).collect::<Vec<_>>() != want.iter().map(|u| u.id).collect::<Vec<_>>() {
                failures.push(format!("users {q}: got {:?}", page.items.iter().map(key).collect::<Vec<_>>()));
            }
        }
    }

    // groups and catalogs: description
    for d in ["beta", "Alpha", "ábc", "Zulu", "alpha"] {
        let mut g = group(d);
        g.description = Some(d.to_owned());
        s.insert_group(&g).await.unwrap();
        let mut c = catalog_named(d);
        c.description = Some(d.to_owned());
        s.insert_catalog(&c, None, &audit()).await.unwrap();
    }
    let groups = s.list_groups(&query(&GROUPS, "$orderby=description")).await.unwrap();
    let got: Vec<String> = groups.items.iter().map(|g| g.description.clone().unwrap_or_default()).collect();
    if got != sorted_bytewise(got.clone()) {
        failures.push(format!("groups $orderby=description: got {got:?}"));
    }
    let catalogs = s.list_catalogs(&query(&CATALOGS, "$orderby=description desc")).await.unwrap();
    let got: Vec<String> = catalogs.items.iter().map(|c| c.description.clone().unwrap_or_default()).collect();
    let mut want = sorted_bytewise(got.clone());
    want.reverse();
    if got != want {
        failures.push(format!("catalogs $orderby=description desc: got {got:?}"));
    }
    assert!(failures.is_empty(), "text order depends on the database:\n{}", failures.join("\n"));
}

fn sorted_bytewise(mut v: Vec<String>) -> Vec<String> {
    v.sort_by(|a, b| bytes(a, b));
    v
}

/// Graph matches text case-insensitively, not only for ASCII: `contains(displayName,'ä')`
/// finds "Ärzte", and an exact-case search must always find its row.
pub async fn non_ascii_text_matches_case_insensitively(s: SqlStore) {
    let c = catalog_named("Unicode");
    s.insert_catalog(&c, None, &audit()).await.unwrap();
    let names = ["Ärzte", "ärzte klinik", "Öl und Gas", "ÉCOLE", "école", "Straße", "ΣΊΣΥΦΟΣ", "plain"];
    let mut rows = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let p = package(c.id, n, Some(&format!("Beschreibung {n}")), at(i as i64));
        s.insert_package(&p, &audit()).await.unwrap();
        rows.push(p);
    }
    let cases: Vec<(String, Pred)> = vec![
        ("contains(displayName,'Ärzte')".into(), Box::new(|p| lower(nm(p)).contains("ärzte"))),
        ("contains(displayName,'ärzte')".into(), Box::new(|p| lower(nm(p)).contains("ärzte"))),
        ("startswith(displayName,'öl')".into(), Box::new(|p| lower(nm(p)).starts_with("öl"))),
        ("startswith(displayName,'ÉCOLE')".into(), Box::new(|p| lower(nm(p)).starts_with("école"))),
        ("endswith(displayName,'SSE')".into(), Box::new(|p| lower(nm(p)).ends_with("sse"))),
        ("contains(displayName,'σίσυ')".into(), Box::new(|p| lower(nm(p)).contains("σίσυ"))),
        ("tolower(displayName) eq 'öl und gas'".into(), Box::new(|p| lower(nm(p)) == "öl und gas")),
        ("tolower(displayName) eq 'école'".into(), Box::new(|p| lower(nm(p)) == "école")),
        ("contains(description,'ÄRZTE')".into(), Box::new(|p| desc(p).is_some_and(|d| lower(d).contains("ärzte")))),
    ];
    let failures = check_filters(&s, &rows, cases).await;
    assert!(failures.is_empty(), "{} filter(s) disagree with the oracle:\n{}", failures.len(), failures.join("\n"));
}

/// The ids `$filter` finds in the collection of `schema`.
async fn found(s: &SqlStore, schema: &'static Schema, filter: &str) -> Vec<String> {
    let q = query(schema, &format!("$filter={}&$top=999", enc(filter)));
    match schema.table {
        "users" => s.list_users(&q).await.unwrap().items.iter().map(|x| x.id.to_string()).collect(),
        "groups" => s.list_groups(&q).await.unwrap().items.iter().map(|x| x.id.to_string()).collect(),
        "catalogs" => s.list_catalogs(&q).await.unwrap().items.iter().map(|x| x.id.to_string()).collect(),
        "access_packages" => s.list_packages(&q).await.unwrap().items.iter().map(|x| x.id.to_string()).collect(),
        "resources" => s.list_resources(&q).await.unwrap().items.iter().map(|x| x.id.to_string()).collect(),
        "resource_roles" => s.list_resource_roles(&q).await.unwrap().items.iter().map(|x| x.id.to_string()).collect(),
        "resource_scopes" => s.list_resource_scopes(&q).await.unwrap().items.iter().map(|x| x.id.to_string()).collect(),
        "assignment_policies" => s.list_policies(&q).await.unwrap().items.iter().map(|x| x.id.to_string()).collect(),
        "connected_organizations" => {
            s.list_connected_organizations(&q).await.unwrap().items.iter().map(|x| x.id.to_string()).collect()
        }
        "review_definitions" => {
            s.list_review_definitions(&q).await.unwrap().items.iter().map(|x| x.id.to_string()).collect()
        }
        other => panic!("no list for {other}"),
    }
}

/// Checks every text property of `schema` named in `values` (OData path → stored value) of
/// the object `id`: `tolower(p) eq` its lowercase form and `contains(p, …)` with its uppercase
/// form find it; the value it had `before` (if any) no longer does.
async fn check_folded(
    s: &SqlStore,
    schema: &'static Schema,
    id: &str,
    values: &[(&str, Option<&str>)],
    failures: &mut Vec<String>,
) {
    for (path, value) in values {
        let field = schema.field(path).unwrap_or_else(|| panic!("{path} on {}", schema.entity));
        assert!(field.fold.is_some(), "{} {path} is text and has a folded column", schema.entity);
        let Some(v) = value else {
            let got = found(s, schema, &format!("{path} eq null and id eq '{id}'")).await;
            if got != vec![id.to_owned()] {
                failures.push(format!("{} {path} eq null: {got:?}", schema.entity));
            }
            continue;
        };
        let lit = |x: String| x.replace('\'', "''");
        // another case of the same text (not for "ß", whose uppercase "SS" folds to "ss")
        let upper = if v.to_uppercase().to_lowercase() == v.to_lowercase() { v.to_uppercase() } else { v.to_string() };
        for filter in [
            format!("tolower({path}) eq '{}'", lit(v.to_lowercase())),
            format!("contains({path},'{}')", lit(upper.clone())),
            format!("startswith({path},'{}')", lit(upper)),
        ] {
            if !found(s, schema, &filter).await.contains(&id.to_owned()) {
                failures.push(format!("{} {filter}: not found", schema.entity));
            }
        }
    }
}

/// Every text property of every collection compares case-insensitively the way Rust lowercases,
/// after an insert and after an update: each write path keeps its folded columns current.
pub async fn every_text_property_folds_on_every_write(s: SqlStore) {
    let mut failures = Vec::new();

    let mut boss = user("Boss@x.io");
    boss.display_name = name("BOSS");
    s.insert_user(&boss).await.unwrap();
    let mut u = user("Émile.ZOË@Straße.example");
    u.display_name = name("ÉMILE ZOË");
    u.mail = Some("Émile@ÄRZTE.example".into());
    u.department = Some("ÄRZTE".into());
    u.job_title = Some("ΣΊΣΥΦΟΣ".into());
    u.company_name = Some("Öl und Gas".into());
    u.employee_id = Some("É-1".into());
    u.city = Some("ZÜRICH".into());
    u.country = Some("ÎLE".into());
    u.manager = Some(boss.id);
    s.insert_user(&u).await.unwrap();
    let values = |u: &User| {
        vec![
            ("displayName", Some(u.display_name.as_str().to_owned())),
            ("userPrincipalName", Some(u.user_principal_name.clone())),
            ("mail", u.mail.clone()),
            ("department", u.department.clone()),
            ("jobTitle", u.job_title.clone()),
            ("companyName", u.company_name.clone()),
            ("employeeId", u.employee_id.clone()),
            ("city", u.city.clone()),
            ("country", u.country.clone()),
        ]
    };
    let check_user = async |u: &User, failures: &mut Vec<String>| {
        let v = values(u);
        let v: Vec<(&str, Option<&str>)> = v.iter().map(|(p, x)| (*p, x.as_deref())).collect();
        check_folded(&s, &USERS, &u.id.to_string(), &v, failures).await;
    };
    check_user(&u, &mut failures).await;
    let mut changed = u.clone();
    changed.display_name = name("ÅSA");
    changed.user_principal_name = "ÅSA@NORD.example".into();
    changed.mail = None;
    changed.department = Some("ÜBERSEE".into());
    changed.job_title = None;
    changed.city = Some("ÅRHUS".into());
    s.update_user(&changed).await.unwrap();
    check_user(&changed, &mut failures).await;
    if !found(&s, &USERS, "contains(department,'ärzte')").await.is_empty() {
        failures.push("users: the folded department was not updated".into());
    }

    let mut g = group("ÄRZTE Team");
    g.mail_nickname = "ÄrzteTeam".into();
    s.insert_group(&g).await.unwrap();
    let group_values = |g: &Group| {
        vec![
            ("displayName", Some(g.display_name.as_str().to_owned())),
            ("description", g.description.clone()),
            ("mailNickname", Some(g.mail_nickname.clone())),
        ]
    };
    let check_group = async |g: &Group, failures: &mut Vec<String>| {
        let v = group_values(g);
        let v: Vec<(&str, Option<&str>)> = v.iter().map(|(p, x)| (*p, x.as_deref())).collect();
        check_folded(&s, &GROUPS, &g.id.to_string(), &v, failures).await;
    };
    check_group(&g, &mut failures).await;
    let mut h = g.clone();
    h.display_name = name("ÖL Team");
    h.description = Some("ÜBER".into());
    h.mail_nickname = "ÖlTeam".into();
    s.update_group(&h).await.unwrap();
    check_group(&h, &mut failures).await;

    let mut c = catalog_named("ÄRZTE Katalog");
    c.description = Some("ÉCOLE".into());
    s.insert_catalog(&c, None, &audit()).await.unwrap();
    let v = [("displayName", Some(c.display_name.as_str())), ("description", c.description.as_deref())];
    check_folded(&s, &CATALOGS, &c.id.to_string(), &v, &mut failures).await;
    let mut c2 = c.clone();
    c2.display_name = name("ÖL Katalog");
    c2.description = None;
    c2.modified_date_time = at(5);
    s.update_catalog(&c2, c.modified_date_time, &audit()).await.unwrap();
    let v = [("displayName", Some(c2.display_name.as_str())), ("description", None)];
    check_folded(&s, &CATALOGS, &c.id.to_string(), &v, &mut failures).await;

    let mut o = crate::external::organization("ÄRZTE Verbund", &["aerzte.example"], 1);
    o.description = Some("ÉCOLE".into());
    s.insert_connected_organization(&o, &audit()).await.unwrap();
    let v = [("displayName", Some(o.display_name.as_str())), ("description", o.description.as_deref())];
    check_folded(&s, &steward_app::query::CONNECTED_ORGANIZATIONS, &o.id.to_string(), &v, &mut failures).await;
    let mut o2 = o.clone();
    o2.display_name = name("ÖL Verbund");
    o2.description = None;
    o2.modified_date_time = at(5);
    s.update_connected_organization(&o2, o.modified_date_time, &audit()).await.unwrap();
    let v = [("displayName", Some(o2.display_name.as_str())), ("description", None)];
    check_folded(&s, &steward_app::query::CONNECTED_ORGANIZATIONS, &o.id.to_string(), &v, &mut failures).await;

    let p = package(c.id, "ÄRZTE Paket", Some("ΣΊΣΥΦΟΣ"), at(1));
    s.insert_package(&p, &audit()).await.unwrap();
    let v = [("displayName", Some(p.display_name.as_str())), ("description", p.description.as_deref())];
    check_folded(&s, &ACCESS_PACKAGES, &p.id.to_string(), &v, &mut failures).await;
    let mut p2 = p.clone();
    p2.display_name = name("ÖL Paket");
    p2.description = Some("ÉTÉ".into());
    p2.modified_date_time = at(7);
    s.update_package(&p2, p.modified_date_time, &audit()).await.unwrap();
    let v = [("displayName", Some(p2.display_name.as_str())), ("description", p2.description.as_deref())];
    check_folded(&s, &ACCESS_PACKAGES, &p.id.to_string(), &v, &mut failures).await;

    let added = catalog::group_resource(c.id, &g, at(2));
    s.add_resource(&added, &add_request(&added), &audit()).await.unwrap();
    let r = &added.resource;
    let v = [
        ("displayName", Some(r.display_name.as_str())),
        ("description", r.description.as_deref()),
        ("originId", Some(r.origin_id.as_str())),
        ("originSystem", Some(r.origin_system.as_str())),
    ];
    check_folded(&s, &RESOURCES, &r.id.to_string(), &v, &mut failures).await;
    for role in &added.roles {
        let v = [
            ("displayName", Some(role.display_name.as_str())),
            ("description", role.description.as_deref()),
            ("originId", Some(role.origin_id.as_str())),
            ("originSystem", Some(role.origin_system.as_str())),
        ];
        check_folded(&s, &RESOURCE_ROLES, &role.id.to_string(), &v, &mut failures).await;
    }
    let sc = &added.scope;
    let v = [
        ("displayName", Some(sc.display_name.as_str())),
        ("description", sc.description.as_deref()),
        ("originId", Some(sc.origin_id.as_str())),
        ("originSystem", Some(sc.origin_system.as_str())),
    ];
    check_folded(&s, &RESOURCE_SCOPES, &sc.id.to_string(), &v, &mut failures).await;

    let settings: PolicySettings =
        serde_json::from_value(serde_json::json!({"allowedTargetScope": "allMemberUsers"})).unwrap();
    let pol = AssignmentPolicy {
        id: PolicyId::new(),
        access_package_id: p.id,
        catalog_id: c.id,
        display_name: name("ÄRZTE Regel"),
        description: Some("ÜBER".into()),
        settings,
        created_date_time: at(1),
        modified_date_time: at(1),
    };
    s.insert_policy(&pol, &audit()).await.unwrap();
    let v = [("displayName", Some(pol.display_name.as_str())), ("description", pol.description.as_deref())];
    check_folded(&s, &POLICIES, &pol.id.to_string(), &v, &mut failures).await;
    let pol2 = AssignmentPolicy {
        display_name: name("ÖL Regel"),
        description: None,
        modified_date_time: at(2),
        ..pol.clone()
    };
    s.update_policy(&pol2, pol.modified_date_time, &audit()).await.unwrap();
    let v = [("displayName", Some(pol2.display_name.as_str())), ("description", None)];
    check_folded(&s, &POLICIES, &pol.id.to_string(), &v, &mut failures).await;

    let mut rd = crate::reviews::definition("ÄRZTE Überprüfung", p.id, None, at(1));
    let batch = Batch { review_definitions: vec![Put::New(rd.clone())], ..Default::default() };
    s.apply(&batch).await.unwrap();
    let query_of = |d: &steward_domain::review::ReviewDefinition| d.input.scope.query();
    let (name_1, query_1) = (rd.input.display_name.clone(), query_of(&rd));
    let v = [("displayName", Some(name_1.as_str())), ("scope/query", Some(query_1.as_str()))];
    check_folded(&s, &REVIEW_DEFINITIONS, &rd.id.to_string(), &v, &mut failures).await;
    let read_at = rd.last_modified_date_time;
    rd.input.display_name = "ÖL Überprüfung".into();
    rd.input.scope.package = None;
    rd.input.scope.catalog = Some(c.id);
    rd.last_modified_date_time = at(9);
    let batch = Batch { review_definitions: vec![Put::Changed { row: rd.clone(), read_at }], ..Default::default() };
    s.apply(&batch).await.unwrap();
    let (name_2, query_2) = (rd.input.display_name.clone(), query_of(&rd));
    let v = [("displayName", Some(name_2.as_str())), ("scope/query", Some(query_2.as_str()))];
    check_folded(&s, &REVIEW_DEFINITIONS, &rd.id.to_string(), &v, &mut failures).await;
    if !found(&s, &REVIEW_DEFINITIONS, "contains(displayName,'ärzte')").await.is_empty() {
        failures.push("review definitions: the folded displayName was not updated".into());
    }

    // every text property of every collection was covered
    let covered: &[(&Schema, usize)] = &[
        (&REVIEW_DEFINITIONS, 2),
        (&USERS, 9),
        (&GROUPS, 3),
        (&CATALOGS, 2),
        (&steward_app::query::CONNECTED_ORGANIZATIONS, 2),
        (&ACCESS_PACKAGES, 2),
        (&RESOURCES, 4),
        (&RESOURCE_ROLES, 4),
        (&RESOURCE_SCOPES, 4),
        (&POLICIES, 2),
    ];
    for schema in steward_app::query::ALL_SCHEMAS {
        let text = schema.fields.iter().filter(|f| f.ty == FieldType::Text).count();
        let checked = covered.iter().find(|(s, _)| std::ptr::eq(*s, *schema)).map_or(0, |(_, n)| *n);
        assert_eq!(text, checked, "{}: every text property is checked above", schema.entity);
    }
    assert!(failures.is_empty(), "{} case-insensitive filter(s) failed:\n{}", failures.len(), failures.join("\n"));
}
