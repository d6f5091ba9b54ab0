//! A catalog's custom extensions (`…/catalogs/{id}/customWorkflowExtensions`, Graph's
//! customCalloutExtension family): administrators create, list, read, change and delete them.
//! The creation response carries the extension's `signingSecret` (Steward's own property) once;
//! it is never sent again. Azure AD `authenticationConfiguration` is refused: Steward signs
//! each callout with HMAC instead.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};
use steward_app::extensions::{self, ExtensionPatch, NewExtension};
use steward_domain::extension::{
    CallbackConfiguration, ClientConfiguration, Configuration, CustomExtension, Endpoint, ExtensionKind,
};
use steward_domain::ids::{CatalogId, CustomExtensionId};

use crate::AppState;
use crate::api::Api;
use crate::auth::{Edits, May, Reads};
use crate::body::{Body, require_json};
use crate::error::ApiError;
use crate::odata::{OData, count_response, if_match, json_response};
use crate::routes::{no_content, path_id};

type R = Result<Response, ApiError>;

const ROOT: &str = "/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/customWorkflowExtensions";
const ITEM: &str = "/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/customWorkflowExtensions/{extension}";

/// Read-only properties a client may send back, ignored on write.
const READ_ONLY: &[&str] = &["id", "createdDateTime", "lastModifiedDateTime", "createdBy", "lastModifiedBy"];

pub fn api() -> Api {
    Api::new()
        .tag("customWorkflowExtensions")
        .list(ROOT, list, "List a catalog's custom extensions")
        .create(
            ROOT,
            create,
            "Create a custom extension (request or assignment stages, fire-and-forget or launch-and-wait); the response carries its signingSecret, shown only this once",
        )
        .count(
            "/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/customWorkflowExtensions/$count",
            count,
            "Count a catalog's custom extensions",
        )
        .get(ITEM, get, "Get a custom extension (never its signing secret)")
        .patch(ITEM, update, "Change a custom extension")
        .delete(ITEM, delete, "Delete a custom extension no assignment policy runs")
}

fn context(od: &OData, catalog: CatalogId, entity: bool) -> String {
    format!(
        "{}/v1.0/$metadata#identityGovernance/entitlementManagement/catalogs('{catalog}')/customWorkflowExtensions{}",
        od.base(),
        if entity { "/$entity" } else { "" }
    )
}

fn entity(od: &OData, x: &CustomExtension) -> Value {
    let mut out = Map::new();
    out.insert("@odata.context".into(), Value::String(context(od, x.catalog_id, true)));
    if let Value::Object(m) = x.to_json() {
        out.extend(m);
    }
    Value::Object(out)
}

/// The body as a JSON object, with its `@odata.type` taken out (the body names one of two
/// subtypes, which `Body` alone would refuse).
fn parse(headers: &HeaderMap, bytes: &Bytes) -> Result<(Body, Option<String>), ApiError> {
    require_json(headers, bytes)?;
    if bytes.is_empty() {
        return Err(ApiError::invalid_model("A JSON body describing a customCalloutExtension is required."));
    }
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("The body is not valid JSON: {e}.")))?;
    let Value::Object(mut m) = v else {
        return Err(ApiError::invalid_model("The body must be a JSON object describing a customCalloutExtension."));
    };
    let t = match m.remove("@odata.type") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(t),
        Some(_) => return Err(ApiError::invalid_model("@odata.type must be a string.")),
    };
    Ok((Body::from_value(Value::Object(m), "customCalloutExtension")?, t))
}

/// Refuses Azure AD token authentication: Steward signs its callouts instead.
fn no_authentication(b: &mut Body) -> Result<(), ApiError> {
    match b.take("authenticationConfiguration") {
        None | Some(Value::Null) => Ok(()),
        Some(_) => Err(ApiError::invalid_model(
            "authenticationConfiguration is not supported: Steward does not get Azure AD tokens for custom \
             extensions; it signs every callout with HMAC-SHA256 under the extension's signingSecret (header \
             Steward-Signature, see the README's \"Custom extensions\"). Leave authenticationConfiguration out.",
        )),
    }
}

async fn list(State(st): State<AppState>, may: May<Reads>, od: OData, Path(catalog): Path<String>) -> R {
    let catalog: CatalogId = path_id(&catalog)?;
    let all = extensions::list_extensions(&st.services, may.in_catalog(catalog)?).await?;
    Ok(json_response(
        StatusCode::OK,
        json!({
            "@odata.context": context(&od, catalog, false),
            "value": all.iter().map(CustomExtension::to_json).collect::<Vec<_>>(),
        }),
    ))
}

async fn count(State(st): State<AppState>, may: May<Reads>, Path(catalog): Path<String>) -> R {
    let all = extensions::list_extensions(&st.services, may.in_catalog(path_id(&catalog)?)?).await?;
    Ok(count_response(all.len() as u64))
}

