//! Slack's three inbound payloads — Events API callbacks, slash commands and
//! interactive payloads (button presses) — translated into [`Inbound`]
//! messages. Both doors use these same functions: HTTP once the signature
//! is verified (`adapter.rs`), Socket Mode once the envelope is acknowledged
//! (`socket_mode.rs`).
//!
//! Slack writes message text in its own markup: `&`, `<` and `>` escaped,
//! mentions as `<@U123>` and what looked like a link as `<http://x|x>`.
//! [`plain_text`] turns that back into what the user typed, so
//! `restart nginx.example.com` arrives as typed.
//!
//! Not here: signatures, HTTP, websockets, and what the text means.

use serde::Deserialize;
use serde_json::Value;
use switchboard_core::chat::{ChatIdentity, Inbound, Room};

use super::PLATFORM;

/// What the payload cannot tell: the bot's own user id and the workspace.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Context<'a> {
    pub bot_user_id: Option<&'a str>,
    pub team_id: Option<&'a str>,
}

/// What an Events API body asks for.
#[derive(Debug, PartialEq)]
pub(super) enum Events {
    /// `url_verification`: echo the challenge.
    Challenge(String),
    /// Messages to hand on (often none: unknown events, edits, joins).
    Messages(Vec<Inbound>),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum EventsBody {
    UrlVerification {
        challenge: String,
    },
    EventCallback(EventCallback),
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct EventCallback {
    team_id: Option<String>,
    event_id: Option<String>,
    event: Value,
    #[serde(default)]
    authorizations: Option<Vec<Authorization>>,
}

/// Whom the event was delivered for: the bot user, in a bot's app.
#[derive(Deserialize)]
struct Authorization {
    user_id: Option<String>,
    is_bot: Option<bool>,
}

/// A `message` or `app_mention` event, the fields we read.
#[derive(Deserialize)]
struct MessageEvent {
    subtype: Option<String>,
    user: Option<String>,
    bot_id: Option<String>,
    text: Option<String>,
    channel: String,
    channel_type: Option<String>,
    ts: String,
    thread_ts: Option<String>,
}

/// Message subtypes that are something someone said; every other subtype
/// (`message_changed`, `message_deleted`, `channel_join`, …) is ignored.
const SAID: [&str; 4] = [
    "bot_message",
    "thread_broadcast",
    "file_share",
    "me_message",
];

/// Translates an Events API body (the HTTP request body).
pub(super) fn events(body: &[u8], ctx: Context<'_>) -> Result<Events, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("malformed JSON body: {e}"))?;
    events_value(value, ctx)
}

/// Translates an Events API body (a Socket Mode `events_api` payload).
pub(super) fn events_value(value: Value, ctx: Context<'_>) -> Result<Events, String> {
    let body: EventsBody =
        serde_json::from_value(value).map_err(|e| format!("malformed Events API body: {e}"))?;
    Ok(match body {
        EventsBody::UrlVerification { challenge } => Events::Challenge(challenge),
        EventsBody::EventCallback(callback) => {
            Events::Messages(event_callback(callback, ctx)?.into_iter().collect())
        }
        EventsBody::Other => Events::Messages(Vec::new()),
    })
}

fn event_callback(callback: EventCallback, ctx: Context<'_>) -> Result<Option<Inbound>, String> {
    let kind = match callback.event.get("type").and_then(Value::as_str) {
        Some(kind @ ("message" | "app_mention")) => kind.to_owned(),
        _ => return Ok(None),
    };
    let event: MessageEvent = serde_json::from_value(callback.event)
        .map_err(|e| format!("malformed `{kind}` event: {e}"))?;
    if event.subtype.as_deref().is_some_and(|s| !SAID.contains(&s)) {
        return Ok(None);
    }
    let bot = ctx.bot_user_id.map(str::to_owned).or_else(|| {
        callback
            .authorizations
            .unwrap_or_default()
            .into_iter()
            .find(|a| a.is_bot == Some(true))
            .and_then(|a| a.user_id)
    });
    let direct = event.channel_type.as_deref() == Some("im");
    let raw = event.text.unwrap_or_default();
    // A mention of the bot in a room comes twice, as `app_mention` and as
    // `message`: answer the first only.
    if kind == "message" && !direct && bot.as_deref().is_some_and(|b| mentions(&raw, b)) {
        return Ok(None);
    }
    let (text, mention) = strip_mention(&raw, bot.as_deref());
    let user = event
        .user
        .or_else(|| event.bot_id.clone())
        .ok_or_else(|| format!("`{kind}` event without `user`"))?;
    let sender_is_bot = event.bot_id.is_some()
        || event.subtype.as_deref() == Some("bot_message")
        || bot.as_deref() == Some(user.as_str());
    Ok(Some(Inbound {
        delivery_id: callback.event_id,
        sender: identity(callback.team_id.as_deref(), ctx, &user)?,
        sender_name: None,
        sender_is_bot,
        authenticated: None,
        room: Room {
            id: event.channel,
            name: None,
            direct,
        },
        thread: event.thread_ts,
        message_id: Some(event.ts),
        text,
        mentioned: mention || kind == "app_mention",
    }))
}

/// A slash command, as Slack posts it (form fields) or sends it over
/// Socket Mode (the same fields in JSON).
#[derive(Debug, Deserialize)]
pub(super) struct SlashCommand {
    team_id: Option<String>,
    channel_id: String,
    channel_name: Option<String>,
    user_id: String,
    user_name: Option<String>,
    #[serde(default)]
    text: String,
    trigger_id: Option<String>,
}

/// Reads a slash command's form body.
pub(super) fn command_form(body: &[u8]) -> Result<SlashCommand, String> {
    serde_urlencoded::from_bytes(body).map_err(|e| format!("malformed slash command form: {e}"))
}

/// Translates a slash command: its text is addressed to the bot.
pub(super) fn command(cmd: SlashCommand, ctx: Context<'_>) -> Result<Inbound, String> {
    let sender = identity(cmd.team_id.as_deref(), ctx, &cmd.user_id)?;
    Ok(Inbound {
        delivery_id: cmd.trigger_id,
        sender,
        sender_name: cmd.user_name,
        sender_is_bot: false,
        authenticated: None,
        room: room(cmd.channel_id, cmd.channel_name.as_deref()),
        thread: None,
        message_id: None,
        text: plain_text(&cmd.text).trim().to_owned(),
        mentioned: true,
    })
}

#[derive(Deserialize)]
struct InteractiveForm {
    payload: String,
}

/// Reads an interactive request's form body: one field, `payload`, of JSON.
pub(super) fn interactive_form(body: &[u8]) -> Result<Value, String> {
    let form: InteractiveForm = serde_urlencoded::from_bytes(body)
        .map_err(|e| format!("malformed interactive form: {e}"))?;
    serde_json::from_str(&form.payload)
        .map_err(|e| format!("malformed JSON in the `payload` field: {e}"))
}

#[derive(Deserialize)]
struct BlockActions {
    user: Actor,
    team: Option<Team>,
    channel: Option<Channel>,
    message: Option<Message>,
    #[serde(default)]
    actions: Vec<Action>,
}

#[derive(Deserialize)]
struct Actor {
    id: String,
    team_id: Option<String>,
    username: Option<String>,
}

#[derive(Deserialize)]
struct Team {
    id: String,
}

#[derive(Deserialize)]
struct Channel {
    id: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    ts: String,
    thread_ts: Option<String>,
}

#[derive(Deserialize)]
struct Action {
    action_id: String,
    value: Option<String>,
    action_ts: Option<String>,
}

/// The `action_id`s of the approval buttons (see `render.rs`).
pub(super) const APPROVE: &str = "approve";
pub(super) const REJECT: &str = "reject";
/// The start of the `action_id`s of buttons that say a command (an alert
/// card's `Ack`, `Silence 1h`, …): `command-0`, `command-1`, …
pub(super) const COMMAND: &str = "command";

/// Translates an interactive payload: a press of an approval button becomes
/// `approve <id>` or `reject <id>` from the presser, a press of a command
/// button the command its value holds (which Slack signed with the rest of
/// the payload). Other payloads and other buttons carry nothing.
pub(super) fn interactive(payload: Value, ctx: Context<'_>) -> Result<Vec<Inbound>, String> {
    if payload.get("type").and_then(Value::as_str) != Some("block_actions") {
        return Ok(Vec::new());
    }
    let p: BlockActions = serde_json::from_value(payload)
        .map_err(|e| format!("malformed `block_actions` payload: {e}"))?;
    let team = p.team.map(|t| t.id).or(p.user.team_id);
    let mut out = Vec::new();
    for action in p.actions {
        let verb = action.action_id.as_str();
        let value = action.value.unwrap_or_default();
        let text = if verb == APPROVE || verb == REJECT {
            if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "`{verb}` button whose value `{}` is not an execution id",
                    value.escape_debug()
                ));
            }
            format!("{verb} {value}")
        } else if verb
            .strip_prefix(COMMAND)
            .is_some_and(|n| n.starts_with('-'))
        {
            if value.trim().is_empty() || value.chars().any(char::is_control) {
                return Err(format!(
                    "`{verb}` button whose value `{}` is not a command",
                    value.escape_debug()
                ));
            }
            value
        } else {
            continue;
        };
        let channel = p
            .channel
            .as_ref()
            .ok_or_else(|| format!("`{verb}` button pressed outside a channel"))?;
        out.push(Inbound {
            delivery_id: action.action_ts.map(|ts| format!("{ts}:{}", p.user.id)),
            sender: identity(team.as_deref(), ctx, &p.user.id)?,
            sender_name: p.user.username.clone(),
            sender_is_bot: false,
            authenticated: None,
            room: room(channel.id.clone(), channel.name.as_deref()),
            thread: p
                .message
                .as_ref()
                .map(|m| m.thread_ts.clone().unwrap_or_else(|| m.ts.clone())),
            message_id: None,
            text,
            mentioned: true,
        });
    }
    Ok(out)
}

