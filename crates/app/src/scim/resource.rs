//! The SCIM representations of Steward's users and groups: rendered from the stored rows
//! (without `meta`, which the web layer adds with the resource's location), their entity tags,
//! and request bodies read back into what Steward keeps.
//!
//! Only what Steward stores is rendered, and only what is rendered is announced in `/Schemas`
//! (the web layer's `discovery`), so a client that writes any announced attribute reads the
//! same value back. Reading a body is lenient where SCIM allows (attribute names in any case,
//! unknown attributes ignored, `null` as absent, Entra's `"True"`/`"False"` booleans) and
//! strict about types, naming the attribute in every error (`invalidValue`).

use jiff::Timestamp;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use steward_domain::directory::{self, Group, User};
use steward_domain::enums::UserType;
use steward_domain::ids::{GroupId, UserId};
use steward_domain::text::{DisplayName, clip};

use super::filter::parse_bool;
use super::{ENTERPRISE_USER, GROUP_SCHEMA, ScimError, ScimGroup, ScimUser, USER_SCHEMA};

/// The longest userName accepted: as long as a userPrincipalName may be.
pub const USER_NAME_MAX: usize = directory::UPN_MAX;

/// The SCIM User, without `meta`. `base` is the SCIM root URL for `$ref`s (`""` for the
/// entity tag, which must not depend on the host a client used).
pub fn render_user(u: &ScimUser, base: &str) -> Value {
    let g = &u.user;
    let mut m = Map::new();
    let mut schemas = vec![json!(USER_SCHEMA)];
    m.insert("id".into(), json!(g.id.to_string()));
    if let Some(x) = &u.external_id {
        m.insert("externalId".into(), json!(x));
    }
    m.insert("userName".into(), json!(g.user_principal_name));
    let mut name = Map::new();
    for (k, v) in [("formatted", &u.formatted_name), ("familyName", &u.family_name), ("givenName", &u.given_name)] {
        if let Some(v) = v {
            name.insert(k.into(), json!(v));
        }
    }
    if !name.is_empty() {
        m.insert("name".into(), Value::Object(name));
    }
    m.insert("displayName".into(), json!(g.display_name.as_str()));
    if let Some(t) = &g.job_title {
        m.insert("title".into(), json!(t));
    }
    match (&u.user_type, g.user_type) {
        (Some(t), _) => {
            m.insert("userType".into(), json!(t));
        }
        (None, UserType::Guest) => {
            m.insert("userType".into(), json!("Guest"));
        }
        (None, _) => {}
    }
    m.insert("active".into(), json!(g.account_enabled));
    if let Some(mail) = &g.mail {
        m.insert("emails".into(), json!([{"value": mail, "type": "work"}]));
    }
    if g.city.is_some() || g.country.is_some() {
        let mut a = Map::new();
        a.insert("type".into(), json!("work"));
        if let Some(c) = &g.city {
            a.insert("locality".into(), json!(c));
        }
        if let Some(c) = &g.country {
            a.insert("country".into(), json!(c));
        }
        m.insert("addresses".into(), json!([a]));
    }
    let mut ext = Map::new();
    for (k, v) in [("employeeNumber", &g.employee_id), ("organization", &g.company_name), ("department", &g.department)]
    {
        if let Some(v) = v {
            ext.insert(k.into(), json!(v));
        }
    }
    if let Some(mgr) = g.manager {
        ext.insert("manager".into(), json!({"value": mgr.to_string(), "$ref": format!("{base}/Users/{mgr}")}));
    }
    if !ext.is_empty() {
        schemas.push(json!(ENTERPRISE_USER));
        m.insert(ENTERPRISE_USER.into(), Value::Object(ext));
    }
    m.insert("schemas".into(), Value::Array(schemas));
    Value::Object(m)
}

/// The SCIM Group, without `meta`.
pub fn render_group(g: &ScimGroup, base: &str) -> Value {
    let mut m = Map::new();
    m.insert("schemas".into(), json!([GROUP_SCHEMA]));
    m.insert("id".into(), json!(g.group.id.to_string()));
    if let Some(x) = &g.external_id {
        m.insert("externalId".into(), json!(x));
    }
    m.insert("displayName".into(), json!(g.group.display_name.as_str()));
    if !g.members.is_empty() {
        let members: Vec<Value> = g
            .members
            .iter()
            .map(|u| json!({"value": u.to_string(), "$ref": format!("{base}/Users/{u}"), "type": "User"}))
            .collect();
        m.insert("members".into(), Value::Array(members));
    }
    Value::Object(m)
}

