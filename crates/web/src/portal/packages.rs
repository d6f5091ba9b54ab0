//! The packages a person may request (searchable, filterable by catalog, paginated), one
//! package with what it grants, who approves and why it cannot be requested, and the request
//! form, submitted through `requests::submit`.

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Deserialize;
use steward_app::AppError;
use steward_app::lifecycle::requests::{self, RequestInput};
use steward_app::query::{ACCESS_PACKAGES, ListQuery};
use steward_domain::enums::ExpirationPatternType;
use steward_domain::enums::RequestType;
use steward_domain::ids::{AccessPackageId, CatalogId};
use steward_domain::policy::{AssignmentPolicy, ExpirationPattern, Question};
use steward_domain::request::Answer;
use steward_domain::schedule::Schedule;
use steward_odata::{QueryOptions, SearchTerm};

use super::{Early, Layout, Viewer, When};
use crate::AppState;

/// Packages a page.
const PAGE: u32 = 25;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListParams {
    search: Option<String>,
    catalog: Option<String>,
    page: Option<u32>,
}

pub(crate) struct PackageRow {
    id: String,
    name: String,
    description: String,
    catalog: String,
    grants: Vec<String>,
}

pub(crate) struct CatalogOption {
    id: String,
    name: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "packages.html")]
struct ListPage {
    layout: Layout,
    search: String,
    catalogs: Vec<CatalogOption>,
    rows: Vec<PackageRow>,
    total: u64,
    page: u32,
    previous: Option<String>,
    next: Option<String>,
    error: Option<String>,
}

fn list_link(search: &str, catalog: Option<CatalogId>, page: u32) -> String {
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let mut q = vec![];
    if !search.is_empty() {
        q.push(format!("search={}", enc(search)));
    }
    if let Some(c) = catalog {
        q.push(format!("catalog={c}"));
    }
    q.push(format!("page={page}"));
    format!("/access-packages?{}", q.join("&"))
}

fn catalog_name(names: &[(CatalogId, String)], id: CatalogId) -> String {
    names.iter().find(|(c, _)| *c == id).map(|(_, n)| n.clone()).unwrap_or_default()
}

/// The query of one page of requestable, not hidden packages.
fn page_query(search: &str, catalog: Option<CatalogId>, page: u32) -> Result<ListQuery, AppError> {
    let mut filter = "isHidden eq false".to_owned();
    if let Some(c) = catalog {
        filter.push_str(&format!(" and catalog/id eq '{c}'"));
    }
    let options = QueryOptions {
        filter: Some(steward_odata::parse_filter(&filter).map_err(|e| AppError::Invalid(e.to_string()))?),
        search: (!search.is_empty()).then(|| SearchTerm { property: None, value: search.to_owned() }),
        top: Some(PAGE),
        skip: Some(page.saturating_sub(1).saturating_mul(PAGE)),
        count: true,
        ..QueryOptions::default()
    };
    ListQuery::from_options(&ACCESS_PACKAGES, &options)
}

pub(crate) async fn list(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match super::page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let params = Query::<ListParams>::try_from_uri(&parts.uri).map(|Query(p)| p).unwrap_or_default();
    let search: String = params.search.unwrap_or_default().trim().chars().take(200).collect();
    let catalog = params.catalog.as_deref().filter(|c| !c.is_empty()).and_then(|c| c.parse::<CatalogId>().ok());
    let page = params.page.unwrap_or(1).clamp(1, 10_000);
    match list_page(&state, &v, &search, catalog, page).await {
        Ok(p) => super::render(StatusCode::OK, &p),
        Err(e) => super::app_error_page(e, Some(v.layout("packages"))),
    }
}

