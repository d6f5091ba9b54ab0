//! Custom extensions (Graph's customCalloutExtension family): HTTP endpoints that a catalog's
//! assignment policies call at stages of a request or an assignment, fire-and-forget or
//! launch-and-wait. Owns their configuration and its checks, the stage settings policies name
//! them by, the record of one call (a callout instance), the payload Steward posts, its HMAC
//! signature and the body of a resume. Pure: the signing secret and the time come in as
//! parameters; calling the endpoint belongs to the shell.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::DomainError;
use crate::duration::GraphDuration;
use crate::enums::{CalloutStatus, CustomExtensionStage, RequestType};
use crate::ids::{AccessPackageId, AssignmentId, CalloutInstanceId, CatalogId, CustomExtensionId, PolicyId, RequestId};
use crate::text::{DisplayName, clip};

/// The header that carries a callout's signature.
pub const SIGNATURE_HEADER: &str = "Steward-Signature";
/// The `source` of every callout Steward sends.
pub const SOURCE: &str = "Steward";

/// Default and largest wait for an endpoint's answer, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;
/// Kept well under the job lease (60 s), so a slow endpoint never outlives the lease of the job
/// that calls it (another process would then call again).
pub const MAX_TIMEOUT_MS: u32 = 30_000;
/// Default and largest number of retries of a call that failed transiently.
pub const DEFAULT_RETRIES: u32 = 3;
pub const MAX_RETRIES: u32 = 5;
/// Bounds of a launch-and-wait extension's `timeoutDuration`, in seconds (PT5M, P14D).
pub const MIN_CALLBACK_SECS: i64 = 5 * 60;
pub const MAX_CALLBACK_SECS: i64 = 14 * 86_400;
/// The longest target URL accepted.
pub const URL_MAX: usize = 2048;

/// The two kinds of custom extension entitlement management runs: one called at stages of a
/// request, one at stages of an assignment (before it expires).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtensionKind {
    RequestWorkflow,
    AssignmentWorkflow,
}

impl ExtensionKind {
    pub const ALL: [Self; 2] = [Self::RequestWorkflow, Self::AssignmentWorkflow];

    /// Graph's `@odata.type`, with its `#`.
    pub const fn odata_type(self) -> &'static str {
        match self {
            Self::RequestWorkflow => "#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension",
            Self::AssignmentWorkflow => "#microsoft.graph.accessPackageAssignmentWorkflowExtension",
        }
    }

    /// The name the store keeps.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RequestWorkflow => "requestWorkflow",
            Self::AssignmentWorkflow => "assignmentWorkflow",
        }
    }

    /// The kind an `@odata.type` names, with or without `#`, in any letter case.
    pub fn from_odata_type(t: &str) -> Result<Self, DomainError> {
        let bare = t.strip_prefix('#').unwrap_or(t);
        Self::ALL
            .into_iter()
            .find(|k| k.odata_type().get(1..).is_some_and(|c| c.eq_ignore_ascii_case(bare)))
            .ok_or_else(|| {
                DomainError::invalid(format!(
                    "@odata.type '{}' is not a custom extension entitlement management can run; use '{}' (request \
                     stages) or '{}' (assignment stages).",
                    clip(t, 80),
                    Self::RequestWorkflow.odata_type(),
                    Self::AssignmentWorkflow.odata_type()
                ))
            })
    }

    /// Whether an extension of this kind can be called at `stage`.
    pub const fn fits(self, stage: CustomExtensionStage) -> bool {
        use CustomExtensionStage as S;
        match self {
            Self::RequestWorkflow => matches!(
                stage,
                S::AssignmentRequestCreated
                    | S::AssignmentRequestApproved
                    | S::AssignmentRequestGranted
                    | S::AssignmentRequestRemoved
            ),
            Self::AssignmentWorkflow => {
                matches!(stage, S::AssignmentFourteenDaysBeforeExpiration | S::AssignmentOneDayBeforeExpiration)
            }
        }
    }
}

impl FromStr for ExtensionKind {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| DomainError::invalid(format!("'{}' is not a custom extension kind.", clip(s, 40))))
    }
}

/// Whether a stage can hold a request until the extension calls back: only those before
/// access is given (Graph allows a callback configuration on these two alone).
pub const fn can_wait(stage: CustomExtensionStage) -> bool {
    matches!(stage, CustomExtensionStage::AssignmentRequestCreated | CustomExtensionStage::AssignmentRequestApproved)
}

/// The `@odata.type` of `v`'s object, if it names one, without `#`.
fn odata_type(m: &Map<String, Value>) -> Result<Option<&str>, DomainError> {
    match m.get("@odata.type") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(t)) => Ok(Some(t.strip_prefix('#').unwrap_or(t))),
        Some(_) => Err(DomainError::invalid("@odata.type must be a string.")),
    }
}

