//! [`DiscordOutlet`]: replies delivered through the webhook of the
//! interaction they answer. The first reply replaces the deferred
//! "thinking…" message (`PATCH /webhooks/<app>/<token>/messages/@original`);
//! later ones are follow-ups (`POST /webhooks/<app>/<token>?wait=true`);
//! edits patch the message by its id. A direct message is an ephemeral
//! follow-up (seen only by that person) to their latest interaction.
//!
//! Interaction tokens are kept in memory only, for the 15 minutes Discord
//! honours them; a message's thread is its interaction's id, which is not
//! a secret. A reply whose interaction is unknown or expired (a run that
//! ended later, a restart, an alert posted to a room) is posted by the bot
//! in the channel (`POST /channels/<id>/messages`, and edited there) when
//! a bot token is configured, and a private message goes to a direct
//! message channel the bot opens (`POST /users/@me/channels`); without a
//! bot token such a reply is refused, saying so. A 429 is retried after
//! Discord's `retry_after`, a few times.
//!
//! Not here: what a reply looks like (`render.rs`) and anything inbound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use switchboard_core::chat::{
    Attachment, Capabilities, ChatIdentity, ChatOutlet, Destination, OutletError, Posted, Reply,
};

use super::PLATFORM;
use super::config::DiscordConfig;
use super::interactions::Interaction;
use super::render::{EPHEMERAL, MAX_TEXT, message_body};

/// How many times one call is tried while Discord answers 429.
const ATTEMPTS: usize = 4;
/// The longest rate-limit wait honoured.
const MAX_WAIT: Duration = Duration::from_secs(10);
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The id of an interaction's first message, before Discord names it.
const ORIGINAL: &str = "@original";

/// A live interaction.
struct Live {
    token: String,
    user: String,
    received: Instant,
    /// Whether its deferred message has been replaced yet.
    answered: bool,
}

impl Live {
    /// Whether Discord still honours its token.
    fn fresh(&self, lifetime: Duration) -> bool {
        self.received.elapsed() < lifetime
    }
}

/// Delivers replies to Discord.
pub struct DiscordOutlet {
    http: reqwest::Client,
    config: Arc<DiscordConfig>,
    live: Mutex<HashMap<String, Live>>,
}

#[derive(Deserialize)]
struct MessageAnswer {
    #[serde(default)]
    id: String,
}

#[derive(Deserialize)]
struct RateLimited {
    #[serde(default)]
    retry_after: f64,
}

impl DiscordOutlet {
    pub(super) fn new(config: Arc<DiscordConfig>) -> Self {
        Self {
            http: crate::chat::http_client(CALL_TIMEOUT),
            config,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps a verified interaction's token for its replies, and forgets
    /// those Discord no longer honours.
    pub(super) fn remember(&self, interaction: Interaction) {
        let lifetime = self.config.token_lifetime;
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.retain(|_, l| l.fresh(lifetime));
        live.entry(interaction.id).or_insert(Live {
            token: interaction.token,
            user: interaction.user,
            received: Instant::now(),
            answered: false,
        });
    }

    /// Whether interaction `id` can still be answered through its webhook.
    fn is_live(&self, id: &str) -> bool {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.get(id)
            .is_some_and(|l| l.fresh(self.config.token_lifetime))
    }

    /// The token of interaction `id`, and whether this call is the one that
    /// answers its deferred message (only the first asking does).
    fn token(&self, id: &str, answer: bool) -> Result<(String, bool), OutletError> {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        match live.get_mut(id) {
            Some(l) if l.fresh(self.config.token_lifetime) => {
                let first = answer && !l.answered;
                l.answered |= answer;
                Ok((l.token.clone(), first))
            }
            _ => Err(expired(id)),
        }
    }

    /// The latest live interaction of Discord user `user`.
    fn latest_of(&self, user: &str) -> Option<String> {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.iter()
            .filter(|(_, l)| l.user == user && l.fresh(self.config.token_lifetime))
            .max_by_key(|(_, l)| l.received)
            .map(|(id, _)| id.clone())
    }

    /// Sends `body` to `/webhooks/<app>/<token><path>`; the message it
    /// answers with.
    async fn call(
        &self,
        method: Method,
        token: &str,
        path: &str,
        body: &Value,
        what: &str,
    ) -> Result<MessageAnswer, OutletError> {
        let path = format!("/webhooks/{}/{token}{path}", self.config.application_id);
        self.request(method, &path, None, body, what).await
    }

    /// Sends `body` to `path` as the bot; the object it answers with.
    async fn as_bot(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        what: &str,
    ) -> Result<MessageAnswer, OutletError> {
        let token = self.config.bot_token.as_ref().ok_or(OutletError::Unsupported(
            "Discord: without a bot token, Switchboard posts only in answer to an interaction of the last 15 minutes",
        ))?;
        let auth = format!("Bot {}", token.expose());
        self.request(method, path, Some(&auth), body, what).await
    }

    /// Sends `body` to the API's `path` (with `authorization`, if any),
    /// retrying while Discord rate-limits; the object it answers with.
    async fn request(
        &self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: &Value,
        what: &str,
    ) -> Result<MessageAnswer, OutletError> {
        let url = format!("{}{path}", self.config.api_base);
        for attempt in 1..=ATTEMPTS {
            let mut request = self.http.request(method.clone(), &url).json(body);
            if let Some(auth) = authorization {
                request = request.header(reqwest::header::AUTHORIZATION, auth);
            }
            let answer = request
                .send()
                .await
                .map_err(|e| OutletError::Unreachable(format!("{what}: {}", e.without_url())))?;
            let status = answer.status();
            let text = answer
                .bytes()
                .await
                .map_err(|e| OutletError::Unreachable(format!("{what}: {}", e.without_url())))?;
            if status == StatusCode::TOO_MANY_REQUESTS && attempt < ATTEMPTS {
                let wait = serde_json::from_slice::<RateLimited>(&text)
                    .map(|r| r.retry_after)
                    .unwrap_or(1.0);
                let wait = Duration::try_from_secs_f64(wait).unwrap_or(MAX_WAIT);
                tokio::time::sleep(wait.min(MAX_WAIT)).await;
                continue;
            }
            if !status.is_success() {
                let message = serde_json::from_slice::<Value>(&text)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| status.to_string());
                return Err(OutletError::Refused(format!(
                    "{what}: {message} (HTTP {})",
                    status.as_u16()
                )));
            }
            return Ok(serde_json::from_slice(&text).unwrap_or(MessageAnswer { id: String::new() }));
        }
        Err(OutletError::Refused(format!(
            "{what}: Discord kept rate-limiting"
        )))
    }

    /// Posts `body` as the next message of interaction `id`: the first
    /// replaces the deferred message, later ones follow it.
    async fn send(&self, id: &str, body: &Value) -> Result<MessageAnswer, OutletError> {
        let (token, first) = self.token(id, true)?;
        let mut answer = if first {
            let path = format!("/messages/{ORIGINAL}");
            self.call(Method::PATCH, &token, &path, body, "answer the interaction")
                .await?
        } else {
            self.call(Method::POST, &token, "?wait=true", body, "follow up")
                .await?
        };
        if answer.id.is_empty() {
            answer.id = ORIGINAL.to_owned();
        }
        Ok(answer)
    }
}

/// `id` when it is a Discord id (digits), which goes into an API path.
fn snowflake(id: &str) -> Result<&str, OutletError> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(OutletError::Refused(format!(
            "`{id}` is not a Discord channel id (digits)"
        )))
    }
}

