//! The query schema of every collection and the checks that turn parsed OData options into a
//! typed `ListQuery` the store can run: every property named in `$filter`, `$orderby` and
//! `$search` must exist and every literal must fit its property's type, else a 400 names it.

use steward_domain::time::to_micros;
use steward_odata::{CmpOp, Expr, Func, Literal, QueryOptions};

use crate::AppError;

/// The type of a queryable property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Guid,
    Text,
    Bool,
    DateTime,
    /// An enumeration: the canonical wire names.
    Enum(&'static [&'static str]),
}

/// A property that can be filtered and ordered on. `column` is the storage name shared by both
/// databases; it is a compile-time constant, so compiled SQL never contains caller text.
#[derive(Debug, PartialEq, Eq)]
pub struct Field {
    /// The OData path, matched case-insensitively (`catalog/id`).
    pub path: &'static str,
    pub ty: FieldType,
    pub column: &'static str,
    pub nullable: bool,
    /// For text: the column holding the value case-folded by the store with Rust's
    /// `str::to_lowercase` (null exactly when `column` is), which case-insensitive tests
    /// (`contains`, `startswith`, `endswith`, `tolower`, `$search`) compare against. Neither
    /// database lowercases like Rust (SQLite's `lower` is ASCII-only, PostgreSQL's depends on
    /// the collation), so folding happens once, at write time, in Rust.
    pub fold: Option<&'static str>,
}

impl Field {
    /// The column case-insensitive tests compare against: the folded one for text.
    pub fn folded_column(&self) -> &'static str {
        self.fold.unwrap_or(self.column)
    }
}

/// A collection's schema: its table, its properties and what `$search` looks at.
#[derive(Debug)]
pub struct Schema {
    /// Graph's name of the entity type, for messages.
    pub entity: &'static str,
    pub table: &'static str,
    pub fields: &'static [Field],
    /// Properties `$search` matches (contains, case-insensitive).
    pub search: &'static [&'static str],
    /// The default order (always completed by `id`).
    pub default_order: &'static str,
}

impl Schema {
    pub fn field(&self, path: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.path.eq_ignore_ascii_case(path))
    }
    fn require(&self, path: &str) -> Result<&'static Field, AppError> {
        self.field(path).ok_or_else(|| AppError::Query {
            code: "InvalidFilter",
            message: format!(
                "Property '{}' is not known on {}; known properties: {}.",
                steward_domain::text::clip(path, 80),
                self.entity,
                self.fields.iter().map(|f| f.path).collect::<Vec<_>>().join(", ")
            ),
        })
    }
}

const fn f(path: &'static str, ty: FieldType, column: &'static str) -> Field {
    Field { path, ty, column, nullable: false, fold: None }
}
const fn n(path: &'static str, ty: FieldType, column: &'static str) -> Field {
    Field { path, ty, column, nullable: true, fold: None }
}
/// A required text property and its folded column.
const fn t(path: &'static str, column: &'static str, fold: &'static str) -> Field {
    Field { path, ty: FieldType::Text, column, nullable: false, fold: Some(fold) }
}
/// An optional text property and its folded column.
const fn nt(path: &'static str, column: &'static str, fold: &'static str) -> Field {
    Field { path, ty: FieldType::Text, column, nullable: true, fold: Some(fold) }
}

use FieldType::{Bool, DateTime, Enum, Guid, Text};

const CATALOG_STATES: &[&str] = &["unpublished", "published", "unknownFutureValue"];
const CATALOG_TYPES: &[&str] = &["userManaged", "serviceDefault", "serviceManaged", "unknownFutureValue"];
const USER_TYPES: &[&str] = &["Member", "Guest"];
const REQUEST_TYPES: &[&str] = &["adminAdd", "adminRemove"];
const REQUEST_STATES: &[&str] = &["delivered", "deliveryFailed"];
const ALL_REQUEST_TYPES: &[&str] = &[
    "notSpecified",
    "userAdd",
    "userUpdate",
    "userRemove",
    "adminAdd",
    "adminUpdate",
    "adminRemove",
    "systemAdd",
    "systemUpdate",
    "systemRemove",
    "onBehalfAdd",
    "unknownFutureValue",
];
const ALL_REQUEST_STATES: &[&str] = &[
    "submitted",
    "pendingApproval",
    "delivering",
    "delivered",
    "deliveryFailed",
    "denied",
    "scheduled",
    "canceled",
    "partiallyDelivered",
    "unknownFutureValue",
];
const ASSIGNMENT_STATES: &[&str] =
    &["delivering", "partiallyDelivered", "delivered", "expired", "deliveryFailed", "unknownFutureValue"];