/// Refuses properties of `m` other than `allowed` (and `@odata.type`), naming the first.
fn only(m: &Map<String, Value>, what: &str, allowed: &[&str]) -> Result<(), DomainError> {
    match m.keys().find(|k| k.as_str() != "@odata.type" && !allowed.iter().any(|a| a.eq_ignore_ascii_case(k))) {
        Some(k) => Err(DomainError::invalid(format!(
            "{what} has no property '{}'; it takes {}.",
            clip(k, 80),
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// A property of `m`, found ignoring letter case, as Graph matches property names.
fn prop<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    m.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// The endpoint Steward posts to (Graph's `httpRequestEndpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub target_url: String,
}

impl Endpoint {
    /// Parses `endpointConfiguration`: an `httpRequestEndpoint` with a `targetUrl`.
    pub fn parse(v: &Value) -> Result<Self, DomainError> {
        let Value::Object(m) = v else {
            return Err(DomainError::invalid(
                "endpointConfiguration must be an object: {\"@odata.type\": \"#microsoft.graph.httpRequestEndpoint\", \
                 \"targetUrl\": \"https://…\"}.",
            ));
        };
        match odata_type(m)? {
            Some(t) if t.eq_ignore_ascii_case("microsoft.graph.httpRequestEndpoint") => {}
            Some(t) if t.eq_ignore_ascii_case("microsoft.graph.logicAppTriggerEndpointConfiguration") => {
                return Err(DomainError::invalid(
                    "Steward calls HTTP endpoints, not Azure Logic Apps by subscription: use \
                     '#microsoft.graph.httpRequestEndpoint' with the endpoint's targetUrl.",
                ));
            }
            Some(t) => {
                return Err(DomainError::invalid(format!(
                    "endpointConfiguration of type '{}' is not supported; use '#microsoft.graph.httpRequestEndpoint'.",
                    clip(t, 80)
                )));
            }
            None => {
                return Err(DomainError::invalid(
                    "endpointConfiguration needs \"@odata.type\": \"#microsoft.graph.httpRequestEndpoint\".",
                ));
            }
        }
        only(m, "endpointConfiguration", &["targetUrl"])?;
        let url = match prop(m, "targetUrl") {
            Some(Value::String(u)) => u.trim().to_owned(),
            _ => return Err(DomainError::invalid("endpointConfiguration.targetUrl is required (a URL).")),
        };
        check_url(&url)?;
        Ok(Self { target_url: url })
    }

    pub fn to_json(&self) -> Value {
        json!({"@odata.type": "#microsoft.graph.httpRequestEndpoint", "targetUrl": self.target_url})
    }
}

/// Checks a target URL: `https://`, or plain `http://` to this machine only (127.0.0.1, ::1,
/// localhost), since a callout carries access decisions and must not travel in clear text.
pub fn check_url(url: &str) -> Result<(), DomainError> {
    let bad =
        |why: &str| Err(DomainError::invalid(format!("endpointConfiguration.targetUrl '{}' {why}", clip(url, 120))));
    if url.len() > URL_MAX {
        return bad(&format!("is longer than {URL_MAX} characters."));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not contain spaces or control characters.");
    }
    let lower = url.to_ascii_lowercase();
    let (secure, rest) = match (lower.strip_prefix("https://"), lower.strip_prefix("http://")) {
        (Some(r), _) => (true, r),
        (None, Some(r)) => (false, r),
        (None, None) => return bad("must be an https:// URL."),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return bad("must not carry a user name or password.");
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, port)) if port.is_empty() || port.starts_with(':') => h,
            _ => return bad("has a malformed host."),
        }
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return bad("has no host.");
    }
    if !secure && !matches!(host, "127.0.0.1" | "::1" | "localhost") {
        return bad("must use https:// (plain http:// is allowed only to 127.0.0.1, ::1 or localhost).");
    }
    Ok(())
}

/// How Steward calls the endpoint (Graph's `customExtensionClientConfiguration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConfiguration {
    pub timeout_in_milliseconds: u32,
    pub maximum_retries: u32,
}

impl Default for ClientConfiguration {
    fn default() -> Self {
        Self { timeout_in_milliseconds: DEFAULT_TIMEOUT_MS, maximum_retries: DEFAULT_RETRIES }
    }
}