async fn list_page(
    state: &AppState,
    v: &Viewer,
    search: &str,
    catalog: Option<CatalogId>,
    page: u32,
) -> Result<ListPage, AppError> {
    let s = &state.services;
    // The catalogs of the packages this person may request, for the filter.
    let all = requests::requestable_packages(
        s,
        v.me,
        page_query("", None, 1).map(|mut q| {
            q.top = steward_app::query::MAX_TOP;
            q.skip = 0;
            q.count = false;
            q
        })?,
    )
    .await?;
    let mut names: Vec<(CatalogId, String)> = Vec::new();
    for p in &all.items {
        if !names.iter().any(|(c, _)| *c == p.catalog_id)
            && let Some(c) = s.store.get_catalog(p.catalog_id).await?
        {
            names.push((c.id, c.display_name.as_str().to_owned()));
        }
    }
    names.sort_by_key(|(_, n)| n.to_lowercase());
    let found = requests::requestable_packages(s, v.me, page_query(search, catalog, page)?).await?;
    let mut rows = Vec::new();
    for p in found.items {
        rows.push(PackageRow {
            id: p.id.to_string(),
            name: p.display_name.as_str().to_owned(),
            description: p.description.clone().unwrap_or_default(),
            catalog: catalog_name(&names, p.catalog_id),
            grants: super::grants_of(state, p.id).await?,
        });
    }
    let total = found.count.unwrap_or(rows.len() as u64);
    let shown_to = u64::from(page.saturating_sub(1)) * u64::from(PAGE) + rows.len() as u64;
    Ok(ListPage {
        layout: v.layout("packages"),
        search: search.to_owned(),
        catalogs: names
            .into_iter()
            .map(|(id, name)| CatalogOption { selected: Some(id) == catalog, id: id.to_string(), name })
            .collect(),
        rows,
        total,
        page,
        previous: (page > 1).then(|| list_link(search, catalog, page - 1)),
        next: (shown_to < total).then(|| list_link(search, catalog, page + 1)),
        error: None,
    })
}

pub(crate) struct QuestionView {
    id: String,
    text: String,
    required: bool,
    multiline: bool,
    /// (value, text, chosen) for multiple choice.
    choices: Vec<(String, String, bool)>,
    multiple: bool,
    answer: String,
}

pub(crate) struct StageView {
    number: usize,
    approvers: Vec<String>,
}

/// What the user typed, kept when the form is shown again.
#[derive(Default)]
pub(crate) struct FormValues {
    justification: String,
    period: bool,
    start: String,
    end: String,
    answers: Vec<(String, Vec<String>)>,
}

impl FormValues {
    fn answer(&self, id: &str) -> Vec<String> {
        self.answers.iter().find(|(q, _)| q == id).map(|(_, v)| v.clone()).unwrap_or_default()
    }
}

/// Errors shown next to the fields they concern.
#[derive(Default)]
pub(crate) struct FormErrors {
    general: Option<String>,
    justification: Option<String>,
    period: Option<String>,
    answers: Option<String>,
    sign_in_again: Option<String>,
}

impl FormErrors {
    fn any(&self) -> bool {
        self.general.is_some() || self.justification.is_some() || self.period.is_some() || self.answers.is_some()
    }
}

#[derive(Template)]
#[template(path = "package.html")]
struct PackagePage {
    layout: Layout,
    id: String,
    /// Whether the viewer may see what the package is (they may request it, or have it).
    visible: bool,
    allowed: bool,
    name: String,
    description: String,
    grants: Vec<String>,
    summary: String,
    reasons: Vec<String>,
    blocked_by: Option<String>,
    policy_name: String,
    justification_required: bool,
    custom_schedule: bool,
    limit: String,
    max_end: String,
    today: String,
    stages: Vec<StageView>,
    questions: Vec<QuestionView>,
    form: FormValues,
    errors: FormErrors,
}

fn days(d: jiff::SignedDuration) -> i64 {
    d.as_secs() / 86_400
}

/// What a policy's expiration allows, in words, and the latest end date for a request made now.
fn limit_of(e: Option<&ExpirationPattern>, now: Timestamp) -> (String, Option<Timestamp>) {
    match e {
        None => ("Access does not expire unless it is removed.".into(), None),
        Some(e) => match (e.kind, e.duration, e.end_date_time) {
            (Some(ExpirationPatternType::NoExpiration), _, _) => {
                ("Access does not expire unless it is removed.".into(), None)
            }
            (_, Some(d), _) => {
                let end = now.saturating_add(d.as_signed()).ok();
                let n = days(d.as_signed());
                let text = if n >= 1 {
                    format!("Access lasts at most {n} day{}.", if n == 1 { "" } else { "s" })
                } else {
                    format!("Access lasts at most {}.", d.as_signed())
                };
                (text, end)
            }
            (_, None, Some(end)) => (format!("Access ends on {} at the latest.", When::day(end).text), Some(end)),
            (_, None, None) => ("Access does not expire unless it is removed.".into(), None),
        },
    }
}

fn question_text(q: &Question) -> (&steward_domain::policy::QuestionBase, bool, Vec<(String, String)>, bool) {
    match q {
        Question::TextInput { base, is_single_line_question, .. } => (base, !is_single_line_question, vec![], false),
        Question::MultipleChoice { base, choices, is_multiple_selection_allowed } => (
            base,
            false,
            choices
                .iter()
                .map(|c| (c.actual_value.clone(), c.text.clone().unwrap_or_else(|| c.actual_value.clone())))
                .collect(),
            *is_multiple_selection_allowed,
        ),
    }
}

