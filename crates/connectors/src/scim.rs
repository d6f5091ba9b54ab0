//! SCIM 2.0 applications as a delivery target (RFC 7643/7644, Steward as the client): a
//! resource is a SCIM `Group`, its one resource role `Member` is membership in it; app roles
//! the application models as user `entitlements` are the roles of one more resource
//! (`ENTITLEMENTS`), one role per entitlement value the connection names. A Steward
//! user is the SCIM `User` whose `userName` (or `externalId`) equals one of their attributes,
//! created when the application lacks them if the connection says so. Membership changes use
//! `PATCH` when the application's `ServiceProviderConfig` announces it and a read-modify-`PUT`
//! (with `If-Match` where ETags are announced) otherwise. Every value put in a filter is a JSON
//! string literal, as the filter grammar defines it; no redirect is followed; what the
//! application answers is read up to a bound and shown only as a cleaned, shortened detail.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use steward_app::connector::{Comparison, Connector, ConnectorError, DiscoveredResource};
use steward_app::ports::RoleGrant;
use steward_domain::connection;
use steward_domain::directory::User;
use steward_domain::enums::ConnectionKind;
use tokio::sync::OnceCell;

use crate::ident::UserKey;
use crate::postgres_roles::MEMBER;

/// The `originSystem` of resources this connector serves.
pub const ORIGIN_SCIM_GROUP: &str = connection::origin_system(ConnectionKind::Scim);
/// The origin id of the resource whose roles are the application's entitlements.
pub const ENTITLEMENTS: &str = "urn:steward:scim:entitlements";
/// The most entitlement values a connection names, and the longest.
const ENTITLEMENTS_MAX: usize = 200;
const ENTITLEMENT_LEN_MAX: usize = 256;

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SCIM_JSON: &str = "application/scim+json";
/// The most an error answer is read for its detail.
const ERROR_BODY_MAX: usize = 64 * 1024;
/// The most any answer is read (a group of many members is large).
const BODY_MAX: usize = 256 * 1024 * 1024;
/// Users looked up in one request (`userName eq "a" or userName eq "b" …`).
const LOOKUP_CHUNK: usize = 50;
/// Groups asked for per page while discovering, and the most pages read.
const PAGE: usize = 100;
const MAX_PAGES: usize = 2000;

/// Which SCIM attribute of a `User` holds the Steward user's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScimMatch {
    #[default]
    UserName,
    ExternalId,
}

impl ScimMatch {
    fn attribute(self) -> &'static str {
        match self {
            Self::UserName => "userName",
            Self::ExternalId => "externalId",
        }
    }

    /// `userName` is case-insensitive in RFC 7643 (section 4.1.1); `externalId` is exact.
    fn same(self, a: &str, b: &str) -> bool {
        match self {
            Self::UserName => a.to_lowercase() == b.to_lowercase(),
            Self::ExternalId => a == b,
        }
    }
}

/// Where the application is and how Steward finds users in it; no secret (the bearer token
/// is a credential).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScimSettings {
    /// The SCIM base URL, under which `/Users`, `/Groups` and `/ServiceProviderConfig` are.
    pub base_url: String,
    /// Which Steward attribute identifies a user in the application…
    #[serde(default)]
    pub user_key: UserKey,
    /// …as the value of which SCIM attribute.
    #[serde(default)]
    pub match_attribute: ScimMatch,
    /// Create the SCIM user (`POST /Users`) when a grant finds none.
    #[serde(default)]
    pub create_users: bool,
    /// How long one request may take before it fails (and is retried later).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// App roles the application models as values of its users' `entitlements`, which
    /// Steward may grant (SCIM has no endpoint that lists them, so they are named here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<String>,
}

fn default_timeout() -> u64 {
    30
}

impl ScimSettings {
    /// The base URL, checked: http or https, no query, no fragment, no user info.
    pub fn base(&self) -> Result<Url, String> {
        let url = Url::parse(self.base_url.trim()).map_err(|e| format!("baseUrl is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("baseUrl must be an http:// or https:// URL".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("baseUrl must not have a query or a fragment".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("baseUrl must not carry credentials; the bearer token is a credential".into());
        }
        if url.host_str().is_none() {
            return Err("baseUrl must name a host".into());
        }
        Ok(url)
    }

    pub fn check(&self) -> Result<(), String> {
        self.base()?;
        if self.entitlements.len() > ENTITLEMENTS_MAX {
            return Err(format!("entitlements may name at most {ENTITLEMENTS_MAX} values"));
        }
        let mut seen = HashSet::new();
        for e in &self.entitlements {
            if e.trim().is_empty() || e.len() > ENTITLEMENT_LEN_MAX || e.chars().any(char::is_control) {
                return Err(format!(
                    "each entitlement must be 1 to {ENTITLEMENT_LEN_MAX} bytes of text without control characters"
                ));
            }
            if !seen.insert(e.as_str()) {
                return Err(format!("the entitlement '{e}' is named twice"));
            }
        }
        Ok(())
    }
}

/// What the application announces in `ServiceProviderConfig` that changes how Steward talks
/// to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Features {
    patch: bool,
    etag: bool,
}

