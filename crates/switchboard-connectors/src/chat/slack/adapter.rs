//! [`SlackAdapter`], the [`ChatAdapter`] for Slack: HTTP requests from Slack
//! are verified here (signature v0 over the raw body, within a 300 s replay
//! window) before anything reads them, then translated (`inbound.rs`);
//! replies go out through the Web API (`web_api.rs`); Socket Mode runs from
//! [`ChatAdapter::connect`] (`socket_mode.rs`); rooms known only by id are
//! named in [`ChatAdapter::complete`] (`rooms.rs`). It also keeps who the
//! bot is, configured or learned from `auth.test`.
//!
//! Not here: serving HTTP, and anything about what messages mean.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;
use switchboard_core::Timestamp;
use switchboard_core::chat::{ChatHandler, ChatOutlet, Inbound, OutletError};

use super::config::SlackConfig;
use super::inbound::{self, Context, Events, Payload};
use super::rooms::Rooms;
use super::web_api::{BotIdentity, WebApi};
use super::{PLATFORM, socket_mode};
use crate::chat::{ChatAdapter, HookRequest, HookResponse};

/// The largest request body read; Slack's are a few kilobytes.
pub(super) const MAX_BODY: usize = 1024 * 1024;

/// How far a request's timestamp may be from now, either way, in seconds.
pub(super) const REPLAY_WINDOW_SECS: u64 = 300;

/// Slack, over HTTP and Socket Mode.
pub struct SlackAdapter {
    config: Arc<SlackConfig>,
    api: Arc<WebApi>,
    rooms: Arc<Rooms>,
    learned: OnceLock<BotIdentity>,
}

impl SlackAdapter {
    /// An adapter with this configuration; nothing is contacted until a
    /// reply is sent, [`Self::learn_identity`] or
    /// [`connect`](ChatAdapter::connect) is called.
    pub fn new(config: SlackConfig) -> Self {
        let api = Arc::new(WebApi::new(&config));
        Self {
            rooms: Arc::new(Rooms::new(api.clone(), config.room_name_ttl)),
            api,
            config: Arc::new(config),
            learned: OnceLock::new(),
        }
    }

    /// Asks Slack (`auth.test`) who the bot is, unless both its user id and
    /// the workspace are configured. Call once at start: without the bot's
    /// user id its mention cannot be told from others in plain messages.
    pub async fn learn_identity(&self) -> Result<(), OutletError> {
        if self.config.bot_user_id.is_some() && self.config.team_id.is_some() {
            return Ok(());
        }
        let who = self.api.auth_test().await?;
        tracing::info!(bot_user_id = %who.user_id, team_id = %who.team_id, "Slack identity learned");
        // A second call learns the same; the first answer stays.
        let _ = self.learned.set(who);
        Ok(())
    }

    /// The bot's user id, configured or learned.
    pub fn bot_user_id(&self) -> Option<&str> {
        self.config
            .bot_user_id
            .as_deref()
            .or_else(|| self.learned.get().map(|l| l.user_id.as_str()))
    }

    /// The workspace id, configured or learned.
    pub fn team_id(&self) -> Option<&str> {
        self.config
            .team_id
            .as_deref()
            .or_else(|| self.learned.get().map(|l| l.team_id.as_str()))
    }

    pub(super) fn context(&self) -> Context<'_> {
        Context {
            bot_user_id: self.bot_user_id(),
            team_id: self.team_id(),
        }
    }

    pub(super) fn config(&self) -> &SlackConfig {
        &self.config
    }

    pub(super) fn api(&self) -> Arc<WebApi> {
        self.api.clone()
    }

    pub(super) fn rooms(&self) -> Arc<Rooms> {
        self.rooms.clone()
    }
}

/// Checks Slack's signature (v0) of a request: `X-Slack-Signature` must be
/// `v0=` and the hex HMAC-SHA256, keyed with the signing secret, of
/// `v0:<X-Slack-Request-Timestamp>:<body>`; the timestamp must be within
/// the replay window of `now`. The error says which check failed.
pub(super) fn verify_signature(
    secret: &[u8],
    req: &HookRequest,
    now: Timestamp,
) -> Result<(), String> {
    let stamp = req
        .header("x-slack-request-timestamp")
        .ok_or("missing `X-Slack-Request-Timestamp` header")?;
    let sent: i64 = stamp
        .parse()
        .map_err(|_| "malformed `X-Slack-Request-Timestamp` header: expected Unix seconds")?;
    let signature = req
        .header("x-slack-signature")
        .ok_or("missing `X-Slack-Signature` header")?;
    let signature = signature
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .filter(|bytes| bytes.len() == 32)
        .ok_or("malformed `X-Slack-Signature` header: expected `v0=` and 64 hex digits")?;
    let skew = (now.micros() / 1_000_000).saturating_sub(sent);
    if skew.unsigned_abs() > REPLAY_WINDOW_SECS {
        let side = if skew > 0 { "old" } else { "in the future" };
        return Err(format!(
            "request timestamp is {} s {side}, outside the {REPLAY_WINDOW_SECS} s window: refused as a possible replay",
            skew.unsigned_abs()
        ));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|_| "the signing secret cannot key an HMAC".to_owned())?;
    mac.update(b"v0:");
    mac.update(stamp.as_bytes());
    mac.update(b":");
    mac.update(&req.body);
    mac.verify_slice(&signature).map_err(|_| {
        "`X-Slack-Signature` does not match: the request was not signed with this app's signing secret, or was altered"
            .to_owned()
    })
}

