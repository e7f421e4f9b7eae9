//! The deployment's master key, and secrets sealed with it.
//!
//! Events are published on `INVITES_EVENTS`, which every subscriber may read, yet some must
//! carry a secret (a webhook's signing secret). Such a field holds the secret sealed with
//! AES-256-GCM under a key derived from the master key for that field's purpose, so only a
//! role that holds the master key (a setting, the same for every role of a deployment) reads it.
//!
//! Sealed text: `aes256gcm:` then hex of a random 96-bit nonce and the ciphertext with its tag.
//! The purpose is bound as associated data, so a value sealed for one field never opens as
//! another.
#![forbid(unsafe_code)]

pub mod keyring;
pub mod personal;

pub use keyring::{FreshReveal, KeyRing};
pub use personal::DataKey;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// The master key of a development setup: `serve` refuses it when NATS is beyond loopback.
pub const DEV_MASTER_KEY: &str = "invitebus-dev-master-key";

const PREFIX: &str = "aes256gcm:";

/// Why a sealed value does not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not a sealed value (it must start with `{PREFIX}` followed by hex)")]
    Malformed,
    /// Sealed under another master key, for another purpose, or altered.
    #[error("the sealed value does not open with this deployment's master key")]
    WrongKey,
    #[error("the system's random source failed")]
    Random,
}

/// What a sealed value is for: each purpose has a key of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `WebhookRegistered.secret`.
    WebhookSecret,
    /// What a `RegisterWebhook`'s `command_id` retries are matched on instead of the secret.
    SecretDigest,
    /// A user's data key, as the key bucket keeps it (wrapped).
    DataKey,
    /// The keyed hash of a phone number, what the admin view filters on.
    PhoneLookup,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::WebhookSecret => b"invitebus/webhook-secret/v1",
            Purpose::SecretDigest => b"invitebus/secret-digest/v1",
            Purpose::DataKey => b"invitebus/data-key/v1",
            Purpose::PhoneLookup => b"invitebus/phone-lookup/v1",
        }
    }
}

/// How a phone's keyed hash begins (`ph1:<hex>`).
pub const PHONE_HASH_PREFIX: &str = "ph1:";

/// The master key: every role of a deployment holds the same one.
#[derive(Clone)]
pub struct MasterKey {
    secret: Vec<u8>,
}

/// The development key ([`DEV_MASTER_KEY`]).
impl Default for MasterKey {
    fn default() -> Self {
        MasterKey::dev()
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn new(secret: impl AsRef<[u8]>) -> MasterKey {
        MasterKey {
            secret: secret.as_ref().to_vec(),
        }
    }

    /// The development key ([`DEV_MASTER_KEY`]).
    pub fn dev() -> MasterKey {
        MasterKey::new(DEV_MASTER_KEY)
    }

    /// The 32 bytes derived from the master key for `purpose`.
    fn derive(&self, purpose: Purpose) -> [u8; 32] {
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.secret),
            purpose.label(),
        );
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn key(&self, purpose: Purpose) -> LessSafeKey {
        let unbound = UnboundKey::new(&AES_256_GCM, &self.derive(purpose)).expect("HMAC-SHA256 gives 32 bytes");
        LessSafeKey::new(unbound)
    }

