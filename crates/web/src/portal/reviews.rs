//! The Reviews tab: the access reviews in which the viewer decides (`reviews::my_reviews`), and
//! one review's decisions for them, 25 a page, each with whose access it is, to which package,
//! the recommendation and its reason, and an Approve / Deny / Don't know form
//! (`reviews::record`); "Accept recommendations" (`reviews::accept_recommendations`). The
//! rules (who may decide, a justification to approve, a review that has ended) are the API's.

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use steward_app::AppError;
use steward_app::query::{ListQuery, REVIEW_DECISIONS};
use steward_app::reviews;
use steward_domain::ids::{ReviewDecisionId, ReviewDefinitionId, ReviewInstanceId};
use steward_domain::review::{Decision, Recommendation, Recording, ReviewDecision, ReviewStatus};
use steward_odata::{OrderBy, QueryOptions};

use super::requests::Names;
use super::{Layout, Viewer, When};
use crate::AppState;

/// Decisions a page.
const PAGE: u32 = 25;

pub(crate) struct ReviewRow {
    href: String,
    name: String,
    about: String,
    ends: When,
    open: bool,
    to_review: usize,
    decided: usize,
}

#[derive(Template)]
#[template(path = "reviews.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<ReviewRow>,
}

pub(crate) async fn list(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match super::page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let rows = match reviews::my_reviews(&state.services, v.id()).await {
        Ok(mine) => mine
            .into_iter()
            .map(|m| ReviewRow {
                href: format!("/reviews/{}/{}", m.definition.id, m.instance.id),
                name: m.definition.input.display_name.clone(),
                about: m.definition.input.description_for_reviewers.clone().unwrap_or_default(),
                ends: When::of(m.instance.stage_end),
                open: m.instance.status == ReviewStatus::InProgress,
                to_review: m.to_review,
                decided: m.decided,
            })
            .collect(),
        Err(e) => return super::app_error_page(e, Some(v.layout("reviews"))),
    };
    super::render(StatusCode::OK, &ListPage { layout: v.layout("reviews"), rows })
}

pub(crate) struct DecisionRow {
    id: String,
    principal: String,
    package: String,
    recommendation: &'static str,
    reason: String,
    decision: &'static str,
    /// The value the form shows chosen.
    chosen: &'static str,
    justification: String,
    reviewed: Option<When>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "review.html")]
struct DetailPage {
    layout: Layout,
    action: String,
    name: String,
    about: String,
    ends: When,
    open: bool,
    justification_required: bool,
    rows: Vec<DecisionRow>,
    page: u32,
    previous: Option<String>,
    next: Option<String>,
    banner: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Params {
    page: Option<u32>,
    saved: Option<String>,
    accepted: Option<usize>,
}

fn decision_text(d: Decision) -> &'static str {
    match d {
        Decision::NotReviewed => "Not reviewed yet",
        Decision::Approve => "Approved",
        Decision::Deny => "Denied",
        Decision::DontKnow => "Don't know",
    }
}

fn recommendation_text(r: Recommendation) -> &'static str {
    match r {
        Recommendation::Approve => "Approve",
        Recommendation::Deny => "Deny",
        Recommendation::NoInfoAvailable => "No recommendation",
    }
}

fn form_value(d: Decision) -> &'static str {
    match d {
        Decision::Approve => "Approve",
        Decision::Deny => "Deny",
        Decision::DontKnow => "DontKnow",
        Decision::NotReviewed => "",
    }
}

/// A form's error, kept with what was typed, for the decision it concerns.
struct Failed {
    id: ReviewDecisionId,
    chosen: &'static str,
    justification: String,
    message: String,
}

async fn detail_page(
    state: &AppState,
    v: &Viewer,
    ids: (ReviewDefinitionId, ReviewInstanceId),
    page: u32,
    banner: Option<String>,
    failed: Option<Failed>,
) -> Result<DetailPage, AppError> {
    let s = &state.services;
    let (definition, instance) = reviews::get_instance(s, &v.principal, ids.0, ids.1).await?;
    let options = QueryOptions {
        orderby: vec![OrderBy { path: vec!["id".into()], descending: false }],
        top: Some(PAGE + 1),
        skip: Some(page.saturating_sub(1).saturating_mul(PAGE)),
        ..QueryOptions::default()
    };
    let q = ListQuery::from_options(&REVIEW_DECISIONS, &options)?;
    let mut items: Vec<ReviewDecision> = reviews::list_my_decisions(s, v.id(), Some(ids), &q).await?.items;
    let more = items.len() > PAGE as usize;
    items.truncate(PAGE as usize);
    let mut names = Names::default();
    names.read_users(state, items.iter().map(|d| d.principal_id).collect()).await?;
    names.read_packages(state, items.iter().map(|d| d.access_package_id).collect()).await?;
    let rows = items
        .iter()
        .map(|d| {
            let mine = failed.as_ref().filter(|f| f.id == d.id);
            DecisionRow {
                id: d.id.to_string(),
                principal: names.user(d.principal_id),
                package: names.package(d.access_package_id),
                recommendation: recommendation_text(d.recommendation),
                reason: d.recommendation_reason.clone().unwrap_or_default(),
                decision: decision_text(d.decision),
                chosen: mine.map_or(form_value(d.decision), |f| f.chosen),
                justification: mine
                    .map_or_else(|| d.justification.clone().unwrap_or_default(), |f| f.justification.clone()),
                reviewed: d.reviewed_at.map(When::of),
                error: mine.map(|f| f.message.clone()),
            }
        })
        .collect();
    let base = format!("/reviews/{}/{}", ids.0, ids.1);
    let error = failed.filter(|f| !items.iter().any(|d| d.id == f.id)).map(|f| f.message);
    Ok(DetailPage {
        layout: v.layout("reviews"),
        name: definition.input.display_name.clone(),
        about: definition.input.description_for_reviewers.clone().unwrap_or_default(),
        ends: When::of(instance.stage_end),
        open: instance.status == ReviewStatus::InProgress,
        justification_required: definition.input.settings.justification_required_on_approval,
        rows,
        page,
        previous: (page > 1).then(|| format!("{base}?page={}", page - 1)),
        next: more.then(|| format!("{base}?page={}", page + 1)),
        action: base,
        banner,
        error,
    })
}

