//! Mattermost's inbound HTTP requests, verified and translated:
//!
//! * `commands`: a slash command (form-encoded). Its `token` must be one of
//!   `command_tokens`. Answered at once with an ephemeral echo of the
//!   command, seen only by its author: Mattermost shows an error for an
//!   empty answer, and a slash command otherwise leaves no trace of what
//!   was asked. The replies themselves go through the REST API.
//! * `webhook`: an outgoing webhook (JSON or form-encoded). Its `token`
//!   must be one of `webhook_tokens`. Mattermost signs nothing, so the
//!   only replay check is its `timestamp`: one further than
//!   `replay_window` (5 minutes) from now is refused. The post id is the
//!   delivery id, so a post that also arrives over the websocket, or again,
//!   is answered once. Answered with an empty 200 (Mattermost then posts
//!   nothing itself).
//! * `actions`: a press of one of our buttons (JSON): approve/reject, or
//!   a command (an alert card's `Ack`, `Silence 1h`, …). Mattermost
//!   does not sign these either, so each button carries an HMAC of what it
//!   does in its `context` ([`super::render::button_mac`]), checked here.
//!   Answered with `{}`; the outcome is replied in the thread.
//!
//! Every token and signature is compared in constant time, and nothing
//! here panics on any body: a request is answered 401 when it cannot be
//! verified and 400 when it is malformed, with the reason.
//!
//! Not here: the websocket (`websocket.rs`) and anything sent to
//! Mattermost (`rest.rs`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use subtle::{Choice, ConstantTimeEq};
use switchboard_core::chat::{ChatIdentity, Inbound, Room};
use switchboard_core::secret::Secret;
use switchboard_core::{ExecutionId, Timestamp};

use super::PLATFORM;
use super::config::MattermostConfig;
use super::render::{ACTIONS, COMMAND, button_mac};
use crate::chat::{HookRequest, HookResponse};

/// Answers a request to `/chat/mattermost/<endpoint>`. `bot_user_id`, when
/// known, marks the bot's own posts.
pub(super) fn handle(
    config: &MattermostConfig,
    bot_user_id: Option<&str>,
    endpoint: &str,
    req: &HookRequest,
    now: Timestamp,
) -> HookResponse {
    let result = match endpoint {
        "commands" => command(config, req),
        "webhook" => outgoing_webhook(config, bot_user_id, req, now),
        "actions" => action(config, req),
        other => Err(Refusal::new(
            404,
            format!(
                "no such Mattermost endpoint `{other}` (expected `commands`, `webhook` or `actions`)"
            ),
        )),
    };
    result.unwrap_or_else(|r| HookResponse::rejected(r.status, r.reason, r.claimed))
}

/// Why a request is refused.
struct Refusal {
    status: u16,
    reason: String,
    claimed: Option<ChatIdentity>,
}

impl Refusal {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            claimed: None,
        }
    }

    fn bad(reason: impl Into<String>) -> Self {
        Self::new(400, reason)
    }

    fn claimed(mut self, claimed: Option<ChatIdentity>) -> Self {
        self.claimed = claimed;
        self
    }
}

/// A request's fields, from a form or from a JSON object (numbers become
/// their text; nested values are left out).
struct Fields(BTreeMap<String, String>);

impl Fields {
    fn parse(req: &HookRequest) -> Result<Self, Refusal> {
        let content_type = req
            .header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let json = content_type == "application/json"
            || (content_type.is_empty() && req.body.trim_ascii_start().starts_with(b"{"));
        if json {
            let object: Map<String, Value> = serde_json::from_slice(&req.body)
                .map_err(|e| Refusal::bad(format!("the body is not a JSON object: {e}")))?;
            let fields = object
                .into_iter()
                .filter_map(|(k, v)| match v {
                    Value::String(s) => Some((k, s)),
                    Value::Number(n) => Some((k, n.to_string())),
                    Value::Bool(b) => Some((k, b.to_string())),
                    _ => None,
                })
                .collect();
            Ok(Self(fields))
        } else if content_type.is_empty() || content_type == "application/x-www-form-urlencoded" {
            serde_urlencoded::from_bytes(&req.body)
                .map(Self)
                .map_err(|e| Refusal::new(400, format!("malformed form body: {e}")))
        } else {
            Err(Refusal::new(
                415,
                format!(
                    "unsupported content type `{content_type}` (expected `application/x-www-form-urlencoded` or `application/json`)"
                ),
            ))
        }
    }

    /// A field, empty when absent.
    fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }

    /// A field that must be present and not empty.
    fn required(&self, name: &str) -> Result<&str, Refusal> {
        match self.get(name).trim() {
            "" => Err(Refusal::bad(format!("the request has no `{name}`"))),
            value => Ok(value),
        }
    }

    /// The user the request names, if it names one well.
    fn claimed_sender(&self, team: &str) -> Option<ChatIdentity> {
        ChatIdentity::new(PLATFORM, team, self.get("user_id")).ok()
    }
}

