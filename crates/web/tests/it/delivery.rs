//! Delivery into three real systems at once, over HTTP: one package bundles a group of a
//! throwaway `slapd`, a group of PyPI's `scim2-server` and a group role of the PostgreSQL at
//! `$DATABASE_URL`. A request is approved and delivered into all three (read back with
//! `ldapsearch`, a SCIM GET and `pg_has_role`), then expires and is revoked from all three.
//! With a peer stopped the request stays `delivering` and says why per resource; once the
//! peer is back, delivery completes without duplicates. A user the directory lacks leaves the
//! request `partiallyDelivered` with the reason, and `reprocess` finishes it once they exist.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use steward_app::lifecycle::worker::Worker;
use steward_app::ports::ManualClock;
use steward_testpeers::slapd::{ADMIN, BASE, PASSWORD};
use steward_testpeers::{Scim2Server, Slapd};

use crate::app::{EM, TestApp};
use crate::connections::{KEY, target, url_password};

const CONNECTIONS: &str = "/v1.0/steward/connections";

/// Everything a story needs: the app, its clock, the three peers and the package.
struct Story {
    app: TestApp,
    clock: Arc<ManualClock>,
    slapd: Slapd,
    scim: Scim2Server,
    admin_db: sqlx::PgPool,
    /// The PostgreSQL group role, the LDAP group's DN, the SCIM group's id.
    role: String,
    group_dn: String,
    scim_group: String,
    package: String,
    /// Who approves, when the policy asks for approval.
    approver_token: String,
    /// A tag unique to this test, in every name it makes on the shared PostgreSQL.
    tag: String,
    /// The connections' ids: LDAP, SCIM, PostgreSQL.
    connections: [String; 3],
}

fn upn(tag: &str, who: &str) -> String {
    format!("{who}-{tag}@example.test")
}

fn person_ldif(tag: &str, who: &str) -> String {
    format!(
        "dn: cn={who},ou=people,{BASE}\nobjectClass: inetOrgPerson\ncn: {who}\nsn: {who}\nuid: {who}\nmail: {}\n\n",
        upn(tag, who)
    )
}

