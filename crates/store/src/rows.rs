//! Row decoders: each entity's column list and how its cells become the domain type.

use std::str::FromStr;

use steward_app::StoreError;
use steward_app::auth::ApiToken;
use steward_domain::catalog::{Catalog, Resource, ResourceRequest, ResourceRole, ResourceScope};
use steward_domain::connection::Connection;
use steward_domain::directory::{Group, User};
use steward_domain::package::{AccessPackage, ResourceRoleScope};
use steward_domain::policy::AssignmentPolicy;
use steward_domain::text::DisplayName;
use steward_domain::time::from_micros;

use crate::driver::{Cell, Row};

/// Reads a row's cells in order.
pub(crate) struct Cells<'a> {
    row: &'a Row,
    i: usize,
}

fn corrupt(what: &str, i: usize) -> StoreError {
    StoreError::Internal(format!("unexpected value in column {i}: expected {what}"))
}

impl<'a> Cells<'a> {
    pub fn new(row: &'a Row) -> Self {
        Self { row, i: 0 }
    }
    fn next(&mut self) -> &'a Cell {
        let c = self.row.0.get(self.i).unwrap_or(&Cell::Null);
        self.i += 1;
        c
    }
    pub fn opt_text(&mut self) -> Result<Option<String>, StoreError> {
        match self.next() {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s.clone())),
            _ => Err(corrupt("text", self.i - 1)),
        }
    }
    pub fn text(&mut self) -> Result<String, StoreError> {
        self.opt_text()?.ok_or_else(|| corrupt("text", self.i - 1))
    }
    pub fn opt_int(&mut self) -> Result<Option<i64>, StoreError> {
        match self.next() {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(*v)),
            _ => Err(corrupt("integer", self.i - 1)),
        }
    }
    pub fn int(&mut self) -> Result<i64, StoreError> {
        self.opt_int()?.ok_or_else(|| corrupt("integer", self.i - 1))
    }
    pub fn bool(&mut self) -> Result<bool, StoreError> {
        match self.next() {
            Cell::Bool(b) => Ok(*b),
            Cell::Int(v) => Ok(*v != 0),
            _ => Err(corrupt("boolean", self.i - 1)),
        }
    }
    pub fn opt_bool(&mut self) -> Result<Option<bool>, StoreError> {
        match self.next() {
            Cell::Null => Ok(None),
            Cell::Bool(b) => Ok(Some(*b)),
            Cell::Int(v) => Ok(Some(*v != 0)),
            _ => Err(corrupt("boolean", self.i - 1)),
        }
    }
    pub fn parse<T: FromStr>(&mut self) -> Result<T, StoreError> {
        let s = self.text()?;
        s.parse().map_err(|_| StoreError::Internal(format!("unparsable stored value '{s}'")))
    }
    pub fn opt_parse<T: FromStr>(&mut self) -> Result<Option<T>, StoreError> {
        self.opt_text()?
            .map(|s| s.parse().map_err(|_| StoreError::Internal(format!("unparsable stored value '{s}'"))))
            .transpose()
    }
    pub fn name(&mut self) -> Result<DisplayName, StoreError> {
        let s = self.text()?;
        DisplayName::parse(s).map_err(|e| StoreError::Internal(e.to_string()))
    }
    pub fn time(&mut self) -> Result<jiff::Timestamp, StoreError> {
        Ok(from_micros(self.int()?))
    }
    pub fn opt_time(&mut self) -> Result<Option<jiff::Timestamp>, StoreError> {
        match self.next() {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(from_micros(*v))),
            _ => Err(corrupt("integer", self.i - 1)),
        }
    }
    /// The cells after the entity's own: the sort keys of a page query.
    pub fn rest(&self) -> &'a [Cell] {
        self.row.0.get(self.i..).unwrap_or(&[])
    }
}

/// An entity the store can read from a row.
pub(crate) trait FromRow: Sized {
    const COLUMNS: &'static str;
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError>;
}