/// A weak entity tag of a representation: it changes exactly when the representation does,
/// whoever changed it (a SCIM client, Graph, a delivery adding a member).
fn etag_of(v: &Value) -> String {
    let digest = Sha256::digest(v.to_string().as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}

pub fn user_etag(u: &ScimUser) -> String {
    etag_of(&render_user(u, ""))
}

pub fn group_etag(g: &ScimGroup) -> String {
    etag_of(&render_group(g, ""))
}

/// `meta` of a resource.
pub fn meta(resource_type: &str, created: Timestamp, modified: Timestamp, etag: &str, location: &str) -> Value {
    let fmt = steward_domain::time::format_datetime;
    json!({
        "resourceType": resource_type,
        "created": fmt(created),
        "lastModified": fmt(modified.max(created)),
        "version": etag,
        "location": location,
    })
}

/// The names of the attributes whose values differ between two states of a user, for the
/// audit trail (names only, never values).
pub fn user_changes(a: &ScimUser, b: &ScimUser) -> Vec<&'static str> {
    let (x, y) = (&a.user, &b.user);
    let mut out = Vec::new();
    let mut diff = |name, changed: bool| {
        if changed {
            out.push(name);
        }
    };
    diff("userName", x.user_principal_name != y.user_principal_name);
    diff("externalId", a.external_id != b.external_id);
    diff("displayName", x.display_name != y.display_name);
    diff("name.givenName", a.given_name != b.given_name);
    diff("name.familyName", a.family_name != b.family_name);
    diff("name.formatted", a.formatted_name != b.formatted_name);
    diff("title", x.job_title != y.job_title);
    diff("userType", a.user_type != b.user_type || x.user_type != y.user_type);
    diff("active", x.account_enabled != y.account_enabled);
    diff("emails", x.mail != y.mail);
    diff("addresses", x.city != y.city || x.country != y.country);
    diff("employeeNumber", x.employee_id != y.employee_id);
    diff("organization", x.company_name != y.company_name);
    diff("department", x.department != y.department);
    diff("manager", x.manager != y.manager);
    out
}

pub fn group_changes(a: &ScimGroup, b: &ScimGroup) -> Vec<&'static str> {
    let mut out = Vec::new();
    if a.group.display_name != b.group.display_name {
        out.push("displayName");
    }
    if a.external_id != b.external_id {
        out.push("externalId");
    }
    out
}

/// A JSON object read by attribute name, ignoring case as SCIM does.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    /// Where it is, for messages (`name`, `emails[0]`).
    at: String,
}

impl<'a> Obj<'a> {
    fn of(v: &'a Value, at: impl Into<String>) -> Result<Self, ScimError> {
        let at = at.into();
        match v {
            Value::Object(map) => Ok(Self { map, at }),
            _ => Err(ScimError::invalid_value(if at.is_empty() {
                "The body must be a JSON object.".to_owned()
            } else {
                format!("'{at}' must be a JSON object.")
            })),
        }
    }

    fn path(&self, name: &str) -> String {
        if self.at.is_empty() { name.to_owned() } else { format!("{}.{name}", self.at) }
    }

    /// The value of an attribute, `null` being absent.
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v).filter(|v| !v.is_null())
    }

    /// A string attribute of at most `max` characters.
    fn string(&self, name: &str, max: usize) -> Result<Option<String>, ScimError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.chars().count() > max => Err(ScimError::invalid_value(format!(
                "'{}' is {} characters long; at most {max} are accepted.",
                self.path(name),
                s.chars().count()
            ))),
            Some(Value::String(s)) if s.chars().any(char::is_control) => {
                Err(ScimError::invalid_value(format!("'{}' must not contain control characters.", self.path(name))))
            }
            // An empty string is no value.
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ScimError::invalid_value(format!("'{}' must be a string.", self.path(name)))),
        }
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, ScimError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if parse_bool(s).is_some() => Ok(parse_bool(s)),
            Some(_) => Err(ScimError::invalid_value(format!("'{}' must be true or false.", self.path(name)))),
        }
    }

    fn object(&self, name: &str) -> Result<Option<Obj<'a>>, ScimError> {
        self.get(name).map(|v| Obj::of(v, self.path(name))).transpose()
    }

    /// A multi-valued attribute: an array (a single value is taken as an array of one).
    fn items(&self, name: &str) -> Vec<&'a Value> {
        match self.get(name) {
            None => Vec::new(),
            Some(Value::Array(a)) => a.iter().filter(|v| !v.is_null()).collect(),
            Some(v) => vec![v],
        }
    }
}

