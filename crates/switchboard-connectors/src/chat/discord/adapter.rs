//! [`DiscordAdapter`]: the Discord [`ChatAdapter`], tying the inbound
//! interactions (`interactions.rs`) to the outlet (`webhooks.rs`), which
//! keeps each verified interaction's token for its replies.
//!
//! Not here: any wire format; this file only routes.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_core::Timestamp;
use switchboard_core::chat::ChatOutlet;

use super::config::DiscordConfig;
use super::webhooks::DiscordOutlet;
use super::{PLATFORM, interactions};
use crate::chat::{ChatAdapter, HookRequest, HookResponse};

/// Discord, as one configured application.
pub struct DiscordAdapter {
    config: Arc<DiscordConfig>,
    outlet: Arc<DiscordOutlet>,
}

impl DiscordAdapter {
    pub fn new(config: DiscordConfig) -> Self {
        let config = Arc::new(config);
        Self {
            outlet: Arc::new(DiscordOutlet::new(config.clone())),
            config,
        }
    }
}

#[async_trait]
impl ChatAdapter for DiscordAdapter {
    fn door(&self) -> crate::chat::DoorDescription {
        let c = &self.config;
        crate::chat::DoorDescription {
            reaches: format!(
                "Discord application {}{}",
                c.application_id,
                if c.bot_token.is_some() { ", with a bot token" } else { "" }
            ),
            authentication: "interactions signed with the application's Ed25519 key (5-minute window); senders are Discord user ids"
                .to_owned(),
        }
    }

    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn outlet(&self) -> Arc<dyn ChatOutlet> {
        self.outlet.clone()
    }

    fn webhook(&self, endpoint: &str, req: &HookRequest, now: Timestamp) -> HookResponse {
        let (answer, interaction) = interactions::handle(&self.config, endpoint, req, now);
        if let Some(interaction) = interaction {
            self.outlet.remember(interaction);
        }
        answer
    }
}
