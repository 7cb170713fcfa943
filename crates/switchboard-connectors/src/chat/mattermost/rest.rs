//! [`MattermostOutlet`]: replies delivered through Mattermost's REST API v4
//! as the bot account (`Authorization: Bearer <bot token>`): posts in
//! threads, edits, file uploads and direct messages; and the bot's own
//! identity (`GET /api/v4/users/me`).
//!
//! A refusal names Mattermost's `message`. A 429 is retried after the wait
//! Mattermost asks for (`Retry-After`, else `X-Ratelimit-Reset`), cut to
//! `max_rate_limit_wait`, a few times.
//!
//! Not here: what a reply looks like (`render.rs`) and anything inbound.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use reqwest::multipart::{Form, Part};
use reqwest::{RequestBuilder, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use switchboard_core::chat::{
    Attachment, Capabilities, ChatIdentity, ChatOutlet, Destination, OutletError, Posted, Reply,
};

use super::PLATFORM;
use super::config::MattermostConfig;
use super::render::{self, MAX_TEXT};

/// How many times one call is tried while Mattermost answers 429.
const ATTEMPTS: usize = 4;
/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Who the bot is on the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BotIdentity {
    /// The bot account's user id.
    pub user_id: Option<String>,
    /// Its username, without `@`: messages that start with `@username`
    /// mention it.
    pub username: Option<String>,
}

/// Delivers replies to Mattermost.
pub struct MattermostOutlet {
    http: reqwest::Client,
    config: Arc<MattermostConfig>,
    me: RwLock<BotIdentity>,
}

/// A failed call.
enum CallError {
    Unreachable(String),
    /// Mattermost answered with an error: its status, error id and message.
    Api {
        status: StatusCode,
        id: String,
        message: String,
    },
}

impl CallError {
    fn into_outlet(self, what: &str) -> OutletError {
        match self {
            Self::Unreachable(e) => OutletError::Unreachable(format!("{what}: {e}")),
            Self::Api {
                status, message, ..
            } => OutletError::Refused(format!("{what}: {message} (HTTP {})", status.as_u16())),
        }
    }
}

/// Mattermost's error body.
#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    id: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct PostAnswer {
    id: String,
    #[serde(default)]
    channel_id: String,
    #[serde(default)]
    root_id: String,
}

#[derive(Deserialize)]
struct UserAnswer {
    id: String,
    #[serde(default)]
    username: String,
}

#[derive(Deserialize)]
struct ChannelAnswer {
    id: String,
}

#[derive(Deserialize)]
struct UploadAnswer {
    #[serde(default)]
    file_infos: Vec<FileInfo>,
}

#[derive(Deserialize)]
struct FileInfo {
    id: String,
}

impl MattermostOutlet {
    pub(super) fn new(config: Arc<MattermostConfig>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let me = RwLock::new(BotIdentity {
            user_id: config.bot_user_id.clone(),
            username: None,
        });
        Self { http, config, me }
    }

