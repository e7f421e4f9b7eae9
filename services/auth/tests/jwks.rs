//! Users' tokens from an identity provider: RS256, ES256 and EdDSA against a JWKS, key ids,
//! `iss`/`aud`, clock skew, algorithm confusion and the cache of verified tokens.

#[path = "../../testkit/src/idp.rs"]
mod idp;

use idp::{claims, Key};
use invitebus_auth::jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use invitebus_auth::{AuthError, Keys, KeysError, Verifier, VerifierSettings};
use serde_json::json;

fn verifier(settings: VerifierSettings) -> Verifier {
    Verifier::new(
        settings,
        Keys::from_jwks(idp::JWKS.as_bytes()).expect("the JWKS parses"),
    )
}

fn plain() -> Verifier {
    verifier(VerifierSettings {
        secret: Some("users-secret".into()),
        ..Default::default()
    })
}

fn hs256(secret: &[u8], claims: &serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[test]
fn each_providers_key_verifies_its_tokens() {
    let v = plain();
    for key in Key::ALL {
        let c = v
            .verify(&key.sign(&claims("fang", &["admin"], 60), true))
            .expect("verifies");
        assert_eq!(
            (c.sub.as_str(), c.roles.as_slice()),
            ("fang", ["admin".to_string()].as_slice()),
            "{key:?}"
        );
    }
    // One key per algorithm: a token without a kid finds it.
    assert!(v.verify(&Key::Rs256.sign(&claims("fang", &[], 60), false)).is_ok());
    // HS256 with the shared secret still works beside them.
    assert!(v.verify(&hs256(b"users-secret", &claims("fang", &[], 60))).is_ok());
}

#[test]
fn hs256_signed_with_a_public_key_is_refused() {
    // Algorithm confusion: the attacker signs HS256 with bytes anyone can read.
    let jwks: serde_json::Value = serde_json::from_str(idp::JWKS).unwrap();
    let n = jwks["keys"][0]["n"].as_str().unwrap().to_string();
    let forged_pem = hs256(idp::RS256_PUBLIC_PEM.as_bytes(), &claims("fang", &["admin"], 60));
    let forged_n = hs256(n.as_bytes(), &claims("fang", &["admin"], 60));
    let mut kid_header = Header::new(Algorithm::HS256);
    kid_header.kid = Some(Key::Rs256.kid().into());
    let forged_kid = encode(
        &kid_header,
        &claims("fang", &["admin"], 60),
        &EncodingKey::from_secret(idp::RS256_PUBLIC_PEM.as_bytes()),
    )
    .unwrap();
    let without_secret = verifier(VerifierSettings::default());
    for v in [plain(), without_secret] {
        for t in [&forged_pem, &forged_n, &forged_kid] {
            assert!(matches!(v.verify(t), Err(AuthError::Invalid(_))));
        }
    }
}

#[test]
fn unknown_keys_other_algorithms_and_altered_tokens_are_refused() {
    let v = plain();
    let good = Key::Es256.sign(&claims("fang", &[], 60), true);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rotated-away".into());
    let unknown = encode(
        &header,
        &claims("fang", &[], 60),
        &EncodingKey::from_rsa_pem(include_bytes!("../../testkit/idp/rs256.pem")).unwrap(),
    )
    .unwrap();
    let hs384 = encode(
        &Header::new(Algorithm::HS384),
        &claims("fang", &[], 60),
        &EncodingKey::from_secret(b"users-secret"),
    )
    .unwrap();
    // The payload swapped for one naming an admin: the signature no longer holds.
    let parts: Vec<&str> = good.split('.').collect();
    let other = Key::Es256.sign(&claims("root", &["admin"], 60), true);
    let altered = format!("{}.{}.{}", parts[0], other.split('.').nth(1).unwrap(), parts[2]);
    let none = format!("{}.{}.", "eyJhbGciOiJub25lIn0", parts[1]);
    for (what, t) in [
        ("unknown kid", unknown),
        ("HS384", hs384),
        ("altered", altered),
        ("none", none),
    ] {
        assert!(matches!(v.verify(&t), Err(AuthError::Invalid(_))), "{what}");
    }
    assert!(v.verify(&good).is_ok());
}

#[test]
fn issuer_and_audience_are_checked_when_set() {
    let v = verifier(VerifierSettings {
        issuer: Some("https://idp.test".into()),
        audience: Some("invitebus".into()),
        ..Default::default()
    });
    let with = |iss: Option<&str>, aud: Option<serde_json::Value>| {
        let mut c = claims("fang", &[], 60);
        if let Some(iss) = iss {
            c["iss"] = json!(iss);
        }
        if let Some(aud) = aud {
            c["aud"] = aud;
        }
        Key::Rs256.sign(&c, true)
    };
    assert!(v
        .verify(&with(Some("https://idp.test"), Some(json!("invitebus"))))
        .is_ok());
    assert!(v
        .verify(&with(Some("https://idp.test"), Some(json!(["other", "invitebus"]))))
        .is_ok());
    for (what, t) in [
        ("no iss", with(None, Some(json!("invitebus")))),
        ("other iss", with(Some("https://evil.test"), Some(json!("invitebus")))),
        ("no aud", with(Some("https://idp.test"), None)),
        ("other aud", with(Some("https://idp.test"), Some(json!("billing")))),
    ] {
        assert!(matches!(v.verify(&t), Err(AuthError::Invalid(_))), "{what}");
    }
    // Without settings an `aud` is no reason to refuse.
    assert!(plain().verify(&with(None, Some(json!("anyone")))).is_ok());
}

#[test]
fn clock_skew_is_a_setting_and_none_by_default() {
    let expired = Key::EdDsa.sign(&claims("fang", &[], -30), true);
    assert!(matches!(plain().verify(&expired), Err(AuthError::Invalid(_))));
    let mut early = claims("fang", &[], 600);
    early["nbf"] = json!(idp::now() + 30);
    let early = Key::EdDsa.sign(&early, true);
    assert!(matches!(plain().verify(&early), Err(AuthError::Invalid(_))));
    let lenient = verifier(VerifierSettings {
        leeway_secs: 60,
        ..Default::default()
    });
    assert!(lenient.verify(&expired).is_ok());
    assert!(lenient.verify(&early).is_ok());
}

#[test]
fn subjects_and_roles_are_checked_as_for_hs256() {
    let v = plain();
    for bad in [
        claims("system", &[], 60),
        claims("no spaces", &[], 60),
        claims("fang", &["a b"], 60),
    ] {
        assert!(v.verify(&Key::Rs256.sign(&bad, true)).is_err(), "{bad}");
    }
}

#[test]
fn a_jwks_without_signing_keys_is_refused_and_symmetric_keys_are_never_taken() {
    let oct = r#"{"keys":[{"kty":"oct","kid":"shared","k":"c2VjcmV0"}]}"#;
    assert!(matches!(
        Keys::from_jwks(oct.as_bytes()),
        Err(KeysError::NoUsableKey(_))
    ));
    assert!(matches!(Keys::from_jwks(b"{\"keys\":"), Err(KeysError::Parse(_))));
    let mut jwks: serde_json::Value = serde_json::from_str(idp::JWKS).unwrap();
    jwks["keys"][1]["use"] = json!("enc");
    jwks["keys"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::from_str::<serde_json::Value>(oct).unwrap()["keys"][0].clone());
    let keys = Keys::from_jwks(jwks.to_string().as_bytes()).unwrap();
    assert_eq!((keys.len(), keys.ignored.len()), (2, 2), "{:?}", keys.ignored);
    let v = Verifier::new(VerifierSettings::default(), keys);
    assert!(v.verify(&Key::Es256.sign(&claims("fang", &[], 60), true)).is_err());
    let shared = encode(
        &Header {
            kid: Some("shared".into()),
            ..Header::new(Algorithm::HS256)
        },
        &claims("fang", &[], 60),
        &EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    assert!(v.verify(&shared).is_err());
}

#[test]
fn a_cached_token_still_expires_and_replaced_keys_check_again() {
    let v = plain();
    let t = Key::Rs256.sign(&claims("fang", &[], 1), true);
    assert!(v.verify(&t).is_ok());
    assert!(v.verify(&t).is_ok(), "from the cache");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert!(v.verify(&t).is_err(), "expired while cached");
    let live = Key::Rs256.sign(&claims("fang", &[], 60), true);
    assert!(v.verify(&live).is_ok());
    let only_ec =
        serde_json::json!({"keys": [serde_json::from_str::<serde_json::Value>(idp::JWKS).unwrap()["keys"][1]]});
    v.replace_keys(Keys::from_jwks(only_ec.to_string().as_bytes()).unwrap());
    assert!(
        v.verify(&live).is_err(),
        "its key is gone: no longer taken from the cache"
    );
}
