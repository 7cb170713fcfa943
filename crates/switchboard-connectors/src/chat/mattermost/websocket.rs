//! Mattermost's websocket (`<url>/api/v4/websocket`): every post the bot
//! can see arrives as a `posted` event and is handed to the conversation.
//!
//! A session learns who the bot is (`users/me`, for its user id and
//! `@username`), connects, authenticates with an `authentication_challenge`
//! carrying the bot token, and reads events until the connection drops or
//! says nothing for `websocket_idle`; then it reconnects after a wait that
//! starts at `reconnect_min` and doubles up to `reconnect_max` while
//! sessions fail. It stops as soon as `stop` turns true.
//!
//! The bot's own posts and system posts (those with a `type`) are left
//! out. A post that starts with `@username` mentions the bot (the mention
//! is removed from the text). The post id is the delivery id, as for
//! outgoing webhooks, so a post that arrives both ways is answered once.
//!
//! Not here: replies (`rest.rs`) and HTTP requests from Mattermost
//! (`hooks.rs`).

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchboard_core::chat::{ChatHandler, ChatIdentity, ChatOutlet, Inbound};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::PLATFORM;
use super::config::MattermostConfig;
use super::hooks::room;
use super::rest::{BotIdentity, MattermostOutlet};
use crate::chat::STOPPED;

/// How long connecting (TCP, TLS and upgrade) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Keeps the websocket open until `stop` turns true.
pub(super) async fn listen(
    config: Arc<MattermostConfig>,
    outlet: Arc<MattermostOutlet>,
    handler: Arc<dyn ChatHandler>,
    mut stop: watch::Receiver<bool>,
) {
    let url = websocket_url(&config.url);
    let mut wait = config.reconnect_min;
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        match session(&config, &url, &outlet, &handler, &mut stop).await {
            Ended::Stopped => {
                handler.connection(PLATFORM, false, STOPPED).await;
                return;
            }
            Ended::Dropped {
                authenticated,
                reason,
            } => {
                if authenticated {
                    wait = config.reconnect_min;
                }
                tracing::warn!(%reason, retry_in = ?wait, "Mattermost websocket closed");
                handler.connection(PLATFORM, false, &reason).await;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stopped(&mut stop) => return,
        }
        wait = (wait * 2).min(config.reconnect_max);
    }
}

/// `ws(s)://…/api/v4/websocket` for the server's `http(s)://…` URL.
pub(super) fn websocket_url(base: &str) -> String {
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{base}/api/v4/websocket")
}

/// Returns once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// How a session ended.
enum Ended {
    Stopped,
    Dropped {
        /// The server accepted the token: the connection was good, so the
        /// next wait starts small again.
        authenticated: bool,
        reason: String,
    },
}

fn dropped(authenticated: bool, reason: impl Into<String>) -> Ended {
    Ended::Dropped {
        authenticated,
        reason: reason.into(),
    }
}

