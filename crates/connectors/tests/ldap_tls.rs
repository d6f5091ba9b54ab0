//! The LDAP connector over TLS against a real OpenLDAP `slapd` serving StartTLS and `ldaps://`
//! with a certificate from a throwaway CA (`steward-testpeers`' `Slapd::start_tls`, which makes
//! it with the `openssl` command; Debian's `slapd`, `ldap-utils` and `openssl`, without which
//! this test fails, it never skips). With `caCertificate` naming that CA, grants and revokes go
//! through (read back with `ldapsearch`); without it, the system's CAs do not trust the
//! directory and the connector says so, permanently.

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

fn seed() -> String {
    format!(
        "dn: cn=Alice,ou=people,{BASE}\nobjectClass: inetOrgPerson\ncn: Alice\nsn: A\nuid: alice\nmail: alice@example.test\n\n\
         dn: cn=Readers,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: Readers\nmember: cn=Alice,ou=people,{BASE}\n\n\
         dn: cn=Writers,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: Writers\nmember: cn=Alice,ou=people,{BASE}\n\n\
         dn: cn=Bob,ou=people,{BASE}\nobjectClass: inetOrgPerson\ncn: Bob\nsn: B\nuid: bob\nmail: bob@example.test\n"
    )
}

fn settings(url: &str, start_tls: bool, ca_certificate: Option<String>) -> LdapSettings {
    LdapSettings {
        url: url.to_owned(),
        start_tls,
        bind_dn: ADMIN.into(),
        user_base_dn: format!("ou=people,{BASE}"),
        group_base_dn: format!("ou=groups,{BASE}"),
        group_object_class: "groupOfNames".into(),
        member_attribute: MemberAttribute::Member,
        user_key: UserKey::Mail,
        user_attribute: "mail".into(),
        connect_timeout_seconds: 5,
        operation_timeout_seconds: 5,
        ca_certificate,
    }
}

fn connector(settings: LdapSettings) -> LdapConnector {
    settings.check().unwrap();
    LdapConnector::new(settings, Some(SecretString::from(PASSWORD.to_owned())))
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

const BOB_DN: &str = "cn=Bob,ou=people,dc=example,dc=test";

/// Checks, grants Bob `cn` and revokes it again through `c`, reading the group back each time.
async fn grant_and_revoke(slapd: &Slapd, c: &LdapConnector, cn: &str) {
    let said = c.check().await.unwrap();
    assert!(said.contains("2 group(s)"), "{said}");
    let bob = common::person("bob@contoso.test", Some("bob@example.test"));
    let dn = format!("cn={cn},ou=groups,{BASE}");
    c.grant(&group(cn), &bob).await.unwrap();
    assert!(slapd.members(&dn).iter().any(|m| m == BOB_DN), "{:?}", slapd.members(&dn));
    assert!(c.holds(&group(cn), &bob).await.unwrap());
    c.revoke(&group(cn), &bob).await.unwrap();
    assert_eq!(slapd.members(&dn), [format!("cn=Alice,ou=people,{BASE}")]);
}

/// `check`, `grant` and a round's `grant_all` through `c` must all be refused permanently, as
/// an untrusted certificate.
async fn refused_as_untrusted(c: &LdapConnector, over: &str) {
    let bob = common::person("bob@contoso.test", Some("bob@example.test"));
    let readers = group("Readers");
    let mut outcomes = vec![c.check().await.map(|_| ()), c.grant(&readers, &bob).await];
    outcomes.extend(c.grant_all(&[(&readers, &bob), (&group("Writers"), &bob)]).await);
    for outcome in outcomes {
        match outcome {
            Err(ConnectorError::Permanent(m)) => {
                assert!(
                    m.contains("the directory's certificate is not trusted: it is not issued by a trusted CA"),
                    "{over}: {m}"
                );
            }
            other => panic!("{over}: expected a permanent refusal of the certificate, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn grants_and_revokes_over_ldaps_trusting_the_directorys_own_ca() {
    let slapd = Slapd::start_tls(&seed());
    let c = connector(settings(&slapd.ldaps_url(), false, Some(slapd.ca_pem())));
    grant_and_revoke(&slapd, &c, "Readers").await;
    // The certificate names `localhost` too.
    let by_name = slapd.ldaps_url().replace("127.0.0.1", "localhost");
    grant_and_revoke(&slapd, &connector(settings(&by_name, false, Some(slapd.ca_pem()))), "Writers").await;
}

#[tokio::test]
async fn grants_and_revokes_over_starttls_trusting_the_directorys_own_ca() {
    let slapd = Slapd::start_tls(&seed());
    let c = connector(settings(&slapd.url, true, Some(slapd.ca_pem())));
    grant_and_revoke(&slapd, &c, "Writers").await;
}

#[tokio::test]
async fn without_the_directorys_ca_tls_is_refused_permanently() {
    let slapd = Slapd::start_tls(&seed());
    // The system's CAs (no caCertificate) do not know the throwaway CA.
    refused_as_untrusted(&connector(settings(&slapd.ldaps_url(), false, None)), "ldaps, system CAs").await;
    refused_as_untrusted(&connector(settings(&slapd.url, true, None)), "StartTLS, system CAs").await;
    // Nor does another directory's CA: only the CAs given are trusted.
    let other = Slapd::start_tls(&seed());
    refused_as_untrusted(&connector(settings(&slapd.ldaps_url(), false, Some(other.ca_pem()))), "ldaps, other CA")
        .await;
    refused_as_untrusted(&connector(settings(&slapd.url, true, Some(other.ca_pem()))), "StartTLS, other CA").await;
    assert_eq!(slapd.members(&format!("cn=Readers,ou=groups,{BASE}")), [format!("cn=Alice,ou=people,{BASE}")]);
}

#[test]
fn check_refuses_a_ca_certificate_that_is_no_certificate_or_is_not_used() {
    let ldaps = "ldaps://ldap.example.test";
    for (garbage, says) in [
        ("", "holds no PEM certificate"),
        ("hello", "holds no PEM certificate"),
        ("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", "not a usable CA certificate"),
        ("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n", "not valid PEM"),
    ] {
        let why = settings(ldaps, false, Some(garbage.to_owned())).check().unwrap_err();
        assert!(why.contains(says), "{garbage:?}: {why}");
    }
    // A CA for a connection that never uses TLS is a mistake worth saying.
    let pem = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
    let why = settings("ldap://ldap.example.test", false, Some(pem.to_owned())).check().unwrap_err();
    assert!(why.contains("only used over TLS"), "{why}");
    // As the stored JSON of a connection: camelCase, optional.
    let parsed: LdapSettings = serde_json::from_value(serde_json::json!({
        "url": ldaps, "bindDn": ADMIN, "userBaseDn": BASE, "groupBaseDn": BASE, "caCertificate": "hello",
    }))
    .unwrap();
    assert_eq!(parsed.ca_certificate.as_deref(), Some("hello"));
    assert!(parsed.check().unwrap_err().contains("caCertificate"));
}
