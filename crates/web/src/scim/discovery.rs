//! SCIM discovery (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas`.
//! The User and Group schemas announce exactly the attributes `steward_app::scim::resource`
//! renders and reads, with their real mutability, so a client that writes an announced
//! attribute reads the same value back; the enterprise extension likewise.

use serde_json::{Value, json};
use steward_app::scim::{ENTERPRISE_USER, GROUP_SCHEMA, LIST_RESPONSE, MAX_RESULTS, USER_SCHEMA};

const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// `/ServiceProviderConfig`.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "The SCIM token configured on the Steward server (scim_token, STEWARD_SCIM_TOKEN), \
                sent as Authorization: Bearer <token>.",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
    })
}

/// Every resource type, by id.
pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "A user of Steward's directory",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE_USER, "required": false}],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")},
        }),
        json!({
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "A group of Steward's directory (its members are users)",
            "schema": GROUP_SCHEMA,
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")},
        }),
    ]
}

/// A list response of discovery resources (never filtered or paged).
pub fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// An attribute definition, with RFC 7643's defaults.
struct A(Value);

impl A {
    fn new(name: &str, ty: &str, description: &str) -> Self {
        Self(json!({
            "name": name,
            "type": ty,
            "multiValued": false,
            "description": description,
            "required": false,
            "caseExact": false,
            "mutability": "readWrite",
            "returned": "default",
            "uniqueness": "none",
        }))
    }
    fn text(name: &str, description: &str) -> Self {
        Self::new(name, "string", description)
    }
    fn set(mut self, k: &str, v: Value) -> Self {
        if let Value::Object(m) = &mut self.0 {
            m.insert(k.to_owned(), v);
        }
        self
    }
    fn required(self) -> Self {
        self.set("required", json!(true))
    }
    fn case_exact(self) -> Self {
        self.set("caseExact", json!(true))
    }
    fn multi(self) -> Self {
        self.set("multiValued", json!(true))
    }
    fn read_only(self) -> Self {
        self.set("mutability", json!("readOnly"))
    }
    fn immutable(self) -> Self {
        self.set("mutability", json!("immutable"))
    }
    fn canonical(self, values: &[&str]) -> Self {
        self.set("canonicalValues", json!(values))
    }
    fn refs(self, types: &[&str]) -> Self {
        self.set("referenceTypes", json!(types))
    }
    fn sub(self, attrs: Vec<A>) -> Self {
        self.set("subAttributes", Value::Array(attrs.into_iter().map(|a| a.0).collect()))
    }
}

fn schema(id: &str, name: &str, description: &str, attributes: Vec<A>, base: &str) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": id,
        "name": name,
        "description": description,
        "attributes": attributes.into_iter().map(|a| a.0).collect::<Vec<_>>(),
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
    })
}

fn user_schema(base: &str) -> Value {
    let work =
        |what: &str| A::text("type", &format!("The kind of {what}; Steward keeps the work one.")).canonical(&["work"]);
    schema(
        USER_SCHEMA,
        "User",
        "A user of Steward's directory",
        vec![
            A::text("userName", "The unique sign-in name (Steward's userPrincipalName), unique regardless of case.")
                .required()
                .set("uniqueness", json!("server")),
            A::new("name", "complex", "The user's name.").sub(vec![
                A::text("formatted", "The full name, formatted for display."),
                A::text("familyName", "The family name."),
                A::text("givenName", "The given name."),
            ]),
            A::text("displayName", "The name shown for the user; made from the name or userName when not given.")
                .required(),
            A::text("title", "The job title (Steward's jobTitle)."),
            A::text("userType", "The kind of user; \"Guest\" makes a guest account in Steward."),
            A::new(
                "active",
                "boolean",
                "Whether the account is enabled; false removes all of the user's access (not restored by \
                 reactivation). Kept as it was when a replacement leaves it out.",
            )
            .required(),
            A::new(
                "emails",
                "complex",
                "The user's email address (Steward's mail): of those sent, the primary one, else the work one, \
                 else the first.",
            )
            .multi()
            .sub(vec![A::text("value", "The address."), work("address")]),
            A::new("addresses", "complex", "The user's work address (Steward keeps locality and country).")
                .multi()
                .sub(vec![
                    work("address"),
                    A::text("locality", "The city (Steward's city)."),
                    A::text("country", "The country (Steward's country)."),
                ]),
        ],
        base,
    )
}

fn enterprise_schema(base: &str) -> Value {
    schema(
        ENTERPRISE_USER,
        "EnterpriseUser",
        "Enterprise user",
        vec![
            A::text("employeeNumber", "The employee number (Steward's employeeId)."),
            A::text("organization", "The organization (Steward's companyName)."),
            A::text("department", "The department."),
            A::new("manager", "complex", "The user's manager, a user of the directory.").sub(vec![
                A::text("value", "The manager's id.").case_exact(),
                A::new("$ref", "reference", "The manager's URI.").refs(&["User"]).case_exact(),
            ]),
        ],
        base,
    )
}

fn group_schema(base: &str) -> Value {
    schema(
        GROUP_SCHEMA,
        "Group",
        "A group of Steward's directory",
        vec![
            A::text("displayName", "The group's name.").required(),
            A::new("members", "complex", "The group's members (users only).").multi().sub(vec![
                A::text("value", "The member's id.").immutable().case_exact(),
                A::new("$ref", "reference", "The member's URI.").refs(&["User"]).immutable().case_exact(),
                A::text("type", "The kind of member: always User.").immutable().canonical(&["User"]),
            ]),
        ],
        base,
    )
}

