//! PyPI's `scim2-server` (an in-memory SCIM 2.0 service provider) on a free loopback port,
//! with a bearer token, found in the virtualenv that `scripts/python-venv.sh` makes; read
//! back with plain SCIM requests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::{free_port, signal, wait_for_port};

/// A running scim2-server; killed when dropped.
pub struct Scim2Server {
    child: Child,
    pub base_url: String,
    pub token: String,
    http: reqwest::Client,
}

/// The `scim2-server` program: `$STEWARD_SCIM2_SERVER`, else in `$STEWARD_VENV`, else in the
/// repository's `.venv`.
fn program() -> PathBuf {
    if let Some(p) = std::env::var_os("STEWARD_SCIM2_SERVER") {
        return p.into();
    }
    let venv = std::env::var_os("STEWARD_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv"));
    let p = venv.join("bin/scim2-server");
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/python-venv.sh` (the test command does) to install PyPI's scim2-server",
        p.display()
    );
    p
}

impl Scim2Server {
    /// A server announcing everything RFC 7644 offers (PATCH, ETags, filters).
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server announcing the `ServiceProviderConfig` given (for one without PATCH, say).
    pub fn start_with(service_provider_config: Option<&Value>) -> Self {
        let port = free_port();
        let token = format!("scim-token-{}", uuid::Uuid::new_v4().simple());
        let mut cmd = Command::new(program());
        cmd.args(["--hostname", "127.0.0.1", "--port", &port.to_string(), "--bearer-token", &token]);
        if let Some(config) = service_provider_config {
            let file = std::env::temp_dir().join(format!("steward-scim-spc-{}.json", uuid::Uuid::new_v4().simple()));
            std::fs::write(&file, config.to_string()).unwrap();
            cmd.arg("--service-provider-config").arg(file);
        }
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("scim2-server runs");
        wait_for_port(port, "scim2-server");
        Self { child, base_url: format!("http://127.0.0.1:{port}/v2"), token, http: reqwest::Client::new() }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}/{path}", self.base_url)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.header("content-type", "application/scim+json").body(b.to_string());
        }
        let resp = req.send().await.expect("scim2-server answers");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "scim2-server {path}: {status} {text}");
        if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() }
    }

    /// Creates a group; its SCIM id.
    pub async fn create_group(&self, name: &str) -> String {
        let g = self
            .call(
                reqwest::Method::POST,
                "Groups",
                Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name})),
            )
            .await;
        g["id"].as_str().unwrap().to_owned()
    }

    /// Creates a user; their SCIM id.
    pub async fn create_user(&self, user_name: &str) -> String {
        let u = self
            .call(
                reqwest::Method::POST,
                "Users",
                Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name})),
            )
            .await;
        u["id"].as_str().unwrap().to_owned()
    }

    /// The users whose `userName` is `user_name`: their ids.
    pub async fn users_named(&self, user_name: &str) -> Vec<String> {
        let filter = format!("userName eq {}", Value::String(user_name.to_owned()));
        let url = reqwest::Url::parse_with_params(&format!("{}/Users", self.base_url), [("filter", filter)]).unwrap();
        let list: Value = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("scim2-server answers")
            .json()
            .await
            .unwrap();
        list["Resources"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_owned()).collect()
    }

    /// The member values (user ids) of a group, in the order the server keeps them.
    pub async fn group_members(&self, id: &str) -> Vec<String> {
        let g = self.call(reqwest::Method::GET, &format!("Groups/{id}"), None).await;
        g["members"]
            .as_array()
            .map(|m| m.iter().map(|v| v["value"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }

    /// Removes a member from a group by hand (behind Steward's back).
    pub async fn remove_member(&self, group: &str, user: &str) {
        let op = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "remove", "path": format!("members[value eq \"{user}\"]")}]});
        self.call(reqwest::Method::PATCH, &format!("Groups/{group}"), Some(op)).await;
    }

    /// Freezes the server (`SIGSTOP`): connections are accepted by the kernel but nothing is
    /// answered, as with a hung application.
    pub fn freeze(&self) {
        assert!(signal(self.child.id(), "STOP"), "scim2-server could not be stopped");
    }

    /// Lets a frozen server go on (`SIGCONT`); it then answers what waited.
    pub fn thaw(&self) {
        assert!(signal(self.child.id(), "CONT"), "scim2-server could not be continued");
    }
}

impl Drop for Scim2Server {
    fn drop(&mut self) {
        let _ = signal(self.child.id(), "CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
