//! The few Web API methods Switchboard calls, on a plain HTTP client: the
//! [`ChatOutlet`] (`chat.postMessage`, `chat.update`, the three-step file
//! upload, `conversations.open` for direct messages), `auth.test` to learn
//! who the bot is, `conversations.info` to learn a room's name, and
//! `apps.connections.open` for Socket Mode.
//!
//! Every call carries its token as a bearer header and is checked the same
//! way: `"ok": false` is a refusal naming Slack's `error`; a 429 is waited
//! out (`Retry-After`) a bounded number of times, never longer than
//! `max_retry_after` — except `conversations.info`, which holds a message
//! back and so is tried once, briefly.
//!
//! Not here: what replies look like (`render.rs`) or what they say.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde::Serialize;
use serde_json::{Value, json};
use switchboard_core::chat::{
    Attachment, Capabilities, ChatIdentity, ChatOutlet, Destination, OutletError, Posted, Reply,
};
use switchboard_core::secret::Secret;

use super::PLATFORM;
use super::config::SlackConfig;
use super::render::{self, Rendered};

/// A Web API client with the bot's token.
pub(super) struct WebApi {
    http: reqwest::Client,
    base: String,
    bot_token: Secret<String>,
    app_token: Option<Secret<String>>,
    max_retry_after: Duration,
    max_retries: u32,
}

/// What `auth.test` says about the bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BotIdentity {
    pub user_id: String,
    pub team_id: String,
}

/// What `conversations.info` says about a channel, the fields we read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Conversation {
    /// Without the `#`; Slack gives none for direct conversations.
    pub name: Option<String>,
    /// A direct conversation with one person.
    pub is_im: bool,
}

/// The longest wait for `conversations.info`: the message waits meanwhile.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// How a call is tried.
#[derive(Clone, Copy)]
struct Attempts {
    /// How often a rate-limited call is tried again.
    retries: u32,
    /// The longest wait for one answer, when shorter than the client's.
    timeout: Option<Duration>,
}

/// A request body.
enum Body<'a> {
    Json(Value),
    Form(&'a [(&'a str, &'a str)]),
    None,
}

/// `chat.postMessage` and `chat.update`.
#[derive(Serialize)]
struct MessageBody<'a> {
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thread_ts: Option<&'a str>,
    #[serde(flatten)]
    message: Rendered,
}

impl WebApi {
    pub(super) fn new(config: &SlackConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            // Building fails only when TLS cannot be set up, and then the
            // default client fails the same way.
            .unwrap_or_default();
        Self {
            http,
            base: config.api_base.clone(),
            bot_token: config.bot_token.clone(),
            app_token: config.app_token.clone(),
            max_retry_after: config.max_retry_after,
            max_retries: config.max_retries,
        }
    }

    /// Calls `method` and returns Slack's answer when it says `"ok": true`.
    async fn call(
        &self,
        method: &str,
        token: &Secret<String>,
        body: Body<'_>,
    ) -> Result<Value, OutletError> {
        let attempts = Attempts {
            retries: self.max_retries,
            timeout: None,
        };
        self.call_with(method, token, body, attempts).await
    }

