//! The authorization matrix: every operation of the route table, called as each kind of
//! caller, allowed or refused as the table below says. The operations come from the route
//! registry itself (`steward_web::api()`), and the test fails for any operation the table does
//! not name, so a new endpoint cannot be added without deciding who may call it.
//!
//! "Allowed" means the call got past authorization: anything but 401, 403 and 404 (every
//! path names an object that exists). "Refused" means 401 for the anonymous caller and 403 (or
//! 404, where Steward hides an object the caller may not see) for everyone else. State-changing
//! calls run on a fresh world for each allowed caller, so one caller's delete cannot spoil the
//! next one's call.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::app::{ADMIN, EM, TestApp};
use crate::connections::KEY;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Anonymous,
    /// A signed-in user with no role and no request.
    Plain,
    /// The user who made the request the paths name.
    Requestor,
    /// A user who made a request of their own, calling on the other user's request.
    OtherRequestor,
    /// The approver of the request the paths name.
    Approver,
    /// Catalog reader of catalog A (the catalog of every object the paths name).
    Reader,
    /// Catalog owner of catalog B.
    OtherOwner,
    /// Catalog owner of catalog A.
    Owner,
    /// Access package manager of catalog A.
    PackageManager,
    /// Access package assignment manager of catalog A.
    AssignmentManager,
    /// Catalog creator (service-wide).
    Creator,
    Admin,
}

use Who::*;

const EVERYONE: &[Who] = &[
    Plain,
    Requestor,
    OtherRequestor,
    Approver,
    Reader,
    OtherOwner,
    Owner,
    PackageManager,
    AssignmentManager,
    Creator,
    Admin,
];
const ADMIN_ONLY: &[Who] = &[Admin];
/// May read some catalog (lists, narrowed to theirs).
const READS_SOMEWHERE: &[Who] = &[Reader, OtherOwner, Owner, PackageManager, AssignmentManager, Admin];
/// May read catalog A.
const READS_A: &[Who] = &[Reader, Owner, PackageManager, AssignmentManager, Admin];
const EDITS_A: &[Who] = &[Owner, Admin];
const PACKAGES_A: &[Who] = &[Owner, PackageManager, Admin];
const ASSIGNS_SOMEWHERE: &[Who] = &[OtherOwner, Owner, PackageManager, AssignmentManager, Admin];
const ASSIGNS_A: &[Who] = &[Owner, PackageManager, AssignmentManager, Admin];
const DELEGATES_SOMEWHERE: &[Who] = &[OtherOwner, Owner, Admin];

