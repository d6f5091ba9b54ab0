//! The store contract suite: every case runs on SQLite and on PostgreSQL, as
//! `sqlite::<case>` and `postgres::<case>`. One integration binary for the crate.
//!
//! PostgreSQL needs `DATABASE_URL`, a superuser URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`; each case gets its own database, created
//! and dropped around it. Without `DATABASE_URL` the PostgreSQL cases fail; they never skip.

// Test code: unwrapping is how a test says "this must hold".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod audit;
mod catalogs;
mod chat;
mod concurrency;
mod connections;
mod directory;
mod extensions;
mod external;
mod fixtures;
mod lifecycle;
mod listing;
mod metrics;
mod notify;
mod packages;
mod paging;
mod requestable;
mod review_history;
mod reviews;
mod roles;
mod rules;
mod scim;
mod sessions;
mod support;
mod upgrade;

/// Instantiates each `module::case` (an `async fn(SqlStore)`) once per backend.
macro_rules! contract {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::support::run(crate::support::Kind::Sqlite, crate::$module::$case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::support::run(crate::support::Kind::Postgres, crate::$module::$case).await;
                }
            )*
        }
    };
}

contract!(
    directory::users_round_trip,
    directory::groups_round_trip,
    directory::group_members_owners_and_sponsors,
    directory::tokens,
    scim::scim_users_round_trip,
    scim::scim_groups_round_trip,
    scim::scim_filters_sorting_and_paging,
    catalogs::catalogs_round_trip,
    roles::role_assignments,
    roles::a_catalog_and_its_creators_owner_role_are_written_together,
    connections::connections_round_trip,
    extensions::custom_extensions_round_trip,
    extensions::callout_instances_and_expiry_search,
    external::connected_organizations_round_trip,
    external::guest_lifecycle_in_the_store,
    sessions::sign_ins_and_sessions,
    catalogs::catalog_deletion_rule,
    catalogs::resources_add_list_and_remove,
    catalogs::resources_need_an_existing_group,
    packages::packages_round_trip,
    packages::role_scopes,
    packages::incompatibilities,
    packages::bulk_reads_for_pages,
    packages::policies_round_trip,
    packages::constraint_violations_are_named_precisely,
    audit::every_admin_write_records_its_event,
    audit::refused_admin_writes_record_nothing,
    audit::an_event_that_cannot_be_written_undoes_the_change,
    audit::chainers_and_writers_side_by_side_chain_every_event_once,
    listing::filters_match_an_oracle,
    listing::ordering_top_skip_and_count,
    listing::text_is_ordered_bytewise_on_every_column,
    listing::non_ascii_text_matches_case_insensitively,
    listing::every_text_property_folds_on_every_write,
    rules::rules_in_sql_agree_with_the_evaluator,
    requestable::requestable_packages_agree_with_the_old_evaluation,
    requestable::requestable_catalogs_are_those_of_the_requestable_packages,
    paging::keyset_paging_visits_every_row_once,
    paging::keyset_paging_is_stable_under_inserts,
    concurrency::concurrent_incompatibility_links_have_one_winner,
    concurrency::concurrent_resource_adds_have_one_winner,
    concurrency::concurrent_users_with_one_upn_have_one_winner,
    concurrency::concurrent_optimistic_updates_have_one_winner,
    concurrency::concurrent_catalog_delete_and_package_insert,
    concurrency::concurrent_resource_removal_and_role_scope_add,
    lifecycle::two_stage_approval_delivers_into_the_group,
    lifecycle::denial_timeout_and_escalation,
    lifecycle::admin_assignment_schedule_and_expiry,
    lifecycle::separation_of_duties_refuses,
    lifecycle::two_approvers_decide_each_request_once,
    lifecycle::three_workers_expire_each_assignment_once,
    lifecycle::a_round_delivers_many_assignments_side_by_side,
    lifecycle::automatic_assignment_follows_the_rule,
    lifecycle::bulk_reads_and_finishing_jobs_together,
    lifecycle::directory_connector_grants_in_bulk,
    lifecycle::a_role_held_through_another_package_is_seen,
    lifecycle::jobs_are_leased_by_id,
    lifecycle::changed_requests_are_written_together,
    reviews::definitions_round_trip,
    reviews::due_definitions_and_ending_instances,
    reviews::opening_an_instance_writes_decisions_and_reviewers,
    reviews::stale_writes_fail_the_whole_batch,
    reviews::decisions_follow_their_instance,
    reviews::deleting_a_definition_takes_its_reviews,
    reviews::sign_ins_only_move_forward,
    reviews::ten_thousand_decisions_in_one_batch,
    review_history::history_reports_round_trip,
    metrics::metrics_snapshot_counts_requests_jobs_and_reviews,
    notify::notices_are_queued_once_as_the_cursor_moves,
    notify::timer_watermarks_move_by_compare_and_set,
    notify::notices_are_leased_sent_retried_and_given_up,
    notify::concurrent_senders_claim_each_notice_once,
    notify::timers_read_ending_assignments_and_due_requests,
    chat::chat_webhooks_round_trip_and_go_with_their_catalog,
);

#[test]
fn migration_trees_match() {
    let sqlite = steward_store::migration_list(false);
    let postgres = steward_store::migration_list(true);
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres, "SQLite and PostgreSQL migrations must have the same versions and descriptions");
}