fn identity(team: Option<&str>, ctx: Context<'_>, user: &str) -> Result<ChatIdentity, String> {
    let team = team
        .filter(|t| !t.is_empty())
        .or(ctx.team_id)
        .ok_or_else(|| {
            "the payload names no workspace (`team_id`) and none is configured or learned"
                .to_owned()
        })?;
    ChatIdentity::new(PLATFORM, team, user)
}

/// A room as slash commands and buttons name it: `#name`, or a direct
/// conversation (Slack's channel name `directmessage`). Older payloads call
/// every private channel `privategroup`: that names nothing, and is left
/// for [`ChatAdapter::complete`](crate::chat::ChatAdapter::complete) to
/// learn.
fn room(id: String, name: Option<&str>) -> Room {
    match name {
        Some("directmessage") => Room {
            id,
            name: None,
            direct: true,
        },
        Some("privategroup") | None => Room {
            id,
            name: None,
            direct: false,
        },
        Some(name) => Room {
            id,
            name: room_name(name),
            direct: false,
        },
    }
}

/// A channel's name as policies see it, `#ops`, when it is spelt as Slack
/// spells channel names (letters, digits, `-`, `_` and `.`, at most 80);
/// anything else names no room.
pub(super) fn room_name(name: &str) -> Option<String> {
    let spelt = !name.is_empty()
        && name.chars().count() <= 80
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    spelt.then(|| format!("#{name}"))
}

