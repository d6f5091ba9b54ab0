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
    /// The bearer token of the SCIM client (the identity provider that provisions the
    /// directory through `/scim/v2`). Without it SCIM provisioning is off. Keep it out of the
    /// file: `STEWARD_SCIM_TOKEN`. At least 16 characters, and not the bootstrap token.
    #[serde(default)]
    pub scim_token: Option<SecretString>,
    /// The key that seals connections' credentials at rest: 32 random bytes in base64 (for
    /// example `openssl rand -base64 32`). Without it, connections can be registered but
    /// credentials cannot be stored. Keep it out of the file: `STEWARD_SECRETS_KEY`.
    #[serde(default)]
    pub secrets_key: Option<SecretString>,
    /// The bearer token Prometheus sends to read `/metrics`. Without it metrics are off (the
    /// endpoint answers 404): they reveal counts. Keep it out of the file:
    /// `STEWARD_METRICS_TOKEN`. At least 16 characters, and not another token of this server.
    #[serde(default)]
    pub metrics_token: Option<SecretString>,
    /// The background job worker (`[worker]` in the file, `STEWARD_WORKER__*` in the environment).
    pub worker: WorkerConfig,
    /// The audit trail (`[audit]`): how long its records are kept.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Sign-in through an OpenID Connect provider (`[oidc]`): the portal's sign-in at
    /// `/auth/login` and the provider's access tokens on the API. Off when absent.
    #[serde(default)]
    pub oidc: Option<OidcConfig>,
    /// How long portal sessions last (`[session]`).
    #[serde(default)]
    pub session: SessionConfig,
    /// Proxies (CIDRs, such as `10.0.0.0/8` or `192.0.2.7/32`) whose `X-Forwarded-For` names the
    /// client; from any other peer the header is ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// HTTPS served by Steward itself (`[tls]`): a PEM certificate chain and its private key.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The SMTP relay notification email goes through (`[smtp]`). Without it no mail is sent.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    /// Which notifications are sent, and when (`[notifications]`).
    #[serde(default)]
    pub notifications: NotificationsConfig,
}

