//! A real OpenID Connect provider on a free loopback port: `tests/oidc/provider.py`, built on
//! PyPI's authlib and joserfc, run by the virtualenv's Python. Tokens are really signed
//! (RS256 and ES256 keys, each with a `kid`); its test-control endpoints rotate keys and mint
//! access tokens with chosen claims, lifetimes, audiences, issuers, algorithms and keys; and
//! `authorize` walks the authorization-code flow as a browser would.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::{free_port, pause, signal};

/// A running provider; killed when dropped.
pub struct OidcProvider {
    child: Child,
    issuer: String,
    client_id: String,
    client_secret: String,
    api_audience: String,
    http: reqwest::Client,
    dir: PathBuf,
}

/// The Python of `$STEWARD_VENV`, else of the repository's `.venv`, with authlib installed.
fn python() -> PathBuf {
    crate::venv_python("PyPI's authlib for the OpenID Connect provider")
}

fn script() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc/provider.py");
    assert!(p.exists(), "{} is missing", p.display());
    p
}

/// What `OidcProvider::mint` puts in an access token. Start from [`MintOptions::user`] and
/// change what the test is about.
#[derive(Debug, Clone, Default)]
pub struct MintOptions {
    /// The user (a login name of the users file) whose claims the token carries.
    pub user: String,
    /// `RS256` (default) or `ES256`, signed with the provider's current key; `HS256` (keyed
    /// with the RSA public key, see `hmac_secret`) or `none` to attack a verifier.
    pub alg: Option<String>,
    /// Seconds from now to `exp` (negative: already expired). Default 3600.
    pub lifetime: Option<i64>,
    /// Seconds from now to `nbf`; no `nbf` when unset.
    pub not_before: Option<i64>,
    /// Seconds from now to `iat`. Default 0.
    pub issued_at: Option<i64>,
    /// `aud` (a string or a list); default the API audience.
    pub audience: Option<Value>,
    /// `iss`; default the provider's issuer.
    pub issuer: Option<String>,
    /// `scp`; default `openid profile email`.
    pub scope: Option<String>,
    /// Claims merged over the user's; `null` removes one.
    pub claims: Map<String, Value>,
    /// The header's `kid`, instead of the signing key's.
    pub kid: Option<String>,
    /// Name the current key of this algorithm (`RS256`/`ES256`) in the header while signing
    /// with `alg`'s key: an algorithm/key-type mismatch.
    pub kid_of: Option<String>,
    /// Sign with a fresh key the JWKS never publishes.
    pub unpublished_key: bool,
    /// For `HS256`: which bytes of the published RSA key are the HMAC secret: `pem`
    /// (default), `der`, `jwk_json` or `jwk_n`.
    pub hmac_secret: Option<String>,
}

impl MintOptions {
    /// A valid RS256 access token for `user`.
    pub fn user(user: &str) -> Self {
        Self { user: user.to_owned(), ..Self::default() }
    }

    fn to_json(&self) -> Value {
        let mut body = json!({"user": self.user, "claims": self.claims, "unpublished_key": self.unpublished_key});
        let put = |body: &mut Value, k: &str, v: Option<Value>| {
            if let Some(v) = v {
                body[k] = v;
            }
        };
        put(&mut body, "alg", self.alg.clone().map(Value::from));
        put(&mut body, "lifetime", self.lifetime.map(Value::from));
        put(&mut body, "not_before", self.not_before.map(Value::from));
        put(&mut body, "issued_at", self.issued_at.map(Value::from));
        put(&mut body, "audience", self.audience.clone());
        put(&mut body, "issuer", self.issuer.clone().map(Value::from));
        put(&mut body, "scope", self.scope.clone().map(Value::from));
        put(&mut body, "kid", self.kid.clone().map(Value::from));
        put(&mut body, "kid_of", self.kid_of.clone().map(Value::from));
        put(&mut body, "hmac_secret", self.hmac_secret.clone().map(Value::from));
        body
    }
}

/// Where the provider sent the browser back to the client: the `code` and `state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationResponse {
    pub code: String,
    pub state: String,
}