impl Story {
    /// The three peers, connections to them, a catalog holding one group of each, a package
    /// bundling them and a policy (approval by one approver if `approval`; access for seven
    /// days). `ada` and `bob` are in the directory, `carol` is not.
    async fn new(approval: bool) -> Self {
        let (app, clock) = TestApp::with_clock_and_connections("2031-03-01T09:00:00Z", KEY).await;
        let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
        let group_dn = format!("cn=VPN users,ou=groups,{BASE}");
        let slapd = Slapd::start(&format!(
            "{}{}dn: {group_dn}\nobjectClass: groupOfNames\ncn: VPN users\nmember: cn=nobody,{BASE}\n",
            person_ldif(&tag, "ada"),
            person_ldif(&tag, "bob")
        ));
        let scim = Scim2Server::start();
        let scim_group = scim.create_group("App editors").await;
        let admin_db = sqlx::PgPool::connect(&std::env::var("DATABASE_URL").unwrap()).await.unwrap();
        let role = format!("steward_story_{tag}");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE ROLE {role} NOLOGIN"))).execute(&admin_db).await.unwrap();

        let ldap = json!({"displayName": "Directory", "kind": "ldap",
            "settings": {"url": slapd.url, "bindDn": ADMIN, "userBaseDn": format!("ou=people,{BASE}"),
                "groupBaseDn": format!("ou=groups,{BASE}"), "userKey": "userPrincipalName", "userAttribute": "mail",
                "connectTimeoutSeconds": 2},
            "credentials": {"password": PASSWORD}});
        let scim_conn = json!({"displayName": "Learning app", "kind": "scim",
            "settings": {"baseUrl": scim.base_url, "createUsers": true, "timeoutSeconds": 2},
            "credentials": {"bearerToken": scim.token}});
        let mut pg_settings = target();
        pg_settings["userKey"] = json!("userPrincipalName");
        let mut pg = json!({"displayName": "Warehouse", "kind": "postgreSqlRoles", "settings": pg_settings});
        if let Some(p) = url_password() {
            pg["credentials"] = json!({"password": p});
        }
        let cat = app.catalog("Engineering").await;
        let package = app.package(&cat, "Engineering onboarding").await;
        let mut connections = Vec::new();
        for (body, object, system) in [
            (ldap, group_dn.clone(), "LdapGroup"),
            (scim_conn, scim_group.clone(), "ScimGroup"),
            (pg, role.clone(), "PostgreSqlRole"),
        ] {
            let cid = app.post(CONNECTIONS, &body).await.expect(StatusCode::CREATED).id();
            connections.push(cid.clone());
            let test = app.post(&format!("{CONNECTIONS}/{cid}/test"), &json!({})).await.json();
            assert_eq!(test["succeeded"], json!(true), "{system}: {test}");
            let origin = format!("{cid}:{object}");
            app.post(
                &format!("{EM}/resourceRequests"),
                &json!({"requestType": "adminAdd", "catalog": {"id": cat},
                    "resource": {"originId": origin, "originSystem": system}}),
            )
            .await
            .expect(StatusCode::CREATED);
            let filter = format!("originSystem eq '{system}'").replace(' ', "%20");
            let roles = app
                .get(&format!("{EM}/catalogs/{cat}/resourceRoles?$filter={filter}&$expand=resource($expand=scopes)"))
                .await
                .json();
            let r = &roles["value"][0];
            assert_eq!(r["originSystem"], json!(system), "{roles}");
            app.post(
                &format!("{EM}/accessPackages/{package}/resourceRoleScopes"),
                &json!({"role": {"id": r["id"], "originId": "Member", "originSystem": system,
                    "resource": {"id": r["resource"]["id"]}},
                    "scope": {"id": r["resource"]["scopes"][0]["id"], "originId": origin, "originSystem": system}}),
            )
            .await
            .expect(StatusCode::CREATED);
        }
        let (approver, approver_token) = app.person(&upn(&tag, "approver")).await;
        let mut policy = json!({"accessPackage": {"id": package}, "displayName": "Engineers",
            "allowedTargetScope": "allMemberUsers", "expiration": {"type": "afterDuration", "duration": "P7D"},
            "requestorSettings": {"enableTargetsToSelfAddAccess": true}});
        if approval {
            policy["requestApprovalSettings"] = json!({"isApprovalRequiredForAdd": true,
                "stages": [{"durationBeforeAutomaticDenial": "P14D",
                    "primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": approver}]}]});
        }
        app.post(&format!("{EM}/assignmentPolicies"), &policy).await.expect(StatusCode::CREATED);
        let connections = connections.try_into().unwrap();
        Self {
            app,
            clock,
            slapd,
            scim,
            admin_db,
            role,
            group_dn,
            scim_group,
            package,
            approver_token,
            tag,
            connections,
        }
    }

    /// A user of the story requests the package; the request's id.
    async fn request(&self, who: &str) -> String {
        let (_, token) = self.app.person(&upn(&self.tag, who)).await;
        let body = json!({"requestType": "userAdd", "assignment": {"accessPackageId": self.package}});
        let r = self.app.json_as(&token, Method::POST, &format!("{EM}/assignmentRequests"), &body).await;
        r.expect(StatusCode::CREATED);
        r.id()
    }

    /// Runs every job that is due, the sweep (expiries) included, as `steward serve` would.
    async fn drain(&self) {
        let worker = Worker::new(self.app.services.clone(), "delivery-it");
        worker.ensure_sweep().await.unwrap();
        worker.drain(50).await.unwrap();
    }

    async fn request_json(&self, id: &str) -> Value {
        self.app.get(&format!("{EM}/assignmentRequests/{id}?$expand=assignment")).await.json()
    }

    async fn deliveries(&self, request: &Value) -> Vec<Value> {
        let a = request["assignment"]["id"].as_str().unwrap();
        let v = self.app.get(&format!("/v1.0/steward/assignments/{a}/deliveries")).await.json();
        v["value"].as_array().unwrap().clone()
    }

    /// Whether `who` holds the access in each system: (LDAP, SCIM, PostgreSQL), read from the
    /// peers themselves.
    async fn holds(&self, who: &str) -> (bool, bool, bool) {
        let dn = format!("cn={who},ou=people,{BASE}");
        let ldap = self.slapd.members(&self.group_dn).contains(&dn);
        let scim_users = self.scim.users_named(&upn(&self.tag, who)).await;
        assert!(scim_users.len() <= 1, "one SCIM user per person: {scim_users:?}");
        let members = self.scim.group_members(&self.scim_group).await;
        let scim = scim_users.first().is_some_and(|id| members.contains(id));
        let pg = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AND pg_has_role($1, $2, 'MEMBER')",
        )
        .bind(upn(&self.tag, who))
        .bind(&self.role)
        .fetch_one(&self.admin_db)
        .await
        .unwrap();
        (ldap, scim, pg)
    }

    /// No member is listed twice in the LDAP group or the SCIM group.
    async fn no_duplicates(&self) {
        let ldap = self.slapd.members(&self.group_dn);
        let mut dedup = ldap.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), ldap.len(), "LDAP members: {ldap:?}");
        let scim = self.scim.group_members(&self.scim_group).await;
        let mut dedup = scim.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), scim.len(), "SCIM members: {scim:?}");
    }

    async fn cleanup(&self) {
        let mut roles = vec![self.role.clone()];
        roles.extend(["ada", "bob", "carol", "intruder"].iter().map(|w| upn(&self.tag, w)));
        for r in roles {
            let q = format!("DROP ROLE IF EXISTS \"{}\"", r.replace('"', "\"\""));
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(q)).execute(&self.admin_db).await;
        }
    }
}

