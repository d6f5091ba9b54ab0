//! `/v1.0/steward/catalogs/{id}/chatWebhooks` and `/v1.0/steward/chatWebhooks/{id}`:
//! administrators give a catalog Teams or Slack incoming webhooks, list, test and remove them.
//! The address goes in and is never sent back: a webhook shows only its host. Not part of Graph.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::SecretString;
use serde_json::json;
use steward_app::chat::{self, NewWebhook};
use steward_domain::chat::ChatFlavor;

use crate::AppState;
use crate::api::Api;
use crate::auth::Admin;
use crate::body::Body;
use crate::error::ApiError;
use crate::odata::json_response;
use crate::routes::{no_body, no_content, path_id};

type R = Result<Response, ApiError>;

pub fn api() -> Api {
    Api::new()
        .tag("steward")
        .get("/v1.0/steward/catalogs/{id}/chatWebhooks", list, "List a catalog's chat webhooks (never their addresses)")
        .create(
            "/v1.0/steward/catalogs/{id}/chatWebhooks",
            create,
            "Add a Teams or Slack incoming webhook to a catalog: displayName, flavor (teams, slack) and url",
        )
        .delete("/v1.0/steward/chatWebhooks/{id}", delete, "Remove a chat webhook")
        .action("/v1.0/steward/chatWebhooks/{id}/test", test, "Post a test message to a chat webhook now")
}

async fn list(State(st): State<AppState>, Admin(_, cap): Admin, Path(id): Path<String>) -> R {
    let all = chat::list_webhooks(&st.services, cap, path_id(&id)?).await?;
    Ok(json_response(StatusCode::OK, json!({ "value": all })))
}

async fn create(
    State(st): State<AppState>,
    Admin(_, cap): Admin,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let catalog = path_id(&id)?;
    let mut b = Body::parse(&headers, &bytes, "chatWebhook")?;
    let display_name = b.req_name()?;
    let flavor = ChatFlavor::parse(&b.req_str("flavor")?)?;
    let url = SecretString::from(b.req_str("url")?);
    b.ignore(&["id", "catalogId", "host", "createdDateTime", "@odata.type"]);
    b.finish()?;
    let w = chat::create_webhook(&st.services, cap, catalog, NewWebhook { display_name, flavor, url }).await?;
    Ok(json_response(StatusCode::CREATED, json!(w)))
}

async fn delete(State(st): State<AppState>, Admin(_, cap): Admin, Path(id): Path<String>) -> R {
    chat::delete_webhook(&st.services, cap, path_id(&id)?).await?;
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
    let outcome = chat::test_webhook(&st.services, cap, path_id(&id)?).await?;
    let message = match &outcome {
        Ok(()) => "The webhook accepted the test message.".to_owned(),
        Err(why) => why.clone(),
    };
    Ok(json_response(StatusCode::OK, json!({ "succeeded": outcome.is_ok(), "message": message })))
}