pub static USERS: Schema = Schema {
    entity: "user",
    table: "users",
    fields: &[
        f("id", Guid, "id"),
        t("displayName", "display_name", "display_name_fold"),
        t("userPrincipalName", "user_principal_name", "upn_key"),
        nt("mail", "mail", "mail_fold"),
        f("userType", Enum(USER_TYPES), "user_type"),
        f("accountEnabled", Bool, "account_enabled"),
        nt("department", "department", "department_fold"),
        nt("jobTitle", "job_title", "job_title_fold"),
        nt("companyName", "company_name", "company_name_fold"),
        nt("employeeId", "employee_id", "employee_id_fold"),
        nt("city", "city", "city_fold"),
        nt("country", "country", "country_fold"),
        f("createdDateTime", DateTime, "created_at"),
        n("manager/id", Guid, "manager_id"),
    ],
    search: &["displayName", "userPrincipalName", "mail"],
    default_order: "displayName",
};

pub static GROUPS: Schema = Schema {
    entity: "group",
    table: "groups",
    fields: &[
        f("id", Guid, "id"),
        t("displayName", "display_name", "display_name_fold"),
        nt("description", "description", "description_fold"),
        t("mailNickname", "mail_nickname", "mail_nickname_fold"),
        f("mailEnabled", Bool, "mail_enabled"),
        f("securityEnabled", Bool, "security_enabled"),
        f("createdDateTime", DateTime, "created_at"),
    ],
    search: &["displayName", "description", "mailNickname"],
    default_order: "displayName",
};

pub static CATALOGS: Schema = Schema {
    entity: "accessPackageCatalog",
    table: "catalogs",
    fields: &[
        f("id", Guid, "id"),
        t("displayName", "display_name", "display_name_fold"),
        nt("description", "description", "description_fold"),
        f("catalogType", Enum(CATALOG_TYPES), "catalog_type"),
        f("state", Enum(CATALOG_STATES), "state"),
        f("isExternallyVisible", Bool, "is_externally_visible"),
        f("createdDateTime", DateTime, "created_at"),
        f("modifiedDateTime", DateTime, "modified_at"),
    ],
    search: &["displayName", "description"],
    default_order: "displayName",
};

pub static ACCESS_PACKAGES: Schema = Schema {
    entity: "accessPackage",
    table: "access_packages",
    fields: &[
        f("id", Guid, "id"),
        t("displayName", "display_name", "display_name_fold"),
        nt("description", "description", "description_fold"),
        f("isHidden", Bool, "is_hidden"),
        f("createdDateTime", DateTime, "created_at"),
        f("modifiedDateTime", DateTime, "modified_at"),
        f("catalog/id", Guid, "catalog_id"),
    ],
    search: &["displayName", "description"],
    default_order: "displayName",
};

pub static RESOURCES: Schema = Schema {
    entity: "accessPackageResource",
    table: "resources",
    fields: &[
        f("id", Guid, "id"),
        t("displayName", "display_name", "display_name_fold"),
        nt("description", "description", "description_fold"),
        t("originId", "origin_id", "origin_id_fold"),
        t("originSystem", "origin_system", "origin_system_fold"),
        f("createdDateTime", DateTime, "created_at"),
        f("modifiedDateTime", DateTime, "modified_at"),
        f("catalog/id", Guid, "catalog_id"),
    ],
    search: &["displayName", "description"],
    default_order: "displayName",
};

pub static RESOURCE_ROLES: Schema = Schema {
    entity: "accessPackageResourceRole",
    table: "resource_roles",
    fields: &[
        f("id", Guid, "id"),
        t("displayName", "display_name", "display_name_fold"),
        nt("description", "description", "description_fold"),
        t("originId", "origin_id", "origin_id_fold"),
        t("originSystem", "origin_system", "origin_system_fold"),
        f("resource/id", Guid, "resource_id"),
    ],
    search: &["displayName", "description"],
    default_order: "displayName",
};

pub static RESOURCE_SCOPES: Schema = Schema {
    entity: "accessPackageResourceScope",
    table: "resource_scopes",
    fields: &[
        f("id", Guid, "id"),
        t("displayName", "display_name", "display_name_fold"),
        nt("description", "description", "description_fold"),
        t("originId", "origin_id", "origin_id_fold"),
        t("originSystem", "origin_system", "origin_system_fold"),
        f("isRootScope", Bool, "is_root_scope"),
        f("resource/id", Guid, "resource_id"),
    ],
    search: &["displayName", "description"],
    default_order: "displayName",
};

pub static RESOURCE_REQUESTS: Schema = Schema {
    entity: "accessPackageResourceRequest",
    table: "resource_requests",
    fields: &[
        f("id", Guid, "id"),
        f("requestType", Enum(REQUEST_TYPES), "request_type"),
        f("state", Enum(REQUEST_STATES), "state"),
        f("createdDateTime", DateTime, "created_at"),
        f("catalog/id", Guid, "catalog_id"),
        n("resource/id", Guid, "resource_id"),
    ],
    search: &[],
    default_order: "createdDateTime",
};

pub static ROLE_SCOPES: Schema = Schema {
    entity: "accessPackageResourceRoleScope",
    table: "role_scopes",
    fields: &[
        f("id", Guid, "id"),
        f("createdDateTime", DateTime, "created_at"),
        f("role/id", Guid, "role_id"),
        f("scope/id", Guid, "scope_id"),
        f("accessPackage/id", Guid, "access_package_id"),
    ],
    search: &[],
    default_order: "createdDateTime",
};