async fn create(
    State(st): State<AppState>,
    may: May<Edits>,
    od: OData,
    Path(catalog): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let catalog: CatalogId = path_id(&catalog)?;
    let cap = may.in_catalog(catalog)?;
    let (mut b, t) = parse(&headers, &bytes)?;
    let kind = match t {
        Some(t) => ExtensionKind::from_odata_type(&t)?,
        None => {
            return Err(ApiError::invalid_model(format!(
                "@odata.type is required: '{}' (request stages) or '{}' (assignment stages).",
                ExtensionKind::RequestWorkflow.odata_type(),
                ExtensionKind::AssignmentWorkflow.odata_type()
            )));
        }
    };
    no_authentication(&mut b)?;
    let display_name = b.req_name()?;
    let description = b.nullable_str("description")?;
    let endpoint = match b.take("endpointConfiguration") {
        Some(v) => Endpoint::parse(&v)?,
        None => return Err(ApiError::invalid_model("endpointConfiguration is required (an httpRequestEndpoint).")),
    };
    let client = b.take("clientConfiguration").map(|v| ClientConfiguration::parse(&v)).transpose()?.unwrap_or_default();
    let callback = b.take("callbackConfiguration").map(|v| CallbackConfiguration::parse(&v)).transpose()?.flatten();
    b.ignore(READ_ONLY);
    b.finish()?;
    let new = NewExtension { kind, display_name, description, config: Configuration { endpoint, client, callback } };
    let (x, secret) = extensions::create_extension(&st.services, cap, new).await?;
    let mut v = entity(&od, &x);
    if let Value::Object(m) = &mut v {
        m.insert("signingSecret".into(), Value::String(secret.expose().to_owned()));
    }
    let mut r = json_response(StatusCode::CREATED, v);
    let location = format!(
        "{}/v1.0/identityGovernance/entitlementManagement/catalogs/{catalog}/customWorkflowExtensions/{}",
        od.base(),
        x.id
    );
    if let Ok(loc) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    // The secret is in this response only: no cache may keep it.
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

fn ids(catalog: &str, extension: &str) -> Result<(CatalogId, CustomExtensionId), ApiError> {
    Ok((path_id(catalog)?, path_id(extension)?))
}

async fn get(
    State(st): State<AppState>,
    may: May<Reads>,
    od: OData,
    Path((catalog, extension)): Path<(String, String)>,
) -> R {
    let (catalog, extension) = ids(&catalog, &extension)?;
    let x = extensions::get_extension(&st.services, may.in_catalog(catalog)?, extension).await?;
    let mut r = json_response(StatusCode::OK, entity(&od, &x));
    if let Ok(tag) = HeaderValue::from_str(&steward_domain::time::etag(x.last_modified_date_time)) {
        r.headers_mut().insert(header::ETAG, tag);
    }
    Ok(r)
}

async fn update(
    State(st): State<AppState>,
    may: May<Edits>,
    Path((catalog, extension)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> R {
    let (catalog, id) = ids(&catalog, &extension)?;
    let (mut b, t) = parse(&headers, &bytes)?;
    if let Some(t) = t {
        let kind = ExtensionKind::from_odata_type(&t)?;
        let current = extensions::get_extension(&st.services, may.in_catalog(catalog)?, id).await?;
        if kind != current.kind {
            return Err(ApiError::invalid_model(format!(
                "A custom extension's type cannot change (it is {}); create another one instead.",
                current.kind.odata_type()
            )));
        }
    }
    no_authentication(&mut b)?;
    let patch = ExtensionPatch {
        display_name: b.opt_name()?,
        description: b.patch_str("description")?,
        endpoint: b.take("endpointConfiguration").map(|v| Endpoint::parse(&v)).transpose()?,
        client: b.take("clientConfiguration").map(|v| ClientConfiguration::parse(&v)).transpose()?,
        callback: b.take("callbackConfiguration").map(|v| CallbackConfiguration::parse(&v)).transpose()?,
    };
    if b.take("signingSecret").is_some() {
        return Err(ApiError::invalid_model(
            "signingSecret is chosen by Steward and shown once at creation; to change it, create a new extension.",
        ));
    }
    b.ignore(READ_ONLY);
    b.finish()?;
    extensions::update_extension(&st.services, may.in_catalog(catalog)?, id, patch, if_match(&headers).as_deref())
        .await?;
    Ok(no_content())
}

async fn delete(
    State(st): State<AppState>,
    may: May<Edits>,
    Path((catalog, extension)): Path<(String, String)>,
    headers: HeaderMap,
) -> R {
    let (catalog, id) = ids(&catalog, &extension)?;
    extensions::delete_extension(&st.services, may.in_catalog(catalog)?, id, if_match(&headers).as_deref()).await?;
    Ok(no_content())
}
