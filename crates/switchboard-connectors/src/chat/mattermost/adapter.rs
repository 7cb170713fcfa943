//! [`MattermostAdapter`]: the Mattermost [`ChatAdapter`], tying together
//! the inbound requests (`hooks.rs`), the websocket (`websocket.rs`) and
//! the REST outlet (`rest.rs`) around one compiled configuration.
//!
//! Not here: any wire format; this file only routes.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_core::Timestamp;
use switchboard_core::chat::{ChatHandler, ChatOutlet, OutletError};
use tokio::sync::watch;

use super::config::MattermostConfig;
use super::rest::{BotIdentity, MattermostOutlet};
use super::{PLATFORM, hooks, websocket};
use crate::chat::{ChatAdapter, HookRequest, HookResponse};

/// Mattermost, as one configured server.
pub struct MattermostAdapter {
    config: Arc<MattermostConfig>,
    outlet: Arc<MattermostOutlet>,
}

impl MattermostAdapter {
    pub fn new(config: MattermostConfig) -> Self {
        let config = Arc::new(config);
        Self {
            outlet: Arc::new(MattermostOutlet::new(config.clone())),
            config,
        }
    }

    /// Asks the server who the bot is (`GET /api/v4/users/me`): its user
    /// id (unless configured) and username. Optional: the websocket and
    /// direct messages ask on their own when they need to; calling it at
    /// start checks the token early.
    pub async fn learn_identity(&self) -> Result<BotIdentity, OutletError> {
        self.outlet.learn_identity().await
    }

    /// The outlet itself, with its Mattermost-only calls.
    pub fn mattermost_outlet(&self) -> Arc<MattermostOutlet> {
        self.outlet.clone()
    }
}

#[async_trait]
impl ChatAdapter for MattermostAdapter {
    fn door(&self) -> crate::chat::DoorDescription {
        let c = &self.config;
        crate::chat::DoorDescription {
            reaches: format!(
                "Mattermost {} team {}{}",
                c.url,
                c.team,
                if c.websocket { ", websocket" } else { "" }
            ),
            authentication: format!(
                "{} slash-command and {} outgoing-webhook tokens, buttons signed (HMAC); senders are Mattermost user ids",
                c.command_tokens.len(),
                c.webhook_tokens.len()
            ),
        }
    }

    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn outlet(&self) -> Arc<dyn ChatOutlet> {
        self.outlet.clone()
    }

    fn webhook(&self, endpoint: &str, req: &HookRequest, now: Timestamp) -> HookResponse {
        let me = self.outlet.known_identity();
        hooks::handle(&self.config, me.user_id.as_deref(), endpoint, req, now)
    }

    async fn connect(&self, handler: Arc<dyn ChatHandler>, stop: watch::Receiver<bool>) {
        if self.config.websocket {
            websocket::listen(self.config.clone(), self.outlet.clone(), handler, stop).await;
        }
    }
}
