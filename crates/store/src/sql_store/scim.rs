//! The store's side of SCIM provisioning (`steward_app::scim`): users and groups read with
//! the columns of migration 0009, lists compiled from a resolved SCIM filter (`ScimCond`) to
//! one parameterised condition, and the writes, each one transaction with its audit events,
//! landing only on the `row_version` they read.
//!
//! The filter compiler uses only what both databases have alike: text compares the folded
//! companion columns (filled here with Rust's `to_lowercase`) or the exact column, and
//! `co`/`sw`/`ew` are written with `replace`, `substr` and `length` (no `LIKE`, whose case
//! rules and escapes differ). Every test is two-valued (an absent value fails it explicitly),
//! so `not` is plain `NOT`.

use steward_app::scim::query::{ScimCond, ScimField, ScimPage, ScimQuery, TextOp};
use steward_app::scim::{ScimGroup, ScimUser};

use super::*;

/// The columns of a SCIM user: Graph's user, then SCIM's own.
fn user_columns() -> String {
    format!(
        "{}, external_id, given_name, family_name, formatted_name, scim_user_type, row_version, \
         COALESCE(modified_at, created_at)",
        User::COLUMNS
    )
}

const GROUP_COLUMNS: &str = "id, display_name, description, mail_nickname, mail_enabled, security_enabled, created_at, \
     external_id, row_version, COALESCE(modified_at, created_at)";

fn read_user(row: &crate::driver::Row) -> StoreResult<ScimUser> {
    let mut c = Cells::new(row);
    let user = User::from_cells(&mut c)?;
    Ok(ScimUser {
        user,
        external_id: c.opt_text()?,
        given_name: c.opt_text()?,
        family_name: c.opt_text()?,
        formatted_name: c.opt_text()?,
        user_type: c.opt_text()?,
        version: c.int()?,
        modified: c.time()?,
    })
}

fn read_group(row: &crate::driver::Row) -> StoreResult<ScimGroup> {
    let mut c = Cells::new(row);
    let group = Group::from_cells(&mut c)?;
    Ok(ScimGroup { group, external_id: c.opt_text()?, version: c.int()?, modified: c.time()?, members: Vec::new() })
}

/// The user's columns as both writes bind them: `user_params` ($1..$22), then SCIM's own
/// ($23..$32).
fn scim_user_params(u: &ScimUser) -> Vec<Param> {
    let mut p = user_params(&u.user);
    p.extend([
        u.external_id.clone().into(),
        u.given_name.clone().into(),
        fold_opt(u.given_name.as_deref()),
        u.family_name.clone().into(),
        fold_opt(u.family_name.as_deref()),
        u.formatted_name.clone().into(),
        fold_opt(u.formatted_name.as_deref()),
        u.user_type.clone().into(),
        fold_opt(u.user_type.as_deref()),
        ts(u.modified),
    ]);
    p
}

/// Which table a condition is about.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Table {
    Users,
    Groups,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Groups => "groups",
        }
    }
}

/// The SQL expression a field compares and sorts on (the folded column for text that ignores
/// case). `None` for `Member`, which is a join.
fn column(table: Table, f: ScimField) -> StoreResult<&'static str> {
    use ScimField as F;
    Ok(match (table, f) {
        (_, F::Id) => "id",
        (_, F::ExternalId) => "external_id",
        (_, F::Created) => "created_at",
        (_, F::LastModified) => "COALESCE(modified_at, created_at)",
        (_, F::DisplayName) => "display_name_fold",
        (Table::Users, F::UserName) => "upn_key",
        (Table::Users, F::GivenName) => "given_name_fold",
        (Table::Users, F::FamilyName) => "family_name_fold",
        (Table::Users, F::Formatted) => "formatted_name_fold",
        (Table::Users, F::Title) => "job_title_fold",
        // SCIM's own userType, else Graph's when it is Guest (as the user is rendered).
        (Table::Users, F::UserType) => "COALESCE(scim_user_type_fold, CASE WHEN user_type = 'Guest' THEN 'guest' END)",
        (Table::Users, F::Active) => "account_enabled",
        (Table::Users, F::Email) => "mail_fold",
        (Table::Users, F::Locality) => "city_fold",
        (Table::Users, F::Country) => "country_fold",
        (Table::Users, F::EmployeeNumber) => "employee_id_fold",
        (Table::Users, F::Organization) => "company_name_fold",
        (Table::Users, F::Department) => "department_fold",
        (Table::Users, F::Manager) => "manager_id",
        _ => return Err(StoreError::Internal(format!("{f:?} is not a column of {}", table.name()))),
    })
}

