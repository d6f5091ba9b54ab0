//! The console's policy editor: one form in numbered sections, following the steps admins take
//! to set a policy up (basics; who may request; approval; requestor information; lifecycle;
//! review and create). "Review" validates without saving and says in plain words what the
//! policy will do, with every value carried in hidden fields; "Back" shows the form again with
//! them, "Create policy"/"Save policy" writes it. The form is turned into the Graph JSON body the
//! API accepts and goes through the API's own parsing (`routes::policies::input_from`) and the
//! use case's checks (`PolicySettings::check`, then `policies::create_policy` /
//! `replace_policy`), so the form shows the API's error text, next to the field it concerns when
//! it names one, at the top otherwise. Editing merges the form into the stored policy, as PATCH
//! does: what the editor does not show (custom extensions, conditional requirements, reviews,
//! notifications, on-behalf requestors, a stage's quorum) is kept.
//!
//! Routes: `GET /admin/packages/{id}/policies/new`, `POST …/policies/review`, `POST
//! …/policies` (create); `GET /admin/policies/{id}/edit`, `POST /admin/policies/{id}/review`,
//! `POST /admin/policies/{id}` (save), `POST /admin/policies/{id}/delete`. All need the role
//! that manages the package's catalog's packages, as the API's policy routes do.
//!
//! Form fields (`id` = `name`):
//! - 1 Basics: `name`, `description`.
//! - 2 Who may request: `scope` (`allMemberUsers` | `allDirectoryUsers` | `specificDirectoryUsers`
//!   | `notSpecified`, or the stored policy's other scope), `target_users` and `target_groups`
//!   (one name, email address or id a line; for `specificDirectoryUsers`).
//! - 3 Approval: `approval` (checkbox: required), `justification` (requestors must justify), and
//!   for stages `n` = 1..3: `stage{n}_kind` (empty: no stage | `manager` | `user` | `group` |
//!   `kept`: the stored approvers, unchanged), `stage{n}_user`, `stage{n}_group`,
//!   `stage{n}_justification` (checkbox), `stage{n}_days` (days before automatic denial),
//!   `stage{n}_fallback` (a user approving when there is no one else), `stage{n}_escalation` (a
//!   user the request escalates to) and `stage{n}_escalation_days`.
//! - 4 Requestor information: for questions `n` = 1..3 (or more when a stored policy has more):
//!   `q{n}_text`, `q{n}_kind` (`text` | `long` | `choice`), `q{n}_required` (checkbox),
//!   `q{n}_choices` (one a line), `q{n}_id` (hidden: the stored question's id).
//! - 5 Lifecycle: `expiration` (`never` | `days` | `date`), `expiration_days`, `expiration_date`
//!   (YYYY-MM-DD), `extend` (requestors may extend), `extend_approval` (extensions are approved
//!   like requests), `remove` (requestors may remove their access), `custom_period` (requestors
//!   may ask for a specific period).
//! - `version` (hidden, when editing): the stored policy's modification time; a policy changed
//!   since is not overwritten. `step` (a button): `back` shows the form again.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use steward_app::AppError;
use steward_app::auth::CatalogCap;
use steward_app::query::{GROUPS, USERS};
use steward_app::{directory, packages, policies};
use steward_domain::directory::{Group, User};
use steward_domain::enums::{AllowedTargetScope as Scope, ExpirationPatternType};
use steward_domain::ids::{AccessPackageId, GroupId, PolicyId, UserId};
use steward_domain::package::AccessPackage;
use steward_domain::policy::{ApprovalStage, AssignmentPolicy, PolicySettings, Question, SubjectSet};
use steward_domain::role::Task;

use super::catalogs::{Errors, message, optional, refusal, refused_status, search_query, text, ticked};
use crate::AppState;
use crate::portal::{Layout, Viewer, app_error_page, field, form_viewer, page_viewer, path_id, render, see_other};

/// Approval stages the editor offers (Entra's limit).
const STAGES: usize = 3;
/// Questions the editor offers for a new policy.
const QUESTIONS: usize = 3;
/// The most questions a form carries (a stored policy may have more than `QUESTIONS`).
const MAX_QUESTIONS: usize = 20;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/packages/{id}/policies/new", get(new_form))
        .route("/admin/packages/{id}/policies/review", post(review_new))
        .route("/admin/packages/{id}/policies", post(create))
        .route("/admin/policies/{id}/edit", get(edit_form))
        .route("/admin/policies/{id}/review", post(review_edit))
        .route("/admin/policies/{id}", post(save))
        .route("/admin/policies/{id}/delete", post(delete))
}

// ------------------------------------------------------------------ the form

/// One approval stage as the form holds it.
#[derive(Clone, Default)]
struct StageForm {
    n: usize,
    kind: String,
    user: String,
    group: String,
    justification: bool,
    days: String,
    fallback: String,
    escalation: String,
    escalation_days: String,
}

/// One question as the form holds it.
#[derive(Clone, Default)]
struct QuestionForm {
    n: usize,
    id: String,
    text: String,
    kind: String,
    required: bool,
    choices: String,
}

/// Everything the editor holds, as typed.
#[derive(Clone, Default)]
struct PolicyForm {
    name: String,
    description: String,
    scope: String,
    target_users: String,
    target_groups: String,
    approval: bool,
    justification: bool,
    stages: Vec<StageForm>,
    questions: Vec<QuestionForm>,
    expiration: String,
    expiration_days: String,
    expiration_date: String,
    extend: bool,
    extend_approval: bool,
    remove: bool,
    custom_period: bool,
    version: String,
}

/// The scopes the editor offers by name, in the order it shows them.
const SCOPES: &[(&str, &str)] = &[
    ("allMemberUsers", "All members of the directory (not guests)"),
    ("allDirectoryUsers", "Everyone in the directory, guests included"),
    ("specificDirectoryUsers", "Specific users or groups"),
    ("notSpecified", "No one: administrators assign it directly"),
];

impl PolicyForm {
    /// A new policy as the seeds set one up: members request with a justification, their
    /// manager approves within 14 days, access lasts a year and may be extended.
    fn new() -> Self {
        Self {
            scope: "allMemberUsers".into(),
            approval: true,
            justification: true,
            stages: (1..=STAGES)
                .map(|n| StageForm {
                    n,
                    kind: if n == 1 { "manager".into() } else { String::new() },
                    days: "14".into(),
                    ..StageForm::default()
                })
                .collect(),
            questions: (1..=QUESTIONS)
                .map(|n| QuestionForm { n, kind: "text".into(), ..QuestionForm::default() })
                .collect(),
            expiration: "days".into(),
            expiration_days: "365".into(),
            extend: true,
            remove: true,
            ..Self::default()
        }
    }