/// Who may call each operation of the route table, by method and path template.
fn table() -> BTreeMap<(&'static str, &'static str), Vec<Who>> {
    let mut t: BTreeMap<(&'static str, &'static str), Vec<Who>> = BTreeMap::new();
    let mut allow = |method: &'static str, path: &'static str, who: &[Who]| {
        assert!(t.insert((method, path), who.to_vec()).is_none(), "{method} {path} twice in the table");
    };
    // The directory: everyone signed in reads it; only administrators change it.
    for p in [
        "/v1.0/users",
        "/v1.0/users/$count",
        "/v1.0/users/{id}",
        "/v1.0/users/{id}/directReports",
        "/v1.0/users/{id}/manager",
        "/v1.0/users/{id}/sponsors",
        "/v1.0/groups",
        "/v1.0/groups/$count",
        "/v1.0/groups/{id}",
        "/v1.0/groups/{id}/members",
        "/v1.0/groups/{id}/owners",
    ] {
        allow("get", p, EVERYONE);
    }
    for (m, p) in [
        ("post", "/v1.0/users"),
        ("patch", "/v1.0/users/{id}"),
        ("delete", "/v1.0/users/{id}"),
        ("put", "/v1.0/users/{id}/manager/$ref"),
        ("delete", "/v1.0/users/{id}/manager/$ref"),
        ("post", "/v1.0/users/{id}/sponsors/$ref"),
        ("delete", "/v1.0/users/{id}/sponsors/{sponsor}/$ref"),
        ("post", "/v1.0/groups"),
        ("patch", "/v1.0/groups/{id}"),
        ("delete", "/v1.0/groups/{id}"),
        ("post", "/v1.0/groups/{id}/members/$ref"),
        ("delete", "/v1.0/groups/{id}/members/{user}/$ref"),
        ("post", "/v1.0/groups/{id}/owners/$ref"),
        ("delete", "/v1.0/groups/{id}/owners/{user}/$ref"),
    ] {
        allow(m, p, ADMIN_ONLY);
    }
    // Catalogs.
    allow("get", "/v1.0/identityGovernance/entitlementManagement/catalogs", READS_SOMEWHERE);
    allow("get", "/v1.0/identityGovernance/entitlementManagement/catalogs/$count", READS_SOMEWHERE);
    allow("post", "/v1.0/identityGovernance/entitlementManagement/catalogs", &[Creator, Admin]);
    allow("get", "/v1.0/identityGovernance/entitlementManagement/catalogs/{id}", READS_A);
    allow("patch", "/v1.0/identityGovernance/entitlementManagement/catalogs/{id}", EDITS_A);
    allow("delete", "/v1.0/identityGovernance/entitlementManagement/catalogs/{id}", EDITS_A);
    for p in [
        "/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/accessPackages",
        "/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/resources",
        "/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/resources/{rid}",
        "/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/resourceRoles",
        "/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/resourceScopes",
        "/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/customWorkflowExtensions",
        "/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/customWorkflowExtensions/$count",
        "/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/customWorkflowExtensions/{extension}",
    ] {
        allow("get", p, READS_A);
    }
    allow("post", "/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/customWorkflowExtensions", EDITS_A);
    allow(
        "patch",
        "/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/customWorkflowExtensions/{extension}",
        EDITS_A,
    );
    allow(
        "delete",
        "/v1.0/identityGovernance/entitlementManagement/catalogs/{id}/customWorkflowExtensions/{extension}",
        EDITS_A,
    );
    allow("get", "/v1.0/identityGovernance/entitlementManagement/resources", READS_SOMEWHERE);
    allow("get", "/v1.0/identityGovernance/entitlementManagement/resourceRequests", READS_SOMEWHERE);
    allow("post", "/v1.0/identityGovernance/entitlementManagement/resourceRequests", EDITS_A);
    // Access packages.
    allow("get", "/v1.0/identityGovernance/entitlementManagement/accessPackages", READS_SOMEWHERE);
    allow("get", "/v1.0/identityGovernance/entitlementManagement/accessPackages/$count", READS_SOMEWHERE);
    allow("post", "/v1.0/identityGovernance/entitlementManagement/accessPackages", PACKAGES_A);
    allow("get", "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}", READS_A);
    allow("patch", "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}", PACKAGES_A);
    allow("delete", "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}", PACKAGES_A);
    for p in [
        "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/resourceRoleScopes",
        "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/resourceRoleScopes/{rrs}",
        "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/incompatibleAccessPackages",
        "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/incompatibleGroups",
        "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/accessPackagesIncompatibleWith",
        "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/assignmentPolicies",
        "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/assignmentPolicies/{policy}",
    ] {
        allow("get", p, READS_A);
    }
    for (m, p) in [
        ("post", "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/resourceRoleScopes"),
        ("delete", "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/resourceRoleScopes/{rrs}"),
        ("post", "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/incompatibleAccessPackages/$ref"),
        (
            "delete",
            "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/incompatibleAccessPackages/{other}/$ref",
        ),
        ("post", "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/incompatibleGroups/$ref"),
        (
            "delete",
            "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/incompatibleGroups/{group}/$ref",
        ),
        ("post", "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/assignmentPolicies"),
        ("put", "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/assignmentPolicies/{policy}"),
        ("patch", "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/assignmentPolicies/{policy}"),
        ("delete", "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/assignmentPolicies/{policy}"),
        ("post", "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies"),
        ("put", "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies/{id}"),
        ("patch", "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies/{id}"),
        ("delete", "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies/{id}"),
    ] {
        allow(m, p, PACKAGES_A);
    }
    // What a user asks about a package for themselves.
    allow(
        "post",
        "/v1.0/identityGovernance/entitlementManagement/accessPackages/{id}/getApplicablePolicyRequirements",
        &[
            Plain,
            Requestor,
            OtherRequestor,
            Approver,
            Reader,
            OtherOwner,
            Owner,
            PackageManager,
            AssignmentManager,
            Creator,
        ],
    );
    // (An administrator is asked to name the user: a 400, past authorization.)
    allow("get", "/v1.0/steward/accessPackages/{id}/explanation", EVERYONE);
    // Policies.
    allow("get", "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies", READS_SOMEWHERE);
    allow("get", "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies/$count", READS_SOMEWHERE);
    allow("get", "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies/{id}", READS_A);
    // Requests: the manager of the catalog's assignments sees them all; requestors, targets
    // and approvers see theirs.
    allow("get", "/v1.0/identityGovernance/entitlementManagement/assignmentRequests", ASSIGNS_SOMEWHERE);
    allow("get", "/v1.0/identityGovernance/entitlementManagement/assignmentRequests/$count", ASSIGNS_SOMEWHERE);
    allow("post", "/v1.0/identityGovernance/entitlementManagement/assignmentRequests", EVERYONE);
    allow(
        "get",
        "/v1.0/identityGovernance/entitlementManagement/assignmentRequests/{id}",
        &[Requestor, Approver, Owner, PackageManager, AssignmentManager, Admin],
    );
    allow("delete", "/v1.0/identityGovernance/entitlementManagement/assignmentRequests/{id}", ASSIGNS_A);
    allow(
        "post",
        "/v1.0/identityGovernance/entitlementManagement/assignmentRequests/{id}/cancel",
        &[Requestor, Owner, PackageManager, AssignmentManager, Admin],
    );
    allow("post", "/v1.0/identityGovernance/entitlementManagement/assignmentRequests/{id}/reprocess", ASSIGNS_A);
    allow("post", "/v1.0/identityGovernance/entitlementManagement/assignmentRequests/{id}/resume", ASSIGNS_A);
    // Assignments.
    allow("get", "/v1.0/identityGovernance/entitlementManagement/assignments", ASSIGNS_SOMEWHERE);
    allow("get", "/v1.0/identityGovernance/entitlementManagement/assignments/$count", ASSIGNS_SOMEWHERE);
    allow("get", "/v1.0/identityGovernance/entitlementManagement/assignments/{id}", ASSIGNS_A);
    allow("post", "/v1.0/identityGovernance/entitlementManagement/assignments/{id}/reprocess", ASSIGNS_A);
    allow("get", "/v1.0/steward/assignments/{id}/deliveries", ASSIGNS_A);
    // Approvals: the approver decides; the request's requestor and managers may look.
    allow("get", "/v1.0/identityGovernance/entitlementManagement/accessPackageAssignmentApprovals", EVERYONE);
    for p in [
        "/v1.0/identityGovernance/entitlementManagement/accessPackageAssignmentApprovals/{id}",
        "/v1.0/identityGovernance/entitlementManagement/accessPackageAssignmentApprovals/{id}/stages",
        "/v1.0/identityGovernance/entitlementManagement/accessPackageAssignmentApprovals/{id}/stages/{stage}",
    ] {
        allow("get", p, &[Requestor, Approver, Owner, PackageManager, AssignmentManager, Admin]);
    }
    allow(
        "patch",
        "/v1.0/identityGovernance/entitlementManagement/accessPackageAssignmentApprovals/{id}/stages/{stage}",
        &[Approver],
    );
    // Delegated administration.
    allow("get", "/v1.0/roleManagement/entitlementManagement/roleDefinitions", EVERYONE);
    allow("get", "/v1.0/roleManagement/entitlementManagement/roleDefinitions/{id}", EVERYONE);
    allow("get", "/v1.0/roleManagement/entitlementManagement/roleAssignments", DELEGATES_SOMEWHERE);
    allow("post", "/v1.0/roleManagement/entitlementManagement/roleAssignments", EDITS_A);
    allow("get", "/v1.0/roleManagement/entitlementManagement/roleAssignments/{id}", &[Reader, Owner, Admin]);
    allow("delete", "/v1.0/roleManagement/entitlementManagement/roleAssignments/{id}", EDITS_A);
    // External users: administrators manage connected organizations and the settings.
    for (m, p) in [
        ("get", "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations"),
        ("post", "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations"),
        ("get", "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/$count"),
        ("get", "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}"),
        ("patch", "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}"),
        ("delete", "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}"),
        ("get", "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}/internalSponsors"),
        ("post", "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}/internalSponsors/$ref"),
        (
            "delete",
            "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}/internalSponsors/{user}/$ref",
        ),
        ("get", "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}/externalSponsors"),
        ("post", "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}/externalSponsors/$ref"),
        (
            "delete",
            "/v1.0/identityGovernance/entitlementManagement/connectedOrganizations/{id}/externalSponsors/{user}/$ref",
        ),
        ("get", "/v1.0/identityGovernance/entitlementManagement/settings"),
        ("patch", "/v1.0/identityGovernance/entitlementManagement/settings"),
    ] {
        allow(m, p, ADMIN_ONLY);
    }
    // Access reviews: managed by whoever manages catalog A's packages, read by its readers and
    // by the reviewer (the Approver reviews the one decision of the world's review).
    let reviewer_reads: Vec<Who> = READS_A.iter().copied().chain([Approver]).collect();
    allow("get", "/v1.0/identityGovernance/accessReviews/definitions", READS_SOMEWHERE);
    allow("post", "/v1.0/identityGovernance/accessReviews/definitions", PACKAGES_A);
    for p in [
        "/v1.0/identityGovernance/accessReviews/definitions/{id}",
        "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances",
        "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}",
        "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/decisions/{decision}",
        "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/stages",
    ] {
        allow("get", p, &reviewer_reads);
    }
    allow("get", "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/decisions", READS_A);
    allow(
        "get",
        "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/contactedReviewers",
        READS_A,
    );
    for (m, p) in [
        ("put", "/v1.0/identityGovernance/accessReviews/definitions/{id}"),
        ("patch", "/v1.0/identityGovernance/accessReviews/definitions/{id}"),
        ("delete", "/v1.0/identityGovernance/accessReviews/definitions/{id}"),
        ("post", "/v1.0/identityGovernance/accessReviews/definitions/{id}/stop"),
        ("post", "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/applyDecisions"),
        ("post", "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/resetDecisions"),
        ("post", "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/sendReminder"),
        ("post", "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/stop"),
    ] {
        allow(m, p, PACKAGES_A);
    }
    for (m, p) in [
        ("patch", "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/decisions/{decision}"),
        ("post", "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/batchRecordDecisions"),
        ("post", "/v1.0/identityGovernance/accessReviews/definitions/{id}/instances/{instance}/acceptRecommendations"),
    ] {
        allow(m, p, &[Approver]);
    }
    // Access review history reports reach across every review: administrators only.
    for (m, p) in [
        ("get", "/v1.0/identityGovernance/accessReviews/historyDefinitions"),
        ("post", "/v1.0/identityGovernance/accessReviews/historyDefinitions"),
        ("get", "/v1.0/identityGovernance/accessReviews/historyDefinitions/{id}"),
        ("delete", "/v1.0/identityGovernance/accessReviews/historyDefinitions/{id}"),
        ("get", "/v1.0/identityGovernance/accessReviews/historyDefinitions/{id}/instances"),
        ("get", "/v1.0/identityGovernance/accessReviews/historyDefinitions/{id}/instances/{iid}"),
        ("post", "/v1.0/identityGovernance/accessReviews/historyDefinitions/{id}/instances/{iid}/generateDownloadUri"),
        ("get", "/v1.0/identityGovernance/accessReviews/historyDefinitions/{id}/instances/{iid}/report.csv"),
    ] {
        allow(m, p, ADMIN_ONLY);
    }
    // The audit trail reaches across every catalog and person: administrators only.
    for (m, p) in [("get", "/v1.0/auditLogs/directoryAudits"), ("get", "/v1.0/auditLogs/directoryAudits/{id}")] {
        allow(m, p, ADMIN_ONLY);
    }
    // Steward's own administration.
    for (m, p) in [
        ("get", "/v1.0/steward/apiTokens"),
        ("post", "/v1.0/steward/apiTokens"),
        ("delete", "/v1.0/steward/apiTokens/{id}"),
        ("get", "/v1.0/steward/connections"),
        ("post", "/v1.0/steward/connections"),
        ("get", "/v1.0/steward/connections/{id}"),
        ("patch", "/v1.0/steward/connections/{id}"),
        ("delete", "/v1.0/steward/connections/{id}"),
        ("post", "/v1.0/steward/connections/{id}/test"),
        ("get", "/v1.0/steward/connections/{id}/discover"),
        ("post", "/v1.0/steward/connections/{id}/reconcile"),
        ("get", "/v1.0/steward/connections/{id}/drift"),
        ("get", "/v1.0/steward/catalogs/{id}/chatWebhooks"),
        ("post", "/v1.0/steward/catalogs/{id}/chatWebhooks"),
        ("delete", "/v1.0/steward/chatWebhooks/{id}"),
        ("post", "/v1.0/steward/chatWebhooks/{id}/test"),
        ("get", "/v1.0/steward/separationOfDuties/violations"),
    ] {
        allow(m, p, ADMIN_ONLY);
    }
    t
}

