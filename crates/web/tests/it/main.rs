//! HTTP-level tests: the whole router (middleware included) on a fresh SQLite store, called
//! with `oneshot`. One integration binary for the crate.

// Test code: unwrapping is how a test says "this must hold".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod app;
mod audit;
mod authz;
mod authz_matrix;
mod bad_input;
mod chat;
mod concurrency;
mod conditions;
mod connections;
mod console_catalogs;
mod console_operations;
mod delivery;
mod directory;
mod em;
mod extensions;
mod external;
mod lifecycle;
mod metrics_endpoint;
mod notify;
mod odata;
mod oidc;
mod ops;
mod pages;
mod policies;
mod portal;
mod review_history;
mod review_support;
mod reviews;
mod scim;
mod signin;
mod test_clock;
