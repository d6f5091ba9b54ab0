//! The LDAP connector against a real OpenLDAP `slapd`, started by this test on loopback from
//! a throwaway configuration and seed (Debian's `slapd` and `ldap-utils`, which the test
//! command installs; without them this test fails, it never skips). What the connector wrote
//! is read back with `ldapsearch`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use steward_app::connector::{Connector, ConnectorError};
use steward_app::ports::RoleGrant;
use steward_connectors::ident::UserKey;
use steward_connectors::ldap::{LdapConnector, LdapSettings, MemberAttribute};
use steward_connectors::postgres_roles::MEMBER;
use steward_domain::ids::ResourceRoleId;

const BASE: &str = "dc=example,dc=test";
const ADMIN: &str = "cn=admin,dc=example,dc=test";
const PASSWORD: &str = "slapd-secret";
/// A mail address full of filter and DN metacharacters (no NUL: a directory cannot hold it).
const WEIRD_MAIL: &str = "o'hara*)(uid=*)\\,=+<>#;\"@example.test";

/// A moment's wait while polling the slapd process, which starts and stops on its own: no
/// time-dependent behaviour of Steward is tested by it.
#[allow(clippy::disallowed_methods)]
fn pause() {
    std::thread::sleep(Duration::from_millis(50));
}

/// A throwaway slapd; stopped when dropped.
struct Slapd {
    dir: PathBuf,
    url: String,
}

impl Slapd {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("steward-slapd-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let conf = format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\ninclude /etc/ldap/schema/nis.schema\n\
             pidfile {d}/slapd.pid\nmoduleload back_mdb\ndatabase mdb\nsuffix \"{BASE}\"\nrootdn \"{ADMIN}\"\n\
             rootpw {PASSWORD}\ndirectory {d}/db\nmaxsize 104857600\n",
            d = dir.display()
        );
        std::fs::write(dir.join("slapd.conf"), conf).unwrap();
        let seed = format!(
            "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
             dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n\
             dn: cn=Seed,ou=people,{BASE}\nobjectClass: inetOrgPerson\ncn: Seed\nsn: Seed\nuid: seed\nmail: seed@example.test\n\n\
             dn: cn=Alice,ou=people,{BASE}\nobjectClass: inetOrgPerson\ncn: Alice\nsn: A\nuid: alice\nmail: alice@example.test\n\n\
             dn: cn=Weird,ou=people,{BASE}\nobjectClass: inetOrgPerson\ncn: Weird\nsn: W\nuid: weird\nmail: {WEIRD_MAIL}\n\n\
             dn: cn=Readers,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: Readers\nmember: cn=Seed,ou=people,{BASE}\n\n\
             dn: cn=Writers,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: Writers\nmember: cn=Seed,ou=people,{BASE}\n"
        );
        std::fs::write(dir.join("seed.ldif"), seed).unwrap();
        let slapadd = Command::new("/usr/sbin/slapadd")
            .args([
                "-f",
                &dir.join("slapd.conf").display().to_string(),
                "-l",
                &dir.join("seed.ldif").display().to_string(),
            ])
            .output()
            .expect("slapadd runs (Debian packages slapd and ldap-utils; scripts/test.sh installs them)");
        assert!(slapadd.status.success(), "slapadd: {}", String::from_utf8_lossy(&slapadd.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("ldap://127.0.0.1:{port}");
        let started = Command::new("/usr/sbin/slapd")
            .args(["-f", &dir.join("slapd.conf").display().to_string(), "-h", &format!("{url}/")])
            .status()
            .expect("slapd runs");
        assert!(started.success(), "slapd did not start");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not listen on {url}");
            pause();
        }
        Self { dir, url }
    }

    fn members(&self, group: &str) -> Vec<String> {
        let out = Command::new("ldapsearch")
            .args(["-x", "-LLL", "-o", "ldif-wrap=no", "-H", &self.url, "-D", ADMIN, "-w", PASSWORD, "-b"])
            .arg(format!("cn={group},ou=groups,{BASE}"))
            .args(["-s", "base", "(objectClass=*)", "member"])
            .output()
            .expect("ldapsearch runs");
        assert!(out.status.success(), "ldapsearch: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("member: "))
            .map(str::to_owned)
            .collect()
    }

    fn stop(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("slapd.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.dir.join("slapd.pid").exists() && Instant::now() < deadline {
                pause();
            }
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
    let slapd = Slapd::start();
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
    assert!(slapd.members("Readers").contains(&alice_dn), "{:?}", slapd.members("Readers"));
    assert!(c.holds(&group("Readers"), &alice).await.unwrap());
    assert!(!c.holds(&group("Writers"), &alice).await.unwrap());

    // A round's grants go over one connection, each with its own outcome.
    let seed = person_mail("seed@example.test");
    let nobody = person_mail("nobody@example.test");
    let (readers, writers) = (group("Readers"), group("Writers"));
    let round = c.grant_all(&[(&readers, &seed), (&writers, &alice), (&readers, &nobody)]).await;
    assert!(round[0].is_ok() && round[1].is_ok(), "{round:?}");
    assert!(matches!(&round[2], Err(ConnectorError::Permanent(m)) if m.contains("no single entry")), "{round:?}");
    assert!(slapd.members("Writers").contains(&alice_dn));
    c.revoke(&writers, &alice).await.unwrap();

    // Filter metacharacters in a user's attribute find exactly that user, nobody else.
    let weird = person_mail(WEIRD_MAIL);
    c.grant(&group("Writers"), &weird).await.unwrap();
    assert_eq!(slapd.members("Writers"), [format!("cn=Seed,ou=people,{BASE}"), format!("cn=Weird,ou=people,{BASE}")]);
    for hostile in ["*", "*)(mail=*", "alice@example.test)(|(mail=*", "x\0y", "\\2a"] {
        match c.grant(&group("Writers"), &person_mail(hostile)).await {
            Err(ConnectorError::Permanent(m)) => assert!(m.contains("no single entry"), "{hostile}: {m}"),
            other => panic!("{hostile}: expected a permanent refusal, got {other:?}"),
        }
    }
    assert_eq!(slapd.members("Writers").len(), 2, "no hostile value added anyone");

    c.revoke(&group("Readers"), &alice).await.unwrap();
    c.revoke(&group("Readers"), &alice).await.unwrap(); // not a member any more: fine
    c.revoke(&group("Readers"), &person_mail("nobody@example.test")).await.unwrap(); // unknown: holds nothing
    assert_eq!(slapd.members("Readers"), [format!("cn=Seed,ou=people,{BASE}")]);
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
