//! Chat adapters, one folder each with the same shape: `config.rs` (the
//! `[chat.<platform>]` section), `adapter.rs` (webhooks in, replies out,
//! long-lived connections) and `tests.rs`.
//!
//! An adapter does three things: it turns a platform's inbound requests
//! ([`ChatAdapter::webhook`]) or pushed events ([`ChatAdapter::connect`])
//! into verified [`Inbound`] messages, it delivers [`Reply`]s through its
//! [`ChatOutlet`], and it renders replies in the platform's markup. It
//! never decides what a message means.
//!
//! [`Inbound`]: switchboard_core::chat::Inbound
//! [`Reply`]: switchboard_core::chat::Reply

pub mod chatops_rpc;
pub mod console;
pub mod discord;
pub mod irc;
pub mod matrix;
pub mod mattermost;
pub mod slack;
pub mod teams;
#[cfg(test)]
mod testing;
pub mod xmpp;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use switchboard_core::Timestamp;
use switchboard_core::chat::{ChatHandler, ChatIdentity, ChatOutlet, Inbound};

/// An inbound HTTP request to `/chat/<platform>/<endpoint>`, as the http
/// crate hands it over: the raw body (signatures are computed over the
/// exact bytes) and the headers, names lower-cased.
#[derive(Debug, Clone, Default)]
pub struct HookRequest {
    pub headers: BTreeMap<String, String>,
    pub body: bytes::Bytes,
}

impl HookRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// What to answer an inbound request with, and what it carried.
#[derive(Debug, Clone, PartialEq)]
pub struct HookResponse {
    /// HTTP status to answer with.
    pub status: u16,
    /// Answer body: JSON, or text when `content_type` says so.
    pub body: String,
    pub content_type: &'static str,
    /// Verified messages to hand to the conversation engine (after answering).
    pub inbound: Vec<Inbound>,
    /// Why the request was refused, to be logged (and audited when the
    /// sender is known).
    pub rejection: Option<Rejection>,
}

/// A refused inbound request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: String,
    /// The sender the request claimed, when the payload named one. Never
    /// trusted for anything but the audit record of the refusal.
    pub claimed_sender: Option<ChatIdentity>,
}

impl HookResponse {
    /// 200 with a JSON body and these messages.
    pub fn ok_json(body: serde_json::Value, inbound: Vec<Inbound>) -> Self {
        Self {
            status: 200,
            body: body.to_string(),
            content_type: "application/json",
            inbound,
            rejection: None,
        }
    }

    /// 200 with an empty body (the platform only needs the acknowledgement).
    pub fn ok_empty(inbound: Vec<Inbound>) -> Self {
        Self {
            status: 200,
            body: String::new(),
            content_type: "text/plain; charset=utf-8",
            inbound,
            rejection: None,
        }
    }

    /// A refusal with its status and reason (the reason is also the body).
    pub fn rejected(status: u16, reason: impl Into<String>, claimed: Option<ChatIdentity>) -> Self {
        let reason = reason.into();
        Self {
            status,
            // The shape of every client error Switchboard answers.
            body: serde_json::json!({ "error": { "code": "rejected", "message": reason } })
                .to_string(),
            content_type: "application/json",
            inbound: Vec::new(),
            rejection: Some(Rejection {
                reason,
                claimed_sender: claimed,
            }),
        }
    }
}

/// The text after `name:` or `name,` at the start of `text` (names compare
/// without case): how people address a bot by name where a platform has no
/// mentions of its own (IRC), or writes them so (Matrix clients).
pub(crate) fn addressed_to<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    let head = text.get(..name.len())?;
    if name.is_empty() || !head.eq_ignore_ascii_case(name) {
        return None;
    }
    let rest = &text[name.len()..];
    rest.strip_prefix(':')
        .or_else(|| rest.strip_prefix(','))
        .map(str::trim_start)
}

/// The HTTP client of an outlet: calls time out after `timeout`.
pub(crate) fn http_client(timeout: std::time::Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// What a connection says when it was told to stop: this node no longer
/// leads, or it is shutting down.
pub(crate) const STOPPED: &str = "stopped on this node";

/// How a chat door is set up, for the auditor's report: what it reaches
/// (workspace, server, rooms) and how it knows who is speaking. Never a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorDescription {
    pub reaches: String,
    pub authentication: String,
}

/// One configured chat platform.
#[async_trait]
pub trait ChatAdapter: Send + Sync {
    /// This door as the auditor's report describes it.
    fn door(&self) -> DoorDescription;

    /// `slack`, `mattermost`, … — the `<platform>` of its routes and of
    /// `chat:<platform>:<room>` origins.
    fn platform(&self) -> &'static str;

    /// Delivers replies on this platform.
    fn outlet(&self) -> Arc<dyn ChatOutlet>;

    /// Handles a request to `/chat/<platform>/<endpoint>`: verifies it,
    /// answers it (quickly: platforms retry slow answers) and returns the
    /// messages it carried. Unknown endpoints answer 404; platforms whose
    /// messages come only over their connection (IRC, Matrix) keep this
    /// default, which has none.
    fn webhook(&self, endpoint: &str, _req: &HookRequest, _now: Timestamp) -> HookResponse {
        HookResponse::rejected(
            404,
            format!(
                "{} has no endpoint `{endpoint}`: its messages come over its own connection",
                self.platform()
            ),
            None,
        )
    }

    /// Completes what a request could not say by itself, such as a room's
    /// name (Slack events carry only the channel id), asking the platform
    /// (cached) where needed. Called before the conversation engine sees a
    /// message from [`ChatAdapter::webhook`]; adapters call it themselves on
    /// messages from [`ChatAdapter::connect`]. Never fails: what cannot be
    /// learnt stays unknown.
    async fn complete(&self, inbound: Inbound) -> Inbound {
        inbound
    }

    /// Keeps the platform's long-lived connection (Slack Socket Mode, a
    /// Mattermost websocket) open, reconnecting when it drops, handing each
    /// message to `handler`, until `stop` turns true. Adapters without one
    /// return at once.
    async fn connect(
        &self,
        _handler: Arc<dyn ChatHandler>,
        _stop: tokio::sync::watch::Receiver<bool>,
    ) {
    }
}
