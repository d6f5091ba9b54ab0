//! What waits for my approval (`approvals::my_approvals`), with the requestor, their
//! justification and answers, what the package grants, how long until the stage times out and
//! any separation-of-duties conflict of the target; one approval with the approve/deny form
//! (`approvals::decide`); what I decided before.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use steward_app::AppError;
use steward_app::decision_links;
use steward_app::lifecycle::approvals;
use steward_app::ports::Conflicting;
use steward_domain::approval::StageRecord;
use steward_domain::ids::{AccessPackageId, ApprovalStageId, GroupId, PolicyId, RequestId, UserId};
use steward_domain::request::AssignmentRequest;

use super::requests::Names;
use super::{Layout, Viewer, When};
use crate::AppState;

pub(crate) struct ApprovalRow {
    id: String,
    package: String,
    requestor: String,
    target: String,
    justification: String,
    answers: Vec<String>,
    grants: Vec<String>,
    submitted: When,
    times_out: Option<When>,
    /// "times out in 13 days", from when the stage started and its time to decide.
    times_out_in: Option<String>,
    /// A separation-of-duties conflict of the target with this package, in words.
    conflict: Option<String>,
    stage: usize,
}

pub(crate) struct DecidedRow {
    id: String,
    package: String,
    target: String,
    decision: String,
    at: When,
    justification: String,
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ListPage {
    layout: Layout,
    waiting: Vec<ApprovalRow>,
    decided: Vec<DecidedRow>,
    banner: Option<String>,
}

/// How long until `deny_at`, in words: "times out in 13 days" (whole days, hours or minutes
/// left, rounded down).
fn times_out_in(deny_at: Timestamp, now: Timestamp) -> String {
    let left = deny_at.as_second().saturating_sub(now.as_second());
    let plural = |n: i64, unit: &str| format!("times out in {n} {unit}{}", if n == 1 { "" } else { "s" });
    match left {
        l if l <= 0 => "times out now".to_owned(),
        l if l >= 86_400 => plural(l / 86_400, "day"),
        l if l >= 3_600 => plural(l / 3_600, "hour"),
        l => plural((l / 60).max(1), "minute"),
    }
}

/// Separation-of-duties conflicts, as the lifecycle checks them when a request is approved (it
/// denies the request instead while one holds): the target holds an active assignment of a
/// package incompatible with the requested one (declared on either side), or is a member of
/// a group the requested package declares incompatible. For each (target, package) pair that
/// has one, the first conflict in words. Reads the packages' incompatibilities in one query;
/// only targets of packages that have any are looked at further.
async fn conflicts(
    state: &AppState,
    names: &mut Names,
    pairs: &[(UserId, AccessPackageId)],
) -> Result<HashMap<(UserId, AccessPackageId), String>, AppError> {
    let s = &state.services;
    let mut out = HashMap::new();
    let mut packages: Vec<AccessPackageId> = pairs.iter().map(|(_, p)| *p).collect();
    packages.sort_unstable();
    packages.dedup();
    let links = if packages.is_empty() { Vec::new() } else { s.store.incompatibilities_of(&packages).await? };
    if links.is_empty() {
        return Ok(out);
    }
    let others: Vec<AccessPackageId> = links
        .iter()
        .filter_map(|(_, c)| match c {
            Conflicting::Package(p) => Some(*p),
            Conflicting::Group(_) => None,
        })
        .collect();
    names.read_packages(state, others).await?;
    let mut held: HashMap<UserId, Vec<AccessPackageId>> = HashMap::new();
    let mut member_of: HashMap<UserId, Vec<GroupId>> = HashMap::new();
    let mut group_names: HashMap<GroupId, String> = HashMap::new();
    for &(target, package) in pairs {
        let mine = links.iter().filter(|(p, _)| *p == package).map(|(_, c)| *c);
        let (mut incompatible, mut groups) = (Vec::new(), Vec::new());
        for c in mine {
            match c {
                Conflicting::Package(p) => incompatible.push(p),
                Conflicting::Group(g) => groups.push(g),
            }
        }
        if !incompatible.is_empty() {
            if let Entry::Vacant(slot) = held.entry(target) {
                let active = s.store.active_assignments_of(target).await?;
                slot.insert(active.into_iter().map(|a| a.access_package_id).collect());
            }
            if let Some(p) = held.get(&target).and_then(|h| h.iter().find(|p| incompatible.contains(p))) {
                out.insert(
                    (target, package),
                    format!(
                        "{} already has access package '{}', which is incompatible with '{}'.",
                        names.user(target),
                        names.package(*p),
                        names.package(package)
                    ),
                );
                continue;
            }
        }
        if !groups.is_empty() {
            if let Entry::Vacant(slot) = member_of.entry(target) {
                slot.insert(s.store.groups_of(target).await?);
            }
            if let Some(g) = member_of.get(&target).and_then(|m| groups.iter().find(|g| m.contains(g))) {
                if let Entry::Vacant(slot) = group_names.entry(*g) {
                    let group = s.store.get_group(*g).await?;
                    slot.insert(group.map_or_else(|| g.to_string(), |g| g.display_name.to_string()));
                }
                out.insert(
                    (target, package),
                    format!(
                        "{} is a member of group '{}', which is incompatible with '{}'.",
                        names.user(target),
                        group_names.get(g).cloned().unwrap_or_default(),
                        names.package(package)
                    ),
                );
            }
        }
    }
    Ok(out)
}

/// The rows of the requests waiting for `me`, with everything they show read in bulk.
async fn waiting_rows(
    state: &AppState,
    names: &mut Names,
    me: UserId,
    requests: &[&AssignmentRequest],
) -> Result<Vec<ApprovalRow>, AppError> {
    let now = state.services.clock.now();
    let waiting: Vec<(&AssignmentRequest, usize, &StageRecord)> =
        requests.iter().filter_map(|r| approvals::waiting_stage(r, me).map(|(i, st)| (*r, i, st))).collect();
    let packages: Vec<AccessPackageId> = waiting.iter().map(|(r, ..)| r.access_package_id).collect();
    let policies: Vec<PolicyId> =
        waiting.iter().filter(|(r, ..)| !r.detail.answers.is_empty()).filter_map(|(r, ..)| r.policy_id).collect();
    names.read_grants(state, packages).await?;
    names.read_policies(state, policies).await?;
    // The lifecycle checks new access only (an extension keeps what the target has).
    let pairs: Vec<(UserId, AccessPackageId)> =
        waiting.iter().filter(|(r, ..)| r.is_add()).map(|(r, ..)| (r.target_id, r.access_package_id)).collect();
    let found = conflicts(state, names, &pairs).await?;
    Ok(waiting
        .into_iter()
        .map(|(r, i, st)| ApprovalRow {
            id: r.id.to_string(),
            package: names.package(r.access_package_id),
            requestor: r.requestor_id.map_or_else(|| "An administrator".into(), |u| names.user(u)),
            target: names.user(r.target_id),
            justification: r.detail.justification.clone().unwrap_or_default(),
            answers: names.answers(r),
            grants: names.grants(r.access_package_id),
            submitted: When::of(r.created_date_time),
            times_out: st.deny_at.map(When::of),
            times_out_in: st.deny_at.map(|t| times_out_in(t, now)),
            conflict: found.get(&(r.target_id, r.access_package_id)).cloned(),
            stage: i + 1,
        })
        .collect())
}

/// `me`'s decisions on `requests`, newest first.
fn decided_rows(names: &Names, me: UserId, requests: &[&AssignmentRequest]) -> Vec<DecidedRow> {
    let mut mine: Vec<(&AssignmentRequest, &steward_domain::approval::Decision)> = requests
        .iter()
        .flat_map(|r| r.detail.stages.iter().flat_map(|st| st.decisions.iter()).map(move |d| (*r, d)))
        .filter(|(_, d)| d.by == me)
        .collect();
    mine.sort_by_key(|(_, d)| std::cmp::Reverse(d.at));
    mine.into_iter()
        .map(|(r, d)| DecidedRow {
            id: r.id.to_string(),
            package: names.package(r.access_package_id),
            target: names.user(r.target_id),
            decision: if d.approve { "Approved".into() } else { "Denied".into() },
            at: When::of(d.at),
            justification: d.justification.clone().unwrap_or_default(),
        })
        .collect()
}

/// Reads the packages and people a list of requests names.
async fn read_names(state: &AppState, names: &mut Names, requests: &[&AssignmentRequest]) -> Result<(), AppError> {
    let packages: Vec<AccessPackageId> = requests.iter().map(|r| r.access_package_id).collect();
    let mut people: Vec<UserId> = Vec::with_capacity(requests.len() * 2);
    for r in requests {
        people.push(r.target_id);
        people.extend(r.requestor_id);
        people.extend(r.detail.stages.iter().flat_map(|st| st.decisions.iter().map(|d| d.by)));
    }
    names.read_packages(state, packages).await?;
    names.read_users(state, people).await
}

async fn list_page(state: &AppState, v: &Viewer, banner: Option<String>) -> Result<ListPage, AppError> {
    let s = &state.services;
    let page = approvals::my_approvals(s, v.me, super::requests::newest(200)?).await?;
    let requests: Vec<&AssignmentRequest> = page.items.iter().map(|a| &a.request).collect();
    let mut names = Names::default();
    read_names(state, &mut names, &requests).await?;
    let waiting = waiting_rows(state, &mut names, v.id(), &requests).await?;
    let decided = decided_rows(&names, v.id(), &requests);
    Ok(ListPage { layout: v.layout("approvals"), waiting, decided, banner })
}

pub(crate) async fn list(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match super::page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let banner =
        parts.uri.query().is_some_and(|q| q.contains("decided=1")).then(|| "Your decision was recorded.".to_owned());
    match list_page(&state, &v, banner).await {
        Ok(p) => super::render(StatusCode::OK, &p),
        Err(e) => super::app_error_page(e, Some(v.layout("approvals"))),
    }
}

pub(crate) struct DecisionLine {
    stage: usize,
    decision: &'static str,
    by: String,
    mine: bool,
    at: When,
    justification: String,
}

/// The decisions on `r`, in stage order and, within a stage, in the order they were made.
fn decision_lines(names: &Names, me: UserId, r: &AssignmentRequest) -> Vec<DecisionLine> {
    r.detail
        .stages
        .iter()
        .enumerate()
        .flat_map(|(i, st)| st.decisions.iter().map(move |d| (i, d)))
        .map(|(i, d)| DecisionLine {
            stage: i + 1,
            decision: if d.approve { "Approved" } else { "Denied" },
            by: names.user(d.by),
            mine: d.by == me,
            at: When::of(d.at),
            justification: d.justification.clone().unwrap_or_default(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "approval.html")]
struct DetailPage {
    layout: Layout,
    id: String,
    package: String,
    state: String,
    waiting: Option<ApprovalRow>,
    /// Every decision on the request so far, stage by stage (mine marked), so a later stage's
    /// approver sees what the earlier ones decided and why.
    decisions: Vec<DecisionLine>,
    stage_id: String,
    justification_required: bool,
    justification: String,
    error: Option<String>,
    /// Opened from a one-click link in the approver's mail: the decision it carries, confirmed
    /// with one button.
    link: Option<LinkForm>,
}

/// A one-click link's form: its token and the decision it names.
struct LinkForm {
    token: String,
    approve: bool,
}

async fn detail_page(
    state: &AppState,
    v: &Viewer,
    id: RequestId,
    justification: String,
    error: Option<String>,
) -> Result<DetailPage, AppError> {
    let a = approvals::get_approval(&state.services, &v.principal, id).await?;
    let r = &a.request;
    let mut names = Names::default();
    read_names(state, &mut names, &[r]).await?;
    let waiting = waiting_rows(state, &mut names, v.id(), &[r]).await?.into_iter().next();
    let (stage_id, justification_required) = match approvals::waiting_stage(r, v.id()) {
        Some((_, st)) => (st.id.to_string(), st.justification_required),
        None => (String::new(), false),
    };
    Ok(DetailPage {
        layout: v.layout("approvals"),
        id: r.id.to_string(),
        package: names.package(r.access_package_id),
        state: super::requests::state_text(r.state).to_owned(),
        waiting,
        decisions: decision_lines(&names, v.id(), r),
        stage_id,
        justification_required,
        justification,
        error,
        link: None,
    })
}

pub(crate) async fn show(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match super::page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let id: RequestId = match super::path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match detail_page(&state, &v, id, String::new(), None).await {
        Ok(p) => super::render(StatusCode::OK, &p),
        Err(e) => super::app_error_page(e, Some(v.layout("approvals"))),
    }
}

/// A decision form's request, fields and viewer (CSRF checked), or the response to give instead.
async fn decision_form(
    state: &AppState,
    id: &str,
    req: Request,
) -> Result<(RequestId, Vec<(String, String)>, Viewer), Response> {
    let id: RequestId = super::path_id(id).map_err(|r| *r)?;
    let back = format!("/approvals/{id}");
    let (_, fields, v) = super::form_viewer(state, req, &back).await.map_err(|r| *r)?;
    Ok((id, fields, v))
}

/// What a refused decision says on the page: the app's words, except for the database's or a
/// peer's trouble.
fn refusal_text(e: &AppError) -> String {
    match e {
        AppError::Store(_) | AppError::Upstream(_) => "Something went wrong; try again in a moment.".to_owned(),
        e => e.to_string(),
    }
}

pub(crate) async fn decide(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (id, fields, v) = match decision_form(&state, &id, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let justification = super::field(&fields, "justification").unwrap_or("").to_owned();
    let again = |status: StatusCode, message: String| {
        let state = state.clone();
        let justification = justification.clone();
        let v = &v;
        async move {
            match detail_page(&state, v, id, justification, Some(message)).await {
                Ok(p) => super::render(status, &p),
                Err(e) => super::app_error_page(e, Some(v.layout("approvals"))),
            }
        }
    };
    let approve = match super::field(&fields, "decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => return again(StatusCode::UNPROCESSABLE_ENTITY, "Choose Approve or Deny.".into()).await,
    };
    let Some(stage) = super::field(&fields, "stage").and_then(|s| s.parse::<ApprovalStageId>().ok()) else {
        return again(StatusCode::UNPROCESSABLE_ENTITY, "This form is out of date; reload the page.".into()).await;
    };
    let why = Some(justification.clone()).filter(|j| !j.trim().is_empty());
    match approvals::decide(&state.services, v.me, v.principal.sign_in(), id, stage, approve, why).await {
        Ok(()) => super::see_other("/approvals?decided=1"),
        Err(e @ AppError::NotFound { .. }) => super::app_error_page(e, Some(v.layout("approvals"))),
        Err(e) => again(super::form_status(&e), refusal_text(&e)).await,
    }
}

/// The `t` query parameter of a link.
fn token_of(parts: &axum::http::request::Parts) -> String {
    let query = parts.uri.query().unwrap_or("");
    super::form_fields(query.as_bytes()).into_iter().find(|(k, _)| k == "t").map(|(_, v)| v).unwrap_or_default()
}

/// `GET /approvals/{id}/link?t=…`: a one-click link from an approver's mail. Signing in comes
/// first (and back here); the link must be this deployment's, unexpired, unused and sent to the
/// one signed in. Nothing is decided by opening it (mail scanners open links): the page asks to
/// confirm the decision it names, with the justification field when the stage requires one.
pub(crate) async fn link(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match super::page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let id: RequestId = match super::path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let token = token_of(&parts);
    let refused = |e: AppError| super::app_error_page(e, Some(v.layout("approvals")));
    let link = match decision_links::check(&state.services, id, v.id(), &token) {
        Ok(l) => l,
        Err(e) => return refused(e),
    };
    match state.services.store.decision_link_used(&link.nonce).await {
        Ok(false) => {}
        Ok(true) => return refused(AppError::Conflict(decision_links::USED.into())),
        Err(e) => return refused(e.into()),
    }
    match detail_page(&state, &v, id, String::new(), None).await {
        Ok(mut p) => {
            p.link = Some(LinkForm { token, approve: link.approve });
            super::render(StatusCode::OK, &p)
        }
        Err(e) => refused(e),
    }
}

/// `POST /approvals/{id}/link`: the confirmed one-click decision (CSRF checked as every form).
pub(crate) async fn link_decide(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (id, fields, v) = match decision_form(&state, &id, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let token = super::field(&fields, "t").unwrap_or("").to_owned();
    let justification = super::field(&fields, "justification").unwrap_or("").to_owned();
    let why = Some(justification.clone()).filter(|j| !j.trim().is_empty());
    match decision_links::decide(&state.services, v.me, v.principal.sign_in(), id, &token, why).await {
        Ok(_) => super::see_other("/approvals?decided=1"),
        Err(e @ (AppError::Invalid(_) | AppError::Forbidden(_) | AppError::NotFound { .. })) => {
            super::app_error_page(e, Some(v.layout("approvals")))
        }
        Err(AppError::Conflict(m)) => super::app_error_page(AppError::Conflict(m), Some(v.layout("approvals"))),
        Err(e) => {
            // What the stage itself refused (a justification it requires, a condition unmet):
            // the same page again, with the message and the link kept.
            let status = super::form_status(&e);
            match detail_page(&state, &v, id, justification, Some(refusal_text(&e))).await {
                Ok(mut p) => {
                    // The link checked a moment ago (the use case checks it first).
                    let approve = decision_links::check(&state.services, id, v.id(), &token).is_ok_and(|l| l.approve);
                    p.link = Some(LinkForm { token, approve });
                    super::render(status, &p)
                }
                Err(e) => super::app_error_page(e, Some(v.layout("approvals"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_left_to_decide_is_said_in_whole_units_rounded_down() {
        let now: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        let after = |secs: i64| now.checked_add(jiff::SignedDuration::from_secs(secs)).unwrap();
        for (secs, text) in [
            (14 * 86_400, "times out in 14 days"),
            (13 * 86_400 + 86_399, "times out in 13 days"),
            (86_400, "times out in 1 day"),
            (86_399, "times out in 23 hours"),
            (3_600, "times out in 1 hour"),
            (3_599, "times out in 59 minutes"),
            (59, "times out in 1 minute"),
            (0, "times out now"),
            (-5, "times out now"),
        ] {
            assert_eq!(times_out_in(after(secs), now), text, "{secs} s");
        }
    }
}
