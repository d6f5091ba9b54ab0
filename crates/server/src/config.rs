//! Configuration: built-in defaults, then a TOML file, then `STEWARD_*` environment variables,
//! then command-line flags (flags win). Secrets are redacted wherever the config is shown.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The merged configuration.
#[derive(Clone, Deserialize)]
pub struct Config {
    /// Schema version of the configuration file; only 1 exists.
    pub version: u32,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the default SQLite database lives.
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite:…`; empty means `sqlite://<data_dir>/steward.db`.
    #[serde(default)]
    pub database_url: Option<SecretString>,
    /// The externally visible base URL, for `@odata.nextLink` (for example https://steward.example.com).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Seed the demo organization at start-up (idempotent).
    pub demo: bool,
    pub log_format: LogFormat,
    /// A tracing filter, such as `info` or `steward_web=debug,info`.
    pub log: String,
    /// When set, this value is accepted as a global-administrator bearer token.
    #[serde(default)]
    pub bootstrap_admin_token: Option<SecretString>,
    /// The key that seals connections' credentials at rest: 32 random bytes in base64 (for
    /// example `openssl rand -base64 32`). Without it, connections can be registered but
    /// credentials cannot be stored. Keep it out of the file: `STEWARD_SECRETS_KEY`.
    #[serde(default)]
    pub secrets_key: Option<SecretString>,
    /// The background job worker (`[worker]` in the file, `STEWARD_WORKER__*` in the environment).
    pub worker: WorkerConfig,
}

/// The background worker that runs deliveries and the sweep (approval timeouts, scheduled
/// starts, expiries). Any number of processes may run it against one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerConfig {
    /// Run the worker in this process; `false` makes an API-only process.
    pub enabled: bool,
    /// How long to wait before looking again when no job was due, in milliseconds.
    pub poll_interval_ms: u64,
}

impl WorkerConfig {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
}

/// The worker settings set on the command line.
#[derive(Debug, Default, Serialize)]
pub struct WorkerOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_interval_ms: Option<u64>,
}

impl WorkerOverrides {
    fn is_empty(&self) -> bool {
        self.enabled.is_none() && self.poll_interval_ms.is_none()
    }
}

/// What is set on the command line; `None` leaves the lower layers alone.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    #[serde(skip_serializing_if = "WorkerOverrides::is_empty")]
    pub worker: WorkerOverrides,
}

#[derive(Serialize)]
struct Defaults {
    version: u32,
    listen: &'static str,
    data_dir: &'static str,
    demo: bool,
    log_format: LogFormat,
    log: &'static str,
    worker: WorkerConfig,
}

const DEFAULTS: Defaults = Defaults {
    version: 1,
    listen: "127.0.0.1:8080",
    data_dir: "data",
    demo: false,
    log_format: LogFormat::Text,
    log: "info",
    worker: WorkerConfig { enabled: true, poll_interval_ms: 200 },
};

/// The longest accepted poll interval: a worker that looks less often than this delays
/// deliveries noticeably.
const MAX_POLL_INTERVAL_MS: u64 = 60_000;