    /// A keyed hash of `text` (hex HMAC-SHA256 under a key derived for `purpose`): stable, and
    /// no help to anyone guessing `text` without the master key.
    pub fn keyed_hash(&self, purpose: Purpose, text: &str) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.derive(purpose));
        hex::encode(ring::hmac::sign(&key, text.as_bytes()).as_ref())
    }

    /// The keyed hash of a phone number (its digits and `+` only, so `+86 138…` and `+86138…`
    /// match): the admin view filters on it, and an export request carries it instead of the
    /// phone, so neither a lookup nor the log needs the phone in clear.
    pub fn phone_hash(&self, phone: &str) -> String {
        let normal: String = phone.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect();
        format!("{PHONE_HASH_PREFIX}{}", self.keyed_hash(Purpose::PhoneLookup, &normal))
    }

    /// What a phone filter is looked up by: [`MasterKey::phone_hash`] of a phone, and a value
    /// that is such a hash already (as an export request carries it) as it is.
    pub fn phone_lookup(&self, phone: &str) -> String {
        match phone.starts_with(PHONE_HASH_PREFIX) {
            true => phone.to_string(),
            false => self.phone_hash(phone),
        }
    }

    /// Seals `plain` for `purpose` with a fresh random nonce.
    pub fn seal(&self, purpose: Purpose, plain: &str) -> Result<String, KeyError> {
        self.seal_for(purpose, "", plain)
    }

    /// [`MasterKey::seal`], bound to `context` as well (a wrapped data key to its user and key
    /// id): it opens only with the same context.
    pub fn seal_for(&self, purpose: Purpose, context: &str, plain: &str) -> Result<String, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| KeyError::Random)?;
        let mut data = plain.as_bytes().to_vec();
        let aad = [purpose.label(), context.as_bytes()].concat();
        self.key(purpose)
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut data)
            .map_err(|_| KeyError::Random)?;
        let mut out = String::with_capacity(PREFIX.len() + 2 * (NONCE_LEN + data.len()));
        out.push_str(PREFIX);
        out.push_str(&hex::encode(nonce));
        out.push_str(&hex::encode(&data));
        Ok(out)
    }

    /// Opens what [`MasterKey::seal`] made for the same purpose under the same master key.
    pub fn open(&self, purpose: Purpose, sealed: &str) -> Result<String, KeyError> {
        self.open_for(purpose, "", sealed)
    }

    /// Opens what [`MasterKey::seal_for`] made with the same context.
    pub fn open_for(&self, purpose: Purpose, context: &str, sealed: &str) -> Result<String, KeyError> {
        let bytes = sealed
            .strip_prefix(PREFIX)
            .and_then(|h| hex::decode(h).ok())
            .ok_or(KeyError::Malformed)?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(KeyError::Malformed);
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Malformed)?;
        let mut data = rest.to_vec();
        let aad = [purpose.label(), context.as_bytes()].concat();
        let plain = self
            .key(purpose)
            .open_in_place(nonce, Aad::from(aad), &mut data)
            .map_err(|_| KeyError::WrongKey)?;
        String::from_utf8(plain.to_vec()).map_err(|_| KeyError::WrongKey)
    }
}

/// True when `text` has the shape of a sealed value (not whether it opens).
pub fn is_sealed(text: &str) -> bool {
    text.strip_prefix(PREFIX)
        .is_some_and(|h| h.len() >= 2 * (NONCE_LEN + 16) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_the_same_key_only() {
        let key = MasterKey::new("k1");
        let sealed = key.seal(Purpose::WebhookSecret, "whsec_0123456789abcdef").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("whsec"));
        assert_eq!(
            key.open(Purpose::WebhookSecret, &sealed).unwrap(),
            "whsec_0123456789abcdef"
        );
        assert_eq!(
            MasterKey::new("k2").open(Purpose::WebhookSecret, &sealed),
            Err(KeyError::WrongKey)
        );
    }

    #[test]
    fn each_seal_is_different_and_an_altered_one_does_not_open() {
        let key = MasterKey::dev();
        let a = key.seal(Purpose::WebhookSecret, "same").unwrap();
        let b = key.seal(Purpose::WebhookSecret, "same").unwrap();
        assert_ne!(a, b);
        let mut altered = a.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(key.open(Purpose::WebhookSecret, &altered), Err(KeyError::WrongKey));
        assert_eq!(key.open(Purpose::WebhookSecret, "plain"), Err(KeyError::Malformed));
        assert_eq!(
            key.open(Purpose::WebhookSecret, "aes256gcm:00"),
            Err(KeyError::Malformed)
        );
    }
}