const TARGET_SCOPES: &[&str] = &[
    "notSpecified",
    "specificDirectoryUsers",
    "specificConnectedOrganizationUsers",
    "specificDirectoryServicePrincipals",
    "allMemberUsers",
    "allDirectoryUsers",
    "allDirectoryServicePrincipals",
    "allConfiguredConnectedOrganizationUsers",
    "allExternalUsers",
    "unknownFutureValue",
];

pub static POLICIES: Schema = Schema {
    entity: "accessPackageAssignmentPolicy",
    table: "assignment_policies",
    fields: &[
        f("id", Guid, "id"),
        t("displayName", "display_name", "display_name_fold"),
        nt("description", "description", "description_fold"),
        f("allowedTargetScope", Enum(TARGET_SCOPES), "allowed_target_scope"),
        f("createdDateTime", DateTime, "created_at"),
        f("modifiedDateTime", DateTime, "modified_at"),
        f("accessPackage/id", Guid, "access_package_id"),
        f("catalog/id", Guid, "catalog_id"),
    ],
    search: &["displayName", "description"],
    default_order: "displayName",
};

pub static ASSIGNMENT_REQUESTS: Schema = Schema {
    entity: "accessPackageAssignmentRequest",
    table: "assignment_requests",
    fields: &[
        f("id", Guid, "id"),
        f("requestType", Enum(ALL_REQUEST_TYPES), "request_type"),
        f("state", Enum(ALL_REQUEST_STATES), "state"),
        f("createdDateTime", DateTime, "created_at"),
        n("completedDateTime", DateTime, "completed_at"),
        f("accessPackage/id", Guid, "access_package_id"),
        f("accessPackage/catalog/id", Guid, "catalog_id"),
        n("requestor/objectId", Guid, "requestor_id"),
        n("requestor/id", Guid, "requestor_id"),
        n("assignment/id", Guid, "assignment_id"),
        f("assignment/target/objectId", Guid, "target_id"),
        n("assignment/assignmentPolicy/id", Guid, "policy_id"),
    ],
    search: &[],
    default_order: "createdDateTime",
};

pub static ASSIGNMENTS: Schema = Schema {
    entity: "accessPackageAssignment",
    table: "assignments",
    fields: &[
        f("id", Guid, "id"),
        f("state", Enum(ASSIGNMENT_STATES), "state"),
        f("accessPackage/id", Guid, "access_package_id"),
        f("accessPackage/catalog/id", Guid, "catalog_id"),
        n("assignmentPolicy/id", Guid, "policy_id"),
        f("target/objectId", Guid, "target_id"),
        f("target/id", Guid, "target_id"),
        n("expiredDateTime", DateTime, "expired_at"),
        f("schedule/startDateTime", DateTime, "start_at"),
        n("schedule/expiration/endDateTime", DateTime, "end_at"),
        f("createdDateTime", DateTime, "created_at"),
    ],
    search: &[],
    default_order: "createdDateTime",
};

const ORGANIZATION_STATES: &[&str] = &["configured", "proposed"];

pub static CONNECTED_ORGANIZATIONS: Schema = Schema {
    entity: "connectedOrganization",
    table: "connected_organizations",
    fields: &[
        f("id", Guid, "id"),
        t("displayName", "display_name", "display_name_fold"),
        nt("description", "description", "description_fold"),
        f("state", Enum(ORGANIZATION_STATES), "state"),
        f("createdDateTime", DateTime, "created_at"),
        f("modifiedDateTime", DateTime, "modified_at"),
    ],
    search: &["displayName", "description"],
    default_order: "displayName",
};

const REVIEW_STATUSES: &[&str] = &["NotStarted", "InProgress", "Completed", "Applying", "Applied"];
const REVIEW_DECISIONS_VALUES: &[&str] = &["Approve", "Deny", "NotReviewed", "DontKnow"];
const REVIEW_RECOMMENDATIONS: &[&str] = &["Approve", "Deny", "NoInfoAvailable"];
const REVIEW_APPLY_RESULTS: &[&str] = &[
    "New",
    "AppliedSuccessfully",
    "AppliedWithUnknownFailure",
    "AppliedSuccessfullyButObjectNotFound",
    "ApplyNotSupported",
];

/// Access review definitions (`accessReviewScheduleDefinition`). Graph filters the scope as
/// `scope/microsoft.graph.accessReviewQueryScope/query`; the filter parser reads no type casts,
/// so the property is `scope/query` here (the scope's query in canonical form).
pub static REVIEW_DEFINITIONS: Schema = Schema {
    entity: "accessReviewScheduleDefinition",
    table: "review_definitions",
    fields: &[
        f("id", Guid, "id"),
        t("displayName", "display_name", "display_name_fold"),
        f("status", Enum(REVIEW_STATUSES), "status"),
        f("createdDateTime", DateTime, "created_at"),
        f("lastModifiedDateTime", DateTime, "modified_at"),
        n("createdBy/id", Guid, "created_by"),
        t("scope/query", "scope_query", "scope_query_fold"),
    ],
    search: &["displayName"],
    default_order: "displayName",
};