#[derive(Deserialize)]
struct Supported {
    #[serde(default)]
    supported: bool,
}

#[derive(Deserialize)]
struct ServiceProviderConfig {
    patch: Option<Supported>,
    etag: Option<Supported>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListResponse<T> {
    #[serde(default)]
    total_results: Option<usize>,
    #[serde(default = "Vec::new", rename = "Resources")]
    resources: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScimUser {
    id: String,
    user_name: Option<String>,
    external_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupSummary {
    id: String,
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct GroupMembers {
    #[serde(default)]
    members: Vec<MemberRef>,
}

#[derive(Deserialize)]
struct MemberRef {
    value: Option<String>,
}

#[derive(Deserialize)]
struct UserEntitlements {
    #[serde(default)]
    entitlements: Vec<MemberRef>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// What a grant names in the application.
enum Target<'g> {
    Group(&'g str),
    Entitlement(&'g str),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScimErrorBody {
    detail: Option<String>,
    scim_type: Option<String>,
}

/// Why a request did not succeed.
#[derive(Debug)]
enum Failure {
    /// No answer (refused, reset, timed out) or an answer cut short.
    Unreachable(String),
    /// An answer with a status other than 2xx.
    Status { status: StatusCode, scim_type: Option<String>, detail: String },
    /// A 2xx answer that is not what SCIM says it is.
    Malformed(String),
}

impl Failure {
    fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// As a connector error, saying what Steward was doing. Unavailable, overloaded and
    /// throttling answers are retried; others (wrong token, missing rights, refused values)
    /// are not.
    fn into_error(self, doing: &str) -> ConnectorError {
        match self {
            Self::Unreachable(why) => {
                ConnectorError::Transient(format!("the SCIM application is unavailable while {doing}: {why}"))
            }
            Self::Malformed(why) => ConnectorError::Permanent(format!("the SCIM application, {doing}, {why}")),
            Self::Status { status, scim_type, detail } => {
                let message = format!(
                    "the SCIM application refused {doing}: HTTP {}{}{}",
                    status.as_u16(),
                    scim_type.map(|t| format!(" ({t})")).unwrap_or_default(),
                    if detail.is_empty() { String::new() } else { format!(": {detail}") }
                );
                if status.is_server_error()
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::REQUEST_TIMEOUT
                    || status == StatusCode::PRECONDITION_FAILED
                {
                    ConnectorError::Transient(message)
                } else {
                    ConnectorError::Permanent(message)
                }
            }
        }
    }
}

/// At most 300 characters of what an application said, with control characters made spaces,
/// so that an answer cannot forge log lines or bloat a request's reasons.
fn clean(text: &str) -> String {
    let mut out: String =
        text.chars().take(300).map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_owned();
    if text.chars().nth(300).is_some() {
        out.push('…');
    }
    out
}

/// `value` as a SCIM filter comparison value: a JSON string literal (RFC 7644 section
/// 3.4.2.2), so quotes and backslashes in it cannot end it.
fn literal(value: &str) -> String {
    Value::String(value.to_owned()).to_string()
}

/// Grants and revokes group membership in one SCIM application.
pub struct ScimConnector {
    settings: ScimSettings,
    base: Url,
    token: Option<SecretString>,
    http: reqwest::Client,
    features: OnceCell<Features>,
}

impl std::fmt::Debug for ScimConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimConnector").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl ScimConnector {
    pub fn new(settings: ScimSettings, token: Option<SecretString>) -> Result<Self, String> {
        let mut base = settings.base()?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let timeout = Duration::from_secs(settings.timeout_seconds.clamp(1, 600));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        Ok(Self { settings, base, token, http, features: OnceCell::new() })
    }

    /// `path` (relative: `Users`, `Groups/<id>`) under the base URL; an id becomes one
    /// percent-encoded path segment.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Vec<u8>, Failure> {
        let mut req =
            self.http.request(method, url).header(reqwest::header::ACCEPT, "application/scim+json, application/json");
        if let Some(token) = &self.token {
            req = req.bearer_auth(token.expose_secret());
        }
        if let Some(body) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, SCIM_JSON).body(body.to_string());
        }
        if let Some(version) = if_match {
            req = req.header(reqwest::header::IF_MATCH, version);
        }
        let mut resp = req.send().await.map_err(|e| Failure::Unreachable(without_url(&e)))?;
        let status = resp.status();
        if status.is_success() {
            return read_capped(&mut resp, BODY_MAX).await.map_err(Failure::Unreachable);
        }
        if status.is_redirection() {
            let to = resp.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(clean);
            return Err(Failure::Status {
                status,
                scim_type: None,
                detail: format!(
                    "a redirect{}, which Steward does not follow; set baseUrl to the final address",
                    to.map(|t| format!(" to '{t}'")).unwrap_or_default()
                ),
            });
        }
        let body = read_capped(&mut resp, ERROR_BODY_MAX).await.unwrap_or_default();
        let (scim_type, detail) = match serde_json::from_slice::<ScimErrorBody>(&body) {
            Ok(e) => (e.scim_type.map(|t| clean(&t)), e.detail.map(|d| clean(&d)).unwrap_or_default()),
            Err(_) if body.is_empty() => (None, String::new()),
            Err(_) => (None, format!("an answer that is not a SCIM error ({} bytes)", body.len())),
        };
        Err(Failure::Status { status, scim_type, detail })
    }

    async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<T, Failure> {
        let body = self.send(Method::GET, url, None, None).await?;
        parse(&body)
    }

    async fn features(&self) -> Result<Features, ConnectorError> {
        self.features
            .get_or_try_init(|| async {
                let config: ServiceProviderConfig = self
                    .get_json(self.url(&["ServiceProviderConfig"]))
                    .await
                    .map_err(|f| f.into_error("reading its ServiceProviderConfig"))?;
                Ok(Features {
                    patch: config.patch.is_some_and(|p| p.supported),
                    etag: config.etag.is_some_and(|e| e.supported),
                })
            })
            .await
            .copied()
    }

    /// The SCIM ids of `subjects`' users (one lookup per fifty), `None` where the application
    /// has none; with `create`, missing users are created when the connection allows it.
    async fn resolve(&self, subjects: &[&User], create: bool) -> Vec<Result<Option<String>, ConnectorError>> {
        let mut out = self.lookup(subjects).await;
        if create && self.settings.create_users {
            for (slot, subject) in out.iter_mut().zip(subjects) {
                if matches!(slot, Ok(None)) {
                    let key = self.settings.user_key.of(subject).unwrap_or_default();
                    *slot = self.create_user(subject, &key).await.map(Some);
                }
            }
        }
        out
    }

    /// The SCIM ids of `subjects`' users (one request per fifty), `None` where there is none.
    async fn lookup(&self, subjects: &[&User]) -> Vec<Result<Option<String>, ConnectorError>> {
        let attr = self.settings.match_attribute;
        let keys: Vec<Result<String, ConnectorError>> =
            subjects.iter().map(|u| self.settings.user_key.of(u).map_err(ConnectorError::Permanent)).collect();
        let wanted: Vec<&str> = keys.iter().filter_map(|k| k.as_deref().ok()).collect();
        let mut found: HashMap<String, Vec<String>> = HashMap::new();
        let mut failed: Option<ConnectorError> = None;
        for chunk in unique(&wanted).chunks(LOOKUP_CHUNK) {
            let filter = chunk
                .iter()
                .map(|k| format!("{} eq {}", attr.attribute(), literal(k)))
                .collect::<Vec<_>>()
                .join(" or ");
            let mut url = self.url(&["Users"]);
            url.query_pairs_mut()
                .append_pair("filter", &filter)
                .append_pair("attributes", "id,userName,externalId")
                .append_pair("count", &(chunk.len() * 2).to_string());
            match self.get_json::<ListResponse<ScimUser>>(url).await {
                Ok(list) => {
                    for k in chunk {
                        let ids = list
                            .resources
                            .iter()
                            .filter(|u| {
                                let v = match attr {
                                    ScimMatch::UserName => u.user_name.as_deref(),
                                    ScimMatch::ExternalId => u.external_id.as_deref(),
                                };
                                v.is_some_and(|v| attr.same(v, k))
                            })
                            .map(|u| u.id.clone())
                            .collect();
                        found.insert(k.to_lowercase_if(attr), ids);
                    }
                }
                Err(f) => {
                    failed = Some(f.into_error("looking up users"));
                    break;
                }
            }
        }
        let mut out = Vec::with_capacity(subjects.len());
        for key in keys {
            let key = match key {
                Ok(k) => k,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            if let Some(e) = &failed {
                out.push(Err(copy(e)));
                continue;
            }
            let r = match found.get(&key.to_lowercase_if(attr)) {
                Some(ids) if ids.len() == 1 => Ok(ids.first().cloned()),
                Some(ids) if ids.len() > 1 => Err(ConnectorError::Permanent(format!(
                    "the SCIM application has {} users with {} '{}'; Steward will not pick one",
                    ids.len(),
                    attr.attribute(),
                    key
                ))),
                _ => Ok(None),
            };
            out.push(r);
        }
        out
    }

    async fn create_user(&self, subject: &User, key: &str) -> Result<String, ConnectorError> {
        let attr = self.settings.match_attribute;
        let user_name = match attr {
            ScimMatch::UserName => key,
            ScimMatch::ExternalId => &subject.user_principal_name,
        };
        let mut user = serde_json::Map::new();
        user.insert("schemas".into(), json!([USER_SCHEMA]));
        user.insert("userName".into(), json!(user_name));
        if attr == ScimMatch::ExternalId {
            user.insert("externalId".into(), json!(key));
        }
        user.insert("displayName".into(), json!(subject.display_name.as_str()));
        user.insert("name".into(), json!({ "formatted": subject.display_name.as_str() }));
        if let Some(mail) = &subject.mail {
            user.insert("emails".into(), json!([{ "value": mail, "type": "work", "primary": true }]));
        }
        user.insert("active".into(), json!(subject.account_enabled));
        let user = Value::Object(user);
        match self.send(Method::POST, self.url(&["Users"]), Some(&user), None).await {
            Ok(body) => parse::<ScimUser>(&body).map(|u| u.id).map_err(|f| f.into_error("creating a user")),
            // Someone created them meanwhile: use theirs.
            Err(f) if f.status() == Some(StatusCode::CONFLICT) => match self.lookup(&[subject]).await.pop() {
                Some(Ok(Some(id))) => Ok(id),
                _ => Err(f.into_error(&format!("creating the user '{key}'"))),
            },
            Err(f) => Err(f.into_error(&format!("creating the user '{key}'"))),
        }
    }

    fn group(grant: &RoleGrant) -> Result<&str, ConnectorError> {
        if grant.role_origin_id != MEMBER {
            return Err(ConnectorError::Permanent(format!(
                "a SCIM group has one resource role, '{MEMBER}', not '{}'",
                grant.role_origin_id
            )));
        }
        Ok(&grant.resource_origin_id)
    }

    /// What a grant names: membership of a group, or an entitlement value.
    fn target<'g>(&self, grant: &'g RoleGrant) -> Result<Target<'g>, ConnectorError> {
        if grant.resource_origin_id != ENTITLEMENTS {
            return Self::group(grant).map(Target::Group);
        }
        if self.settings.entitlements.contains(&grant.role_origin_id) {
            Ok(Target::Entitlement(&grant.role_origin_id))
        } else {
            Err(ConnectorError::Permanent(format!(
                "'{}' is not one of the entitlements the connection names",
                clean(&grant.role_origin_id)
            )))
        }
    }

    /// The entitlement values of a user (SCIM id).
    async fn entitlements_of(&self, user: &str) -> Result<Vec<String>, Failure> {
        let mut url = self.url(&["Users", user]);
        url.query_pairs_mut().append_pair("attributes", "entitlements");
        let u: UserEntitlements = self.get_json(url).await?;
        Ok(u.entitlements.into_iter().filter_map(|m| m.value).collect())
    }

    /// Gives (`add`) or takes away an entitlement value of a user, when it is not so already:
    /// by `PATCH`, or by reading the user and writing it back where no `PATCH` is announced.
    async fn change_entitlement(&self, user: &str, value: &str, add: bool) -> Result<(), ConnectorError> {
        let doing =
            format!("{} the entitlement '{}' of user '{user}'", if add { "adding" } else { "removing" }, clean(value));
        let held = match self.entitlements_of(user).await {
            Ok(v) => v.iter().any(|v| v == value),
            Err(Failure::Status { status: StatusCode::NOT_FOUND, .. }) if !add => return Ok(()),
            Err(f) => return Err(f.into_error(&doing)),
        };
        if held == add {
            return Ok(());
        }
        let url = self.url(&["Users", user]);
        if self.features().await?.patch {
            let op = if add {
                json!({ "op": "add", "path": "entitlements", "value": [{ "value": value }] })
            } else {
                json!({ "op": "remove", "path": format!("entitlements[value eq {}]", literal(value)) })
            };
            let body = json!({ "schemas": [PATCH_SCHEMA], "Operations": [op] });
            return match self.send(Method::PATCH, url, Some(&body), None).await {
                Ok(_) => Ok(()),
                Err(Failure::Status { status: StatusCode::NOT_FOUND, .. }) if !add => Ok(()),
                Err(f) => Err(f.into_error(&doing)),
            };
        }
        let mut resource: Value = self.get_json(url.clone()).await.map_err(|f| f.into_error(&doing))?;
        let version = resource.pointer("/meta/version").and_then(Value::as_str).map(str::to_owned);
        let mut list: Vec<Value> = resource.get("entitlements").and_then(Value::as_array).cloned().unwrap_or_default();
        if add {
            list.push(json!({ "value": value }));
        } else {
            list.retain(|m| m.get("value").and_then(Value::as_str) != Some(value));
        }
        if let Some(obj) = resource.as_object_mut() {
            obj.insert("entitlements".into(), Value::Array(list));
            obj.remove("meta");
        }
        let etag = self.features().await?.etag;
        self.send(Method::PUT, url, Some(&resource), version.as_deref().filter(|_| etag))
            .await
            .map(|_| ())
            .map_err(|f| f.into_error(&doing))
    }

    /// The users (SCIM ids) holding an entitlement value, page by page.
    async fn entitled(&self, value: &str) -> Result<Vec<String>, ConnectorError> {
        let mut out = Vec::new();
        let mut start = 1;
        for _ in 0..MAX_PAGES {
            let mut url = self.url(&["Users"]);
            url.query_pairs_mut()
                .append_pair("filter", &format!("entitlements.value eq {}", literal(value)))
                .append_pair("attributes", "id")
                .append_pair("startIndex", &start.to_string())
                .append_pair("count", "1000");
            let page: ListResponse<IdOnly> =
                self.get_json(url).await.map_err(|f| f.into_error("listing the users of an entitlement"))?;
            let n = page.resources.len();
            out.extend(page.resources.into_iter().map(|u| u.id));
            start += n;
            if n == 0 || page.total_results.is_some_and(|t| start > t) {
                break;
            }
        }
        Ok(out)
    }

    fn no_user(&self, subject: &User) -> ConnectorError {
        ConnectorError::Permanent(format!(
            "the SCIM application has no user with {} '{}', and the connection does not create users",
            self.settings.match_attribute.attribute(),
            self.settings.user_key.of(subject).unwrap_or_default()
        ))
    }

    /// Adds (`add`) or removes `members` (SCIM user ids) of `group`.
    async fn change(&self, group: &str, members: &[String], add: bool) -> Result<(), ConnectorError> {
        let doing = if add { "adding members to" } else { "removing members from" };
        let doing = format!("{doing} the group '{group}'");
        if self.features().await?.patch {
            let operations: Vec<Value> = if add {
                vec![
                    json!({ "op": "add", "path": "members", "value": members.iter().map(|m| json!({ "value": m })).collect::<Vec<_>>() }),
                ]
            } else {
                members
                    .iter()
                    .map(|m| json!({ "op": "remove", "path": format!("members[value eq {}]", literal(m)) }))
                    .collect()
            };
            let body = json!({ "schemas": [PATCH_SCHEMA], "Operations": operations });
            return match self.send(Method::PATCH, self.url(&["Groups", group]), Some(&body), None).await {
                Ok(_) => Ok(()),
                // Removing from a group that is gone, or a member that is not there, is done.
                Err(Failure::Status { status: StatusCode::NOT_FOUND, .. }) if !add => Ok(()),
                Err(Failure::Status { scim_type: Some(t), .. }) if !add && t == "noTarget" => Ok(()),
                Err(f) => Err(f.into_error(&doing)),
            };
        }
        self.replace_members(group, members, add, &doing).await
    }

    /// Membership change for applications without PATCH: read the group, change its member
    /// list, write it back (only if unchanged meanwhile, where ETags are announced).
    async fn replace_members(
        &self,
        group: &str,
        members: &[String],
        add: bool,
        doing: &str,
    ) -> Result<(), ConnectorError> {
        let url = self.url(&["Groups", group]);
        let mut resource: Value = match self.get_json(url.clone()).await {
            Ok(v) => v,
            Err(Failure::Status { status: StatusCode::NOT_FOUND, .. }) if !add => return Ok(()),
            Err(f) => return Err(f.into_error(doing)),
        };
        let version = resource.pointer("/meta/version").and_then(Value::as_str).map(str::to_owned);
        let mut list: Vec<Value> = resource.get("members").and_then(Value::as_array).cloned().unwrap_or_default();
        let held: HashSet<String> =
            list.iter().filter_map(|m| m.get("value").and_then(Value::as_str)).map(str::to_owned).collect();
        let targets: HashSet<&str> = members.iter().map(String::as_str).collect();
        let before = list.len();
        if add {
            list.extend(members.iter().filter(|m| !held.contains(*m)).map(|m| json!({ "value": m })));
        } else {
            list.retain(|m| !m.get("value").and_then(Value::as_str).is_some_and(|v| targets.contains(v)));
        }
        if list.len() == before {
            return Ok(());
        }
        if let Some(obj) = resource.as_object_mut() {
            obj.insert("members".into(), Value::Array(list));
            obj.remove("meta");
        }
        let etag = self.features().await?.etag;
        match self.send(Method::PUT, url, Some(&resource), version.as_deref().filter(|_| etag)).await {
            Ok(_) => Ok(()),
            Err(f) => Err(f.into_error(doing)),
        }
    }

    /// The member values (SCIM user ids) of a group.
    async fn members(&self, group: &str) -> Result<Vec<String>, Failure> {
        let mut url = self.url(&["Groups", group]);
        url.query_pairs_mut().append_pair("attributes", "members");
        let g: GroupMembers = self.get_json(url).await?;
        Ok(g.members.into_iter().filter_map(|m| m.value).collect())
    }
}

trait LowercaseIf {
    fn to_lowercase_if(&self, attr: ScimMatch) -> String;
}

impl LowercaseIf for str {
    fn to_lowercase_if(&self, attr: ScimMatch) -> String {
        match attr {
            ScimMatch::UserName => self.to_lowercase(),
            ScimMatch::ExternalId => self.to_owned(),
        }
    }
}

fn unique<'a>(keys: &[&'a str]) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    keys.iter().copied().filter(|k| seen.insert(*k)).collect()
}

