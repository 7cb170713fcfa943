//! A ChatOps-RPC invocation at work: an authenticated Hubot says that a
//! chat user in a room asked for an action with these parameters. The user
//! is who their chat identity is linked to (or `anonymous`, as in every
//! chat door), the origin is `chat:chatops-rpc:<room>`, and the action goes
//! through [`Engine::submit`] like every door's request, so policies,
//! approvals and the audit log apply. The protocol is synchronous: the call
//! waits for the run's end, up to a limit, and otherwise says it goes on.
//!
//! Also here: the built-in commands said through Hubot to a run already
//! asked for (`approve`, `reject`, `cancel`), answered as in chat.
//!
//! Also here: the nonces of signed requests, remembered in the store (as
//! webhook delivery ids are), so a replay is refused by every node, also
//! after a restart.
//!
//! Not here: the signature, the listing and the wire format (the
//! connectors' `chatops_rpc`), HTTP (the `_chatops` routes).

use std::time::Duration;

use futures::StreamExt;
use switchboard_core::chat::{ChatIdentity, Markup, Reply};
use switchboard_core::params::RawParams;
use switchboard_core::{Execution, ExecutionStatus, Origin, Principal, Timestamp};

use super::follow::Tail;
use crate::{Engine, EngineError, SubmitRequest, WatchEvent};

/// Under which name the store keeps the nonces (a name no hook can have).
const NONCES: &str = "chatops-rpc:nonces";
/// This door, as the report names it.
const DOOR: &str = "chatops-rpc";

/// One invocation, verified.
#[derive(Debug, Clone)]
pub struct RpcCall {
    /// The chat user, as the configured platform and workspace name them.
    pub sender: ChatIdentity,
    /// The room Hubot names (`#ops`).
    pub room: String,
    pub action: String,
    pub params: RawParams,
    /// How long to wait for the run's end.
    pub wait: Duration,
}

/// What became of an invocation that was accepted.
#[derive(Debug, Clone)]
pub struct RpcRun {
    /// Who it ran as.
    pub principal: Principal,
    /// Whether that came from a link (rather than being `anonymous`).
    pub linked: bool,
    /// Its state when the call answers: finished, or still going
    /// (running, queued, awaiting approval).
    pub execution: Execution,
    /// The last lines of output seen.
    pub tail: String,
    /// Whether lines fell off the front of `tail`.
    pub partial: bool,
    /// The execution's output on the web, when a public URL is configured.
    pub link: Option<String>,
}

impl Engine {
    /// Remembers a signed request's nonce; `false` when it was seen within
    /// `window` (a replay).
    pub async fn chatops_nonce_fresh(
        &self,
        nonce: &str,
        now: Timestamp,
        window: Duration,
    ) -> Result<bool, EngineError> {
        Ok(self
            .shared
            .store
            .record_hook_delivery(NONCES, nonce, now, now.before(window))
            .await?)
    }

    /// `verb` (`approve`, `reject` or `cancel`) said with `args` (the run's
    /// number, and a reason) by the chat user in `room` through Hubot:
    /// what chat would answer, or the refusal.
    pub async fn chatops_steer(
        &self,
        sender: &ChatIdentity,
        room: &str,
        verb: &str,
        args: &[&str],
    ) -> Result<String, EngineError> {
        self.door_event(DOOR);
        let origin = Origin::new(format!("chat:chatops-rpc:{room}"))
            .map_err(|e| EngineError::Invalid(format!("`room_id`: {e}")))?;
        let speaker = self.speaker_of(sender, origin).await?;
        let reply = match verb {
            "approve" | "reject" => self.chat_answer(&speaker, verb == "approve", args).await,
            "cancel" => self.chat_cancel(&speaker, args).await,
            other => return Err(EngineError::Invalid(format!("no command `{other}`"))),
        };
        match reply {
            Reply::Refused { reason } => Err(EngineError::Forbidden(reason)),
            reply => Ok(reply.text(Markup::Markdown)),
        }
    }

    /// Runs one invocation as the chat user's principal, waiting up to
    /// `call.wait` for the run's end.
    pub async fn chatops_call(&self, call: RpcCall) -> Result<RpcRun, EngineError> {
        self.door_event(DOOR);
        let origin = Origin::new(format!("chat:chatops-rpc:{}", call.room))
            .map_err(|e| EngineError::Invalid(format!("`room_id`: {e}")))?;
        let speaker = self.speaker_of(&call.sender, origin).await?;
        let request = SubmitRequest {
            action: call.action.clone(),
            params: call.params,
            requester: speaker.identity.clone(),
            origin: speaker.origin.clone(),
        };
        let submitted = self.submit(request).await;
        if !speaker.linked {
            let refused = submitted.as_ref().err().map(ToString::to_string);
            self.audit_unlinked_attempt(
                &call.sender,
                None,
                &speaker,
                &call.action,
                refused.as_deref(),
            )
            .await;
        }
        let execution = match submitted {
            Ok(e) => e,
            Err(EngineError::Forbidden(reason)) if !speaker.linked => {
                return Err(EngineError::Forbidden(format!(
                    "{reason}. {} is not linked to a Switchboard user, so it acts as `anonymous`",
                    call.sender
                )));
            }
            Err(e) => return Err(e),
        };
        let mut tail = Tail::new(self.chat_settings().tail_lines);
        let end = if execution.status == ExecutionStatus::AwaitingApproval {
            None
        } else {
            let mut events = self.watch(execution.id);
            let deadline = tokio::time::sleep(call.wait);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    event = events.next() => match event {
                        Some(WatchEvent::Output(chunk)) => tail.push(&chunk.text),
                        Some(WatchEvent::Finished(e)) => break Some(*e),
                        None => break None,
                    },
                    () = &mut deadline => break None,
                }
            }
        };
        // Not ended yet: as it stands now (running, rather than queued).
        let execution = match end {
            Some(end) => end,
            None => self.get(execution.id).await.unwrap_or(execution),
        };
        Ok(RpcRun {
            principal: speaker.identity.principal,
            linked: speaker.linked,
            link: self.link_to(execution.id),
            execution,
            tail: tail.text(),
            partial: tail.dropped,
        })
    }
}