/// The item of a multi-valued attribute Steward keeps: the primary one, else the first of
/// type `work`, else the first.
fn chosen<'a>(parent: &Obj<'a>, name: &str) -> Result<Option<Obj<'a>>, ScimError> {
    let items: Vec<Obj<'a>> = parent
        .items(name)
        .into_iter()
        .enumerate()
        .map(|(i, v)| Obj::of(v, format!("{}[{i}]", parent.path(name))))
        .collect::<Result<_, _>>()?;
    let primary = items.iter().position(|o| matches!(o.boolean("primary"), Ok(Some(true))));
    let work =
        || items.iter().position(|o| matches!(o.get("type"), Some(Value::String(t)) if t.eq_ignore_ascii_case("work")));
    let i = primary.or_else(work).unwrap_or(0);
    Ok(items.into_iter().nth(i))
}

/// A user as a body describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserInput {
    pub user_name: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub formatted_name: Option<String>,
    pub title: Option<String>,
    pub user_type: Option<String>,
    pub active: Option<bool>,
    pub email: Option<String>,
    pub locality: Option<String>,
    pub country: Option<String>,
    pub employee_number: Option<String>,
    pub organization: Option<String>,
    pub department: Option<String>,
    /// The manager's id, as sent.
    pub manager: Option<String>,
}

const MAX: usize = directory::ATTRIBUTE_MAX;

/// Reads a SCIM User body.
pub fn read_user(v: &Value) -> Result<UserInput, ScimError> {
    let o = Obj::of(v, "")?;
    check_schemas(&o, USER_SCHEMA)?;
    let user_name = o.string("userName", USER_NAME_MAX)?.ok_or_else(|| {
        ScimError::invalid_value("userName is required: the user's unique sign-in name (Steward's userPrincipalName).")
    })?;
    if user_name.chars().any(char::is_whitespace) {
        return Err(ScimError::invalid_value(format!(
            "userName '{}' must not contain spaces.",
            clip(&user_name, USER_NAME_MAX)
        )));
    }
    let name = o.object("name")?;
    let name_part = |n: &str| name.as_ref().map(|o| o.string(n, MAX)).transpose().map(Option::flatten);
    let email = chosen(&o, "emails")?.map(|e| e.string("value", MAX)).transpose()?.flatten();
    let address = chosen(&o, "addresses")?;
    let address_part = |n: &str| address.as_ref().map(|o| o.string(n, MAX)).transpose().map(Option::flatten);
    // The enterprise extension: an object under its URN, or its attributes at the top level
    // under their full names (`urn:…:enterprise:2.0:User:department`), as some clients send.
    let ext = o.object(ENTERPRISE_USER)?;
    let ext_attr = |n: &str| -> Result<Option<String>, ScimError> {
        let nested = ext.as_ref().map(|e| e.string(n, MAX)).transpose()?.flatten();
        match nested {
            Some(v) => Ok(Some(v)),
            None => o.string(&format!("{ENTERPRISE_USER}:{n}"), MAX),
        }
    };
    let manager_value =
        ext.as_ref().and_then(|e| e.get("manager")).or_else(|| o.get(&format!("{ENTERPRISE_USER}:manager")));
    let manager = match manager_value {
        None => None,
        // Entra sends the manager's id as a plain string.
        Some(Value::String(s)) => Some(s.clone()).filter(|s| !s.is_empty()),
        Some(m @ Value::Object(_)) => Obj::of(m, "manager")?.string("value", MAX)?,
        Some(_) => {
            return Err(ScimError::invalid_value("'manager' must be an object with the manager's id as 'value'."));
        }
    };
    Ok(UserInput {
        user_name,
        external_id: o.string("externalId", MAX)?,
        display_name: o.string("displayName", steward_domain::text::DISPLAY_NAME_MAX)?,
        given_name: name_part("givenName")?,
        family_name: name_part("familyName")?,
        formatted_name: name_part("formatted")?,
        title: o.string("title", MAX)?,
        user_type: o.string("userType", MAX)?,
        active: o.boolean("active")?,
        email,
        locality: address_part("locality")?,
        country: address_part("country")?,
        employee_number: ext_attr("employeeNumber")?,
        organization: ext_attr("organization")?,
        department: ext_attr("department")?,
        manager,
    })
}

