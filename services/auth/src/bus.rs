//! Binding a bus request to its token. A subscriber cannot see which NATS user published a
//! message, so with [`BusAuth::Token`] the message's `Authorization: Bearer <jwt>` header is what
//! decides who acts: the body's `actor` must be the token's subject (or absent) and its `roles`
//! are the token's, whatever the body said. `system` only with invitebus's service token.

use crate::{mint, verify_service, AuthError, Claims, Verifier};
use invitebus_events::{ErrorCode, ProtocolError, SYSTEM_ACTOR};
use serde_json::Value;
use std::borrow::Cow;

/// The NATS header a bus request carries its token in.
pub const AUTHORIZATION: &str = "Authorization";

/// A bus message's `Authorization` header, if it has one.
pub fn authorization(msg: &async_nats::Message) -> Option<&str> {
    msg.headers
        .as_ref()
        .and_then(|h| h.get(AUTHORIZATION))
        .map(|v| v.as_str())
}

/// How long a service token minted by [`BusAuth::service_header`] lasts.
const SERVICE_TTL_SECS: u64 = 3600;

/// Whether requests on the bus must carry a token (`--bus-auth`).
#[derive(Clone, Default)]
pub enum BusAuth {
    /// The body's `actor` and `roles` are believed: a laptop, a trusted network.
    #[default]
    Off,
    /// Every command and query carries a token: users' checked by `users`, invitebus's own
    /// workers' signed with `service` (a secret no user-facing edge accepts).
    Token {
        users: std::sync::Arc<Verifier>,
        service: String,
    },
}

impl std::fmt::Debug for BusAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BusAuth::Off => "BusAuth::Off",
            BusAuth::Token { .. } => "BusAuth::Token",
        })
    }
}

impl BusAuth {
    pub fn is_on(&self) -> bool {
        matches!(self, BusAuth::Token { .. })
    }

    /// `body` as its token says, given the request's `Authorization` header: unchanged when off;
    /// else the token verified (`unauthenticated` when missing or bad), the body's `actor` checked
    /// against it (`forbidden` when it names someone else) and `actor` and `roles` set from it.
    /// A body that is no JSON object is returned as it is: its handler refuses it.
    pub fn bind<'a>(&self, authorization: Option<&str>, body: &'a [u8]) -> Result<Cow<'a, [u8]>, ProtocolError> {
        let BusAuth::Token { users, service } = self else {
            return Ok(Cow::Borrowed(body));
        };
        let claims = self::claims(users, service, authorization)
            .map_err(|e| ProtocolError::with_field(ErrorCode::Unauthenticated, "Authorization", e.to_string()))?;
        if already_bound(body, &claims) {
            return Ok(Cow::Borrowed(body));
        }
        let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
            return Ok(Cow::Borrowed(body));
        };
        match fields.get("actor") {
            None | Some(Value::Null) => {}
            Some(Value::String(a)) if *a == claims.sub => {}
            Some(other) => {
                let named = other.as_str().map_or_else(|| other.to_string(), str::to_string);
                return Err(ProtocolError::with_field(
                    ErrorCode::Forbidden,
                    "actor",
                    format!(
                        "the token is `{}`'s; it cannot act as `{}`",
                        crate::clip(&claims.sub, 64),
                        crate::clip(&named, 64)
                    ),
                ));
            }
        }
        fields.insert("actor".into(), Value::String(claims.sub));
        fields.insert(
            "roles".into(),
            Value::Array(claims.roles.into_iter().map(Value::String).collect()),
        );
        Ok(Cow::Owned(
            serde_json::to_vec(&Value::Object(fields)).unwrap_or_default(),
        ))
    }

    /// [`BusAuth::bind`] of a bus message, by its own `Authorization` header: off, the
    /// message's payload itself (no copy); on, the bound body.
    pub fn bind_message(&self, msg: &async_nats::Message) -> Result<bytes::Bytes, ProtocolError> {
        Ok(match self.bind(authorization(msg), &msg.payload)? {
            Cow::Borrowed(_) => msg.payload.clone(),
            Cow::Owned(body) => bytes::Bytes::from(body),
        })
    }

    /// The header value invitebus's own workers send their commands with (`Bearer` and a
    /// service token acting as `system` with `roles`); none when off.
    pub fn service_header(&self, roles: &[String]) -> Option<String> {
        match self {
            BusAuth::Off => None,
            BusAuth::Token { service, .. } => Some(format!(
                "Bearer {}",
                mint(service, SYSTEM_ACTOR, roles, SERVICE_TTL_SECS)
            )),
        }
    }
}

/// Whether `msg` is a JetStream delivery rather than a request: on nats-server 2.9 a client may
/// create a push consumer whose deliver subject is a command or query subject, and what it
/// delivers has the ack subject (`$JS.ACK.…`) as its reply. Responders drop these unanswered (an
/// answer would ack it), logged and counted (`invitebus_bus_deliveries_dropped_total`).
pub fn is_delivery(msg: &async_nats::Message) -> bool {
    let delivered = msg.reply.as_ref().is_some_and(|r| r.as_str().starts_with("$JS.ACK."));
    if delivered {
        metrics::counter!("invitebus_bus_deliveries_dropped_total").increment(1);
        // Unanswered, the delivery comes back every ack wait: one line per 1,000 is enough.
        static DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = DROPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n.is_multiple_of(1000) {
            tracing::warn!(subject = %msg.subject, dropped = n + 1, "JetStream deliveries on a request subject, dropped");
        }
    }
    delivered
}

