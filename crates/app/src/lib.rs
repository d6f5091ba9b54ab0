//! Steward's use cases behind ports: the `Store` and `Clock` traits, the query schema of every
//! collection, authentication of API tokens and the capability values that authorize actions.
//! Knows nothing of SQL or HTTP.

pub mod auth;
pub mod catalogs;
pub mod directory;
pub mod error;
pub mod packages;
pub mod ports;
pub mod query;

use std::sync::Arc;

pub use error::AppError;
pub use ports::{Clock, Store, StoreError, SystemClock};

/// Everything a request handler needs: the ports, shared and cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
}

impl Services {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }
}
