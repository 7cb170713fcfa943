//! Authentication by API token: issuing tokens (shown once, stored as a
//! hash), revoking them, and turning a presented token into a principal with
//! scopes. The bootstrap admin token from the server's environment is checked
//! the same way, against its hash. Every failure is audited.

use std::time::Duration;

use switchboard_core::audit::AuditEvent;
use switchboard_core::token::{Scope, TOKEN_PREFIX, TokenRecord, hashes_equal, token_hash};
use switchboard_core::{Origin, Principal, Timestamp};
use switchboard_store::NewToken;

use crate::authz::Identity;
use crate::{Engine, EngineError};

/// How stale `last_used_at` may get before a use is written down.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Who a valid credential speaks for, and what the credential allows.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The principal with its groups (declared, and asserted by OIDC).
    pub identity: Identity,
    pub scopes: Vec<Scope>,
}

impl Authenticated {
    pub fn principal(&self) -> &Principal {
        &self.identity.principal
    }

    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// A new random token: the prefix and 256 bits in hex.
pub fn generate() -> Result<String, EngineError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| EngineError::Internal(format!("no randomness for a token: {e}")))?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

impl Engine {
    /// Checks a presented token. Failures are audited with the door they
    /// came through and never say more than "invalid" to the caller.
    pub async fn authenticate(
        &self,
        presented: &str,
        origin: &Origin,
    ) -> Result<Authenticated, EngineError> {
        let result = self.check_credential(presented, origin).await;
        if result.is_ok() {
            // The CLI is a client of the API: one door.
            self.door_event(match origin.door() {
                "cli" => "api",
                door => door,
            });
        }
        if let Err(EngineError::DirectoryUnavailable(why)) = &result {
            let subject = format!("credential:{}", &token_hash(presented)[..12]);
            let detail =
                serde_json::json!({"reason": "the user directory cannot be reached", "error": why});
            self.audit_failed_sign_in(origin, subject, detail).await;
        }
        result
    }

    async fn check_credential(
        &self,
        presented: &str,
        origin: &Origin,
    ) -> Result<Authenticated, EngineError> {
        let hash = token_hash(presented);
        if let Some(admin) = &self.shared.config.admin_token_hash
            && hashes_equal(&hash, admin)
        {
            return Ok(Authenticated {
                identity: self.identity_of(&Principal::admin(), &[]).await?,
                scopes: Scope::ALL.to_vec(),
            });
        }
        let now = Timestamp::now();
        if let Some(oidc) = &self.shared.oidc
            && !presented.starts_with(TOKEN_PREFIX)
            && presented.matches('.').count() == 2
        {
            return match oidc.verify(presented).await {
                Ok(id) => Ok(Authenticated {
                    identity: self.identity_of(&id.principal, &id.groups).await?,
                    scopes: oidc.config.scopes.clone(),
                }),
                Err(why) => {
                    self.audit_failed_sign_in(
                        origin,
                        format!("jwt:{}", &hash[..12]),
                        serde_json::json!({"reason": why}),
                    )
                    .await;
                    Err(EngineError::Unauthenticated(
                        "invalid or expired OIDC token".to_owned(),
                    ))
                }
            };
        }
        // Looked up by hash: timing can tell about the hash of what was
        // presented, never about a stored token.
        let found = self.shared.store.token_by_hash(&hash).await?;
        let why = match &found {
            None => "unknown token",
            Some(t) => match t.unusable(now) {
                Some(why) => why,
                None => {
                    let stale = t
                        .last_used_at
                        .is_none_or(|last| last.until(now) >= TOUCH_EVERY);
                    if stale && let Err(e) = self.shared.store.touch_token(t.id, now).await {
                        tracing::warn!(error = %e, "could not record a token's use");
                    }
                    return Ok(Authenticated {
                        identity: self.identity_of(&t.principal, &[]).await?,
                        scopes: t.scopes.clone(),
                    });
                }
            },
        };
        let detail = serde_json::json!({"reason": why, "principal": found.map(|t| t.principal)});
        self.audit_failed_sign_in(origin, format!("token:{}", &hash[..12]), detail)
            .await;
        Err(EngineError::Unauthenticated(
            "invalid, expired or revoked token".to_owned(),
        ))
    }

    /// Records a sign-in that proved nothing; never the credential itself.
    async fn audit_failed_sign_in(
        &self,
        origin: &Origin,
        subject: String,
        detail: serde_json::Value,
    ) {
        self.record(AuditEvent {
            ts: Timestamp::now(),
            actor: Principal::anonymous(),
            origin: origin.clone(),
            kind: "auth.failed".to_owned(),
            subject,
            outcome: "denied".to_owned(),
            detail,
        })
        .await;
    }

    /// Refuses (and audits) a caller whose token lacks `scope` for `what`.
    pub async fn require_scope(
        &self,
        who: &Authenticated,
        origin: &Origin,
        scope: Scope,
        what: &str,
    ) -> Result<(), EngineError> {
        if who.allows(scope) {
            return Ok(());
        }
        self.record(AuditEvent::now(
            who.principal(),
            origin,
            "auth.denied",
            what.to_owned(),
            "denied",
            serde_json::json!({"needs_scope": scope, "has_scopes": who.scopes}),
        ))
        .await;
        Err(EngineError::Forbidden(format!(
            "this token lacks the `{scope}` scope needed to {what}"
        )))
    }

    /// Issues a token for `principal`; the returned text is the only copy.
    pub async fn create_token(
        &self,
        by: &Principal,
        origin: &Origin,
        principal: Principal,
        scopes: Vec<Scope>,
        description: String,
        valid_for: Option<Duration>,
    ) -> Result<(String, TokenRecord), EngineError> {
        if !self.is_known(&principal).await? {
            return Err(EngineError::UnknownPrincipal(principal));
        }
        let token = generate()?;
        let now = Timestamp::now();
        let expires_at = valid_for.map(|d| now.after(d));
        let new = NewToken {
            hash: token_hash(&token),
            principal,
            scopes,
            description,
            created_by: by.clone(),
            created_at: now,
            expires_at,
        };
        let record = self.shared.store.create_token(&new).await?;
        self.record(AuditEvent {
            ts: now,
            actor: by.clone(),
            origin: origin.clone(),
            kind: "token.created".to_owned(),
            subject: format!("token:{}", record.id),
            outcome: "ok".to_owned(),
            detail: serde_json::json!({"principal": record.principal, "scopes": record.scopes, "expires_at": record.expires_at, "description": record.description}),
        })
        .await;
        Ok((token, record))
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, EngineError> {
        Ok(self.shared.store.list_tokens().await?)
    }

    pub async fn revoke_token(
        &self,
        id: i64,
        by: &Principal,
        origin: &Origin,
    ) -> Result<(), EngineError> {
        let revoked = self.shared.store.revoke_token(id, Timestamp::now()).await?;
        self.record(AuditEvent::now(
            by,
            origin,
            "token.revoked",
            format!("token:{id}"),
            if revoked { "ok" } else { "not_found" },
            serde_json::json!({}),
        ))
        .await;
        if revoked {
            Ok(())
        } else {
            Err(EngineError::TokenNotFound(id))
        }
    }
}
