//! Who may request each policy's package for themselves, kept as indexed facts next to the
//! policy (migration 0005), and the condition that selects the packages one user may request
//! (`filterByCurrentUser(on='allowedRequestor')`) from them.
//!
//! The facts are `steward_domain::eligibility::SelfRequestors::of(settings)`, written in the
//! same transaction as the policy: its kind in `assignment_policies.self_requestors`, and one
//! `policy_requestors` row per requestor it admits — `everyone`, `members`, `guests`,
//! `configuredOrganizations`, `user:<id>`, `group:<id>`, `rule:<key>` or `organization:<id>`.
//! Rule texts are stored once each in `membership_rules`, keyed by their SHA-256, and never
//! deleted.
//!
//! Answering for one user: the user's own requestors are listed — `everyone`, their type, their
//! id, their direct groups, the rules they match (every stored rule evaluated once per request;
//! parsed once per process, see `RuleCache`) and, for a guest, the connected organization of
//! their email's domain as it is now (`organization:<id>`, and `configuredOrganizations` while
//! it is configured) — and a package is theirs to request
//! exactly when one of its `policy_requestors` rows names one of them. The list travels as one
//! JSON parameter (`Driver::text_set`), so neither the SQL text nor its parameters grow with
//! the number of policies or packages. The condition takes one of two shapes, chosen per
//! request by one bounded probe (`LIMIT list_limit + 1` rows of the requestor index):
//!
//! - few admitting rows: the package ids themselves, a short list both databases look up by
//!   primary key and sort;
//! - many: a correlated `EXISTS` per package, which both databases run as one index range per
//!   package while walking the order of the page, stopping at the page's `LIMIT` (which comes
//!   soon, since many packages qualify). Being a single `EXISTS` without `OR`, PostgreSQL plans
//!   it as a semi-join. Counting uses the set of admitted ids instead.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use steward_app::StoreError;
use steward_domain::connected;
use steward_domain::directory::User;
use steward_domain::eligibility::SelfRequestors;
use steward_domain::enums::ConnectedOrganizationState;
use steward_domain::policy::AssignmentPolicy;
use steward_domain::rule::MembershipRule;

use crate::compile::Scope;
use crate::driver::{Driver, Param, Tx};
use crate::rows::Cells;

/// Rows per multi-row `INSERT` (3 parameters each), far below both databases' limits.
const INSERT_CHUNK: usize = 300;

/// The key of a rule text in `membership_rules`: the hex SHA-256 of the text.
pub(crate) fn rule_key(text: &str) -> String {
    let mut out = String::with_capacity(64);
    for b in Sha256::digest(text.as_bytes()) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The `policy_requestors` rows of a policy admitting `who`.
fn requestors(who: &SelfRequestors) -> Vec<String> {
    match who {
        SelfRequestors::Nobody => Vec::new(),
        SelfRequestors::Everyone
        | SelfRequestors::Members
        | SelfRequestors::Guests
        | SelfRequestors::ConfiguredOrganizations => vec![who.kind().to_owned()],
        SelfRequestors::Named(n) => n
            .users
            .iter()
            .map(|u| format!("user:{u}"))
            .chain(n.groups.iter().map(|g| format!("group:{g}")))
            .chain(n.rules.iter().map(|r| format!("rule:{}", rule_key(r))))
            .chain(n.organizations.iter().map(|o| format!("organization:{o}")))
            .collect(),
    }
}

/// Writes the facts of `p` (`who` is `SelfRequestors::of(&p.settings)`, whose kind the caller
/// wrote into the policy row) inside `tx`, replacing any earlier ones.
pub(crate) async fn write_in(
    tx: &mut Box<dyn Tx>,
    p: &AssignmentPolicy,
    who: &SelfRequestors,
) -> Result<(), StoreError> {
    let policy = p.id.to_string();
    tx.execute("DELETE FROM policy_requestors WHERE policy_id = $1", &[Param::Text(Some(policy.clone()))]).await?;
    if let SelfRequestors::Named(named) = who {
        for text in &named.rules {
            tx.execute(
                "INSERT INTO membership_rules (rule_key, rule) VALUES ($1, $2) ON CONFLICT (rule_key) DO NOTHING",
                &[Param::Text(Some(rule_key(text))), Param::Text(Some(text.clone()))],
            )
            .await?;
        }
    }
    // `SelfRequestors::of` de-duplicates users, groups and rule texts, and distinct texts have
    // distinct keys, so every row is new.
    let rows = requestors(who);
    let package = p.access_package_id.to_string();
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut params = Vec::with_capacity(chunk.len() * 3);
        let mut values = Vec::with_capacity(chunk.len());
        for requestor in chunk {
            let n = params.len();
            values.push(format!("(${}, ${}, ${})", n + 1, n + 2, n + 3));
            params.push(Param::Text(Some(policy.clone())));
            params.push(Param::Text(Some(package.clone())));
            params.push(Param::Text(Some(requestor.clone())));
        }
        let sql = format!(
            "INSERT INTO policy_requestors (policy_id, access_package_id, requestor) VALUES {}",
            values.join(", ")
        );
        tx.execute(&sql, &params).await?;
    }
    Ok(())
}

