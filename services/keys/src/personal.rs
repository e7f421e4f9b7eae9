//! A person's data key, and their personal fields sealed with it.
//!
//! Sealing is deterministic (the nonce is an HMAC of the field's name and text under the data
//! key, a synthetic IV): the same value seals to the same text, so a decision that compares a
//! profile with the one before sees "unchanged" whether the state came from memory or from the
//! log. The field's name, the user and the key id are bound in as associated data: a sealed
//! phone never opens as a name, nor as another user's.

use invitebus_events::personal::{sealed_by, SEALED_PREFIX};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

/// One user's data key, with its two subkeys made once (not on every seal and open).
#[derive(Clone)]
pub struct DataKey {
    pub user: String,
    /// Names this key among the user's keys (a user forgotten and back later gets a new one).
    pub key_id: String,
    key: [u8; 32],
    aead: std::sync::Arc<LessSafeKey>,
    nonce: ring::hmac::Key,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({}:{})", self.user, self.key_id)
    }
}

impl DataKey {
    pub fn new(user: &str, key_id: &str, key: [u8; 32]) -> DataKey {
        let aes = subkey(&key, b"invitebus/pd1/aes");
        DataKey {
            user: user.to_string(),
            key_id: key_id.to_string(),
            key,
            aead: std::sync::Arc::new(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &aes).expect("32 bytes"))),
            nonce: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &subkey(&key, b"invitebus/pd1/nonce")),
        }
    }

    /// A fresh random key for `user`.
    pub fn generate(user: &str) -> Result<DataKey, crate::KeyError> {
        use ring::rand::SecureRandom;
        let rng = ring::rand::SystemRandom::new();
        let mut key = [0u8; 32];
        let mut id = [0u8; 6];
        rng.fill(&mut key).map_err(|_| crate::KeyError::Random)?;
        rng.fill(&mut id).map_err(|_| crate::KeyError::Random)?;
        Ok(DataKey::new(user, &hex::encode(id), key))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.key
    }

    fn aad(&self, field: &str) -> Vec<u8> {
        format!("{SEALED_PREFIX}{}:{}:{field}", self.user, self.key_id).into_bytes()
    }

    /// `plain`, the value of personal field `field`, sealed: `pd1:<user>:<key id>:<hex>`.
    pub fn seal(&self, field: &str, plain: &str) -> String {
        let siv = ring::hmac::sign(&self.nonce, &[field.as_bytes(), b"\0", plain.as_bytes()].concat());
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&siv.as_ref()[..NONCE_LEN]);
        let mut data = plain.as_bytes().to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.aad(field)),
                &mut data,
            )
            .expect("sealing in memory does not fail");
        format!(
            "{SEALED_PREFIX}{}:{}:{}{}",
            self.user,
            self.key_id,
            hex::encode(nonce),
            hex::encode(&data)
        )
    }

    /// Opens a field this key sealed; None when it is not one (another key, another field,
    /// altered).
    pub fn open(&self, field: &str, sealed: &str) -> Option<String> {
        let s = sealed_by(sealed)?;
        if s.user != self.user || s.key_id != self.key_id {
            return None;
        }
        let bytes = hex::decode(s.blob).ok()?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return None;
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = rest.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(self.aad(field)), &mut data)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

/// A subkey of a data key for `label`: the synthetic nonce's HMAC and AES-GCM never share a key.
fn subkey(key: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), label);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_is_deterministic_and_bound_to_field_user_and_key() {
        let k = DataKey::generate("fang").unwrap();
        let a = k.seal("phone", "+86 138 0000 0000");
        assert_eq!(a, k.seal("phone", "+86 138 0000 0000"), "the same value seals the same");
        assert_ne!(a, k.seal("phone", "+86 138 0000 0001"));
        // Neither the text nor its hex may show (a bare "138" turns up in random hex by chance).
        assert!(!a.contains("+86 138 0000"));
        assert!(!a.contains(&hex::encode("+86 138 0000")));
        assert!(a.starts_with(&format!("pd1:fang:{}:", k.key_id)));
        assert_eq!(k.open("phone", &a).as_deref(), Some("+86 138 0000 0000"));
        assert_eq!(k.open("name", &a), None, "another field");
        let other = DataKey::generate("fang").unwrap();
        assert_eq!(other.open("phone", &a), None, "another key of the same user");
        assert_eq!(k.open("phone", "Fang"), None, "plain text");
    }

    /// What every log and stream holds was sealed this way: the same key, field and value must
    /// seal to these bytes for ever (the value is what the code before 2026-12-07 produced, when
    /// the subkeys were made on every call).
    #[test]
    fn sealing_stays_what_it_was() {
        let k = DataKey::new("fang", "k1", [7u8; 32]);
        let sealed =
            "pd1:fang:k1:5520308c05eed4a4358a4b576f78a0e7ef860b2610bdb1cf059505bf420f4819fc3a860193d2aeee99f5afbca7";
        assert_eq!(k.seal("phone", "+86 138 0000 0000"), sealed);
        assert_eq!(k.clone().open("phone", sealed).as_deref(), Some("+86 138 0000 0000"));
    }
}
