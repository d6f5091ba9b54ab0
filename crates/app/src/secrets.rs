//! Credentials at rest: sealed with AES-256-GCM under a key from configuration, bound to the
//! object they belong to, opened only to hand to a connector. A sealed value is
//! `v1:<base64 of nonce ‖ ciphertext ‖ tag>`; the object's id is the associated data, so a
//! sealed value copied onto another object does not open.

use std::fmt;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};

const PREFIX: &str = "v1:";
const NONCE: usize = 12;

/// Why a key or a sealed value was refused. Never carries key or secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the secrets key must be 32 bytes, base64-encoded (for example the output of `openssl rand -base64 32`)")]
    BadKey,
    #[error("the stored credentials cannot be opened: they were sealed under another key or for another object")]
    CannotOpen,
    #[error("no randomness available: {0}")]
    NoRandomness(String),
}

/// Seals and opens credentials. `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer([REDACTED])")
    }
}

impl Sealer {
    /// A sealer for `key`: 32 bytes in standard base64.
    pub fn from_base64(key: &SecretString) -> Result<Self, SealError> {
        let bytes = STANDARD.decode(key.expose_secret().trim()).map_err(|_| SealError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SealError::BadKey);
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| SealError::BadKey)?;
        Ok(Self { cipher })
    }

    /// A sealer for a key derived in this crate (the portal's sessions seal under keys derived
    /// from secrets the browser holds).
    pub(crate) fn from_key(key: &[u8; 32]) -> Self {
        Self { cipher: Aes256Gcm::new(key.into()) }
    }

    /// `secret` sealed for the object `owner` (its id).
    pub fn seal(&self, owner: &str, secret: &SecretString) -> Result<String, SealError> {
        let mut nonce = [0_u8; NONCE];
        getrandom::fill(&mut nonce).map_err(|e| SealError::NoRandomness(e.to_string()))?;
        let sealed = self
            .cipher
            .encrypt(&nonce.into(), Payload { msg: secret.expose_secret().as_bytes(), aad: owner.as_bytes() })
            .map_err(|_| SealError::CannotOpen)?;
        let mut out = Vec::with_capacity(NONCE + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
    }

    /// The secret sealed for `owner` in `sealed`.
    pub fn open(&self, owner: &str, sealed: &str) -> Result<SecretString, SealError> {
        let raw = sealed.strip_prefix(PREFIX).ok_or(SealError::CannotOpen)?;
        let bytes = STANDARD.decode(raw).map_err(|_| SealError::CannotOpen)?;
        let (nonce, body) = bytes.split_at_checked(NONCE).ok_or(SealError::CannotOpen)?;
        let nonce: [u8; NONCE] = nonce.try_into().map_err(|_| SealError::CannotOpen)?;
        let plain = self
            .cipher
            .decrypt(&nonce.into(), Payload { msg: body, aad: owner.as_bytes() })
            .map_err(|_| SealError::CannotOpen)?;
        String::from_utf8(plain).map(SecretString::from).map_err(|_| SealError::CannotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretString {
        SecretString::from(STANDARD.encode([byte; 32]))
    }

    #[test]
    fn sealed_credentials_open_only_for_their_owner_under_their_key() {
        let s = Sealer::from_base64(&key(7)).unwrap();
        let secret = SecretString::from("{\"password\":\"hunter2\"}".to_owned());
        let sealed = s.seal("conn-a", &secret).unwrap();
        assert!(sealed.starts_with("v1:") && !sealed.contains("hunter2"));
        assert_ne!(sealed, s.seal("conn-a", &secret).unwrap(), "a fresh nonce each time");
        assert_eq!(s.open("conn-a", &sealed).unwrap().expose_secret(), secret.expose_secret());
        assert_eq!(s.open("conn-b", &sealed).unwrap_err(), SealError::CannotOpen);
        let other = Sealer::from_base64(&key(8)).unwrap();
        assert_eq!(other.open("conn-a", &sealed).unwrap_err(), SealError::CannotOpen);
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(s.open("conn-a", &tampered).is_err());
        assert!(s.open("conn-a", "v1:").is_err() && s.open("conn-a", "plain").is_err());
        assert_eq!(format!("{s:?}"), "Sealer([REDACTED])");
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert_eq!(Sealer::from_base64(&SecretString::from("short".to_owned())).unwrap_err(), SealError::BadKey);
        assert!(Sealer::from_base64(&SecretString::from(STANDARD.encode([1_u8; 16]))).is_err());
        assert!(Sealer::from_base64(&key(1)).is_ok());
    }
}
