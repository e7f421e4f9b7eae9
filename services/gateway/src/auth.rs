//! The gateway's side of authentication: where a request carries its token. The token rules
//! themselves are [`invitebus_auth`]'s. Seed 001's `accessToken` query parameter and seed 004's
//! `ACCESS-TOKEN` header are accepted beside `Authorization: Bearer`.

pub use invitebus_auth::{
    is_reserved, mint, mint_claims, mint_until, verify, AuthError, Claims, Verifier, MAX_ROLES, RESERVED_ACTORS,
};

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
