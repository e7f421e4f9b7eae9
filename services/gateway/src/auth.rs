//! Bearer JWT (HS256) authentication. The actor always comes from the token, never the body.
//! Seed 001's `accessToken` query parameter and seed 004's `ACCESS-TOKEN` header are accepted too.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// What a token says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id: the actor of every command sent with this token.
    pub sub: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
}

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no token")]
    Missing,
    #[error("bad or expired token: {0}")]
    Invalid(String),
}

/// Mints a token for `user` with `roles`, valid for `ttl_secs`.
pub fn mint(secret: &str, user: &str, roles: &[String], ttl_secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    mint_until(secret, user, roles, now + ttl_secs)
}

/// Mints a token that expires at `exp` (seconds since the epoch; a past one is already expired).
pub fn mint_until(secret: &str, user: &str, roles: &[String], exp: u64) -> String {
    let claims = Claims {
        sub: user.to_string(),
        roles: roles.to_vec(),
        exp,
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signs")
}

/// Checks signature (HS256 only) and expiry, and that the subject is a valid id.
pub fn verify(secret: &str, token: &str) -> Result<Claims, AuthError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    let data = decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation)
        .map_err(|e| AuthError::Invalid(e.to_string()))?;
    if !invitebus_events::ids::is_valid_id(&data.claims.sub) {
        return Err(AuthError::Invalid("the subject is not a valid id".into()));
    }
    Ok(data.claims)
}

/// The token of a request: `Authorization: Bearer …`, `ACCESS-TOKEN: …`, or `?accessToken=…`.
pub fn token_of(headers: &axum::http::HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(v) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")) {
            return Some(t.trim().to_string());
        }
    }
    if let Some(v) = headers.get("ACCESS-TOKEN").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_string());
    }
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("accessToken="))
        .map(str::to_string)
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
        let expired = {
            let claims = Claims {
                sub: "fang".into(),
                roles: vec![],
                exp: 1,
            };
            encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(b"s3cret"),
            )
            .unwrap()
        };
        assert!(matches!(verify("s3cret", &expired), Err(AuthError::Invalid(_))));
        assert!(verify("s3cret", "not.a.token").is_err());
    }
}
