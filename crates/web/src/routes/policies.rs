//! Assignment policies, at `/assignmentPolicies` and under `/accessPackages/{id}/assignmentPolicies`:
//! create, list, get, replace with PUT (answers the policy), merge with PATCH, delete.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};
use steward_app::auth::{CatalogScope, Principal};
use steward_app::policies::{self, PolicyInput};
use steward_app::query::POLICIES;
use steward_domain::ids::{AccessPackageId, PolicyId};
use steward_domain::policy::{AssignmentPolicy, PolicySettings, canonicalize_types};
use steward_domain::text::DisplayName;

use crate::AppState;
use crate::api::Api;
use crate::auth::{ManagesPackages, May, Reads};
use crate::body::require_json;
use crate::error::ApiError;
use crate::odata::{Cx, OData, check_shape, count_response, entity_response, if_match, page_response};
use crate::routes::{no_content, path_id};

type R = Result<Response, ApiError>;

const SET: &str = "identityGovernance/entitlementManagement/assignmentPolicies";
const ROOT: &str = "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies";

pub fn api() -> Api {
    Api::new()
        .tag("assignmentPolicies")
        .list(ROOT, list, "List assignment policies")
        .create(ROOT, create, "Create an assignment policy (accessPackage.id names its package)")
        .count(
            "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies/$count",
            count,
            "Count assignment policies",
        )
        .get("/v1.0/identityGovernance/entitlementManagement/assignmentPolicies/{id}", get, "Get an assignment policy")
        .replace(
            "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies/{id}",
            put,
            "Replace an assignment policy",
        )
        .patch(
            "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies/{id}",
            patch,
            "Change some properties of an assignment policy",
        )
        .delete(
            "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies/{id}",
            delete,
            "Delete an assignment policy",
        )
        .list(
            "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/assignmentPolicies",
            list_of_package,
            "List an access package's assignment policies",
        )
        .create(
            "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/assignmentPolicies",
            create_in_package,
            "Create an assignment policy of the access package",
        )
        .get(
            "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/assignmentPolicies/{policy}",
            get_in_package,
            "Get an assignment policy of the access package",
        )
        .replace(
            "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/assignmentPolicies/{policy}",
            put_in_package,
            "Replace an assignment policy of the access package",
        )
        .patch(
            "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/assignmentPolicies/{policy}",
            patch_in_package,
            "Change some properties of an assignment policy of the access package",
        )
        .delete(
            "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/assignmentPolicies/{policy}",
            delete_in_package,
            "Delete an assignment policy of the access package",
        )
}

/// Read-only or navigation properties a client may send back, ignored on write.
const IGNORED: &[&str] =
    &["id", "createdDateTime", "modifiedDateTime", "catalog", "@odata.context", "@odata.etag", "@odata.type"];

/// Turns a policy document into what a client may write, plus the package it names (if any).
pub(crate) fn input_from(v: Value) -> Result<(PolicyInput, Option<AccessPackageId>), ApiError> {
    let Value::Object(mut m) = v else {
        return Err(ApiError::invalid_model(
            "The body must be a JSON object describing an accessPackageAssignmentPolicy.",
        ));
    };
    if let Some(t) = m.get("@odata.type") {
        let ok = t.as_str().is_some_and(|t| {
            t.strip_prefix('#').unwrap_or(t).eq_ignore_ascii_case("microsoft.graph.accessPackageAssignmentPolicy")
        });
        if !ok {
            return Err(ApiError::invalid_model(format!(
                "@odata.type {t} is not valid here; expected '#microsoft.graph.accessPackageAssignmentPolicy'."
            )));
        }
    }
    for k in IGNORED {
        m.remove(*k);
    }
    let display_name = match m.remove("displayName") {
        Some(Value::String(s)) => DisplayName::parse(s)?,
        Some(_) => return Err(ApiError::invalid_model("Property 'displayName' must be a string.")),
        None => {
            return Err(ApiError::invalid_model(
                "Property 'displayName' is required on accessPackageAssignmentPolicy.",
            ));
        }
    };
    let description = match m.remove("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(ApiError::invalid_model("Property 'description' must be a string or null.")),
    };
    let package = match (m.remove("accessPackage"), m.remove("accessPackageId")) {
        (Some(Value::Object(p)), _) => match p.get("id") {
            Some(Value::String(id)) => Some(id.parse::<AccessPackageId>()?),
            _ => None,
        },
        (Some(Value::Null) | None, Some(Value::String(id))) => Some(id.parse::<AccessPackageId>()?),
        (Some(Value::Null) | None, None) => None,
        _ => return Err(ApiError::invalid_model("Property 'accessPackage' must be an object with an 'id'.")),
    };
    let mut rest = Value::Object(m);
    canonicalize_types(&mut rest);
    let settings: PolicySettings = serde_json::from_value(rest)
        .map_err(|e| ApiError::invalid_model(format!("Invalid accessPackageAssignmentPolicy: {e}.")))?;
    Ok((PolicyInput { display_name, description, settings }, package))
}

