//! Who is acting: users' tokens (the gateway's callers, bus clients; HS256 here, or an identity
//! provider's RS256, ES256 and EdDSA in [`verifier`]) and invitebus's own HS256 service token, the
//! only way to act as `system`; [`bus`]: with `--bus-auth token`, a request on NATS acts as its
//! `Authorization` header's token says, whatever its body says.
#![forbid(unsafe_code)]

pub mod bus;
pub mod verifier;

pub use bus::BusAuth;
pub use jsonwebtoken;
pub use verifier::{Keys, KeysError, Verifier, VerifierSettings};

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Actors that only invitebus's own workers may be: no token naming one is minted or accepted.
pub const RESERVED_ACTORS: &[&str] = &[invitebus_events::SYSTEM_ACTOR];
/// At most this many roles in a token, each a valid id: the gateway adds them to every body,
/// so they must fit in the bus's allowance for the fields it sets.
pub const MAX_ROLES: usize = 16;

/// What a token says.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id: the actor of every command sent with this token.
    pub sub: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Not before, seconds since the epoch; checked when present.
    pub nbf: Option<u64>,
}

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no token")]
    Missing,
    #[error("bad or expired token: {0}")]
    Invalid(String),
    #[error("the request carries different tokens (Authorization, ACCESS-TOKEN, accessToken): send one")]
    Conflicting,
    #[error("`{0}` is reserved for invitebus's own workers")]
    Reserved(String),
}

/// Whether `user` is an actor no token may name (compared without case, so `System` is too).
pub fn is_reserved(user: &str) -> bool {
    RESERVED_ACTORS.iter().any(|r| r.eq_ignore_ascii_case(user))
}

/// Mints a token for `user` with `roles`, valid for `ttl_secs`.
pub fn mint(secret: &str, user: &str, roles: &[String], ttl_secs: u64) -> String {
    mint_until(secret, user, roles, now() + ttl_secs)
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Mints a token that expires at `exp` (seconds since the epoch; a past one is already expired).
pub fn mint_until(secret: &str, user: &str, roles: &[String], exp: u64) -> String {
    let claims = Claims {
        sub: user.to_string(),
        roles: roles.to_vec(),
        exp,
        nbf: None,
    };
    mint_claims(secret, &Header::new(Algorithm::HS256), &claims)
}

/// Signs any claims under any header (HS256): for tests of what `verify` refuses.
pub fn mint_claims(secret: &str, header: &Header, claims: &Claims) -> String {
    encode(header, claims, &EncodingKey::from_secret(secret.as_bytes())).expect("HS256 signs")
}

/// The signature (HS256 only), expiry and not-before (no leeway), and that no critical header
/// extension is asked for (we know none).
fn decode_checked(secret: &str, token: &str) -> Result<jsonwebtoken::TokenData<Claims>, AuthError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_nbf = true;
    let data = decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation)
        .map_err(|e| AuthError::Invalid(e.to_string()))?;
    refuse_critical(&data.header)?;
    Ok(data)
}

/// A token asking for a critical header extension is refused: we know none.
pub(crate) fn refuse_critical(header: &Header) -> Result<(), AuthError> {
    match &header.crit {
        Some(crit) => {
            let names: Vec<String> = crit.iter().take(4).map(|c| clip(c, 40)).collect();
            Err(AuthError::Invalid(format!(
                "unknown critical header extension {names:?}"
            )))
        }
        None => Ok(()),
    }
}

/// Checks a user's HS256 token: [`decode_checked`], then that the subject is a valid, unreserved
/// id, and the roles. [`Verifier`] does the same for every kind of key, and remembers.
pub fn verify(secret: &str, token: &str) -> Result<Claims, AuthError> {
    checked(decode_checked(secret, token)?.claims, false)
}

/// Checks a service token: signed with invitebus's service secret (never a user-facing one),
/// its subject `system` exactly or a valid unreserved id; the same checks as [`verify`] otherwise.
pub fn verify_service(secret: &str, token: &str) -> Result<Claims, AuthError> {
    checked(decode_checked(secret, token)?.claims, true)
}

/// The subject (`system` only for the service) and the roles of verified claims.
pub(crate) fn checked(claims: Claims, service: bool) -> Result<Claims, AuthError> {
    let system = service && claims.sub == invitebus_events::SYSTEM_ACTOR;
    if !system && is_reserved(&claims.sub) {
        return Err(AuthError::Reserved(claims.sub));
    }
    if !invitebus_events::ids::is_valid_id(&claims.sub) {
        return Err(AuthError::Invalid("the subject is not a valid id".into()));
    }
    if claims.roles.len() > MAX_ROLES || !claims.roles.iter().all(|r| invitebus_events::ids::is_valid_id(r)) {
        return Err(AuthError::Invalid(format!(
            "roles must be at most {MAX_ROLES} valid ids"
        )));
    }
    Ok(claims)
}

/// At most `max` characters of `s` (an ellipsis says when cut), for messages that quote what a
/// client sent.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn minted_tokens_verify_and_others_do_not() {
        let t = mint("s3cret", "fang", &["admin".into()], 60);
        let c = verify("s3cret", &t).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.roles.as_slice()),
            ("fang", ["admin".to_string()].as_slice())
        );
        assert!(matches!(verify("other", &t), Err(AuthError::Invalid(_))));
        let expired = mint_until("s3cret", "fang", &[], 1);
        assert!(matches!(verify("s3cret", &expired), Err(AuthError::Invalid(_))));
        assert!(verify("s3cret", "not.a.token").is_err());
    }

    #[test]
    fn only_a_service_token_names_system_and_only_exactly() {
        let t = mint("svc", "system", &[], 60);
        assert_eq!(verify_service("svc", &t).map(|c| c.sub), Ok("system".into()));
        assert!(matches!(verify("svc", &t), Err(AuthError::Reserved(_))));
        let other_case = mint("svc", "System", &[], 60);
        assert!(matches!(
            verify_service("svc", &other_case),
            Err(AuthError::Reserved(_))
        ));
        assert!(matches!(verify_service("other", &t), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn reserved_actors_are_refused_in_any_case() {
        for user in ["system", "System", "SYSTEM"] {
            let t = mint("s3cret", user, &[], 60);
            assert!(matches!(verify("s3cret", &t), Err(AuthError::Reserved(_))), "{user}");
        }
        assert!(!is_reserved("systems"));
    }

    #[test]
    fn not_before_and_critical_extensions_are_checked() {
        let later = Claims {
            sub: "fang".into(),
            roles: vec![],
            exp: now() + 600,
            nbf: Some(now() + 300),
        };
        let t = mint_claims("k", &Header::new(Algorithm::HS256), &later);
        assert!(matches!(verify("k", &t), Err(AuthError::Invalid(_))));
        let mut header = Header::new(Algorithm::HS256);
        header.crit = Some(vec!["b64".into()]);
        let now_ok = Claims {
            nbf: Some(now() - 5),
            ..later
        };
        assert!(verify("k", &mint_claims("k", &Header::new(Algorithm::HS256), &now_ok)).is_ok());
        assert!(matches!(
            verify("k", &mint_claims("k", &header, &now_ok)),
            Err(AuthError::Invalid(_))
        ));
    }
}