/// Instances of a definition (`accessReviewInstance`); lists are scoped with `definition/id`.
pub static REVIEW_INSTANCES: Schema = Schema {
    entity: "accessReviewInstance",
    table: "review_instances",
    fields: &[
        f("id", Guid, "id"),
        f("definition/id", Guid, "definition_id"),
        f("startDateTime", DateTime, "start_at"),
        f("endDateTime", DateTime, "end_at"),
        f("status", Enum(REVIEW_STATUSES), "status"),
    ],
    search: &[],
    default_order: "startDateTime",
};

/// Decisions of an instance (`accessReviewInstanceDecisionItem`); lists are scoped with
/// `instance/id` (Graph's `accessReviewId`) and ordered by id unless asked otherwise, so
/// next links page stably.
pub static REVIEW_DECISIONS: Schema = Schema {
    entity: "accessReviewInstanceDecisionItem",
    table: "review_decisions",
    fields: &[
        f("id", Guid, "id"),
        f("instance/id", Guid, "instance_id"),
        f("accessReviewId", Guid, "instance_id"),
        f("decision", Enum(REVIEW_DECISIONS_VALUES), "decision"),
        f("recommendation", Enum(REVIEW_RECOMMENDATIONS), "recommendation"),
        f("applyResult", Enum(REVIEW_APPLY_RESULTS), "apply_result"),
        f("principal/id", Guid, "principal_id"),
        f("accessPackage/id", Guid, "access_package_id"),
        n("reviewedBy/id", Guid, "reviewed_by"),
        n("reviewedDateTime", DateTime, "reviewed_at"),
        n("appliedBy/id", Guid, "applied_by"),
        n("appliedDateTime", DateTime, "applied_at"),
    ],
    search: &[],
    default_order: "id",
};

/// A literal checked against its property's type, ready to bind.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Int(i64),
    Bool(bool),
}

/// A string test, always case-insensitive as in Graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Contains,
    StartsWith,
    EndsWith,
}

/// A type-checked `$filter`.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// `field op value`; `lower` when the property was wrapped in `tolower`/`toupper`.
    Cmp {
        field: &'static Field,
        op: CmpOp,
        value: Value,
        lower: bool,
    },
    IsNull {
        field: &'static Field,
        negated: bool,
    },
    In {
        field: &'static Field,
        values: Vec<Value>,
        lower: bool,
    },
    Match {
        field: &'static Field,
        kind: Match,
        value: String,
    },
    /// Every operand holds (true when empty). N-ary, like the parser's `Expr::And`, so a long
    /// chain is wide rather than deep.
    And(Vec<Cond>),
    /// Some operand holds (false when empty).
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Const(bool),
    /// Rows related to `id` through a link table (members of a group, a package's incompatible
    /// packages, ...): how navigation collections are listed with the full query machinery.
    Related {
        relation: Relation,
        id: String,
    },
}

impl Cond {
    /// `a and b`, flattened: an `And` operand is spliced in rather than nested.
    pub fn and(a: Cond, b: Cond) -> Cond {
        let mut terms = Vec::new();
        for c in [a, b] {
            match c {
                Cond::And(inner) => terms.extend(inner),
                other => terms.push(other),
            }
        }
        Cond::And(terms)
    }
}

/// The link tables behind navigation collections. The row's `id` is the related object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// users who are members of group `id`
    GroupMembers,
    /// users who own group `id`
    GroupOwners,
    /// users who sponsor user `id`
    Sponsors,
    /// users whose manager is user `id`
    DirectReports,
    /// packages that package `id` declares incompatible
    IncompatiblePackages,
    /// packages that declare package `id` incompatible
    PackagesIncompatibleWith,
    /// groups that package `id` declares incompatible
    IncompatibleGroups,
    /// requests that user `id` is or was asked to approve
    RequestsToApprove,
    /// assignments created by requests that user `id` made
    AssignmentsRequestedBy,
    /// active assignments whose target also actively holds package `id`
    TargetsHoldingPackage,
    /// roles of the resources in catalog `id`
    CatalogRoles,
    /// scopes of the resources in catalog `id`
    CatalogScopes,
    /// users who are internal sponsors of connected organization `id`
    InternalSponsors,
    /// users who are external sponsors of connected organization `id`
    ExternalSponsors,
    /// access review decisions that user `id` may decide (is a reviewer of at their stage)
    DecisionsToReview,
}

/// One `$orderby` key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sort {
    pub field: &'static Field,
    pub descending: bool,
}

pub const DEFAULT_TOP: u32 = 100;
pub const MAX_TOP: u32 = 999;

/// A page request the store can run: a scope (which rows belong to the collection), a filter,
/// an order that always ends in `id`, a size, an offset and a keyset cursor.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub schema: &'static Schema,
    pub filter: Option<Cond>,
    pub order: Vec<Sort>,
    pub top: u32,
    pub skip: u32,
    /// The sort-key values of the last row of the previous page (server-driven paging).
    pub after: Option<Vec<Value>>,
    pub count: bool,
    /// The total, when already known from the first page of the same query.
    pub known_count: Option<u64>,
}

