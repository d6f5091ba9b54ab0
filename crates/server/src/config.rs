//! Configuration: built-in defaults, then a TOML file, then `STEWARD_*` environment variables,
//! then command-line flags (flags win). Secrets are redacted wherever the config is shown.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
}

#[derive(Serialize)]
struct Defaults {
    version: u32,
    listen: &'static str,
    data_dir: &'static str,
    demo: bool,
    log_format: LogFormat,
    log: &'static str,
}

const DEFAULTS: Defaults = Defaults {
    version: 1,
    listen: "127.0.0.1:8080",
    data_dir: "data",
    demo: false,
    log_format: LogFormat::Text,
    log: "info",
};

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
        fig = fig.merge(Env::prefixed("STEWARD_").ignore(&["config"])).merge(Serialized::defaults(overrides));
        let cfg: Config = fig.extract().context("invalid configuration")?;
        if cfg.version != 1 {
            bail!("configuration version {} is not supported; use version = 1", cfg.version);
        }
        if let Some(u) = &cfg.public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            bail!("public_url must start with http:// or https://, got '{u}'");
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
            .finish()
    }
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
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            for shown in [format!("{c:?}"), c.redacted_toml()] {
                assert!(!shown.contains("hunter2"), "{shown}");
                assert!(!shown.contains("tok-very-secret"), "{shown}");
            }
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
}
