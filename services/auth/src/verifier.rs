//! Users' tokens, whoever signed them: HS256 with the shared secret, or RS256, ES256 and EdDSA
//! from an identity provider whose public keys come as a JWKS; `iss` and `aud` when set, a
//! clock skew allowance, and a cache of tokens already verified (a signature check costs tens of
//! microseconds or more, a lookup well under one; a client sends the same token many times).

use crate::{checked, AuthError, Claims};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

/// How many verified tokens a [`Verifier`] remembers; when full it forgets them all at once
/// (one clear per this many new tokens costs less than any eviction order would).
pub const DEFAULT_CACHE: usize = 65_536;

/// What a user's token must be.
#[derive(Debug, Clone, Default)]
pub struct VerifierSettings {
    /// The HS256 secret of users' tokens; None refuses every HS256 token.
    pub secret: Option<String>,
    /// When set, a token must carry this `iss`.
    pub issuer: Option<String>,
    /// When set, a token's `aud` must be or contain this.
    pub audience: Option<String>,
    /// Seconds a token is still taken past its `exp` and before its `nbf` (clocks disagree).
    pub leeway_secs: u64,
    /// Verified tokens remembered ([`DEFAULT_CACHE`] when 0).
    pub cache: usize,
}

/// Why a JWKS cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("the JWKS is not a JSON key set")]
    Parse(#[from] serde_json::Error),
    #[error("the JWKS holds no key that can verify RS256, ES256 or EdDSA tokens ({0})")]
    NoUsableKey(String),
}

/// The public keys of a JWKS that verify users' tokens. Symmetric (`oct`) keys are never taken:
/// whoever can read the JWKS could sign with them.
#[derive(Default)]
pub struct Keys {
    keys: Vec<PublicKey>,
    /// Why each key left out was, for the log.
    pub ignored: Vec<String>,
}

struct PublicKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

impl Keys {
    /// The usable keys of a JWKS document (RSA → RS256, EC P-256 → ES256, OKP Ed25519 → EdDSA);
    /// a key whose `alg` or `use` says otherwise is left out.
    pub fn from_jwks(json: &[u8]) -> Result<Keys, KeysError> {
        let set: JwkSet = serde_json::from_slice(json)?;
        let mut keys = Keys::default();
        for jwk in &set.keys {
            let kid = jwk.common.key_id.clone();
            let name = kid.clone().unwrap_or_else(|| "(no kid)".into());
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Some((Algorithm::RS256, KeyAlgorithm::RS256)),
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                    Some((Algorithm::ES256, KeyAlgorithm::ES256))
                }
                AlgorithmParameters::OctetKeyPair(_) => Some((Algorithm::EdDSA, KeyAlgorithm::EdDSA)),
                _ => None,
            };
            let Some((alg, key_alg)) = alg else {
                keys.ignored
                    .push(format!("{name}: not an RSA, EC P-256 or Ed25519 public key"));
                continue;
            };
            if jwk.common.key_algorithm.is_some_and(|a| a != key_alg) {
                keys.ignored.push(format!("{name}: its alg is not {alg:?}"));
                continue;
            }
            if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
                keys.ignored.push(format!("{name}: not a signing key (use)"));
                continue;
            }
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => keys.keys.push(PublicKey { kid, alg, key }),
                Err(e) => keys.ignored.push(format!("{name}: {e}")),
            }
        }
        match keys.keys.is_empty() {
            true => Err(KeysError::NoUsableKey(keys.ignored.join("; "))),
            false => Ok(keys),
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key a token names (`kid`) for its algorithm; without a `kid`, the only key for it.
    fn select(&self, alg: Algorithm, kid: Option<&str>) -> Result<&DecodingKey, AuthError> {
        let mut fitting = self.keys.iter().filter(|k| k.alg == alg);
        let found = match kid {
            Some(kid) => fitting.find(|k| k.kid.as_deref() == Some(kid)),
            None => match (fitting.next(), fitting.next()) {
                (Some(only), None) => Some(only),
                (Some(_), Some(_)) => {
                    return Err(AuthError::Invalid(format!(
                        "the token names no key (kid) and several {alg:?} keys could verify it"
                    )))
                }
                _ => None,
            },
        };
        found.map(|k| &k.key).ok_or_else(|| {
            AuthError::Invalid(match kid {
                Some(kid) => format!("no {alg:?} key `{}` is known", crate::clip(kid, 64)),
                None => format!("no {alg:?} key is known"),
            })
        })
    }
}

/// Checks users' tokens ([`VerifierSettings`]), remembering the ones that passed.
pub struct Verifier {
    hs256: Option<DecodingKey>,
    keys: RwLock<Arc<Keys>>,
    settings: VerifierSettings,
    cache: Mutex<HashMap<String, Claims, foldhash::fast::RandomState>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hs256", &self.hs256.is_some())
            .field("keys", &self.keys().len())
            .field("issuer", &self.settings.issuer)
            .field("audience", &self.settings.audience)
            .finish()
    }
}

impl Verifier {
    pub fn new(mut settings: VerifierSettings, keys: Keys) -> Verifier {
        if settings.cache == 0 {
            settings.cache = DEFAULT_CACHE;
        }
        Verifier {
            hs256: settings
                .secret
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| DecodingKey::from_secret(s.as_bytes())),
            keys: RwLock::new(Arc::new(keys)),
            settings,
            cache: Mutex::default(),
        }
    }

    /// HS256 with `secret` only: what a deployment without an identity provider runs.
    pub fn hs256(secret: &str) -> Verifier {
        let settings = VerifierSettings {
            secret: Some(secret.to_string()),
            ..VerifierSettings::default()
        };
        Verifier::new(settings, Keys::default())
    }

    /// Takes a refreshed JWKS; tokens verified with the old keys are checked again.
    pub fn replace_keys(&self, keys: Keys) {
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn keys(&self) -> Arc<Keys> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A user's token checked: its signature by the key its algorithm and `kid` name, expiry and
    /// not-before within the leeway, `iss` and `aud` when set, no unknown critical extension,
    /// then the subject and roles ([`checked`]).
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let now = crate::now();
        if let Some(c) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(token) {
            if c.exp.saturating_add(self.settings.leeway_secs) >= now {
                return Ok(c.clone());
            }
        }
        let claims = self.verify_uncached(token)?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= self.settings.cache {
            cache.clear();
        }
        cache.insert(token.to_string(), claims.clone());
        Ok(claims)
    }

    fn verify_uncached(&self, token: &str) -> Result<Claims, AuthError> {
        let invalid = |e: jsonwebtoken::errors::Error| AuthError::Invalid(e.to_string());
        let header = decode_header(token).map_err(invalid)?;
        let keys;
        let key = match header.alg {
            Algorithm::HS256 => self
                .hs256
                .as_ref()
                .ok_or_else(|| AuthError::Invalid("HS256 tokens are not accepted here".into()))?,
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA => {
                keys = self.keys();
                keys.select(header.alg, header.kid.as_deref())?
            }
            other => return Err(AuthError::Invalid(format!("{other:?} tokens are not accepted"))),
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.settings.leeway_secs;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(iss) = &self.settings.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        match &self.settings.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let data = decode::<Claims>(token, key, &validation).map_err(invalid)?;
        crate::refuse_critical(&data.header)?;
        checked(data.claims, false)
    }
}