/// Whether `given` is one of `tokens`, compared in constant time (every
/// token is compared, whatever matches).
fn token_matches(given: &str, tokens: &[Secret<String>]) -> bool {
    let mut found = Choice::from(0);
    for token in tokens {
        found |= given.as_bytes().ct_eq(token.expose().as_bytes());
    }
    !given.is_empty() && bool::from(found)
}

/// Checks the token of a slash command or outgoing webhook.
fn check_token(
    given: &str,
    tokens: &[Secret<String>],
    kind: &str,
    key: &str,
) -> Result<(), Refusal> {
    if tokens.is_empty() {
        Err(Refusal::new(
            401,
            format!("{kind}s are not accepted: `chat.mattermost.{key}` is empty"),
        ))
    } else if given.is_empty() {
        Err(Refusal::new(401, format!("the {kind} carries no token")))
    } else if !token_matches(given, tokens) {
        Err(Refusal::new(
            401,
            format!("the {kind}'s token is not one of `chat.mattermost.{key}`"),
        ))
    } else {
        Ok(())
    }
}

/// The sender of a verified request.
fn sender(config: &MattermostConfig, user_id: &str) -> Result<ChatIdentity, Refusal> {
    ChatIdentity::new(PLATFORM, config.team.as_str(), user_id)
        .map_err(|_| Refusal::bad(format!("`{user_id}` is not a Mattermost user id")))
}

/// The room of a channel, as people name it (`~town-square`).
pub(super) fn room(channel_id: &str, channel_name: &str, direct: bool) -> Room {
    Room {
        id: channel_id.to_owned(),
        name: (!channel_name.is_empty()).then(|| format!("~{channel_name}")),
        direct,
    }
}

/// Whether a channel name is a direct message's: Mattermost names those
/// `<user id>__<user id>` (ids are 26 lower-case letters and digits).
pub(super) fn is_direct_channel_name(name: &str) -> bool {
    let id = |s: &str| {
        s.len() == 26
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    name.split_once("__").is_some_and(|(a, b)| id(a) && id(b))
}

fn command(config: &MattermostConfig, req: &HookRequest) -> Result<HookResponse, Refusal> {
    let fields = Fields::parse(req)?;
    let claimed = fields.claimed_sender(&config.team);
    // Mattermost also sends the token as `Authorization: Token …`.
    let header_token = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Token "))
        .unwrap_or("");
    let token = match fields.get("token") {
        "" => header_token,
        token => token,
    };
    // A request without the right token is anyone's: its claims are not
    // recorded against a user. Past this point the request is authentic.
    check_token(
        token,
        &config.command_tokens,
        "slash command",
        "command_tokens",
    )?;

    // Authentic from here: a missing field is refused in the sender's name.
    let required = |name| {
        fields
            .required(name)
            .map_err(|r| r.claimed(claimed.clone()))
    };
    let user_id = required("user_id")?;
    let channel_id = required("channel_id")?;
    let channel_name = fields.get("channel_name");
    let text = fields.get("text").trim();
    let inbound = Inbound {
        delivery_id: Some(fields.get("trigger_id"))
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        sender: sender(config, user_id)?,
        sender_name: Some(fields.get("user_name"))
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        sender_is_bot: false,
        authenticated: None,
        room: room(
            channel_id,
            channel_name,
            is_direct_channel_name(channel_name),
        ),
        thread: None,
        message_id: None,
        text: text.to_owned(),
        mentioned: true,
    };
    let echo = format!("{} {text}", fields.get("command"))
        .trim()
        .replace('`', "'");
    Ok(HookResponse::ok_json(
        json!({ "response_type": "ephemeral", "text": format!("Received `{echo}`.") }),
        vec![inbound],
    ))
}

/// Mattermost's `timestamp` in milliseconds. Its documentation once showed
/// seconds, so a value too small to be milliseconds of this century is
/// read as seconds.
fn timestamp_millis(text: &str) -> Option<i64> {
    let n: i64 = text.trim().parse().ok()?;
    Some(if n < 100_000_000_000 {
        n.saturating_mul(1000)
    } else {
        n
    })
}

fn outgoing_webhook(
    config: &MattermostConfig,
    bot_user_id: Option<&str>,
    req: &HookRequest,
    now: Timestamp,
) -> Result<HookResponse, Refusal> {
    let fields = Fields::parse(req)?;
    let claimed = fields.claimed_sender(&config.team);
    // Without the right token the request is anyone's (see `command`).
    check_token(
        fields.get("token"),
        &config.webhook_tokens,
        "outgoing webhook",
        "webhook_tokens",
    )?;

    let sent = timestamp_millis(fields.get("timestamp")).ok_or_else(|| {
        Refusal::bad("the outgoing webhook has no `timestamp` in milliseconds")
            .claimed(claimed.clone())
    })?;
    let now_ms = now.micros() / 1000;
    let window = i64::try_from(config.replay_window.as_millis()).unwrap_or(i64::MAX);
    // A replay is refused without recording its claim: whoever captured
    // the request may be replaying it.
    if now_ms.saturating_sub(sent).saturating_abs() > window {
        return Err(Refusal::new(
            401,
            format!(
                "the outgoing webhook's timestamp is {}s away from now, more than the {}s allowed: refused as a replay",
                now_ms.saturating_sub(sent) / 1000,
                config.replay_window.as_secs()
            ),
        ));
    }

    let required = |name| {
        fields
            .required(name)
            .map_err(|r| r.claimed(claimed.clone()))
    };
    let user_id = required("user_id")?;
    let post_id = required("post_id")?;
    let channel_id = required("channel_id")?;
    let channel_name = fields.get("channel_name");
    let trigger = fields.get("trigger_word");
    let text = fields.get("text");
    let text = strip_trigger(text, trigger).trim();
    let inbound = Inbound {
        delivery_id: Some(post_id.to_owned()),
        sender: sender(config, user_id)?,
        sender_name: Some(fields.get("user_name"))
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        sender_is_bot: bot_user_id == Some(user_id),
        authenticated: None,
        room: room(
            channel_id,
            channel_name,
            is_direct_channel_name(channel_name),
        ),
        // Outgoing webhooks do not say which thread a post is in: replies
        // name the post, and the outlet finds its thread root.
        thread: None,
        message_id: Some(post_id.to_owned()),
        text: text.to_owned(),
        mentioned: true,
    };
    Ok(HookResponse::ok_empty(vec![inbound]))
}

/// The text without the trigger word it starts with (compared without
/// regard to ASCII case).
fn strip_trigger<'a>(text: &'a str, trigger: &str) -> &'a str {
    match text.get(..trigger.len()) {
        Some(start) if !trigger.is_empty() && start.eq_ignore_ascii_case(trigger) => {
            &text[trigger.len()..]
        }
        _ => text,
    }
}