impl ListQuery {
    /// Everything in the collection, in default order, one full page.
    pub fn all(schema: &'static Schema) -> Self {
        let mut order = Vec::new();
        if let Some(fd) = schema.field(schema.default_order) {
            order.push(Sort { field: fd, descending: false });
        }
        complete_order(schema, &mut order);
        Self { schema, filter: None, order, top: MAX_TOP, skip: 0, after: None, count: false, known_count: None }
    }

    /// Builds a query from parsed OData options, checking every name and literal.
    pub fn from_options(schema: &'static Schema, o: &QueryOptions) -> Result<Self, AppError> {
        let mut filter = o.filter.as_ref().map(|e| cond(schema, e)).transpose()?;
        if let Some(s) = &o.search {
            let search = search_cond(schema, s)?;
            filter = Some(match filter {
                Some(f) => Cond::and(f, search),
                None => search,
            });
        }
        let mut order = Vec::new();
        for ob in &o.orderby {
            let path = ob.path.join("/");
            let field = schema.require(&path).map_err(|_| AppError::Query {
                code: "BadRequest",
                message: format!(
                    "$orderby: property '{}' is not known on {}.",
                    steward_domain::text::clip(&path, 80),
                    schema.entity
                ),
            })?;
            if !order.iter().any(|s: &Sort| std::ptr::eq(s.field, field)) {
                order.push(Sort { field, descending: ob.descending });
            }
        }
        if order.is_empty()
            && let Some(fd) = schema.field(schema.default_order)
        {
            order.push(Sort { field: fd, descending: false });
        }
        complete_order(schema, &mut order);
        Ok(Self {
            schema,
            filter,
            order,
            top: o.top.unwrap_or(DEFAULT_TOP).clamp(1, MAX_TOP),
            skip: o.skip.unwrap_or(0),
            after: None,
            count: o.count,
            known_count: None,
        })
    }

    pub fn and(mut self, extra: Cond) -> Self {
        self.filter = Some(match self.filter.take() {
            Some(f) => Cond::and(extra, f),
            None => extra,
        });
        self
    }

    /// Restricts the list to the rows of the catalogs the caller may see (`path` names the
    /// row's catalog id); the whole collection for a caller allowed everywhere.
    pub fn within(self, scope: &crate::auth::CatalogScope, path: &str) -> Result<Self, AppError> {
        let Some(ids) = scope.catalogs() else {
            return Ok(self);
        };
        let field = self.schema.require(path)?;
        if ids.is_empty() {
            return Ok(self.and(Cond::Const(false)));
        }
        let values = ids.iter().map(|c| Value::Text(c.to_string())).collect();
        Ok(self.and(Cond::In { field, values, lower: false }))
    }

    /// Restricts the list to rows related to `id` (a navigation collection).
    pub fn related(self, relation: Relation, id: impl ToString) -> Self {
        self.and(Cond::Related { relation, id: id.to_string() })
    }

    /// `field eq value` on a Guid field: how scoped collections restrict a list.
    pub fn scoped(self, path: &str, id: impl ToString) -> Result<Self, AppError> {
        let field = self.schema.require(path)?;
        Ok(self.and(Cond::Cmp { field, op: CmpOp::Eq, value: Value::Text(id.to_string()), lower: false }))
    }
}

/// Keyset paging needs a total order: `id` breaks every tie. It runs in the direction of the
/// last key, so an index on `(key, id)` serves the order in one scan, forwards or backwards.
fn complete_order(schema: &'static Schema, order: &mut Vec<Sort>) {
    if !order.iter().any(|s| s.field.path == "id")
        && let Some(id) = schema.field("id")
    {
        let descending = order.last().is_some_and(|s| s.descending);
        order.push(Sort { field: id, descending });
    }
}

fn invalid(message: String) -> AppError {
    AppError::Query { code: "InvalidFilter", message }
}

fn search_cond(schema: &'static Schema, s: &steward_odata::SearchTerm) -> Result<Cond, AppError> {
    let fields: Vec<&'static Field> = match &s.property {
        Some(p) => vec![schema.require(p)?],
        None => schema.search.iter().filter_map(|p| schema.field(p)).collect(),
    };
    if fields.is_empty() {
        return Err(AppError::Query {
            code: "BadRequest",
            message: format!("$search is not supported on {}.", schema.entity),
        });
    }
    let mut terms: Vec<Cond> =
        fields.into_iter().map(|field| Cond::Match { field, kind: Match::Contains, value: s.value.clone() }).collect();
    Ok(if terms.len() == 1 { terms.pop().unwrap_or(Cond::Const(false)) } else { Cond::Or(terms) })
}