fn ids_of(definition: &str, instance: &str) -> Result<(ReviewDefinitionId, ReviewInstanceId), super::Early> {
    Ok((super::path_id(definition)?, super::path_id(instance)?))
}

pub(crate) async fn show(
    State(state): State<AppState>,
    Path((definition, instance)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (parts, _) = req.into_parts();
    let v = match super::page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let ids = match ids_of(&definition, &instance) {
        Ok(ids) => ids,
        Err(r) => return *r,
    };
    let params = Query::<Params>::try_from_uri(&parts.uri).map(|Query(p)| p).unwrap_or_default();
    let banner = match (params.saved.is_some(), params.accepted) {
        (true, _) => Some("Your decision was recorded.".to_owned()),
        (false, Some(0)) => Some("Nothing had a recommendation to accept.".to_owned()),
        (false, Some(n)) => Some(format!("{n} recommendation(s) accepted.")),
        _ => None,
    };
    let page = params.page.unwrap_or(1).clamp(1, 100_000);
    match detail_page(&state, &v, ids, page, banner, None).await {
        Ok(p) => super::render(StatusCode::OK, &p),
        Err(e) => super::app_error_page(e, Some(v.layout("reviews"))),
    }
}

pub(crate) async fn decide(
    State(state): State<AppState>,
    Path((definition, instance, decision)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let ids = match ids_of(&definition, &instance) {
        Ok(ids) => ids,
        Err(r) => return *r,
    };
    let id: ReviewDecisionId = match super::path_id(&decision) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let back = format!("/reviews/{}/{}", ids.0, ids.1);
    let (_, fields, v) = match super::form_viewer(&state, req, &back).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let page = super::field(&fields, "page").and_then(|p| p.parse::<u32>().ok()).unwrap_or(1).clamp(1, 100_000);
    let justification = super::field(&fields, "justification").unwrap_or("").to_owned();
    let chosen = match super::field(&fields, "decision") {
        Some("Approve") => Decision::Approve,
        Some("Deny") => Decision::Deny,
        Some("DontKnow") => Decision::DontKnow,
        _ => {
            let failed =
                Failed { id, chosen: "", justification, message: "Choose Approve, Deny or Don't know.".into() };
            return again(&state, &v, ids, page, StatusCode::UNPROCESSABLE_ENTITY, failed).await;
        }
    };
    let recording =
        Recording { decision: chosen, justification: Some(justification.clone()).filter(|j| !j.trim().is_empty()) };
    match reviews::record(&state.services, &v.principal, ids.0, ids.1, id, recording).await {
        Ok(_) => super::see_other(&format!("{back}?page={page}&saved=1#d-{id}")),
        Err(e @ AppError::NotFound { .. }) => super::app_error_page(e, Some(v.layout("reviews"))),
        Err(e) => {
            let status = super::form_status(&e);
            let message = match &e {
                AppError::Store(_) | AppError::Upstream(_) => "Something went wrong; try again in a moment.".to_owned(),
                e => e.to_string(),
            };
            let failed = Failed { id, chosen: form_value(chosen), justification, message };
            again(&state, &v, ids, page, status, failed).await
        }
    }
}

async fn again(
    state: &AppState,
    v: &Viewer,
    ids: (ReviewDefinitionId, ReviewInstanceId),
    page: u32,
    status: StatusCode,
    failed: Failed,
) -> Response {
    match detail_page(state, v, ids, page, None, Some(failed)).await {
        Ok(p) => super::render(status, &p),
        Err(e) => super::app_error_page(e, Some(v.layout("reviews"))),
    }
}

pub(crate) async fn accept(
    State(state): State<AppState>,
    Path((definition, instance)): Path<(String, String)>,
    req: Request,
) -> Response {
    let ids = match ids_of(&definition, &instance) {
        Ok(ids) => ids,
        Err(r) => return *r,
    };
    let back = format!("/reviews/{}/{}", ids.0, ids.1);
    let (_, _, v) = match super::form_viewer(&state, req, &back).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match reviews::accept_recommendations(&state.services, &v.principal, ids.0, ids.1).await {
        Ok(n) => super::see_other(&format!("{back}?accepted={n}")),
        Err(e @ AppError::NotFound { .. }) => super::app_error_page(e, Some(v.layout("reviews"))),
        Err(e) => {
            let status = super::form_status(&e);
            match detail_page(&state, &v, ids, 1, None, None).await {
                Ok(mut p) => {
                    p.error = Some(e.to_string());
                    super::render(status, &p)
                }
                Err(e) => super::app_error_page(e, Some(v.layout("reviews"))),
            }
        }
    }
}
