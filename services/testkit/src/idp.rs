//! A stand-in identity provider for tests and benchmarks: three test-only key pairs (see
//! `idp/README.md`), their public JWKS, and tokens signed as a real provider would sign them.
//! `invitebus-auth`'s own tests include this file by path, as they cannot depend on this crate.

use invitebus_auth::jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// The public half of every key below: what `INVITEBUS_JWKS` would point at.
pub const JWKS: &str = include_str!("../idp/jwks.json");
/// The RSA public key as PEM: what an algorithm-confusion attacker signs HS256 tokens with.
pub const RS256_PUBLIC_PEM: &str = include_str!("../idp/rs256.pub.pem");

/// A key the provider signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Rs256,
    Es256,
    EdDsa,
}

impl Key {
    pub const ALL: [Key; 3] = [Key::Rs256, Key::Es256, Key::EdDsa];

    /// Its `kid` in [`JWKS`].
    pub fn kid(self) -> &'static str {
        match self {
            Key::Rs256 => "test-rs256",
            Key::Es256 => "test-es256",
            Key::EdDsa => "test-eddsa",
        }
    }

    pub fn alg(self) -> Algorithm {
        match self {
            Key::Rs256 => Algorithm::RS256,
            Key::Es256 => Algorithm::ES256,
            Key::EdDsa => Algorithm::EdDSA,
        }
    }

    fn encoding_key(self) -> EncodingKey {
        let pem = match self {
            Key::Rs256 => include_bytes!("../idp/rs256.pem").as_slice(),
            Key::Es256 => include_bytes!("../idp/es256.pem").as_slice(),
            Key::EdDsa => include_bytes!("../idp/eddsa.pem").as_slice(),
        };
        match self {
            Key::Rs256 => EncodingKey::from_rsa_pem(pem),
            Key::Es256 => EncodingKey::from_ec_pem(pem),
            Key::EdDsa => EncodingKey::from_ed_pem(pem),
        }
        .expect("the test keys parse")
    }

    /// `claims` signed with this key, its `kid` in the header (or none).
    pub fn sign(self, claims: &Value, kid: bool) -> String {
        let mut header = Header::new(self.alg());
        header.kid = kid.then(|| self.kid().to_string());
        encode(&header, claims, &self.encoding_key()).expect("the test keys sign")
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A provider's claims for `sub` with `roles`, expiring `ttl` seconds from now (negative: past).
pub fn claims(sub: &str, roles: &[&str], ttl: i64) -> Value {
    json!({"sub": sub, "roles": roles, "exp": now().saturating_add_signed(ttl)})
}
