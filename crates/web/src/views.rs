//! Wire views of the request lifecycle: assignment requests, assignments, subjects, approvals
//! and their stages, in Graph's shapes, with their `$expand` navigations.

use std::collections::HashMap;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Value, json};
use steward_app::Services;
use steward_app::packages::require_package;
use steward_domain::approval::{ReviewResult, StageRecord};
use steward_domain::assignment::Assignment;
use steward_domain::directory::User;
use steward_domain::enums::{AssignmentState, RequestState, RequestType, UserType};
use steward_domain::ids::UserId;
use steward_domain::policy::Question;
use steward_domain::request::AssignmentRequest;
use steward_domain::schedule::Schedule;
use steward_odata::ExpandItem;

use crate::error::ApiError;
use crate::odata::{Cx, GraphEntity, check_nested, expand_one};

fn unknown_nav(nav: &str) -> ApiError {
    ApiError::bad_request(format!("Navigation property '{nav}' cannot be expanded."))
}

fn schedule_json(s: &Schedule) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("recurrence".into(), Value::Null);
    }
    v
}

/// `accessPackageAssignmentRequest`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    id: String,
    request_type: RequestType,
    state: RequestState,
    status: &'static str,
    #[serde(with = "steward_domain::time::serde_ts")]
    created_date_time: jiff::Timestamp,
    #[serde(with = "steward_domain::time::serde_opt_ts")]
    completed_date_time: Option<jiff::Timestamp>,
    justification: Option<String>,
    schedule: Value,
    answers: Vec<Value>,
    custom_extension_callout_instances: Vec<Value>,
    #[serde(skip)]
    pub inner: AssignmentRequest,
}

/// The `@odata.type` of each question of a request's policy, by question id.
async fn question_types(s: &Services, r: &AssignmentRequest) -> Result<HashMap<String, &'static str>, ApiError> {
    let Some(pid) = r.policy_id else { return Ok(HashMap::new()) };
    let Some(p) = s.store.get_policy(pid).await.map_err(steward_app::AppError::from)? else {
        return Ok(HashMap::new());
    };
    Ok(p.settings
        .questions
        .iter()
        .filter_map(|q| {
            let t = match q {
                Question::TextInput { .. } => "#microsoft.graph.accessPackageTextInputQuestion",
                Question::MultipleChoice { .. } => "#microsoft.graph.accessPackageMultipleChoiceQuestion",
            };
            q.base().id.clone().map(|id| (id, t))
        })
        .collect())
}

/// The callout instances of requests (or assignments), by the id they are about.
fn by_owner<K: std::hash::Hash + Eq>(
    all: Vec<steward_domain::extension::CalloutInstance>,
    key: impl Fn(&steward_domain::extension::CalloutInstance) -> Option<K>,
) -> HashMap<K, Vec<Value>> {
    let mut out: HashMap<K, Vec<Value>> = HashMap::new();
    for c in all {
        if let Some(k) = key(&c) {
            out.entry(k).or_default().push(c.to_json());
        }
    }
    out
}

impl RequestView {
    pub async fn build(s: &Services, r: AssignmentRequest) -> Result<Self, ApiError> {
        let callouts = s.store.callouts_of_requests(&[r.id]).await.map_err(steward_app::AppError::from)?;
        let callouts = callouts.into_iter().map(|c| c.to_json()).collect();
        Self::build_with(s, r, callouts).await
    }