    /// What is known of the bot so far.
    pub fn known_identity(&self) -> BotIdentity {
        self.me
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Asks the server who the bot is (`GET /api/v4/users/me`) and
    /// remembers it. A configured `bot_user_id` that differs is kept: it
    /// was set on purpose, and the mismatch is logged.
    pub async fn learn_identity(&self) -> Result<BotIdentity, OutletError> {
        let user: UserAnswer = self
            .call_json("users/me", || self.http.get(self.api("users/me")))
            .await?;
        let mut me = self.me.write().unwrap_or_else(PoisonError::into_inner);
        match &me.user_id {
            Some(id) if *id != user.id => tracing::warn!(
                configured = %id,
                token_owner = %user.id,
                "chat.mattermost.bot_user_id is not the user of the bot token"
            ),
            _ => me.user_id = Some(user.id),
        }
        me.username = Some(user.username).filter(|u| !u.is_empty());
        Ok(me.clone())
    }

    /// The bot's user id, asked from the server the first time.
    async fn bot_user_id(&self) -> Result<String, OutletError> {
        if let Some(id) = self.known_identity().user_id {
            return Ok(id);
        }
        self.learn_identity()
            .await?
            .user_id
            .ok_or_else(|| OutletError::Refused("Mattermost did not say who the bot is".to_owned()))
    }

    fn api(&self, path: &str) -> String {
        format!("{}/api/v4/{path}", self.config.url)
    }

    /// Sends a request (built anew for each attempt) with the bot token,
    /// waiting and retrying while Mattermost answers 429.
    async fn call(&self, build: impl Fn() -> RequestBuilder) -> Result<bytes::Bytes, CallError> {
        let mut attempt = 1;
        loop {
            let answer = build()
                .bearer_auth(self.config.bot_token.expose())
                .send()
                .await
                .map_err(|e| CallError::Unreachable(e.without_url().to_string()))?;
            let status = answer.status();
            if status == StatusCode::TOO_MANY_REQUESTS && attempt < ATTEMPTS {
                let wait = rate_limit_wait(answer.headers()).min(self.config.max_rate_limit_wait);
                tracing::debug!(?wait, attempt, "Mattermost is rate limiting; waiting");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            let body = answer
                .bytes()
                .await
                .map_err(|e| CallError::Unreachable(e.without_url().to_string()))?;
            if status.is_success() {
                return Ok(body);
            }
            let error: Option<ApiError> = serde_json::from_slice(&body).ok();
            let (id, message) = match error {
                Some(e) if !e.message.is_empty() => (e.id, e.message),
                Some(e) => (e.id, status.to_string()),
                None => (String::new(), status.to_string()),
            };
            return Err(CallError::Api {
                status,
                id,
                message,
            });
        }
    }

    /// [`Self::call`], reading a JSON answer; failures say `what` failed.
    async fn call_json<T: DeserializeOwned>(
        &self,
        what: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<T, OutletError> {
        let body = self.call(build).await.map_err(|e| e.into_outlet(what))?;
        serde_json::from_slice(&body).map_err(|e| {
            OutletError::Refused(format!("{what}: Mattermost answered unexpected JSON: {e}"))
        })
    }

    /// Creates a post. A post in a thread names the thread's root; when the
    /// thread named is itself a reply (as an outgoing webhook's post may
    /// be), Mattermost refuses it, and the post is made again under that
    /// reply's root.
    async fn create_post(&self, mut body: serde_json::Value) -> Result<PostAnswer, OutletError> {
        const WHAT: &str = "create post";
        let url = self.api("posts");
        let mut answer = self.call(|| self.http.post(&url).json(&body)).await;
        if let Err(CallError::Api { status, id, .. }) = &answer
            && *status == StatusCode::BAD_REQUEST
            && id.contains("root_id")
            && let Some(thread) = body["root_id"].as_str().map(str::to_owned)
        {
            let parent: PostAnswer = self
                .call_json("look up the thread", || {
                    self.http.get(self.api(&format!("posts/{thread}")))
                })
                .await?;
            if !parent.root_id.is_empty() && parent.root_id != thread {
                body["root_id"] = json!(parent.root_id);
                answer = self.call(|| self.http.post(&url).json(&body)).await;
            }
        }
        let answer = answer.map_err(|e| e.into_outlet(WHAT))?;
        serde_json::from_slice(&answer).map_err(|e| {
            OutletError::Refused(format!("{WHAT}: Mattermost answered unexpected JSON: {e}"))
        })
    }
}

/// How long Mattermost asks to wait: `Retry-After` (seconds), else
/// `X-Ratelimit-Reset` (seconds until the limit resets; read as a Unix
/// time when it is one), else one second.
fn rate_limit_wait(headers: &reqwest::header::HeaderMap) -> Duration {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    match number("retry-after").or_else(|| number("x-ratelimit-reset")) {
        Some(n) if n > 1_000_000_000 => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            Duration::from_secs(n.saturating_sub(now))
        }
        Some(n) => Duration::from_secs(n),
        None => Duration::from_secs(1),
    }
}

#[async_trait]
impl ChatOutlet for MattermostOutlet {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            edits: true,
            files: true,
            buttons: self.config.actions_url.is_some(),
            max_text: MAX_TEXT,
        }
    }

    async fn post(&self, to: &Destination, reply: &Reply) -> Result<Posted, OutletError> {
        let answer = self
            .create_post(render::post_body(&self.config, to, reply))
            .await?;
        Ok(Posted {
            room: if answer.channel_id.is_empty() {
                to.room.clone()
            } else {
                answer.channel_id
            },
            id: answer.id,
            thread: Some(answer.root_id)
                .filter(|r| !r.is_empty())
                .or_else(|| to.thread.clone()),
        })
    }

    async fn update(&self, posted: &Posted, reply: &Reply) -> Result<(), OutletError> {
        let body = render::patch_body(&self.config, posted, reply);
        let url = self.api(&format!("posts/{}/patch", posted.id));
        self.call(|| self.http.put(&url).json(&body))
            .await
            .map(|_| ())
            .map_err(|e| e.into_outlet("edit post"))
    }

    async fn upload(&self, to: &Destination, file: &Attachment) -> Result<(), OutletError> {
        let form = || {
            let part = Part::bytes(file.bytes.clone()).file_name(file.filename.clone());
            let part = match part.mime_str(&file.content_type) {
                Ok(part) => part,
                Err(_) => Part::bytes(file.bytes.clone()).file_name(file.filename.clone()),
            };
            Form::new()
                .text("channel_id", to.room.clone())
                .part("files", part)
        };
        let uploaded: UploadAnswer = self
            .call_json("upload file", || {
                self.http.post(self.api("files")).multipart(form())
            })
            .await?;
        let ids: Vec<String> = uploaded.file_infos.into_iter().map(|f| f.id).collect();
        if ids.is_empty() {
            return Err(OutletError::Refused(
                "upload file: Mattermost stored no file".to_owned(),
            ));
        }
        let mut body = json!({
            "channel_id": to.room,
            "message": file.title,
            "file_ids": ids,
        });
        if let Some(root) = to.thread.as_deref().filter(|t| !t.is_empty()) {
            body["root_id"] = json!(root);
        }
        self.create_post(body).await.map(|_| ())
    }

    async fn direct(&self, user: &ChatIdentity, reply: &Reply) -> Result<(), OutletError> {
        if user.platform != PLATFORM {
            return Err(OutletError::Refused(format!(
                "`{user}` is not a Mattermost user"
            )));
        }
        let bot = self.bot_user_id().await?;
        let members = [bot, user.user.clone()];
        let channel: ChannelAnswer = self
            .call_json("open a direct channel", || {
                self.http.post(self.api("channels/direct")).json(&members)
            })
            .await?;
        let to = Destination {
            room: channel.id,
            thread: None,
        };
        self.create_post(render::post_body(&self.config, &to, reply))
            .await
            .map(|_| ())
    }
}
