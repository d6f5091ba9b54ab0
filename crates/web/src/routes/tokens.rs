//! `/v1.0/steward/apiTokens`: administrators create (shown once), list and revoke API tokens.
//! Not part of Graph, so it lives under Steward's own namespace.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use steward_app::auth::{self, ApiToken, TokenHolder};
use steward_app::directory;
use steward_domain::role::{AppScope, Role};

use crate::AppState;
use crate::api::Api;
use crate::auth::Caller;
use crate::body::Body;
use crate::error::ApiError;
use crate::odata::json_response;
use crate::routes::{no_content, path_id};

type R = Result<Response, ApiError>;

pub fn api() -> Api {
    Api::new()
        .tag("steward")
        .list("/v1.0/steward/apiTokens", list_tokens, "List API tokens (never their secrets)")
        .create("/v1.0/steward/apiTokens", create_token, "Create an API token; the secret is in the response, once")
        .delete("/v1.0/steward/apiTokens/{id}", delete_token, "Revoke an API token")
}

fn token_json(t: &ApiToken) -> Value {
    json!({
        "id": t.id,
        "displayName": t.name,
        "userId": t.user_id,
        "isAdministrator": t.user_id.is_none() && t.role.is_none(),
        "roleDefinitionId": t.role.map(|(r, _)| r.id()),
        "appScopeId": t.role.map(|(_, s)| s.to_string()),
        "createdDateTime": steward_domain::time::format_datetime(t.created_at),
        "expirationDateTime": t.expires_at.map(steward_domain::time::format_datetime),
    })
}

async fn list_tokens(State(st): State<AppState>, Caller(p): Caller) -> R {
    p.admin()?;
    let tokens = st.services.store.list_tokens().await.map_err(steward_app::AppError::from)?;
    Ok(json_response(StatusCode::OK, json!({ "value": tokens.iter().map(token_json).collect::<Vec<_>>() })))
}

async fn create_token(State(st): State<AppState>, Caller(p): Caller, headers: HeaderMap, bytes: Bytes) -> R {
    let cap = p.admin()?;
    let mut b = Body::parse(&headers, &bytes, "apiToken")?;
    let name = b.req_str("displayName")?;
    let user = b.opt_str("userId")?;
    let role: Option<Role> = b.opt_enum("roleDefinitionId")?;
    let scope: Option<AppScope> = b.opt_enum("appScopeId")?;
    let expires = match b.opt_str("expirationDateTime")? {
        Some(t) => Some(steward_domain::time::parse_datetime(&t).map_err(|e| ApiError::bad_request(e.to_string()))?),
        None => None,
    };
    b.finish()?;
    let holder = match (user, role) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_model(
                "A token acts either as a user (userId) or holds one role (roleDefinitionId), not both.",
            ));
        }
        (Some(key), None) => {
            TokenHolder::User(directory::find_user(&st.services, p.directory_reader()?, &key).await?.id)
        }
        (None, Some(role)) => TokenHolder::Role(role, scope.unwrap_or(AppScope::Tenant)),
        (None, None) if scope.is_some() => {
            return Err(ApiError::invalid_model("appScopeId needs a roleDefinitionId."));
        }
        (None, None) => TokenHolder::Administrator,
    };
    let (token, secret) = auth::create_token(&st.services, cap, &name, holder, expires).await?;
    let mut v = token_json(&token);
    if let Some(o) = v.as_object_mut() {
        o.insert("token".into(), Value::String(secret.expose().to_owned()));
    }
    Ok(json_response(StatusCode::CREATED, v))
}

async fn delete_token(State(st): State<AppState>, Caller(p): Caller, Path(id): Path<String>) -> R {
    p.admin()?;
    st.services.store.delete_token(path_id(&id)?).await.map_err(steward_app::AppError::from)?;
    Ok(no_content())
}