impl OidcProvider {
    /// Starts a provider whose users and their claims are `users` (`{login name: {claim:
    /// value}}`), with one confidential client (random id and secret) and API audience
    /// `api://steward`.
    pub fn start(users: &Value) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("steward-oidc-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let users_file = dir.join("users.json");
        std::fs::write(&users_file, users.to_string()).unwrap();
        let log = dir.join("provider.log");
        let client_id = format!("steward-{}", uuid::Uuid::new_v4().simple());
        let client_secret = format!("secret-{}", uuid::Uuid::new_v4().simple());
        let api_audience = "api://steward".to_owned();
        let mut child = Command::new(python())
            .arg(script())
            .args(["--port", &port.to_string(), "--client-id", &client_id, "--client-secret", &client_secret])
            .args(["--api-audience", &api_audience])
            .arg("--users")
            .arg(&users_file)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the virtualenv's python runs");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!(
                    "the OpenID Connect provider (tests/oidc/provider.py) exited ({status}) before listening; if authlib is missing, run `bash scripts/python-venv.sh`:\n{log}"
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the OpenID Connect provider did not listen on 127.0.0.1:{port}");
            }
            pause();
        }
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { child, issuer: format!("http://127.0.0.1:{port}"), client_id, client_secret, api_audience, http, dir }
    }

    /// The issuer identifier, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn client_secret(&self) -> &str {
        &self.client_secret
    }

    /// The `aud` of the access tokens it issues.
    pub fn api_audience(&self) -> &str {
        &self.api_audience
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}/_test/{path}", self.issuer))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("the OpenID Connect provider answers");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "OpenID Connect provider /_test/{path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// An access token minted as `options` say.
    pub async fn mint(&self, options: MintOptions) -> String {
        let v = self.control("mint", options.to_json()).await;
        v["token"].as_str().unwrap().to_owned()
    }

    /// Adds a new signing key for RS256 and ES256, which signs from now on; the old keys stay
    /// published until [`Self::drop_old_keys`]. The key ids, oldest first, by algorithm.
    pub async fn rotate_keys(&self) -> Value {
        self.control("rotate-keys", json!({})).await["kids"].take()
    }

    /// Publishes only the newest key of each algorithm.
    pub async fn drop_old_keys(&self) -> Value {
        self.control("drop-old-keys", json!({})).await["kids"].take()
    }

    /// Changes the provider's settings: `{"alg": "ES256"}` (the algorithm of the ID and access
    /// tokens it issues), `code_ttl`, `access_token_lifetime`, `discovery_issuer` (a
    /// discovery document that lies), `discovery_redirect` (discovery answers a redirect).
    pub async fn configure(&self, settings: Value) {
        self.control("config", settings).await;
    }

    /// How many times the JWKS was fetched.
    pub async fn jwks_requests(&self) -> u64 {
        let v: Value = self
            .http
            .get(format!("{}/_test/stats", self.issuer))
            .send()
            .await
            .expect("the OpenID Connect provider answers")
            .json()
            .await
            .unwrap();
        v["jwks_requests"].as_u64().unwrap()
    }

    /// Walks the authorization-code flow from `authorization_url` as a browser would: follows
    /// the provider's redirects, signs in as `username` on its login form when it shows one
    /// (a `login_hint` skips it), and stops when sent to `redirect_uri`, returning the `code`
    /// and `state` there. An `error` at the redirect URI, or anything else, panics.
    pub async fn authorize(
        &self,
        authorization_url: &str,
        redirect_uri: &str,
        username: &str,
    ) -> AuthorizationResponse {
        match self.authorize_result(authorization_url, redirect_uri, username).await {
            Ok(r) => r,
            Err(e) => panic!("the authorization request failed: {e}"),
        }
    }

    /// As [`Self::authorize`], but an `error` sent to the redirect URI is returned
    /// (`error: error_description`).
    pub async fn authorize_result(
        &self,
        authorization_url: &str,
        redirect_uri: &str,
        username: &str,
    ) -> Result<AuthorizationResponse, String> {
        let target = reqwest::Url::parse(redirect_uri).unwrap();
        let mut url = reqwest::Url::parse(authorization_url).unwrap();
        let mut form: Option<String> = None;
        for _ in 0..10 {
            if url.scheme() == target.scheme()
                && url.host_str() == target.host_str()
                && url.port_or_known_default() == target.port_or_known_default()
                && url.path() == target.path()
            {
                let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
                if let Some(error) = q.get("error") {
                    return Err(format!("{error}: {}", q.get("error_description").cloned().unwrap_or_default()));
                }
                return Ok(AuthorizationResponse {
                    code: q.get("code").cloned().expect("the redirect carries a code"),
                    state: q.get("state").cloned().expect("the redirect carries the state"),
                });
            }
            let request = match form.take() {
                Some(body) => {
                    self.http.post(url.clone()).header("content-type", "application/x-www-form-urlencoded").body(body)
                }
                None => self.http.get(url.clone()),
            };
            let resp = request.send().await.expect("the OpenID Connect provider answers");
            let status = resp.status();
            if status.is_redirection() {
                let location = resp.headers()["location"].to_str().unwrap().to_owned();
                url = url.join(&location).unwrap();
                continue;
            }
            let body = resp.text().await.unwrap();
            if status.is_success() && body.contains("<form") {
                let (action, mut fields) = parse_form(&body);
                fields.push(("username".to_owned(), username.to_owned()));
                let mut encoder = reqwest::Url::parse("http://form.invalid/").unwrap();
                encoder.query_pairs_mut().extend_pairs(&fields);
                form = Some(encoder.query().unwrap_or_default().to_owned());
                url = url.join(&action).unwrap();
                continue;
            }
            return Err(format!("{url} answered {status}: {body}"));
        }
        Err("too many redirects".to_owned())
    }
}

/// The action and hidden inputs of the provider's login form (its own simple HTML).
fn parse_form(html: &str) -> (String, Vec<(String, String)>) {
    let form_tag = html.split("<form").nth(1).and_then(|s| s.split('>').next()).expect("a form");
    let action = attribute(form_tag, "action").unwrap_or_default();
    let fields = html
        .split("<input")
        .skip(1)
        .filter_map(|s| s.split('>').next())
        .filter(|tag| attribute(tag, "type").as_deref() == Some("hidden"))
        .filter_map(|tag| Some((attribute(tag, "name")?, attribute(tag, "value").unwrap_or_default())))
        .collect();
    (action, fields)
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + len]))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = signal(self.child.id(), "CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_login_form() {
        let html = r#"<form method="post" action="/authorize">
<input type="hidden" name="state" value="a&amp;b&quot;c">
<input type="hidden" name="nonce" value="n">
<input type="text" id="username" name="username">"#;
        let (action, fields) = parse_form(html);
        assert_eq!(action, "/authorize");
        assert_eq!(fields, vec![("state".to_owned(), "a&b\"c".to_owned()), ("nonce".to_owned(), "n".to_owned())]);
    }
}