/// Builds a condition's SQL and its parameters.
struct Compiler {
    table: Table,
    params: Vec<Param>,
}

impl Compiler {
    fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }

    fn cond(&mut self, c: &ScimCond) -> StoreResult<String> {
        Ok(match c {
            ScimCond::All(v) if v.is_empty() => "1 = 1".to_owned(),
            ScimCond::Any(v) if v.is_empty() => "1 = 0".to_owned(),
            ScimCond::All(v) => {
                let parts = v.iter().map(|c| self.cond(c)).collect::<StoreResult<Vec<_>>>()?;
                format!("({})", parts.join(" AND "))
            }
            ScimCond::Any(v) => {
                let parts = v.iter().map(|c| self.cond(c)).collect::<StoreResult<Vec<_>>>()?;
                format!("({})", parts.join(" OR "))
            }
            ScimCond::Not(c) => format!("(NOT {})", self.cond(c)?),
            ScimCond::Const(true) => "1 = 1".to_owned(),
            ScimCond::Const(false) => "1 = 0".to_owned(),
            ScimCond::Present(ScimField::Member) => self.member("1 = 1"),
            ScimCond::Present(f) => {
                let c = column(self.table, *f)?;
                format!("({c} IS NOT NULL AND {c} <> '')")
            }
            ScimCond::Bool { field, value } => {
                let c = column(self.table, *field)?;
                format!("{c} = {}", self.bind(Param::Bool(Some(*value))))
            }
            ScimCond::Time { field, op, value } => {
                let c = column(self.table, *field)?;
                let p = self.bind(ts(*value));
                let op = match op {
                    TextOp::Eq => "=",
                    TextOp::Ne => "<>",
                    TextOp::Gt => ">",
                    TextOp::Ge => ">=",
                    TextOp::Lt => "<",
                    TextOp::Le => "<=",
                    TextOp::Co | TextOp::Sw | TextOp::Ew => {
                        return Err(StoreError::Internal("a date-time compared as text".into()));
                    }
                };
                format!("{c} {op} {p}")
            }
            ScimCond::Text { field: ScimField::Member, op: TextOp::Ne, value } => {
                format!("(NOT {})", self.member_text(TextOp::Eq, value))
            }
            ScimCond::Text { field: ScimField::Member, op, value } => self.member_text(*op, value),
            ScimCond::Text { field, op, value } => {
                let c = column(self.table, *field)?;
                self.text(c, *op, value)
            }
        })
    }

    /// A two-valued text test of `c` (an absent value passes only `ne`).
    fn text(&mut self, c: &str, op: TextOp, value: &str) -> String {
        let bind = |s: &mut Self| s.bind(Param::Text(Some(value.to_owned())));
        let test = match op {
            TextOp::Ne => return format!("({c} IS NULL OR {c} <> {})", bind(self)),
            TextOp::Eq => format!("{c} = {}", bind(self)),
            TextOp::Gt => format!("{c} > {}", bind(self)),
            TextOp::Ge => format!("{c} >= {}", bind(self)),
            TextOp::Lt => format!("{c} < {}", bind(self)),
            TextOp::Le => format!("{c} <= {}", bind(self)),
            // The value occurs in the column when removing it changes the column.
            TextOp::Co => format!("replace({c}, {}, '') <> {c}", bind(self)),
            TextOp::Sw => {
                let (a, b) = (bind(self), bind(self));
                format!("substr({c}, 1, length({a})) = {b}")
            }
            TextOp::Ew => {
                let (a, b, d) = (bind(self), bind(self), bind(self));
                format!("length({c}) >= length({a}) AND substr({c}, length({c}) - length({b}) + 1) = {d}")
            }
        };
        format!("({c} IS NOT NULL AND {test})")
    }

    fn member(&self, test: &str) -> String {
        format!("EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = groups.id AND {test})")
    }

    fn member_text(&mut self, op: TextOp, value: &str) -> String {
        let t = self.text("m.user_id", op, value);
        self.member(&t)
    }
}

