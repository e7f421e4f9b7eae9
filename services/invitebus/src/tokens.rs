//! Users' tokens for `serve`: the HS256 secret and, from an identity provider, a JWKS read from
//! a file or an http(s) URL at start (serve refuses to start without it) and again every
//! `--jwks-refresh` seconds; a failed refresh keeps the keys it had, logs and counts it.

use anyhow::Context;
use invitebus_auth::{Keys, Verifier, VerifierSettings};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Clone)]
pub struct TokenArgs {
    /// The HS256 secret of users' tokens (`invitebus token` signs with the same); empty refuses
    /// every HS256 user token (with INVITEBUS_JWKS: only the identity provider's).
    #[arg(long, env = "INVITEBUS_JWT_SECRET", default_value = crate::DEV_JWT_SECRET, hide_env_values = true)]
    pub jwt_secret: String,
    /// An identity provider's public keys (a JWKS file, or an http(s) URL): users' RS256, ES256
    /// and EdDSA tokens verify against them, the key chosen by the token's `kid`.
    #[arg(long, env = "INVITEBUS_JWKS")]
    pub jwks: Option<String>,
    /// Seconds between two readings of INVITEBUS_JWKS (keys rotate).
    #[arg(long, env = "INVITEBUS_JWKS_REFRESH", default_value_t = 300)]
    pub jwks_refresh: u64,
    /// When set, a user's token must carry this `iss`.
    #[arg(long, env = "INVITEBUS_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// When set, a user's token's `aud` must be or contain this.
    #[arg(long, env = "INVITEBUS_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    #[arg(long, env = "INVITEBUS_JWT_LEEWAY", default_value_t = 0)]
    pub jwt_leeway: u64,
}

impl TokenArgs {
    /// The verifier of these settings, its JWKS read once (and refreshed in the background until
    /// the process ends).
    pub async fn verifier(&self) -> anyhow::Result<Arc<Verifier>> {
        let settings = VerifierSettings {
            secret: Some(self.jwt_secret.clone()).filter(|s| !s.is_empty()),
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            leeway_secs: self.jwt_leeway,
            cache: 0,
        };
        let Some(source) = self.jwks.clone() else {
            return Ok(Arc::new(Verifier::new(settings, Keys::default())));
        };
        let raw = read(&source).await?;
        let keys = parse(&source, &raw)?;
        tracing::info!(jwks = %source, keys = keys.len(), "identity provider keys loaded");
        let verifier = Arc::new(Verifier::new(settings, keys));
        tokio::spawn(refresh(
            source,
            raw,
            verifier.clone(),
            Duration::from_secs(self.jwks_refresh.max(1)),
        ));
        Ok(verifier)
    }
}

async fn read(source: &str) -> anyhow::Result<Vec<u8>> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let response = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?
            .get(source)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .with_context(|| format!("fetching the JWKS at {source}"))?;
        Ok(response
            .bytes()
            .await
            .with_context(|| format!("reading the JWKS at {source}"))?
            .to_vec())
    } else {
        tokio::fs::read(source)
            .await
            .with_context(|| format!("reading the JWKS file {source}"))
    }
}

fn parse(source: &str, raw: &[u8]) -> anyhow::Result<Keys> {
    let keys = Keys::from_jwks(raw).with_context(|| format!("the JWKS at {source}"))?;
    for why in &keys.ignored {
        tracing::warn!(jwks = %source, key = %why, "a JWKS key left out");
    }
    ::metrics::gauge!("invitebus_jwks_keys").set(keys.len() as f64);
    Ok(keys)
}

/// Reads the JWKS again every `every`; new keys replace the old only when the document changed.
async fn refresh(source: String, mut last: Vec<u8>, verifier: Arc<Verifier>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match read(&source).await.and_then(|raw| Ok((parse(&source, &raw)?, raw))) {
            Ok((_, raw)) if raw == last => {}
            Ok((keys, raw)) => {
                tracing::info!(jwks = %source, keys = keys.len(), "identity provider keys changed");
                verifier.replace_keys(keys);
                last = raw;
            }
            Err(e) => {
                ::metrics::counter!("invitebus_jwks_refresh_failures_total").increment(1);
                tracing::warn!(jwks = %source, error = format!("{e:#}"), "the JWKS could not be refreshed; keeping the keys it had");
            }
        }
    }
}