/// The verified claims of a `Bearer` header: a user's token, or else the service's.
fn claims(users: &Verifier, service: &str, authorization: Option<&str>) -> Result<Claims, AuthError> {
    let header = authorization.map(str::trim).ok_or(AuthError::Missing)?;
    let token = header
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("bearer "))
        .map(|_| header[7..].trim())
        .ok_or_else(|| AuthError::Invalid("Authorization is not `Bearer <token>`".into()))?;
    match users.verify(token) {
        Ok(c) => Ok(c),
        // A token naming `system` is only ever the service's: checked against its secret alone.
        Err(user_error) => verify_service(service, token).map_err(|_| user_error),
    }
}

/// Whether `body` already says what the token says (its `actor` the token's subject, its `roles`
/// the token's or none while the token has none): what the gateway and most clients send, read
/// without building the body, so it passes as it came: the commands' intake loop is serial, and
/// a parse and a write of every body there showed in `invitebus-bench commands --bus-auth`.
fn already_bound(body: &[u8], claims: &Claims) -> bool {
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        actor: Option<Cow<'a, str>>,
        #[serde(borrow)]
        roles: Option<Vec<Cow<'a, str>>>,
    }
    let Ok(named) = serde_json::from_slice::<Named>(body) else {
        return false;
    };
    let roles_agree = match &named.roles {
        None => claims.roles.is_empty(),
        Some(roles) => roles.len() == claims.roles.len() && roles.iter().zip(&claims.roles).all(|(a, b)| a == b),
    };
    named.actor.as_deref() == Some(claims.sub.as_str()) && roles_agree
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn on() -> BusAuth {
        BusAuth::Token {
            users: std::sync::Arc::new(Verifier::hs256("users-secret")),
            service: "service-secret".into(),
        }
    }

    fn bearer(t: String) -> String {
        format!("Bearer {t}")
    }

    fn bound(auth: &BusAuth, header: Option<&str>, body: &str) -> Result<Value, ErrorCode> {
        auth.bind(header, body.as_bytes())
            .map(|b| serde_json::from_slice(&b).unwrap())
            .map_err(|e| e.code)
    }

    #[test]
    fn off_passes_the_body_as_it_is() {
        let body = r#"{"actor":"system","roles":["admin"]}"#;
        assert_eq!(
            BusAuth::Off.bind(None, body.as_bytes()).unwrap().as_ref(),
            body.as_bytes()
        );
    }

    #[test]
    fn the_token_names_the_actor_and_its_roles_replace_the_bodys() {
        let fang = bearer(mint("users-secret", "fang", &[], 60));
        let v = bound(&on(), Some(&fang), r#"{"invite_id":"i1","roles":["admin"]}"#).unwrap();
        assert_eq!(
            (v["actor"].as_str(), v["roles"].as_array().map(Vec::len)),
            (Some("fang"), Some(0))
        );
        let v = bound(&on(), Some(&fang), r#"{"actor":"fang"}"#).unwrap();
        assert_eq!(v["actor"], "fang");
    }

    #[test]
    fn a_body_that_already_says_what_the_token_says_passes_as_it_came_and_no_other() {
        let admin = bearer(mint("users-secret", "fang", &["admin".into()], 60));
        let same = r#"{"actor":"fang", "roles":["admin"],"x":1}"#;
        let passed = on().bind(Some(&admin), same.as_bytes()).unwrap();
        assert!(matches!(passed, Cow::Borrowed(_)) && passed.as_ref() == same.as_bytes());
        let fang = bearer(mint("users-secret", "fang", &[], 60));
        for body in [
            r#"{"actor":"fang","roles":["admin"]}"#,
            r#"{"actor":"fang","actor":"fang","roles":["admin"]}"#,
            r#"{"roles":[]}"#,
        ] {
            let v = bound(&on(), Some(&fang), body).unwrap();
            assert_eq!(
                (v["actor"].clone(), v["roles"].clone()),
                (json!("fang"), json!([])),
                "{body}"
            );
        }
        let v = bound(&on(), Some(&admin), r#"{"actor":"fang"}"#).unwrap();
        assert_eq!(v["roles"], json!(["admin"]));
    }

    #[test]
    fn another_actor_or_system_with_a_user_token_is_forbidden() {
        let fang = bearer(mint("users-secret", "fang", &["admin".into()], 60));
        for body in [r#"{"actor":"xuan"}"#, r#"{"actor":"system"}"#, r#"{"actor":7}"#] {
            assert_eq!(bound(&on(), Some(&fang), body), Err(ErrorCode::Forbidden), "{body}");
        }
    }

    #[test]
    fn no_token_a_bad_one_or_a_user_secret_naming_system_is_unauthenticated() {
        let cases = [
            None,
            Some("Basic abc".to_string()),
            Some(bearer("not.a.token".into())),
            Some(bearer(mint("another-secret", "fang", &[], 60))),
            Some(bearer(mint("users-secret", SYSTEM_ACTOR, &[], 60))),
            Some(bearer(crate::mint_until("users-secret", "fang", &[], 1))),
        ];
        for header in cases {
            assert_eq!(
                bound(&on(), header.as_deref(), r#"{"actor":"fang"}"#),
                Err(ErrorCode::Unauthenticated),
                "{header:?}"
            );
        }
    }

    #[test]
    fn the_service_token_acts_as_system() {
        let auth = on();
        let header = auth.service_header(&["admin".into()]).unwrap();
        let v = bound(&auth, Some(&header), r#"{"actor":"system","export_id":"e1"}"#).unwrap();
        assert_eq!(
            (v["actor"].as_str(), v["roles"][0].as_str()),
            (Some("system"), Some("admin"))
        );
        assert_eq!(BusAuth::Off.service_header(&[]), None);
    }
}
