//! `/v1.0/roleManagement/entitlementManagement`: the built-in role definitions and the role
//! assignments of delegated administration (Graph's `unifiedRoleDefinition` and
//! `unifiedRoleAssignment`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use steward_app::ports::RoleAssignmentFilter;
use steward_app::{directory, roles};
use steward_domain::ids::RoleAssignmentId;
use steward_domain::role::{AppScope, Role, RoleAssignment};
use steward_odata::{CmpOp, Expr, Literal};

use crate::AppState;
use crate::api::Api;
use crate::auth::Caller;
use crate::body::Body;
use crate::error::ApiError;
use crate::odata::{OData, json_response};
use crate::routes::{no_content, path_id};

type R = Result<Response, ApiError>;

const RM: &str = "roleManagement/entitlementManagement";

pub fn api() -> Api {
    Api::new()
        .tag("roleManagement")
        .list(
            "/v1.0/roleManagement/entitlementManagement/roleDefinitions",
            list_definitions,
            "List the entitlement-management role definitions",
        )
        .get("/v1.0/roleManagement/entitlementManagement/roleDefinitions/{id}", get_definition, "Get a role definition")
        .list(
            "/v1.0/roleManagement/entitlementManagement/roleAssignments",
            list_assignments,
            "List role assignments (filter on principalId, roleDefinitionId, appScopeId)",
        )
        .create(
            "/v1.0/roleManagement/entitlementManagement/roleAssignments",
            create_assignment,
            "Give a user a role, on the whole service or one catalog",
        )
        .get("/v1.0/roleManagement/entitlementManagement/roleAssignments/{id}", get_assignment, "Get a role assignment")
        .delete(
            "/v1.0/roleManagement/entitlementManagement/roleAssignments/{id}",
            delete_assignment,
            "Remove a role assignment",
        )
}

fn definition_json(r: Role) -> Value {
    json!({
        "id": r.id(),
        "displayName": r.display_name(),
        "description": r.description(),
        "isBuiltIn": true,
        "isEnabled": true,
        "templateId": r.id(),
        "version": "1.0",
        "rolePermissions": [{"allowedResourceActions": r.resource_actions(), "condition": null}],
    })
}

fn assignment_json(a: &RoleAssignment) -> Value {
    json!({
        "id": a.id.to_string(),
        "principalId": a.principal.to_string(),
        "roleDefinitionId": a.role.id(),
        "appScopeId": a.scope.to_string(),
        "directoryScopeId": "/",
    })
}

/// Only `$expand` of `roleDefinition` and `principal` (and `$select`/`$filter` below) apply to
/// these small collections; paging options are accepted and everything fits in one page.
fn expansions(od: &OData) -> Result<(bool, bool), ApiError> {
    let (mut definition, mut principal) = (false, false);
    for item in &od.options.expand {
        match item.path.as_str() {
            p if p.eq_ignore_ascii_case("roleDefinition") => definition = true,
            p if p.eq_ignore_ascii_case("principal") => principal = true,
            other => {
                return Err(ApiError::bad_request(format!(
                    "Navigation property '{other}' cannot be expanded; use roleDefinition or principal."
                )));
            }
        }
    }
    Ok((definition, principal))
}

async fn render(
    st: &AppState,
    caller: &steward_app::auth::Principal,
    od: &OData,
    a: &RoleAssignment,
) -> Result<Value, ApiError> {
    let (definition, principal) = expansions(od)?;
    let mut v = assignment_json(a);
    if let Value::Object(m) = &mut v {
        if definition {
            m.insert("roleDefinition".into(), definition_json(a.role));
        }
        if principal {
            let user = directory::get_user(&st.services, caller.directory_reader()?, a.principal).await.ok();
            let value = match user {
                Some(u) => json!({
                    "@odata.type": "#microsoft.graph.user",
                    "id": u.id.to_string(),
                    "displayName": u.display_name.as_str(),
                    "userPrincipalName": u.user_principal_name,
                }),
                None => Value::Null,
            };
            m.insert("principal".into(), value);
        }
    }
    Ok(v)
}

async fn list_definitions(Caller(_): Caller, od: OData) -> R {
    let value: Vec<Value> = Role::ALL.into_iter().map(definition_json).collect();
    Ok(json_response(
        StatusCode::OK,
        json!({"@odata.context": format!("{}/v1.0/$metadata#{RM}/roleDefinitions", od.base()), "value": value}),
    ))
}

async fn get_definition(Caller(_): Caller, od: OData, Path(id): Path<String>) -> R {
    let id = id.trim_start_matches("('").trim_end_matches("')");
    let role: Role = id.parse().map_err(|_| ApiError::not_found(format!("role definition '{id}' was not found.")))?;
    let mut v = definition_json(role);
    if let Value::Object(m) = &mut v {
        m.insert("@odata.context".into(), json!(format!("{}/v1.0/$metadata#{RM}/roleDefinitions/$entity", od.base())));
    }
    Ok(json_response(StatusCode::OK, v))
}