impl FromRow for User {
    const COLUMNS: &'static str = "id, display_name, user_principal_name, mail, user_type, account_enabled, department, \
         job_title, company_name, employee_id, city, country, manager_id, created_at";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(User {
            id: c.parse()?,
            display_name: c.name()?,
            user_principal_name: c.text()?,
            mail: c.opt_text()?,
            user_type: c.parse()?,
            account_enabled: c.bool()?,
            department: c.opt_text()?,
            job_title: c.opt_text()?,
            company_name: c.opt_text()?,
            employee_id: c.opt_text()?,
            city: c.opt_text()?,
            country: c.opt_text()?,
            manager: c.opt_parse()?,
            created_date_time: c.time()?,
        })
    }
}

impl FromRow for Group {
    const COLUMNS: &'static str =
        "id, display_name, description, mail_nickname, mail_enabled, security_enabled, created_at";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(Group {
            id: c.parse()?,
            display_name: c.name()?,
            description: c.opt_text()?,
            mail_nickname: c.text()?,
            mail_enabled: c.bool()?,
            security_enabled: c.bool()?,
            created_date_time: c.time()?,
        })
    }
}

impl FromRow for Catalog {
    const COLUMNS: &'static str =
        "id, display_name, description, catalog_type, state, is_externally_visible, created_at, modified_at";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(Catalog {
            id: c.parse()?,
            display_name: c.name()?,
            description: c.opt_text()?,
            catalog_type: c.parse()?,
            state: c.parse()?,
            is_externally_visible: c.bool()?,
            created_date_time: c.time()?,
            modified_date_time: c.time()?,
        })
    }
}

impl FromRow for Resource {
    const COLUMNS: &'static str =
        "id, catalog_id, display_name, description, origin_id, origin_system, created_at, modified_at";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(Resource {
            id: c.parse()?,
            catalog_id: c.parse()?,
            display_name: c.text()?,
            description: c.opt_text()?,
            origin_id: c.text()?,
            origin_system: c.text()?,
            created_date_time: c.time()?,
            modified_date_time: c.time()?,
        })
    }
}

impl FromRow for ResourceRole {
    const COLUMNS: &'static str = "id, resource_id, display_name, description, origin_id, origin_system";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(ResourceRole {
            id: c.parse()?,
            resource_id: c.parse()?,
            display_name: c.text()?,
            description: c.opt_text()?,
            origin_id: c.text()?,
            origin_system: c.text()?,
        })
    }
}

impl FromRow for ResourceScope {
    const COLUMNS: &'static str = "id, resource_id, display_name, description, origin_id, origin_system, is_root_scope";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(ResourceScope {
            id: c.parse()?,
            resource_id: c.parse()?,
            display_name: c.text()?,
            description: c.opt_text()?,
            origin_id: c.text()?,
            origin_system: c.text()?,
            is_root_scope: c.bool()?,
        })
    }
}

impl FromRow for ResourceRequest {
    const COLUMNS: &'static str = "id, catalog_id, resource_id, request_type, state, created_at";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(ResourceRequest {
            id: c.parse()?,
            catalog_id: c.parse()?,
            resource_id: c.opt_parse()?,
            request_type: c.parse()?,
            state: c.parse()?,
            created_date_time: c.time()?,
        })
    }
}

impl FromRow for AccessPackage {
    const COLUMNS: &'static str = "id, catalog_id, display_name, description, is_hidden, created_at, modified_at";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(AccessPackage {
            id: c.parse()?,
            catalog_id: c.parse()?,
            display_name: c.name()?,
            description: c.opt_text()?,
            is_hidden: c.bool()?,
            created_date_time: c.time()?,
            modified_date_time: c.time()?,
        })
    }
}

impl FromRow for ResourceRoleScope {
    const COLUMNS: &'static str = "id, access_package_id, role_id, scope_id, created_at";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(ResourceRoleScope {
            id: c.parse()?,
            access_package_id: c.parse()?,
            role_id: c.parse()?,
            scope_id: c.parse()?,
            created_date_time: c.time()?,
        })
    }
}

impl FromRow for AssignmentPolicy {
    const COLUMNS: &'static str =
        "id, access_package_id, catalog_id, display_name, description, settings, created_at, modified_at";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(AssignmentPolicy {
            id: c.parse()?,
            access_package_id: c.parse()?,
            catalog_id: c.parse()?,
            display_name: c.name()?,
            description: c.opt_text()?,
            settings: policy_settings(&c.text()?)?,
            created_date_time: c.time()?,
            modified_date_time: c.time()?,
        })
    }
}

