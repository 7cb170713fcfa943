//! [`TeamsOutlet`]: replies posted to a channel's Workflows (or incoming
//! webhook) URL, and private messages to the `direct_url` workflow with
//! their recipient. Those URLs only post: nothing can be edited, threaded
//! or uploaded, and a 429 is retried after Teams' `Retry-After`.
//!
//! Not here: what a reply looks like (`render.rs`) and anything inbound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_core::chat::{
    Attachment, Capabilities, ChatIdentity, ChatOutlet, Destination, OutletError, Posted, Reply,
};
use switchboard_core::secret::Secret;

use super::PLATFORM;
use super::config::TeamsConfig;
use super::render::{MAX_TEXT, message};

const ATTEMPTS: usize = 4;
const MAX_WAIT: Duration = Duration::from_secs(10);
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Delivers replies to Teams.
pub struct TeamsOutlet {
    http: reqwest::Client,
    config: Arc<TeamsConfig>,
    /// Numbers the messages posted (Teams tells no id back).
    posted: AtomicU64,
}

impl TeamsOutlet {
    pub(super) fn new(config: Arc<TeamsConfig>) -> Self {
        Self {
            http: crate::chat::http_client(CALL_TIMEOUT),
            config,
            posted: AtomicU64::new(0),
        }
    }

    /// Posts `body` to `url`, waiting while Teams rate-limits.
    async fn send(
        &self,
        url: &Secret<String>,
        body: &Value,
        what: &str,
    ) -> Result<(), OutletError> {
        for attempt in 1..=ATTEMPTS {
            let answer = self
                .http
                .post(url.expose())
                .json(body)
                .send()
                .await
                // The URL is a credential: never in an error.
                .map_err(|e| OutletError::Unreachable(format!("{what}: {}", e.without_url())))?;
            let status = answer.status();
            if status == StatusCode::TOO_MANY_REQUESTS && attempt < ATTEMPTS {
                let wait = answer
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok())
                    .map_or(Duration::from_secs(1), Duration::from_secs);
                tokio::time::sleep(wait.min(MAX_WAIT)).await;
                continue;
            }
            if status.is_success() {
                return Ok(());
            }
            let text = answer.text().await.unwrap_or_default();
            let text: String = text.chars().take(200).collect();
            return Err(OutletError::Refused(format!(
                "{what}: HTTP {} {text}",
                status.as_u16()
            )));
        }
        Err(OutletError::Refused(format!(
            "{what}: Teams kept rate-limiting"
        )))
    }
}

#[async_trait]
impl ChatOutlet for TeamsOutlet {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            edits: false,
            files: false,
            buttons: false,
            max_text: MAX_TEXT,
        }
    }

    async fn post(&self, to: &Destination, reply: &Reply) -> Result<Posted, OutletError> {
        let url = self.config.webhook_for(&to.room).ok_or_else(|| {
            OutletError::Refused(format!(
                "Teams channel {} has no `webhook_url` in `[chat.teams]`",
                to.room
            ))
        })?;
        self.send(url, &message(reply), "post to the channel's workflow")
            .await?;
        let n = self.posted.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(Posted {
            room: to.room.clone(),
            id: format!("teams-{n}"),
            thread: to.thread.clone(),
        })
    }

    async fn update(&self, _posted: &Posted, _reply: &Reply) -> Result<(), OutletError> {
        Err(OutletError::Unsupported(
            "Teams: workflow messages cannot be edited",
        ))
    }

    async fn upload(&self, _to: &Destination, _file: &Attachment) -> Result<(), OutletError> {
        Err(OutletError::Unsupported("Teams: files are not uploaded"))
    }

    async fn direct(&self, user: &ChatIdentity, reply: &Reply) -> Result<(), OutletError> {
        if user.platform != PLATFORM {
            return Err(OutletError::Refused(format!(
                "`{user}` is not a Teams user"
            )));
        }
        let url = self
            .config
            .direct_url
            .as_ref()
            .ok_or(OutletError::Unsupported(
                "Teams: private messages need `chat.teams.direct_url`",
            ))?;
        let mut body = message(reply);
        body["recipient"] = json!({ "aadObjectId": user.user, "tenantId": user.workspace });
        self.send(url, &body, "send a private message").await
    }
}