/// Which payload a refused request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Payload {
    Events,
    Command,
    Interactive,
}

impl Payload {
    /// The payload a Socket Mode envelope of this `type` carries.
    pub(super) fn of_envelope(kind: &str) -> Option<Self> {
        match kind {
            "events_api" => Some(Self::Events),
            "slash_commands" => Some(Self::Command),
            "interactive" => Some(Self::Interactive),
            _ => None,
        }
    }
}

/// The sender a verified request names, read as loosely as can be, for the
/// audit record of its refusal: the `team` and `user` of an Events API
/// body, a slash command form or an interactive form. `None` when it names
/// no one, or no one for sure (a form field given twice). Only ever called
/// once the signature has been verified.
pub(super) fn claimed_sender(
    payload: Payload,
    body: &[u8],
    ctx: Context<'_>,
) -> Option<ChatIdentity> {
    let value = match payload {
        Payload::Events => serde_json::from_slice(body).ok()?,
        Payload::Command => form_object(body)?,
        Payload::Interactive => {
            let form = form_object(body)?;
            serde_json::from_str(form.get("payload")?.as_str()?).ok()?
        }
    };
    claimed_in(payload, &value, ctx)
}

/// The sender a payload (already JSON: over Socket Mode, or read from the
/// body) names; see [`claimed_sender`].
pub(super) fn claimed_in(
    payload: Payload,
    value: &Value,
    ctx: Context<'_>,
) -> Option<ChatIdentity> {
    let text = |pointer: &str| value.pointer(pointer).and_then(Value::as_str);
    let (team, user) = match payload {
        Payload::Events => (text("/team_id"), text("/event/user")?),
        Payload::Command => (text("/team_id"), text("/user_id")?),
        Payload::Interactive => (
            text("/team/id").or_else(|| text("/user/team_id")),
            text("/user/id")?,
        ),
    };
    identity(team, ctx, user).ok()
}

