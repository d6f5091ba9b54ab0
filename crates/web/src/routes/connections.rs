//! `/v1.0/steward/connections`: administrators register connections to delivery targets,
//! change, test and delete them, and list what a target offers. Credentials go in and are
//! never sent back: a connection says only whether it has them. Not part of Graph.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use steward_app::connections::{self, ConnectionPatch, Credentials, NewConnection};
use steward_domain::connection::{self as domain, Connection, Reconciliation};
use steward_domain::ids::ConnectionId;

use crate::AppState;
use crate::api::Api;
use crate::auth::Admin;
use crate::body::Body;
use crate::error::ApiError;
use crate::odata::{if_match, json_response};
use crate::routes::{no_body, no_content, path_id};

type R = Result<Response, ApiError>;

const READ_ONLY: &[&str] = &["id", "hasCredentials", "createdDateTime", "modifiedDateTime", "@odata.type"];

pub fn api() -> Api {
    Api::new()
        .tag("steward")
        .get("/v1.0/steward/connections", list, "List connections to delivery targets (never their credentials)")
        .create("/v1.0/steward/connections", create, "Register a connection: kind, settings and credentials")
        .get("/v1.0/steward/connections/{id}", get, "Get a connection")
        .patch(
            "/v1.0/steward/connections/{id}",
            update,
            "Change a connection (credentials: replace, or null to remove)",
        )
        .delete("/v1.0/steward/connections/{id}", delete, "Delete a connection no catalog holds a resource from")
        .action("/v1.0/steward/connections/{id}/test", test, "Check that the target answers and lets Steward act")
        .get("/v1.0/steward/connections/{id}/discover", discover, "The resources and roles the target offers")
        .action(
            "/v1.0/steward/connections/{id}/reconcile",
            reconcile,
            "Compare the target with what Steward granted there now: restore what was taken away, report what nobody granted (remove it if authoritative)",
        )
        .get(
            "/v1.0/steward/connections/{id}/drift",
            drift,
            "Holders found in the target that nobody granted through Steward, by role, with when each was first and last seen",
        )
}

fn connection_json(c: &Connection) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("originSystem".into(), Value::String(domain::origin_system(c.kind).to_owned()));
    }
    v
}

fn reconciliation(b: &mut Body) -> Result<Option<Reconciliation>, ApiError> {
    b.take("reconciliation").map(|v| Reconciliation::parse(&v).map_err(ApiError::from)).transpose()
}

fn credentials(b: &mut Body) -> Result<Option<Option<Credentials>>, ApiError> {
    Ok(match b.take("credentials") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => Some(Some(Credentials::from_json(&v)?)),
    })
}

async fn list(State(st): State<AppState>, Admin(_, cap): Admin) -> R {
    let all = connections::list_connections(&st.services, cap).await?;
    Ok(json_response(StatusCode::OK, json!({ "value": all.iter().map(connection_json).collect::<Vec<_>>() })))
}

async fn create(State(st): State<AppState>, Admin(_, cap): Admin, headers: HeaderMap, bytes: Bytes) -> R {
    let mut b = Body::parse(&headers, &bytes, "connection")?;
    let display_name = b.req_name()?;
    let description = b.opt_str("description")?;
    let kind =
        b.opt_enum("kind")?.ok_or_else(|| ApiError::bad_request("kind is required (postgreSqlRoles, ldap, scim)."))?;
    let settings = b.take("settings").ok_or_else(|| ApiError::bad_request("settings is required."))?;
    let credentials = credentials(&mut b)?.flatten();
    let reconciliation = reconciliation(&mut b)?.unwrap_or_default();
    b.ignore(READ_ONLY);
    b.ignore(&["originSystem"]);
    b.finish()?;
    let c = connections::create_connection(
        &st.services,
        cap,
        NewConnection { display_name, description, kind, settings, credentials, reconciliation },
    )
    .await?;
    Ok(json_response(StatusCode::CREATED, connection_json(&c)))
}

