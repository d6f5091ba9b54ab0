//! What the sign-in tests share: a real `steward serve` over HTTPS (a throwaway CA made by
//! openssl) that trusts the test OpenID Connect provider, stopped and cleaned up when dropped.

use std::path::PathBuf;
use std::process::{Child, Command};

use steward_testpeers::{OidcProvider, free_port, wait_for_port};

/// A running `steward serve`; killed and its directory removed when dropped.
pub struct HttpsSteward {
    child: Child,
    /// Holds `ca.pem`, `server.pem`, `server.key`, the database and `serve.log`.
    pub dir: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub base: String,
}

impl HttpsSteward {
    /// Starts it with `args` added to `serve` (`--demo`, …) and `env` set, on SQLite in its own
    /// directory, with the provider's issuer, client and API audience configured.
    pub fn start(peer: &OidcProvider, args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("stw-https-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
        std::fs::create_dir_all(&dir).unwrap();
        steward_testpeers::slapd::make_certificates(&dir);
        let port = free_port();
        let base = format!("https://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("serve.log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--public-url", &base])
            .args(args)
            .arg("--database-url")
            .arg(format!("sqlite://{}", dir.join("steward.db").display()))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--tls-cert")
            .arg(dir.join("server.pem"))
            .arg("--tls-key")
            .arg(dir.join("server.key"))
            .env_remove("STEWARD_CONFIG")
            .env("STEWARD_OIDC__ISSUER", peer.issuer())
            .env("STEWARD_OIDC__CLIENT_ID", peer.client_id())
            .env("STEWARD_OIDC__CLIENT_SECRET", peer.client_secret())
            .env("STEWARD_OIDC__AUDIENCE", format!("[{}]", peer.api_audience()))
            .env("STEWARD_LOG", "warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("the steward binary runs");
        let server = Self { child, dir, base };
        wait_for_port(port, "steward serve");
        server
    }
}

impl Drop for HttpsSteward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
