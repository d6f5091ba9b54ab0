//! Compiles a type-checked `ListQuery` into SQL: a WHERE clause from the filter, an ORDER BY
//! that always ends in `id`, and a keyset condition for server-driven paging. Column names come
//! from the schema's compile-time constants; every value is a bound parameter.

use steward_app::query::{Cond, Field, FieldType, ListQuery, Match, Relation, Sort, Value};
use steward_odata::CmpOp;

use crate::driver::Param;

/// Collects parameters and hands out their `$n` placeholders; carries what the query being
/// compiled tells its conditions (`Hints`).
#[derive(Default)]
pub(crate) struct Params(pub Vec<Param>, pub Hints);

/// What a list query tells the conditions compiled into it, so a relation's subquery can take
/// the access path that suits the list (see `Relation::DecisionsToReview` in `relation_sql`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Hints {
    /// The filter keeps the rows of one access review instance (`instance_id = …` among the
    /// terms that must all hold): that instance's id.
    one_instance: Option<String>,
    /// The page is ordered by `id` alone and starts after this id (before it, descending).
    after_id: Option<(String, bool)>,
}

impl Hints {
    fn of(q: &ListQuery, paging: bool) -> Self {
        let one_instance = q.filter.as_ref().and_then(|f| {
            let terms = match f {
                Cond::And(terms) => terms.as_slice(),
                other => std::slice::from_ref(other),
            };
            terms.iter().find_map(|t| match t {
                Cond::Cmp { field, op: CmpOp::Eq, value: Value::Text(id), lower: false }
                    if field.column == "instance_id" =>
                {
                    Some(id.clone())
                }
                _ => None,
            })
        });
        let after_id = match (q.order.as_slice(), q.after.as_deref()) {
            ([only], Some([Value::Text(after)])) if paging && only.field.column == "id" => {
                Some((after.clone(), only.descending))
            }
            _ => None,
        };
        Self { one_instance, after_id }
    }
}

impl Params {
    pub fn push(&mut self, p: Param) -> String {
        self.0.push(p);
        format!("${}", self.0.len())
    }
    fn value(&mut self, v: &Value) -> String {
        self.push(match v {
            Value::Null => Param::Text(None),
            Value::Text(s) => Param::Text(Some(s.clone())),
            Value::Int(i) => Param::Int(Some(*i)),
            Value::Bool(b) => Param::Bool(Some(*b)),
        })
    }
}

fn op_sql(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "=",
        CmpOp::Ne => "<>",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
    }
}

/// A `LIKE` pattern (with `ESCAPE '\'`) for a case-insensitive match: the value folded with
/// Rust's `to_lowercase`, like the `*_fold` columns it is compared with, then escaped.
pub(crate) fn like_pattern(kind: Match, value: &str) -> String {
    let mut esc = String::with_capacity(value.len() + 2);
    for c in value.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            esc.push('\\');
        }
        esc.push(c);
    }
    match kind {
        Match::Contains => format!("%{esc}%"),
        Match::StartsWith => format!("{esc}%"),
        Match::EndsWith => format!("%{esc}"),
    }
}