/// A policy's stored settings. Before custom extensions existed (migration 0008) their
/// `customExtensionStageSettings` were kept as any JSON and named no extension, so settings
/// that only fail on those are read without them.
fn policy_settings(text: &str) -> Result<steward_domain::policy::PolicySettings, StoreError> {
    let bad = |e: serde_json::Error| StoreError::Internal(format!("stored policy settings do not parse: {e}"));
    match serde_json::from_str(text) {
        Ok(s) => Ok(s),
        Err(first) => {
            let mut v: serde_json::Value = serde_json::from_str(text).map_err(bad)?;
            match v.as_object_mut().and_then(|o| o.remove("customExtensionStageSettings")) {
                Some(old) => {
                    tracing::warn!(settings = %old, "ignoring stage settings stored before custom extensions existed");
                    serde_json::from_value(v).map_err(bad)
                }
                None => Err(bad(first)),
            }
        }
    }
}

impl FromRow for ApiToken {
    const COLUMNS: &'static str = "id, name, hash, user_id, created_at, expires_at, role_id, app_scope";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        let (id, name, hash, user_id, created_at, expires_at) =
            (c.parse()?, c.text()?, c.text()?, c.opt_parse()?, c.time()?, c.opt_time()?);
        let role = match (c.opt_parse()?, c.opt_parse()?) {
            (Some(role), Some(scope)) => Some((role, scope)),
            _ => None,
        };
        Ok(ApiToken { id, name, hash, user_id, role, created_at, expires_at })
    }
}

impl FromRow for Connection {
    const COLUMNS: &'static str = "id, display_name, description, kind, settings, credentials IS NOT NULL, created_at, modified_at, \
         reconciliation";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(Connection {
            id: c.parse()?,
            display_name: c.name()?,
            description: c.opt_text()?,
            kind: c.parse()?,
            settings: serde_json::from_str(&c.text()?)
                .map_err(|e| StoreError::Internal(format!("stored connection settings do not parse: {e}")))?,
            has_credentials: c.bool()?,
            created_date_time: c.time()?,
            modified_date_time: c.time()?,
            reconciliation: {
                let v: serde_json::Value = serde_json::from_str(&c.text()?)
                    .map_err(|e| StoreError::Internal(format!("stored reconciliation settings do not parse: {e}")))?;
                steward_domain::connection::Reconciliation::parse(&v).map_err(StoreError::Rule)?
            },
        })
    }
}

impl FromRow for steward_domain::extension::CustomExtension {
    const COLUMNS: &'static str = "id, catalog_id, kind, display_name, description, settings, created_at, modified_at";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(steward_domain::extension::CustomExtension {
            id: c.parse()?,
            catalog_id: c.parse()?,
            kind: c.parse()?,
            display_name: c.name()?,
            description: c.opt_text()?,
            config: serde_json::from_str(&c.text()?)
                .map_err(|e| StoreError::Internal(format!("stored custom extension settings do not parse: {e}")))?,
            created_date_time: c.time()?,
            last_modified_date_time: c.time()?,
        })
    }
}

impl FromRow for steward_domain::extension::CalloutInstance {
    const COLUMNS: &'static str =
        "id, extension_id, request_id, assignment_id, stage, status, detail, created_at, modified_at";
    fn from_cells(c: &mut Cells<'_>) -> Result<Self, StoreError> {
        Ok(steward_domain::extension::CalloutInstance {
            id: c.parse()?,
            extension_id: c.parse()?,
            request_id: c.opt_parse()?,
            assignment_id: c.opt_parse()?,
            stage: c.parse()?,
            status: c.parse()?,
            detail: c.opt_text()?,
            created_date_time: c.time()?,
            modified_date_time: c.time()?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::policy_settings;

    #[test]
    fn stage_settings_stored_before_custom_extensions_are_read_without_them() {
        let old = r#"{"allowedTargetScope": "allMemberUsers", "customExtensionStageSettings": [{"anything": 1}]}"#;
        let s = policy_settings(old).unwrap();
        assert!(s.custom_extension_stage_settings.is_empty());
        assert!(policy_settings(r#"{"allowedTargetScope": 7}"#).is_err(), "other damage is still an error");
        assert!(policy_settings("not json").is_err());
    }
}