/// How the connection to the SMTP relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurityConfig {
    /// Plain SMTP, to a relay on this machine only.
    None,
    /// STARTTLS, required (usually port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// The SMTP relay (`[smtp]`, `STEWARD_SMTP__*`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// A host name or IP address (not a URL).
    pub host: String,
    /// Default: 587 for starttls, 465 for tls, 25 for none.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub security: SmtpSecurityConfig,
    /// Authenticate as this user (needs `password`).
    #[serde(default)]
    pub username: Option<String>,
    /// Keep it out of the file: `STEWARD_SMTP__PASSWORD`.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// The sender address of every mail.
    pub from: String,
    /// The name shown with it (default: Steward).
    #[serde(default)]
    pub from_name: Option<String>,
    /// The longest one send may take (default 30).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// A PEM file of the CA that issued the relay's certificate, trusted instead of the public
    /// ones.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl SmtpConfig {
    /// The mailer's settings, checked: what is wrong is said with the setting's name.
    pub fn settings(&self) -> anyhow::Result<steward_connectors::smtp::SmtpSettings> {
        use steward_connectors::smtp::{SmtpSecurity, SmtpSettings};
        let security = match self.security {
            SmtpSecurityConfig::None => SmtpSecurity::None,
            SmtpSecurityConfig::Starttls => SmtpSecurity::StartTls,
            SmtpSecurityConfig::Tls => SmtpSecurity::Tls,
        };
        let name = Some(self.from_name.clone().unwrap_or_else(|| "Steward".to_owned()));
        let from = steward_app::mail::Address::new(name, self.from.trim())
            .map_err(|e| anyhow::anyhow!("[smtp] from / from_name: {e}"))?;
        let mut s = SmtpSettings::new(self.host.trim(), security, from);
        if let Some(p) = self.port {
            s.port = p;
        }
        s.username = self.username.clone();
        s.password = self.password.clone();
        if let Some(t) = self.timeout_seconds {
            s.timeout_seconds = t;
        }
        if let Some(f) = &self.ca_file {
            s.ca_certificate = Some(
                std::fs::read_to_string(f).with_context(|| format!("[smtp] ca_file: cannot read {}", f.display()))?,
            );
        }
        s.check().map_err(|e| anyhow::anyhow!("[smtp]: {e}"))?;
        Ok(s)
    }
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("from", &self.from)
            .field("from_name", &self.from_name)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Which notifications are sent (`[notifications]`, `STEWARD_NOTIFICATIONS__*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Kinds never sent, by name (`accessEnded`, `expiryWarning`, …; see the README).
    pub disabled: Vec<String>,
    /// How many days before an assignment ends its holder is warned (each 1 to 365).
    pub expiry_warning_days: Vec<u32>,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self { disabled: Vec::new(), expiry_warning_days: vec![14, 1] }
    }
}

impl NotificationsConfig {
    /// The engine's settings, checked.
    pub fn settings(&self) -> anyhow::Result<steward_app::notify::Settings> {
        let disabled = steward_domain::notification::NotificationKind::parse_list(
            self.disabled.iter().map(String::as_str),
            "notifications.disabled",
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        if let Some(d) = self.expiry_warning_days.iter().find(|d| !(1..=365).contains(*d)) {
            bail!("notifications.expiry_warning_days must each be between 1 and 365, got {d}");
        }
        Ok(steward_app::notify::Settings { disabled, expiry_warning_days: self.expiry_warning_days.clone() })
    }
}

/// The OpenID Connect provider (`[oidc]`, `STEWARD_OIDC__*`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer identifier (exactly as the provider's discovery document names it).
    pub issuer: String,
    /// Steward's client id at the provider (the `aud` of its ID tokens).
    pub client_id: String,
    /// The client secret. Keep it out of the file: `STEWARD_OIDC__CLIENT_SECRET`.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// The `aud` values accepted on API access tokens (such as `api://steward`); the ID token's
    /// audience is the client id, so the API's must be named here. Empty: the client id.
    #[serde(default)]
    pub audience: Vec<String>,
    /// Signature algorithms accepted (default RS256 and ES256; HMAC and none are refused).
    #[serde(default)]
    pub algorithms: Vec<steward_oidc::Algorithm>,
    /// Where the provider sends the browser back; default `<public_url>/auth/callback`.
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// Where the provider sends the browser after signing out there; default `<public_url>/`.
    #[serde(default)]
    pub post_logout_redirect_url: Option<String>,
    /// Scopes asked for at sign-in beyond `openid profile email`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Which claims name the directory user, and whether unknown users are created
    /// (`[oidc.claims]`).
    #[serde(default)]
    pub claims: steward_app::identity::ClaimMapping,
}

impl OidcConfig {
    /// The provider's configuration for `steward_oidc`.
    pub fn provider_config(&self) -> steward_oidc::ProviderConfig {
        let mut c = steward_oidc::ProviderConfig::new(self.issuer.clone(), self.client_id.clone());
        if let Some(secret) = &self.client_secret {
            c = c.with_client_secret(secret.clone());
        }
        if !self.audience.is_empty() {
            c = c.with_audience(self.audience.clone());
        }
        if !self.algorithms.is_empty() {
            c = c.with_algorithms(self.algorithms.clone());
        }
        c
    }
}

impl fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[REDACTED]"))
            .field("audience", &self.audience)
            .field("algorithms", &self.algorithms)
            .field("redirect_url", &self.redirect_url)
            .field("post_logout_redirect_url", &self.post_logout_redirect_url)
            .field("scopes", &self.scopes)
            .field("claims", &self.claims)
            .finish()
    }
}

/// Portal sessions (`[session]`, `STEWARD_SESSION__*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// A session unused for this many minutes ends (1 to 1440; default 30).
    pub idle_minutes: u64,
    /// A session ends this many hours after sign-in (1 to 720; default 12).
    pub absolute_hours: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self { idle_minutes: 30, absolute_hours: 12 }
    }
}

impl SessionConfig {
    pub fn policy(&self) -> steward_app::sessions::SessionPolicy {
        let mins = i64::try_from(self.idle_minutes).unwrap_or(30);
        let hours = i64::try_from(self.absolute_hours).unwrap_or(12);
        steward_app::sessions::SessionPolicy {
            idle: jiff::SignedDuration::from_mins(mins),
            absolute: jiff::SignedDuration::from_hours(hours),
        }
    }
}

/// Steward's own HTTPS (`[tls]`, `STEWARD_TLS__*`, `--tls-cert`/`--tls-key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM, leaf first.
    pub cert_file: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
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