fn parse_body(headers: &HeaderMap, bytes: &Bytes) -> Result<Value, ApiError> {
    require_json(headers, bytes)?;
    if bytes.is_empty() {
        return Err(ApiError::invalid_model("A JSON body describing an accessPackageAssignmentPolicy is required."));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("The body is not valid JSON: {e}.")))
}

async fn list_scoped(
    st: &AppState,
    p: &Principal,
    scope: &CatalogScope,
    od: &OData,
    pkg: Option<AccessPackageId>,
) -> R {
    check_shape::<AssignmentPolicy>(od.options.select.as_ref(), &od.options.expand)?;
    let mut q = od.list_query(&POLICIES)?;
    if let Some(pkg) = pkg {
        steward_app::packages::get_package(&st.services, scope, pkg).await?;
        q = q.scoped("accessPackage/id", pkg)?;
    }
    let page = policies::list_policies(&st.services, scope, &q).await?;
    page_response(&Cx::new(&st.services, p), od, &q, page, SET).await
}

async fn list(State(st): State<AppState>, May(p, scope, _): May<Reads>, od: OData) -> R {
    list_scoped(&st, &p, &scope, &od, None).await
}

async fn list_of_package(
    State(st): State<AppState>,
    May(p, scope, _): May<Reads>,
    od: OData,
    Path(pkg): Path<String>,
) -> R {
    list_scoped(&st, &p, &scope, &od, Some(path_id(&pkg)?)).await
}

async fn count(State(st): State<AppState>, May(_, scope, _): May<Reads>, od: OData) -> R {
    let mut q = od.list_query(&POLICIES)?;
    (q.count, q.top) = (true, 1);
    Ok(count_response(policies::list_policies(&st.services, &scope, &q).await?.count.unwrap_or(0)))
}

async fn create_scoped(
    st: &AppState,
    may: &May<ManagesPackages>,
    od: &OData,
    pkg: Option<AccessPackageId>,
    headers: &HeaderMap,
    bytes: &Bytes,
) -> R {
    // With the package in the path, the check comes before the body is read.
    if let Some(p) = pkg {
        may.in_package(st, p).await?;
    }
    let (input, named) = input_from(parse_body(headers, bytes)?)?;
    let package = match (pkg, named) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::invalid_model("accessPackage.id differs from the access package in the path."));
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => return Err(ApiError::invalid_model("Property 'accessPackage' with its 'id' is required.")),
    };
    let cap = may.in_package(st, package).await?;
    let created = policies::create_policy(&st.services, cap, package, input).await?;
    entity_response(&Cx::new(&st.services, &may.0), od, &created, StatusCode::CREATED, SET).await
}

async fn create(
    State(st): State<AppState>,
    may: May<ManagesPackages>,
    od: OData,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    create_scoped(&st, &may, &od, None, &headers, &bytes).await
}

async fn create_in_package(
    State(st): State<AppState>,
    may: May<ManagesPackages>,
    od: OData,
    Path(pkg): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    create_scoped(&st, &may, &od, Some(path_id(&pkg)?), &headers, &bytes).await
}

async fn load(st: &AppState, scope: &CatalogScope, pkg: Option<&str>, id: &str) -> Result<AssignmentPolicy, ApiError> {
    let id: PolicyId = path_id(id)?;
    Ok(match pkg {
        Some(pkg) => policies::policy_of_package(&st.services, scope, path_id(pkg)?, id).await?,
        None => policies::get_policy(&st.services, scope, id).await?,
    })
}