    fn read(fields: &[(String, String)]) -> Self {
        let t = |k: String| text(fields, &k);
        let on = |k: String| ticked(fields, &k);
        let stages = (1..=STAGES)
            .map(|n| StageForm {
                n,
                kind: t(format!("stage{n}_kind")),
                user: t(format!("stage{n}_user")),
                group: t(format!("stage{n}_group")),
                justification: on(format!("stage{n}_justification")),
                days: t(format!("stage{n}_days")),
                fallback: t(format!("stage{n}_fallback")),
                escalation: t(format!("stage{n}_escalation")),
                escalation_days: t(format!("stage{n}_escalation_days")),
            })
            .collect();
        let questions = (1..=MAX_QUESTIONS)
            .take_while(|n| *n <= QUESTIONS || field(fields, &format!("q{n}_kind")).is_some())
            .map(|n| QuestionForm {
                n,
                id: t(format!("q{n}_id")),
                text: t(format!("q{n}_text")),
                kind: t(format!("q{n}_kind")),
                required: on(format!("q{n}_required")),
                choices: t(format!("q{n}_choices")),
            })
            .collect();
        Self {
            name: text(fields, "name"),
            description: text(fields, "description"),
            scope: text(fields, "scope"),
            target_users: text(fields, "target_users"),
            target_groups: text(fields, "target_groups"),
            approval: ticked(fields, "approval"),
            justification: ticked(fields, "justification"),
            stages,
            questions,
            expiration: text(fields, "expiration"),
            expiration_days: text(fields, "expiration_days"),
            expiration_date: text(fields, "expiration_date"),
            extend: ticked(fields, "extend"),
            extend_approval: ticked(fields, "extend_approval"),
            remove: ticked(fields, "remove"),
            custom_period: ticked(fields, "custom_period"),
            version: text(fields, "version"),
        }
    }

    /// Every value as the hidden fields of the review page (a checkbox only when ticked).
    fn hidden(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut put = |k: String, v: &str| out.push((k, v.to_owned()));
        let on = |b: bool| if b { "on" } else { "" };
        put("name".into(), &self.name);
        put("description".into(), &self.description);
        put("scope".into(), &self.scope);
        put("target_users".into(), &self.target_users);
        put("target_groups".into(), &self.target_groups);
        put("approval".into(), on(self.approval));
        put("justification".into(), on(self.justification));
        for s in &self.stages {
            let n = s.n;
            put(format!("stage{n}_kind"), &s.kind);
            put(format!("stage{n}_user"), &s.user);
            put(format!("stage{n}_group"), &s.group);
            put(format!("stage{n}_justification"), on(s.justification));
            put(format!("stage{n}_days"), &s.days);
            put(format!("stage{n}_fallback"), &s.fallback);
            put(format!("stage{n}_escalation"), &s.escalation);
            put(format!("stage{n}_escalation_days"), &s.escalation_days);
        }
        for q in &self.questions {
            let n = q.n;
            put(format!("q{n}_id"), &q.id);
            put(format!("q{n}_text"), &q.text);
            put(format!("q{n}_kind"), &q.kind);
            put(format!("q{n}_required"), on(q.required));
            put(format!("q{n}_choices"), &q.choices);
        }
        put("expiration".into(), &self.expiration);
        put("expiration_days".into(), &self.expiration_days);
        put("expiration_date".into(), &self.expiration_date);
        put("extend".into(), on(self.extend));
        put("extend_approval".into(), on(self.extend_approval));
        put("remove".into(), on(self.remove));
        put("custom_period".into(), on(self.custom_period));
        put("version".into(), &self.version);
        // Unticked checkboxes are absent from a form, as they would be from the editor's.
        out.retain(|(k, v)| !v.is_empty() || !is_checkbox(k));
        out
    }

    /// The stored policy's scope when the editor does not offer it by name.
    fn other_scope(&self) -> Option<String> {
        (!self.scope.is_empty() && !SCOPES.iter().any(|(s, _)| *s == self.scope)).then(|| self.scope.clone())
    }

    /// The form of a stored policy.
    async fn of(state: &AppState, p: &AssignmentPolicy) -> Self {
        let st = &p.settings;
        let (mut users, mut groups) = (Vec::new(), Vec::new());
        for t in &st.specific_allowed_targets {
            match t {
                SubjectSet::SingleUser { user_id: Some(u), .. } => users.push(user_key(state, u).await),
                SubjectSet::GroupMembers { group_id: Some(g), .. } => groups.push(group_key(state, g).await),
                _ => {}
            }
        }
        let a = st.request_approval_settings.clone().unwrap_or_default();
        let mut stages = Vec::new();
        for n in 1..=STAGES {
            stages.push(match a.stages.get(n - 1) {
                Some(s) => stage_form(state, n, s).await,
                None => StageForm { n, days: "14".into(), ..StageForm::default() },
            });
        }
        let mut questions: Vec<QuestionForm> = st
            .questions
            .iter()
            .take(MAX_QUESTIONS)
            .enumerate()
            .map(|(i, q)| {
                let (kind, choices) = match q {
                    Question::TextInput { is_single_line_question: true, .. } => ("text", String::new()),
                    Question::TextInput { .. } => ("long", String::new()),
                    Question::MultipleChoice { choices, .. } => {
                        ("choice", choices.iter().map(|c| c.actual_value.clone()).collect::<Vec<_>>().join("\n"))
                    }
                };
                let b = q.base();
                QuestionForm {
                    n: i + 1,
                    id: b.id.clone().unwrap_or_default(),
                    text: b.text.clone().unwrap_or_default(),
                    kind: kind.into(),
                    required: b.is_required,
                    choices,
                }
            })
            .collect();
        while questions.len() < QUESTIONS {
            questions.push(QuestionForm { n: questions.len() + 1, kind: "text".into(), ..QuestionForm::default() });
        }
        let (expiration, expiration_days, expiration_date) = match &st.expiration {
            Some(e) if e.kind == Some(ExpirationPatternType::AfterDuration) || e.duration.is_some() => {
                ("days", e.duration.map(|d| whole_days(d.as_signed()).to_string()).unwrap_or_default(), String::new())
            }
            Some(e) if e.end_date_time.is_some() => {
                ("date", String::new(), e.end_date_time.map(|t| t.strftime("%Y-%m-%d").to_string()).unwrap_or_default())
            }
            _ => ("never", String::new(), String::new()),
        };
        let rs = st.requestor_settings.clone().unwrap_or_default();
        Self {
            name: p.display_name.as_str().to_owned(),
            description: p.description.clone().unwrap_or_default(),
            scope: st.allowed_target_scope.to_string(),
            target_users: users.join("\n"),
            target_groups: groups.join("\n"),
            approval: a.is_approval_required_for_add,
            justification: a.is_requestor_justification_required,
            stages,
            questions,
            expiration: expiration.into(),
            expiration_days,
            expiration_date,
            extend: rs.enable_targets_to_self_update_access,
            extend_approval: a.is_approval_required_for_update,
            remove: rs.enable_targets_to_self_remove_access,
            custom_period: rs.allow_custom_assignment_schedule,
            version: steward_domain::time::to_micros(p.modified_date_time).to_string(),
        }
    }
}

