//! HTTP-level tests: the whole router (middleware included) on a fresh SQLite store, called
//! with `oneshot`. One integration binary for the crate.

// Test code: unwrapping is how a test says "this must hold".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod app;
mod audit;
mod authz;
mod bad_input;
mod concurrency;
mod connections;
mod delivery;
mod directory;
mod em;
mod extensions;
mod lifecycle;
mod odata;
mod ops;
mod policies;
mod test_clock;