    async fn call_with(
        &self,
        method: &str,
        token: &Secret<String>,
        body: Body<'_>,
        attempts: Attempts,
    ) -> Result<Value, OutletError> {
        let url = format!("{}/{method}", self.base);
        let mut retries = 0;
        loop {
            let mut request = self.http.post(&url).bearer_auth(token.expose());
            if let Some(timeout) = attempts.timeout {
                request = request.timeout(timeout);
            }
            let request = match &body {
                Body::Json(value) => request.json(value),
                Body::Form(fields) => request
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(serde_urlencoded::to_string(fields).map_err(|e| {
                        OutletError::Unreachable(format!("`{method}`: unencodable form: {e}"))
                    })?),
                Body::None => request,
            };
            let response = request.send().await.map_err(|e| {
                OutletError::Unreachable(format!("`{method}`: {}", e.without_url()))
            })?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = retry_after(&response);
                if retries >= attempts.retries || wait > self.max_retry_after {
                    return Err(OutletError::Unreachable(format!(
                        "`{method}`: rate limited by Slack (retry after {} s)",
                        wait.as_secs()
                    )));
                }
                retries += 1;
                tracing::info!(
                    method,
                    wait_secs = wait.as_secs(),
                    "Slack rate limit: waiting"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            if !status.is_success() {
                return Err(OutletError::Unreachable(format!(
                    "`{method}`: Slack answered HTTP {status}"
                )));
            }
            let answer: Value = response.json().await.map_err(|e| {
                OutletError::Unreachable(format!(
                    "`{method}`: unreadable answer: {}",
                    e.without_url()
                ))
            })?;
            if answer.get("ok").and_then(Value::as_bool) == Some(true) {
                return Ok(answer);
            }
            let error = answer
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown_error")
                .to_owned();
            tracing::warn!(method, %error, "Slack refused a call");
            return Err(OutletError::Refused(error));
        }
    }

    /// `auth.test`: who the bot is.
    pub(super) async fn auth_test(&self) -> Result<BotIdentity, OutletError> {
        let answer = self.call("auth.test", &self.bot_token, Body::None).await?;
        Ok(BotIdentity {
            user_id: field(&answer, "/user_id", "auth.test")?,
            team_id: field(&answer, "/team_id", "auth.test")?,
        })
    }

    /// `conversations.info`: what a channel is called. Tried once (a 429 is
    /// not waited out) and for at most [`LOOKUP_TIMEOUT`].
    pub(super) async fn conversations_info(
        &self,
        channel: &str,
    ) -> Result<Conversation, OutletError> {
        let method = "conversations.info";
        let attempts = Attempts {
            retries: 0,
            timeout: Some(LOOKUP_TIMEOUT),
        };
        let form = [("channel", channel)];
        let answer = self
            .call_with(method, &self.bot_token, Body::Form(&form), attempts)
            .await?;
        let channel = answer.get("channel").ok_or_else(|| {
            OutletError::Unreachable(format!("`{method}`: the answer has no `/channel`"))
        })?;
        Ok(Conversation {
            name: channel
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            is_im: channel.get("is_im").and_then(Value::as_bool) == Some(true),
        })
    }

    /// `apps.connections.open`: a fresh Socket Mode URL.
    pub(super) async fn connections_open(&self) -> Result<String, OutletError> {
        let Some(token) = &self.app_token else {
            return Err(OutletError::Unsupported(
                "Socket Mode without `chat.slack.app_token`",
            ));
        };
        let answer = self
            .call("apps.connections.open", token, Body::None)
            .await?;
        field(&answer, "/url", "apps.connections.open")
    }

    async fn post_message(
        &self,
        method: &str,
        channel: &str,
        ts: Option<&str>,
        thread_ts: Option<&str>,
        reply: &Reply,
    ) -> Result<Value, OutletError> {
        let body = MessageBody {
            channel,
            ts,
            thread_ts,
            message: render::render(reply),
        };
        let body = serde_json::to_value(body)
            .map_err(|e| OutletError::Unreachable(format!("`{method}`: {e}")))?;
        self.call(method, &self.bot_token, Body::Json(body)).await
    }
}

/// The wait a 429 asks for (Slack sends whole seconds).
fn retry_after(response: &reqwest::Response) -> Duration {
    let secs = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    Duration::from_secs(secs)
}

/// A string in Slack's answer.
fn field(answer: &Value, pointer: &str, method: &str) -> Result<String, OutletError> {
    answer
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            OutletError::Unreachable(format!("`{method}`: the answer has no `{pointer}`"))
        })
}

#[async_trait]
impl ChatOutlet for WebApi {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            edits: true,
            files: true,
            buttons: true,
            max_text: render::MESSAGE_MAX,
        }
    }

    async fn post(&self, to: &Destination, reply: &Reply) -> Result<Posted, OutletError> {
        let method = "chat.postMessage";
        let answer = self
            .post_message(method, &to.room, None, to.thread.as_deref(), reply)
            .await?;
        Ok(Posted {
            room: field(&answer, "/channel", method).unwrap_or_else(|_| to.room.clone()),
            id: field(&answer, "/ts", method)?,
            thread: to.thread.clone(),
        })
    }

    async fn update(&self, posted: &Posted, reply: &Reply) -> Result<(), OutletError> {
        self.post_message("chat.update", &posted.room, Some(&posted.id), None, reply)
            .await
            .map(|_| ())
    }

    async fn upload(&self, to: &Destination, file: &Attachment) -> Result<(), OutletError> {
        // 1. Ask for an upload URL…
        let length = file.bytes.len().to_string();
        let answer = self
            .call(
                "files.getUploadURLExternal",
                &self.bot_token,
                Body::Form(&[("filename", &file.filename), ("length", &length)]),
            )
            .await?;
        let url = field(&answer, "/upload_url", "files.getUploadURLExternal")?;
        let id = field(&answer, "/file_id", "files.getUploadURLExternal")?;
        // 2. …send the bytes there (the URL itself is the credential)…
        let sent = self
            .http
            .post(&url)
            .header(CONTENT_TYPE, &file.content_type)
            .body(file.bytes.clone())
            .send()
            .await
            .map_err(|e| OutletError::Unreachable(format!("file upload: {}", e.without_url())))?;
        if !sent.status().is_success() {
            return Err(OutletError::Unreachable(format!(
                "file upload: Slack answered HTTP {}",
                sent.status()
            )));
        }
        // 3. …and share the file where it belongs.
        let files = json!([{ "id": id, "title": file.title }]).to_string();
        let mut form = vec![("files", files.as_str()), ("channel_id", to.room.as_str())];
        if let Some(thread) = &to.thread {
            form.push(("thread_ts", thread));
        }
        self.call(
            "files.completeUploadExternal",
            &self.bot_token,
            Body::Form(&form),
        )
        .await
        .map(|_| ())
    }

    async fn direct(&self, user: &ChatIdentity, reply: &Reply) -> Result<(), OutletError> {
        if user.platform != PLATFORM {
            return Err(OutletError::Unsupported(
                "direct messages to users of another platform",
            ));
        }
        let method = "conversations.open";
        let answer = self
            .call(
                method,
                &self.bot_token,
                Body::Json(json!({ "users": user.user })),
            )
            .await?;
        let channel = field(&answer, "/channel/id", method)?;
        let to = Destination {
            room: channel,
            thread: None,
        };
        self.post(&to, reply).await.map(|_| ())
    }
}