fn copy(e: &ConnectorError) -> ConnectorError {
    match e {
        ConnectorError::Transient(m) => ConnectorError::Transient(m.clone()),
        ConnectorError::Permanent(m) => ConnectorError::Permanent(m.clone()),
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| {
        Failure::Malformed(format!(
            "answered with something that is not the SCIM JSON expected ({} bytes: {})",
            body.len(),
            clean(&e.to_string())
        ))
    })
}

/// A transport error without the URL, which the message would otherwise repeat.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the exchange failed"
    };
    match crate::innermost_cause(e, clean) {
        Some(d) => format!("{kind} ({d})"),
        None => kind.to_owned(),
    }
}

async fn read_capped(resp: &mut reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| without_url(&e))? {
        if out.len() + chunk.len() > cap {
            return Err(format!("the answer is larger than {cap} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[async_trait]
impl Connector for ScimConnector {
    fn serves(&self, origin_system: &str) -> bool {
        origin_system.eq_ignore_ascii_case(ORIGIN_SCIM_GROUP)
    }

    async fn check(&self) -> Result<String, ConnectorError> {
        let features = self.features().await?;
        let mut url = self.url(&["Groups"]);
        url.query_pairs_mut().append_pair("count", "1").append_pair("attributes", "id");
        let list: ListResponse<GroupSummary> = self.get_json(url).await.map_err(|f| f.into_error("listing groups"))?;
        Ok(format!(
            "connected to {}; membership changes by {}; {} group(s)",
            self.base,
            if features.patch { "PATCH" } else { "PUT (no PATCH announced)" },
            list.total_results.map_or_else(|| "some".to_owned(), |n| n.to_string())
        ))
    }

    async fn grant(&self, grant: &RoleGrant, subject: &User) -> Result<(), ConnectorError> {
        let target = self.target(grant)?;
        let id = self.resolve(&[subject], true).await.pop().unwrap_or(Ok(None))?;
        let Some(id) = id else { return Err(self.no_user(subject)) };
        match target {
            Target::Group(group) => self.change(group, &[id], true).await,
            Target::Entitlement(value) => self.change_entitlement(&id, value, true).await,
        }
    }

    /// A round's grants with one user lookup per fifty users and one `PATCH` per group; a
    /// group whose change fails is retried member by member, which tells whose failed.
    async fn grant_all(&self, items: &[(&RoleGrant, &User)]) -> Vec<Result<(), ConnectorError>> {
        let subjects: Vec<&User> = items.iter().map(|(_, u)| *u).collect();
        let ids = self.resolve(&subjects, true).await;
        let mut out: Vec<Option<Result<(), ConnectorError>>> = items.iter().map(|_| None).collect();
        let mut by_group: Vec<(&str, Vec<(usize, String)>)> = Vec::new();
        for (k, ((grant, subject), id)) in items.iter().zip(ids).enumerate() {
            let r = match (self.target(grant), id) {
                (Err(e), _) | (_, Err(e)) => Err(e),
                (Ok(_), Ok(None)) => Err(self.no_user(subject)),
                (Ok(Target::Entitlement(value)), Ok(Some(id))) => self.change_entitlement(&id, value, true).await,
                (Ok(Target::Group(group)), Ok(Some(id))) => {
                    match by_group.iter_mut().find(|(g, _)| *g == group) {
                        Some((_, list)) => list.push((k, id)),
                        None => by_group.push((group, vec![(k, id)])),
                    }
                    continue;
                }
            };
            if let Some(slot) = out.get_mut(k) {
                *slot = Some(r);
            }
        }
        for (group, list) in by_group {
            let members: Vec<String> = list.iter().map(|(_, id)| id.clone()).collect();
            match self.change(group, &members, true).await {
                Ok(()) => {
                    for (k, _) in &list {
                        if let Some(slot) = out.get_mut(*k) {
                            *slot = Some(Ok(()));
                        }
                    }
                }
                Err(e) if list.len() == 1 => {
                    if let Some(slot) = list.first().and_then(|(k, _)| out.get_mut(*k)) {
                        *slot = Some(Err(e));
                    }
                }
                Err(_) => {
                    for (k, id) in &list {
                        let r = self.change(group, std::slice::from_ref(id), true).await;
                        if let Some(slot) = out.get_mut(*k) {
                            *slot = Some(r);
                        }
                    }
                }
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ConnectorError::Transient("the grant was not attempted".into()))))
            .collect()
    }

    async fn revoke(&self, grant: &RoleGrant, subject: &User) -> Result<(), ConnectorError> {
        let target = self.target(grant)?;
        match self.resolve(&[subject], false).await.pop().unwrap_or(Ok(None)) {
            Ok(Some(id)) => match target {
                Target::Group(group) => self.change(group, &[id], false).await,
                Target::Entitlement(value) => self.change_entitlement(&id, value, false).await,
            },
            // Someone the application does not know holds nothing in it.
            Ok(None) => Ok(()),
            Err(ConnectorError::Permanent(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn holds(&self, grant: &RoleGrant, subject: &User) -> Result<bool, ConnectorError> {
        let target = self.target(grant)?;
        let Some(id) = self.resolve(&[subject], false).await.pop().unwrap_or(Ok(None))? else {
            return Ok(false);
        };
        let group = match target {
            Target::Group(group) => group,
            Target::Entitlement(value) => {
                return match self.entitlements_of(&id).await {
                    Ok(values) => Ok(values.iter().any(|v| v == value)),
                    Err(Failure::Status { status: StatusCode::NOT_FOUND, .. }) => Ok(false),
                    Err(f) => Err(f.into_error("reading a user's entitlements")),
                };
            }
        };
        match self.members(group).await {
            Ok(members) => Ok(members.contains(&id)),
            Err(Failure::Status { status: StatusCode::NOT_FOUND, .. }) => Ok(false),
            Err(f) => Err(f.into_error(&format!("reading the group '{group}'"))),
        }
    }

    /// The group's member ids against the SCIM ids of the users (looked up fifty at a time).
    async fn compare(
        &self,
        grant: &RoleGrant,
        granted: &[&User],
        in_flight: &[&User],
    ) -> Result<Comparison, ConnectorError> {
        let holders = match self.target(grant)? {
            Target::Group(group) => {
                self.members(group).await.map_err(|f| f.into_error(&format!("reading the group '{group}'")))?
            }
            Target::Entitlement(value) => self.entitled(value).await?,
        };
        let everyone: Vec<&User> = granted.iter().chain(in_flight).copied().collect();
        let mut ids = Vec::with_capacity(everyone.len());
        for r in self.lookup(&everyone).await {
            ids.push(match r {
                Ok(id) => id,
                Err(ConnectorError::Permanent(_)) => None,
                Err(e) => return Err(e),
            });
        }
        let held: HashSet<&str> = holders.iter().map(String::as_str).collect();
        let known: HashSet<&str> = ids.iter().flatten().map(String::as_str).collect();
        let missing = ids
            .iter()
            .take(granted.len())
            .enumerate()
            .filter(|(_, id)| id.as_deref().is_none_or(|id| !held.contains(id)))
            .map(|(k, _)| k)
            .collect();
        let unexpected = holders.iter().filter(|h| !known.contains(h.as_str())).cloned().collect();
        Ok(Comparison { missing, unexpected })
    }

    async fn remove_holder(&self, grant: &RoleGrant, holder: &str) -> Result<(), ConnectorError> {
        match self.target(grant)? {
            Target::Group(group) => self.change(group, &[holder.to_owned()], false).await,
            Target::Entitlement(value) => self.change_entitlement(holder, value, false).await,
        }
    }

    async fn discover(&self) -> Result<Vec<DiscoveredResource>, ConnectorError> {
        let mut out = Vec::new();
        let mut start = 1;
        for _ in 0..MAX_PAGES {
            let mut url = self.url(&["Groups"]);
            url.query_pairs_mut()
                .append_pair("attributes", "displayName")
                .append_pair("startIndex", &start.to_string())
                .append_pair("count", &PAGE.to_string());
            let page: ListResponse<GroupSummary> =
                self.get_json(url).await.map_err(|f| f.into_error("listing groups"))?;
            let n = page.resources.len();
            out.extend(page.resources.into_iter().map(|g| DiscoveredResource {
                display_name: g.display_name.map(|d| clean(&d)).unwrap_or_else(|| g.id.clone()),
                origin_id: g.id,
                roles: vec![(MEMBER.to_owned(), MEMBER.to_owned())],
            }));
            start += n;
            if n == 0 || page.total_results.is_some_and(|t| start > t) {
                break;
            }
        }
        out.sort_by(|a, b| a.display_name.cmp(&b.display_name).then_with(|| a.origin_id.cmp(&b.origin_id)));
        if !self.settings.entitlements.is_empty() {
            out.push(DiscoveredResource {
                origin_id: ENTITLEMENTS.to_owned(),
                display_name: "App roles (entitlements)".to_owned(),
                roles: self.settings.entitlements.iter().map(|e| (e.clone(), e.clone())).collect(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_json_string_literals() {
        assert_eq!(literal("ada@example.com"), "\"ada@example.com\"");
        assert_eq!(literal("x\" or userName pr or \"y"), "\"x\\\" or userName pr or \\\"y\"");
        assert_eq!(literal("back\\slash"), "\"back\\\\slash\"");
        assert_eq!(literal("nul\0"), "\"nul\\u0000\"");
    }

    #[test]
    fn what_an_application_says_is_cleaned_and_bounded() {
        assert_eq!(clean("bad\r\nINFO forged line"), "bad  INFO forged line");
        let long = "x".repeat(1000);
        assert_eq!(clean(&long).chars().count(), 301);
    }

    #[test]
    fn base_urls_are_checked() {
        let s = |u: &str| ScimSettings {
            base_url: u.into(),
            user_key: UserKey::UserPrincipalName,
            match_attribute: ScimMatch::UserName,
            create_users: false,
            timeout_seconds: 5,
            entitlements: Vec::new(),
        };
        assert!(s("https://app.example.com/scim/v2").check().is_ok());
        assert!(s("ftp://app.example.com/").check().is_err());
        assert!(s("https://app.example.com/scim?x=1").check().is_err());
        assert!(s("https://user:pw@app.example.com/scim").check().is_err());
        assert!(s("not a url").check().is_err());
        let c = ScimConnector::new(s("http://127.0.0.1:9/scim/v2"), None).unwrap();
        assert_eq!(c.url(&["Groups", "a/b?c"]).as_str(), "http://127.0.0.1:9/scim/v2/Groups/a%2Fb%3Fc");
        assert_eq!(c.url(&["ServiceProviderConfig"]).as_str(), "http://127.0.0.1:9/scim/v2/ServiceProviderConfig");
    }
}
