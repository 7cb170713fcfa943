//! Sign-in with OpenID Connect bearer tokens (JWTs): signature checked
//! against the issuer's JWKS (fetched from a URL or read from a file, and
//! refreshed when a token names a key not yet seen), then issuer, audience
//! and expiry. The principal and groups come from configured claims. Only
//! RS256 and ES256 are accepted; `none` and shared-secret algorithms never.
//!
//! Also the provider's side of the web UI's sign-in (authorization code
//! flow with PKCE, when `[oidc]` names the provider's endpoints): the
//! address to send a browser to, and the exchange of the code it comes back
//! with for an ID token — verified like any bearer token, and its `nonce`
//! checked. The browser's side (state, verifier, cookies) is the web UI's.

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
    /// The web UI's sign-in through the provider, when configured.
    pub login: Option<OidcLogin>,
}

/// The web UI's sign-in through the provider: the authorization code flow
/// with PKCE. The ID tokens it brings are checked like bearer tokens, so
/// they must be issued for the configured `audience` (the client id).
#[derive(Debug, Clone)]
pub struct OidcLogin {
    pub client_id: String,
    /// For confidential clients; public clients rely on PKCE alone.
    pub client_secret: Option<switchboard_core::secret::SecretRef>,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
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

impl crate::Engine {
    /// The OIDC provider whose bearer tokens are accepted, if one is.
    pub fn oidc_issuer(&self) -> Option<&str> {
        self.shared.oidc.as_ref().map(|o| o.config.issuer.as_str())
    }

    /// Whether the web UI may sign people in through the OIDC provider.
    pub fn oidc_login_enabled(&self) -> bool {
        self.shared
            .oidc
            .as_ref()
            .is_some_and(|o| o.config.login.is_some())
    }

    /// Where to send a browser to sign in: the provider's authorization
    /// endpoint with the client, the way back, `state`, the PKCE
    /// `challenge` (S256) and `nonce`.
    pub fn oidc_authorization_url(
        &self,
        redirect_uri: &str,
        state: &str,
        challenge: &str,
        nonce: &str,
    ) -> Option<String> {
        let login = self.shared.oidc.as_ref()?.config.login.as_ref()?;
        let url = reqwest::Url::parse_with_params(
            &login.authorization_endpoint,
            [
                ("response_type", "code"),
                ("client_id", login.client_id.as_str()),
                ("redirect_uri", redirect_uri),
                ("scope", "openid profile email"),
                ("state", state),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
                ("nonce", nonce),
            ],
        )
        .ok()?;
        Some(url.to_string())
    }

    /// Exchanges the code a browser came back with for an ID token, checks
    /// it (signature, issuer, audience, expiry) and its `nonce`; the token,
    /// which then signs the session in like a bearer token.
    pub async fn oidc_sign_in(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<String, crate::EngineError> {
        let refused = |why: String| crate::EngineError::Unauthenticated(why);
        let oidc = self
            .shared
            .oidc
            .as_ref()
            .ok_or_else(|| refused("OIDC is not configured".to_owned()))?;
        let login = oidc
            .config
            .login
            .as_ref()
            .ok_or_else(|| refused("OIDC sign-in is not configured".to_owned()))?;
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect_uri.to_owned()),
            ("client_id", login.client_id.clone()),
            ("code_verifier", verifier.to_owned()),
        ];
        if let Some(secret) = &login.client_secret {
            let secret = secret
                .resolve()
                .map_err(|e| crate::EngineError::Internal(format!("[oidc] client_secret: {e}")))?;
            form.push(("client_secret", secret.expose().clone()));
        }
        let resp = oidc
            .http
            .post(&login.token_endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                refused(format!(
                    "the provider's token endpoint cannot be reached: {e}"
                ))
            })?;
        let status = resp.status();
        let body: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| refused(format!("the provider's token answer is not JSON: {e}")))?;
        if !status.is_success() {
            return Err(refused(format!(
                "the provider refused the code ({status}): {}",
                body["error_description"]
                    .as_str()
                    .or(body["error"].as_str())
                    .unwrap_or("no reason given")
            )));
        }
        let id_token = body["id_token"]
            .as_str()
            .ok_or_else(|| refused("the provider's answer has no `id_token`".to_owned()))?
            .to_owned();
        oidc.verify(&id_token).await.map_err(refused)?;
        // Verified above; the nonce ties the token to this browser's request.
        let said = id_token
            .split('.')
            .nth(1)
            .and_then(|p| {
                use base64::Engine as _;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|c| c["nonce"].as_str().map(str::to_owned));
        if said.as_deref() != Some(nonce) {
            return Err(refused(
                "the ID token's nonce is not the one this sign-in asked for".to_owned(),
            ));
        }
        Ok(id_token)
    }
}