async fn package_page(
    state: &AppState,
    v: &Viewer,
    id: AccessPackageId,
    form: FormValues,
    errors: FormErrors,
) -> Result<PackagePage, AppError> {
    let s = &state.services;
    let pkg = s.store.get_package(id).await?.ok_or_else(|| AppError::not_found("access package", id))?;
    let e = requests::explain(s, v.id(), id).await?;
    let applicable = requests::applicable_policies(s, v.me, id).await?;
    let holds = s.store.active_assignment(v.id(), id).await?.is_some();
    let visible = e.allowed || !applicable.is_empty() || holds;
    let policy: Option<&AssignmentPolicy> = e.policy.as_ref().or(applicable.first());
    let now = s.clock.now();
    let mut stages = Vec::new();
    for (i, people) in e.approvers.iter().enumerate() {
        let mut approvers = Vec::new();
        for u in people {
            approvers.push(super::user_name(state, *u).await);
        }
        stages.push(StageView { number: i + 1, approvers });
    }
    let (limit, max_end) = limit_of(policy.and_then(|p| p.settings.expiration.as_ref()), now);
    let (justification_required, custom_schedule) = policy.map(requests::requestor_requirements).unwrap_or_default();
    let mut questions = Vec::new();
    if let Some(p) = policy {
        let mut qs: Vec<&Question> = p.settings.questions.iter().collect();
        qs.sort_by_key(|q| question_text(q).0.sequence.unwrap_or(i32::MAX));
        for q in qs {
            let (base, multiline, choices, multiple) = question_text(q);
            let Some(qid) = base.id.clone() else { continue };
            let typed = form.answer(&qid);
            questions.push(QuestionView {
                text: base.text.clone().unwrap_or_else(|| qid.clone()),
                required: base.is_required,
                multiline,
                choices: choices.into_iter().map(|(val, text)| (val.clone(), text, typed.contains(&val))).collect(),
                multiple,
                answer: typed.into_iter().next().unwrap_or_default(),
                id: qid,
            });
        }
    }
    Ok(PackagePage {
        layout: v.layout("packages"),
        id: id.to_string(),
        visible,
        allowed: e.allowed,
        name: pkg.display_name.as_str().to_owned(),
        description: pkg.description.clone().unwrap_or_default(),
        grants: if visible { super::grants_of(state, id).await? } else { vec![] },
        summary: crate::routes::lifecycle::explanation_summary(&e),
        reasons: e
            .policies
            .iter()
            .filter(|(_, v)| !v.allowed)
            .map(|(p, v)| format!("{}: {}", p.display_name, v.reason))
            .collect(),
        blocked_by: e.blocked_by.clone(),
        policy_name: policy.map(|p| p.display_name.as_str().to_owned()).unwrap_or_default(),
        justification_required,
        custom_schedule,
        limit,
        max_end: max_end.map(|t| When::day(t).text).unwrap_or_default(),
        today: When::day(now).text,
        stages,
        questions,
        form,
        errors,
    })
}

pub(crate) async fn show(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let v = match super::page_viewer(&parts, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let id: AccessPackageId = match super::path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match package_page(&state, &v, id, FormValues::default(), FormErrors::default()).await {
        Ok(p) => super::render(StatusCode::OK, &p),
        Err(e) => super::app_error_page(e, Some(v.layout("packages"))),
    }
}

/// A date of a date input (`YYYY-MM-DD`) as the moment it starts (UTC), or its last second.
fn date(text: &str, end_of_day: bool) -> Result<Option<Timestamp>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let d: jiff::civil::Date = text.parse().map_err(|_| format!("'{text}' is not a date; use YYYY-MM-DD."))?;
    let t = if end_of_day {
        d.to_datetime(jiff::civil::time(23, 59, 59, 0))
    } else {
        d.to_datetime(jiff::civil::Time::midnight())
    };
    t.to_zoned(TimeZone::UTC).map(|z| Some(z.timestamp())).map_err(|_| format!("'{text}' is not a usable date."))
}

fn read_form(fields: &[(String, String)]) -> FormValues {
    let mut answers: Vec<(String, Vec<String>)> = Vec::new();
    for (k, val) in fields {
        if let Some(q) = k.strip_prefix("answer.") {
            if val.trim().is_empty() {
                continue;
            }
            match answers.iter_mut().find(|(id, _)| id == q) {
                Some((_, vals)) => vals.push(val.clone()),
                None => answers.push((q.to_owned(), vec![val.clone()])),
            }
        }
    }
    FormValues {
        justification: super::field(fields, "justification").unwrap_or("").to_owned(),
        period: super::field(fields, "period").is_some_and(|p| p == "on"),
        start: super::field(fields, "start").unwrap_or("").to_owned(),
        end: super::field(fields, "end").unwrap_or("").to_owned(),
        answers,
    }
}