/// `WHERE …` and `ORDER BY …` of a query, with their parameters.
fn clauses(table: Table, q: &ScimQuery) -> StoreResult<(String, String, Vec<Param>)> {
    let mut c = Compiler { table, params: Vec::new() };
    let condition = match &q.filter {
        Some(f) => c.cond(f)?,
        None => "1 = 1".to_owned(),
    };
    let dir = if q.descending { "DESC" } else { "ASC" };
    let order = match q.sort {
        None | Some(ScimField::Id) => format!("id {dir}"),
        Some(f) => {
            let col = column(table, f)?;
            // Absent values last, whichever the direction (both databases agree on booleans).
            format!("({col} IS NULL), {col} {dir}, id {dir}")
        }
    };
    Ok((condition, order, c.params))
}

impl SqlStore {
    /// The page and the total of a SCIM list over `table`.
    async fn scim_page(
        &self,
        table: Table,
        columns: &str,
        q: &ScimQuery,
    ) -> StoreResult<(Vec<crate::driver::Row>, u64)> {
        let (condition, order, mut params) = clauses(table, q)?;
        let count_sql = format!("SELECT COUNT(*) FROM {} WHERE {condition}", table.name());
        let total = self.driver.fetch(&count_sql, &params).await?;
        let total = total.first().map(|r| Cells::new(r).int()).transpose()?.unwrap_or(0);
        let total = u64::try_from(total).unwrap_or(0);
        if q.limit == 0 || q.offset >= total {
            return Ok((Vec::new(), total));
        }
        let limit = bind_int(&mut params, i64::try_from(q.limit).unwrap_or(i64::MAX));
        let offset = bind_int(&mut params, i64::try_from(q.offset).unwrap_or(i64::MAX));
        let sql = format!(
            "SELECT {columns} FROM {} WHERE {condition} ORDER BY {order} LIMIT {limit} OFFSET {offset}",
            table.name()
        );
        Ok((self.driver.fetch(&sql, &params).await?, total))
    }

    /// Fills the members of `groups` (sorted by id, each group's members sorted).
    async fn fill_members(&self, groups: &mut [ScimGroup]) -> StoreResult<()> {
        if groups.is_empty() {
            return Ok(());
        }
        let keys = groups.iter().map(|g| g.group.id.to_string()).collect();
        let rows = self
            .fetch_in("SELECT group_id, user_id FROM group_members WHERE group_id", keys, "ORDER BY user_id")
            .await?;
        let mut by_group: std::collections::HashMap<GroupId, Vec<UserId>> = std::collections::HashMap::new();
        for r in &rows {
            let mut c = Cells::new(r);
            let g: GroupId = c.parse()?;
            by_group.entry(g).or_default().push(c.parse()?);
        }
        for g in groups {
            let mut m = by_group.remove(&g.group.id).unwrap_or_default();
            m.sort_unstable();
            g.members = m;
        }
        Ok(())
    }