    async fn build_with(s: &Services, r: AssignmentRequest, callouts: Vec<Value>) -> Result<Self, ApiError> {
        let types = if r.detail.answers.is_empty() { HashMap::new() } else { question_types(s, &r).await? };
        let answers = r
            .detail
            .answers
            .iter()
            .map(|a| {
                json!({
                    "@odata.type": "#microsoft.graph.accessPackageAnswerString",
                    "value": a.value,
                    "displayValue": a.display_value,
                    "answeredQuestion": {
                        "@odata.type": types.get(&a.question_id).copied().unwrap_or("#microsoft.graph.accessPackageTextInputQuestion"),
                        "id": a.question_id,
                    },
                })
            })
            .collect();
        let schedule = match r.detail.window {
            Some(w) => w.to_schedule(),
            None => r.detail.schedule.clone(),
        };
        Ok(Self {
            id: r.id.to_string(),
            request_type: r.request_type,
            state: r.state,
            status: r.status.as_str(),
            created_date_time: r.created_date_time,
            completed_date_time: r.completed_date_time,
            justification: r.detail.justification.clone(),
            schedule: schedule_json(&schedule),
            answers,
            custom_extension_callout_instances: callouts,
            inner: r,
        })
    }

    pub async fn build_all(s: &Services, rs: Vec<AssignmentRequest>) -> Result<Vec<Self>, ApiError> {
        let ids: Vec<_> = rs.iter().map(|r| r.id).collect();
        let all = s.store.callouts_of_requests(&ids).await.map_err(steward_app::AppError::from)?;
        let mut callouts = by_owner(all, |c| c.request_id);
        let mut out = Vec::with_capacity(rs.len());
        for r in rs {
            let mine = callouts.remove(&r.id).unwrap_or_default();
            out.push(Self::build_with(s, r, mine).await?);
        }
        Ok(out)
    }
}

async fn subject(s: &Services, id: Option<UserId>) -> Result<Option<SubjectView>, ApiError> {
    let Some(id) = id else { return Ok(None) };
    let Some(user) = s.store.get_user(id).await.map_err(steward_app::AppError::from)? else { return Ok(None) };
    // Whether Steward governs them: the guests it invited.
    let lifecycle = steward_app::lifecycle::guests::subject_lifecycle(s, &user).await?;
    Ok(Some(SubjectView { subject_lifecycle: lifecycle.as_str(), ..SubjectView::from(user) }))
}

#[async_trait]
impl GraphEntity for RequestView {
    const TYPE: &'static str = "accessPackageAssignmentRequest";
    const PROPS: &'static [&'static str] = &[
        "requestType",
        "state",
        "status",
        "createdDateTime",
        "completedDateTime",
        "justification",
        "schedule",
        "answers",
        "customExtensionCalloutInstances",
    ];
    const NAVS: &'static [&'static str] = &["accessPackage", "assignment", "requestor"];

    fn check_expand(nav: &'static str, item: &ExpandItem) -> Result<(), ApiError> {
        match nav {
            "accessPackage" => check_nested::<steward_domain::package::AccessPackage>(item, None),
            "assignment" => check_nested::<AssignmentView>(item, None),
            "requestor" => check_nested::<SubjectView>(item, None),
            other => Err(unknown_nav(other)),
        }
    }

    async fn expand(&self, cx: &Cx<'_>, nav: &'static str, item: &ExpandItem) -> Result<Value, ApiError> {
        match nav {
            "accessPackage" => {
                let p = require_package(cx.s, self.inner.access_package_id).await?;
                expand_one(cx, Some(p), item).await
            }
            "assignment" => {
                let a = match self.inner.assignment_id {
                    Some(a) => cx.s.store.get_assignment(a).await.map_err(steward_app::AppError::from)?,
                    None => None,
                };
                expand_one(cx, a.map(AssignmentView::from), item).await
            }
            "requestor" => expand_one(cx, subject(cx.s, self.inner.requestor_id).await?, item).await,
            other => Err(unknown_nav(other)),
        }
    }
}

/// `accessPackageAssignment`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentView {
    id: String,
    state: AssignmentState,
    status: String,
    #[serde(with = "steward_domain::time::serde_opt_ts")]
    expired_date_time: Option<jiff::Timestamp>,
    schedule: Value,
    custom_extension_callout_instances: Vec<Value>,
    #[serde(skip)]
    pub inner: Assignment,
}

