//! Reading a `/sync` answer: the invitations, the messages said in joined
//! rooms (as [`Inbound`]s), the rooms' aliases, and the rooms whose
//! messages are encrypted. Pure, so each rule is tested on its own; the
//! answer is read leniently (a field missing or of another shape leaves
//! that event out, never the batch).
//!
//! Not here: asking for it, and acting on it (`client.rs`).

use std::collections::HashSet;

use serde_json::Value;
use switchboard_core::chat::{ChatIdentity, Inbound, Room};

use super::PLATFORM;

/// What one `/sync` said.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Batch {
    /// The `since` of the next `/sync`.
    pub next_batch: String,
    /// Rooms the bot is invited to: (room, who invited, a direct chat?).
    pub invites: Vec<(String, Option<String>, bool)>,
    pub messages: Vec<Inbound>,
    /// (room, alias) for rooms whose canonical alias was set.
    pub aliases: Vec<(String, String)>,
    /// Rooms where an encrypted message was said.
    pub encrypted: Vec<String>,
}

/// `@alice:example.org` → (`alice`, `example.org`).
pub(super) fn split_user_id(id: &str) -> Option<(&str, &str)> {
    let (local, server) = id.strip_prefix('@')?.split_once(':')?;
    (!local.is_empty() && !server.is_empty()).then_some((local, server))
}

/// The chat identity of a Matrix user, if its id fits one.
pub(super) fn identity(user_id: &str) -> Option<ChatIdentity> {
    let (local, server) = split_user_id(user_id)?;
    ChatIdentity::new(PLATFORM, server, local).ok()
}

/// The Matrix user id of a chat identity.
pub(super) fn user_id(identity: &ChatIdentity) -> String {
    format!("@{}:{}", identity.user, identity.workspace)
}

fn text<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn events<'v>(room: &'v Value, section: &str) -> impl Iterator<Item = &'v Value> {
    room.pointer(&format!("/{section}/events"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Reads one `/sync` answer for the bot `me`; `direct` are the rooms known
/// to be direct chats with it. `Err` only when the answer is no sync at all.
pub(super) fn read(body: &Value, me: &str, direct: &HashSet<String>) -> Result<Batch, String> {
    let next_batch = text(body, "/next_batch")
        .ok_or("the /sync answer has no next_batch")?
        .to_owned();
    let mut batch = Batch {
        next_batch,
        ..Batch::default()
    };
    if let Some(invites) = body.pointer("/rooms/invite").and_then(Value::as_object) {
        for (room, state) in invites {
            let mine = events(state, "invite_state").find(|e| {
                text(e, "/type") == Some("m.room.member") && text(e, "/state_key") == Some(me)
            });
            let inviter = mine.and_then(|e| text(e, "/sender")).map(str::to_owned);
            let is_direct = mine
                .and_then(|e| e.pointer("/content/is_direct"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            batch.invites.push((room.clone(), inviter, is_direct));
        }
    }
    let Some(joined) = body.pointer("/rooms/join").and_then(Value::as_object) else {
        return Ok(batch);
    };
    let my_name = split_user_id(me).map_or(me, |(local, _)| local);
    for (room_id, room) in joined {
        for e in events(room, "state").chain(events(room, "timeline")) {
            match text(e, "/type") {
                Some("m.room.canonical_alias") => {
                    if let Some(alias) = text(e, "/content/alias") {
                        batch.aliases.push((room_id.clone(), alias.to_owned()));
                    }
                }
                Some("m.room.encrypted") if !batch.encrypted.contains(room_id) => {
                    batch.encrypted.push(room_id.clone());
                }
                _ => {}
            }
        }
        let is_direct = direct.contains(room_id);
        for e in events(room, "timeline") {
            if let Some(m) = message(e, room_id, me, my_name, is_direct) {
                batch.messages.push(m);
            }
        }
    }
    Ok(batch)
}

/// One timeline event as a message to the bot, if it is a text message of
/// someone else (not an edit).
fn message(e: &Value, room_id: &str, me: &str, my_name: &str, direct: bool) -> Option<Inbound> {
    if text(e, "/type") != Some("m.room.message") || text(e, "/content/msgtype") != Some("m.text") {
        return None;
    }
    let sender = text(e, "/sender")?;
    if sender == me {
        return None;
    }
    let relation = text(e, "/content/m.relates_to/rel_type");
    if relation == Some("m.replace") {
        return None;
    }
    let body = text(e, "/content/body")?;
    let event_id = text(e, "/event_id")?;
    let thread = (relation == Some("m.thread"))
        .then(|| text(e, "/content/m.relates_to/event_id"))
        .flatten()
        .map(str::to_owned);
    let mentions_me = e
        .pointer("/content/m.mentions/user_ids")
        .and_then(Value::as_array)
        .is_some_and(|ids| ids.iter().any(|id| id.as_str() == Some(me)));
    let (text, addressed) = match crate::chat::addressed_to(body, my_name) {
        Some(rest) => (rest, true),
        None => (body, false),
    };
    Some(Inbound {
        delivery_id: Some(event_id.to_owned()),
        sender: identity(sender)?,
        sender_name: Some(sender.to_owned()),
        sender_is_bot: false,
        authenticated: None,
        room: Room {
            id: room_id.to_owned(),
            name: None,
            direct,
        },
        thread,
        message_id: Some(event_id.to_owned()),
        text: text.trim().to_owned(),
        mentioned: direct || addressed || mentions_me,
    })
}