/// The audit trail's settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditConfig {
    /// Delete audit records older than this many days (with a signed checkpoint at the new
    /// start, so `steward audit verify` still trusts the trail); absent: keep everything.
    #[serde(default)]
    pub retention_days: Option<u32>,
}

impl AuditConfig {
    pub fn retention(&self) -> Option<jiff::SignedDuration> {
        self.retention_days.map(|d| jiff::SignedDuration::from_hours(24 * i64::from(d)))
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
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

/// The shortest SCIM token accepted: the identity provider holds it, so it must not be
/// guessable.
const MIN_SCIM_TOKEN: usize = 16;

/// The shortest metrics token accepted: Prometheus holds it, and it must not be guessable.
const MIN_METRICS_TOKEN: usize = 16;

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
        if let Some(t) = cfg.scim_token.as_ref().map(|t| t.expose_secret()).filter(|t| !t.is_empty()) {
            if t.chars().count() < MIN_SCIM_TOKEN {
                bail!(
                    "scim_token must be at least {MIN_SCIM_TOKEN} characters long (for example: openssl rand -hex 32)"
                );
            }
            if cfg.bootstrap_admin_token.as_ref().is_some_and(|b| b.expose_secret() == t) {
                bail!("scim_token must differ from bootstrap_admin_token: the SCIM client is not an administrator");
            }
        }
        if let Some(t) = cfg.metrics_token.as_ref().map(|t| t.expose_secret()).filter(|t| !t.is_empty()) {
            if t.chars().count() < MIN_METRICS_TOKEN {
                bail!(
                    "metrics_token must be at least {MIN_METRICS_TOKEN} characters long (for example: openssl rand -hex 32)"
                );
            }
            let same = |other: &Option<SecretString>| other.as_ref().is_some_and(|o| o.expose_secret() == t);
            if same(&cfg.bootstrap_admin_token) || same(&cfg.scim_token) {
                bail!(
                    "metrics_token must differ from bootstrap_admin_token and scim_token: Prometheus may only read metrics"
                );
            }
        }
        if !(1..=1440).contains(&cfg.session.idle_minutes) {
            bail!("session.idle_minutes must be between 1 and 1440, got {}", cfg.session.idle_minutes);
        }
        if !(1..=720).contains(&cfg.session.absolute_hours) {
            bail!("session.absolute_hours must be between 1 and 720, got {}", cfg.session.absolute_hours);
        }
        cfg.trusted_proxies()?;
        if let Some(o) = &cfg.oidc {
            o.provider_config().checked().map_err(|e| anyhow::anyhow!("[oidc]: {e}"))?;
            if o.redirect_url.is_none() && cfg.public_url.is_none() {
                bail!(
                    "[oidc] needs public_url (or oidc.redirect_url): the provider sends browsers back to <public_url>/auth/callback"
                );
            }
        }
        if let Some(smtp) = &cfg.smtp {
            smtp.settings()?;
        }
        cfg.notifications.settings()?;
        if cfg.audit.retention_days == Some(0) {
            anyhow::bail!("audit.retention_days must be at least 1 (leave it out to keep every record)");
        }
        if !(1..=MAX_POLL_INTERVAL_MS).contains(&cfg.worker.poll_interval_ms) {
            bail!(
                "worker.poll_interval_ms must be between 1 and {MAX_POLL_INTERVAL_MS}, got {}",
                cfg.worker.poll_interval_ms
            );
        }
        Ok(cfg)
    }