#[tokio::test]
async fn a_package_of_three_systems_is_approved_delivered_everywhere_and_revoked_everywhere_on_expiry() {
    let s = Story::new(true).await;
    let rid = s.request("ada").await;
    s.drain().await;
    assert_eq!(s.request_json(&rid).await["state"], json!("pendingApproval"));
    assert_eq!(s.holds("ada").await, (false, false, false), "nothing before approval");

    let stages = s.app.get_as(&s.approver_token, &format!("{EM}/accessPackageAssignmentApprovals/{rid}/stages")).await;
    let stage = stages.json()["value"][0]["id"].as_str().unwrap().to_owned();
    s.app
        .json_as(
            &s.approver_token,
            Method::PATCH,
            &format!("{EM}/accessPackageAssignmentApprovals/{rid}/stages/{stage}"),
            &json!({"reviewResult": "Approve", "justification": "New starter"}),
        )
        .await
        .expect(StatusCode::NO_CONTENT);
    s.drain().await;
    let req = s.request_json(&rid).await;
    assert_eq!(req["state"], json!("delivered"), "{req}");
    assert_eq!(req["assignment"]["state"], json!("delivered"), "{req}");
    assert_eq!(s.holds("ada").await, (true, true, true), "delivered into LDAP, SCIM and PostgreSQL");
    let deliveries = s.deliveries(&req).await;
    assert_eq!(deliveries.len(), 3, "{deliveries:?}");
    assert!(deliveries.iter().all(|d| d["state"] == json!("done")), "{deliveries:?}");

    // Seven days later the assignment expires and is taken back from all three.
    s.clock.advance(jiff::SignedDuration::from_hours(24 * 7 + 1));
    s.drain().await;
    let req = s.request_json(&rid).await;
    assert_eq!(req["assignment"]["state"], json!("expired"), "{req}");
    assert_eq!(s.holds("ada").await, (false, false, false), "revoked from LDAP, SCIM and PostgreSQL");
    let revokes: Vec<Value> = s.deliveries(&req).await.into_iter().filter(|d| d["action"] == json!("revoke")).collect();
    assert_eq!(revokes.len(), 3, "{revokes:?}");
    assert!(revokes.iter().all(|d| d["state"] == json!("done")), "{revokes:?}");
    s.no_duplicates().await;
    s.cleanup().await;
}