/// A button press, as Mattermost sends it.
#[derive(Debug, Deserialize)]
struct ActionRequest {
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    user_name: String,
    #[serde(default)]
    channel_id: String,
    #[serde(default)]
    channel_name: String,
    #[serde(default)]
    post_id: String,
    #[serde(default)]
    trigger_id: String,
    #[serde(default)]
    context: Map<String, Value>,
}

fn action(config: &MattermostConfig, req: &HookRequest) -> Result<HookResponse, Refusal> {
    let press: ActionRequest = serde_json::from_slice(&req.body)
        .map_err(|e| Refusal::bad(format!("the button press is not the JSON expected: {e}")))?;
    let context = |name: &str| {
        press
            .context
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let act = context("action");
    let subject_key = if act == COMMAND {
        "command"
    } else {
        "execution"
    };
    let (subject, root, mac) = (context(subject_key), context("root"), context("mac"));
    // An unsigned or forged press is anyone's: its claims are not recorded.
    if mac.is_empty() {
        return Err(Refusal::new(401, "the button press carries no signature"));
    }
    let expected = button_mac(config.action_secret.expose(), act, subject, root);
    if expected.is_empty() || !bool::from(mac.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(Refusal::new(
            401,
            "the button's signature does not match: not a button Switchboard posted (or posted with another `action_secret`)",
        ));
    }

    let text = if act == COMMAND {
        if subject.trim().is_empty() || subject.chars().any(char::is_control) {
            return Err(Refusal::bad(
                "the button's command is empty or not one line",
            ));
        }
        subject.to_owned()
    } else if ACTIONS.iter().any(|(a, ..)| *a == act) {
        let execution: ExecutionId = subject
            .parse()
            .map_err(|_| Refusal::bad(format!("`{subject}` is not an execution id")))?;
        format!("{act} {execution}")
    } else {
        return Err(Refusal::bad(format!("unknown button action `{act}`")));
    };
    if press.channel_id.is_empty() {
        return Err(Refusal::bad("the button press has no `channel_id`"));
    }
    let thread = [root, press.post_id.as_str()]
        .into_iter()
        .find(|t| !t.is_empty())
        .map(str::to_owned);
    let inbound = Inbound {
        delivery_id: Some(press.trigger_id.clone()).filter(|t| !t.is_empty()),
        sender: sender(config, &press.user_id)?,
        sender_name: Some(press.user_name.clone()).filter(|n| !n.is_empty()),
        sender_is_bot: false,
        authenticated: None,
        room: room(
            &press.channel_id,
            &press.channel_name,
            is_direct_channel_name(&press.channel_name),
        ),
        thread,
        message_id: None,
        text,
        mentioned: true,
    };
    Ok(HookResponse::ok_json(json!({}), vec![inbound]))
}
