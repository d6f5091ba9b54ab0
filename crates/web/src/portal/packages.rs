//! The packages a person may request (searchable, filterable by catalog, paginated; each page
//! a bounded number of reads whatever the number of packages), one package with what it grants,
//! who approves and why it cannot be requested, and the request form, submitted through
//! `requests::submit`: for oneself, or for someone else (`onBehalfAdd`) where a policy names the
//! viewer among its on-behalf requestors.

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use serde::Deserialize;
use steward_app::AppError;
use steward_app::lifecycle::requests::{self, RequestInput};
use steward_app::query::{ACCESS_PACKAGES, ListQuery, Relation, USERS};
use steward_domain::directory::User;
use steward_domain::eligibility::{self, Facts};
use steward_domain::enums::ExpirationPatternType;
use steward_domain::enums::RequestType;
use steward_domain::ids::{AccessPackageId, CatalogId, UserId};
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
    /// More catalogs hold packages this person may request than the filter lists.
    more_catalogs: bool,
    rows: Vec<PackageRow>,
    /// "25 packages", or "More than 1,000 packages".
    count: String,
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

/// Catalogs the filter lists at most: a longer select helps nobody, and search reaches the
/// packages of every catalog.
const CATALOG_CHOICES: usize = 200;

/// Packages counted at most for "N packages you can request": beyond, the page says "more
/// than 1,000" rather than visit every package the person may request to count them.
const COUNT_CAP: u32 = 1000;

