//! Bearer JWT (HS256) authentication. The actor always comes from the token, never the body.
//! Seed 001's `accessToken` query parameter and seed 004's `ACCESS-TOKEN` header are accepted too.

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

fn now() -> u64 {
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

/// Checks signature (HS256 only), expiry and not-before (no leeway), that no critical header
/// extension is asked for (we know none), that the subject is a valid, unreserved id, and the roles.
pub fn verify(secret: &str, token: &str) -> Result<Claims, AuthError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_nbf = true;
    let data = decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation)
        .map_err(|e| AuthError::Invalid(e.to_string()))?;
    if let Some(crit) = &data.header.crit {
        let names: Vec<String> = crit.iter().take(4).map(|c| crate::bus::clip(c, 40)).collect();
        return Err(AuthError::Invalid(format!(
            "unknown critical header extension {names:?}"
        )));
    }
    let claims = data.claims;
    if !invitebus_events::ids::is_valid_id(&claims.sub) {
        return Err(AuthError::Invalid("the subject is not a valid id".into()));
    }
    if is_reserved(&claims.sub) {
        return Err(AuthError::Reserved(claims.sub));
    }
    if claims.roles.len() > MAX_ROLES || !claims.roles.iter().all(|r| invitebus_events::ids::is_valid_id(r)) {
        return Err(AuthError::Invalid(format!(
            "roles must be at most {MAX_ROLES} valid ids"
        )));
    }
    Ok(claims)
}

/// The token of a request: `Authorization: Bearer …`, `ACCESS-TOKEN: …`, or `?accessToken=…`.
/// The same token given in several places is one token; two different ones are refused, as
/// no precedence between them would be the client's intent.
pub fn token_of(headers: &axum::http::HeaderMap, query: Option<&str>) -> Result<String, AuthError> {
    let mut found: Vec<String> = Vec::new();
    for v in headers.get_all(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().unwrap_or_default().trim();
        let token = v
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("bearer "))
            .map(|_| &v[7..]);
        match token {
            Some(t) => found.push(t.trim().to_string()),
            None => return Err(AuthError::Invalid("Authorization is not `Bearer <token>`".into())),
        }
    }
    for v in headers.get_all("ACCESS-TOKEN") {
        found.push(v.to_str().unwrap_or_default().trim().to_string());
    }
    for kv in query.unwrap_or_default().split('&') {
        if let Some(t) = kv.strip_prefix("accessToken=") {
            found.push(t.to_string());
        }
    }
    found.sort();
    found.dedup();
    match found.len() {
        0 => Err(AuthError::Missing),
        1 => Ok(found.remove(0)),
        _ => Err(AuthError::Conflicting),
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

    #[test]
    fn two_different_tokens_are_refused_the_same_twice_is_one() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("authorization", "Bearer aaa".parse().unwrap());
        assert_eq!(token_of(&headers, Some("accessToken=aaa")), Ok("aaa".into()));
        assert_eq!(token_of(&headers, Some("accessToken=bbb")), Err(AuthError::Conflicting));
        assert_eq!(
            token_of(&headers, Some("accessToken=aaa&accessToken=bbb")),
            Err(AuthError::Conflicting)
        );
        headers.insert("access-token", "ccc".parse().unwrap());
        assert_eq!(token_of(&headers, None), Err(AuthError::Conflicting));
        assert_eq!(token_of(&Default::default(), None), Err(AuthError::Missing));
    }
}