    /// The trusted proxies, parsed.
    pub fn trusted_proxies(&self) -> anyhow::Result<Vec<ipnet::IpNet>> {
        self.trusted_proxies
            .iter()
            .map(|p| {
                let p = p.trim();
                p.parse::<ipnet::IpNet>().or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)).map_err(
                    |_| anyhow::anyhow!("trusted_proxies: '{p}' is not an address or CIDR (such as 10.0.0.0/8)"),
                )
            })
            .collect()
    }

    /// Where the provider sends browsers back after sign-in.
    pub fn redirect_url(&self) -> Option<String> {
        let o = self.oidc.as_ref()?;
        o.redirect_url
            .clone()
            .or_else(|| self.public_url.as_ref().map(|u| format!("{}/auth/callback", u.trim_end_matches('/'))))
    }

    /// Where the provider sends browsers after signing out there.
    pub fn post_logout_redirect_url(&self) -> Option<String> {
        let o = self.oidc.as_ref()?;
        o.post_logout_redirect_url
            .clone()
            .or_else(|| self.public_url.as_ref().map(|u| format!("{}/", u.trim_end_matches('/'))))
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
        if self.scim_token.is_some() {
            out.push_str("scim_token = \"[REDACTED]\"\n");
        }
        if self.secrets_key.is_some() {
            out.push_str("secrets_key = \"[REDACTED]\"\n");
        }
        if self.metrics_token.is_some() {
            out.push_str("metrics_token = \"[REDACTED]\"\n");
        }
        if !self.trusted_proxies.is_empty() {
            out.push_str(&format!("trusted_proxies = {:?}\n", self.trusted_proxies));
        }
        if let Some(d) = self.audit.retention_days {
            out.push_str(&format!("\n[audit]\nretention_days = {d}\n"));
        }
        out.push_str("\n[worker]\n");
        out.push_str(&format!("enabled = {}\n", self.worker.enabled));
        out.push_str(&format!("poll_interval_ms = {}\n", self.worker.poll_interval_ms));
        out.push_str("\n[session]\n");
        out.push_str(&format!("idle_minutes = {}\n", self.session.idle_minutes));
        out.push_str(&format!("absolute_hours = {}\n", self.session.absolute_hours));
        if let Some(t) = &self.tls {
            out.push_str("\n[tls]\n");
            out.push_str(&format!("cert_file = {:?}\n", t.cert_file.display().to_string()));
            out.push_str(&format!("key_file = {:?}\n", t.key_file.display().to_string()));
        }
        if let Some(m) = &self.smtp {
            out.push_str("\n[smtp]\n");
            out.push_str(&format!("host = {:?}\n", m.host));
            if let Some(p) = m.port {
                out.push_str(&format!("port = {p}\n"));
            }
            let security = match m.security {
                SmtpSecurityConfig::None => "none",
                SmtpSecurityConfig::Starttls => "starttls",
                SmtpSecurityConfig::Tls => "tls",
            };
            out.push_str(&format!("security = \"{security}\"\n"));
            if let Some(u) = &m.username {
                out.push_str(&format!("username = {u:?}\n"));
            }
            if m.password.is_some() {
                out.push_str("password = \"[REDACTED]\"\n");
            }
            out.push_str(&format!("from = {:?}\n", m.from));
            if let Some(n) = &m.from_name {
                out.push_str(&format!("from_name = {n:?}\n"));
            }
            if let Some(t) = m.timeout_seconds {
                out.push_str(&format!("timeout_seconds = {t}\n"));
            }
            if let Some(f) = &m.ca_file {
                out.push_str(&format!("ca_file = {:?}\n", f.display().to_string()));
            }
        }
        out.push_str("\n[notifications]\n");
        out.push_str(&format!("disabled = {:?}\n", self.notifications.disabled));
        out.push_str(&format!("expiry_warning_days = {:?}\n", self.notifications.expiry_warning_days));
        if let Some(o) = &self.oidc {
            out.push_str("\n[oidc]\n");
            out.push_str(&format!("issuer = {:?}\n", o.issuer));
            out.push_str(&format!("client_id = {:?}\n", o.client_id));
            if o.client_secret.is_some() {
                out.push_str("client_secret = \"[REDACTED]\"\n");
            }
            out.push_str(&format!("audience = {:?}\n", o.audience));
            if !o.algorithms.is_empty() {
                let algs: Vec<String> = o.algorithms.iter().map(|a| format!("{a:?}")).collect();
                out.push_str(&format!("algorithms = {algs:?}\n"));
            }
            if let Some(u) = self.redirect_url() {
                out.push_str(&format!("redirect_url = {u:?}\n"));
            }
            if let Some(u) = self.post_logout_redirect_url() {
                out.push_str(&format!("post_logout_redirect_url = {u:?}\n"));
            }
            out.push_str(&format!("scopes = {:?}\n", o.scopes));
            out.push_str(&format!("# claims: {:?}\n", o.claims));
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
            .field("scim_token", &self.scim_token.as_ref().map(|_| "[REDACTED]"))
            .field("secrets_key", &self.secrets_key.as_ref().map(|_| "[REDACTED]"))
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "[REDACTED]"))
            .field("worker", &self.worker)
            .field("audit", &self.audit)
            .field("oidc", &self.oidc)
            .field("session", &self.session)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("tls", &self.tls)
            .field("smtp", &self.smtp)
            .field("notifications", &self.notifications)
            .finish()
    }
}