impl ClientConfiguration {
    /// Parses `clientConfiguration`; null or absent properties take the defaults (10 s, 3).
    pub fn parse(v: &Value) -> Result<Self, DomainError> {
        let m = match v {
            Value::Null => return Ok(Self::default()),
            Value::Object(m) => m,
            _ => {
                return Err(DomainError::invalid(
                    "clientConfiguration must be an object: {\"timeoutInMilliseconds\": …, \"maximumRetries\": …}.",
                ));
            }
        };
        if let Some(t) = odata_type(m)?
            && !t.eq_ignore_ascii_case("microsoft.graph.customExtensionClientConfiguration")
        {
            return Err(DomainError::invalid(format!(
                "clientConfiguration of type '{}' is not valid; use '#microsoft.graph.customExtensionClientConfiguration'.",
                clip(t, 80)
            )));
        }
        only(m, "clientConfiguration", &["timeoutInMilliseconds", "maximumRetries"])?;
        let number = |name: &str, default: u32, min: u32, max: u32| -> Result<u32, DomainError> {
            match prop(m, name) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Number(n)) => {
                    n.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| (min..=max).contains(n)).ok_or_else(
                        || DomainError::invalid(format!("clientConfiguration.{name} must be {min} to {max}.")),
                    )
                }
                Some(_) => Err(DomainError::invalid(format!("clientConfiguration.{name} must be a number."))),
            }
        };
        Ok(Self {
            timeout_in_milliseconds: number("timeoutInMilliseconds", DEFAULT_TIMEOUT_MS, 1, MAX_TIMEOUT_MS)?,
            maximum_retries: number("maximumRetries", DEFAULT_RETRIES, 0, MAX_RETRIES)?,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "@odata.type": "#microsoft.graph.customExtensionClientConfiguration",
            "timeoutInMilliseconds": self.timeout_in_milliseconds,
            "maximumRetries": self.maximum_retries,
        })
    }
}

/// Present on a launch-and-wait extension: how long the request waits for the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackConfiguration {
    pub timeout_duration: GraphDuration,
}

impl CallbackConfiguration {
    /// Parses `callbackConfiguration`: null is none (fire-and-forget).
    pub fn parse(v: &Value) -> Result<Option<Self>, DomainError> {
        let m = match v {
            Value::Null => return Ok(None),
            Value::Object(m) => m,
            _ => {
                return Err(DomainError::invalid(
                    "callbackConfiguration must be an object: {\"@odata.type\": \
                     \"#microsoft.graph.customExtensionCallbackConfiguration\", \"timeoutDuration\": \"PT1H\"}, or null.",
                ));
            }
        };
        if let Some(t) = odata_type(m)?
            && !t.eq_ignore_ascii_case("microsoft.graph.customExtensionCallbackConfiguration")
        {
            return Err(DomainError::invalid(format!(
                "callbackConfiguration of type '{}' is not supported; use \
                 '#microsoft.graph.customExtensionCallbackConfiguration'.",
                clip(t, 80)
            )));
        }
        only(m, "callbackConfiguration", &["timeoutDuration"])?;
        let d = match prop(m, "timeoutDuration") {
            Some(Value::String(s)) => GraphDuration::parse(s)?,
            _ => {
                return Err(DomainError::invalid(
                    "callbackConfiguration.timeoutDuration is required (an ISO 8601 duration such as PT1H).",
                ));
            }
        };
        let secs = d.as_signed().as_secs();
        if !(MIN_CALLBACK_SECS..=MAX_CALLBACK_SECS).contains(&secs) {
            return Err(DomainError::invalid(format!(
                "callbackConfiguration.timeoutDuration must be between PT5M and P14D; got {d}."
            )));
        }
        Ok(Some(Self { timeout_duration: d }))
    }

    pub fn to_json(&self) -> Value {
        json!({
            "@odata.type": "#microsoft.graph.customExtensionCallbackConfiguration",
            "timeoutDuration": self.timeout_duration,
        })
    }
}

/// How an extension is called, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Configuration {
    pub endpoint: Endpoint,
    #[serde(default)]
    pub client: ClientConfiguration,
    /// Present: launch-and-wait; absent: fire-and-forget.
    #[serde(default)]
    pub callback: Option<CallbackConfiguration>,
}

/// A catalog's custom extension. Its signing secret is kept apart, sealed, never in this value.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomExtension {
    pub id: CustomExtensionId,
    pub catalog_id: CatalogId,
    pub kind: ExtensionKind,
    pub display_name: DisplayName,
    pub description: Option<String>,
    pub config: Configuration,
    pub created_date_time: Timestamp,
    pub last_modified_date_time: Timestamp,
}