impl Config {
    /// Loads the layers. `file` is `--config`; without it `STEWARD_CONFIG`, then `./steward.toml`
    /// if present.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> anyhow::Result<Self> {
        let file = file.map(Path::to_path_buf).or_else(|| std::env::var_os("STEWARD_CONFIG").map(PathBuf::from));
        let mut fig = Figment::from(Serialized::defaults(DEFAULTS));
        match &file {
            Some(f) => {
                if !f.exists() {
                    bail!("configuration file {} does not exist", f.display());
                }
                fig = fig.merge(Toml::file_exact(f));
            }
            None if Path::new("steward.toml").exists() => fig = fig.merge(Toml::file_exact("steward.toml")),
            None => {}
        }
        fig = fig
            .merge(Env::prefixed("STEWARD_").ignore(&["config", "allow_test_clock"]).split("__"))
            .merge(Serialized::defaults(overrides));
        let cfg: Config = fig.extract().context("invalid configuration")?;
        if cfg.version != 1 {
            bail!("configuration version {} is not supported; use version = 1", cfg.version);
        }
        if let Some(u) = &cfg.public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            bail!("public_url must start with http:// or https://, got '{u}'");
        }
        if !(1..=MAX_POLL_INTERVAL_MS).contains(&cfg.worker.poll_interval_ms) {
            bail!(
                "worker.poll_interval_ms must be between 1 and {MAX_POLL_INTERVAL_MS}, got {}",
                cfg.worker.poll_interval_ms
            );
        }
        Ok(cfg)
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) if !u.expose_secret().is_empty() => u.expose_secret().to_owned(),
            _ => format!("sqlite://{}", self.data_dir.join("steward.db").display()),
        }
    }

    /// The configuration as TOML, secrets replaced.
    pub fn redacted_toml(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("version = {}\n", self.version));
        out.push_str(&format!("listen = \"{}\"\n", self.listen));
        out.push_str(&format!("data_dir = \"{}\"\n", self.data_dir.display()));
        out.push_str(&format!("database_url = \"{}\"\n", redact_url(&self.database_url())));
        if let Some(u) = &self.public_url {
            out.push_str(&format!("public_url = \"{u}\"\n"));
        }
        out.push_str(&format!("demo = {}\n", self.demo));
        out.push_str(&format!(
            "log_format = \"{}\"\n",
            if self.log_format == LogFormat::Json { "json" } else { "text" }
        ));
        out.push_str(&format!("log = \"{}\"\n", self.log));
        if self.bootstrap_admin_token.is_some() {
            out.push_str("bootstrap_admin_token = \"[REDACTED]\"\n");
        }
        if self.secrets_key.is_some() {
            out.push_str("secrets_key = \"[REDACTED]\"\n");
        }
        out.push_str("\n[worker]\n");
        out.push_str(&format!("enabled = {}\n", self.worker.enabled));
        out.push_str(&format!("poll_interval_ms = {}\n", self.worker.poll_interval_ms));
        out
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(&self.database_url()))
            .field("public_url", &self.public_url)
            .field("demo", &self.demo)
            .field("bootstrap_admin_token", &self.bootstrap_admin_token.as_ref().map(|_| "[REDACTED]"))
            .field("secrets_key", &self.secrets_key.as_ref().map(|_| "[REDACTED]"))
            .field("worker", &self.worker)
            .finish()
    }
}

/// The connectors this binary builds and, when `secrets_key` is set, the sealer for their
/// credentials. A key that is set but malformed stops start-up: silently running without one
/// would refuse credentials later with a less useful message.
pub fn connection_setup(cfg: &Config) -> anyhow::Result<steward_app::connections::ConnectionSetup> {
    let sealer = match &cfg.secrets_key {
        Some(key) => {
            Some(steward_app::secrets::Sealer::from_base64(key).map_err(|e| anyhow::anyhow!("secrets_key: {e}"))?)
        }
        None => None,
    };
    Ok(steward_app::connections::ConnectionSetup {
        factory: Some(std::sync::Arc::new(steward_connectors::Factory)),
        sealer,
    })
}

/// The environment variable that must be `1` for `--test-clock` to be accepted, so a manual
/// clock is never switched on by a stray flag in production.
pub const ALLOW_TEST_CLOCK: &str = "STEWARD_ALLOW_TEST_CLOCK";

/// The start of the test clock when `--test-clock` is given (`arg`) and `STEWARD_ALLOW_TEST_CLOCK`
/// (`allow`) is `1`; an error when only the flag is there or its time does not parse.
pub fn test_clock_start(arg: Option<&str>, allow: Option<&str>) -> anyhow::Result<Option<jiff::Timestamp>> {
    let Some(arg) = arg else {
        return Ok(None);
    };
    if allow != Some("1") {
        bail!(
            "--test-clock is for tests only: it runs the server on a clock that API calls can move. \
             Set {ALLOW_TEST_CLOCK}=1 as well to confirm."
        );
    }
    let t = steward_domain::time::parse_datetime(arg).map_err(|e| anyhow::anyhow!("--test-clock: {e}"))?;
    // Microseconds, what the stores keep (as the system clock gives).
    Ok(Some(jiff::Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t)))
}

/// Hides the password of a `scheme://user:password@host` URL.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:[REDACTED]@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's own error type
mod tests {
    use super::*;