/// The key that signs the audit chain's checkpoints: derived from `secrets_key`, so the
/// server that signs and `steward audit verify` that checks hold the same one; none without it.
pub fn audit_key(cfg: &Config) -> Option<steward_domain::audit_chain::CheckpointKey> {
    use secrecy::ExposeSecret;
    cfg.secrets_key
        .as_ref()
        .map(|k| steward_domain::audit_chain::CheckpointKey::derive(k.expose_secret().trim().as_bytes()))
}

/// The key that signs one-click decision links in approvers' mail: derived from
/// `secrets_key` (as `audit_key`); without it, mail links to the approval page instead.
pub fn decision_key(cfg: &Config) -> Option<steward_domain::decision_link::LinkKey> {
    use secrecy::ExposeSecret;
    cfg.secrets_key
        .as_ref()
        .map(|k| steward_domain::decision_link::LinkKey::derive(k.expose_secret().trim().as_bytes()))
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
            jail.set_env("STEWARD_PUBLIC_URL", "https://steward.example");
            jail.set_env("STEWARD_OIDC__ISSUER", "https://idp.example");
            jail.set_env("STEWARD_OIDC__CLIENT_ID", "steward");
            jail.set_env("STEWARD_OIDC__CLIENT_SECRET", "oidc-client-very-secret");
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(
                c.oidc.as_ref().and_then(|o| o.client_secret.as_ref()).map(|s| s.expose_secret()),
                Some("oidc-client-very-secret")
            );
            for shown in [format!("{c:?}"), c.redacted_toml()] {
                assert!(!shown.contains("oidc-client-very-secret"), "{shown}");
                assert!(shown.contains("client_secret"), "{shown}");
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
    fn the_scim_token_comes_from_the_environment_redacted_and_checked() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert!(c.scim_token.is_none(), "SCIM provisioning is off by default");
            jail.set_env("STEWARD_SCIM_TOKEN", "scim-token-very-secret-1234");
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.scim_token.as_ref().map(|t| t.expose_secret()), Some("scim-token-very-secret-1234"));
            for shown in [format!("{c:?}"), c.redacted_toml()] {
                assert!(!shown.contains("very-secret") && shown.contains("scim_token"), "{shown}");
            }
            jail.set_env("STEWARD_SCIM_TOKEN", "short");
            let e = Config::load(None, Overrides::default()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("at least 16") && !e.contains("short"), "{e}");
            jail.set_env("STEWARD_SCIM_TOKEN", "the-same-token-for-both");
            jail.set_env("STEWARD_BOOTSTRAP_ADMIN_TOKEN", "the-same-token-for-both");
            let e = Config::load(None, Overrides::default()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("differ"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn the_metrics_token_comes_from_the_environment_redacted_and_checked() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert!(c.metrics_token.is_none(), "metrics are off by default");
            assert!(!c.redacted_toml().contains("metrics_token"));
            jail.set_env("STEWARD_METRICS_TOKEN", "metrics-token-very-secret-1234");
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.metrics_token.as_ref().map(|t| t.expose_secret()), Some("metrics-token-very-secret-1234"));
            for shown in [format!("{c:?}"), c.redacted_toml()] {
                assert!(!shown.contains("very-secret") && shown.contains("metrics_token"), "{shown}");
            }
            jail.set_env("STEWARD_METRICS_TOKEN", "short");
            let e = Config::load(None, Overrides::default()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("at least 16") && !e.contains("short"), "{e}");
            jail.set_env("STEWARD_METRICS_TOKEN", "the-same-token-for-both");
            jail.set_env("STEWARD_SCIM_TOKEN", "the-same-token-for-both");
            let e = Config::load(None, Overrides::default()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("differ") && e.contains("metrics_token"), "{e}");
            jail.set_env("STEWARD_SCIM_TOKEN", "another-token-for-scim");
            jail.set_env("STEWARD_BOOTSTRAP_ADMIN_TOKEN", "the-same-token-for-both");
            let e = Config::load(None, Overrides::default()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("differ") && e.contains("metrics_token"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn sign_in_sessions_proxies_and_tls_are_read_and_checked() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert!(c.oidc.is_none() && c.tls.is_none() && c.trusted_proxies.is_empty());
            assert_eq!(c.session, SessionConfig { idle_minutes: 30, absolute_hours: 12 });
            jail.create_file(
                "steward.toml",
                "version = 1\npublic_url = \"https://steward.example/\"\n\
                 trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\"]\n\
                 [session]\nidle_minutes = 15\n\
                 [tls]\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n\
                 [oidc]\nissuer = \"https://login.example/tenant/v2.0\"\nclient_id = \"steward\"\n\
                 audience = [\"api://steward\"]\n[oidc.claims]\ncreate_users = true\n",
            )?;
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.session, SessionConfig { idle_minutes: 15, absolute_hours: 12 });
            assert_eq!(c.trusted_proxies().map_err(|e| e.to_string())?.len(), 2);
            assert_eq!(c.tls.as_ref().map(|t| t.key_file.clone()), Some(PathBuf::from("key.pem")));
            assert_eq!(c.redirect_url().as_deref(), Some("https://steward.example/auth/callback"));
            assert_eq!(c.post_logout_redirect_url().as_deref(), Some("https://steward.example/"));
            let o = c.oidc.as_ref().unwrap();
            assert!(o.claims.create_users);
            assert_eq!(o.provider_config().audience, vec!["api://steward".to_owned()]);
            assert_eq!(c.session.policy().idle, jiff::SignedDuration::from_mins(15));

            jail.set_env("STEWARD_SESSION__ABSOLUTE_HOURS", "0");
            let e = Config::load(None, Overrides::default()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("absolute_hours"), "{e}");
            jail.set_env("STEWARD_SESSION__ABSOLUTE_HOURS", "8");
            jail.set_env("STEWARD_TRUSTED_PROXIES", "[not-a-network]");
            let e = Config::load(None, Overrides::default()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("not-a-network"), "{e}");
            jail.set_env("STEWARD_TRUSTED_PROXIES", "[]");
            jail.set_env("STEWARD_OIDC__ISSUER", "http://login.example");
            let e = Config::load(None, Overrides::default()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("https"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn smtp_and_notifications_are_read_checked_and_redacted() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert!(c.smtp.is_none(), "no mail by default");
            let n = c.notifications.settings().map_err(|e| e.to_string())?;
            assert_eq!(n.expiry_warning_days, vec![14, 1]);
            jail.create_file(
                "steward.toml",
                "version = 1\npublic_url = \"https://steward.example\"\n\
                 [smtp]\nhost = \"smtp.example.com\"\nusername = \"steward\"\nfrom = \"steward@example.com\"\n\
                 [notifications]\ndisabled = [\"accessEnded\"]\nexpiry_warning_days = [7]\n",
            )?;
            jail.set_env("STEWARD_SMTP__PASSWORD", "smtp-very-secret");
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            let smtp = c.smtp.as_ref().unwrap().settings().map_err(|e| e.to_string())?;
            assert_eq!(smtp.port, 587, "starttls by default, on its usual port");
            assert_eq!(smtp.password.as_ref().map(|p| p.expose_secret()), Some("smtp-very-secret"));
            assert_eq!(smtp.from.to_string(), "Steward <steward@example.com>");
            for shown in [format!("{c:?}"), c.redacted_toml()] {
                assert!(!shown.contains("smtp-very-secret") && shown.contains("password"), "{shown}");
            }
            let n = c.notifications.settings().map_err(|e| e.to_string())?;
            assert_eq!(n.disabled, vec![steward_domain::notification::NotificationKind::AccessEnded]);
            assert_eq!(n.expiry_warning_days, vec![7]);

            jail.set_env("STEWARD_SMTP__SECURITY", "none");
            let e = Config::load(None, Overrides::default()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("[smtp]") && e.contains("this machine"), "{e}");
            jail.set_env("STEWARD_SMTP__HOST", "127.0.0.1");
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.smtp.unwrap().settings().map_err(|e| e.to_string())?.port, 25);
            jail.set_env("STEWARD_NOTIFICATIONS__DISABLED", "[\"teaTime\"]");
            let e = Config::load(None, Overrides::default()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("teaTime"), "{e}");
            jail.set_env("STEWARD_NOTIFICATIONS__DISABLED", "[]");
            jail.set_env("STEWARD_SMTP__FROM", "not an address");
            let e = Config::load(None, Overrides::default()).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("from"), "{e}");
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
