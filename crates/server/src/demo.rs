//! `--demo`: a small, realistic organization (Contoso) so a newcomer sees a living system.
//! Seeding is idempotent: every object is looked up by its natural key first and only what is
//! missing is created, so restarting with `--demo` changes nothing.

use steward_app::auth::{AdminCap, local_operator};
use steward_app::catalogs::{self, NewCatalog, NewResourceRequest, ResourceRef};
use steward_app::directory::{self, GroupLink, NewGroup, NewUser, UserAttributes};
use steward_app::packages::{self, NewPackage, RoleRef, ScopeRef};
use steward_app::policies::{self, PolicyInput};
use steward_app::query::{ACCESS_PACKAGES, CATALOGS, GROUPS, ListQuery, RESOURCES, Schema};
use steward_app::roles::{self, DelegateCap};
use steward_app::{AppError, Services};
use steward_domain::enums::{CatalogState, RequestType, UserType};
use steward_domain::ids::{CatalogId, GroupId, UserId};
use steward_domain::role::{AppScope, Role, Task};
use steward_domain::text::DisplayName;

/// (upn local part, display name, department, job title, manager local part, guest?)
type Person = (&'static str, &'static str, &'static str, &'static str, Option<&'static str>, bool);
const PEOPLE: &[Person] = &[
    ("megan.bowen", "Megan Bowen", "Executive", "Chief Executive Officer", None, false),
    ("alex.wilber", "Alex Wilber", "Sales", "VP Sales", Some("megan.bowen"), false),
    ("lynne.robbins", "Lynne Robbins", "Sales", "Account Executive", Some("alex.wilber"), false),
    ("joni.sherman", "Joni Sherman", "Sales", "Account Executive", Some("alex.wilber"), false),
    ("lee.gu", "Lee Gu", "Sales", "Sales Engineer", Some("alex.wilber"), false),
    ("patti.fernandez", "Patti Fernandez", "Marketing", "VP Marketing", Some("megan.bowen"), false),
    ("miriam.graham", "Miriam Graham", "Marketing", "Campaign Manager", Some("patti.fernandez"), false),
    ("nestor.wilke", "Nestor Wilke", "Marketing", "Designer", Some("patti.fernandez"), false),
    ("isaiah.langer", "Isaiah Langer", "Engineering", "VP Engineering", Some("megan.bowen"), false),
    ("adele.vance", "Adele Vance", "Engineering", "Engineering Manager", Some("isaiah.langer"), false),
    ("johanna.lorenz", "Johanna Lorenz", "Engineering", "Senior Engineer", Some("adele.vance"), false),
    ("grady.archie", "Grady Archie", "Engineering", "Engineer", Some("adele.vance"), false),
    ("pradeep.gupta", "Pradeep Gupta", "Engineering", "Site Reliability Engineer", Some("adele.vance"), false),
    ("diego.siciliani", "Diego Siciliani", "Finance", "CFO", Some("megan.bowen"), false),
    ("irvin.sayers", "Irvin Sayers", "Finance", "Controller", Some("diego.siciliani"), false),
    ("henrietta.mueller", "Henrietta Mueller", "Human Resources", "HR Director", Some("megan.bowen"), false),
    ("debra.berger", "Debra Berger", "Human Resources", "HR Partner", Some("henrietta.mueller"), false),
    ("warwick.leahy", "Warwick Leahy", "Engineering", "Contract Developer", None, true),
    ("sam.taylor", "Sam Taylor", "Marketing", "Agency Partner", None, true),
    ("kim.akers", "Kim Akers", "Sales", "Reseller", None, true),
];

/// (mailNickname, display name, description, members, owners)
type GroupSeed = (&'static str, &'static str, &'static str, &'static [&'static str], &'static [&'static str]);
const GROUPS_SEED: &[GroupSeed] = &[
    (
        "sales",
        "Sales",
        "Everyone in Sales",
        &["alex.wilber", "lynne.robbins", "joni.sherman", "lee.gu"],
        &["alex.wilber"],
    ),
    (
        "marketing",
        "Marketing",
        "Everyone in Marketing",
        &["patti.fernandez", "miriam.graham", "nestor.wilke"],
        &["patti.fernandez"],
    ),
    (
        "engineering",
        "Engineering",
        "Everyone in Engineering",
        &["isaiah.langer", "adele.vance", "johanna.lorenz", "grady.archie", "pradeep.gupta"],
        &["isaiah.langer"],
    ),
    ("crm-users", "CRM Users", "Access to the CRM", &["lynne.robbins"], &["alex.wilber"]),
    ("campaign-tools", "Campaign Tools", "Access to the campaign tools", &[], &["patti.fernandez"]),
    (
        "sugarlearning-prod-contributors",
        "SugarLearning Prod Contributors",
        "Contributors on SugarLearning production",
        &["johanna.lorenz"],
        &["adele.vance"],
    ),
    (
        "sugarlearning-prod-readers",
        "SugarLearning Prod Readers",
        "Read-only access to SugarLearning production",
        &[],
        &["adele.vance"],
    ),
    ("finance-reports", "Finance Reports", "Monthly finance reporting", &["irvin.sayers"], &["diego.siciliani"]),
];

/// (catalog, description, [(package, description, hidden, [group nicknames granted as Member])])
type PackageSeed = (&'static str, &'static str, bool, &'static [&'static str]);
type CatalogSeed = (&'static str, &'static str, &'static [PackageSeed]);
const CATALOG_SEED: &[CatalogSeed] = &[
    (
        "Sales and Marketing",
        "Tools for the go-to-market teams",
        &[
            ("Sales Toolkit", "CRM and the Sales team for new account executives", false, &["crm-users", "sales"]),
            ("Marketing Campaigns", "Campaign tools for marketing and agency partners", false, &["campaign-tools"]),
        ],
    ),
    (
        "Engineering",
        "Production systems and engineering tools",
        &[
            (
                "SugarLearning Prod Contributor",
                "Contribute to SugarLearning production",
                false,
                &["sugarlearning-prod-contributors"],
            ),
            ("SugarLearning Prod Read-only", "Read SugarLearning production", false, &["sugarlearning-prod-readers"]),
        ],
    ),
];

const DOMAIN: &str = "contoso.example";
/// The demo's Steward administrator.
const ADMINISTRATOR: &str = "megan.bowen";
/// The second approver of the Engineering catalog's packages.
const SECOND_APPROVER: &str = "pradeep.gupta";

/// Every package's policy in the demo: members request for themselves with a justification,
/// optionally for a period of their choosing; their manager approves within 14 days; access
/// lasts 90 days and can be extended or given back.
fn demo_policy() -> Result<PolicyInput, AppError> {
    let mut settings = serde_json::json!({
        "allowedTargetScope": "allMemberUsers",
        "expiration": {"type": "afterDuration", "duration": "P90D"},
        "requestorSettings": {"enableTargetsToSelfAddAccess": true, "enableTargetsToSelfUpdateAccess": true,
            "enableTargetsToSelfRemoveAccess": true, "allowCustomAssignmentSchedule": true},
        "requestApprovalSettings": {"isApprovalRequiredForAdd": true, "isApprovalRequiredForUpdate": false,
            "isRequestorJustificationRequired": true,
            "stages": [{"durationBeforeAutomaticDenial": "P14D",
                "primaryApprovers": [{"@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 1}]}]},
    });
    steward_domain::policy::canonicalize_types(&mut settings);
    let settings = serde_json::from_value(settings).map_err(|e| AppError::Invalid(format!("demo policy: {e}")))?;
    Ok(PolicyInput {
        display_name: name("Members of Contoso")?,
        description: Some("Members request for themselves; their manager approves.".to_owned()),
        settings,
    })
}

/// The Engineering catalog's policy: as `demo_policy`, and then the owner of SugarLearning
/// production (Pradeep Gupta) approves as a second stage; requestors say which release and
/// which environment.
fn engineering_policy(second: UserId) -> Result<PolicyInput, AppError> {
    let mut settings = serde_json::json!({
        "allowedTargetScope": "allMemberUsers",
        "expiration": {"type": "afterDuration", "duration": "P90D"},
        "requestorSettings": {"enableTargetsToSelfAddAccess": true, "enableTargetsToSelfUpdateAccess": true,
            "enableTargetsToSelfRemoveAccess": true, "allowCustomAssignmentSchedule": true},
        "requestApprovalSettings": {"isApprovalRequiredForAdd": true, "isApprovalRequiredForUpdate": false,
            "isRequestorJustificationRequired": true,
            "stages": [
                {"durationBeforeAutomaticDenial": "P14D",
                 "primaryApprovers": [{"@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 1}]},
                {"durationBeforeAutomaticDenial": "P14D", "isApproverJustificationRequired": true,
                 "primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": second.to_string(),
                     "description": "Owner of SugarLearning production"}]},
            ]},
        "questions": [
            {"@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "id": "ticket", "sequence": 1,
             "text": "Which release or ticket is this for?", "isRequired": true, "isSingleLineQuestion": true},
            {"@odata.type": "#microsoft.graph.accessPackageMultipleChoiceQuestion", "id": "environment", "sequence": 2,
             "text": "Which environment will you work in?", "isRequired": true,
             "choices": [{"actualValue": "production", "text": "Production"},
                         {"actualValue": "staging", "text": "Staging"}]},
        ],
    });
    steward_domain::policy::canonicalize_types(&mut settings);
    let settings = serde_json::from_value(settings).map_err(|e| AppError::Invalid(format!("demo policy: {e}")))?;
    Ok(PolicyInput {
        display_name: name("Engineers of Contoso")?,
        description: Some(
            "Members request for themselves; their manager approves, then the system's owner.".to_owned(),
        ),
        settings,
    })
}

fn name(s: &str) -> Result<DisplayName, AppError> {
    Ok(DisplayName::parse(s)?)
}

/// Ignores "already there" so seeding can be repeated.
fn tolerate_existing(r: Result<(), AppError>) -> Result<bool, AppError> {
    match r {
        Ok(()) => Ok(true),
        Err(AppError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

fn filtered(schema: &'static Schema, filter: &str) -> Result<ListQuery, AppError> {
    let o = steward_odata::parse_query(&format!("$filter={filter}"))?;
    ListQuery::from_options(schema, &o)
}

fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Seeds the demo organization; returns how many objects were created.
pub async fn seed(s: &Services) -> Result<usize, AppError> {
    let cap = local_operator();
    let mut created = 0;
    let mut users: Vec<(&str, UserId)> = Vec::new();
    for (local, display, dept, title, _, guest) in PEOPLE {
        let upn = if *guest { format!("{local}_partner.example#EXT#@{DOMAIN}") } else { format!("{local}@{DOMAIN}") };
        let id = match s.store.user_by_upn(&upn).await? {
            Some(u) => u.id,
            None => {
                created += 1;
                let mail = if *guest { format!("{local}@partner.example") } else { format!("{local}@{DOMAIN}") };
                let new = NewUser {
                    display_name: name(display)?,
                    user_principal_name: upn,
                    user_type: Some(if *guest { UserType::Guest } else { UserType::Member }),
                    account_enabled: Some(true),
                    attributes: UserAttributes {
                        mail: Some(mail),
                        department: Some((*dept).to_owned()),
                        job_title: Some((*title).to_owned()),
                        company_name: Some(if *guest { "Partner Ltd" } else { "Contoso" }.to_owned()),
                        employee_id: None,
                        city: Some(if *guest { "Sydney" } else { "Seattle" }.to_owned()),
                        country: Some(if *guest { "Australia" } else { "United States" }.to_owned()),
                    },
                };
                directory::create_user(s, cap, new).await?.id
            }
        };
        users.push((local, id));
    }
    let user = |local: &str| users.iter().find(|(l, _)| *l == local).map(|(_, id)| *id);
    for (local, _, _, _, manager, _) in PEOPLE {
        if let (Some(u), Some(m)) = (user(local), manager.and_then(user)) {
            let current = s.store.get_user(u).await?.and_then(|x| x.manager);
            if current != Some(m) {
                directory::set_manager(s, cap, u, Some(m)).await?;
            }
        }
    }
    // Guests are sponsored by the managers of the teams they work with.
    for (guest, sponsor) in
        [("warwick.leahy", "adele.vance"), ("sam.taylor", "patti.fernandez"), ("kim.akers", "alex.wilber")]
    {
        if let (Some(g), Some(sp)) = (user(guest), user(sponsor)) {
            created += usize::from(tolerate_existing(directory::add_sponsor(s, cap, g, sp).await)?);
        }
    }

    let mut groups: Vec<(&str, GroupId)> = Vec::new();
    for (nick, display, description, members, owners) in GROUPS_SEED {
        let q = filtered(&GROUPS, &format!("mailNickname eq {}", quoted(nick)))?;
        let gid = match s.store.list_groups(&q).await?.items.first() {
            Some(g) => g.id,
            None => {
                created += 1;
                let new = NewGroup {
                    display_name: name(display)?,
                    description: Some((*description).to_owned()),
                    mail_nickname: Some((*nick).to_owned()),
                    mail_enabled: Some(false),
                    security_enabled: Some(true),
                };
                directory::create_group(s, cap, new).await?.id
            }
        };
        for (list, link) in [(*members, GroupLink::Member), (*owners, GroupLink::Owner)] {
            for m in list {
                if let Some(u) = user(m) {
                    tolerate_existing(directory::add_group_link(s, cap, gid, link, u).await)?;
                }
            }
        }
        groups.push((nick, gid));
    }

    // Megan Bowen administers Steward (the admin console is hers).
    if let Some(admin) = user(ADMINISTRATOR) {
        let held = s.store.role_assignments_of(admin).await?;
        if !held.iter().any(|a| a.role == Role::Administrator) {
            created += 1;
            roles::assign(s, DelegateCap::Admin(cap), admin, Role::Administrator, AppScope::Tenant).await?;
        }
    }

    for (cat_name, cat_desc, pkgs) in CATALOG_SEED {
        let cid = ensure_catalog(s, cap, cat_name, cat_desc, &mut created).await?;
        for (pkg_name, pkg_desc, hidden, grants) in *pkgs {
            let q =
                filtered(&ACCESS_PACKAGES, &format!("displayName eq {} and catalog/id eq '{cid}'", quoted(pkg_name)))?;
            let pid = match s.store.list_packages(&q).await?.items.first() {
                Some(p) => p.id,
                None => {
                    created += 1;
                    let new = NewPackage {
                        display_name: name(pkg_name)?,
                        description: Some((*pkg_desc).to_owned()),
                        is_hidden: Some(*hidden),
                        catalog_id: cid,
                    };
                    packages::create_package(s, cap.in_catalog(cid, Task::ManagePackages), new).await?.id
                }
            };
            for nick in *grants {
                let Some(gid) = groups.iter().find(|(n, _)| n == nick).map(|(_, g)| *g) else {
                    continue;
                };
                let rq = filtered(&RESOURCES, &format!("catalog/id eq '{cid}' and originId eq '{gid}'"))?;
                if s.store.list_resources(&rq).await?.items.is_empty() {
                    created += 1;
                    let req = NewResourceRequest {
                        request_type: RequestType::AdminAdd,
                        catalog_id: cid,
                        resource: ResourceRef {
                            id: None,
                            origin_id: Some(gid.to_string()),
                            origin_system: Some("AadGroup".into()),
                        },
                    };
                    catalogs::request_resource(s, cap.in_catalog(cid, Task::EditCatalog), req).await?;
                }
                let role = RoleRef { id: None, origin_id: Some(format!("Member_{gid}")), resource_id: None };
                match packages::add_role_scope(
                    s,
                    cap.in_catalog(cid, Task::ManagePackages),
                    pid,
                    role,
                    ScopeRef::default(),
                )
                .await
                {
                    Ok(_) => created += 1,
                    Err(AppError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            if s.store.policies_of_package(pid).await?.is_empty() {
                created += 1;
                let policy = match user(SECOND_APPROVER) {
                    Some(second) if *cat_name == "Engineering" => engineering_policy(second)?,
                    _ => demo_policy()?,
                };
                policies::create_policy(s, cap.in_catalog(cid, Task::ManagePackages), pid, policy).await?;
            }
        }
    }
    Ok(created)
}

async fn ensure_catalog(
    s: &Services,
    cap: AdminCap,
    display: &str,
    description: &str,
    created: &mut usize,
) -> Result<CatalogId, AppError> {
    let q = filtered(&CATALOGS, &format!("displayName eq {}", quoted(display)))?;
    if let Some(c) = s.store.list_catalogs(&q).await?.items.first() {
        return Ok(c.id);
    }
    *created += 1;
    let new = NewCatalog {
        display_name: name(display)?,
        description: Some(description.to_owned()),
        state: Some(CatalogState::Published),
        is_externally_visible: Some(true),
    };
    Ok(catalogs::create_catalog(s, cap.creator(), new).await?.id)
}