impl CustomExtension {
    /// The extension in Graph's shape (with its `@odata.type`).
    pub fn to_json(&self) -> Value {
        json!({
            "@odata.type": self.kind.odata_type(),
            "id": self.id,
            "displayName": self.display_name,
            "description": self.description,
            "endpointConfiguration": self.config.endpoint.to_json(),
            "authenticationConfiguration": null,
            "clientConfiguration": self.config.client.to_json(),
            "callbackConfiguration": self.config.callback.map(|c| c.to_json()),
            "createdDateTime": crate::time::format_datetime(self.created_date_time),
            "lastModifiedDateTime": crate::time::format_datetime(self.last_modified_date_time),
        })
    }

    /// Whether a policy may call this extension at `stage`, and if not, why.
    pub fn check_stage(&self, stage: CustomExtensionStage) -> Result<(), DomainError> {
        if !self.kind.fits(stage) {
            return Err(DomainError::invalid(format!(
                "Custom extension '{}' is an {} and cannot run at stage {stage}; request stages take \
                 accessPackageAssignmentRequestWorkflowExtension, expiry stages accessPackageAssignmentWorkflowExtension.",
                self.display_name,
                self.kind.odata_type().trim_start_matches("#microsoft.graph.")
            )));
        }
        if self.config.callback.is_some() && !can_wait(stage) {
            return Err(DomainError::invalid(format!(
                "Custom extension '{}' waits for a callback (callbackConfiguration), which only the stages \
                 assignmentRequestCreated and assignmentRequestApproved allow; it cannot run at stage {stage}.",
                self.display_name
            )));
        }
        Ok(())
    }

    /// How long a request waits for this extension's callback at `stage`, if it waits at all.
    pub fn wait_at(&self, stage: CustomExtensionStage) -> Option<GraphDuration> {
        self.config.callback.filter(|_| can_wait(stage)).map(|c| c.timeout_duration)
    }
}

/// A policy's `customExtensionStageSettings` entry: which extension runs at which stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageSetting {
    #[serde(default)]
    pub id: Option<String>,
    pub stage: CustomExtensionStage,
    pub custom_extension: ExtensionRef,
}

/// A reference to an extension by id (other properties a client sends along are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionRef {
    pub id: CustomExtensionId,
}

/// Gives settings without an id one, and refuses a stage named twice: one extension per stage.
pub fn check_stage_settings(settings: &mut [StageSetting]) -> Result<(), DomainError> {
    for (i, s) in settings.iter().enumerate() {
        if settings.iter().take(i).any(|o| o.stage == s.stage) {
            return Err(DomainError::invalid(format!(
                "customExtensionStageSettings names stage {} more than once; one custom extension runs per stage.",
                s.stage
            )));
        }
    }
    for s in settings.iter_mut() {
        if s.id.as_deref().is_none_or(|id| id.trim().is_empty()) {
            s.id = Some(uuid::Uuid::now_v7().to_string());
        }
    }
    Ok(())
}

/// The extension a request runs at one stage, as its policy said when the request was
/// submitted (kept with the request, so a policy changed later does not change it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageExtension {
    pub stage: CustomExtensionStage,
    pub extension: CustomExtensionId,
}

/// What a request keeps of its policy's stage settings.
pub fn snapshot(settings: &[StageSetting]) -> Vec<StageExtension> {
    settings.iter().map(|s| StageExtension { stage: s.stage, extension: s.custom_extension.id }).collect()
}

/// One call of an extension at one stage (Graph's customExtensionCalloutInstance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalloutInstance {
    pub id: CalloutInstanceId,
    pub extension_id: CustomExtensionId,
    pub request_id: Option<RequestId>,
    pub assignment_id: Option<AssignmentId>,
    pub stage: CustomExtensionStage,
    pub status: CalloutStatus,
    pub detail: Option<String>,
    pub created_date_time: Timestamp,
    /// Changes on every write; the store's optimistic-concurrency token.
    pub modified_date_time: Timestamp,
}

impl CalloutInstance {
    /// As Graph shows it on a request or an assignment.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "customExtensionId": self.extension_id,
            "detail": self.detail,
            "externalCorrelationId": null,
            "status": self.status,
        })
    }
}

/// The path a launch-and-wait extension posts its callback to.
pub fn resume_path(request: RequestId) -> String {
    format!("/v1.0/identityGovernance/entitlementManagement/assignmentRequests/{request}/resume")
}

/// What a callout's payload says about the access package it is about.
#[derive(Debug, Clone)]
pub struct PackageInfo {
    pub id: AccessPackageId,
    pub display_name: String,
    pub catalog_id: CatalogId,
    pub policy_id: Option<PolicyId>,
}

/// What a callout's payload says about the user the access is for.
#[derive(Debug, Clone)]
pub struct TargetInfo {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
}

