//! The `Caller` extractor: `Authorization: Bearer <token>` checked on every API request; and
//! `Admin`, which also requires the global administrator role; `May<T>`, which requires a role
//! allowing task `T` in some catalog (Entra's delegated catalog roles).

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use steward_app::AppError;
use steward_app::auth::{AdminCap, CatalogCap, CatalogScope, CreatorCap, Principal};
use steward_app::packages;
use steward_domain::ids::{AccessPackageId, CatalogId};
use steward_domain::role::Task;

use crate::AppState;
use crate::error::ApiError;

/// The authenticated principal of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let p = authenticate(parts, state).await?;
        // Where the call comes from, for policies' network requirements.
        Ok(Caller(p.seen_from(crate::security::client_ip(parts, state))))
    }
}

/// The principal of a request: a bearer token, else the portal's session cookie.
async fn authenticate(parts: &mut Parts, state: &AppState) -> Result<Principal, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        // A browser signed in to the portal: its session cookie (CSRF rules in `session`).
        if let Some(p) = crate::session::principal(parts, state).await? {
            return Ok(p);
        }
        return Err(
            AppError::Unauthenticated("Access token is empty: send Authorization: Bearer <token>.".into()).into()
        );
    };
    let value = value.to_str().unwrap_or("");
    let token = match value.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => t.trim(),
        _ => {
            return Err(AppError::Unauthenticated("The Authorization header must be 'Bearer <token>'.".into()).into());
        }
    };
    let p = state.auth.authenticate(&state.services, token).await?;
    tracing::debug!(principal = %p.label(), "authenticated");
    Ok(p)
}

/// An authenticated global administrator: the principal and the capability its check handed
/// out. Handlers of administrator-only endpoints take it as their first extractor, so a caller
/// without the role is answered 403 before the query options or the body are even read: a
/// malformed request from someone who may not make it at all learns nothing about it.
#[derive(Debug, Clone)]
pub struct Admin(pub Principal, pub AdminCap);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(p) = Caller::from_request_parts(parts, state).await?;
        let cap = p.admin()?;
        Ok(Admin(p, cap))
    }
}

/// A task a `May` extractor checks for.
pub trait TaskOf: Send + Sync + 'static {
    const TASK: Task;
}

macro_rules! task_marker {
    ($($(#[$doc:meta])* $name:ident => $task:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl TaskOf for $name {
            const TASK: Task = Task::$task;
        }
    )*};
}

task_marker! {
    /// Read catalogs and what they hold.
    Reads => ReadCatalog;
    /// Edit catalogs, their resources and custom extensions.
    Edits => EditCatalog;
    /// Manage access packages and their policies.
    ManagesPackages => ManagePackages;
    /// Manage assignments and requests.
    ManagesAssignments => ManageAssignments;
}

/// A caller allowed `T::TASK` in at least one catalog, with the catalogs where (the scope that
/// reads narrow to). Refused with 403 before the query options or the body are read, like
/// `Admin`; the check against the catalog of the object touched follows in the handler
/// (`CatalogCap`), once that object is known.
#[derive(Debug, Clone)]
pub struct May<T>(pub Principal, pub CatalogScope, pub PhantomData<T>);

impl<T: TaskOf> FromRequestParts<AppState> for May<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(p) = Caller::from_request_parts(parts, state).await?;
        let scope = p.catalogs_for(T::TASK)?;
        Ok(May(p, scope, PhantomData))
    }
}

impl<T: TaskOf> May<T> {
    /// The capability for the task in catalog `id`.
    pub fn in_catalog(&self, id: CatalogId) -> Result<CatalogCap, ApiError> {
        Ok(self.0.in_catalog(id, T::TASK)?)
    }
    /// The capability for the task in the catalog of package `id` (404 when there is none).
    pub async fn in_package(&self, st: &AppState, id: AccessPackageId) -> Result<CatalogCap, ApiError> {
        let p = packages::require_package(&st.services, id).await?;
        self.in_catalog(p.catalog_id)
    }
}

/// A caller who may create catalogs (an administrator or a catalog creator).
#[derive(Debug, Clone)]
pub struct Creator(pub Principal, pub CreatorCap);

impl FromRequestParts<AppState> for Creator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Caller(p) = Caller::from_request_parts(parts, state).await?;
        let cap = p.catalog_creator()?;
        Ok(Creator(p, cap))
    }
}