/// One connection, from connecting to its end.
async fn session(
    config: &MattermostConfig,
    url: &str,
    outlet: &Arc<MattermostOutlet>,
    handler: &Arc<dyn ChatHandler>,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let known = outlet.known_identity();
    let me = if known.user_id.is_some() && known.username.is_some() {
        known
    } else {
        match outlet.learn_identity().await {
            Ok(me) => me,
            Err(e) => return dropped(false, format!("cannot learn who the bot is: {e}")),
        }
    };

    let mut request = match url.into_client_request() {
        Ok(r) => r,
        Err(e) => return dropped(false, format!("bad websocket URL `{url}`: {e}")),
    };
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {}", config.bot_token.expose())) {
        request.headers_mut().insert("authorization", value);
    }
    let connect = tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request));
    let mut ws = tokio::select! {
        result = connect => match result {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => return dropped(false, format!("cannot connect to `{url}`: {e}")),
            Err(_) => return dropped(false, format!("connecting to `{url}` timed out")),
        },
        () = stopped(stop) => return Ended::Stopped,
    };

    let challenge = json!({
        "seq": 1,
        "action": "authentication_challenge",
        "data": { "token": config.bot_token.expose() },
    });
    if let Err(e) = ws.send(Message::text(challenge.to_string())).await {
        return dropped(false, format!("cannot authenticate: {e}"));
    }

    let outlet_dyn: Arc<dyn ChatOutlet> = outlet.clone();
    let mut authenticated = false;
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(config.websocket_idle, ws.next()) => next,
            () = stopped(stop) => {
                let _ = ws.close(None).await;
                return Ended::Stopped;
            }
        };
        let text = match next {
            Err(_) => return dropped(authenticated, "nothing heard for too long"),
            Ok(None) => return dropped(authenticated, "the server closed the connection"),
            Ok(Some(Err(e))) => return dropped(authenticated, e.to_string()),
            Ok(Some(Ok(Message::Close(frame)))) => {
                return dropped(authenticated, format!("the server closed: {frame:?}"));
            }
            Ok(Some(Ok(Message::Text(text)))) => text,
            // tungstenite answers pings; nothing else is expected.
            Ok(Some(Ok(_))) => continue,
        };
        let Ok(event) = serde_json::from_str::<Event>(text.as_str()) else {
            tracing::debug!("ignoring a websocket message that is not an event");
            continue;
        };
        match event {
            Event {
                status: Some(status),
                error,
                ..
            } => {
                if status == "OK" {
                    if !authenticated {
                        handler.connection(PLATFORM, true, url).await;
                    }
                    authenticated = true;
                } else {
                    let detail = error
                        .as_ref()
                        .and_then(|e| e.get("message"))
                        .and_then(Value::as_str)
                        .unwrap_or("no reason given")
                        .to_owned();
                    return dropped(authenticated, format!("Mattermost refused: {detail}"));
                }
            }
            Event {
                event: Some(name),
                data,
                ..
            } => {
                if name == "hello" {
                    authenticated = true;
                } else if name == "posted"
                    && let Some(inbound) = posted(&data, &me, &config.team)
                {
                    let handler = handler.clone();
                    let outlet = outlet_dyn.clone();
                    tokio::spawn(async move { handler.handle(inbound, outlet).await });
                }
            }
            _ => {}
        }
    }
}

/// A websocket message: an event, or the answer to our request.
#[derive(Debug, Deserialize)]
struct Event {
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    data: Map<String, Value>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error: Option<Map<String, Value>>,
}

/// A post, as the `post` of a `posted` event carries it (JSON in a string).
#[derive(Debug, Deserialize)]
struct Post {
    id: String,
    user_id: String,
    channel_id: String,
    #[serde(default)]
    root_id: String,
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    props: Map<String, Value>,
}

/// The message a `posted` event carries, unless it is to be left out.
pub(super) fn posted(data: &Map<String, Value>, me: &BotIdentity, team: &str) -> Option<Inbound> {
    let text = |name: &str| data.get(name).and_then(Value::as_str).unwrap_or("");
    let post: Post = serde_json::from_str(text("post")).ok()?;
    if me.user_id.as_deref() == Some(post.user_id.as_str()) || !post.kind.is_empty() {
        return None;
    }
    let sender = ChatIdentity::new(PLATFORM, team, post.user_id.as_str()).ok()?;
    let flag = |name: &str| match post.props.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    let (message, mentioned) = match me.username.as_deref() {
        Some(username) => strip_mention(&post.message, username),
        None => (post.message.as_str(), false),
    };
    let sender_name = text("sender_name").trim_start_matches('@');
    Some(Inbound {
        delivery_id: Some(post.id.clone()),
        sender,
        sender_name: (!sender_name.is_empty()).then(|| sender_name.to_owned()),
        sender_is_bot: flag("from_bot") || flag("from_webhook"),
        authenticated: None,
        room: room(
            &post.channel_id,
            text("channel_name"),
            text("channel_type") == "D",
        ),
        thread: (!post.root_id.is_empty()).then(|| post.root_id.clone()),
        message_id: Some(post.id),
        text: message.trim().to_owned(),
        mentioned,
    })
}

/// The message without a leading `@username` (and the `:` or `,` after
/// it), and whether it had one.
pub(super) fn strip_mention<'a>(message: &'a str, username: &str) -> (&'a str, bool) {
    let trimmed = message.trim_start();
    let Some(rest) = trimmed.strip_prefix('@') else {
        return (message, false);
    };
    let Some(name) = rest.get(..username.len()) else {
        return (message, false);
    };
    let after = &rest[username.len()..];
    let ends = after
        .chars()
        .next()
        .is_none_or(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
    if name.eq_ignore_ascii_case(username) && ends {
        let after = after.trim_start_matches([':', ',']);
        (after, true)
    } else {
        (message, false)
    }
}