/// Everything a callout's payload is made of.
#[derive(Debug, Clone)]
pub struct Callout<'a> {
    pub stage: CustomExtensionStage,
    pub instance: CalloutInstanceId,
    pub extension: &'a CustomExtension,
    pub request: Option<(RequestId, RequestType)>,
    pub assignment: Option<AssignmentId>,
    pub package: PackageInfo,
    pub target: Option<TargetInfo>,
    /// When the assignment ends (expiry stages).
    pub expiration: Option<Timestamp>,
    /// Set when the request waits for the callback: how long.
    pub wait: Option<GraphDuration>,
}

/// The JSON body of a callout (documented in the README, "Custom extensions").
pub fn payload(c: &Callout<'_>) -> Value {
    let mut data = Map::new();
    let data_type = if c.request.is_some() {
        "#microsoft.graph.accessPackageAssignmentRequestCalloutData"
    } else {
        "#microsoft.graph.accessPackageAssignmentCalloutData"
    };
    data.insert("@odata.type".into(), json!(data_type));
    data.insert("stage".into(), json!(c.stage));
    data.insert("customExtensionStageInstanceId".into(), json!(c.instance));
    data.insert("customExtension".into(), json!({"id": c.extension.id, "displayName": c.extension.display_name}));
    if let Some((id, kind)) = c.request {
        data.insert("accessPackageAssignmentRequestId".into(), json!(id));
        data.insert("requestType".into(), json!(kind));
    }
    if let Some(a) = c.assignment {
        data.insert("accessPackageAssignmentId".into(), json!(a));
    }
    data.insert("accessPackage".into(), json!({"id": c.package.id, "displayName": c.package.display_name}));
    data.insert("accessPackageCatalog".into(), json!({"id": c.package.catalog_id}));
    data.insert("assignmentPolicy".into(), json!({"id": c.package.policy_id}));
    if let Some(t) = &c.target {
        data.insert(
            "target".into(),
            json!({"id": t.id, "userPrincipalName": t.user_principal_name, "displayName": t.display_name}),
        );
    }
    if let Some(e) = c.expiration {
        data.insert("expirationDateTime".into(), json!(crate::time::format_datetime(e)));
    }
    if let (Some(wait), Some((id, _))) = (c.wait, c.request) {
        data.insert("callbackUriPath".into(), json!(resume_path(id)));
        data.insert("callbackConfiguration".into(), json!({"timeoutDuration": wait}));
    }
    json!({
        "source": SOURCE,
        "type": format!("microsoft.graph.accessPackageCustomExtensionStage.{}", c.stage),
        "data": Value::Object(data),
    })
}

/// HMAC-SHA256 of `message` under `key`, as lowercase hex.
pub(crate) fn hmac_hex(key: &[u8], message: &[&[u8]]) -> Result<String, DomainError> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .map_err(|_| DomainError::invalid("the signing key cannot be used for HMAC-SHA256."))?;
    for part in message {
        mac.update(part);
    }
    Ok(hex(&mac.finalize().into_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0')));
        }
    }
    out
}

/// The `Steward-Signature` header of a callout sent at unix second `t` with `body`:
/// `t=<t>,v1=<lowercase hex HMAC-SHA256(secret, "<t>.<body>")>`. The key is the extension's
/// `signingSecret` exactly as the creation response showed it (its ASCII bytes).
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> Result<String, DomainError> {
    let t = t.to_string();
    let v1 = hmac_hex(secret, &[t.as_bytes(), b".", body])?;
    Ok(format!("t={t},v1={v1}"))
}

/// A resume (`POST …/assignmentRequests/{id}/resume`) as a launch-and-wait extension sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct Resume {
    pub source: Option<String>,
    pub stage: Option<CustomExtensionStage>,
    pub instance: CalloutInstanceId,
    pub detail: Option<String>,
    /// `data.state == "denied"`: the extension refuses the request.
    pub denied: bool,
}

impl fmt::Debug for Resume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resume").field("stage", &self.stage).field("instance", &self.instance).finish_non_exhaustive()
    }
}

/// The longest `customExtensionStageInstanceDetail` kept, in characters.
pub const RESUME_DETAIL_MAX: usize = 1000;

