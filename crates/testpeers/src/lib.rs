//! Test harness only: the real peers Steward's tests deliver into, started on loopback for
//! one test and stopped when dropped. `Slapd` is Debian's OpenLDAP server seeded from an LDIF;
//! `Scim2Server` is PyPI's `scim2-server`; `OidcProvider` is an OpenID Connect provider built
//! on PyPI's authlib (`tests/oidc/provider.py`); `SmtpServer` is PyPI's aiosmtpd
//! (`tests/smtp/server.py`) storing the mail it receives in a maildir; `Chrome` is Debian's
//! headless Chromium under chromedriver, with screenshots and npm's axe-core, for the portal's
//! browser tests. A missing peer panics with how to install it: tests that need a peer never
//! skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod chrome;
pub mod oidc;
pub mod scim;
pub mod slapd;
pub mod smtp;

pub use chrome::{AxeViolation, Chrome};
pub use oidc::{AuthorizationResponse, MintOptions, OidcProvider};
pub use scim::Scim2Server;
pub use slapd::Slapd;
pub use smtp::{ReceivedMail, SmtpOptions, SmtpServer, SmtpTls};

use std::time::{Duration, Instant};

/// A moment's wait while polling a peer process, which starts and stops on its own: no
/// time-dependent behaviour of Steward is tested by it.
#[allow(clippy::disallowed_methods)]
pub fn pause() {
    std::thread::sleep(Duration::from_millis(50));
}

/// The Python of `$STEWARD_VENV`, else of the repository's `.venv`; panics saying how to
/// install it when missing, naming `needs` (what the peer needs from it).
pub fn venv_python(needs: &str) -> std::path::PathBuf {
    let venv = std::env::var_os("STEWARD_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv"));
    let p = venv.join("bin/python");
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/python-venv.sh` (the test command does) to install {needs}",
        p.display()
    );
    p
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something listens on `port`, or panics naming `what`.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on 127.0.0.1:{port}");
        pause();
    }
}

/// Sends `signal` (`STOP`, `CONT`, `TERM`, `KILL`) to process `pid`; whether it was delivered.
pub fn signal(pid: u32, signal: &str) -> bool {
    std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
