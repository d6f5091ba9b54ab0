//! The store contract suite: every case runs on SQLite and on PostgreSQL
//! (`sqlite::<case>`, `postgres::<case>`). One integration binary for the crate.

// Test code: unwrapping is how a test says "this must hold".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod cases;
mod support;

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let b = crate::support::sqlite().await;
                    crate::cases::$case(b.store.clone()).await;
                    b.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let b = crate::support::postgres().await;
                    crate::cases::$case(b.store.clone()).await;
                    b.finish().await;
                }
            )*
        }
    };
}

contract!(
    users_round_trip,
    directory_links,
    catalog_deletion_rule,
    resources_add_and_remove,
    packages_role_scopes_and_incompatibility,
    filters_match_an_oracle,
    keyset_paging_is_stable_under_inserts,
    tokens,
    concurrent_links_have_one_winner,
    concurrent_resource_adds_have_one_winner,
    optimistic_updates_never_lose_a_write,
    policies_round_trip,
);

#[test]
fn migration_trees_match() {
    let sqlite = steward_store::migration_list(false);
    let postgres = steward_store::migration_list(true);
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres, "SQLite and PostgreSQL migrations must have the same versions and names");
}