fn spc_schema(base: &str) -> Value {
    let supported = || A::new("supported", "boolean", "Whether the feature is supported.").required().read_only();
    let feature = |name: &str, description: &str, more: Vec<A>| {
        let mut subs = vec![supported()];
        subs.extend(more);
        A::new(name, "complex", description).required().read_only().sub(subs)
    };
    let int = |name: &str, description: &str| A::new(name, "integer", description).read_only();
    schema(
        SPC_SCHEMA,
        "ServiceProviderConfig",
        "The service provider's configuration",
        vec![
            A::new("documentationUri", "reference", "Help about the service.").refs(&["external"]).read_only(),
            feature("patch", "PATCH support.", vec![]),
            feature(
                "bulk",
                "Bulk support.",
                vec![int("maxOperations", "The most operations."), int("maxPayloadSize", "The largest payload.")],
            ),
            feature("filter", "Filter support.", vec![int("maxResults", "The most resources a response holds.")]),
            feature("changePassword", "Password change support.", vec![]),
            feature("sort", "Sort support.", vec![]),
            feature("etag", "ETag support.", vec![]),
            A::new("authenticationSchemes", "complex", "The supported authentication schemes.")
                .multi()
                .required()
                .read_only()
                .sub(vec![
                    A::text("type", "The scheme's type.").required().read_only(),
                    A::text("name", "The scheme's name.").required().read_only(),
                    A::text("description", "The scheme's description.").required().read_only(),
                    A::new("specUri", "reference", "The scheme's specification.").refs(&["external"]).read_only(),
                    A::new("documentationUri", "reference", "Help about the scheme.").refs(&["external"]).read_only(),
                    A::new("primary", "boolean", "Whether it is the preferred scheme.").read_only(),
                ]),
        ],
        base,
    )
}

fn resource_type_schema(base: &str) -> Value {
    let ro = |name: &str, description: &str| A::text(name, description).read_only();
    schema(
        RESOURCE_TYPE_SCHEMA,
        "ResourceType",
        "A resource type",
        vec![
            ro("id", "The resource type's id."),
            ro("name", "The resource type's name.").required(),
            ro("description", "The resource type's description."),
            A::new("endpoint", "reference", "The resource type's endpoint.").refs(&["uri"]).required().read_only(),
            A::new("schema", "reference", "The core schema.").refs(&["uri"]).required().read_only().case_exact(),
            A::new("schemaExtensions", "complex", "The schema extensions.").multi().read_only().sub(vec![
                A::new("schema", "reference", "An extension's schema.")
                    .refs(&["uri"])
                    .required()
                    .read_only()
                    .case_exact(),
                A::new("required", "boolean", "Whether the extension is required.").required().read_only(),
            ]),
        ],
        base,
    )
}

fn schema_schema(base: &str) -> Value {
    let ro = |name: &str, ty: &str, description: &str| A::new(name, ty, description).read_only();
    let attribute_subs = || {
        vec![
            ro("name", "string", "The attribute's name.").required().case_exact(),
            ro("type", "string", "The attribute's type.").required(),
            ro("multiValued", "boolean", "Whether it is multi-valued.").required(),
            ro("description", "string", "The attribute's description."),
            ro("required", "boolean", "Whether it is required."),
            ro("canonicalValues", "string", "Its canonical values.").multi(),
            ro("caseExact", "boolean", "Whether it is case-exact."),
            ro("mutability", "string", "Its mutability."),
            ro("returned", "string", "When it is returned."),
            ro("uniqueness", "string", "Its uniqueness."),
            ro("referenceTypes", "string", "The types it may refer to.").multi(),
        ]
    };
    let mut attributes = attribute_subs();
    attributes.push(ro("subAttributes", "complex", "Its sub-attributes.").multi().sub(attribute_subs()));
    schema(
        SCHEMA_SCHEMA,
        "Schema",
        "A schema",
        vec![
            ro("id", "reference", "The schema's URI.").required().case_exact().refs(&["uri"]),
            ro("name", "string", "The schema's name."),
            ro("description", "string", "The schema's description."),
            ro("attributes", "complex", "The schema's attributes.").multi().required().sub(attributes),
        ],
        base,
    )
}

/// Every schema, by id.
pub fn schemas(base: &str) -> Vec<Value> {
    vec![
        user_schema(base),
        enterprise_schema(base),
        group_schema(base),
        spc_schema(base),
        resource_type_schema(base),
        schema_schema(base),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_and_resource_type_names_itself() {
        let s = schemas("https://x/scim/v2");
        let ids: Vec<&str> = s.iter().filter_map(|v| v["id"].as_str()).collect();
        assert_eq!(ids, [USER_SCHEMA, ENTERPRISE_USER, GROUP_SCHEMA, SPC_SCHEMA, RESOURCE_TYPE_SCHEMA, SCHEMA_SCHEMA]);
        for v in &s {
            for a in v["attributes"].as_array().unwrap() {
                assert!(a["name"].is_string() && a["type"].is_string(), "{a}");
            }
        }
        let rt = resource_types("https://x/scim/v2");
        assert_eq!(rt[0]["schema"], json!(USER_SCHEMA));
        assert_eq!(service_provider_config("b")["filter"]["maxResults"], json!(MAX_RESULTS));
    }
}