#[tokio::test]
async fn stopped_peers_leave_the_request_delivering_with_reasons_and_delivery_completes_when_they_return() {
    let s = Story::new(false).await;
    s.slapd.stop();
    s.scim.freeze();
    let rid = s.request("bob").await;
    s.drain().await;
    let req = s.request_json(&rid).await;
    assert_eq!(req["state"], json!("delivering"), "{req}");
    assert_eq!(req["assignment"]["state"], json!("delivering"), "{req}");
    let deliveries = s.deliveries(&req).await;
    let by_system = |system: &str| {
        deliveries.iter().find(|d| d["resource"]["originSystem"] == json!(system)).cloned().unwrap_or(Value::Null)
    };
    let (ldap, scim, pg) = (by_system("LdapGroup"), by_system("ScimGroup"), by_system("PostgreSqlRole"));
    assert_eq!(pg["state"], json!("done"), "{deliveries:?}");
    for (d, says) in [(&ldap, "directory is unavailable"), (&scim, "timed out")] {
        assert_eq!(d["state"], json!("pending"), "{deliveries:?}");
        assert!(d["detail"].as_str().is_some_and(|m| m.contains(says) && m.contains("attempt")), "{d}");
    }

    // The peers come back; once the backoff has passed, delivery completes, once.
    s.slapd.restart();
    s.scim.thaw();
    for _ in 0..3 {
        s.clock.advance(jiff::SignedDuration::from_mins(10));
        s.drain().await;
    }
    let req = s.request_json(&rid).await;
    assert_eq!(req["state"], json!("delivered"), "{req}");
    assert_eq!(s.holds("bob").await, (true, true, true));
    s.no_duplicates().await;

    // Someone the directory lacks: LDAP fails for good, the rest is delivered, the request
    // says which and why; once they exist, reprocess finishes the job.
    let rid = s.request("carol").await;
    s.drain().await;
    let req = s.request_json(&rid).await;
    assert_eq!(req["state"], json!("partiallyDelivered"), "{req}");
    assert_eq!(req["assignment"]["state"], json!("partiallyDelivered"), "{req}");
    let failed: Vec<Value> = s.deliveries(&req).await.into_iter().filter(|d| d["state"] == json!("failed")).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["resource"]["originSystem"], json!("LdapGroup"));
    assert!(failed[0]["detail"].as_str().unwrap().contains("no single entry"), "{failed:?}");
    assert_eq!(s.holds("carol").await, (false, true, true));
    s.slapd.modify(&format!("dn: cn=carol,ou=people,{BASE}\nchangetype: add\n{}", {
        let ldif = person_ldif(&s.tag, "carol");
        ldif.lines().skip(1).map(|l| format!("{l}\n")).collect::<String>()
    }));
    s.app
        .send(Method::POST, &format!("{EM}/assignmentRequests/{rid}/reprocess"), Some(crate::app::ADMIN), &[], "")
        .await
        .expect(StatusCode::ACCEPTED);
    s.drain().await;
    let req = s.request_json(&rid).await;
    assert_eq!(req["state"], json!("delivered"), "{req}");
    assert_eq!(s.holds("carol").await, (true, true, true));
    s.no_duplicates().await;
    s.cleanup().await;
}