fn relation_sql(r: Relation, p: &str, ps: &mut Params) -> String {
    match r {
        Relation::GroupMembers => {
            format!("id IN (SELECT user_id FROM group_members WHERE group_id = {p})")
        }
        Relation::GroupOwners => {
            format!("id IN (SELECT user_id FROM group_owners WHERE group_id = {p})")
        }
        Relation::Sponsors => {
            format!("id IN (SELECT sponsor_id FROM user_sponsors WHERE user_id = {p})")
        }
        Relation::DirectReports => format!("manager_id = {p}"),
        Relation::IncompatiblePackages => {
            format!("id IN (SELECT other_id FROM package_incompatible_packages WHERE access_package_id = {p})")
        }
        Relation::PackagesIncompatibleWith => {
            format!("id IN (SELECT access_package_id FROM package_incompatible_packages WHERE other_id = {p})")
        }
        Relation::CatalogRoles | Relation::CatalogScopes => {
            format!("resource_id IN (SELECT id FROM resources WHERE catalog_id = {p})")
        }
        Relation::IncompatibleGroups => {
            format!("id IN (SELECT group_id FROM package_incompatible_groups WHERE access_package_id = {p})")
        }
        Relation::AssignmentsRequestedBy => format!(
            "id IN (SELECT assignment_id FROM assignment_requests WHERE requestor_id = {p} AND assignment_id IS NOT NULL)"
        ),
        Relation::TargetsHoldingPackage => format!(
            "active_key IS NOT NULL AND target_id IN \
             (SELECT target_id FROM assignments WHERE access_package_id = {p} AND active_key IS NOT NULL)"
        ),
        Relation::RequestsToApprove => {
            format!("id IN (SELECT request_id FROM request_approvers WHERE user_id = {p})")
        }
        Relation::InternalSponsors => format!(
            "id IN (SELECT user_id FROM organization_sponsors WHERE organization_id = {p} AND kind = 'internal')"
        ),
        Relation::ExternalSponsors => format!(
            "id IN (SELECT user_id FROM organization_sponsors WHERE organization_id = {p} AND kind = 'external')"
        ),
        Relation::DecisionsToReview => {
            // The page's own keyset bound, repeated on the reviewer's rows: PostgreSQL does
            // not carry `id > $n` across the join, and would read the reviewer's rows from the
            // first. The subquery is the reviewer's decisions (in one instance, when the list
            // is one instance's: the reviewer index `(user_id, instance_id, decision_id)` gives
            // exactly those), so a page costs what the reviewer has after the page's start,
            // not what the instance has: a correlated EXISTS made SQLite walk the instance's
            // decisions in id order and probe each (a manager's 100 among 100,000: 160 ms).
            let bound = match ps.1.after_id.clone() {
                Some((after, descending)) => {
                    let a = ps.push(Param::Text(Some(after)));
                    format!(" AND r.decision_id {} {a}", if descending { "<" } else { ">" })
                }
                None => String::new(),
            };
            if let Some(instance) = ps.1.one_instance.clone() {
                let i = ps.push(Param::Text(Some(instance)));
                format!(
                    "id IN (SELECT r.decision_id FROM review_decision_reviewers r WHERE r.user_id = {p} \
                     AND r.instance_id = {i}{bound})"
                )
            } else {
                format!("id IN (SELECT r.decision_id FROM review_decision_reviewers r WHERE r.user_id = {p}{bound})")
            }
        }
    }
}

/// `test` on a nullable column evaluates to false, not NULL, when the column is null, so the
/// filter keeps two-valued logic: `not (description eq 'x')` and `description ne 'x'` agree, and
/// `not contains(description,'x')` includes packages without a description.
fn non_null(field: &Field, test: String) -> String {
    if field.nullable { format!("({} IS NOT NULL AND {test})", field.column) } else { test }
}