/// A property reference, possibly wrapped in `tolower`/`toupper`.
fn property(schema: &'static Schema, e: &Expr) -> Result<Option<(&'static Field, bool)>, AppError> {
    match e {
        Expr::Property(p) => Ok(Some((schema.require(&p.join("/"))?, false))),
        Expr::Call { func: Func::ToLower | Func::ToUpper, args } => match args.as_slice() {
            [Expr::Property(p)] => {
                let field = schema.require(&p.join("/"))?;
                if field.ty != Text {
                    return Err(invalid(format!(
                        "tolower/toupper apply to text properties; '{}' is not text.",
                        field.path
                    )));
                }
                Ok(Some((field, true)))
            }
            _ => Err(invalid("tolower/toupper take a single property.".into())),
        },
        _ => Ok(None),
    }
}

fn cond(schema: &'static Schema, e: &Expr) -> Result<Cond, AppError> {
    match e {
        // The parser keeps chains flat, so this recursion follows nesting (bounded by the
        // parser's depth limit), not chain length.
        Expr::And(terms) => Ok(Cond::And(terms.iter().map(|t| cond(schema, t)).collect::<Result<_, _>>()?)),
        Expr::Or(terms) => Ok(Cond::Or(terms.iter().map(|t| cond(schema, t)).collect::<Result<_, _>>()?)),
        Expr::Not(a) => Ok(Cond::Not(Box::new(cond(schema, a)?))),
        Expr::Literal(Literal::Bool(b)) => Ok(Cond::Const(*b)),
        Expr::Property(_) => {
            // a bare boolean property: `isHidden`
            let Some((field, _)) = property(schema, e)? else {
                return Err(invalid("Expected a property.".into()));
            };
            if field.ty != Bool {
                return Err(invalid(format!(
                    "'{}' is not a boolean property and cannot stand alone in $filter.",
                    field.path
                )));
            }
            Ok(Cond::Cmp { field, op: CmpOp::Eq, value: Value::Bool(true), lower: false })
        }
        Expr::Compare { op, left, right } => compare(schema, *op, left, right),
        Expr::In { expr, list } => {
            let Some((field, lower)) = property(schema, expr)? else {
                return Err(invalid("The left side of 'in' must be a property.".into()));
            };
            let values = list.iter().map(|l| literal(field, l, lower)).collect::<Result<Vec<_>, _>>()?;
            if values.contains(&Value::Null) {
                return Err(invalid("null is not allowed in an 'in' list.".into()));
            }
            Ok(Cond::In { field, values, lower })
        }
        Expr::Call { func, args } => {
            let kind = match func {
                Func::Contains => Match::Contains,
                Func::StartsWith => Match::StartsWith,
                Func::EndsWith => Match::EndsWith,
                other => {
                    return Err(invalid(format!(
                        "Function {other:?} does not return a boolean; compare its result instead."
                    )));
                }
            };
            let [target, Expr::Literal(Literal::String(value))] = args.as_slice() else {
                return Err(invalid("contains, startswith and endswith take a property and a string literal.".into()));
            };
            let Some((field, _)) = property(schema, target)? else {
                return Err(invalid("contains, startswith and endswith take a property first.".into()));
            };
            if field.ty != Text {
                return Err(invalid(format!(
                    "'{}' is not a text property; string functions do not apply.",
                    field.path
                )));
            }
            Ok(Cond::Match { field, kind, value: value.clone() })
        }
        // A collection each row holds exactly one element of (its properties are declared as
        // `path/...`): `any` is a test of that element.
        Expr::Any { path, var, predicate } if is_single_valued(schema, path) => {
            if var.is_empty() {
                return Ok(Cond::Const(true));
            }
            cond(schema, &through(predicate, var, path))
        }
        Expr::Any { path, .. } => Err(invalid(format!(
            "Lambda operator 'any' on '{}' is not supported on {}.",
            path.join("/"),
            schema.entity
        ))),
        Expr::Literal(_) => Err(invalid("A $filter must be a condition, not a bare value.".into())),
    }
}

/// Whether the schema declares properties under `path/`: a collection of one per row.
fn is_single_valued(schema: &Schema, path: &[String]) -> bool {
    let prefix = format!("{}/", path.join("/"));
    schema.fields.iter().any(|f| f.path.len() > prefix.len() && f.path[..prefix.len()].eq_ignore_ascii_case(&prefix))
}

/// `predicate` with the range variable `var` replaced by `path` (`t/id` → `targetResources/id`).
fn through(predicate: &Expr, var: &str, path: &[String]) -> Expr {
    let again = |e: &Expr| through(e, var, path);
    match predicate {
        Expr::Property(p) if p.first().is_some_and(|v| v == var) => {
            Expr::Property(path.iter().cloned().chain(p.iter().skip(1).cloned()).collect())
        }
        Expr::Compare { op, left, right } => {
            Expr::Compare { op: *op, left: Box::new(again(left)), right: Box::new(again(right)) }
        }
        Expr::And(terms) => Expr::And(terms.iter().map(again).collect()),
        Expr::Or(terms) => Expr::Or(terms.iter().map(again).collect()),
        Expr::Not(a) => Expr::Not(Box::new(again(a))),
        Expr::In { expr, list } => Expr::In { expr: Box::new(again(expr)), list: list.clone() },
        Expr::Call { func, args } => Expr::Call { func: *func, args: args.iter().map(again).collect() },
        other => other.clone(),
    }
}