    #[test]
    fn precedence_is_defaults_file_env_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "steward.toml",
                "version = 1\nlisten = \"127.0.0.1:9000\"\ndemo = true\nlog = \"debug\"\n",
            )?;
            jail.set_env("STEWARD_LISTEN", "127.0.0.1:9001");
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 9001, "env beats file");
            assert!(c.demo, "file beats defaults");
            assert_eq!(c.log, "debug");
            let c = Config::load(None, Overrides { listen: Some("127.0.0.1:9002".into()), ..Overrides::default() })
                .map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 9002, "flags beat env");
            Ok(())
        });
    }

    #[test]
    fn a_malformed_secrets_key_stops_start_up() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("STEWARD_SECRETS_KEY", "too-short");
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            let e = connection_setup(&c).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("32 bytes") && !e.contains("too-short"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn default_database_is_sqlite_in_data_dir() {
        figment::Jail::expect_with(|_| {
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.database_url(), "sqlite://data/steward.db");
            assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
            Ok(())
        });
    }

    #[test]
    fn secrets_are_redacted() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("STEWARD_DATABASE_URL", "postgres://steward:hunter2@db/steward");
            jail.set_env("STEWARD_BOOTSTRAP_ADMIN_TOKEN", "tok-very-secret");
            jail.set_env("STEWARD_SECRETS_KEY", "c2VjcmV0LWtleS1vZi0zMi1ieXRlcy1mb3ItdGVzdHM=");
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            for shown in [format!("{c:?}"), c.redacted_toml()] {
                assert!(!shown.contains("hunter2"), "{shown}");
                assert!(!shown.contains("tok-very-secret"), "{shown}");
                assert!(!shown.contains("c2VjcmV0"), "{shown}");
                assert!(shown.contains("secrets_key"), "{shown}");
            }
            assert!(connection_setup(&c).map_err(|e| e.to_string())?.sealer.is_some());
            assert_eq!(c.database_url(), "postgres://steward:hunter2@db/steward");
            Ok(())
        });
    }

    #[test]
    fn bad_values_are_reported() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("STEWARD_LISTEN", "not an address");
            assert!(Config::load(None, Overrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn the_worker_is_on_by_default_and_set_by_file_env_and_flags() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.worker, WorkerConfig { enabled: true, poll_interval_ms: 200 });
            assert_eq!(c.worker.poll_interval(), Duration::from_millis(200));

            jail.create_file("steward.toml", "version = 1\n[worker]\npoll_interval_ms = 50\n")?;
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(
                c.worker,
                WorkerConfig { enabled: true, poll_interval_ms: 50 },
                "a partial table keeps defaults"
            );

            jail.set_env("STEWARD_WORKER__ENABLED", "false");
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.worker, WorkerConfig { enabled: false, poll_interval_ms: 50 }, "env nests with __");

            let flags = Overrides {
                worker: WorkerOverrides { enabled: None, poll_interval_ms: Some(10) },
                ..Overrides::default()
            };
            let c = Config::load(None, flags).map_err(|e| e.to_string())?;
            assert_eq!(c.worker, WorkerConfig { enabled: false, poll_interval_ms: 10 }, "one flag overrides one key");
            assert!(c.redacted_toml().contains("[worker]\nenabled = false\npoll_interval_ms = 10\n"));
            Ok(())
        });
    }

    #[test]
    fn a_poll_interval_out_of_range_is_refused() {
        figment::Jail::expect_with(|jail| {
            for bad in ["0", "600000"] {
                jail.set_env("STEWARD_WORKER__POLL_INTERVAL_MS", bad);
                let e = Config::load(None, Overrides::default()).err().map(|e| e.to_string()).unwrap_or_default();
                assert!(e.contains("poll_interval_ms"), "{bad}: {e}");
            }
            Ok(())
        });
    }

    #[test]
    fn the_test_clock_needs_its_environment_switch() {
        assert_eq!(test_clock_start(None, None).unwrap(), None);
        assert_eq!(test_clock_start(None, Some("1")).unwrap(), None);
        for allow in [None, Some("0"), Some("true"), Some("")] {
            let e = test_clock_start(Some("2031-03-01T09:00:00Z"), allow).unwrap_err().to_string();
            assert!(e.contains(ALLOW_TEST_CLOCK), "{allow:?}: {e}");
        }
        let t = test_clock_start(Some("2031-03-01T09:00:00.123456789+00:00"), Some("1")).unwrap().unwrap();
        assert_eq!(t.to_string(), "2031-03-01T09:00:00.123456Z", "kept to microseconds");
        assert!(test_clock_start(Some("next tuesday"), Some("1")).is_err());
    }
}