/// A form as a JSON object of strings; `None` when unreadable or when a
/// field is given twice.
fn form_object(body: &[u8]) -> Option<Value> {
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    let mut object = serde_json::Map::new();
    for (key, value) in fields {
        if object.insert(key, Value::String(value)).is_some() {
            return None;
        }
    }
    Some(Value::Object(object))
}

/// Whether Slack text mentions `bot` anywhere.
fn mentions(raw: &str, bot: &str) -> bool {
    raw.contains(&format!("<@{bot}>")) || raw.contains(&format!("<@{bot}|"))
}

/// The text without a leading mention of the bot (and the `:` or `,`
/// people put after one), as the user typed it; and whether the mention
/// was there.
pub(super) fn strip_mention(raw: &str, bot: Option<&str>) -> (String, bool) {
    let text = raw.trim_start();
    let rest = bot.and_then(|bot| {
        let rest = text.strip_prefix("<@")?.strip_prefix(bot)?;
        match rest.strip_prefix('>') {
            Some(rest) => Some(rest),
            // The old form with a name: `<@U123|bot>`.
            None => rest.strip_prefix('|')?.split_once('>').map(|(_, r)| r),
        }
    });
    match rest {
        Some(rest) => {
            let rest = rest.trim_start();
            let rest = rest.strip_prefix([':', ',']).unwrap_or(rest).trim_start();
            (plain_text(rest).trim().to_owned(), true)
        }
        None => (plain_text(text).trim().to_owned(), false),
    }
}

/// Slack's markup turned back into what the user typed: `&lt;` → `<`,
/// `<http://a.example|a.example>` → `a.example`, `<@U123>` → `@U123`,
/// `<#C1|ops>` → `#ops`, `<!here>` → `@here`.
pub(super) fn plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&unescape(&rest[..start]));
        let inner = &rest[start + 1..];
        match inner.find('>') {
            Some(end) => {
                out.push_str(&unescape(&control(&inner[..end])));
                rest = &inner[end + 1..];
            }
            None => {
                out.push_str(&unescape(&rest[start..]));
                rest = "";
            }
        }
    }
    out.push_str(&unescape(rest));
    out
}

/// One `<…>` sequence as text.
fn control(inner: &str) -> String {
    let (target, label) = match inner.split_once('|') {
        Some((target, label)) => (target, Some(label)),
        None => (inner, None),
    };
    if let Some(user) = target.strip_prefix('@') {
        format!("@{}", label.unwrap_or(user))
    } else if let Some(channel) = target.strip_prefix('#') {
        format!("#{}", label.unwrap_or(channel))
    } else if let Some(special) = target.strip_prefix('!') {
        let name = special.split('^').next().unwrap_or(special);
        match (name, label) {
            ("here" | "channel" | "everyone", _) => format!("@{name}"),
            (_, Some(label)) => label.to_owned(),
            (_, None) => format!("@{name}"),
        }
    } else {
        label.unwrap_or(target).to_owned()
    }
}

/// Slack escapes exactly these three.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
