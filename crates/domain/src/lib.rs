//! Steward's pure model: typed ids, the directory and entitlement-management entities, their
//! validation rules and the value formats Graph uses on the wire. No I/O, no clock, no async.

pub mod approval;
pub mod assignment;
pub mod audit;
pub mod audit_chain;
pub mod catalog;
pub mod chat;
pub mod condition;
pub mod connected;
pub mod connection;
pub mod csv;
pub mod decision_link;
pub mod directory;
pub mod duration;
pub mod eligibility;
pub mod enums;
pub mod error;
pub mod extension;
pub mod external;
pub mod ids;
pub mod notification;
pub mod package;
pub mod policy;
pub mod request;
pub mod review;
pub mod review_history;
pub mod role;
pub mod rule;
pub mod schedule;
pub mod text;
pub mod time;

pub use error::DomainError;