/// `n` with thousands separated by commas.
fn thousands(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
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
    let query = page_query(search, catalog, page)?;
    let found = requests::requestable_packages(s, v.me, query.clone()).await?;
    // How many, counted no further than the cap.
    let user = s.store.get_user(v.id()).await?.ok_or_else(|| AppError::not_found("user", v.id()))?;
    let total = s.store.count_requestable(&user, &query, COUNT_CAP + 1).await?;
    let count = match total {
        1 => "1 package".to_owned(),
        n if n > u64::from(COUNT_CAP) => format!("More than {} packages", thousands(COUNT_CAP)),
        n => format!("{} packages", thousands(u32::try_from(n).unwrap_or(COUNT_CAP))),
    };
    // The catalogs of the packages this person may request, for the filter, in one read; the
    // catalogs of the rows shown and the one chosen, should they be beyond those listed.
    let limit = u32::try_from(CATALOG_CHOICES + 1).unwrap_or(u32::MAX);
    let mut catalogs = s.store.requestable_catalogs(&user, &page_query("", None, 1)?, limit).await?;
    let more_catalogs = catalogs.len() > CATALOG_CHOICES;
    catalogs.truncate(CATALOG_CHOICES);
    let mut names: Vec<(CatalogId, String)> =
        catalogs.into_iter().map(|c| (c.id, c.display_name.as_str().to_owned())).collect();
    let wanted = found.items.iter().map(|p| p.catalog_id).chain(catalog);
    let mut missing: Vec<CatalogId> = wanted.filter(|c| !names.iter().any(|(n, _)| n == c)).collect();
    missing.sort_unstable();
    missing.dedup();
    for id in missing {
        if let Some(c) = s.store.get_catalog(id).await? {
            names.push((c.id, c.display_name.as_str().to_owned()));
        }
    }
    names.sort_by_cached_key(|(_, n)| n.to_lowercase());
    let ids: Vec<AccessPackageId> = found.items.iter().map(|p| p.id).collect();
    let mut grants = super::requests::Names::default();
    grants.read_grants(state, ids).await?;
    let rows: Vec<PackageRow> = found
        .items
        .into_iter()
        .map(|p| PackageRow {
            id: p.id.to_string(),
            name: p.display_name.as_str().to_owned(),
            description: p.description.clone().unwrap_or_default(),
            catalog: catalog_name(&names, p.catalog_id),
            grants: grants.grants(p.id),
        })
        .collect();
    Ok(ListPage {
        layout: v.layout("packages"),
        search: search.to_owned(),
        catalogs: names
            .into_iter()
            .map(|(id, name)| CatalogOption { selected: Some(id) == catalog, id: id.to_string(), name })
            .collect(),
        more_catalogs,
        rows,
        count,
        page,
        previous: (page > 1).then(|| list_link(search, catalog, page - 1)),
        next: found.next.is_some().then(|| list_link(search, catalog, page + 1)),
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
    /// "Request for": someone else rather than myself.
    for_other: bool,
    /// The name or email typed for that someone.
    person: String,
    /// The person chosen among several who match, by id.
    person_id: String,
    /// People matching `person` when more than one does: (id, "Name (upn)", chosen).
    candidates: Vec<(String, String, bool)>,
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
    /// About the person requested for.
    person: Option<String>,
    sign_in_again: Option<String>,
}

impl FormErrors {
    fn any(&self) -> bool {
        self.general.is_some()
            || self.justification.is_some()
            || self.period.is_some()
            || self.answers.is_some()
            || self.person.is_some()
    }
}

/// Whether, and for whom, the viewer may request a package on someone else's behalf: one of
/// its policies enables on-behalf requests and names the viewer among its on-behalf
/// requestors (`eligibility::on_behalf_allowed`, what the lifecycle checks for an
/// `onBehalfAdd`). A policy that names only the target's manager lets the viewer request for
/// the people who report to them, if any do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnBehalf {
    No,
    Anyone,
    DirectReports,
}

async fn on_behalf(state: &AppState, v: &Viewer, policies: &[&AssignmentPolicy]) -> Result<OnBehalf, AppError> {
    let enabled: Vec<&&AssignmentPolicy> = policies
        .iter()
        .filter(|p| p.settings.requestor_settings.as_ref().is_some_and(|r| r.enable_on_behalf_requestors_to_add_access))
        .collect();
    if enabled.is_empty() {
        return Ok(OnBehalf::No);
    }
    let s = &state.services;
    let me = s.store.get_user(v.id()).await?.ok_or_else(|| AppError::not_found("user", v.id()))?;
    let groups = s.store.groups_of(me.id).await?;
    let organization = steward_app::connected_orgs::membership_of(s, &me).await?;
    let facts = Facts { user: &me, groups: &groups, organization };
    if enabled.iter().any(|p| eligibility::on_behalf_allowed(&p.settings, facts, None).allowed) {
        return Ok(OnBehalf::Anyone);
    }
    if enabled.iter().any(|p| eligibility::on_behalf_allowed(&p.settings, facts, Some(me.id)).allowed) {
        let q = ListQuery::all(&USERS).related(Relation::DirectReports, me.id);
        let q = ListQuery { top: 1, ..q };
        if !s.store.list_users(&q).await?.items.is_empty() {
            return Ok(OnBehalf::DirectReports);
        }
    }
    Ok(OnBehalf::No)
}

/// Enabled people other than the viewer whose name, user principal name or email contains
/// `text`, at most 10 (only the viewer's direct reports for `OnBehalf::DirectReports`).
async fn people(state: &AppState, v: &Viewer, text: &str, who: OnBehalf) -> Result<Vec<User>, AppError> {
    let options = QueryOptions {
        filter: Some(
            steward_odata::parse_filter("accountEnabled eq true").map_err(|e| AppError::Invalid(e.to_string()))?,
        ),
        search: Some(SearchTerm { property: None, value: text.to_owned() }),
        top: Some(11),
        ..QueryOptions::default()
    };
    let mut q = ListQuery::from_options(&USERS, &options)?;
    if who == OnBehalf::DirectReports {
        q = q.related(Relation::DirectReports, v.id());
    }
    Ok(state.services.store.list_users(&q).await?.items.into_iter().filter(|u| u.id != v.id()).take(10).collect())
}

/// The person a request for someone else is for, from the form: the one chosen among several,
/// else the one the typed text finds (exactly, by user principal name or email, or as the only
/// match). `Err` is the message for the person field; the candidates go back to the form.
async fn person(state: &AppState, v: &Viewer, form: &mut FormValues, who: OnBehalf) -> Result<UserId, String> {
    let text = form.person.trim().to_owned();
    if let Ok(id) = form.person_id.parse::<UserId>() {
        return match state.services.store.get_user(id).await {
            Ok(Some(u)) if u.id != v.id() => Ok(u.id),
            Ok(_) => Err("That person is not in the directory any more; type their name again.".into()),
            Err(_) => Err("Something went wrong; try again in a moment.".into()),
        };
    }
    if text.is_empty() {
        return Err("Type the name or email of the person you request access for.".into());
    }
    let found = people(state, v, &text, who).await.map_err(|e| e.to_string())?;
    let lower = text.to_lowercase();
    let exact = found.iter().find(|u| {
        u.user_principal_name.to_lowercase() == lower || u.mail.as_deref().is_some_and(|m| m.to_lowercase() == lower)
    });
    match (exact, found.as_slice()) {
        (Some(u), _) | (None, [u]) => Ok(u.id),
        (None, []) => Err(match who {
            OnBehalf::DirectReports => format!("No one who reports to you matches '{text}'."),
            _ => format!("No one in the directory matches '{text}'."),
        }),
        (None, many) => {
            form.candidates = many
                .iter()
                .map(|u| (u.id.to_string(), format!("{} ({})", u.display_name, u.user_principal_name), false))
                .collect();
            Err(format!("Several people match '{text}'; choose one."))
        }
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
    /// Whether the form offers "Request for: someone else".
    on_behalf: bool,
    /// Someone else means one of the viewer's direct reports.
    reports_only: bool,
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
    let all: Vec<&AssignmentPolicy> = e.policies.iter().map(|(p, _)| p).collect();
    let for_others = on_behalf(state, v, &all).await?;
    let visible = e.allowed || !applicable.is_empty() || holds || for_others != OnBehalf::No;
    let on_behalf_policy = all
        .iter()
        .copied()
        .find(|p| p.settings.requestor_settings.as_ref().is_some_and(|r| r.enable_on_behalf_requestors_to_add_access));
    let policy: Option<&AssignmentPolicy> =
        e.policy.as_ref().or(applicable.first()).or(on_behalf_policy.filter(|_| for_others != OnBehalf::No));
    let mut errors = errors;
    if for_others == OnBehalf::No && errors.general.is_none() {
        // Nowhere else to show it.
        errors.general = errors.person.take();
    }
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
        on_behalf: for_others != OnBehalf::No,
        reports_only: for_others == OnBehalf::DirectReports,
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
        for_other: super::field(fields, "for").is_some_and(|f| f == "other"),
        person: super::field(fields, "person").unwrap_or("").chars().take(200).collect(),
        person_id: super::field(fields, "person_id").unwrap_or("").to_owned(),
        candidates: Vec::new(),
    }
}

/// The field an error of the app concerns, by what it talks about.
fn place(e: AppError, errors: &mut FormErrors, back: &str, for_other: bool) {
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
            if for_other && (lower.contains("on behalf") || lower.contains("the target")) {
                errors.person = Some(message);
            } else if lower.contains("justification") {
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
    let mut form = read_form(fields);
    let mut errors = FormErrors::default();
    // For someone else: who, found by what was typed (the lifecycle decides whether the viewer
    // may request for them).
    let mut target = None;
    if form.for_other {
        let failed = |e: AppError| Box::new(super::app_error_page(e, Some(v.layout("packages"))));
        let pkg_policies = s.store.policies_of_package(id).await.map_err(|e| failed(e.into()))?;
        let refs: Vec<&AssignmentPolicy> = pkg_policies.iter().collect();
        match on_behalf(state, v, &refs).await.map_err(failed)? {
            // Nobody to look for: the directory is not searched for someone who may not ask.
            OnBehalf::No => errors.person = Some("You cannot request this access package for someone else.".into()),
            who => match person(state, v, &mut form, who).await {
                Ok(t) => target = Some(t),
                Err(m) => errors.person = Some(m),
            },
        }
    }
    let mut schedule = None;
    if form.period {
        match (super::date_input(&form.start, false), super::date_input(&form.end, true)) {
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
            request_type: Some(if target.is_some() { RequestType::OnBehalfAdd } else { RequestType::UserAdd }),
            access_package_id: Some(id),
            target_id: target,
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
                if let Ok(Some(open)) = s.store.open_request(target.unwrap_or(v.id()), id).await
                    && (open.requestor_id == Some(v.id()) || open.target_id == v.id())
                {
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
                place(e, &mut errors, back, target.is_some());
                status
            }
        }
    };
    match package_page(state, v, id, form, errors).await {
        Ok(p) => Ok(super::render(status, &p)),
        Err(e) => Err(Box::new(super::app_error_page(e, Some(v.layout("packages"))))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated_by_commas() {
        for (n, text) in
            [(0, "0"), (7, "7"), (999, "999"), (1000, "1,000"), (25_000, "25,000"), (1_234_567, "1,234,567")]
        {
            assert_eq!(thousands(n), text);
        }
    }
}