    /// Runs `sql` and records `events` in one transaction; the statement's rows touched.
    async fn write_with_events(&self, sql: &str, params: &[Param], events: &[AuditEvent]) -> StoreResult<u64> {
        let mut tx = self.driver.begin().await?;
        let n = tx.execute(sql, params).await?;
        if n > 0 {
            lifecycle::insert_events(&mut tx, self.driver.arrays(), events).await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    pub(super) async fn scim_user_impl(&self, uid: UserId) -> StoreResult<Option<ScimUser>> {
        let sql = format!("SELECT {} FROM users WHERE id = $1", user_columns());
        let rows = self.driver.fetch(&sql, &[id(uid)]).await?;
        rows.first().map(read_user).transpose()
    }

    pub(super) async fn scim_users_impl(&self, q: &ScimQuery) -> StoreResult<ScimPage<ScimUser>> {
        let (rows, total) = self.scim_page(Table::Users, &user_columns(), q).await?;
        Ok(ScimPage { items: rows.iter().map(read_user).collect::<StoreResult<_>>()?, total })
    }

    pub(super) async fn insert_scim_user_impl(&self, u: &ScimUser, events: &[AuditEvent]) -> StoreResult<()> {
        let mut params = scim_user_params(u);
        params.push(ts(u.user.created_date_time));
        let sql = "INSERT INTO users (id, display_name, user_principal_name, upn_key, mail, user_type, \
             account_enabled, department, job_title, company_name, employee_id, city, country, manager_id, \
             display_name_fold, mail_fold, department_fold, job_title_fold, company_name_fold, employee_id_fold, \
             city_fold, country_fold, external_id, given_name, given_name_fold, family_name, family_name_fold, \
             formatted_name, formatted_name_fold, scim_user_type, scim_user_type_fold, modified_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
             $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33)";
        match self.write_with_events(sql, &params, events).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let duplicate = || format!("A user with userName '{}' already exists.", u.user.user_principal_name);
                Err(self.insert_error(e, duplicate, &user_refs(&u.user)).await)
            }
        }
    }

    pub(super) async fn update_scim_user_impl(
        &self,
        u: &ScimUser,
        read_version: i64,
        events: &[AuditEvent],
    ) -> StoreResult<bool> {
        let mut params = scim_user_params(u);
        params.push(read_version.into());
        let sql = "UPDATE users SET display_name = $2, user_principal_name = $3, upn_key = $4, mail = $5, \
             user_type = $6, account_enabled = $7, department = $8, job_title = $9, company_name = $10, \
             employee_id = $11, city = $12, country = $13, manager_id = $14, display_name_fold = $15, \
             mail_fold = $16, department_fold = $17, job_title_fold = $18, company_name_fold = $19, \
             employee_id_fold = $20, city_fold = $21, country_fold = $22, external_id = $23, given_name = $24, \
             given_name_fold = $25, family_name = $26, family_name_fold = $27, formatted_name = $28, \
             formatted_name_fold = $29, scim_user_type = $30, scim_user_type_fold = $31, modified_at = $32, \
             row_version = row_version + 1 WHERE id = $1 AND row_version = $33";
        match self.write_with_events(sql, &params, events).await {
            Ok(0) => match self.changed_since(0, "users", "user", u.user.id).await {
                Err(StoreError::Conflict(_)) => Ok(false),
                Err(e) => Err(e),
                Ok(()) => Ok(false),
            },
            Ok(_) => Ok(true),
            Err(e) => {
                let duplicate = || format!("A user with userName '{}' already exists.", u.user.user_principal_name);
                Err(self.insert_error(e, duplicate, &user_refs(&u.user)).await)
            }
        }
    }

    pub(super) async fn delete_scim_user_impl(&self, uid: UserId, event: &AuditEvent) -> StoreResult<()> {
        let n =
            self.write_with_events("DELETE FROM users WHERE id = $1", &[id(uid)], std::slice::from_ref(event)).await?;
        if n == 0 { Err(StoreError::not_found("user", uid)) } else { Ok(()) }
    }

    pub(super) async fn scim_group_impl(&self, gid: GroupId) -> StoreResult<Option<ScimGroup>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = $1");
        let rows = self.driver.fetch(&sql, &[id(gid)]).await?;
        let mut groups = rows.iter().map(read_group).collect::<StoreResult<Vec<_>>>()?;
        self.fill_members(&mut groups).await?;
        Ok(groups.into_iter().next())
    }

    pub(super) async fn scim_groups_impl(&self, q: &ScimQuery) -> StoreResult<ScimPage<ScimGroup>> {
        let (rows, total) = self.scim_page(Table::Groups, GROUP_COLUMNS, q).await?;
        let mut items = rows.iter().map(read_group).collect::<StoreResult<Vec<_>>>()?;
        self.fill_members(&mut items).await?;
        Ok(ScimPage { items, total })
    }

    pub(super) async fn insert_scim_group_impl(&self, g: &ScimGroup, events: &[AuditEvent]) -> StoreResult<()> {
        let mut params = group_params(&g.group);
        params.extend([ts(g.group.created_date_time), g.external_id.clone().into(), ts(g.modified)]);
        let mut tx = self.driver.begin().await?;
        let written = async {
            tx.execute(
                "INSERT INTO groups (id, display_name, description, mail_nickname, mail_enabled, security_enabled, \
                 display_name_fold, description_fold, mail_nickname_fold, created_at, external_id, modified_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                &params,
            )
            .await?;
            add_members(&mut tx, g.group.id, &g.members).await?;
            lifecycle::insert_events(&mut tx, self.driver.arrays(), events).await
        }
        .await;
        match written {
            Ok(()) => tx.commit().await,
            Err(e) => {
                drop(tx);
                Err(self.member_error(e, &g.members).await)
            }
        }
    }

    pub(super) async fn update_scim_group_impl(
        &self,
        g: &ScimGroup,
        added: &[UserId],
        removed: &[UserId],
        read_version: i64,
        events: &[AuditEvent],
    ) -> StoreResult<bool> {
        let mut tx = self.driver.begin().await?;
        let n = tx
            .execute(
                "UPDATE groups SET display_name = $2, display_name_fold = $3, external_id = $4, modified_at = $5, \
                 row_version = row_version + 1 WHERE id = $1 AND row_version = $6",
                &[
                    id(g.group.id),
                    g.group.display_name.as_str().into(),
                    fold(g.group.display_name.as_str()),
                    g.external_id.clone().into(),
                    ts(g.modified),
                    read_version.into(),
                ],
            )
            .await?;
        if n == 0 {
            let exists = exists_in(&mut tx, "groups", id(g.group.id)).await?;
            tx.commit().await?;
            return if exists { Ok(false) } else { Err(StoreError::not_found("group", g.group.id)) };
        }
        let written = async {
            add_members(&mut tx, g.group.id, added).await?;
            for chunk in removed.chunks(200) {
                let marks: Vec<String> = (2..chunk.len() + 2).map(|i| format!("${i}")).collect();
                let sql =
                    format!("DELETE FROM group_members WHERE group_id = $1 AND user_id IN ({})", marks.join(", "));
                let mut params = vec![id(g.group.id)];
                params.extend(chunk.iter().map(|u| id(*u)));
                tx.execute(&sql, &params).await?;
            }
            lifecycle::insert_events(&mut tx, self.driver.arrays(), events).await
        }
        .await;
        match written {
            Ok(()) => {
                tx.commit().await?;
                Ok(true)
            }
            Err(e) => {
                drop(tx);
                Err(self.member_error(e, added).await)
            }
        }
    }

    /// A failed member insert names the member that is not a user.
    async fn member_error(&self, e: StoreError, members: &[UserId]) -> StoreError {
        if !is_violation(&e, FOREIGN_KEY_VIOLATION) {
            return e;
        }
        let refs: Vec<Ref> = members.iter().map(|u| ("users", "member (user)", u.to_string())).collect();
        self.insert_error(e, String::new, &refs).await
    }

    pub(super) async fn delete_scim_group_impl(&self, gid: GroupId, event: &AuditEvent) -> StoreResult<()> {
        let mut tx = self.driver.begin().await?;
        // As `delete_group`: the row is locked first, so a resource cannot be added for the
        // group meanwhile.
        if !lock_row(&mut tx, "groups", id(gid)).await? {
            tx.commit().await?;
            return Err(StoreError::not_found("group", gid));
        }
        let used = count_in(
            &mut tx,
            "SELECT COUNT(*) FROM resources WHERE origin_system = $1 AND origin_id = $2",
            &[catalog::ORIGIN_AAD_GROUP.into(), id(gid)],
        )
        .await?;
        directory::check_group_deletable(used)?;
        tx.execute("DELETE FROM groups WHERE id = $1", &[id(gid)]).await?;
        lifecycle::record_in(&mut tx, event).await?;
        tx.commit().await
    }
}

fn bind_int(params: &mut Vec<Param>, v: i64) -> String {
    params.push(Param::Int(Some(v)));
    format!("${}", params.len())
}

/// Adds members inside a transaction, 120 pairs a statement; pairs already there are skipped.
async fn add_members(tx: &mut Box<dyn Tx>, group: GroupId, members: &[UserId]) -> StoreResult<()> {
    for chunk in members.chunks(120) {
        let tuples: Vec<String> = (0..chunk.len()).map(|i| format!("($1, ${})", i + 2)).collect();
        let sql = format!(
            "INSERT INTO group_members (group_id, user_id) VALUES {} ON CONFLICT DO NOTHING",
            tuples.join(", ")
        );
        let mut params = vec![id(group)];
        params.extend(chunk.iter().map(|u| id(*u)));
        tx.execute(&sql, &params).await?;
    }
    Ok(())
}
