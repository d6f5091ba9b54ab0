//! Delivery targets outside Steward's own directory, each an implementation of the app's
//! `Connector` port: PostgreSQL roles (`postgres_roles`). LDAP and SCIM 2.0 follow.

pub mod ident;
pub mod postgres_roles;