/// SQL for a condition; never NULL (see `non_null`).
///
/// Case-insensitive tests (`tolower(p)`, `contains`/`startswith`/`endswith`, `$search`) read the
/// property's folded column (`Field::fold`, written by the store with Rust's `to_lowercase`)
/// and compare it with a literal folded the same way in Rust (`ListQuery` folds `tolower`
/// literals, `like_pattern` folds match values), so both databases agree with Rust exactly.
///
/// `And`/`Or` are n-ary and rendered in one flat parenthesised list; recursion follows only
/// the nesting of the filter, which the parser bounds.
pub(crate) fn cond(c: &Cond, ps: &mut Params) -> String {
    match c {
        Cond::Const(true) => "1 = 1".into(),
        Cond::Const(false) => "1 = 0".into(),
        Cond::And(terms) => junction(terms, " AND ", "1 = 1", ps),
        Cond::Or(terms) => junction(terms, " OR ", "1 = 0", ps),
        Cond::Not(a) => format!("(NOT {} )", cond(a, ps)),
        Cond::IsNull { field, negated } => {
            format!("{} IS {}NULL", field.column, if *negated { "NOT " } else { "" })
        }
        Cond::Cmp { field, op, value, lower } => {
            let col = if *lower { field.folded_column() } else { field.column };
            let p = ps.value(value);
            if *op == CmpOp::Ne && field.nullable {
                // OData: a null property is "not equal" to any value.
                format!("({col} <> {p} OR {col} IS NULL)")
            } else {
                non_null(field, format!("{col} {} {p}", op_sql(*op)))
            }
        }
        Cond::In { field, values, lower } => {
            let col = if *lower { field.folded_column() } else { field.column };
            if values.is_empty() {
                return "1 = 0".into();
            }
            let ph: Vec<String> = values.iter().map(|v| ps.value(v)).collect();
            non_null(field, format!("{col} IN ({})", ph.join(", ")))
        }
        Cond::Match { field, kind, value } => {
            let p = ps.push(Param::Text(Some(like_pattern(*kind, value))));
            non_null(field, format!("{} LIKE {p} ESCAPE '\\'", field.folded_column()))
        }
        Cond::Related { relation, id } => {
            let p = ps.push(Param::Text(Some(id.clone())));
            relation_sql(*relation, &p, ps)
        }
    }
}

/// `(t1 AND t2 AND …)`; `empty` when there are no operands.
fn junction(terms: &[Cond], op: &str, empty: &str, ps: &mut Params) -> String {
    match terms {
        [] => empty.into(),
        [only] => cond(only, ps),
        _ => {
            let parts: Vec<String> = terms.iter().map(|t| cond(t, ps)).collect();
            format!("({})", parts.join(op))
        }
    }
}

/// The expression a sort key orders by: nullable columns sort as empty text, so keyset
/// comparisons never meet NULL.
fn sort_expr(f: &Field) -> String {
    if f.nullable {
        match f.ty {
            FieldType::Bool => format!("COALESCE({}, FALSE)", f.column),
            FieldType::DateTime => format!("COALESCE({}, 0)", f.column),
            _ => format!("COALESCE({}, '')", f.column),
        }
    } else {
        f.column.to_owned()
    }
}

/// `(k1, k2, …) after (v1, v2, …)`. When every key runs the same way this is a row-value
/// comparison, `(k1, k2) > ($1, $2)`, which both databases answer with one index range scan;
/// mixed directions expand to `k1 > v1 OR (k1 = v1 AND (k2 < v2 OR …))`.
fn keyset(order: &[Sort], after: &[Value], ps: &mut Params) -> String {
    let descending = order.first().is_some_and(|s| s.descending);
    if order.len() > 1 && order.iter().all(|s| s.descending == descending) {
        let keys: Vec<String> = order.iter().map(|s| sort_expr(s.field)).collect();
        let vals: Vec<String> = after.iter().map(|v| ps.value(v)).collect();
        return format!("({}) {} ({})", keys.join(", "), if descending { "<" } else { ">" }, vals.join(", "));
    }
    expanded_keyset(order, after, ps)
}

fn expanded_keyset(order: &[Sort], after: &[Value], ps: &mut Params) -> String {
    match (order.split_first(), after.split_first()) {
        (Some((s, rest_order)), Some((v, rest_after))) => {
            let e = sort_expr(s.field);
            let p = ps.value(v);
            let strict = format!("{e} {} {p}", if s.descending { "<" } else { ">" });
            if rest_order.is_empty() {
                strict
            } else {
                let p2 = ps.value(v);
                let rest = expanded_keyset(rest_order, rest_after, ps);
                format!("({strict} OR ({e} = {p2} AND {rest}))")
            }
        }
        _ => "1 = 1".into(),
    }
}

/// A condition the store adds to a query's own filter (which rows a caller may see), with its
/// parameters as `$1`…`$n`: they are bound before the query's own. `count`, when given, is the
/// same condition shaped for counting every row rather than finding the first few.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub sql: String,
    pub count: Option<String>,
    pub params: Vec<Param>,
}