fn expired(id: &str) -> OutletError {
    OutletError::Refused(format!(
        "the Discord interaction {id} is unknown or older than 15 minutes: Discord takes replies only through a live interaction"
    ))
}

#[async_trait]
impl ChatOutlet for DiscordOutlet {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            edits: true,
            files: false,
            buttons: true,
            max_text: MAX_TEXT,
        }
    }

    async fn post(&self, to: &Destination, reply: &Reply) -> Result<Posted, OutletError> {
        let body = message_body(reply);
        if let Some(id) = to.thread.as_deref()
            && (self.is_live(id) || self.config.bot_token.is_none())
        {
            let answer = self.send(id, &body).await?;
            return Ok(Posted {
                room: to.room.clone(),
                id: answer.id,
                thread: Some(id.to_owned()),
            });
        }
        // No live interaction: the bot posts in the channel.
        let path = format!("/channels/{}/messages", snowflake(&to.room)?);
        let answer = self
            .as_bot(Method::POST, &path, &body, "post in the channel")
            .await?;
        Ok(Posted {
            room: to.room.clone(),
            id: answer.id,
            thread: None,
        })
    }

    async fn update(&self, posted: &Posted, reply: &Reply) -> Result<(), OutletError> {
        let Some(id) = posted.thread.as_deref() else {
            // The bot's own message in the channel.
            let path = format!(
                "/channels/{}/messages/{}",
                snowflake(&posted.room)?,
                snowflake(&posted.id)?
            );
            return self
                .as_bot(Method::PATCH, &path, &message_body(reply), "edit message")
                .await
                .map(|_| ());
        };
        let (token, _) = self.token(id, false)?;
        let path = format!("/messages/{}", posted.id);
        self.call(
            Method::PATCH,
            &token,
            &path,
            &message_body(reply),
            "edit message",
        )
        .await
        .map(|_| ())
    }

    async fn upload(&self, _to: &Destination, _file: &Attachment) -> Result<(), OutletError> {
        Err(OutletError::Unsupported("Discord: files are not uploaded"))
    }

    async fn direct(&self, user: &ChatIdentity, reply: &Reply) -> Result<(), OutletError> {
        if user.platform != PLATFORM {
            return Err(OutletError::Refused(format!(
                "`{user}` is not a Discord user"
            )));
        }
        let Some(id) = self.latest_of(&user.user) else {
            if self.config.bot_token.is_none() {
                return Err(OutletError::Refused(
                    "Discord: a private answer needs a command of yours from the last 15 minutes (or a bot token)"
                        .to_owned(),
                ));
            }
            let opened = self
                .as_bot(
                    Method::POST,
                    "/users/@me/channels",
                    &serde_json::json!({ "recipient_id": user.user }),
                    "open a direct message",
                )
                .await?;
            let path = format!("/channels/{}/messages", snowflake(&opened.id)?);
            return self
                .as_bot(
                    Method::POST,
                    &path,
                    &message_body(reply),
                    "send a private message",
                )
                .await
                .map(|_| ());
        };
        let (token, first) = self.token(&id, true)?;
        if first {
            // The first follow-up of a deferred interaction replaces its
            // (public) deferred message whatever its flags: answer that
            // first, so that the private message cannot land there.
            let note = message_body(&Reply::Text {
                text: "(answered privately)".to_owned(),
            });
            let path = format!("/messages/{ORIGINAL}");
            self.call(
                Method::PATCH,
                &token,
                &path,
                &note,
                "answer the interaction",
            )
            .await?;
        }
        let mut body = message_body(reply);
        body["flags"] = EPHEMERAL.into();
        self.call(
            Method::POST,
            &token,
            "?wait=true",
            &body,
            "send a private message",
        )
        .await
        .map(|_| ())
    }
}
