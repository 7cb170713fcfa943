//! Inbound webhooks at work: [`Engine::receive_hook`] takes one request to
//! `POST /api/v1/hooks/<name>` and checks it in this order — the hook
//! exists, its HMAC signature matches (constant time) with the secret its
//! reference resolves to now, its timestamp lies in the replay window, its
//! delivery id was not seen within that window (kept in the store, so a
//! restart does not forget) — then renders the action's parameters from
//! the JSON body and headers and submits the action as the hook's `run_as`
//! principal from the `webhook:<name>` door, so policies decide and
//! approvals apply as for any request.
//!
//! Every call is audited (`hook.received`: `accepted` with the execution,
//! or `rejected` with the reason); the secret and the signature never are.
//!
//! Not here: reading `hooks.toml`, the signature's arithmetic and the
//! templates (core's `hooks`), and HTTP (the route only hands the raw
//! request over and maps [`HookError`] to a status).

use std::collections::BTreeMap;

use switchboard_core::audit::AuditEvent;
use switchboard_core::hooks::Hook;
use switchboard_core::{Execution, Origin, Principal, Timestamp};

use crate::{Engine, EngineError, SubmitRequest, metrics};

/// Why a webhook call was refused.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// No hook of that name (404).
    #[error("no hook `{0}`")]
    UnknownHook(String),
    /// The signature is missing, malformed or wrong (401).
    #[error("{0}")]
    BadSignature(String),
    /// The request's time is outside the replay window (401).
    #[error("{0}")]
    Stale(String),
    /// The delivery id was seen before, or is missing (401).
    #[error("{0}")]
    Replay(String),
    /// The body or a parameter's template failed (400); `field` names it.
    #[error("{field}: {message}")]
    BadRequest { field: String, message: String },
    /// Refused or failed by the engine as any request would be (policy
    /// denial 403, invalid parameters 422, …).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl HookError {
    /// A short word for the audit log and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnknownHook(_) => "unknown_hook",
            Self::BadSignature(_) => "bad_signature",
            Self::Stale(_) => "stale",
            Self::Replay(_) => "replay",
            Self::BadRequest { .. } => "bad_request",
            Self::Engine(EngineError::Forbidden(_)) => "denied",
            Self::Engine(EngineError::InvalidParams(_)) => "invalid_params",
            Self::Engine(_) => "failed",
        }
    }
}

impl Engine {
    /// Receives one call of a hook: `headers` with lower-case names,
    /// `body` as it came. Returns the execution it queued.
    pub async fn receive_hook(
        &self,
        name: &str,
        headers: &BTreeMap<String, String>,
        body: &[u8],
    ) -> Result<Execution, HookError> {
        self.door_event("webhook");
        let catalog = self.catalog();
        let hook = catalog.hooks.get(name);
        // A name from the URL that no hook could have is shown escaped.
        let name = if switchboard_core::schedules::valid_trigger_name(name) {
            name.to_owned()
        } else {
            format!("{:?}", name.chars().take(64).collect::<String>())
        };
        let name = name.as_str();
        let delivery = hook
            .and_then(|h| h.signature.delivery_header.as_ref())
            .and_then(|h| headers.get(h))
            .map(|d| d.chars().take(256).collect::<String>());
        let result = match hook {
            None => Err(HookError::UnknownHook(name.to_owned())),
            Some(hook) => self.run_hook(hook, headers, body).await,
        };
        self.audit_hook(name, hook, delivery.as_deref(), body.len(), &result)
            .await;
        result
    }

