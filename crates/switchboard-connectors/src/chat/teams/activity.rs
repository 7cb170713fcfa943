//! Teams' outgoing-webhook requests, verified and translated. Each carries
//! `Authorization: HMAC <base64>`: the HMAC-SHA256 of the raw body with
//! the webhook's security token (base64-decoded) as the key, checked in
//! constant time against every configured token before anything is read.
//! A missing or wrong signature answers 401. The activity's `timestamp`
//! is signed with it: one further than `replay_window` (5 minutes) from
//! now is refused as a replay, and its `id` is the delivery id, so an
//! activity delivered again within the window runs once.
//!
//! The answer is a message activity Teams shows at once as the bot's
//! reply: an acknowledgement (Teams allows 5 seconds; runs take longer),
//! after which replies go to the channel's Workflows URL.
//!
//! Not here: anything sent to Teams afterwards (`workflows.rs`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use switchboard_core::Timestamp;
use switchboard_core::chat::{ChatIdentity, Inbound, Room};

use super::PLATFORM;
use super::config::TeamsConfig;
use crate::chat::{HookRequest, HookResponse};

/// Answers an outgoing webhook's request (any endpoint: each outgoing
/// webhook may be given its own, e.g. `/chat/teams/ops`).
pub(super) fn handle(config: &TeamsConfig, req: &HookRequest, now: Timestamp) -> HookResponse {
    activity(config, req, now)
        .unwrap_or_else(|(status, reason, claimed)| HookResponse::rejected(status, reason, claimed))
}

type Refusal = (u16, String, Option<ChatIdentity>);

/// Checks `Authorization: HMAC …` against every configured token.
pub(super) fn verify(config: &TeamsConfig, req: &HookRequest) -> Result<(), String> {
    let given = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("HMAC "))
        .ok_or("the request carries no `Authorization: HMAC …` signature")?;
    let given = STANDARD
        .decode(given.trim())
        .map_err(|_| "the request's HMAC signature is not base64")?;
    let mut found = false;
    for key in &config.security_tokens {
        // HMAC takes keys of any length: `new_from_slice` cannot fail.
        if let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose()) {
            mac.update(&req.body);
            found |= mac.verify_slice(&given).is_ok();
        }
    }
    if found {
        Ok(())
    } else {
        Err(
            "the request's HMAC signature does not match any of `chat.teams.security_tokens`"
                .to_owned(),
        )
    }
}

/// The parts of an activity Switchboard reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Activity {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    text: String,
    from: From,
    #[serde(default)]
    conversation: Option<Conversation>,
    #[serde(default)]
    channel_data: Option<ChannelData>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct From {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    aad_object_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Conversation {
    #[serde(default)]
    id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChannelData {
    #[serde(default)]
    teams_channel_id: Option<String>,
    #[serde(default)]
    channel: Option<Named>,
    #[serde(default)]
    tenant: Option<Named>,
}

#[derive(Debug, Deserialize)]
struct Named {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

fn activity(
    config: &TeamsConfig,
    req: &HookRequest,
    now: Timestamp,
) -> Result<HookResponse, Refusal> {
    // A request without the right signature is anyone's: its claims are
    // not recorded against a user.
    verify(config, req).map_err(|reason| (401, reason, None))?;
    let bad = |reason: String| (400, reason, None);
    let activity: Activity = serde_json::from_slice(&req.body)
        .map_err(|e| bad(format!("the body is not the Teams activity expected: {e}")))?;
    let data = activity.channel_data.unwrap_or_default();
    let tenant = data
        .tenant
        .and_then(|t| t.id)
        .or_else(|| config.tenant.clone())
        .ok_or_else(|| bad("the activity names no tenant (`channelData.tenant.id`) and `chat.teams.tenant` is not set".to_owned()))?;
    let user = activity
        .from
        .aad_object_id
        .ok_or_else(|| bad("the activity's sender has no `aadObjectId`".to_owned()))?;
    let sender = ChatIdentity::new(PLATFORM, tenant.as_str(), user.as_str())
        .map_err(|_| bad(format!("`{tenant}/{user}` is not a Teams user")))?;
    let claimed = Some(sender.clone());
    let bad = |reason: String| (400, reason, claimed.clone());

    let sent = activity
        .timestamp
        .as_deref()
        .and_then(Timestamp::parse_rfc3339)
        .ok_or_else(|| bad("the activity has no `timestamp` (RFC 3339)".to_owned()))?;
    let away = (now.micros() - sent.micros()) / 1_000_000;
    let window = i64::try_from(config.replay_window.as_secs()).unwrap_or(i64::MAX);
    if away.saturating_abs() > window {
        // A replay is refused without recording its claim: whoever
        // captured the request may be replaying it.
        return Err((
            401,
            format!(
                "the activity's timestamp is {away}s away from now, more than the {window}s allowed: refused as a replay"
            ),
            None,
        ));
    }
    if activity.kind != "message" {
        return Err(bad(format!(
            "activities of type `{}` are not handled (only `message`)",
            activity.kind
        )));
    }
    if activity.id.is_empty() {
        return Err(bad("the activity has no `id`".to_owned()));
    }
    // The channel; a conversation id of a channel thread ends in
    // `;messageid=…`.
    let channel = data.channel.as_ref();
    let room_id = channel
        .and_then(|c| c.id.clone())
        .or(data.teams_channel_id)
        .or_else(|| {
            activity
                .conversation
                .as_ref()
                .and_then(|c| c.id.split(';').next().map(str::to_owned))
        })
        .filter(|id| !id.is_empty())
        .ok_or_else(|| bad("the activity names no channel".to_owned()))?;
    let name = config
        .rooms
        .get(&room_id)
        .and_then(|r| r.name.clone())
        .or_else(|| channel.and_then(|c| c.name.clone()))
        .filter(|n| !n.is_empty())
        .map(|n| format!("#{n}"));
    let text = strip_markup(&activity.text);
    let replies_go = if config.webhook_for(&room_id).is_some() {
        "replies follow in this channel"
    } else {
        "but no reply can follow: this channel has no `webhook_url` in `[chat.teams]`"
    };
    let ack = format!("Received `{}`; {replies_go}.", text.replace('`', "'"));
    let inbound = Inbound {
        delivery_id: Some(activity.id.clone()),
        sender,
        sender_name: activity.from.name,
        sender_is_bot: false,
        authenticated: None,
        room: Room {
            id: room_id,
            name,
            direct: false,
        },
        thread: None,
        message_id: Some(activity.id),
        text,
        // An outgoing webhook is called only when it is @mentioned.
        mentioned: true,
    };
    Ok(HookResponse::ok_json(
        json!({ "type": "message", "text": ack }),
        vec![inbound],
    ))
}

/// The text without its `<at>…</at>` mentions and other tags, with the
/// HTML entities Teams uses decoded, on one line.
pub(super) fn strip_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        let Some(end) = tag.find('>') else {
            out.push_str(tag);
            rest = "";
            break;
        };
        rest = if tag.starts_with("<at>") {
            // The mention and its name both go.
            match tag.find("</at>") {
                Some(close) => &tag[close + "</at>".len()..],
                None => &tag[end + 1..],
            }
        } else {
            &tag[end + 1..]
        };
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}