/// `schemas`, when sent, must name the resource's core schema.
fn check_schemas(o: &Obj<'_>, core: &str) -> Result<(), ScimError> {
    match o.get("schemas") {
        None => Ok(()),
        Some(Value::Array(a)) if a.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(core))) => Ok(()),
        Some(_) => Err(ScimError::invalid_syntax(format!("'schemas' must be a list naming {core}."))),
    }
}

impl UserInput {
    /// The user this input describes: a new one (`current` is `None`) or the replacement of
    /// `current`. Every attribute is as the input says (absent clears it), except `active`,
    /// which an input without it leaves as it was (true for a new user), and the display name,
    /// which Steward needs: without one it is made from the name or the userName.
    pub fn into_user(
        self,
        id: UserId,
        current: Option<&ScimUser>,
        manager: Option<UserId>,
        now: Timestamp,
    ) -> Result<ScimUser, ScimError> {
        let display = match self.display_name {
            Some(d) => d,
            None => self
                .formatted_name
                .clone()
                .or_else(|| {
                    let parts: Vec<&str> =
                        [&self.given_name, &self.family_name].into_iter().flatten().map(String::as_str).collect();
                    (!parts.is_empty()).then(|| parts.join(" "))
                })
                .unwrap_or_else(|| self.user_name.clone()),
        };
        let display_name = DisplayName::parse(clip(&display, steward_domain::text::DISPLAY_NAME_MAX))
            .map_err(|e| ScimError::invalid_value(e.to_string()))?;
        let guest = self.user_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("guest"));
        let user = User {
            id,
            display_name,
            user_principal_name: self.user_name,
            mail: self.email,
            user_type: if guest { UserType::Guest } else { UserType::Member },
            account_enabled: self.active.or(current.map(|c| c.user.account_enabled)).unwrap_or(true),
            department: self.department,
            job_title: self.title,
            company_name: self.organization,
            employee_id: self.employee_number,
            city: self.locality,
            country: self.country,
            created_date_time: current.map_or(now, |c| c.user.created_date_time),
            manager,
        };
        Ok(ScimUser {
            user,
            external_id: self.external_id,
            given_name: self.given_name,
            family_name: self.family_name,
            formatted_name: self.formatted_name,
            user_type: self.user_type,
            version: current.map_or(0, |c| c.version),
            modified: now,
        })
    }
}

/// A group as a body describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupInput {
    pub display_name: String,
    pub external_id: Option<String>,
    /// The members' ids as sent; `None` when the body has no `members`.
    pub members: Option<Vec<String>>,
}

/// Reads a SCIM Group body.
pub fn read_group(v: &Value) -> Result<GroupInput, ScimError> {
    let o = Obj::of(v, "")?;
    check_schemas(&o, GROUP_SCHEMA)?;
    let display_name = o
        .string("displayName", steward_domain::text::DISPLAY_NAME_MAX)?
        .ok_or_else(|| ScimError::invalid_value("displayName is required: every Steward group has a name."))?;
    let members = match o.get("members") {
        None => None,
        Some(_) => {
            let mut ids = Vec::new();
            for (i, m) in o.items("members").into_iter().enumerate() {
                let item = Obj::of(m, format!("members[{i}]"))?;
                if let Some(Value::String(t)) = item.get("type")
                    && !t.eq_ignore_ascii_case("user")
                {
                    return Err(ScimError::invalid_value(format!(
                        "members[{i}] is a {}: Steward's groups hold users only.",
                        clip(t, 40)
                    )));
                }
                // The id is `value`, or the last segment of `$ref`.
                let id = match item.string("value", 64)? {
                    Some(v) => v,
                    None => {
                        item.string("$ref", 2048)?.and_then(|r| r.rsplit('/').next().map(str::to_owned)).ok_or_else(
                            || ScimError::invalid_value(format!("members[{i}] needs the member's id as 'value'.")),
                        )?
                    }
                };
                ids.push(id);
            }
            Some(ids)
        }
    };
    Ok(GroupInput { display_name, external_id: o.string("externalId", MAX)?, members })
}