/// Everything the paths name, all in catalog A unless said otherwise.
struct World {
    app: TestApp,
    tokens: BTreeMap<Who, String>,
    users: BTreeMap<Who, String>,
    ids: BTreeMap<&'static str, String>,
}

impl World {
    async fn new() -> Self {
        let app = TestApp::with_connections(Some(KEY)).await;
        let mut ids = BTreeMap::new();
        let cat = app.catalog("A").await;
        let cat_b = app.catalog("B").await;
        let group = app.group("Group in A").await;
        let r = app.add_group(&cat, &group).await;
        r.expect(StatusCode::CREATED);
        let resource = app.get(&format!("{EM}/catalogs/{cat}/resources")).await.json()["value"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let pkg = app.package(&cat, "Package A").await;
        let other = app.package(&cat, "Other package A").await;
        app.package(&cat_b, "Package B").await;
        let rrs = app
            .post(
                &format!("{EM}/accessPackages/{pkg}/resourceRoleScopes"),
                &json!({"role": {"originId": format!("Member_{group}"), "originSystem": "AadGroup"}}),
            )
            .await;
        rrs.expect(StatusCode::CREATED);
        let mut tokens = BTreeMap::new();
        let mut users = BTreeMap::new();
        for who in EVERYONE.iter().filter(|w| **w != Admin) {
            let (id, token) = app.person(&format!("{who:?}@contoso.com").to_lowercase()).await;
            tokens.insert(*who, token);
            users.insert(*who, id);
        }
        tokens.insert(Admin, ADMIN.to_owned());
        let approver = users[&Approver].clone();
        let policy = app
            .post(
                &format!("{EM}/assignmentPolicies"),
                &json!({"accessPackage": {"id": pkg}, "displayName": "Members", "allowedTargetScope": "allMemberUsers",
                    "requestorSettings": {"enableTargetsToSelfAddAccess": true, "enableTargetsToSelfRemoveAccess": true},
                    "requestApprovalSettings": {"isApprovalRequiredForAdd": true, "stages": [{"durationBeforeAutomaticDenial": "P14D",
                        "primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": approver}]}]}}),
            )
            .await;
        policy.expect(StatusCode::CREATED);
        let policy = policy.id();
        let ask = |token: String| {
            let app = &app;
            let pkg = pkg.clone();
            async move {
                let r = app
                    .json_as(
                        &token,
                        Method::POST,
                        &format!("{EM}/assignmentRequests"),
                        &json!({"requestType": "userAdd", "assignment": {"accessPackageId": pkg}}),
                    )
                    .await;
                r.expect(StatusCode::CREATED);
                r.id()
            }
        };
        let request = ask(tokens[&Requestor].clone()).await;
        ask(tokens[&OtherRequestor].clone()).await;
        let stage =
            app.get_as(&tokens[&Approver], &format!("{EM}/accessPackageAssignmentApprovals/{request}/stages")).await;
        let stage = stage.json()["value"][0]["id"].as_str().unwrap().to_owned();
        // A delivered assignment, given directly.
        let target = app.user("Target", "target@contoso.com").await;
        let direct = app
            .post(
                &format!("{EM}/assignmentRequests"),
                &json!({"requestType": "adminAdd", "assignment": {"accessPackageId": pkg, "assignmentPolicyId": policy, "targetId": target}}),
            )
            .await;
        direct.expect(StatusCode::CREATED);
        let direct = app.get(&format!("{EM}/assignmentRequests/{}?$expand=assignment", direct.id())).await.json();
        let assignment = direct["assignment"]["id"].as_str().unwrap().to_owned();
        let org = app
            .post(
                &format!("{EM}/connectedOrganizations"),
                &json!({"displayName": "Fabrikam", "state": "configured", "identitySources": [
                    {"@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "fabrikam.com", "displayName": "Fabrikam"}]}),
            )
            .await;
        org.expect(StatusCode::CREATED);
        let org = org.id();
        let extension = app
            .post(
                &format!("{EM}/catalogs/{cat}/customWorkflowExtensions"),
                &json!({"@odata.type": "#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension",
                    "displayName": "Hook", "endpointConfiguration": {"@odata.type": "#microsoft.graph.httpRequestEndpoint",
                    "targetUrl": "https://hook.example.test/x"}}),
            )
            .await;
        extension.expect(StatusCode::CREATED);
        let connection = app
            .post(
                "/v1.0/steward/connections",
                &json!({"displayName": "Roles", "kind": "postgreSqlRoles", "settings": crate::connections::target()}),
            )
            .await;
        connection.expect(StatusCode::CREATED);
        let chat = app
            .post(
                &format!("/v1.0/steward/catalogs/{cat}/chatWebhooks"),
                &json!({"displayName": "Approvers", "flavor": "teams", "url": "https://hooks.example.test/x"}),
            )
            .await;
        chat.expect(StatusCode::CREATED);
        let token = app.post("/v1.0/steward/apiTokens", &json!({"displayName": "spare"})).await;
        token.expect(StatusCode::CREATED);
        // The delegated roles.
        let scope_a = format!("/AccessPackageCatalog/{cat}");
        let scope_b = format!("/AccessPackageCatalog/{cat_b}");
        let mut role_assignment = String::new();
        for (who, role, scope) in [
            (Reader, "44272f93-9762-48e8-af59-1b5351b1d6b3", scope_a.as_str()),
            (OtherOwner, "ae79f266-94d4-4dab-b730-feca7e132178", scope_b.as_str()),
            (Owner, "ae79f266-94d4-4dab-b730-feca7e132178", scope_a.as_str()),
            (PackageManager, "7f480852-ebdc-47d4-87de-0d8498384a83", scope_a.as_str()),
            (AssignmentManager, "e2182095-804a-4656-ae11-64734e9b7ae5", scope_a.as_str()),
            (Creator, "ba92d953-d8e0-4e39-a797-0cbedb0a89e8", "/"),
        ] {
            let r = app
                .post(
                    "/v1.0/roleManagement/entitlementManagement/roleAssignments",
                    &json!({"principalId": users[&who], "roleDefinitionId": role, "appScopeId": scope}),
                )
                .await;
            r.expect(StatusCode::CREATED);
            if who == Reader {
                role_assignment = r.id();
            }
        }
        // Relations the deletes of the table remove.
        let link = |id: &str| json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")});
        let plain = users[&Plain].clone();
        for (method, path, body) in [
            (Method::PUT, format!("/v1.0/users/{plain}/manager/$ref"), link(&users[&Approver])),
            (Method::POST, format!("/v1.0/users/{plain}/sponsors/$ref"), link(&users[&Approver])),
            (Method::POST, format!("/v1.0/groups/{group}/members/$ref"), link(&plain)),
            (Method::POST, format!("/v1.0/groups/{group}/owners/$ref"), link(&plain)),
            (Method::POST, format!("{EM}/accessPackages/{pkg}/incompatibleAccessPackages/$ref"), link(&other)),
            (Method::POST, format!("{EM}/accessPackages/{pkg}/incompatibleGroups/$ref"), link(&group)),
        ] {
            let r = app.json_as(ADMIN, method, &path, &body).await;
            assert!(r.status.is_success(), "{path}: {}", r.text);
        }
        // An access review of package A's assignments (the Target's), reviewed by the Approver,
        // with its instance open.
        let review = app
            .post("/v1.0/identityGovernance/accessReviews/definitions", &Self::review_body(&pkg, &users[&Approver]))
            .await;
        review.expect(StatusCode::CREATED);
        let review = review.id();
        steward_app::reviews::sweep(&app.services, app.services.clock.now()).await.unwrap();
        let instances =
            app.get(&format!("/v1.0/identityGovernance/accessReviews/definitions/{review}/instances")).await;
        let instance = instances.json()["value"][0]["id"].as_str().unwrap().to_owned();
        let decisions = app
            .get(&format!("/v1.0/identityGovernance/accessReviews/definitions/{review}/instances/{instance}/decisions"))
            .await;
        let decision = decisions.json()["value"][0]["id"].as_str().unwrap().to_owned();
        // A history report over that review, with its one instance.
        let history =
            app.post("/v1.0/identityGovernance/accessReviews/historyDefinitions", &Self::history_body()).await;
        history.expect(StatusCode::CREATED);
        let history = history.id();
        let runs =
            app.get(&format!("/v1.0/identityGovernance/accessReviews/historyDefinitions/{history}/instances")).await;
        let history_instance = runs.json()["value"][0]["id"].as_str().unwrap().to_owned();
        let spare_group = app.group("Spare").await;
        for kind in ["internalSponsors", "externalSponsors"] {
            let r = app
                .post(
                    &format!("{EM}/connectedOrganizations/{org}/{kind}/$ref"),
                    &json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{}", users[&Plain])}),
                )
                .await;
            assert!(r.status.is_success(), "{}", r.text);
        }
        for (k, v) in [
            ("connectedOrganization", org),
            ("catalog", cat),
            ("catalogB", cat_b),
            ("package", pkg),
            ("other", other),
            ("group", group),
            ("resource", resource),
            ("rrs", rrs.id()),
            ("policy", policy),
            ("request", request),
            ("stage", stage),
            ("assignment", assignment),
            ("extension", extension.id()),
            ("connection", connection.id()),
            ("token", token.id()),
            ("roleAssignment", role_assignment),
            ("user", users[&Plain].clone()),
            ("spareUser", users[&Creator].clone()),
            ("spareGroup", spare_group),
            ("sponsor", users[&Approver].clone()),
            ("target", target),
            ("review", review),
            ("instance", instance),
            ("decision", decision),
            ("history", history),
            ("historyInstance", history_instance),
            ("chatWebhook", chat.id()),
        ] {
            ids.insert(k, v);
        }
        Self { app, tokens, users, ids }
    }

    /// An access review of `pkg`'s assignments by `reviewer`, opening at once.
    fn review_body(pkg: &str, reviewer: &str) -> Value {
        json!({"displayName": "Review of A", "reviewers": [{"query": format!("/users/{reviewer}")}],
            "settings": {"instanceDurationInDays": 7},
            "scope": {"query": format!(
                "/identityGovernance/entitlementManagement/accessPackageAssignments?$filter=(accessPackageId eq '{pkg}')")}})
    }

    /// A one-time history report of every review over a few years.
    fn history_body() -> Value {
        json!({"displayName": "Audit of A", "reviewHistoryPeriodStartDateTime": "2020-01-01T00:00:00Z",
            "reviewHistoryPeriodEndDateTime": "2024-01-01T00:00:00Z",
            "scopes": [{"query": "/identityGovernance/accessReviews/definitions"}]})
    }

    /// The concrete path of an operation: each placeholder names an object of the world.
    fn path(&self, template: &str) -> String {
        let id = |k: &str| self.ids[k].clone();
        let first = if template.starts_with("/v1.0/users/") {
            id("user")
        } else if template.starts_with("/v1.0/groups/") {
            id("group")
        } else if template.contains("/catalogs/") {
            id("catalog")
        } else if template.contains("/accessPackages/") {
            id("package")
        } else if template.contains("/assignmentPolicies/") {
            id("policy")
        } else if template.contains("/assignmentRequests/") || template.contains("/accessPackageAssignmentApprovals/") {
            id("request")
        } else if template.contains("/assignments/") {
            id("assignment")
        } else if template.contains("/connectedOrganizations/") {
            id("connectedOrganization")
        } else if template.contains("/chatWebhooks/") {
            id("chatWebhook")
        } else if template.contains("/connections/") {
            id("connection")
        } else if template.contains("/apiTokens/") {
            id("token")
        } else if template.contains("/roleAssignments/") {
            id("roleAssignment")
        } else if template.contains("/historyDefinitions/") {
            id("history")
        } else if template.contains("/accessReviews/") {
            id("review")
        } else if template.contains("/roleDefinitions/") {
            "ae79f266-94d4-4dab-b730-feca7e132178".to_owned()
        } else {
            String::new()
        };
        template
            .replace("{id}", &first)
            .replace("{rid}", &id("resource"))
            .replace("{rrs}", &id("rrs"))
            .replace("{other}", &id("other"))
            .replace("{group}", &id("group"))
            .replace("{user}", &id("user"))
            .replace("{sponsor}", &id("sponsor"))
            .replace("{policy}", &id("policy"))
            .replace("{stage}", &id("stage"))
            .replace("{extension}", &id("extension"))
            .replace("{instance}", &id("instance"))
            .replace("{decision}", &id("decision"))
            .replace("{iid}", &id("historyInstance"))
    }

    /// A body good enough to get past authorization (what it holds beyond that does not matter:
    /// a 400 still shows the caller was allowed).
    fn body(&self, who: Who, method: &str, template: &str) -> Value {
        let id = |k: &str| self.ids[k].clone();
        let link =
            |k: &str| json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", id(k))});
        match (method, template) {
            (_, t) if t.ends_with("/incompatibleAccessPackages/$ref") => {
                json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/accessPackages/{}", id("package"))})
            }
            (_, t) if t.ends_with("/incompatibleGroups/$ref") => link("spareGroup"),
            (_, t) if t.ends_with("/$ref") => link("spareUser"),
            ("post", "/v1.0/identityGovernance/entitlementManagement/accessPackages") => {
                json!({"displayName": "New", "catalog": {"id": id("catalog")}})
            }
            ("post", "/v1.0/identityGovernance/entitlementManagement/resourceRequests") => {
                json!({"requestType": "adminRemove", "catalog": {"id": id("catalog")}, "resource": {"id": id("resource")}})
            }
            ("post", "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies") => {
                json!({"accessPackage": {"id": id("package")}, "displayName": "More", "allowedTargetScope": "allMemberUsers"})
            }
            ("post", "/v1.0/roleManagement/entitlementManagement/roleAssignments") => json!({
                "principalId": id("user"), "roleDefinitionId": "44272f93-9762-48e8-af59-1b5351b1d6b3",
                "appScopeId": format!("/AccessPackageCatalog/{}", id("catalog"))}),
            ("post", "/v1.0/identityGovernance/entitlementManagement/assignmentRequests")
                if ASSIGNS_A.contains(&who) =>
            {
                json!({"requestType": "adminAdd", "assignment": {"accessPackageId": id("package"),
                    "assignmentPolicyId": id("policy"), "targetId": id("sponsor")}})
            }
            ("post", "/v1.0/identityGovernance/entitlementManagement/assignmentRequests") => {
                json!({"requestType": "userAdd", "assignment": {"accessPackageId": id("package")}})
            }
            ("patch", t) if t.ends_with("/stages/{stage}") => json!({"reviewResult": "Approve", "justification": "ok"}),
            ("post" | "put", "/v1.0/identityGovernance/accessReviews/definitions")
            | ("put", "/v1.0/identityGovernance/accessReviews/definitions/{id}") => {
                Self::review_body(&id("package"), &id("sponsor"))
            }
            ("post", "/v1.0/identityGovernance/accessReviews/historyDefinitions") => Self::history_body(),
            ("patch", t) if t.ends_with("/decisions/{decision}") => {
                json!({"decision": "Approve", "justification": "ok"})
            }
            (_, t) if t.ends_with("/batchRecordDecisions") => {
                json!({"decision": "Approve", "justification": "ok", "principalId": id("target")})
            }
            _ => json!({}),
        }
    }

    async fn call(&self, who: Who, method: &str, template: &str) -> (StatusCode, String) {
        let path = self.path(template).replace(' ', "%20");
        let m: Method = method.to_uppercase().parse().unwrap();
        let token = self.tokens.get(&who).map(String::as_str);
        let has_body = matches!(method, "post" | "put" | "patch");
        let (headers, body): (&[(&str, &str)], Body) = if has_body {
            (&[("content-type", "application/json")], Body::from(self.body(who, method, template).to_string()))
        } else {
            (&[], Body::empty())
        };
        let r = self.app.send(m, &path, token, headers, body).await;
        (r.status, r.text)
    }
}

fn judge(who: Who, allowed: bool, status: StatusCode) -> bool {
    let denied = matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND);
    if status.is_server_error() {
        return false;
    }
    match (who, allowed) {
        (Anonymous, _) => status == StatusCode::UNAUTHORIZED,
        (_, true) => !denied,
        (_, false) => matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
    }
}

#[tokio::test]
async fn every_operation_allows_exactly_the_callers_the_table_names() {
    let (_, ops) = steward_web::api().into_parts();
    let table = table();
    let missing: Vec<String> = ops
        .iter()
        .filter(|o| !table.contains_key(&(o.method, o.path)))
        .map(|o| format!("{} {}", o.method.to_uppercase(), o.path))
        .collect();
    assert!(missing.is_empty(), "operations the authorization table does not name:\n{}", missing.join("\n"));
    let stale: Vec<String> = table
        .keys()
        .filter(|(m, p)| !ops.iter().any(|o| o.method == *m && o.path == *p))
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(stale.is_empty(), "the table names operations that do not exist:\n{}", stale.join("\n"));

    let mut everyone = vec![Anonymous];
    everyone.extend_from_slice(EVERYONE);
    let mut wrong = Vec::new();
    let shared = World::new().await;
    for op in &ops {
        let allowed = &table[&(op.method, op.path)];
        let reads = op.method == "get";
        // Refusals change nothing, so they share one world; so do reads.
        for who in &everyone {
            let ok = allowed.contains(who);
            if ok && !reads {
                continue;
            }
            let (status, text) = shared.call(*who, op.method, op.path).await;
            if !judge(*who, ok, status) {
                wrong.push(format!(
                    "{who:?} {} {}: {status} (expected {}) {}",
                    op.method,
                    op.path,
                    if ok { "allowed" } else { "refused" },
                    text.chars().take(200).collect::<String>()
                ));
            }
        }
        if reads {
            continue;
        }
        for who in allowed {
            let fresh = World::new().await;
            let (status, text) = fresh.call(*who, op.method, op.path).await;
            if !judge(*who, true, status) {
                wrong.push(format!(
                    "{who:?} {} {}: {status} (expected allowed) {}",
                    op.method,
                    op.path,
                    text.chars().take(200).collect::<String>()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{} calls went the wrong way:\n{}", wrong.len(), wrong.join("\n"));
}

#[tokio::test]
async fn lists_show_a_delegated_administrator_only_their_catalogs() {
    let w = World::new().await;
    let names = |v: Value| -> Vec<String> {
        let mut n: Vec<String> =
            v["value"].as_array().unwrap().iter().map(|c| c["displayName"].as_str().unwrap().to_owned()).collect();
        n.sort();
        n
    };
    let cats = w.app.get_as(&w.tokens[&OtherOwner], &format!("{EM}/catalogs")).await;
    assert_eq!(names(cats.json()), ["B"]);
    let pkgs = w.app.get_as(&w.tokens[&Reader], &format!("{EM}/accessPackages")).await;
    assert_eq!(names(pkgs.json()), ["Other package A", "Package A"]);
    let pkgs = w.app.get_as(&w.tokens[&OtherOwner], &format!("{EM}/accessPackages/$count")).await;
    assert_eq!(pkgs.text, "1");
    let asg = w.app.get_as(&w.tokens[&OtherOwner], &format!("{EM}/assignments")).await;
    assert_eq!(asg.json()["value"].as_array().unwrap().len(), 0);
    let asg = w.app.get_as(&w.tokens[&AssignmentManager], &format!("{EM}/assignments")).await;
    assert_eq!(asg.json()["value"].as_array().unwrap().len(), 1);
    let reqs = w.app.get_as(&w.tokens[&OtherOwner], &format!("{EM}/assignmentRequests")).await;
    assert_eq!(reqs.json()["value"].as_array().unwrap().len(), 0);

    // A catalog creator's new catalog is theirs: they own it and see it, and nothing else.
    let made = w
        .app
        .json_as(&w.tokens[&Creator], Method::POST, &format!("{EM}/catalogs"), &json!({"displayName": "Mine"}))
        .await;
    made.expect(StatusCode::CREATED);
    let cats = w.app.get_as(&w.tokens[&Creator], &format!("{EM}/catalogs")).await;
    assert_eq!(names(cats.json()), ["Mine"]);
    let owners = w
        .app
        .get(&format!(
            "/v1.0/roleManagement/entitlementManagement/roleAssignments?$filter=appScopeId eq '/AccessPackageCatalog/{}'",
            made.id()
        ).replace(' ', "%20"))
        .await
        .json();
    assert_eq!(owners["value"][0]["roleDefinitionId"], "ae79f266-94d4-4dab-b730-feca7e132178");

    // A catalog owner delegates in their catalog, not in another, and never service-wide.
    let give = |scope: String, role: &str| json!({"principalId": w.ids["user"], "roleDefinitionId": role, "appScopeId": scope});
    let ra = "/v1.0/roleManagement/entitlementManagement/roleAssignments";
    let owner = &w.tokens[&Owner];
    let cat = &w.ids["catalog"];
    w.app
        .json_as(
            owner,
            Method::POST,
            ra,
            &give(format!("/AccessPackageCatalog/{cat}"), "7f480852-ebdc-47d4-87de-0d8498384a83"),
        )
        .await
        .expect(StatusCode::CREATED);
    w.app
        .json_as(
            &w.tokens[&OtherOwner],
            Method::POST,
            ra,
            &give(format!("/AccessPackageCatalog/{cat}"), "7f480852-ebdc-47d4-87de-0d8498384a83"),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    w.app
        .json_as(owner, Method::POST, ra, &give("/".into(), "ba92d953-d8e0-4e39-a797-0cbedb0a89e8"))
        .await
        .expect(StatusCode::FORBIDDEN);
    // The same role twice is a conflict; a role where it does not apply is a 400.
    w.app
        .json_as(
            owner,
            Method::POST,
            ra,
            &give(format!("/AccessPackageCatalog/{cat}"), "7f480852-ebdc-47d4-87de-0d8498384a83"),
        )
        .await
        .expect(StatusCode::CONFLICT);
    w.app.post(ra, &give("/".into(), "ae79f266-94d4-4dab-b730-feca7e132178")).await.expect(StatusCode::BAD_REQUEST);
    // The other owner lists only the assignments of their own catalog.
    let theirs = w.app.get_as(&w.tokens[&OtherOwner], ra).await.json();
    let scopes: Vec<&str> =
        theirs["value"].as_array().unwrap().iter().map(|a| a["appScopeId"].as_str().unwrap()).collect();
    assert_eq!(scopes, [format!("/AccessPackageCatalog/{}", w.ids["catalogB"])]);
    // Filters: an unknown role matches nothing; an unsupported property is a 400.
    let q = |f: &str| format!("{ra}?$filter={f}").replace(' ', "%20");
    let none = w.app.get(&q("roleDefinitionId eq 'not-a-role'")).await;
    none.expect(StatusCode::OK);
    assert!(none.json()["value"].as_array().unwrap().is_empty());
    let readers = w.app.get(&q("roleDefinitionId eq '44272f93-9762-48e8-af59-1b5351b1d6b3'")).await.json();
    assert_eq!(readers["value"].as_array().unwrap().len(), 1, "{readers}");
    w.app.get(&q("roleDefinitionId eq 'not-a-role' and bogus eq 'x'")).await.expect_error(StatusCode::BAD_REQUEST);
    // Anyone may list their own roles, and only their own without a role that shows more.
    let filter = format!("{ra}?$filter=principalId eq '{}'", w.users[&Reader]).replace(' ', "%20");
    let mine = w.app.get_as(&w.tokens[&Reader], &filter).await;
    mine.expect(StatusCode::OK);
    w.app.get_as(&w.tokens[&Reader], ra).await.expect(StatusCode::FORBIDDEN);
    assert_eq!(mine.json()["value"].as_array().unwrap().len(), 1);
}
