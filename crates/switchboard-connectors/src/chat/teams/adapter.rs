//! [`TeamsAdapter`]: the Teams [`ChatAdapter`], tying the outgoing
//! webhooks' requests (`activity.rs`) to the Workflows outlet
//! (`workflows.rs`) around one compiled configuration.
//!
//! Not here: any wire format; this file only routes.

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_core::Timestamp;
use switchboard_core::chat::ChatOutlet;

use super::config::TeamsConfig;
use super::workflows::TeamsOutlet;
use super::{PLATFORM, activity};
use crate::chat::{ChatAdapter, HookRequest, HookResponse};

/// Teams, as one configured tenant's outgoing webhooks and workflows.
pub struct TeamsAdapter {
    config: Arc<TeamsConfig>,
    outlet: Arc<TeamsOutlet>,
}

impl TeamsAdapter {
    pub fn new(config: TeamsConfig) -> Self {
        let config = Arc::new(config);
        Self {
            outlet: Arc::new(TeamsOutlet::new(config.clone())),
            config,
        }
    }
}

#[async_trait]
impl ChatAdapter for TeamsAdapter {
    fn door(&self) -> crate::chat::DoorDescription {
        let c = &self.config;
        let rooms: Vec<&str> = c
            .rooms
            .iter()
            .map(|(id, r)| r.name.as_deref().unwrap_or(id.as_str()))
            .collect();
        crate::chat::DoorDescription {
            reaches: format!(
                "Microsoft Teams{}, channels {}",
                c.tenant
                    .as_deref()
                    .map(|t| format!(" tenant {t}"))
                    .unwrap_or_default(),
                if rooms.is_empty() {
                    "(default workflow only)".to_owned()
                } else {
                    rooms.join(", ")
                }
            ),
            authentication: format!(
                "outgoing webhooks signed with {} security token(s) (HMAC-SHA256, 5-minute window); senders are Entra object ids",
                c.security_tokens.len()
            ),
        }
    }

    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn outlet(&self) -> Arc<dyn ChatOutlet> {
        self.outlet.clone()
    }

    /// Every endpoint is an outgoing webhook's: name one per webhook if
    /// you like (`/chat/teams/ops`); the signature decides.
    fn webhook(&self, _endpoint: &str, req: &HookRequest, now: Timestamp) -> HookResponse {
        activity::handle(&self.config, req, now)
    }
}