/// The rules of `membership_rules`, parsed, for the life of the process: one shared snapshot,
/// replaced whole when the table has grown. Rows of that table are never deleted or changed
/// (a key is the hash of its text), so a snapshot with as many rules as the table has is the
/// table.
#[derive(Debug, Default)]
pub(crate) struct RuleCache(Mutex<Arc<Rules>>);

/// Parsed rules by key; `None` for a text that does not parse, which admits nobody (as
/// `in_subject_set` treats it).
type Rules = HashMap<String, Option<Arc<MembershipRule>>>;

impl RuleCache {
    fn snapshot(&self) -> Arc<Rules> {
        self.0.lock().map(|g| Arc::clone(&g)).unwrap_or_default()
    }

    fn replace(&self, rules: Arc<Rules>) {
        if let Ok(mut g) = self.0.lock() {
            *g = rules;
        }
    }
}

fn json_list(items: &[String]) -> Result<Param, StoreError> {
    serde_json::to_string(items)
        .map(|s| Param::Text(Some(s)))
        .map_err(|e| StoreError::Internal(format!("cannot encode a list: {e}")))
}

/// Every rule in `membership_rules`, parsed: the cached snapshot while the table has as many
/// rows (one `COUNT(*)`), else the table read again, parsing only texts not seen before.
/// Includes rules no policy uses any more; matching one of those admits to nothing.
async fn all_rules(driver: &dyn Driver, cache: &RuleCache) -> Result<Arc<Rules>, StoreError> {
    let known = cache.snapshot();
    let rows = driver.fetch("SELECT COUNT(*) FROM membership_rules", &[]).await?;
    let n = rows.first().map(|r| Cells::new(r).int()).transpose()?.unwrap_or(0);
    if usize::try_from(n).is_ok_and(|n| n == known.len()) {
        return Ok(known);
    }
    let rows = driver.fetch("SELECT rule_key, rule FROM membership_rules", &[]).await?;
    let mut rules = Rules::with_capacity(rows.len());
    for r in &rows {
        let mut c = Cells::new(r);
        let (key, text) = (c.text()?, c.text()?);
        let parsed = match known.get(&key) {
            Some(p) => p.clone(),
            None => MembershipRule::parse(&text).ok().map(Arc::new),
        };
        rules.insert(key, parsed);
    }
    let rules = Arc::new(rules);
    cache.replace(Arc::clone(&rules));
    Ok(rules)
}