/// `$filter` on principalId, roleDefinitionId and appScopeId, with `eq`, joined by `and`;
/// `None` when it names a role that does not exist, which nothing matches.
fn filter_of(expr: Option<&Expr>) -> Result<Option<RoleAssignmentFilter>, ApiError> {
    let mut f = RoleAssignmentFilter::default();
    let Some(expr) = expr else { return Ok(Some(f)) };
    let mut nothing = false;
    let terms = match expr {
        Expr::And(all) => all.iter().collect::<Vec<_>>(),
        one => vec![one],
    };
    let unsupported = || {
        ApiError::bad_request(
            "$filter on role assignments supports principalId, roleDefinitionId and appScopeId compared with eq, \
             joined by and.",
        )
    };
    for t in terms {
        let Expr::Compare { op: CmpOp::Eq, left, right } = t else { return Err(unsupported()) };
        let (Expr::Property(path), Expr::Literal(Literal::String(v) | Literal::Guid(v))) = (&**left, &**right) else {
            return Err(unsupported());
        };
        match path.as_slice() {
            [p] if p.eq_ignore_ascii_case("principalId") => f.principal = Some(path_id(v)?),
            [p] if p.eq_ignore_ascii_case("roleDefinitionId") => {
                // An id that names no role matches nothing rather than failing.
                match v.parse::<Role>() {
                    Ok(r) => f.role = Some(r),
                    Err(_) => nothing = true,
                }
            }
            [p] if p.eq_ignore_ascii_case("appScopeId") => {
                f.scope = Some(v.parse::<AppScope>().map_err(|e| ApiError::bad_request(e.to_string()))?);
            }
            _ => return Err(unsupported()),
        }
    }
    Ok((!nothing).then_some(f))
}

async fn list_assignments(State(st): State<AppState>, Caller(p): Caller, od: OData) -> R {
    let found = match filter_of(od.options.filter.as_ref())? {
        Some(filter) => roles::list(&st.services, &p, filter).await?,
        None => Vec::new(),
    };
    let mut value = Vec::with_capacity(found.len());
    for a in &found {
        value.push(render(&st, &p, &od, a).await?);
    }
    let mut body =
        json!({"@odata.context": format!("{}/v1.0/$metadata#{RM}/roleAssignments", od.base()), "value": value});
    if od.options.count
        && let Value::Object(m) = &mut body
    {
        m.insert("@odata.count".into(), json!(found.len()));
    }
    Ok(json_response(StatusCode::OK, body))
}

async fn create_assignment(
    State(st): State<AppState>,
    Caller(p): Caller,
    od: OData,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let mut b = Body::parse(&headers, &bytes, "unifiedRoleAssignment")?;
    let principal = b.req_str("principalId")?;
    let role: Role = b
        .opt_enum("roleDefinitionId")?
        .ok_or_else(|| ApiError::invalid_model("Property 'roleDefinitionId' is required."))?;
    let scope: AppScope = b.opt_enum("appScopeId")?.unwrap_or(AppScope::Tenant);
    if let Some(d) = b.opt_str("directoryScopeId")?
        && d != "/"
    {
        return Err(ApiError::invalid_model(
            "directoryScopeId must be '/' (or left out) for entitlement management roles.",
        ));
    }
    b.ignore(&["id", "@odata.type"]);
    b.finish()?;
    // The check comes before anything is looked up: a caller who may not delegate here learns
    // nothing about the user named.
    let cap = roles::delegate_cap(&p, scope)?;
    let user = directory::find_user(&st.services, p.directory_reader()?, &principal).await?;
    let a = roles::assign(&st.services, cap, user.id, role, scope).await?;
    let mut v = render(&st, &p, &od, &a).await?;
    if let Value::Object(m) = &mut v {
        m.insert("@odata.context".into(), json!(format!("{}/v1.0/$metadata#{RM}/roleAssignments/$entity", od.base())));
    }
    Ok(json_response(StatusCode::CREATED, v))
}

async fn get_assignment(State(st): State<AppState>, Caller(p): Caller, od: OData, Path(id): Path<String>) -> R {
    let id: RoleAssignmentId = path_id(&id)?;
    let a = roles::get(&st.services, &p, id).await?;
    let mut v = render(&st, &p, &od, &a).await?;
    if let Value::Object(m) = &mut v {
        m.insert("@odata.context".into(), json!(format!("{}/v1.0/$metadata#{RM}/roleAssignments/$entity", od.base())));
    }
    Ok(json_response(StatusCode::OK, v))
}

async fn delete_assignment(State(st): State<AppState>, Caller(p): Caller, Path(id): Path<String>) -> R {
    roles::remove(&st.services, &p, path_id(&id)?).await?;
    Ok(no_content())
}
