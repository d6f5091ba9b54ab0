//! A throwaway OpenLDAP `slapd` (Debian's `slapd` and `ldap-utils`, which the test command
//! installs) with an mdb database seeded by `slapadd`, on a free loopback port; read back
//! with `ldapsearch`, changed behind Steward's back with `ldapmodify`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, pause, wait_for_port};

/// The directory's suffix, its administrator and their password.
pub const BASE: &str = "dc=example,dc=test";
pub const ADMIN: &str = "cn=admin,dc=example,dc=test";
pub const PASSWORD: &str = "slapd-secret";

/// A running slapd; stopped and deleted when dropped.
pub struct Slapd {
    dir: PathBuf,
    port: u16,
    pub url: String,
}

impl Slapd {
    /// A slapd holding `dc=example,dc=test`, `ou=people` and `ou=groups` under it, and the
    /// entries of `ldif` (LDIF records separated by blank lines).
    pub fn start(ldif: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("steward-slapd-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let conf = format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\ninclude /etc/ldap/schema/nis.schema\n\
             pidfile {d}/slapd.pid\nmoduleload back_mdb\ndatabase mdb\nsuffix \"{BASE}\"\nrootdn \"{ADMIN}\"\n\
             rootpw {PASSWORD}\ndirectory {d}/db\nmaxsize 1073741824\nsizelimit unlimited\n\
             index objectClass eq\nindex mail,uid,cn eq\nindex member,uniqueMember,memberUid eq\n",
            d = dir.display()
        );
        std::fs::write(dir.join("slapd.conf"), conf).unwrap();
        let seed = format!(
            "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
             dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n{ldif}\n"
        );
        std::fs::write(dir.join("seed.ldif"), seed).unwrap();
        let slapadd = Command::new("/usr/sbin/slapadd")
            .arg("-q")
            .arg("-f")
            .arg(dir.join("slapd.conf"))
            .arg("-l")
            .arg(dir.join("seed.ldif"))
            .output()
            .expect("slapadd runs (Debian packages slapd and ldap-utils; scripts/test.sh installs them)");
        assert!(slapadd.status.success(), "slapadd: {}", String::from_utf8_lossy(&slapadd.stderr));
        let port = free_port();
        let slapd = Self { dir, port, url: format!("ldap://127.0.0.1:{port}") };
        slapd.run();
        slapd
    }

    fn run(&self) {
        let started = Command::new("/usr/sbin/slapd")
            .arg("-f")
            .arg(self.dir.join("slapd.conf"))
            .arg("-h")
            .arg(format!("{}/", self.url))
            .status()
            .expect("slapd runs");
        assert!(started.success(), "slapd did not start");
        wait_for_port(self.port, "slapd");
    }

    /// The values of `attribute` of the entry `dn`, read with `ldapsearch`.
    pub fn values(&self, dn: &str, attribute: &str) -> Vec<String> {
        let out = Command::new("ldapsearch")
            .args(["-x", "-LLL", "-o", "ldif-wrap=no", "-H", &self.url, "-D", ADMIN, "-w", PASSWORD, "-b", dn])
            .args(["-s", "base", "(objectClass=*)", attribute])
            .output()
            .expect("ldapsearch runs");
        assert!(out.status.success(), "ldapsearch: {}", String::from_utf8_lossy(&out.stderr));
        let prefix = format!("{attribute}: ");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(str::to_owned)
            .collect()
    }

    /// The `member` values of the group `dn`.
    pub fn members(&self, dn: &str) -> Vec<String> {
        self.values(dn, "member")
    }

    /// Applies an LDIF change record with `ldapmodify`, as an administrator would by hand.
    pub fn modify(&self, ldif: &str) {
        use std::io::Write;
        let mut child = Command::new("ldapmodify")
            .args(["-x", "-H", &self.url, "-D", ADMIN, "-w", PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify runs");
        child.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "ldapmodify: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Stops the server (its data stays for `restart`).
    pub fn stop(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("slapd.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.dir.join("slapd.pid").exists() && Instant::now() < deadline {
                pause();
            }
        }
    }

    /// Starts the stopped server again, on the same port, with the same data.
    pub fn restart(&self) {
        self.run();
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