impl GroupInput {
    /// The group this input describes, with `members` (already checked).
    pub fn into_group(
        self,
        id: GroupId,
        current: Option<&ScimGroup>,
        members: Vec<UserId>,
        now: Timestamp,
    ) -> Result<ScimGroup, ScimError> {
        let display_name =
            DisplayName::parse(self.display_name).map_err(|e| ScimError::invalid_value(e.to_string()))?;
        let group = match current {
            Some(c) => Group { display_name, ..c.group.clone() },
            None => Group {
                id,
                mail_nickname: directory::nickname_from(&display_name),
                display_name,
                description: None,
                mail_enabled: false,
                security_enabled: true,
                created_date_time: now,
            },
        };
        Ok(ScimGroup {
            group,
            external_id: self.external_id,
            members,
            version: current.map_or(0, |c| c.version),
            modified: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn full_user() -> Value {
        json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER],
            "USERNAME": "ada@x.io",
            "externalId": "E-1",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "title": "Countess",
            "userType": "Employee",
            "active": "False",
            "emails": [{"value": "home@x.io", "type": "home"}, {"value": "ada@x.io", "type": "work"}],
            "addresses": [{"type": "work", "locality": "London", "country": "GB"}],
            "nickName": "ignored",
            ENTERPRISE_USER: {"employeeNumber": "42", "department": "R&D", "manager": {"value": "m"}},
            format!("{ENTERPRISE_USER}:organization"): "Analytical Engines",
        })
    }

    #[test]
    fn a_full_user_is_read_and_rendered_back() {
        let input = read_user(&full_user()).unwrap();
        assert_eq!(input.user_name, "ada@x.io");
        assert_eq!(input.active, Some(false), "Entra's string boolean");
        assert_eq!(input.email.as_deref(), Some("ada@x.io"), "the work address when none is primary");
        assert_eq!(input.organization.as_deref(), Some("Analytical Engines"), "a flattened extension attribute");
        assert_eq!(input.manager.as_deref(), Some("m"));
        let mgr = UserId::new();
        let u = input.into_user(UserId::new(), None, Some(mgr), at("2031-01-01T00:00:00Z")).unwrap();
        assert_eq!(u.user.display_name.as_str(), "Ada Lovelace", "made from the name");
        assert!(!u.user.account_enabled);
        let v = render_user(&u, "https://s/scim/v2");
        assert_eq!(v["emails"], json!([{"value": "ada@x.io", "type": "work"}]));
        assert_eq!(v[ENTERPRISE_USER]["manager"]["$ref"], json!(format!("https://s/scim/v2/Users/{mgr}")));
        assert_eq!(v["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER]));
        // What is rendered reads back as the same user.
        let again = read_user(&v).unwrap().into_user(u.user.id, Some(&u), Some(mgr), u.modified).unwrap();
        assert_eq!(again, u);
        assert_eq!(user_etag(&again), user_etag(&u));
    }

    #[test]
    fn mistakes_name_the_attribute() {
        for (body, says) in [
            (json!({}), "userName is required"),
            (json!({"userName": "a b"}), "spaces"),
            (json!({"userName": 5}), "'userName' must be a string"),
            (json!({"userName": "a", "active": "maybe"}), "'active' must be true or false"),
            (json!({"userName": "a", "name": "x"}), "'name' must be a JSON object"),
            (json!({"userName": "a", "emails": [{"value": 1}]}), "'emails[0].value' must be a string"),
            (json!({"userName": "a", "title": "x".repeat(300)}), "at most 256"),
            (json!({"userName": "a", "schemas": ["urn:x"]}), "schemas"),
            (json!([]), "JSON object"),
        ] {
            let e = read_user(&body).unwrap_err().to_string();
            assert!(e.contains(says), "{body}: {e}");
        }
    }

    #[test]
    fn groups_hold_users() {
        let g = read_group(&json!({"displayName": "G", "members": [{"value": "a"}, {"$ref": "https://s/Users/b"}]}));
        assert_eq!(g.unwrap().members, Some(vec!["a".to_owned(), "b".to_owned()]));
        let e = read_group(&json!({"displayName": "G", "members": [{"value": "a", "type": "Group"}]})).unwrap_err();
        assert!(e.to_string().contains("users only"), "{e}");
        assert!(read_group(&json!({"members": []})).is_err(), "displayName is required");
    }
}