impl Resume {
    /// Parses Graph's resume body: `{"source", "type": "microsoft.graph.accessPackageCustomExtensionStage.<stage>",
    /// "data": {"@odata.type": "microsoft.graph.accessPackageAssignmentRequestCallbackData", "stage",
    /// "customExtensionStageInstanceId", "customExtensionStageInstanceDetail", "state"}}`. Names and
    /// `@odata.type` are matched ignoring case, with or without `#`.
    pub fn parse(v: &Value) -> Result<Self, DomainError> {
        let Value::Object(m) = v else {
            return Err(DomainError::invalid("The resume body must be a JSON object with source, type and data."));
        };
        only(m, "The resume body", &["source", "type", "data"])?;
        let source = match prop(m, "source") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(clip(s, 200)),
            Some(_) => return Err(DomainError::invalid("source must be a string.")),
        };
        let type_stage = match prop(m, "type") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) => {
                let prefix = "microsoft.graph.accessPackageCustomExtensionStage.";
                let stage = t
                    .get(..prefix.len())
                    .filter(|p| p.eq_ignore_ascii_case(prefix))
                    .and_then(|_| t.get(prefix.len()..));
                match stage {
                    Some(stage) => Some(stage.parse::<CustomExtensionStage>()?),
                    None => {
                        return Err(DomainError::invalid(format!(
                            "type '{}' is not valid; send 'microsoft.graph.accessPackageCustomExtensionStage.<stage>'.",
                            clip(t, 120)
                        )));
                    }
                }
            }
            Some(_) => return Err(DomainError::invalid("type must be a string.")),
        };
        let Some(Value::Object(d)) = prop(m, "data") else {
            return Err(DomainError::invalid(
                "data is required: {\"@odata.type\": \"#microsoft.graph.accessPackageAssignmentRequestCallbackData\", \
                 \"customExtensionStageInstanceId\": …}.",
            ));
        };
        match odata_type(d)? {
            Some(t) if t.eq_ignore_ascii_case("microsoft.graph.accessPackageAssignmentRequestCallbackData") => {}
            Some(t) => {
                return Err(DomainError::invalid(format!(
                    "data of type '{}' is not valid here; send '#microsoft.graph.accessPackageAssignmentRequestCallbackData'.",
                    clip(t, 120)
                )));
            }
            None => {
                return Err(DomainError::invalid(
                    "data needs \"@odata.type\": \"#microsoft.graph.accessPackageAssignmentRequestCallbackData\".",
                ));
            }
        }
        only(d, "data", &["stage", "customExtensionStageInstanceId", "customExtensionStageInstanceDetail", "state"])?;
        let stage = match prop(d, "stage") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.parse::<CustomExtensionStage>()?),
            Some(_) => return Err(DomainError::invalid("data.stage must be a string.")),
        };
        if let (Some(a), Some(b)) = (type_stage, stage)
            && a != b
        {
            return Err(DomainError::invalid(format!("type names stage {a} but data.stage is {b}.")));
        }
        let instance = match prop(d, "customExtensionStageInstanceId") {
            Some(Value::String(s)) => s.parse::<CalloutInstanceId>()?,
            _ => {
                return Err(DomainError::invalid(
                    "data.customExtensionStageInstanceId is required: the id the callout carried.",
                ));
            }
        };
        let detail = match prop(d, "customExtensionStageInstanceDetail") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
            Some(_) => return Err(DomainError::invalid("data.customExtensionStageInstanceDetail must be a string.")),
        };
        if detail.as_ref().is_some_and(|d| d.chars().count() > RESUME_DETAIL_MAX) {
            return Err(DomainError::invalid(format!(
                "data.customExtensionStageInstanceDetail is longer than {RESUME_DETAIL_MAX} characters."
            )));
        }
        let denied = match prop(d, "state") {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("denied") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("approved") || s.eq_ignore_ascii_case("resumed") => false,
            Some(_) => {
                return Err(DomainError::invalid(
                    "data.state must be \"denied\" (to deny the request) or left out (to let it go on).",
                ));
            }
        };
        Ok(Self { source, stage: stage.or(type_stage), instance, detail, denied })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(kind: ExtensionKind, callback: Option<i64>) -> CustomExtension {
        let at: Timestamp = "2031-01-01T00:00:00Z".parse().unwrap();
        CustomExtension {
            id: CustomExtensionId::new(),
            catalog_id: CatalogId::new(),
            kind,
            display_name: DisplayName::parse("SoD check").unwrap(),
            description: None,
            config: Configuration {
                endpoint: Endpoint { target_url: "https://hooks.example.test/x".into() },
                client: ClientConfiguration::default(),
                callback: callback.map(|s| CallbackConfiguration { timeout_duration: GraphDuration::from_secs(s) }),
            },
            created_date_time: at,
            last_modified_date_time: at,
        }
    }

    /// RFC 4231 test cases 1, 2 and 6 (a key longer than the block): the HMAC under the signature.
    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        let cases: [(&[u8], &[u8], &str); 3] = [
            (&[0x0b; 20], b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ];
        for (key, data, want) in cases {
            assert_eq!(hmac_hex(key, &[data]).unwrap(), want);
        }
        // Split input is the same message.
        assert_eq!(hmac_hex(b"Jefe", &[b"what do ya ", b"want for nothing?"]).unwrap(), cases[1].2);
    }

    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        let sig = signature(b"Jefe", 1_700_000_000, b"{\"a\":1}").unwrap();
        // As the README's Python recipe computes it:
        // hmac.new(b"Jefe", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
        let want = "fa5f6481efc59da48b19c9dc10196c9953e5651f8304b3a318b6b87d70272e0a";
        assert_eq!(sig, format!("t=1700000000,v1={want}"));
        assert_ne!(sig, signature(b"Jefe", 1_700_000_001, b"{\"a\":1}").unwrap(), "another time, another signature");
        assert_ne!(sig, signature(b"Jefe", 1_700_000_000, b"{\"a\":2}").unwrap(), "another body, another signature");
        assert_ne!(sig, signature(b"jefe", 1_700_000_000, b"{\"a\":1}").unwrap(), "another key, another signature");
    }

    #[test]
    fn target_urls_need_https_except_to_this_machine() {
        for ok in [
            "https://hooks.example.test/x",
            "HTTPS://Hooks.Example.Test:8443/a?b=c",
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://[::1]:9000/",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://hooks.example.test/x",
            "http://10.0.0.1/x",
            "ftp://127.0.0.1/x",
            "https://",
            "https://user:pw@hooks.example.test/",
            "https://hooks.example.test/a b",
            "http://127.0.0.1.evil.test/",
            "hooks.example.test",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn configurations_parse_with_defaults_and_bounds() {
        let c = ClientConfiguration::parse(&json!({"timeoutInMilliseconds": 500})).unwrap();
        assert_eq!((c.timeout_in_milliseconds, c.maximum_retries), (500, DEFAULT_RETRIES));
        assert_eq!(ClientConfiguration::parse(&Value::Null).unwrap(), ClientConfiguration::default());
        assert!(ClientConfiguration::parse(&json!({"timeoutInMilliseconds": 60_001})).is_err());
        assert!(ClientConfiguration::parse(&json!({"maximumRetries": 6})).is_err());
        assert!(ClientConfiguration::parse(&json!({"retries": 1})).is_err());
        let cb = CallbackConfiguration::parse(
            &json!({"@odata.type": "microsoft.graph.customExtensionCallbackConfiguration", "timeoutDuration": "PT1H"}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(cb.timeout_duration.to_string(), "PT1H");
        assert!(CallbackConfiguration::parse(&json!({"timeoutDuration": "PT4M"})).is_err());
        assert!(CallbackConfiguration::parse(&json!({"timeoutDuration": "P15D"})).is_err());
        assert!(CallbackConfiguration::parse(&json!({})).is_err());
        assert_eq!(CallbackConfiguration::parse(&Value::Null).unwrap(), None);
        let e = Endpoint::parse(
            &json!({"@odata.type": "#microsoft.graph.httpRequestEndpoint", "targetUrl": "https://a.test/"}),
        )
        .unwrap();
        assert_eq!(e.to_json()["targetUrl"], "https://a.test/");
        assert!(Endpoint::parse(&json!({"targetUrl": "https://a.test/"})).is_err(), "@odata.type is required");
        let e = Endpoint::parse(&json!({"@odata.type": "#microsoft.graph.logicAppTriggerEndpointConfiguration"}));
        assert!(e.unwrap_err().to_string().contains("httpRequestEndpoint"));
    }

    #[test]
    fn stages_fit_kinds_and_only_early_stages_wait() {
        use CustomExtensionStage as S;
        let req = ext(ExtensionKind::RequestWorkflow, None);
        assert!(req.check_stage(S::AssignmentRequestGranted).is_ok());
        assert!(req.check_stage(S::AssignmentOneDayBeforeExpiration).is_err());
        let asg = ext(ExtensionKind::AssignmentWorkflow, None);
        assert!(asg.check_stage(S::AssignmentFourteenDaysBeforeExpiration).is_ok());
        assert!(asg.check_stage(S::AssignmentRequestCreated).is_err());
        let waits = ext(ExtensionKind::RequestWorkflow, Some(3600));
        assert!(waits.check_stage(S::AssignmentRequestApproved).is_ok());
        assert!(waits.check_stage(S::AssignmentRequestGranted).unwrap_err().to_string().contains("callback"));
        assert_eq!(waits.wait_at(S::AssignmentRequestCreated), Some(GraphDuration::from_secs(3600)));
        assert_eq!(req.wait_at(S::AssignmentRequestCreated), None);
        assert_eq!(
            ExtensionKind::from_odata_type("MICROSOFT.graph.accessPackageAssignmentWorkflowExtension").unwrap(),
            ExtensionKind::AssignmentWorkflow
        );
        assert!(ExtensionKind::from_odata_type("#microsoft.graph.customCalloutExtension").is_err());
    }

    #[test]
    fn stage_settings_get_ids_and_name_each_stage_once() {
        let x = CustomExtensionId::new();
        let setting = |stage| StageSetting { id: None, stage, custom_extension: ExtensionRef { id: x } };
        let mut ok = vec![setting(CustomExtensionStage::AssignmentRequestCreated)];
        check_stage_settings(&mut ok).unwrap();
        assert!(ok[0].id.is_some());
        let mut twice = vec![setting(CustomExtensionStage::AssignmentRequestCreated); 2];
        assert!(check_stage_settings(&mut twice).is_err());
        let parsed: StageSetting = serde_json::from_value(json!({
            "stage": "AssignmentRequestCreated",
            "customExtension": {"@odata.type": "#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension", "id": x.to_string()}
        }))
        .unwrap();
        assert_eq!(parsed.custom_extension.id, x);
        assert_eq!(serde_json::to_value(&parsed).unwrap()["stage"], "assignmentRequestCreated");
    }

    #[test]
    fn the_payload_says_where_to_call_back_only_when_waiting() {
        let x = ext(ExtensionKind::RequestWorkflow, Some(3600));
        let r = RequestId::new();
        let mut c = Callout {
            stage: CustomExtensionStage::AssignmentRequestCreated,
            instance: CalloutInstanceId::new(),
            extension: &x,
            request: Some((r, RequestType::UserAdd)),
            assignment: None,
            package: PackageInfo {
                id: AccessPackageId::new(),
                display_name: "Sales".into(),
                catalog_id: x.catalog_id,
                policy_id: None,
            },
            target: Some(TargetInfo {
                id: "u".into(),
                user_principal_name: "u@x.test".into(),
                display_name: "U".into(),
            }),
            expiration: None,
            wait: Some(GraphDuration::from_secs(3600)),
        };
        let p = payload(&c);
        assert_eq!(p["source"], "Steward");
        assert_eq!(p["type"], "microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestCreated");
        assert_eq!(p["data"]["callbackUriPath"], resume_path(r));
        assert_eq!(p["data"]["accessPackageAssignmentRequestId"], r.to_string());
        assert_eq!(p["data"]["target"]["userPrincipalName"], "u@x.test");
        c.wait = None;
        assert!(payload(&c)["data"].get("callbackUriPath").is_none());
    }

    #[test]
    fn resume_bodies_parse_as_docs_and_the_sdk_send_them() {
        let i = CalloutInstanceId::new();
        let docs = json!({"source": "Contoso.SodCheck", "type": "microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestCreated",
            "data": {"@odata.type": "microsoft.graph.accessPackageAssignmentRequestCallbackData", "stage": "AssignmentRequestCreated",
                     "customExtensionStageInstanceId": i.to_string(), "customExtensionStageInstanceDetail": "risky", "state": "denied"}});
        let r = Resume::parse(&docs).unwrap();
        assert!(r.denied);
        assert_eq!(
            (r.instance, r.stage, r.detail.as_deref()),
            (i, Some(CustomExtensionStage::AssignmentRequestCreated), Some("risky"))
        );
        let sdk = json!({"data": {"@odata.type": "#microsoft.graph.accessPackageAssignmentRequestCallbackData", "customExtensionStageInstanceId": i.to_string()}});
        assert!(!Resume::parse(&sdk).unwrap().denied);
        for (bad, needle) in [
            (json!({"data": {"customExtensionStageInstanceId": i.to_string()}}), "@odata.type"),
            (
                json!({"data": {"@odata.type": "#microsoft.graph.accessPackageAssignmentRequestCallbackData"}}),
                "customExtensionStageInstanceId",
            ),
            (
                json!({"data": {"@odata.type": "#microsoft.graph.accessPackageAssignmentRequestCallbackData", "customExtensionStageInstanceId": i.to_string(), "state": "maybe"}}),
                "state",
            ),
            (
                json!({"type": "microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestApproved", "data": {"@odata.type": "#microsoft.graph.accessPackageAssignmentRequestCallbackData", "stage": "assignmentRequestCreated", "customExtensionStageInstanceId": i.to_string()}}),
                "stage",
            ),
            (json!({"data": {}, "extra": 1}), "extra"),
        ] {
            let e = Resume::parse(&bad).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
