//! Discord's interactions, verified and translated. Each request to
//! `/chat/discord/interactions` carries `X-Signature-Ed25519` (hex) and
//! `X-Signature-Timestamp`; the signature is checked with the
//! application's public key over the timestamp followed by the raw body,
//! before anything is read. A missing or bad signature answers 401 (Discord
//! sends invalid ones on purpose to check this), and so does a timestamp
//! further than `replay_window` from now. The interaction's id is the
//! delivery id, so an interaction delivered again runs once.
//!
//! * PING (type 1) is answered `{"type": 1}`.
//! * An application command (type 2) and a button press (type 3) are
//!   answered `{"type": 5}` (a deferred message: Discord shows "thinking…"
//!   until the first reply replaces it) and handed on as a message whose
//!   thread is the interaction, where the outlet sends its replies.
//!
//! Not here: anything sent to Discord (`webhooks.rs`).

use ed25519_dalek::Signature;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::Timestamp;
use switchboard_core::chat::{ChatIdentity, Inbound, Room};

use super::PLATFORM;
use super::config::DiscordConfig;
use super::render::{APPROVE, COMMAND, REJECT};
use crate::chat::{HookRequest, HookResponse};

/// An interaction the outlet answers through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Interaction {
    pub id: String,
    pub token: String,
    pub user: String,
}

/// Answers a request to `/chat/discord/<endpoint>`; a verified command or
/// press also gives the interaction to answer through.
pub(super) fn handle(
    config: &DiscordConfig,
    endpoint: &str,
    req: &HookRequest,
    now: Timestamp,
) -> (HookResponse, Option<Interaction>) {
    if endpoint != "interactions" {
        let reason = format!("no such Discord endpoint `{endpoint}` (expected `interactions`)");
        return (HookResponse::rejected(404, reason, None), None);
    }
    match interaction(config, req, now) {
        Ok(answer) => answer,
        Err((status, reason)) => (HookResponse::rejected(status, reason, None), None),
    }
}