impl From<Assignment> for AssignmentView {
    fn from(a: Assignment) -> Self {
        Self {
            id: a.id.to_string(),
            state: a.state,
            status: a.status.clone(),
            expired_date_time: a.expired_date_time,
            schedule: schedule_json(&a.window.to_schedule()),
            custom_extension_callout_instances: Vec::new(),
            inner: a,
        }
    }
}

impl AssignmentView {
    /// The views of assignments with their callout instances (their requests' stages, expiry
    /// stages, removal), read in one query.
    pub async fn build_all(s: &Services, all: Vec<Assignment>) -> Result<Vec<Self>, ApiError> {
        let ids: Vec<_> = all.iter().map(|a| a.id).collect();
        let found = s.store.callouts_of_assignments(&ids).await.map_err(steward_app::AppError::from)?;
        let mut callouts = by_owner(found, |c| c.assignment_id);
        Ok(all
            .into_iter()
            .map(|a| {
                let mine = callouts.remove(&a.id).unwrap_or_default();
                Self { custom_extension_callout_instances: mine, ..Self::from(a) }
            })
            .collect())
    }
}

#[async_trait]
impl GraphEntity for AssignmentView {
    const TYPE: &'static str = "accessPackageAssignment";
    const PROPS: &'static [&'static str] =
        &["state", "status", "expiredDateTime", "schedule", "customExtensionCalloutInstances"];
    const NAVS: &'static [&'static str] = &["accessPackage", "assignmentPolicy", "target"];

    fn check_expand(nav: &'static str, item: &ExpandItem) -> Result<(), ApiError> {
        match nav {
            "accessPackage" => check_nested::<steward_domain::package::AccessPackage>(item, None),
            "assignmentPolicy" => check_nested::<steward_domain::policy::AssignmentPolicy>(item, None),
            "target" => check_nested::<SubjectView>(item, None),
            other => Err(unknown_nav(other)),
        }
    }

    async fn expand(&self, cx: &Cx<'_>, nav: &'static str, item: &ExpandItem) -> Result<Value, ApiError> {
        match nav {
            "accessPackage" => {
                let p = require_package(cx.s, self.inner.access_package_id).await?;
                expand_one(cx, Some(p), item).await
            }
            "assignmentPolicy" => {
                let p = match self.inner.policy_id {
                    Some(p) => cx.s.store.get_policy(p).await.map_err(steward_app::AppError::from)?,
                    None => None,
                };
                expand_one(cx, p, item).await
            }
            "target" => expand_one(cx, subject(cx.s, Some(self.inner.target_id)).await?, item).await,
            other => Err(unknown_nav(other)),
        }
    }
}

/// `accessPackageSubject`: the person an assignment is for, or who asked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectView {
    id: String,
    object_id: String,
    display_name: String,
    email: Option<String>,
    principal_name: String,
    subject_type: &'static str,
    subject_lifecycle: &'static str,
    on_premises_security_identifier: Option<String>,
}

impl From<User> for SubjectView {
    fn from(u: User) -> Self {
        Self {
            id: u.id.to_string(),
            object_id: u.id.to_string(),
            display_name: u.display_name.as_str().to_owned(),
            email: u.mail.clone(),
            principal_name: u.user_principal_name.clone(),
            subject_type: "user",
            subject_lifecycle: if u.user_type == UserType::Guest { "notGoverned" } else { "notDefined" },
            on_premises_security_identifier: None,
        }
    }
}

#[async_trait]
impl GraphEntity for SubjectView {
    const TYPE: &'static str = "accessPackageSubject";
    const PROPS: &'static [&'static str] = &[
        "objectId",
        "displayName",
        "email",
        "principalName",
        "subjectType",
        "subjectLifecycle",
        "onPremisesSecurityIdentifier",
    ];
    const NAVS: &'static [&'static str] = &[];

    fn check_expand(nav: &'static str, _item: &ExpandItem) -> Result<(), ApiError> {
        Err(unknown_nav(nav))
    }

    async fn expand(&self, _cx: &Cx<'_>, nav: &'static str, _item: &ExpandItem) -> Result<Value, ApiError> {
        Err(unknown_nav(nav))
    }
}