/// The requestors `user` is: everyone, their type, their id, their direct groups, the rules
/// they match and their connected organization (the same strings `requestors` writes for
/// policies).
async fn requestors_of(driver: &dyn Driver, cache: &RuleCache, user: &User) -> Result<Vec<String>, StoreError> {
    let mut out = vec![
        SelfRequestors::Everyone.kind().to_owned(),
        SelfRequestors::kind_for(user.user_type).to_owned(),
        format!("user:{}", user.id),
    ];
    let groups = driver
        .fetch("SELECT group_id FROM group_members WHERE user_id = $1", &[Param::Text(Some(user.id.to_string()))])
        .await?;
    for g in &groups {
        out.push(format!("group:{}", Cells::new(g).text()?));
    }
    for (key, rule) in all_rules(driver, cache).await?.iter() {
        if rule.as_ref().is_some_and(|r| r.matches(user)) {
            out.push(format!("rule:{key}"));
        }
    }
    // The connected organization of a guest's email domain (members belong to none).
    if let Some(domain) = connected::external_domain(user) {
        let rows = driver
            .fetch(
                "SELECT c.id, c.state FROM organization_sources s JOIN connected_organizations c \
                 ON c.id = s.organization_id WHERE s.source_key = $1",
                &[Param::Text(Some(connected::domain_key(&domain)))],
            )
            .await?;
        if let Some(r) = rows.first() {
            let mut c = Cells::new(r);
            out.push(format!("organization:{}", c.text()?));
            if c.text()? == ConnectedOrganizationState::Configured.as_str() {
                out.push(SelfRequestors::ConfiguredOrganizations.kind().to_owned());
            }
        }
    }
    Ok(out)
}

/// The condition on `access_packages` that keeps the packages `user` may request for
/// themselves: exactly those with a policy for which `eligibility::self_request_allowed`
/// holds, given the user's direct groups. When at most `list_limit` rows of
/// `policy_requestors` admit the user, the condition lists the package ids; otherwise it
/// tests each package (see the module's header).
pub(crate) async fn admitting(
    driver: &dyn Driver,
    cache: &RuleCache,
    user: &User,
    list_limit: i64,
) -> Result<Scope, StoreError> {
    if !user.account_enabled {
        return Ok(Scope::new("1 = 0".into(), Vec::new()));
    }
    let mine = json_list(&requestors_of(driver, cache, user).await?)?;
    // Counted in the database: a dense answer would be thousands of rows to ship.
    let probe = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM policy_requestors WHERE requestor IN ({}) LIMIT $2) AS admitting",
        driver.text_set("$1")
    );
    let rows = driver.fetch(&probe, &[mine.clone(), Param::Int(Some(list_limit.saturating_add(1)))]).await?;
    let admitting = rows.first().map(|r| Cells::new(r).int()).transpose()?.unwrap_or(0);
    if admitting <= list_limit {
        let ids = format!(
            "SELECT DISTINCT access_package_id FROM policy_requestors WHERE requestor IN ({})",
            driver.text_set("$1")
        );
        let rows = driver.fetch(&ids, std::slice::from_ref(&mine)).await?;
        let ids = rows.iter().map(|r| Cells::new(r).text()).collect::<Result<Vec<String>, StoreError>>()?;
        if ids.is_empty() {
            return Ok(Scope::new("1 = 0".into(), Vec::new()));
        }
        return Ok(Scope::new(format!("id IN ({})", driver.text_set("$1")), vec![json_list(&ids)?]));
    }
    let set = driver.text_set("$1");
    Ok(Scope {
        // `requestor || ''` is the requestor itself, but no index serves it: each package's
        // few rows are read through the package index and looked up in the user's list.
        // Offered the index on `requestor`, SQLite's planner would probe it once per list entry
        // and package instead.
        sql: format!(
            "EXISTS (SELECT 1 FROM policy_requestors r WHERE r.access_package_id = access_packages.id \
             AND r.requestor || '' IN ({set}))"
        ),
        // Counting visits every package: collecting the admitted ids once through the requestor
        // index beats one probe per package.
        count: Some(format!("id IN (SELECT access_package_id FROM policy_requestors WHERE requestor IN ({set}))")),
        params: vec![mine],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_keys_are_the_hex_sha256_of_the_text() {
        assert_eq!(rule_key(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_ne!(rule_key("user.city -eq \"a\""), rule_key("user.city -eq \"A\""));
        assert_eq!(rule_key("x").len(), 64);
    }
}