/// Checks the signature and its timestamp.
pub(super) fn verify(
    config: &DiscordConfig,
    req: &HookRequest,
    now: Timestamp,
) -> Result<(), (u16, String)> {
    let refuse = |reason: &str| Err((401, reason.to_owned()));
    let (Some(signature), Some(timestamp)) = (
        req.header("x-signature-ed25519"),
        req.header("x-signature-timestamp"),
    ) else {
        return refuse(
            "the interaction is not signed (no X-Signature-Ed25519 or X-Signature-Timestamp)",
        );
    };
    let Some(signature) = hex::decode(signature.trim())
        .ok()
        .and_then(|bytes| Signature::from_slice(&bytes).ok())
    else {
        return refuse("the interaction's signature is not 64 bytes of hex");
    };
    let mut signed = Vec::with_capacity(timestamp.len() + req.body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.extend_from_slice(&req.body);
    if config
        .public_key
        .verify_strict(&signed, &signature)
        .is_err()
    {
        return refuse("the interaction's signature does not match the application's public key");
    }
    let Ok(sent) = timestamp.trim().parse::<i64>() else {
        return refuse("the interaction's timestamp is not a number of seconds");
    };
    let away = (now.micros() / 1_000_000).saturating_sub(sent);
    let window = i64::try_from(config.replay_window.as_secs()).unwrap_or(i64::MAX);
    if away.saturating_abs() > window {
        return Err((
            401,
            format!(
                "the interaction's timestamp is {away}s away from now, more than the {window}s allowed: refused as a replay"
            ),
        ));
    }
    Ok(())
}

/// The parts of an interaction Switchboard reads.
#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    id: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    guild_id: Option<String>,
    #[serde(default)]
    channel_id: Option<String>,
    #[serde(default)]
    channel: Option<Channel>,
    #[serde(default)]
    member: Option<Member>,
    #[serde(default)]
    user: Option<User>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
struct Channel {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<u8>,
}

#[derive(Debug, Deserialize)]
struct Member {
    user: User,
}

#[derive(Debug, Deserialize)]
struct User {
    id: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    global_name: Option<String>,
    #[serde(default)]
    bot: bool,
}

#[derive(Debug, Deserialize)]
struct Data {
    #[serde(default)]
    name: String,
    #[serde(default)]
    options: Vec<CommandOption>,
    #[serde(default)]
    custom_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CommandOption {
    name: String,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    options: Vec<CommandOption>,
}

const PING: u8 = 1;
const APPLICATION_COMMAND: u8 = 2;
const MESSAGE_COMPONENT: u8 = 3;

fn interaction(
    config: &DiscordConfig,
    req: &HookRequest,
    now: Timestamp,
) -> Result<(HookResponse, Option<Interaction>), (u16, String)> {
    verify(config, req, now)?;
    let bad = |reason: String| (400, reason);
    let payload: Payload = serde_json::from_slice(&req.body)
        .map_err(|e| bad(format!("the interaction is not the JSON expected: {e}")))?;
    let text = match (payload.kind, &payload.data) {
        (PING, _) => return Ok((HookResponse::ok_json(json!({ "type": 1 }), vec![]), None)),
        (APPLICATION_COMMAND, Some(data)) => command_text(config, data),
        (MESSAGE_COMPONENT, Some(data)) => pressed(data.custom_id.as_deref().unwrap_or(""))
            .ok_or_else(|| bad("the button pressed is not one of Switchboard's".to_owned()))?,
        (APPLICATION_COMMAND | MESSAGE_COMPONENT, None) => {
            return Err(bad("the interaction has no `data`".to_owned()));
        }
        (other, _) => {
            return Err(bad(format!(
                "interactions of type {other} are not handled (only commands and buttons)"
            )));
        }
    };
    let user = payload
        .member
        .map(|m| m.user)
        .or(payload.user)
        .ok_or_else(|| bad("the interaction names no user".to_owned()))?;
    let workspace = payload.guild_id.as_deref().unwrap_or("@me");
    let sender = ChatIdentity::new(PLATFORM, workspace, user.id.as_str())
        .map_err(|_| bad(format!("`{workspace}/{}` is not a Discord user", user.id)))?;
    let channel_id = payload
        .channel_id
        .clone()
        .or_else(|| payload.channel.as_ref().and_then(|c| c.id.clone()))
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("the interaction names no channel".to_owned()))?;
    if payload.id.is_empty() || payload.token.is_empty() {
        return Err(bad("the interaction has no `id` or `token`".to_owned()));
    }
    let channel = payload.channel.as_ref();
    let room = Room {
        id: channel_id,
        name: channel
            .and_then(|c| c.name.as_deref())
            .filter(|n| !n.is_empty())
            .map(|n| format!("#{n}")),
        // Type 1 is a direct message; an interaction outside a guild is one too.
        direct: payload.guild_id.is_none() || channel.and_then(|c| c.kind) == Some(1),
    };
    let inbound = Inbound {
        delivery_id: Some(payload.id.clone()),
        sender,
        sender_name: user.global_name.or(user.username),
        sender_is_bot: user.bot,
        authenticated: None,
        room,
        // Replies go to the interaction: its thread is the interaction.
        thread: Some(payload.id.clone()),
        message_id: None,
        text,
        mentioned: true,
    };
    let answer = Interaction {
        id: payload.id,
        token: payload.token,
        user: user.id,
    };
    Ok((
        HookResponse::ok_json(json!({ "type": 5 }), vec![inbound]),
        Some(answer),
    ))
}

/// What a slash command says: the `text` option of the configured
/// command; any other command (or option) reads as its name followed by
/// `name=value` for each option.
fn command_text(config: &DiscordConfig, data: &Data) -> String {
    let mut words = Vec::new();
    if data.name != config.command {
        words.push(data.name.clone());
    }
    options_text(&data.options, &mut words);
    words.join(" ")
}

fn options_text(options: &[CommandOption], words: &mut Vec<String>) {
    for option in options {
        let value = match &option.value {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            // A subcommand (group): its name, then its own options.
            None => {
                words.push(option.name.clone());
                options_text(&option.options, words);
                continue;
            }
        };
        if option.name == "text" {
            words.push(value.trim().to_owned());
        } else if value.contains(char::is_whitespace) || value.is_empty() {
            words.push(format!(
                "{}=\"{}\"",
                option.name,
                value.replace('"', "\\\"")
            ));
        } else {
            words.push(format!("{}={value}", option.name));
        }
    }
}

/// The command a button of ours says, from its `custom_id`.
fn pressed(custom_id: &str) -> Option<String> {
    let (action, subject) = custom_id.split_once(':')?;
    match action {
        APPROVE | REJECT if subject.parse::<i64>().is_ok() => Some(format!("{action} {subject}")),
        COMMAND if !subject.trim().is_empty() && !subject.contains(char::is_control) => {
            Some(subject.to_owned())
        }
        _ => None,
    }
}
