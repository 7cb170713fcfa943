//! Sign-in with OpenID Connect bearer tokens (JWTs): signature checked
//! against the issuer's JWKS (fetched from a URL or read from a file, and
//! refreshed when a token names a key not yet seen), then issuer, audience
//! and expiry. The principal and groups come from configured claims. Only
//! RS256 and ES256 are accepted; `none` and shared-secret algorithms never.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use switchboard_core::Principal;
use switchboard_core::token::Scope;

/// How often an unknown key id may trigger a JWKS refetch.
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(30);
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 60;

/// Where the issuer's signing keys are published.
#[derive(Debug, Clone)]
pub enum JwksSource {
    Url(String),
    File(PathBuf),
}

/// How OIDC tokens are checked and mapped to principals.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must include.
    pub audience: String,
    pub jwks: JwksSource,
    /// The claim naming the principal (e.g. `preferred_username`, `email`, `sub`).
    pub user_claim: String,
    /// The claim listing the principal's groups, if any.
    pub groups_claim: Option<String>,
    /// What signed-in users may do (policies narrow it further).
    pub scopes: Vec<Scope>,
}

/// A verified OIDC identity.
#[derive(Debug, Clone)]
pub struct OidcIdentity {
    pub principal: Principal,
    pub groups: Vec<String>,
}

pub(crate) struct Oidc {
    pub config: OidcConfig,
    http: reqwest::Client,
    keys: tokio::sync::Mutex<Option<JwkSet>>,
    last_fetch: Mutex<Option<Instant>>,
}

impl Oidc {
    pub fn new(config: OidcConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            config,
            http,
            keys: tokio::sync::Mutex::new(None),
            last_fetch: Mutex::new(None),
        }
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        *self
            .last_fetch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        let text = match &self.config.jwks {
            JwksSource::Url(url) => {
                let resp = self
                    .http
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| format!("cannot fetch the JWKS: {e}"))?;
                if !resp.status().is_success() {
                    return Err(format!("the JWKS endpoint answered {}", resp.status()));
                }
                resp.text()
                    .await
                    .map_err(|e| format!("cannot read the JWKS: {e}"))?
            }
            JwksSource::File(path) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("cannot read the JWKS file {}: {e}", path.display()))?,
        };
        serde_json::from_str(&text).map_err(|e| format!("the JWKS is malformed: {e}"))
    }

    /// The key for `kid`, fetching the key set when it is unknown (at most
    /// every 30 s, so that junk tokens cannot hammer the issuer).
    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, String> {
        let mut keys = self.keys.lock().await;
        for attempt in 0..2 {
            if let Some(set) = keys.as_ref() {
                let jwk = match kid {
                    Some(kid) => set.find(kid),
                    None if set.keys.len() == 1 => set.keys.first(),
                    None => None,
                };
                if let Some(jwk) = jwk {
                    return DecodingKey::from_jwk(jwk)
                        .map_err(|e| format!("unusable key in the JWKS: {e}"));
                }
            }
            let recent = self
                .last_fetch
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_some_and(|t| t.elapsed() < REFETCH_AT_MOST_EVERY);
            if attempt == 1 || (recent && keys.is_some()) {
                break;
            }
            *keys = Some(self.fetch().await?);
        }
        Err(format!(
            "no key `{}` in the issuer's JWKS",
            kid.unwrap_or("(none named)")
        ))
    }

    /// Verifies a JWT and maps it to an identity.
    pub async fn verify(&self, jwt: &str) -> Result<OidcIdentity, String> {
        let header = decode_header(jwt).map_err(|e| format!("not a JWT: {e}"))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(format!(
                "algorithm {:?} is not accepted (RS256 or ES256)",
                header.alg
            ));
        }
        let key = self.key(header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        let data = decode::<serde_json::Value>(jwt, &key, &validation)
            .map_err(|e| format!("token rejected: {e}"))?;
        let claims = data.claims;
        let user = claims
            .get(&self.config.user_claim)
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("the token has no `{}` claim", self.config.user_claim))?;
        let principal = Principal::new(user).map_err(|e| e.to_string())?;
        let groups = self
            .config
            .groups_claim
            .as_ref()
            .and_then(|c| claims.get(c))
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|g| g.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(OidcIdentity { principal, groups })
    }
}