/// `approval`: a request's approval, with its stages.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalView {
    id: String,
    #[serde(skip)]
    stages: Vec<StageView>,
}

impl ApprovalView {
    pub async fn build(s: &Services, r: &AssignmentRequest, viewer: Option<UserId>) -> Result<Self, ApiError> {
        let mut stages = Vec::with_capacity(r.detail.stages.len());
        for (i, st) in r.detail.stages.iter().enumerate() {
            stages.push(StageView::build(s, i, st, viewer).await?);
        }
        Ok(Self { id: r.id.to_string(), stages })
    }

    pub fn stages(&self) -> &[StageView] {
        &self.stages
    }
}

#[async_trait]
impl GraphEntity for ApprovalView {
    const TYPE: &'static str = "approval";
    const PROPS: &'static [&'static str] = &[];
    const NAVS: &'static [&'static str] = &["stages"];

    fn check_expand(nav: &'static str, item: &ExpandItem) -> Result<(), ApiError> {
        match nav {
            "stages" => check_nested::<StageView>(item, None),
            other => Err(unknown_nav(other)),
        }
    }

    async fn expand(&self, cx: &Cx<'_>, nav: &'static str, item: &ExpandItem) -> Result<Value, ApiError> {
        match nav {
            "stages" => {
                Ok(Value::Array(crate::odata::render_all(cx, &self.stages, item.select.as_ref(), &item.expand).await?))
            }
            other => Err(unknown_nav(other)),
        }
    }
}

/// `approvalStage`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageView {
    id: String,
    assigned_to_me: bool,
    display_name: String,
    justification: Option<String>,
    reviewed_by: Option<Value>,
    #[serde(with = "steward_domain::time::serde_opt_ts")]
    reviewed_date_time: Option<jiff::Timestamp>,
    review_result: &'static str,
    status: &'static str,
}

impl StageView {
    async fn build(s: &Services, index: usize, st: &StageRecord, viewer: Option<UserId>) -> Result<Self, ApiError> {
        let deciding = st.deciding();
        let reviewed_by = match deciding {
            Some(d) => {
                let name = s
                    .store
                    .get_user(d.by)
                    .await
                    .map_err(steward_app::AppError::from)?
                    .map(|u| u.display_name.as_str().to_owned());
                Some(json!({"id": d.by.to_string(), "displayName": name}))
            }
            None => None,
        };
        let result = match st.review_result {
            ReviewResult::NotReviewed => "NotReviewed",
            ReviewResult::Approve => "Approve",
            ReviewResult::Deny => "Deny",
        };
        Ok(Self {
            id: st.id.to_string(),
            assigned_to_me: viewer.is_some_and(|v| st.approvers.contains(&v) && st.status.is_open()),
            display_name: format!("Stage {}", index + 1),
            justification: deciding.and_then(|d| d.justification.clone()),
            reviewed_by,
            reviewed_date_time: deciding.map(|d| d.at),
            review_result: result,
            status: st.status.as_str(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

#[async_trait]
impl GraphEntity for StageView {
    const TYPE: &'static str = "approvalStage";
    const PROPS: &'static [&'static str] =
        &["assignedToMe", "displayName", "justification", "reviewedBy", "reviewedDateTime", "reviewResult", "status"];
    const NAVS: &'static [&'static str] = &[];

    fn check_expand(nav: &'static str, _item: &ExpandItem) -> Result<(), ApiError> {
        Err(unknown_nav(nav))
    }

    async fn expand(&self, _cx: &Cx<'_>, nav: &'static str, _item: &ExpandItem) -> Result<Value, ApiError> {
        Err(unknown_nav(nav))
    }
}