#[tokio::test]
async fn reconciliation_restores_what_was_taken_away_and_reports_or_removes_what_nobody_granted() {
    let s = Story::new(false).await;
    let rid = s.request("ada").await;
    s.drain().await;
    assert_eq!(s.request_json(&rid).await["state"], json!("delivered"));
    assert_eq!(s.holds("ada").await, (true, true, true));

    // Behind Steward's back: ada is taken out of all three, bob (whom nobody granted
    // anything) is put in the LDAP group, an intruder gets the database role.
    let ada_dn = format!("cn=ada,ou=people,{BASE}");
    let bob_dn = format!("cn=bob,ou=people,{BASE}");
    s.slapd.modify(&format!(
        "dn: {}\nchangetype: modify\ndelete: member\nmember: {ada_dn}\n-\nadd: member\nmember: {bob_dn}\n",
        s.group_dn
    ));
    let ada_scim = s.scim.users_named(&upn(&s.tag, "ada")).await.pop().unwrap();
    s.scim.remove_member(&s.scim_group, &ada_scim).await;
    let (ada_login, intruder) = (upn(&s.tag, "ada"), upn(&s.tag, "intruder"));
    for sql in [
        format!("REVOKE {} FROM \"{ada_login}\"", s.role),
        format!("CREATE ROLE \"{intruder}\" LOGIN"),
        format!("GRANT {} TO \"{intruder}\"", s.role),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&s.admin_db).await.unwrap();
    }
    assert_eq!(s.holds("ada").await, (false, false, false));

    // An hour on, the sweep queues each connection's pass and the worker runs it: ada's
    // access is back everywhere, the strangers are reported, not removed.
    s.clock.advance(jiff::SignedDuration::from_mins(61));
    s.drain().await;
    assert_eq!(s.holds("ada").await, (true, true, true), "restored by reconciliation");
    let [ldap, scim, pg] = &s.connections;
    let drift = |cid: &str| {
        let app = &s.app;
        let cid = cid.to_owned();
        async move {
            let v = app.get(&format!("{CONNECTIONS}/{cid}/drift")).await.json();
            v["value"].as_array().unwrap().iter().map(|d| d["holder"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        }
    };
    assert_eq!(drift(ldap).await, [bob_dn.clone(), format!("cn=nobody,{BASE}")]);
    assert!(drift(scim).await.is_empty());
    assert_eq!(drift(pg).await, [intruder]);
    assert!(s.slapd.members(&s.group_dn).contains(&bob_dn), "reported, not removed");
    let restored = s.app.get(&format!("{CONNECTIONS}/{ldap}/drift")).await.json();
    assert_eq!(restored["value"][0]["resource"]["originSystem"], json!("LdapGroup"), "{restored}");

    // Made authoritative, a pass on request removes them (and says what it did).
    s.app
        .patch(
            &format!("{CONNECTIONS}/{ldap}"),
            &json!({"reconciliation": {"intervalMinutes": 60, "authoritative": true}}),
        )
        .await
        .expect(StatusCode::NO_CONTENT);
    let report = s.app.post(&format!("{CONNECTIONS}/{ldap}/reconcile"), &json!({})).await;
    let report = report.expect(StatusCode::OK).json();
    assert_eq!((report["removed"].as_u64(), report["drift"].as_u64()), (Some(2), Some(0)), "{report}");
    assert_eq!(s.slapd.members(&s.group_dn), [ada_dn], "only what Steward granted is left");
    assert!(drift(ldap).await.is_empty());
    let bad = s.app.patch(&format!("{CONNECTIONS}/{ldap}"), &json!({"reconciliation": {"intervalMinutes": -5}})).await;
    bad.expect_error(StatusCode::BAD_REQUEST);
    let unknown = s.app.post(&format!("{CONNECTIONS}/{}/reconcile", crate::app::UNKNOWN), &json!({})).await;
    unknown.expect_error(StatusCode::NOT_FOUND);
    s.cleanup().await;
}