impl Scope {
    /// A condition with one shape for pages and counts.
    pub fn new(sql: String, params: Vec<Param>) -> Self {
        Self { sql, count: None, params }
    }
}

fn start(scope: Option<&Scope>, wh: &mut Vec<String>, counting: bool) -> Params {
    match scope {
        Some(s) => {
            wh.push(if counting { s.count.as_ref().unwrap_or(&s.sql).clone() } else { s.sql.clone() });
            Params(s.params.clone(), Hints::default())
        }
        None => Params::default(),
    }
}

/// A page query: `SELECT columns, sort keys FROM table WHERE … ORDER BY … LIMIT top+1 OFFSET skip`.
/// The sort-key columns trail the entity's own so the last row yields the next cursor.
pub(crate) fn page_sql(q: &ListQuery, columns: &str, scope: Option<&Scope>) -> (String, Vec<Param>) {
    let mut wh: Vec<String> = Vec::new();
    let mut ps = start(scope, &mut wh, false);
    ps.1 = Hints::of(q, true);
    if let Some(f) = &q.filter {
        wh.push(cond(f, &mut ps));
    }
    if let Some(after) = &q.after
        && after.len() == q.order.len()
    {
        wh.push(keyset(&q.order, after, &mut ps));
    }
    let keys: Vec<String> = q.order.iter().map(|s| sort_expr(s.field)).collect();
    let order: Vec<String> = q
        .order
        .iter()
        .map(|s| format!("{} {}", sort_expr(s.field), if s.descending { "DESC" } else { "ASC" }))
        .collect();
    let where_sql = if wh.is_empty() { String::new() } else { format!(" WHERE {}", wh.join(" AND ")) };
    let limit = ps.push(Param::Int(Some(i64::from(q.top) + 1)));
    let offset = ps.push(Param::Int(Some(i64::from(q.skip))));
    let sql = format!(
        "SELECT {columns}, {} FROM {}{where_sql} ORDER BY {} LIMIT {limit} OFFSET {offset}",
        keys.join(", "),
        q.schema.table,
        order.join(", ")
    );
    (sql, ps.0)
}

/// `SELECT COUNT(*)` over the same filter (no paging).
pub(crate) fn count_sql(q: &ListQuery, scope: Option<&Scope>) -> (String, Vec<Param>) {
    let (wh, ps) = conditions(q, scope, true);
    let where_sql = if wh.is_empty() { String::new() } else { format!(" WHERE {}", wh.join(" AND ")) };
    (format!("SELECT COUNT(*) FROM {}{where_sql}", q.schema.table), ps.0)
}

