//! A throwaway OpenLDAP `slapd` (Debian's `slapd` and `ldap-utils`, which the test command
//! installs) with an mdb database seeded by `slapadd`, on a free loopback port; read back
//! with `ldapsearch`, changed behind Steward's back with `ldapmodify`. `Slapd::start_tls` also
//! serves TLS (StartTLS on the `ldap://` port, and an `ldaps://` port) with a certificate from
//! a throwaway CA made by the `openssl` command.

use std::path::{Path, PathBuf};
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
    /// `ldap://127.0.0.1:port` (plain, or upgraded with StartTLS when started with TLS).
    pub url: String,
    /// The `ldaps://` port, when started with TLS.
    ldaps_port: Option<u16>,
}

impl Slapd {
    /// A slapd holding `dc=example,dc=test`, `ou=people` and `ou=groups` under it, and the
    /// entries of `ldif` (LDIF records separated by blank lines).
    pub fn start(ldif: &str) -> Self {
        Self::start_with(ldif, false)
    }

    /// As `start`, and serving TLS with a certificate for `127.0.0.1` and `localhost` issued
    /// by a CA made for this server alone (`ca_pem`): StartTLS on `url`, and `ldaps_url`.
    pub fn start_tls(ldif: &str) -> Self {
        Self::start_with(ldif, true)
    }

    /// `ldaps://127.0.0.1:port` of a server started with `start_tls`.
    pub fn ldaps_url(&self) -> String {
        let port = self.ldaps_port.expect("this slapd serves no TLS: start it with Slapd::start_tls");
        format!("ldaps://127.0.0.1:{port}")
    }

    /// The PEM text of the CA that issued the certificate of a server started with `start_tls`.
    pub fn ca_pem(&self) -> String {
        assert!(self.ldaps_port.is_some(), "this slapd serves no TLS: start it with Slapd::start_tls");
        std::fs::read_to_string(self.dir.join("ca.pem")).unwrap()
    }

    fn start_with(ldif: &str, tls: bool) -> Self {
        let dir = std::env::temp_dir().join(format!("steward-slapd-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("db")).unwrap();
        // TLS settings are global: they go before the database section.
        let tls_conf = if tls {
            make_certificates(&dir);
            format!(
                "TLSCACertificateFile {d}/ca.pem\nTLSCertificateFile {d}/server.pem\n\
                 TLSCertificateKeyFile {d}/server.key\n",
                d = dir.display()
            )
        } else {
            String::new()
        };
        let conf = format!(
            "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\ninclude /etc/ldap/schema/nis.schema\n\
             pidfile {d}/slapd.pid\n{tls_conf}moduleload back_mdb\ndatabase mdb\nsuffix \"{BASE}\"\nrootdn \"{ADMIN}\"\n\
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
        let ldaps_port = tls.then(|| {
            loop {
                let p = free_port();
                if p != port {
                    break p;
                }
            }
        });
        let slapd = Self { dir, port, url: format!("ldap://127.0.0.1:{port}"), ldaps_port };
        slapd.run();
        slapd
    }

    fn run(&self) {
        let mut listen = format!("{}/", self.url);
        if self.ldaps_port.is_some() {
            listen.push_str(&format!(" {}/", self.ldaps_url()));
        }
        let started = Command::new("/usr/sbin/slapd")
            .arg("-f")
            .arg(self.dir.join("slapd.conf"))
            .arg("-h")
            .arg(listen)
            .status()
            .expect("slapd runs");
        assert!(started.success(), "slapd did not start");
        wait_for_port(self.port, "slapd");
        if let Some(port) = self.ldaps_port {
            wait_for_port(port, "slapd (ldaps)");
        }
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

    fn pid(&self) -> u32 {
        let pid = std::fs::read_to_string(self.dir.join("slapd.pid")).expect("slapd is running");
        pid.trim().parse().expect("slapd's pid file holds a number")
    }

    /// Freezes the server (`SIGSTOP`): connections are accepted by the kernel but nothing is
    /// answered, as with a hung directory.
    pub fn freeze(&self) {
        assert!(crate::signal(self.pid(), "STOP"), "slapd could not be stopped");
    }

    /// Lets a frozen server go on (`SIGCONT`).
    pub fn thaw(&self) {
        assert!(crate::signal(self.pid(), "CONT"), "slapd could not be continued");
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

/// Makes, in `dir`, a throwaway CA (`ca.pem`) and a server certificate it issued
/// (`server.pem`, key `server.key`) for `127.0.0.1` and `localhost`, with the `openssl` command.
/// P-256 keys: quick to make, and both GnuTLS (Debian's slapd) and rustls take them.
pub fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("/usr/bin/openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .expect("openssl runs (Debian package openssl)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    // Each CA its own name, as distinct real CAs have: another server's CA is then no issuer
    // at all rather than a namesake with the wrong key.
    let subject = format!("/CN=Steward test CA {}", dir.file_name().and_then(|n| n.to_str()).unwrap_or_default());
    let ca = ["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", &subject];
    let ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"];
    openssl(&[&["req", "-x509"], &ec[..], &ca[..], &ca_ext[..]].concat());
    openssl(
        &[&["req", "-new"], &ec[..], &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]]
            .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
    // slapd runs as the user running the tests (root here, no `-u`), so the key's owner-only
    // mode is enough; say so explicitly rather than trust openssl's umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}
