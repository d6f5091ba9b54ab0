//! Use cases of catalogs' custom extensions: create one (its signing secret generated here,
//! sealed for the store and shown once), read, change and delete it; and the port through
//! which callouts leave (`CalloutSender`, implemented over HTTP by the connectors crate).
//! Calling extensions at the stages of the request lifecycle is `lifecycle::callouts`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use steward_domain::audit::Activity;
use steward_domain::extension::{
    CallbackConfiguration, ClientConfiguration, Configuration, CustomExtension, Endpoint, ExtensionKind,
};
use steward_domain::ids::CustomExtensionId;
use steward_domain::role::Task;
use steward_domain::text::{DESCRIPTION_MAX, DisplayName, bounded};

use crate::audit::{admin_event, named, with_changes};
use crate::auth::CatalogCap;
use crate::catalogs::require_catalog;
use crate::{AppError, Services};

/// The audit target type of a custom extension, as Entra names the object.
pub const CUSTOM_EXTENSION: &str = "CustomCalloutExtension";

/// Bytes of randomness in a signing secret.
const SECRET_BYTES: usize = 32;

/// An extension's signing secret: 32 random bytes in unpadded base64url. The HMAC key is this
/// text itself (its ASCII bytes), so receivers use it as shown. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SigningSecret(SecretString);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret([REDACTED])")
    }
}

impl SigningSecret {
    fn generate() -> Result<Self, AppError> {
        let mut bytes = [0_u8; SECRET_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| AppError::Invalid(format!("no randomness available: {e}")))?;
        Ok(Self(SecretString::from(URL_SAFE_NO_PAD.encode(bytes))))
    }

    /// The secret as the creation response shows it, once.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The key HMAC-SHA256 signs with.
    pub fn key(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }
}

/// One callout on its way out.
#[derive(Clone)]
pub struct Outgoing<'a> {
    pub url: &'a str,
    /// The JSON body, exactly the bytes the signature covers.
    pub body: &'a [u8],
    /// The `Steward-Signature` header's value.
    pub signature: &'a str,
    pub timeout: std::time::Duration,
}

impl std::fmt::Debug for Outgoing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing").field("url", &self.url).field("bytes", &self.body.len()).finish_non_exhaustive()
    }
}

/// Why a callout did not arrive: worth another try (a timeout, a 5xx, 429) or not (a refusal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalloutError {
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Permanent(String),
}

