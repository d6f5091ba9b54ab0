//! The LDAP connector against a real OpenLDAP `slapd`, started by this test on loopback from
//! a throwaway configuration and seed (`steward-testpeers`; Debian's `slapd` and `ldap-utils`,
//! which the test command installs; without them this test fails, it never skips). What the connector wrote
//! is read back with `ldapsearch`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use secrecy::SecretString;
use steward_app::connector::{Connector, ConnectorError};
use steward_app::ports::RoleGrant;
use steward_connectors::ident::UserKey;
use steward_connectors::ldap::{LdapConnector, LdapSettings, MemberAttribute};
use steward_connectors::postgres_roles::MEMBER;
use steward_domain::ids::ResourceRoleId;
use steward_testpeers::Slapd;
use steward_testpeers::slapd::{ADMIN, BASE, PASSWORD};

/// A mail address full of filter and DN metacharacters (no NUL: a directory cannot hold it).
const WEIRD_MAIL: &str = "o'hara*)(uid=*)\\,=+<>#;\"@example.test";

fn seed() -> String {
    format!(
        "dn: cn=Seed,ou=people,{BASE}\nobjectClass: inetOrgPerson\ncn: Seed\nsn: Seed\nuid: seed\nmail: seed@example.test\n\n\
         dn: cn=Alice,ou=people,{BASE}\nobjectClass: inetOrgPerson\ncn: Alice\nsn: A\nuid: alice\nmail: alice@example.test\n\n\
         dn: cn=Weird,ou=people,{BASE}\nobjectClass: inetOrgPerson\ncn: Weird\nsn: W\nuid: weird\nmail: {WEIRD_MAIL}\n\n\
         dn: cn=Readers,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: Readers\nmember: cn=Seed,ou=people,{BASE}\n\n\
         dn: cn=Writers,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: Writers\nmember: cn=Seed,ou=people,{BASE}\n"
    )
}

/// The members of the group `cn`.
fn members(slapd: &Slapd, cn: &str) -> Vec<String> {
    slapd.members(&format!("cn={cn},ou=groups,{BASE}"))
}

fn settings(url: &str) -> LdapSettings {
    LdapSettings {
        url: url.to_owned(),
        start_tls: false,
        bind_dn: ADMIN.into(),
        user_base_dn: format!("ou=people,{BASE}"),
        group_base_dn: format!("ou=groups,{BASE}"),
        group_object_class: "groupOfNames".into(),
        member_attribute: MemberAttribute::Member,
        user_key: UserKey::Mail,
        user_attribute: "mail".into(),
        connect_timeout_seconds: 2,
        operation_timeout_seconds: 5,
        ca_certificate: None,
    }
}

fn group(cn: &str) -> RoleGrant {
    RoleGrant {
        role_id: ResourceRoleId::new(),
        role_name: MEMBER.into(),
        role_origin_id: MEMBER.into(),
        origin_system: "LdapGroup".into(),
        resource_origin_id: format!("cn={cn},ou=groups,{BASE}"),
        resource_name: cn.into(),
    }
}

#[tokio::test]
async fn grants_and_revokes_ldap_group_membership_with_hostile_values_kept_harmless() {
    let slapd = Slapd::start(&seed());
    let c = LdapConnector::new(settings(&slapd.url), Some(SecretString::from(PASSWORD.to_owned())));
    let said = c.check().await.unwrap();
    assert!(said.contains("2 group(s)"), "{said}");
    let found = c.discover().await.unwrap();
    let names: Vec<&str> = found.iter().map(|r| r.display_name.as_str()).collect();
    assert_eq!(names, ["Readers", "Writers"]);
    assert_eq!(found[0].origin_id, format!("cn=Readers,ou=groups,{BASE}"));

    let alice = person_mail("alice@example.test");
    let alice_dn = format!("cn=Alice,ou=people,{BASE}");
    c.grant(&group("Readers"), &alice).await.unwrap();
    c.grant(&group("Readers"), &alice).await.unwrap(); // already a member: fine
    assert!(members(&slapd, "Readers").contains(&alice_dn), "{:?}", members(&slapd, "Readers"));
    assert!(c.holds(&group("Readers"), &alice).await.unwrap());
    assert!(!c.holds(&group("Writers"), &alice).await.unwrap());

    // A round's grants go over one connection, each with its own outcome.
    let seed = person_mail("seed@example.test");
    let nobody = person_mail("nobody@example.test");
    let (readers, writers) = (group("Readers"), group("Writers"));
    let round = c.grant_all(&[(&readers, &seed), (&writers, &alice), (&readers, &nobody)]).await;
    assert!(round[0].is_ok() && round[1].is_ok(), "{round:?}");
    assert!(matches!(&round[2], Err(ConnectorError::Permanent(m)) if m.contains("no single entry")), "{round:?}");
    assert!(members(&slapd, "Writers").contains(&alice_dn));
    c.revoke(&writers, &alice).await.unwrap();

    // Filter metacharacters in a user's attribute find exactly that user, nobody else.
    let weird = person_mail(WEIRD_MAIL);
    c.grant(&group("Writers"), &weird).await.unwrap();
    assert_eq!(members(&slapd, "Writers"), [format!("cn=Seed,ou=people,{BASE}"), format!("cn=Weird,ou=people,{BASE}")]);
    for hostile in ["*", "*)(mail=*", "alice@example.test)(|(mail=*", "x\0y", "\\2a"] {
        match c.grant(&group("Writers"), &person_mail(hostile)).await {
            Err(ConnectorError::Permanent(m)) => assert!(m.contains("no single entry"), "{hostile}: {m}"),
            other => panic!("{hostile}: expected a permanent refusal, got {other:?}"),
        }
    }
    assert_eq!(members(&slapd, "Writers").len(), 2, "no hostile value added anyone");

    c.revoke(&group("Readers"), &alice).await.unwrap();
    c.revoke(&group("Readers"), &alice).await.unwrap(); // not a member any more: fine
    c.revoke(&group("Readers"), &person_mail("nobody@example.test")).await.unwrap(); // unknown: holds nothing
    assert_eq!(members(&slapd, "Readers"), [format!("cn=Seed,ou=people,{BASE}")]);
    assert!(!c.holds(&group("Readers"), &alice).await.unwrap());

    match c.grant(&group("Nonexistent"), &alice).await {
        Err(ConnectorError::Permanent(m)) => assert!(m.contains("result 32"), "{m}"),
        other => panic!("expected a permanent refusal, got {other:?}"),
    }
    let wrong = LdapConnector::new(settings(&slapd.url), Some(SecretString::from("wrong".to_owned())));
    match wrong.grant(&group("Readers"), &alice).await {
        Err(ConnectorError::Permanent(m)) => assert!(m.contains("result 49") && !m.contains("wrong"), "{m}"),
        other => panic!("expected a permanent refusal, got {other:?}"),
    }

    // The directory down: transient, to be retried.
    slapd.stop();
    assert!(matches!(c.grant(&group("Readers"), &alice).await, Err(ConnectorError::Transient(_))));
}

fn person_mail(mail: &str) -> steward_domain::directory::User {
    common::person("someone@contoso.test", Some(mail))
}