fn compare(schema: &'static Schema, op: CmpOp, left: &Expr, right: &Expr) -> Result<Cond, AppError> {
    let (field, lower, lit, op) = match (property(schema, left)?, property(schema, right)?) {
        (Some((f, l)), None) => (f, l, right, op),
        (None, Some((f, l))) => (f, l, left, flip(op)),
        (Some(_), Some(_)) => {
            return Err(invalid("Comparing two properties is not supported.".into()));
        }
        (None, None) => return Err(invalid("A comparison needs a property on one side.".into())),
    };
    let Expr::Literal(lit) = lit else {
        return Err(invalid("The other side of a comparison must be a literal value.".into()));
    };
    let value = literal(field, lit, lower)?;
    if value == Value::Null {
        return match op {
            CmpOp::Eq => Ok(Cond::IsNull { field, negated: false }),
            CmpOp::Ne => Ok(Cond::IsNull { field, negated: true }),
            _ => Err(invalid("null can only be compared with eq or ne.".into())),
        };
    }
    if matches!(field.ty, Bool) && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
        return Err(invalid(format!("'{}' is boolean; only eq and ne apply.", field.path)));
    }
    Ok(Cond::Cmp { field, op, value, lower })
}

fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        o => o,
    }
}

/// Checks a literal against a property's type and converts it to the stored representation.
fn literal(field: &Field, lit: &Literal, lower: bool) -> Result<Value, AppError> {
    let mismatch = || {
        invalid(format!(
            "The value {} does not fit property '{}' of type {}.",
            describe(lit),
            field.path,
            type_name(field.ty)
        ))
    };
    Ok(match (field.ty, lit) {
        (_, Literal::Null) => Value::Null,
        (Guid, Literal::Guid(s) | Literal::String(s)) => {
            let u = uuid::Uuid::parse_str(s).map_err(|_| mismatch())?;
            Value::Text(u.hyphenated().to_string())
        }
        (Text, Literal::String(s)) => Value::Text(if lower { s.to_lowercase() } else { s.clone() }),
        (Bool, Literal::Bool(b)) => Value::Bool(*b),
        (DateTime, Literal::DateTime(t)) => Value::Int(to_micros(*t)),
        (DateTime, Literal::Date(d)) => {
            let z = d.to_zoned(jiff::tz::TimeZone::UTC).map_err(|_| mismatch())?;
            Value::Int(to_micros(z.timestamp()))
        }
        (DateTime, Literal::String(s)) => {
            Value::Int(to_micros(steward_domain::time::parse_datetime(s).map_err(|_| mismatch())?))
        }
        (Enum(names), Literal::String(s)) => match names.iter().find(|n| n.eq_ignore_ascii_case(s)) {
            Some(n) => Value::Text((*n).to_owned()),
            None => {
                return Err(invalid(format!(
                    "'{}' is not a value of '{}'; expected one of: {}.",
                    steward_domain::text::clip(s, 64),
                    field.path,
                    names.join(", ")
                )));
            }
        },
        _ => return Err(mismatch()),
    })
}

fn describe(l: &Literal) -> String {
    match l {
        Literal::Null => "null".into(),
        Literal::Bool(b) => b.to_string(),
        Literal::Int(i) => i.to_string(),
        Literal::Float(x) => x.to_string(),
        Literal::String(s) => format!("'{}'", steward_domain::text::clip(s, 64)),
        Literal::DateTime(t) => t.to_string(),
        Literal::Date(d) => d.to_string(),
        Literal::Guid(g) => g.clone(),
    }
}

fn type_name(t: FieldType) -> &'static str {
    match t {
        Guid => "Edm.Guid",
        Text => "Edm.String",
        Bool => "Edm.Boolean",
        DateTime => "Edm.DateTimeOffset",
        Enum(_) => "enumeration",
    }
}

/// Every schema, for tests that check each has a matching table and columns.
pub static ALL_SCHEMAS: &[&Schema] = &[
    &USERS,
    &GROUPS,
    &CATALOGS,
    &ACCESS_PACKAGES,
    &RESOURCES,
    &RESOURCE_ROLES,
    &RESOURCE_SCOPES,
    &RESOURCE_REQUESTS,
    &ROLE_SCOPES,
    &POLICIES,
    &ASSIGNMENT_REQUESTS,
    &ASSIGNMENTS,
    &CONNECTED_ORGANIZATIONS,
    &REVIEW_DEFINITIONS,
    &REVIEW_INSTANCES,
    &REVIEW_DECISIONS,
];

const REVIEW_HISTORY_STATUSES: &[&str] = &["done", "inprogress", "error", "requested"];