/// The conditions (to be joined with `AND`) that keep the rows of `q`'s table its filter and
/// `scope` keep, the scope in its counting shape if `counting` (every row is visited) or else
/// in its page shape (rows are tested one by one, and the reader stops early), with their
/// parameters; more can be pushed after them.
pub(crate) fn conditions(q: &ListQuery, scope: Option<&Scope>, counting: bool) -> (Vec<String>, Params) {
    let mut wh: Vec<String> = Vec::new();
    let mut ps = start(scope, &mut wh, counting);
    ps.1 = Hints::of(q, false);
    if let Some(f) = &q.filter {
        wh.push(cond(f, &mut ps));
    }
    (wh, ps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_app::query::{ACCESS_PACKAGES, ListQuery};

    fn lq(s: &str) -> ListQuery {
        ListQuery::from_options(&ACCESS_PACKAGES, &steward_odata::parse_query(s).unwrap()).unwrap()
    }

    #[test]
    fn values_are_always_bound() {
        let (sql, params) = page_sql(&lq("$filter=displayName eq 'x'' OR 1=1 --'"), "id", None);
        assert!(!sql.contains("OR 1=1"), "{sql}");
        assert_eq!(params[0], Param::Text(Some("x' OR 1=1 --".into())));
    }

    #[test]
    fn like_metacharacters_are_escaped() {
        assert_eq!(like_pattern(Match::Contains, "50%_off"), "%50\\%\\_off%");
        assert_eq!(like_pattern(Match::StartsWith, "AB"), "ab%");
    }

    #[test]
    fn case_insensitive_tests_read_the_folded_column() {
        let (sql, params) =
            page_sql(&lq("$filter=tolower(displayName) eq 'ÄRZTE' and contains(description,'Öl')"), "id", None);
        assert!(sql.contains("display_name_fold = $1"), "{sql}");
        assert!(sql.contains("description_fold LIKE $2"), "{sql}");
        assert!(!sql.contains("lower("), "{sql}");
        assert_eq!(params[0], Param::Text(Some("ärzte".into())));
        assert_eq!(params[1], Param::Text(Some("%öl%".into())));
        let (sql, _) = page_sql(&lq("$filter=displayName eq 'A'"), "id", None);
        assert!(sql.contains("WHERE display_name = $1"), "exact comparisons keep the column: {sql}");
    }

    #[test]
    fn chains_compile_flat() {
        let chain = vec!["isHidden"; 150].join(" or ");
        let (sql, params) = page_sql(&lq(&format!("$filter={chain}")), "id", None);
        assert_eq!(sql.matches(" OR ").count(), 149, "{sql}");
        assert_eq!(sql.matches('(').count(), sql.matches(')').count());
        assert!(!sql.contains("((is_hidden"), "one flat list, not nested pairs: {sql}");
        assert_eq!(params.len(), 152);
    }

    #[test]
    fn a_reviewers_decisions_are_bounded_like_the_page() {
        use steward_app::query::REVIEW_DECISIONS;
        let user = "0190c3c4-7a5e-7000-8000-000000000001";
        let instance = "0190c3c4-7a5e-7000-8000-000000000002";
        let after = "0190c3c4-7a5e-7000-8000-000000000003";
        let mine = || {
            let o = steward_odata::parse_query("$top=10").unwrap();
            ListQuery::from_options(&REVIEW_DECISIONS, &o).unwrap().related(Relation::DecisionsToReview, user)
        };
        let mut q = mine().scoped("instance/id", instance).unwrap();
        q.after = Some(vec![Value::Text(after.into())]);
        let (sql, params) = page_sql(&q, "id", None);
        assert!(sql.contains("r.user_id = $2 AND r.instance_id = $4 AND r.decision_id > $3"), "{sql}");
        assert!(sql.contains(") AND id > $5"), "{sql}");
        assert_eq!(params[2], Param::Text(Some(after.into())));
        assert_eq!(params[3], Param::Text(Some(instance.into())));
        let (count, _) = count_sql(&q, None);
        assert!(!count.contains("r.decision_id >"), "a count is not bounded: {count}");
        let (sql, _) = page_sql(&mine(), "id", None);
        assert!(
            sql.contains("id IN (SELECT r.decision_id FROM review_decision_reviewers r WHERE r.user_id = $1)"),
            "{sql}"
        );
    }

    #[test]
    fn keyset_follows_directions() {
        let mut q = lq("$orderby=displayName desc");
        q.after = Some(vec![Value::Text("m".into()), Value::Text("id-1".into())]);
        let (sql, _) = page_sql(&q, "id", None);
        assert!(sql.contains("(display_name, id) < ($1, $2)"), "{sql}");
        assert!(sql.contains("ORDER BY display_name DESC, id DESC"), "{sql}");
        let mut q = lq("$orderby=isHidden desc, displayName asc");
        q.after = Some(vec![Value::Bool(true), Value::Text("m".into()), Value::Text("id-1".into())]);
        let (sql, _) = page_sql(&q, "id", None);
        assert!(
            sql.contains("(is_hidden < $1 OR (is_hidden = $2 AND (display_name, id) > ($3, $4)))")
                || sql.contains(
                    "(is_hidden < $1 OR (is_hidden = $2 AND (display_name > $3 OR (display_name = $4 AND id > $5))))"
                ),
            "{sql}"
        );
    }
}