/// Posts callouts to extensions' endpoints: without following redirects, within the timeout.
/// `Ok` with the status of a 2xx answer.
#[async_trait::async_trait]
pub trait CalloutSender: Send + Sync {
    async fn send(&self, out: &Outgoing<'_>) -> Result<u16, CalloutError>;
}

/// A new extension as a client describes it.
#[derive(Debug, Clone)]
pub struct NewExtension {
    pub kind: ExtensionKind,
    pub display_name: DisplayName,
    pub description: Option<String>,
    pub config: Configuration,
}

/// A change of an extension; absent fields stay.
#[derive(Debug, Clone, Default)]
pub struct ExtensionPatch {
    pub display_name: Option<DisplayName>,
    pub description: Option<Option<String>>,
    pub endpoint: Option<Endpoint>,
    pub client: Option<ClientConfiguration>,
    /// `Some(None)` makes it fire-and-forget.
    pub callback: Option<Option<CallbackConfiguration>>,
}

fn no_key() -> AppError {
    AppError::Invalid(
        "Custom extensions cannot be created: this server has no secrets key to seal their signing secrets with \
         (set secrets_key, or STEWARD_SECRETS_KEY, to 32 random bytes in base64)."
            .into(),
    )
}

/// Creates an extension in `catalog` with a new signing secret, returned with it (the only
/// time the secret leaves Steward).
pub async fn create_extension(
    s: &Services,
    cap: CatalogCap,
    new: NewExtension,
) -> Result<(CustomExtension, SigningSecret), AppError> {
    cap.require(Task::EditCatalog)?;
    let catalog = cap.catalog();
    require_catalog(s, catalog).await?;
    let sealer = s.connection_setup.sealer.as_ref().ok_or_else(no_key)?;
    let now = s.clock.now();
    let x = CustomExtension {
        id: CustomExtensionId::new(),
        catalog_id: catalog,
        kind: new.kind,
        display_name: new.display_name,
        description: bounded("description", new.description, DESCRIPTION_MAX)?,
        config: new.config,
        created_date_time: now,
        last_modified_date_time: now,
    };
    let secret = SigningSecret::generate()?;
    let sealed = sealer.seal(&x.id.to_string(), &secret.0).map_err(|e| AppError::Invalid(e.to_string()))?;
    let event = admin_event(cap, Activity::CreateCustomExtension, CUSTOM_EXTENSION, x.id, now).with_detail(format!(
        "{} in catalog {}",
        named(x.display_name.as_str()),
        catalog
    ));
    s.store.insert_extension(&x, &sealed, &event).await?;
    Ok((x, secret))
}

/// The extension `id` of `catalog` (404 when it is another catalog's).
pub async fn get_extension(s: &Services, cap: CatalogCap, id: CustomExtensionId) -> Result<CustomExtension, AppError> {
    let catalog = cap.catalog();
    s.store
        .get_extension(id)
        .await?
        .filter(|x| x.catalog_id == catalog)
        .ok_or_else(|| AppError::not_found("custom extension", id))
}

pub async fn list_extensions(s: &Services, cap: CatalogCap) -> Result<Vec<CustomExtension>, AppError> {
    let catalog = cap.catalog();
    require_catalog(s, catalog).await?;
    Ok(s.store.extensions_of_catalog(catalog).await?)
}

/// Applies a patch; `if_match` (an ETag) makes it conditional. An extension that starts to
/// wait for callbacks must not be named at a stage that cannot wait.
pub async fn update_extension(
    s: &Services,
    cap: CatalogCap,
    id: CustomExtensionId,
    p: ExtensionPatch,
    if_match: Option<&str>,
) -> Result<CustomExtension, AppError> {
    cap.require(Task::EditCatalog)?;
    let description = p.description.map(|d| bounded("description", d, DESCRIPTION_MAX)).transpose()?;
    for _ in 0..crate::WRITE_ATTEMPTS {
        let before = get_extension(s, cap, id).await?;
        crate::check_if_match(if_match, "custom extension", before.last_modified_date_time)?;
        let mut x = before.clone();
        let read_at = x.last_modified_date_time;
        if let Some(v) = &p.display_name {
            x.display_name = v.clone();
        }
        if let Some(v) = &description {
            x.description = v.clone();
        }
        if let Some(v) = &p.endpoint {
            x.config.endpoint = v.clone();
        }
        if let Some(v) = p.client {
            x.config.client = v;
        }
        if let Some(v) = p.callback {
            x.config.callback = v;
        }
        if x.config.callback.is_some() {
            for (policy, stage) in s.store.extension_uses(id).await? {
                x.check_stage(stage)
                    .map_err(|e| AppError::Invalid(format!("{e} (assignment policy {policy} runs it there)")))?;
            }
        }
        let now = s.clock.now();
        x.last_modified_date_time = steward_domain::time::next_modified(read_at, now);
        let event = with_changes(
            admin_event(cap, Activity::UpdateCustomExtension, CUSTOM_EXTENSION, id, now),
            &before.to_json(),
            &x.to_json(),
        );
        match s.store.update_extension(&x, read_at, &event).await {
            Ok(()) => return Ok(x),
            Err(e) => crate::lost_race(e, if_match, "custom extension")?,
        }
    }
    Err(AppError::Conflict("The custom extension kept changing while it was being updated; try again.".into()))
}

/// Deletes an extension no policy names.
pub async fn delete_extension(
    s: &Services,
    cap: CatalogCap,
    id: CustomExtensionId,
    if_match: Option<&str>,
) -> Result<(), AppError> {
    cap.require(Task::EditCatalog)?;
    let x = get_extension(s, cap, id).await?;
    crate::check_if_match(if_match, "custom extension", x.last_modified_date_time)?;
    let event = admin_event(cap, Activity::DeleteCustomExtension, CUSTOM_EXTENSION, id, s.clock.now())
        .with_detail(named(x.display_name.as_str()));
    Ok(s.store.delete_extension(id, &event).await?)
}

/// The extension's signing secret, opened for one callout; the reason in words when it
/// cannot be.
pub(crate) async fn signing_secret(s: &Services, x: &CustomExtension) -> Result<SigningSecret, String> {
    let sealed = s
        .store
        .extension_secret(x.id)
        .await
        .map_err(|e| format!("the signing secret could not be read: {e}"))?
        .ok_or_else(|| "the custom extension no longer exists".to_owned())?;
    let sealer = s
        .connection_setup
        .sealer
        .as_ref()
        .ok_or_else(|| "this server has no secrets key to open the signing secret with".to_owned())?;
    sealer.open(&x.id.to_string(), &sealed).map(SigningSecret).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_base64url_and_never_printed() {
        let a = SigningSecret::generate().unwrap();
        let b = SigningSecret::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 43, "32 bytes, unpadded base64url");
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(URL_SAFE_NO_PAD.decode(a.expose()).unwrap().len(), SECRET_BYTES);
        assert_eq!(format!("{a:?}"), "SigningSecret([REDACTED])");
        let out =
            Outgoing { url: "https://x.test", body: b"{}", signature: "t=1,v1=ab", timeout: std::time::Duration::ZERO };
        assert!(!format!("{out:?}").contains("v1=ab"));
    }
}
