//! The store contract suite: every case runs on SQLite and on PostgreSQL
//! (`sqlite::<case>`, `postgres::<case>`). One integration binary for the crate.

// Test code: unwrapping is how a test says "this must hold".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod cases;
mod lifecycle;
mod support;

macro_rules! contract {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let b = crate::support::sqlite().await;
                    crate::$module::$case(b.store.clone()).await;
                    b.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let b = crate::support::postgres().await;
                    crate::$module::$case(b.store.clone()).await;
                    b.finish().await;
                }
            )*
        }
    };
}

contract!(
    cases::users_round_trip,
    cases::directory_links,
    cases::catalog_deletion_rule,
    cases::resources_add_and_remove,
    cases::packages_role_scopes_and_incompatibility,
    cases::filters_match_an_oracle,
    cases::keyset_paging_is_stable_under_inserts,
    cases::tokens,
    cases::concurrent_links_have_one_winner,
    cases::concurrent_resource_adds_have_one_winner,
    cases::optimistic_updates_never_lose_a_write,
    cases::policies_round_trip,
    lifecycle::two_stage_approval_delivers_into_the_group,
    lifecycle::denial_timeout_and_escalation,
    lifecycle::admin_assignment_schedule_and_expiry,
    lifecycle::separation_of_duties_refuses,
    lifecycle::two_approvers_decide_each_request_once,
    lifecycle::three_workers_expire_each_assignment_once,
    lifecycle::automatic_assignment_follows_the_rule,
);

#[test]
fn migration_trees_match() {
    let sqlite = steward_store::migration_list(false);
    let postgres = steward_store::migration_list(true);
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres, "SQLite and PostgreSQL migrations must have the same versions and names");
}