async fn get(State(st): State<AppState>, Admin(_, cap): Admin, Path(id): Path<String>) -> R {
    let c = connections::get_connection(&st.services, cap, path_id(&id)?).await?;
    Ok(json_response(StatusCode::OK, connection_json(&c)))
}

async fn update(
    State(st): State<AppState>,
    Admin(_, cap): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let id: ConnectionId = path_id(&id)?;
    let mut b = Body::parse(&headers, &bytes, "connection")?;
    let patch = ConnectionPatch {
        display_name: b.opt_name()?,
        description: b.patch_str("description")?,
        settings: b.take("settings"),
        credentials: credentials(&mut b)?,
        reconciliation: reconciliation(&mut b)?,
    };
    if b.take("kind").is_some() {
        return Err(ApiError::bad_request("kind cannot be changed; create another connection instead."));
    }
    b.ignore(READ_ONLY);
    b.ignore(&["originSystem"]);
    b.finish()?;
    connections::update_connection(&st.services, cap, id, patch, if_match(&headers).as_deref()).await?;
    Ok(no_content())
}

async fn delete(State(st): State<AppState>, Admin(_, cap): Admin, Path(id): Path<String>, headers: HeaderMap) -> R {
    connections::delete_connection(&st.services, cap, path_id(&id)?, if_match(&headers).as_deref()).await?;
    Ok(no_content())
}

async fn test(
    State(st): State<AppState>,
    Admin(_, cap): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    no_body(&headers, &bytes)?;
    let outcome = connections::test_connection(&st.services, cap, path_id(&id)?).await?;
    Ok(json_response(StatusCode::OK, json!({ "succeeded": outcome.succeeded, "message": outcome.message })))
}

async fn discover(State(st): State<AppState>, Admin(_, cap): Admin, Path(id): Path<String>) -> R {
    let id: ConnectionId = path_id(&id)?;
    let (c, found) = connections::discover(&st.services, cap, id).await?;
    let origin_system = domain::origin_system(c.kind);
    let value: Vec<Value> = found
        .iter()
        .map(|r| {
            json!({
                "originId": r.origin_id,
                "originSystem": origin_system,
                "displayName": r.display_name,
                "roles": r.roles.iter().map(|(id, name)| json!({"originId": id, "displayName": name})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, json!({ "value": value })))
}

async fn reconcile(
    State(st): State<AppState>,
    Admin(_, cap): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    no_body(&headers, &bytes)?;
    let r = steward_app::reconcile::reconcile_now(&st.services, cap, path_id(&id)?).await?;
    Ok(json_response(
        StatusCode::OK,
        json!({ "roles": r.roles, "restored": r.restored, "drift": r.drift, "removed": r.removed, "failures": r.failures }),
    ))
}

async fn drift(State(st): State<AppState>, Admin(_, cap): Admin, Path(id): Path<String>) -> R {
    let id: ConnectionId = path_id(&id)?;
    connections::get_connection(&st.services, cap, id).await?;
    let store = &st.services.store;
    let rows = store.drift(id).await.map_err(steward_app::AppError::from)?;
    let mut roles: Vec<_> = rows.iter().map(|d| d.resource_role_id).collect();
    roles.dedup();
    let grants = store.role_grants(&roles).await.map_err(steward_app::AppError::from)?;
    let value: Vec<Value> = rows
        .iter()
        .map(|d| {
            let g = grants.iter().find(|g| g.role_id == d.resource_role_id);
            json!({
                "resourceRole": {"id": d.resource_role_id.to_string(), "displayName": g.map(|g| g.role_name.as_str())},
                "resource": {"displayName": g.map(|g| g.resource_name.as_str()), "originSystem": g.map(|g| g.origin_system.as_str())},
                "holder": d.holder,
                "firstSeenDateTime": steward_domain::time::format_datetime(d.first_seen),
                "lastSeenDateTime": steward_domain::time::format_datetime(d.last_seen),
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, json!({ "value": value })))
}