/// The field an error of the app concerns, by what it talks about.
fn place(e: AppError, errors: &mut FormErrors, back: &str) {
    match e {
        AppError::ConditionsNotMet { message, acr_values, max_age, .. } => {
            let mut q = vec![format!(
                "returnTo={}",
                percent_encoding::utf8_percent_encode(back, percent_encoding::NON_ALPHANUMERIC)
            )];
            if let Some(a) = acr_values {
                q.push(format!(
                    "acr_values={}",
                    percent_encoding::utf8_percent_encode(&a, percent_encoding::NON_ALPHANUMERIC)
                ));
            }
            if let Some(m) = max_age {
                q.push(format!("max_age={m}"));
            }
            errors.sign_in_again = Some(format!("/auth/login?{}", q.join("&")));
            errors.general = Some(message);
        }
        other => {
            let message = match &other {
                AppError::Store(_) | AppError::Upstream(_) => "Something went wrong; try again in a moment.".to_owned(),
                e => e.to_string(),
            };
            let lower = message.to_lowercase();
            if lower.contains("justification") {
                errors.justification = Some(message);
            } else if lower.contains("schedule") || lower.contains("end ") || lower.contains("ends") {
                errors.period = Some(message);
            } else if lower.contains("question") || lower.contains("answer") {
                errors.answers = Some(message);
            } else {
                errors.general = Some(message);
            }
        }
    }
}

pub(crate) async fn request(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let id: AccessPackageId = match super::path_id(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let back = format!("/access-packages/{id}");
    let (_, fields, v) = match super::form_viewer(&state, req, &back).await {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match submit(&state, &v, id, &fields, &back).await {
        Ok(r) => r,
        Err(r) => *r,
    }
}

async fn submit(
    state: &AppState,
    v: &Viewer,
    id: AccessPackageId,
    fields: &[(String, String)],
    back: &str,
) -> Result<Response, Early> {
    let s = &state.services;
    let form = read_form(fields);
    let mut errors = FormErrors::default();
    let mut schedule = None;
    if form.period {
        match (date(&form.start, false), date(&form.end, true)) {
            (Ok(start), Ok(end)) => {
                if start.is_none() && end.is_none() {
                    errors.period = Some("Choose a start date, an end date, or both.".into());
                }
                schedule = Some(Schedule {
                    start_date_time: start,
                    expiration: end.map(|end| ExpirationPattern {
                        kind: Some(ExpirationPatternType::AfterDateTime),
                        duration: None,
                        end_date_time: Some(end),
                    }),
                });
            }
            (Err(m), _) | (_, Err(m)) => errors.period = Some(m),
        }
    }
    let status = if errors.any() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        let input = RequestInput {
            request_type: Some(RequestType::UserAdd),
            access_package_id: Some(id),
            justification: Some(form.justification.clone()).filter(|j| !j.trim().is_empty()),
            answers: form
                .answers
                .iter()
                .flat_map(|(q, vals)| {
                    vals.iter().map(|val| Answer { question_id: q.clone(), value: val.clone(), display_value: None })
                })
                .collect(),
            schedule,
            ..RequestInput::default()
        };
        match requests::submit(s, &v.principal, input).await {
            Ok(r) => return Ok(super::see_other(&format!("/requests/{}?submitted=1", r.id))),
            Err(AppError::Conflict(m)) => {
                // A double submit: the request already made is the answer.
                if let Ok(Some(open)) = s.store.open_request(v.id(), id).await {
                    return Ok(super::see_other(&format!("/requests/{}?existing=1", open.id)));
                }
                errors.general = Some(m);
                StatusCode::CONFLICT
            }
            Err(AppError::NotFound { kind, id }) => {
                return Err(Box::new(super::app_error_page(
                    AppError::NotFound { kind, id },
                    Some(v.layout("packages")),
                )));
            }
            Err(e) => {
                let status = super::form_status(&e);
                place(e, &mut errors, back);
                status
            }
        }
    };
    match package_page(state, v, id, form, errors).await {
        Ok(p) => Ok(super::render(status, &p)),
        Err(e) => Err(Box::new(super::app_error_page(e, Some(v.layout("packages"))))),
    }
}