fn is_checkbox(name: &str) -> bool {
    ["approval", "justification", "extend", "extend_approval", "remove", "custom_period"].contains(&name)
        || name.ends_with("_justification")
        || name.ends_with("_required")
}

/// A duration in days, rounded up.
fn whole_days(d: jiff::SignedDuration) -> i64 {
    let secs = d.as_secs();
    secs / 86_400 + i64::from(secs % 86_400 > 0)
}

/// A stored stage as the form shows it; approvers the form cannot show are `kept`.
async fn stage_form(state: &AppState, n: usize, s: &ApprovalStage) -> StageForm {
    let mut f = StageForm {
        n,
        justification: s.is_approver_justification_required,
        days: s.duration_before_automatic_denial.map(|d| whole_days(d.as_signed()).to_string()).unwrap_or_default(),
        ..StageForm::default()
    };
    f.kind = match s.primary_approvers.as_slice() {
        [] => String::new(),
        [SubjectSet::RequestorManager { manager_level: None | Some(1) }] => "manager".into(),
        [SubjectSet::SingleUser { user_id: Some(u), .. }] => {
            f.user = user_key(state, u).await;
            "user".into()
        }
        [SubjectSet::GroupMembers { group_id: Some(g), .. }] => {
            f.group = group_key(state, g).await;
            "group".into()
        }
        _ => "kept".into(),
    };
    if let Some(SubjectSet::SingleUser { user_id: Some(u), .. }) = s.fallback_primary_approvers.first() {
        f.fallback = user_key(state, u).await;
    }
    if s.is_escalation_enabled
        && let Some(SubjectSet::SingleUser { user_id: Some(u), .. }) = s.escalation_approvers.first()
    {
        f.escalation = user_key(state, u).await;
        f.escalation_days =
            s.duration_before_escalation.map(|d| whole_days(d.as_signed()).to_string()).unwrap_or_default();
    }
    f
}

/// How the form names a stored user: their userPrincipalName (their id when they are gone).
async fn user_key(state: &AppState, id: &str) -> String {
    match id.parse::<UserId>() {
        Ok(u) => match state.services.store.get_user(u).await {
            Ok(Some(u)) => u.user_principal_name,
            _ => id.to_owned(),
        },
        Err(_) => id.to_owned(),
    }
}

/// How the form names a stored group: its name, or its id when the name is not unique.
async fn group_key(state: &AppState, id: &str) -> String {
    let Ok(g) = id.parse::<GroupId>() else { return id.to_owned() };
    let Ok(Some(group)) = state.services.store.get_group(g).await else { return id.to_owned() };
    let name = group.display_name.as_str();
    let same = match search_query(&GROUPS, name, 50) {
        Ok(q) => state
            .services
            .store
            .list_groups(&q)
            .await
            .map(|p| p.items.iter().filter(|x| x.display_name.as_str().eq_ignore_ascii_case(name)).count()),
        Err(_) => Ok(0),
    };
    if matches!(same, Ok(1)) { name.to_owned() } else { id.to_owned() }
}

// ------------------------------------------------------------------ names typed in the form

/// The lines of a text area, trimmed, without blank ones.
fn lines(s: &str) -> Vec<&str> {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect()
}

