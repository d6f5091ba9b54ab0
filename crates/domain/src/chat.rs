//! Chat notifications: incoming webhooks of Microsoft Teams and Slack, configured per catalog,
//! that tell a channel when a request in the catalog waits for its approvers and what the
//! administrators should look at. What a webhook is (its flavour, where it may point) and the
//! message each flavour expects are decided here; the address itself is a secret (whoever
//! holds it can post to the channel) and is stored sealed, never shown again.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::DomainError;
use crate::ids::{CatalogId, ChatWebhookId};
use crate::text::DisplayName;

/// Which chat service's message format a webhook takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChatFlavor {
    /// Slack's incoming webhooks (and the services that accept their `text` and `blocks`).
    Slack,
    /// Microsoft Teams' incoming webhooks (an Office 365 connector `MessageCard`).
    Teams,
}

impl ChatFlavor {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Teams => "teams",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "slack" => Ok(Self::Slack),
            "teams" => Ok(Self::Teams),
            other => Err(DomainError::Invalid(format!("flavor '{other}' is not one of 'slack' and 'teams'"))),
        }
    }
}

/// A catalog's chat webhook, as shown: never its address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatWebhook {
    pub id: ChatWebhookId,
    pub catalog_id: CatalogId,
    pub display_name: DisplayName,
    pub flavor: ChatFlavor,
    /// The host the messages go to, so an administrator can tell webhooks apart.
    pub host: String,
    #[serde(with = "crate::time::serde_ts")]
    pub created_date_time: Timestamp,
}

/// The longest webhook address accepted.
pub const URL_MAX: usize = 2_048;

/// Checks a webhook address and returns its host: an absolute `https` URL, or `http` to a
/// loopback address (a relay on the same machine, or a test receiver). Never echoes the
/// address in an error: its path is the secret.
pub fn check_url(url: &str) -> Result<String, DomainError> {
    let bad = |why: &str| DomainError::Invalid(format!("url {why}"));
    if url.len() > URL_MAX {
        return Err(bad(&format!("is longer than {URL_MAX} characters")));
    }
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("must be an absolute http(s) URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(bad("must not carry a user name or password"));
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    }
    .to_ascii_lowercase();
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("has no usable host"));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(host),
        "http" if is_loopback(&host) => Ok(host),
        "http" => Err(bad("must use https (plain http only to a loopback address)")),
        _ => Err(bad("must be an absolute http(s) URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// One chat message: a title, a few lines, label–value facts and at most one link.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChatMessage {
    pub title: String,
    pub lines: Vec<String>,
    pub facts: Vec<(String, String)>,
    /// A label and the URL it opens.
    pub link: Option<(String, String)>,
}

/// The JSON body `flavor`'s incoming webhooks take for `m`.
pub fn payload(flavor: ChatFlavor, m: &ChatMessage) -> Value {
    match flavor {
        ChatFlavor::Slack => {
            let mut text = format!("*{}*", slack_escape(&m.title));
            for l in &m.lines {
                text.push('\n');
                text.push_str(&slack_escape(l));
            }
            for (label, value) in &m.facts {
                text.push_str(&format!("\n*{}:* {}", slack_escape(label), slack_escape(value)));
            }
            if let Some((label, url)) = &m.link {
                text.push_str(&format!("\n<{url}|{}>", slack_escape(label)));
            }
            // `text` alone shows everywhere (and in notifications); mrkdwn renders it.
            json!({ "text": text, "mrkdwn": true })
        }
        ChatFlavor::Teams => {
            let facts: Vec<Value> =
                m.facts.iter().map(|(name, value)| json!({ "name": name, "value": value })).collect();
            let mut card = json!({
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "summary": m.title,
                "title": m.title,
                "text": m.lines.join("\n\n"),
                "sections": [{ "facts": facts }],
            });
            if let (Some((label, url)), Some(o)) = (&m.link, card.as_object_mut()) {
                o.insert(
                    "potentialAction".into(),
                    json!([{ "@type": "OpenUri", "name": label, "targets": [{ "os": "default", "uri": url }] }]),
                );
            }
            card
        }
    }
}

/// Slack's three control characters in message text.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_must_be_https_or_loopback_and_errors_never_echo_them() {
        assert_eq!(check_url("https://hooks.slack.com/services/T0/B0/secret").unwrap(), "hooks.slack.com");
        assert_eq!(check_url("HTTPS://Example.Webhook.Office.com:443/x").unwrap(), "example.webhook.office.com");
        assert_eq!(check_url("http://127.0.0.1:8080/hook").unwrap(), "127.0.0.1");
        assert_eq!(check_url("http://[::1]:9/hook").unwrap(), "::1");
        assert_eq!(check_url("http://localhost/hook").unwrap(), "localhost");
        for bad in [
            "http://hooks.slack.com/services/secret",
            "ftp://example.com/secret",
            "hooks.slack.com/secret",
            "https://user:pw@example.com/secret",
            "https:///secret",
        ] {
            let e = check_url(bad).unwrap_err().to_string();
            assert!(!e.contains("secret"), "{e}");
        }
        assert!(check_url(&format!("https://x.example/{}", "a".repeat(URL_MAX))).is_err());
    }

    fn message() -> ChatMessage {
        ChatMessage {
            title: "Approval needed: Sales <Reports> & Co".into(),
            lines: vec!["Ada asks for access.".into()],
            facts: vec![("Stage".into(), "1 of 2".into())],
            link: Some(("Open in Steward".into(), "https://steward.example/approvals".into())),
        }
    }

    #[test]
    fn slack_gets_escaped_mrkdwn_text_with_the_link() {
        let p = payload(ChatFlavor::Slack, &message());
        assert_eq!(
            p["text"],
            "*Approval needed: Sales &lt;Reports&gt; &amp; Co*\nAda asks for access.\n*Stage:* 1 of 2\n\
             <https://steward.example/approvals|Open in Steward>"
        );
    }

    #[test]
    fn teams_gets_a_message_card_with_facts_and_an_open_action() {
        let p = payload(ChatFlavor::Teams, &message());
        assert_eq!(p["@type"], "MessageCard");
        assert_eq!(p["title"], "Approval needed: Sales <Reports> & Co");
        assert_eq!(p["sections"][0]["facts"][0], json!({"name": "Stage", "value": "1 of 2"}));
        assert_eq!(p["potentialAction"][0]["targets"][0]["uri"], "https://steward.example/approvals");
        let bare = payload(ChatFlavor::Teams, &ChatMessage { link: None, ..message() });
        assert!(bare.get("potentialAction").is_none());
    }

    #[test]
    fn flavors_parse_by_name() {
        assert_eq!(ChatFlavor::parse("teams").unwrap(), ChatFlavor::Teams);
        assert!(ChatFlavor::parse("irc").unwrap_err().to_string().contains("'slack' and 'teams'"));
    }
}