    async fn run_hook(
        &self,
        hook: &Hook,
        headers: &BTreeMap<String, String>,
        body: &[u8],
    ) -> Result<Execution, HookError> {
        let secret = hook.secret.resolve().map_err(|e| {
            EngineError::Internal(format!(
                "hook `{}`: its secret cannot be read: {e}",
                hook.name
            ))
        })?;
        let now = Timestamp::now();
        let verified = hook
            .signature
            .verify(secret.expose().as_bytes(), headers, body, now)
            .map_err(|r| match r.kind() {
                "stale" => HookError::Stale(r.to_string()),
                "replay" => HookError::Replay(r.to_string()),
                _ => HookError::BadSignature(r.to_string()),
            })?;
        if let Some(id) = &verified.delivery {
            let fresh = self
                .shared
                .store
                .record_hook_delivery(
                    &hook.name,
                    id,
                    now,
                    now.before(hook.signature.replay_window),
                )
                .await
                .map_err(EngineError::from)?;
            if !fresh {
                return Err(HookError::Replay(format!(
                    "replayed request: delivery `{id}` was received before"
                )));
            }
        }
        let result = self.submit_hook(hook, headers, body).await;
        // A failure on this side (shutting down, storage, the audit log, the
        // directory) lets the sender's retry of this delivery through.
        if let (Some(id), Err(HookError::Engine(e))) = (&verified.delivery, &result)
            && !matches!(
                e,
                EngineError::Forbidden(_)
                    | EngineError::InvalidParams(_)
                    | EngineError::UnknownAction { .. }
                    | EngineError::UnknownPrincipal(_)
                    | EngineError::Invalid(_)
            )
            && let Err(e) = self.shared.store.forget_hook_delivery(&hook.name, id).await
        {
            tracing::warn!(hook = %hook.name, error = %e, "cannot forget a failed delivery; its retry will be refused");
        }
        result
    }

    /// Renders the parameters of a verified call and submits the action.
    async fn submit_hook(
        &self,
        hook: &Hook,
        headers: &BTreeMap<String, String>,
        body: &[u8],
    ) -> Result<Execution, HookError> {
        let parsed: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(body).map_err(|e| HookError::BadRequest {
                field: "body".to_owned(),
                message: format!("not JSON: {e}"),
            })?
        };
        let params = hook
            .params_for(&parsed, headers)
            .map_err(|f| HookError::BadRequest {
                field: f.field,
                message: f.message,
            })?;
        let principal = Principal::new(hook.run_as.clone())
            .map_err(|e| EngineError::Invalid(format!("run_as: {e}")))?;
        let requester = self.identity_of(&principal, &[]).await?;
        let execution = self
            .submit(SubmitRequest {
                action: hook.action.clone(),
                params: params
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect(),
                requester,
                origin: origin_of(&hook.name),
            })
            .await?;
        Ok(execution)
    }

    /// `hook.received`: who (the hook's principal once the signature
    /// holds, else `anonymous`), the outcome and why.
    async fn audit_hook(
        &self,
        name: &str,
        hook: Option<&Hook>,
        delivery: Option<&str>,
        bytes: usize,
        result: &Result<Execution, HookError>,
    ) {
        let signed = matches!(
            result,
            Ok(_) | Err(HookError::BadRequest { .. } | HookError::Engine(_))
        );
        let actor = match hook {
            Some(h) if signed => {
                Principal::new(h.run_as.clone()).unwrap_or_else(|_| Principal::anonymous())
            }
            _ => Principal::anonymous(),
        };
        let (outcome, reason, execution) = match result {
            Ok(e) => ("accepted", None, Some(e.id)),
            Err(e) => ("rejected", Some(e.to_string()), None),
        };
        let kind = result.as_ref().err().map_or("accepted", HookError::kind);
        if let Some(why) = &reason {
            tracing::warn!(hook = %name, kind, reason = %why, "webhook call rejected");
        }
        let label = metrics::ResultLabel {
            result: kind.to_owned(),
        };
        self.shared.metrics.hook_calls.get_or_create(&label).inc();
        let detail = serde_json::json!({
            "hook": name,
            "action": hook.map(|h| h.action.as_str()),
            "delivery": delivery,
            "bytes": bytes,
            "execution": execution,
            "kind": reason.is_some().then_some(kind),
            "reason": reason,
        });
        self.record(AuditEvent::now(
            &actor,
            &origin_of(name),
            "hook.received",
            format!("hook:{name}"),
            outcome,
            detail,
        ))
        .await;
    }
}

/// `webhook:<name>`, or the bare door for a name that cannot be one.
fn origin_of(name: &str) -> Origin {
    Origin::new(format!("webhook:{name}"))
        .or_else(|_| Origin::new("webhook"))
        .unwrap_or_else(|_| Origin::system())
}