#[async_trait]
impl ChatAdapter for SlackAdapter {
    fn door(&self) -> crate::chat::DoorDescription {
        let c = &self.config;
        let team = c
            .team_id
            .clone()
            .or_else(|| self.learned.get().map(|b| b.team_id.clone()));
        crate::chat::DoorDescription {
            reaches: format!(
                "Slack workspace {}{}",
                team.as_deref().unwrap_or("(not learnt yet)"),
                if c.app_token.is_some() { ", Socket Mode" } else { "" }
            ),
            authentication: if c.signing_secret.is_some() {
                "requests signed with the app's signing secret (HMAC-SHA256, 5-minute window); senders are Slack user ids"
            } else {
                "Socket Mode only (the app token); senders are Slack user ids"
            }
            .to_owned(),
        }
    }

    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn outlet(&self) -> Arc<dyn ChatOutlet> {
        self.api.clone()
    }

    /// `events` (Events API, JSON), `commands` (slash commands, a form) and
    /// `interactive` (button presses, a form with a JSON `payload`). Slash
    /// commands and button presses are answered with an empty 200: the
    /// replies follow as messages in the room.
    fn webhook(&self, endpoint: &str, req: &HookRequest, now: Timestamp) -> HookResponse {
        if !matches!(endpoint, "events" | "commands" | "interactive") {
            return HookResponse::rejected(
                404,
                format!(
                    "no Slack endpoint `{endpoint}`: Slack posts to `events`, `commands` and `interactive`"
                ),
                None,
            );
        }
        let Some(secret) = &self.config.signing_secret else {
            return HookResponse::rejected(
                404,
                "Slack over HTTP is off: `chat.slack.signing_secret` is not set",
                None,
            );
        };
        if req.body.len() > MAX_BODY {
            return HookResponse::rejected(
                413,
                format!("the body is larger than {MAX_BODY} bytes"),
                None,
            );
        }
        if let Err(reason) = verify_signature(secret.expose().as_bytes(), req, now) {
            return HookResponse::rejected(401, reason, None);
        }
        if let Some(retry) = req.header("x-slack-retry-num") {
            tracing::info!(
                retry,
                reason = req.header("x-slack-retry-reason"),
                "Slack redelivered a request"
            );
        }
        let ctx = self.context();
        let payload = match endpoint {
            "events" => Payload::Events,
            "commands" => Payload::Command,
            _ => Payload::Interactive,
        };
        let answer = match payload {
            Payload::Events => inbound::events(&req.body, ctx).map(|events| match events {
                Events::Challenge(challenge) => {
                    HookResponse::ok_json(json!({ "challenge": challenge }), Vec::new())
                }
                Events::Messages(messages) => HookResponse::ok_empty(messages),
            }),
            Payload::Command => inbound::command_form(&req.body)
                .and_then(|cmd| inbound::command(cmd, ctx))
                .map(|m| HookResponse::ok_empty(vec![m])),
            Payload::Interactive => inbound::interactive_form(&req.body)
                .and_then(|payload| inbound::interactive(payload, ctx))
                .map(HookResponse::ok_empty),
        };
        // Signed, yet refused: the sender it names is kept for the audit
        // record (never trusted for more).
        answer.unwrap_or_else(|reason| {
            let claimed = inbound::claimed_sender(payload, &req.body, ctx);
            HookResponse::rejected(400, reason, claimed)
        })
    }

    /// Names a room known only by its id (events carry no channel names),
    /// asking `conversations.info` once per channel and period; a direct
    /// conversation is marked direct. What Slack will not tell stays
    /// unknown: policies then see the channel id.
    async fn complete(&self, inbound: Inbound) -> Inbound {
        self.rooms.complete(inbound).await
    }

    /// Socket Mode, when `app_token` is set; otherwise returns at once.
    /// Its messages are completed (room names) before `handler` sees them.
    async fn connect(
        &self,
        handler: Arc<dyn ChatHandler>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        if self.config.app_token.is_none() {
            return;
        }
        socket_mode::run(self, handler, stop).await;
    }
}