/// Access review history reports (`accessReviewHistoryDefinition`). Not in `ALL_SCHEMAS`: its
/// table came with migration 0014, after the folded columns were introduced, so no row predates
/// its `display_name_fold` (its contract tests check the folding on write).
pub static REVIEW_HISTORY_DEFINITIONS: Schema = Schema {
    entity: "accessReviewHistoryDefinition",
    table: "review_history_definitions",
    fields: &[
        f("id", Guid, "id"),
        t("displayName", "display_name", "display_name_fold"),
        f("status", Enum(REVIEW_HISTORY_STATUSES), "status"),
        f("createdDateTime", DateTime, "created_at"),
        n("createdBy/id", Guid, "created_by"),
    ],
    search: &["displayName"],
    default_order: "createdDateTime",
};

const AUDIT_CATEGORIES: &[&str] =
    &["EntitlementManagement", "UserManagement", "GroupManagement", "Policy", "RoleManagement"];
const AUDIT_RESULTS: &[&str] = &["success", "failure", "timeout", "unknownFutureValue"];

/// The audit trail (`directoryAudit`). Not in `ALL_SCHEMAS`: migration 0015 filled the folded
/// display names of the rows it found (activity names are ASCII, so SQL's `lower` folds them as
/// Rust does). Each record has one target, so `targetResources/any(t: t/id eq …)` is a test of
/// that target (see `Expr::Any` in `cond`).
pub static DIRECTORY_AUDITS: Schema = Schema {
    entity: "directoryAudit",
    table: "audit_events",
    fields: &[
        f("id", Guid, "id"),
        f("activityDateTime", DateTime, "at"),
        t("activityDisplayName", "display_name", "display_name_fold"),
        f("category", Enum(AUDIT_CATEGORIES), "category"),
        f("correlationId", Guid, "correlation_id"),
        f("result", Enum(AUDIT_RESULTS), "result"),
        n("initiatedBy/user/id", Guid, "initiator_user_id"),
        f("targetResources/id", Guid, "target_id"),
    ],
    search: &["activityDisplayName"],
    default_order: "activityDateTime",
};

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Result<ListQuery, AppError> {
        let o = steward_odata::parse_query(s).map_err(AppError::from)?;
        ListQuery::from_options(&ACCESS_PACKAGES, &o)
    }

    #[test]
    fn known_properties_type_check() {
        assert!(q("$filter=catalog/id eq '6f1c2d3e-0000-4000-8000-00000000000a'").is_ok());
        assert!(q("$filter=contains(tolower(displayName),'x') and isHidden eq false").is_ok());
        assert!(q("$filter=createdDateTime ge 2024-01-01T00:00:00Z").is_ok());
        assert!(q("$filter=description eq null").is_ok());
    }

    #[test]
    fn an_audit_records_one_target_is_filtered_through_any() {
        let audit = |s: &str| {
            let o = steward_odata::parse_query(s).map_err(AppError::from)?;
            ListQuery::from_options(&DIRECTORY_AUDITS, &o)
        };
        let id = "6f1c2d3e-0000-4000-8000-00000000000a";
        let by_target = audit(&format!("$filter=targetResources/any(t: t/id eq '{id}')")).unwrap();
        let want = Cond::Cmp {
            field: DIRECTORY_AUDITS.field("targetResources/id").unwrap(),
            op: CmpOp::Eq,
            value: Value::Text(id.into()),
            lower: false,
        };
        assert_eq!(by_target.filter, Some(want));
        assert!(
            audit(&format!("$filter=initiatedBy/user/id eq '{id}' and startswith(activityDisplayName, 'approve')"))
                .is_ok()
        );
        assert!(audit("$filter=targetResources/any(t: t/colour eq 'x')").unwrap_err().to_string().contains("colour"));
        let e = q(&format!("$filter=resourceRoleScopes/any(r: r/id eq '{id}')")).unwrap_err().to_string();
        assert!(e.contains("not supported"), "{e}");
    }

    #[test]
    fn unknown_and_mistyped_are_rejected_with_a_name() {
        let e = q("$filter=colour eq 'red'").unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
        let e = q("$filter=isHidden eq 'yes'").unwrap_err().to_string();
        assert!(e.contains("isHidden"), "{e}");
        assert!(q("$filter=catalog/id eq 'not-a-guid'").is_err());
        assert!(q("$orderby=colour").is_err());
        assert!(q("$filter=isHidden gt true").is_err());
    }

    #[test]
    fn order_always_ends_in_id() {
        let l = q("$orderby=displayName desc").unwrap();
        assert_eq!(l.order.len(), 2);
        assert_eq!(l.order[1].field.path, "id");
        assert!(l.order[0].descending);
        let l = q("").unwrap();
        assert_eq!(l.order[0].field.path, "displayName");
        assert_eq!(l.top, DEFAULT_TOP);
    }

    #[test]
    fn enum_literals_are_canonicalised() {
        let o = steward_odata::parse_query("$filter=state eq 'PUBLISHED'").unwrap();
        let l = ListQuery::from_options(&CATALOGS, &o).unwrap();
        match l.filter.unwrap() {
            Cond::Cmp { value, .. } => assert_eq!(value, Value::Text("published".into())),
            other => panic!("{other:?}"),
        }
    }
}