async fn get(State(st): State<AppState>, May(p, scope, _): May<Reads>, od: OData, Path(id): Path<String>) -> R {
    let policy = load(&st, &scope, None, &id).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &policy, StatusCode::OK, SET).await
}

async fn get_in_package(
    State(st): State<AppState>,
    May(p, scope, _): May<Reads>,
    od: OData,
    Path((pkg, id)): Path<(String, String)>,
) -> R {
    let policy = load(&st, &scope, Some(&pkg), &id).await?;
    entity_response(&Cx::new(&st.services, &p), &od, &policy, StatusCode::OK, SET).await
}

/// PUT: the body is the whole policy; what it leaves out is reset.
async fn put_scoped(
    st: &AppState,
    may: &May<ManagesPackages>,
    od: &OData,
    pkg: Option<&str>,
    id: &str,
    headers: &HeaderMap,
    bytes: &Bytes,
) -> R {
    let current = load(st, &may.1, pkg, id).await?;
    let cap = may.in_catalog(current.catalog_id)?;
    let (input, named) = input_from(parse_body(headers, bytes)?)?;
    let tag = if_match(headers);
    let updated = policies::replace_policy(&st.services, cap, current.id, input, named, None, tag.as_deref()).await?;
    entity_response(&Cx::new(&st.services, &may.0), od, &updated, StatusCode::OK, SET).await
}

/// PATCH: the body's properties replace the stored ones; the rest stays.
async fn patch_scoped(
    st: &AppState,
    may: &May<ManagesPackages>,
    pkg: Option<&str>,
    id: &str,
    headers: &HeaderMap,
    bytes: &Bytes,
) -> R {
    let current = load(st, &may.1, pkg, id).await?;
    let cap = may.in_catalog(current.catalog_id)?;
    let Value::Object(changes) = parse_body(headers, bytes)? else {
        return Err(ApiError::invalid_model("The body must be a JSON object."));
    };
    let Value::Object(mut merged) = serde_json::to_value(&current).map_err(|e| ApiError::bad_request(e.to_string()))?
    else {
        return Err(ApiError::bad_request("policy is not an object"));
    };
    merge_into(&mut merged, changes);
    let (input, named) = input_from(Value::Object(merged))?;
    let tag = if_match(headers);
    policies::replace_policy(
        &st.services,
        cap,
        current.id,
        input,
        named,
        Some(current.modified_date_time),
        tag.as_deref(),
    )
    .await?;
    Ok(no_content())
}

fn merge_into(target: &mut Map<String, Value>, changes: Map<String, Value>) {
    for (k, v) in changes {
        // Property names match case-insensitively, as everywhere in Graph.
        let key = target.keys().find(|t| t.eq_ignore_ascii_case(&k)).cloned().unwrap_or(k);
        target.insert(key, v);
    }
}

async fn put(
    State(st): State<AppState>,
    may: May<ManagesPackages>,
    od: OData,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    put_scoped(&st, &may, &od, None, &id, &headers, &bytes).await
}

async fn put_in_package(
    State(st): State<AppState>,
    may: May<ManagesPackages>,
    od: OData,
    Path((pkg, id)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    put_scoped(&st, &may, &od, Some(&pkg), &id, &headers, &bytes).await
}

async fn patch(
    State(st): State<AppState>,
    may: May<ManagesPackages>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    patch_scoped(&st, &may, None, &id, &headers, &bytes).await
}

async fn patch_in_package(
    State(st): State<AppState>,
    may: May<ManagesPackages>,
    Path((pkg, id)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    patch_scoped(&st, &may, Some(&pkg), &id, &headers, &bytes).await
}

async fn delete_scoped(
    st: &AppState,
    may: &May<ManagesPackages>,
    pkg: Option<&str>,
    id: &str,
    headers: &HeaderMap,
) -> R {
    let current = load(st, &may.1, pkg, id).await?;
    let cap = may.in_catalog(current.catalog_id)?;
    policies::delete_policy(&st.services, cap, current.id, if_match(headers).as_deref()).await?;
    Ok(no_content())
}

async fn delete(
    State(st): State<AppState>,
    may: May<ManagesPackages>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> R {
    delete_scoped(&st, &may, None, &id, &headers).await
}

async fn delete_in_package(
    State(st): State<AppState>,
    may: May<ManagesPackages>,
    Path((pkg, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> R {
    delete_scoped(&st, &may, Some(&pkg), &id, &headers).await
}