/// The directory user `typed` names: by id, userPrincipalName, email or display name. The error
/// says what to type instead when no one or several people match.
async fn find_user(state: &AppState, v: &Viewer, typed: &str) -> Result<User, String> {
    let s = &state.services;
    let cap = v.principal.directory_reader().map_err(|e| message(&e))?;
    let t = typed.trim();
    if let Ok(id) = t.parse::<UserId>() {
        return directory::get_user(s, cap, id).await.map_err(|e| message(&e));
    }
    let q = search_query(&USERS, t, 50).map_err(|e| message(&e))?;
    let found = directory::list_users(s, cap, &q).await.map_err(|e| message(&e))?.items;
    let lower = t.to_lowercase();
    let exact: Vec<&User> = found
        .iter()
        .filter(|u| {
            u.display_name.as_str().to_lowercase() == lower
                || u.user_principal_name.to_lowercase() == lower
                || u.mail.as_deref().is_some_and(|m| m.to_lowercase() == lower)
        })
        .collect();
    let list = |us: &[&User]| {
        us.iter()
            .take(5)
            .map(|u| format!("{} ({})", u.display_name, u.user_principal_name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (exact.as_slice(), found.as_slice()) {
        ([one], _) => Ok((*one).clone()),
        ([], [one]) => Ok(one.clone()),
        ([], []) => Err(format!("No user is named “{t}”: type their name or email address.")),
        ([], many) => Err(format!(
            "{} users match “{t}”: {}. Type more of the name, or the email address.",
            many.len(),
            list(&many.iter().collect::<Vec<_>>())
        )),
        (many, _) => Err(format!(
            "{} users are named “{t}”: {}. Type the email address of the one you mean.",
            many.len(),
            list(many)
        )),
    }
}

/// The directory group `typed` names: by id, name or mail nickname.
async fn find_group(state: &AppState, v: &Viewer, typed: &str) -> Result<Group, String> {
    let s = &state.services;
    let cap = v.principal.directory_reader().map_err(|e| message(&e))?;
    let t = typed.trim();
    if let Ok(id) = t.parse::<GroupId>() {
        return directory::get_group(s, cap, id).await.map_err(|e| message(&e));
    }
    let q = search_query(&GROUPS, t, 50).map_err(|e| message(&e))?;
    let found = directory::list_groups(s, cap, &q).await.map_err(|e| message(&e))?.items;
    let lower = t.to_lowercase();
    let exact: Vec<&Group> = found
        .iter()
        .filter(|g| g.display_name.as_str().to_lowercase() == lower || g.mail_nickname.to_lowercase() == lower)
        .collect();
    let list = |gs: &[&Group]| {
        gs.iter().take(5).map(|g| format!("{} ({})", g.display_name, g.id)).collect::<Vec<_>>().join(", ")
    };
    match (exact.as_slice(), found.as_slice()) {
        ([one], _) => Ok((*one).clone()),
        ([], [one]) => Ok(one.clone()),
        ([], []) => Err(format!("No group is named “{t}”.")),
        ([], many) => Err(format!(
            "{} groups match “{t}”: {}. Type more of the name.",
            many.len(),
            list(&many.iter().collect::<Vec<_>>())
        )),
        (many, _) => {
            Err(format!("{} groups are named “{t}”: {}. Type the id of the one you mean.", many.len(), list(many)))
        }
    }
}

/// A number of days typed in the form as a Graph duration; `None` when blank.
fn days(typed: &str) -> Result<Option<String>, String> {
    let t = typed.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<i64>() {
        Ok(n) if n < 0 => Ok(Some(format!("-P{}D", n.unsigned_abs()))),
        Ok(n) => Ok(Some(format!("P{n}D"))),
        Err(_) => Err(format!("“{t}” is not a number of days: type a whole number such as 14.")),
    }
}

/// A date typed as YYYY-MM-DD, as the last second of that day (UTC), in Graph's form.
fn end_of_day(typed: &str) -> Result<Option<String>, String> {
    let t = typed.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let d: jiff::civil::Date = t.parse().map_err(|_| format!("“{t}” is not a date: type it as YYYY-MM-DD."))?;
    d.to_datetime(jiff::civil::time(23, 59, 59, 0))
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| Some(steward_domain::time::format_datetime(z.timestamp())))
        .map_err(|_| format!("“{t}” is not a usable date."))
}

// ------------------------------------------------------------------ the form as Graph JSON

fn single_user(u: &User) -> Value {
    json!({"@odata.type": "#microsoft.graph.singleUser", "userId": u.id.to_string(), "description": u.display_name.as_str()})
}

fn group_members(g: &Group) -> Value {
    json!({"@odata.type": "#microsoft.graph.groupMembers", "groupId": g.id.to_string(), "description": g.display_name.as_str()})
}

/// Stands in for approvers the form could not name (the error is on the form already), so the
/// API's checks of the rest of the policy still run.
fn placeholder() -> Value {
    json!([{"@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 1}])
}

/// The object under `key`, taken out of `m` (empty when absent or not an object).
fn take_object(m: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match m.remove(key) {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    }
}

/// The policy body the form stands for, what could not be turned into it, and which form stage
/// and question each sent one is (the API numbers what it was sent).
struct Composed {
    body: Value,
    errors: Errors,
    stage_of: Vec<usize>,
    question_of: Vec<usize>,
}

/// Turns the form into the Graph body of a policy: over the stored policy when editing (so
/// what the editor does not show stays), from nothing for a new one.
async fn compose(state: &AppState, v: &Viewer, f: &PolicyForm, existing: Option<&AssignmentPolicy>) -> Composed {
    let mut errors = Errors::default();
    let mut m = match existing.map(serde_json::to_value) {
        Some(Ok(Value::Object(o))) => o,
        _ => Map::new(),
    };
    m.insert("displayName".into(), json!(f.name));
    m.insert("description".into(), optional(&f.description).map_or(Value::Null, Value::String));
    m.insert("allowedTargetScope".into(), json!(f.scope));

    // 2. Who may request.
    let stored_targets = match m.remove("specificAllowedTargets") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let targets = match f.scope.as_str() {
        "specificDirectoryUsers" => {
            let mut targets = Vec::new();
            for line in lines(&f.target_users) {
                match find_user(state, v, line).await {
                    Ok(u) => targets.push(single_user(&u)),
                    Err(e) => errors.set("target_users", e),
                }
            }
            for line in lines(&f.target_groups) {
                match find_group(state, v, line).await {
                    Ok(g) => targets.push(group_members(&g)),
                    Err(e) => errors.set("target_groups", e),
                }
            }
            // Targets the editor does not show (rules, say) stay.
            let shown = ["#microsoft.graph.singleUser", "#microsoft.graph.groupMembers"];
            targets.extend(
                stored_targets.into_iter().filter(|t| !t["@odata.type"].as_str().is_some_and(|k| shown.contains(&k))),
            );
            targets
        }
        s if SCOPES.iter().any(|(k, _)| *k == s) => Vec::new(),
        // A scope the editor does not offer by name keeps its targets.
        _ => stored_targets,
    };
    m.insert("specificAllowedTargets".into(), Value::Array(targets));

    // 3. Approval.
    let mut ra = take_object(&mut m, "requestApprovalSettings");
    let stored_stages = match ra.remove("stages") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    ra.insert("isApprovalRequiredForAdd".into(), json!(f.approval));
    ra.insert("isApprovalRequiredForUpdate".into(), json!(f.approval && f.extend_approval));
    ra.insert("isRequestorJustificationRequired".into(), json!(f.justification));
    let mut stages = Vec::new();
    let mut stage_of = Vec::new();
    if f.approval {
        for st in f.stages.iter().filter(|s| !s.kind.is_empty()) {
            let n = st.n;
            let mut o = match stored_stages.get(n - 1) {
                Some(Value::Object(o)) => o.clone(),
                _ => Map::new(),
            };
            let approvers = match st.kind.as_str() {
                "manager" => Some(json!([{"@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 1}])),
                "user" if st.user.trim().is_empty() => {
                    errors.set(
                        format!("stage{n}_user"),
                        format!("Choose the user who approves at stage {n}: type their name or email address."),
                    );
                    Some(placeholder())
                }
                "user" => match find_user(state, v, &st.user).await {
                    Ok(u) => Some(json!([single_user(&u)])),
                    Err(e) => {
                        errors.set(format!("stage{n}_user"), e);
                        Some(placeholder())
                    }
                },
                "group" if st.group.trim().is_empty() => {
                    errors.set(
                        format!("stage{n}_group"),
                        format!("Choose the group whose members approve at stage {n}: type its name."),
                    );
                    Some(placeholder())
                }
                "group" => match find_group(state, v, &st.group).await {
                    Ok(g) => Some(json!([group_members(&g)])),
                    Err(e) => {
                        errors.set(format!("stage{n}_group"), e);
                        Some(placeholder())
                    }
                },
                // The stored approvers, unchanged.
                "kept" => None,
                _ => {
                    errors.set(format!("stage{n}_kind"), format!("Choose who approves at stage {n}."));
                    Some(placeholder())
                }
            };
            if let Some(a) = approvers {
                o.insert("primaryApprovers".into(), a);
            }
            o.insert("isApproverJustificationRequired".into(), json!(st.justification));
            match days(&st.days) {
                Ok(Some(d)) => {
                    o.insert("durationBeforeAutomaticDenial".into(), json!(d));
                }
                Ok(None) => {
                    o.remove("durationBeforeAutomaticDenial");
                }
                Err(e) => errors.set(format!("stage{n}_days"), e),
            }
            let fallback = if st.fallback.trim().is_empty() {
                Vec::new()
            } else {
                match find_user(state, v, &st.fallback).await {
                    Ok(u) => vec![single_user(&u)],
                    Err(e) => {
                        errors.set(format!("stage{n}_fallback"), e);
                        Vec::new()
                    }
                }
            };
            o.insert("fallbackPrimaryApprovers".into(), Value::Array(fallback));
            if st.escalation.trim().is_empty() {
                o.insert("isEscalationEnabled".into(), json!(false));
                o.insert("escalationApprovers".into(), json!([]));
                o.remove("durationBeforeEscalation");
            } else {
                o.insert("isEscalationEnabled".into(), json!(true));
                match find_user(state, v, &st.escalation).await {
                    Ok(u) => {
                        o.insert("escalationApprovers".into(), json!([single_user(&u)]));
                    }
                    Err(e) => {
                        errors.set(format!("stage{n}_escalation"), e);
                        o.insert("escalationApprovers".into(), placeholder());
                    }
                }
                match days(&st.escalation_days) {
                    Ok(Some(d)) => {
                        o.insert("durationBeforeEscalation".into(), json!(d));
                    }
                    Ok(None) => {
                        o.remove("durationBeforeEscalation");
                    }
                    Err(e) => errors.set(format!("stage{n}_escalation_days"), e),
                }
            }
            stages.push(Value::Object(o));
            stage_of.push(n);
        }
    }
    ra.insert("stages".into(), Value::Array(stages));
    m.insert("requestApprovalSettings".into(), Value::Object(ra));

    // 4. Requestor information.
    let stored_questions = match m.remove("questions") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    let mut questions = Vec::new();
    let mut question_of = Vec::new();
    for q in f.questions.iter().filter(|q| !q.text.trim().is_empty() || !q.choices.trim().is_empty()) {
        let choice = q.kind == "choice";
        let kind = if choice {
            "#microsoft.graph.accessPackageMultipleChoiceQuestion"
        } else {
            "#microsoft.graph.accessPackageTextInputQuestion"
        };
        // The stored question of the same id and kind keeps what the editor does not show.
        let mut o = stored_questions
            .iter()
            .find(|s| {
                !q.id.is_empty() && s["id"].as_str() == Some(q.id.as_str()) && s["@odata.type"].as_str() == Some(kind)
            })
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        o.insert("@odata.type".into(), json!(kind));
        if !q.id.is_empty() {
            o.insert("id".into(), json!(q.id));
        }
        o.insert("text".into(), json!(q.text.trim()));
        o.insert("isRequired".into(), json!(q.required));
        o.insert("sequence".into(), json!(questions.len() + 1));
        if choice {
            let choices: Vec<Value> =
                lines(&q.choices).into_iter().map(|c| json!({"actualValue": c, "text": c})).collect();
            o.insert("choices".into(), Value::Array(choices));
            o.entry("isMultipleSelectionAllowed").or_insert(json!(false));
        } else {
            o.insert("isSingleLineQuestion".into(), json!(q.kind != "long"));
        }
        questions.push(Value::Object(o));
        question_of.push(q.n);
    }
    m.insert("questions".into(), Value::Array(questions));

    // 5. Lifecycle.
    let expiration = match f.expiration.as_str() {
        "never" => json!({"type": "noExpiration"}),
        "date" => match end_of_day(&f.expiration_date) {
            Ok(Some(t)) => json!({"type": "afterDateTime", "endDateTime": t}),
            Ok(None) => json!({"type": "afterDateTime"}),
            Err(e) => {
                errors.set("expiration_date", e);
                json!({"type": "noExpiration"})
            }
        },
        _ => match days(&f.expiration_days) {
            Ok(Some(d)) => json!({"type": "afterDuration", "duration": d}),
            Ok(None) => json!({"type": "afterDuration"}),
            Err(e) => {
                errors.set("expiration_days", e);
                json!({"type": "noExpiration"})
            }
        },
    };
    m.insert("expiration".into(), expiration);
    let mut rs = take_object(&mut m, "requestorSettings");
    rs.insert("enableTargetsToSelfAddAccess".into(), json!(f.scope != "notSpecified"));
    rs.insert("enableTargetsToSelfUpdateAccess".into(), json!(f.extend));
    rs.insert("enableTargetsToSelfRemoveAccess".into(), json!(f.remove));
    rs.insert("allowCustomAssignmentSchedule".into(), json!(f.custom_period));
    m.insert("requestorSettings".into(), Value::Object(rs));

    Composed { body: Value::Object(m), errors, stage_of, question_of }
}

/// The first number in `s` after `prefix`.
fn number_after(s: &str, prefix: &str) -> Option<usize> {
    let at = s.find(prefix)? + prefix.len();
    let digits: String = s.get(at..)?.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Puts an error of the API next to the field it concerns, at the top when it names none.
fn place(message: String, f: &PolicyForm, c: &Composed, errors: &mut Errors) {
    let lower = message.to_lowercase();
    let nth = |map: &[usize], k: usize| k.checked_sub(1).and_then(|i| map.get(i).copied()).unwrap_or(k);
    let key = if let Some(k) = number_after(&lower, "approval stage ") {
        let n = nth(&c.stage_of, k);
        let part = if lower.contains("durationbeforeescalation") {
            "escalation_days"
        } else if lower.contains("escalation") {
            "escalation"
        } else if lower.contains("durationbeforeautomaticdenial") {
            "days"
        } else if lower.contains("fallbackprimaryapprovers") {
            "fallback"
        } else {
            "kind"
        };
        Some(format!("stage{n}_{part}"))
    } else if lower.contains("requestapprovalsettings.stages") {
        Some("stage1_kind".to_owned())
    } else if let Some(k) = number_after(&lower, "question ") {
        let n = nth(&c.question_of, k);
        Some(format!("q{n}_{}", if lower.contains("choice") { "choices" } else { "text" }))
    } else if lower.contains("displayname") {
        Some("name".to_owned())
    } else if lower.contains("specificallowedtargets") {
        let groups = f.target_users.trim().is_empty() && !f.target_groups.trim().is_empty();
        Some(if groups { "target_groups" } else { "target_users" }.to_owned())
    } else if lower.contains("allowedtargetscope") {
        Some("scope".to_owned())
    } else if lower.contains("expiration") {
        Some(if f.expiration == "date" { "expiration_date" } else { "expiration_days" }.to_owned())
    } else if lower.starts_with("description") {
        Some("description".to_owned())
    } else {
        None
    };
    match key {
        Some(k) => errors.set(k, message),
        None => errors.top(message),
    }
}

// ------------------------------------------------------------------ the policy in plain words

/// What a policy does, in plain words: one sentence, and a list per section of the editor.
pub(super) struct Description {
    pub summary: String,
    pub who: String,
    pub approval: Vec<String>,
    pub questions: Vec<String>,
    pub lifecycle: Vec<String>,
}

async fn user_name(state: &AppState, id: Option<&str>) -> String {
    match id.and_then(|u| u.parse::<UserId>().ok()) {
        Some(u) => match state.services.store.get_user(u).await {
            Ok(Some(u)) => u.display_name.as_str().to_owned(),
            _ => "a user who is gone".to_owned(),
        },
        None => "an unnamed user".to_owned(),
    }
}

async fn group_name(state: &AppState, id: Option<&str>) -> String {
    match id.and_then(|g| g.parse::<GroupId>().ok()) {
        Some(g) => match state.services.store.get_group(g).await {
            Ok(Some(g)) => g.display_name.as_str().to_owned(),
            _ => "a group that is gone".to_owned(),
        },
        None => "an unnamed group".to_owned(),
    }
}

/// A set of people in words ("their manager", "Pradeep Gupta", "members of Sales").
async fn people(state: &AppState, s: &SubjectSet) -> String {
    match s {
        SubjectSet::SingleUser { user_id, .. } => user_name(state, user_id.as_deref()).await,
        SubjectSet::GroupMembers { group_id, .. } => {
            format!("members of {}", group_name(state, group_id.as_deref()).await)
        }
        SubjectSet::RequestorManager { manager_level: None | Some(1) } => "their manager".to_owned(),
        SubjectSet::RequestorManager { manager_level: Some(n) } => format!("their manager {n} levels up"),
        SubjectSet::TargetManager { .. } => "the manager of the person who gets access".to_owned(),
        SubjectSet::InternalSponsors {} => "an internal sponsor".to_owned(),
        SubjectSet::ExternalSponsors {} => "an external sponsor".to_owned(),
        SubjectSet::TargetUserSponsors {} => "their sponsors".to_owned(),
        SubjectSet::ConnectedOrganizationMembers { .. } => "users of a connected organization".to_owned(),
        SubjectSet::AttributeRuleMembers { membership_rule, .. } => {
            format!("users matching “{}”", membership_rule.as_deref().unwrap_or(""))
        }
        SubjectSet::SingleServicePrincipal { .. } => "a service principal".to_owned(),
    }
}

/// "a", "a or b", "a, b or c".
fn either(items: &[String], word: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} {word} {last}", rest.join(", ")),
    }
}

fn plural(n: i64, one: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {one}s") }
}

fn duration_words(d: jiff::SignedDuration) -> String {
    if d.as_secs() % 86_400 == 0 { plural(d.as_secs() / 86_400, "day") } else { format!("{d:#}") }
}

/// What `s` does, in words.
pub(super) async fn describe(state: &AppState, s: &PolicySettings) -> Description {
    let mut targets = Vec::new();
    for t in &s.specific_allowed_targets {
        targets.push(people(state, t).await);
    }
    let who = match s.allowed_target_scope {
        Scope::NotSpecified => "No one may request it; administrators assign it directly".to_owned(),
        Scope::AllMemberUsers => "Members of the directory may request".to_owned(),
        Scope::AllDirectoryUsers => "Everyone in the directory, guests included, may request".to_owned(),
        Scope::SpecificDirectoryUsers if targets.is_empty() => "No one is named to request it".to_owned(),
        Scope::SpecificDirectoryUsers => format!("{} may request", either(&targets, "and")),
        Scope::SpecificConnectedOrganizationUsers => {
            format!(
                "Users of {} may request",
                if targets.is_empty() { "named connected organizations".to_owned() } else { either(&targets, "and") }
            )
        }
        Scope::AllConfiguredConnectedOrganizationUsers => {
            "Users of every configured connected organization may request".to_owned()
        }
        Scope::AllExternalUsers => "External users may request".to_owned(),
        other => format!("Who may request: {other}"),
    };
    let who = {
        let mut w = who;
        if let Some(first) = w.get(..1) {
            w = format!("{}{}", first.to_uppercase(), w.get(1..).unwrap_or(""));
        }
        w
    };

    let a = s.request_approval_settings.clone().unwrap_or_default();
    let mut approval = Vec::new();
    let mut by = Vec::new();
    if a.is_requestor_justification_required {
        approval.push("Requestors must say why they need it.".to_owned());
    }
    if a.is_approval_required_for_add && !a.stages.is_empty() {
        for (i, st) in a.stages.iter().enumerate() {
            let mut names = Vec::new();
            for p in &st.primary_approvers {
                names.push(people(state, p).await);
            }
            let approvers = either(&names, "or");
            let mut line = format!("Stage {}: approved by {approvers}", i + 1);
            if let Some(d) = st.duration_before_automatic_denial {
                line.push_str(&format!(", within {} or the request is denied", duration_words(d.as_signed())));
            }
            if st.is_approver_justification_required {
                line.push_str("; the approver says why");
            }
            let mut fallback = Vec::new();
            for p in &st.fallback_primary_approvers {
                fallback.push(people(state, p).await);
            }
            if !fallback.is_empty() {
                line.push_str(&format!("; when there is no one to ask, {}", either(&fallback, "or")));
            }
            if st.is_escalation_enabled {
                let mut to = Vec::new();
                for p in &st.escalation_approvers {
                    to.push(people(state, p).await);
                }
                let after = st
                    .duration_before_escalation
                    .map(|d| format!(" after {}", duration_words(d.as_signed())))
                    .unwrap_or_default();
                line.push_str(&format!("; escalated to {}{after}", either(&to, "or")));
            }
            line.push('.');
            approval.push(line);
            by.push(approvers);
        }
    } else {
        approval.push("No approval is needed: access is granted when the request is made.".to_owned());
    }
    let approved =
        if by.is_empty() { "no approval needed".to_owned() } else { format!("approved by {}", by.join(", then by ")) };

    let questions = s
        .questions
        .iter()
        .map(|q| {
            let b = q.base();
            let what = match q {
                Question::TextInput { .. } => "answered in words".to_owned(),
                Question::MultipleChoice { choices, .. } => format!(
                    "one of {}",
                    either(
                        &choices
                            .iter()
                            .map(|c| c.text.clone().unwrap_or_else(|| c.actual_value.clone()))
                            .collect::<Vec<_>>(),
                        "or"
                    )
                ),
            };
            format!(
                "“{}” ({}, {what})",
                b.text.as_deref().unwrap_or(""),
                if b.is_required { "required" } else { "optional" }
            )
        })
        .collect();

    let rs = s.requestor_settings.clone().unwrap_or_default();
    let lasts = match &s.expiration {
        Some(e) if e.duration.is_some() => {
            e.duration.map(|d| format!("access lasts {}", duration_words(d.as_signed()))).unwrap_or_default()
        }
        Some(e) if e.end_date_time.is_some() => {
            e.end_date_time.map(|t| format!("access ends on {}", t.strftime("%Y-%m-%d"))).unwrap_or_default()
        }
        _ => "access does not expire".to_owned(),
    };
    let mut lifecycle =
        vec![format!("{}{}.", lasts.get(..1).unwrap_or("").to_uppercase(), lasts.get(1..).unwrap_or(""))];
    if rs.enable_targets_to_self_update_access {
        lifecycle.push(if a.is_approval_required_for_update {
            "Requestors may ask to extend it; extensions are approved like requests.".to_owned()
        } else {
            "Requestors may ask to extend it.".to_owned()
        });
    }
    if rs.enable_targets_to_self_remove_access {
        lifecycle.push("Requestors may remove their access themselves.".to_owned());
    }
    if rs.allow_custom_assignment_schedule {
        lifecycle.push("Requestors may ask for a specific period.".to_owned());
    }
    let extended = if rs.enable_targets_to_self_update_access { " and may be extended" } else { "" };
    let summary = if s.allowed_target_scope == Scope::NotSpecified {
        format!("{who}; {lasts}{extended}.")
    } else {
        format!("{who}; {approved}; {lasts}{extended}.")
    };
    Description { summary, who, approval, questions, lifecycle }
}

// ------------------------------------------------------------------ pages

/// The package a new policy is for, or the stored policy being edited with its package.
enum Target {
    New(AccessPackage),
    Edit(AccessPackage, Box<AssignmentPolicy>),
}

impl Target {
    fn package(&self) -> &AccessPackage {
        match self {
            Self::New(p) | Self::Edit(p, _) => p,
        }
    }
    fn existing(&self) -> Option<&AssignmentPolicy> {
        match self {
            Self::New(_) => None,
            Self::Edit(_, p) => Some(p),
        }
    }
    fn review_url(&self) -> String {
        match self {
            Self::New(p) => format!("/admin/packages/{}/policies/review", p.id),
            Self::Edit(_, p) => format!("/admin/policies/{}/review", p.id),
        }
    }
    fn save_url(&self) -> String {
        match self {
            Self::New(p) => format!("/admin/packages/{}/policies", p.id),
            Self::Edit(_, p) => format!("/admin/policies/{}", p.id),
        }
    }
}

/// Which policy a request is about, by its path.
#[derive(Clone, Copy)]
enum Which {
    New(AccessPackageId),
    Edit(PolicyId),
}

impl Which {
    /// The form page's address, to come back to after signing in.
    fn form_url(self) -> String {
        match self {
            Self::New(p) => format!("/admin/packages/{p}/policies/new"),
            Self::Edit(p) => format!("/admin/policies/{p}/edit"),
        }
    }
}

/// The target and the capability to write it, checked as the API's policy routes check:
/// managing packages somewhere (403), the package or policy (404), in its catalog (403).
async fn target(state: &AppState, v: &Viewer, which: Which) -> Result<(Target, CatalogCap), AppError> {
    let s = &state.services;
    match which {
        Which::New(pid) => {
            let cap = super::packages::managing(state, v, pid).await?;
            let pkg = packages::require_package(s, pid).await?;
            Ok((Target::New(pkg), cap))
        }
        Which::Edit(id) => {
            let scope = v.principal.catalogs_for(Task::ManagePackages)?;
            let policy = policies::get_policy(s, &scope, id).await?;
            let cap = v.principal.in_catalog(policy.catalog_id, Task::ManagePackages)?;
            let pkg = packages::require_package(s, policy.access_package_id).await?;
            Ok((Target::Edit(pkg, Box::new(policy)), cap))
        }
    }
}

#[derive(Template)]
#[template(path = "console/policy_form.html")]
struct FormPage {
    layout: Layout,
    editing: bool,
    policy_name: String,
    package_id: String,
    package_name: String,
    action: String,
    scopes: &'static [(&'static str, &'static str)],
    other_scope: Option<String>,
    form: PolicyForm,
    errors: Errors,
}

fn form_page(v: &Viewer, t: &Target, status: StatusCode, form: PolicyForm, errors: Errors) -> Response {
    let page = FormPage {
        layout: v.layout("admin"),
        editing: t.existing().is_some(),
        policy_name: t.existing().map(|p| p.display_name.as_str().to_owned()).unwrap_or_default(),
        package_id: t.package().id.to_string(),
        package_name: t.package().display_name.as_str().to_owned(),
        action: t.review_url(),
        scopes: SCOPES,
        other_scope: form.other_scope(),
        form,
        errors,
    };
    render(status, &page)
}

#[derive(Template)]
#[template(path = "console/policy_review.html")]
struct ReviewPage {
    layout: Layout,
    editing: bool,
    name: String,
    description: String,
    package_id: String,
    package_name: String,
    action: String,
    d: Description,
    hidden: Vec<(String, String)>,
}

async fn new_form(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let pid: AccessPackageId = match path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match target(&state, &v, Which::New(pid)).await {
        Ok((t, _)) => form_page(&v, &t, StatusCode::OK, PolicyForm::new(), Errors::default()),
        Err(e) => app_error_page(e, Some(v.layout("admin"))),
    }
}

async fn edit_form(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let id: PolicyId = match path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match target(&state, &v, Which::Edit(id)).await {
        Ok((t, _)) => {
            let form = match t.existing() {
                Some(p) => PolicyForm::of(&state, p).await,
                None => PolicyForm::new(),
            };
            form_page(&v, &t, StatusCode::OK, form, Errors::default())
        }
        Err(e) => app_error_page(e, Some(v.layout("admin"))),
    }
}

/// Whether the POST reviews the policy or saves it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Review,
    Save,
}

async fn review_new(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    match path_id::<AccessPackageId>(&id) {
        Ok(pid) => submit(&state, req, Which::New(pid), Step::Review).await,
        Err(r) => *r,
    }
}

async fn create(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    match path_id::<AccessPackageId>(&id) {
        Ok(pid) => submit(&state, req, Which::New(pid), Step::Save).await,
        Err(r) => *r,
    }
}

async fn review_edit(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    match path_id::<PolicyId>(&id) {
        Ok(id) => submit(&state, req, Which::Edit(id), Step::Review).await,
        Err(r) => *r,
    }
}

async fn save(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    match path_id::<PolicyId>(&id) {
        Ok(id) => submit(&state, req, Which::Edit(id), Step::Save).await,
        Err(r) => *r,
    }
}

/// Review or save: the form becomes the API's body and goes through the API's parsing and
/// checks; any error shows the form again (422, nothing written) with the error next to its field.
async fn submit(state: &AppState, req: Request, which: Which, step: Step) -> Response {
    let (_, fields, v) = match form_viewer(state, req, &which.form_url()).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let (t, cap) = match target(state, &v, which).await {
        Ok(x) => x,
        Err(e) => return app_error_page(e, Some(v.layout("admin"))),
    };
    let form = PolicyForm::read(&fields);
    if field(&fields, "step") == Some("back") {
        return form_page(&v, &t, StatusCode::OK, form, Errors::default());
    }
    let mut c = compose(state, &v, &form, t.existing()).await;
    let mut errors = std::mem::take(&mut c.errors);
    let input = match crate::routes::policies::input_from(c.body.clone()) {
        Ok((input, _)) => Some(input),
        Err(e) => {
            place(e.message, &form, &c, &mut errors);
            None
        }
    };
    let Some(input) = input else {
        return form_page(&v, &t, StatusCode::UNPROCESSABLE_ENTITY, form, errors);
    };
    if step == Step::Review {
        // The checks `create_policy` and `replace_policy` make before they write.
        let mut settings = input.settings.clone();
        let checked = settings
            .check()
            .and_then(|()| {
                steward_domain::text::bounded(
                    "description",
                    input.description.clone(),
                    steward_domain::text::DESCRIPTION_MAX,
                )
            })
            .map_err(AppError::from);
        if let Err(e) = checked {
            place(message(&e), &form, &c, &mut errors);
        }
        if errors.any() {
            return form_page(&v, &t, StatusCode::UNPROCESSABLE_ENTITY, form, errors);
        }
        let page = ReviewPage {
            layout: v.layout("admin"),
            editing: t.existing().is_some(),
            name: input.display_name.as_str().to_owned(),
            description: input.description.clone().unwrap_or_default(),
            package_id: t.package().id.to_string(),
            package_name: t.package().display_name.as_str().to_owned(),
            action: t.save_url(),
            d: describe(state, &settings).await,
            hidden: form.hidden(),
        };
        return render(StatusCode::OK, &page);
    }
    if errors.any() {
        return form_page(&v, &t, StatusCode::UNPROCESSABLE_ENTITY, form, errors);
    }
    let pid = t.package().id;
    let saved = match t.existing() {
        None => policies::create_policy(&state.services, cap, pid, input).await.map(|_| "policy-created"),
        Some(p) => {
            // The version the form was read from: a policy changed since is not overwritten.
            let read_at = form.version.parse::<i64>().ok().map(steward_domain::time::from_micros);
            policies::replace_policy(&state.services, cap, p.id, input, None, read_at, None)
                .await
                .map(|_| "policy-saved")
        }
    };
    match saved {
        Ok(notice) => see_other(&format!("/admin/packages/{pid}?notice={notice}")),
        Err(e) if refusal(&e) => app_error_page(e, Some(v.layout("admin"))),
        Err(e) => {
            let status = refused_status(&e);
            place(message(&e), &form, &c, &mut errors);
            form_page(&v, &t, status, form, errors)
        }
    }
}

async fn delete(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let id: PolicyId = match path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let (_, _, v) = match form_viewer(&state, req, &Which::Edit(id).form_url()).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let (t, cap) = match target(&state, &v, Which::Edit(id)).await {
        Ok(x) => x,
        Err(e) => return app_error_page(e, Some(v.layout("admin"))),
    };
    let pid = t.package().id;
    match policies::delete_policy(&state.services, cap, id, None).await {
        Ok(()) => see_other(&format!("/admin/packages/{pid}?notice=policy-deleted")),
        Err(e) if refusal(&e) => app_error_page(e, Some(v.layout("admin"))),
        Err(e) => {
            let f = super::packages::Forms { policy_error: Some(message(&e)), ..super::packages::Forms::default() };
            super::packages::respond(&state, &v, pid, refused_status(&e), f).await
        }
    }
}
