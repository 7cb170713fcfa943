//! The pure parts of an XMPP session: chat identities from JIDs
//! ([`identity`], [`occupant`], [`jid_of`]), the rooms the bot is in and
//! who is in them ([`Rooms`]: joining, reading presences, reading a
//! message into an [`Inbound`]), and the message stanzas replies are sent
//! as ([`message`]). No sockets here, so each is tested on its own.
//!
//! Not here: the connection and the order of things on it (`adapter.rs`).

use std::collections::HashMap;

use switchboard_core::chat::{ChatIdentity, Inbound, Room};
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::message::{Id, Lang, Message, MessageType, Thread};
use tokio_xmpp::parsers::message_correct::Replace;
use tokio_xmpp::parsers::muc::Muc;
use tokio_xmpp::parsers::muc::muc::History;
use tokio_xmpp::parsers::muc::user::{MucUser, Status};
use tokio_xmpp::parsers::presence::{Presence, Type as PresenceType};

use super::PLATFORM;

const NS_DELAY: &str = "urn:xmpp:delay";
const NS_LEGACY_DELAY: &str = "jabber:x:delay";
const NS_CORRECTION: &str = "urn:xmpp:message-correct:0";
const NS_STANZA_ID: &str = "urn:xmpp:sid:0";
const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// `s` as one part of a chat identity: visible ASCII other than `/`, `:`
/// and `%` kept, every other byte as `%XX` — so any JID part or nick maps
/// to exactly one identity, and back.
pub(super) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_graphic() && !matches!(b, b'/' | b':' | b'%') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn decode(s: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// The account `jid` as a chat identity: `xmpp:<domain>/<localpart>`.
/// `None` for a JID without a localpart (a server or a service).
pub(super) fn identity(jid: &BareJid) -> Option<ChatIdentity> {
    let node = jid.node()?;
    ChatIdentity::new(
        PLATFORM,
        encode(jid.domain().as_str()),
        encode(node.as_str()),
    )
    .ok()
}

/// An occupant of `room` known only by its nick: `xmpp:<room>/~<nick>`,
/// which is never linked.
pub(super) fn occupant(room: &BareJid, nick: &str) -> Option<ChatIdentity> {
    ChatIdentity::new(
        PLATFORM,
        encode(room.as_str()),
        format!("~{}", encode(nick)),
    )
    .ok()
}

/// The account an identity names; `None` for an occupant known only by
/// its nick, or an identity of another platform.
pub(super) fn jid_of(identity: &ChatIdentity) -> Option<BareJid> {
    if identity.platform != PLATFORM || !identity.is_verified() {
        return None;
    }
    let jid = format!(
        "{}@{}",
        decode(&identity.user)?,
        decode(&identity.workspace)?
    );
    BareJid::new(&jid).ok()
}

/// The presence that joins `room` as `nick`, asking for no history: the
/// bot must never run a command said before it came in.
pub(super) fn join(room: &BareJid, nick: &str) -> Option<Presence> {
    let to = room.with_resource_str(nick).ok()?;
    Some(
        Presence::available()
            .with_to(Jid::from(to))
            .with_payload(Muc::new().with_history(History::new().with_maxstanzas(0))),
    )
}

/// A reply: a `groupchat` message to a room, a `chat` message to anyone
/// else; in `thread` when given; correcting message `replace` (XEP-0308)
/// when given.
pub(super) fn message(
    to: Jid,
    groupchat: bool,
    id: &str,
    body: String,
    thread: Option<&str>,
    replace: Option<&str>,
) -> Message {
    let kind = if groupchat {
        MessageType::Groupchat
    } else {
        MessageType::Chat
    };
    let mut message = Message::new_with_type(kind, Some(to)).with_body(Lang::new(), body);
    message.id = Some(Id(id.to_owned()));
    message.thread = thread.map(|id| Thread {
        parent: None,
        id: id.to_owned(),
    });
    if let Some(original) = replace {
        message = message.with_payload(Replace {
            id: Id(original.to_owned()),
        });
    }
    message
}

/// One room the bot is configured to be in.
#[derive(Debug)]
struct Occupancy {
    /// The nick the bot asked for or was given.
    nick: String,
    /// The room confirmed the bot is in.
    joined: bool,
    /// Who is in, by nick, with their account when the room shows it.
    occupants: HashMap<String, Option<BareJid>>,
}

/// What a presence from a room changed for the bot.
#[derive(Debug, PartialEq)]
pub(super) enum RoomEvent {
    /// The room confirmed the bot is in.
    Joined(BareJid),
    /// The bot was put out (kicked, banned, the room closed): join again
    /// after a pause.
    Removed { room: BareJid, why: String },
    /// The nick is taken: join again with this presence.
    NickTaken(Presence),
}

/// The rooms the bot is configured to be in, and who is in them.
#[derive(Debug)]
pub(super) struct Rooms {
    rooms: HashMap<BareJid, Occupancy>,
    nick: String,
}

impl Rooms {
    pub(super) fn new(rooms: &[BareJid], nick: &str) -> Self {
        Self {
            rooms: rooms
                .iter()
                .map(|room| {
                    let occupancy = Occupancy {
                        nick: nick.to_owned(),
                        joined: false,
                        occupants: HashMap::new(),
                    };
                    (room.clone(), occupancy)
                })
                .collect(),
            nick: nick.to_owned(),
        }
    }

    /// Whether `jid` is one of the rooms.
    pub(super) fn is_room(&self, jid: &BareJid) -> bool {
        self.rooms.contains_key(jid)
    }

    /// The presences that (re)join every room, after a new session: what
    /// was known of them is forgotten.
    pub(super) fn join_all(&mut self) -> Vec<Presence> {
        self.rooms
            .iter_mut()
            .filter_map(|(room, occupancy)| {
                occupancy.nick.clone_from(&self.nick);
                occupancy.joined = false;
                occupancy.occupants.clear();
                join(room, &occupancy.nick)
            })
            .collect()
    }

    /// The presence that joins `room` again (after it put the bot out).
    pub(super) fn rejoin(&mut self, room: &BareJid) -> Option<Presence> {
        let occupancy = self.rooms.get_mut(room)?;
        occupancy.joined = false;
        occupancy.occupants.clear();
        join(room, &occupancy.nick)
    }

    /// Reads a presence: who came, went or changed nick, and what it means
    /// for the bot itself.
    pub(super) fn on_presence(&mut self, presence: &Presence) -> Option<RoomEvent> {
        let from = presence.from.as_ref()?;
        let nick = from.resource()?.as_str().to_owned();
        let room = from.to_bare();
        let occupancy = self.rooms.get_mut(&room)?;
        let user = presence
            .payloads
            .iter()
            .find_map(|p| MucUser::try_from(p.clone()).ok());
        let statuses = user.as_ref().map(|u| u.status.as_slice()).unwrap_or(&[]);
        let item = user.as_ref().and_then(|u| u.items.first());
        let itself = statuses.contains(&Status::SelfPresence) || nick == occupancy.nick;
        match presence.type_ {
            PresenceType::Error if itself && !occupancy.joined => {
                if !stanza_error_is(&presence.payloads, "conflict") {
                    return Some(RoomEvent::Removed {
                        room,
                        why: "the room refused the bot".to_owned(),
                    });
                }
                occupancy.nick.push('_');
                join(&room, &occupancy.nick).map(RoomEvent::NickTaken)
            }
            PresenceType::Unavailable => {
                let renamed = statuses
                    .contains(&Status::NewNick)
                    .then(|| item.and_then(|i| i.nick.clone()))
                    .flatten();
                let account = occupancy.occupants.remove(&nick).flatten();
                if let Some(new) = renamed {
                    if itself {
                        occupancy.nick.clone_from(&new);
                    }
                    occupancy.occupants.insert(new, account);
                    return None;
                }
                if !itself {
                    return None;
                }
                occupancy.joined = false;
                let why = if statuses.contains(&Status::Kicked) {
                    "kicked"
                } else if statuses.contains(&Status::Banned) {
                    "banned"
                } else {
                    "removed"
                };
                Some(RoomEvent::Removed {
                    room,
                    why: why.to_owned(),
                })
            }
            PresenceType::None => {
                let account = item.and_then(|i| i.jid.as_ref()).map(|j| j.to_bare());
                occupancy.occupants.insert(nick.clone(), account);
                if itself {
                    // The room may have given another nick (status 210).
                    occupancy.nick = nick;
                    if !occupancy.joined {
                        occupancy.joined = true;
                        return Some(RoomEvent::Joined(room));
                    }
                }
                None
            }
            _ => None,
        }
    }

    /// A message said to the bot, or in one of its rooms, as the
    /// conversation takes it; `None` for anything else: errors,
    /// headlines, messages without a body, the bot's own, history and
    /// offline messages (delayed), corrections, rooms it is not in.
    pub(super) fn inbound(&self, message: &Message, me: &BareJid) -> Option<Inbound> {
        if matches!(message.type_, MessageType::Error | MessageType::Headline)
            || message
                .payloads
                .iter()
                .any(|p| p.is("delay", NS_DELAY) || p.is("x", NS_LEGACY_DELAY))
            || message
                .payloads
                .iter()
                .any(|p| p.is("replace", NS_CORRECTION))
        {
            return None;
        }
        let (_, body) = message.get_best_body(vec![])?;
        let from = message.from.as_ref()?;
        let bare = from.to_bare();
        let (sender, sender_name, room, text, mentioned) = match self.rooms.get(&bare) {
            Some(occupancy) => {
                let nick = from.resource()?.as_str();
                if nick == occupancy.nick {
                    return None;
                }
                let sender = match occupancy.occupants.get(nick) {
                    Some(Some(account)) => identity(account)?,
                    _ => occupant(&bare, nick)?,
                };
                if message.type_ == MessageType::Groupchat {
                    let room = Room {
                        id: bare.to_string(),
                        name: Some(bare.to_string()),
                        direct: false,
                    };
                    match crate::chat::addressed_to(body, &occupancy.nick) {
                        Some(rest) => (sender, nick, room, rest.to_owned(), true),
                        None => (sender, nick, room, body.clone(), false),
                    }
                } else {
                    // A private message through the room: answered the
                    // same way, to the occupant.
                    let room = Room {
                        id: from.to_string(),
                        name: None,
                        direct: true,
                    };
                    (sender, nick, room, body.clone(), true)
                }
            }
            None if message.type_ == MessageType::Groupchat || bare == *me => return None,
            None => {
                let room = Room {
                    id: bare.to_string(),
                    name: None,
                    direct: true,
                };
                let name = bare.node()?.as_str();
                (identity(&bare)?, name, room, body.clone(), true)
            }
        };
        // The room's own id for the message (XEP-0359) when it gives one;
        // else the sender's id, which is only unique per sender.
        let delivery_id = message
            .payloads
            .iter()
            .find(|p| p.is("stanza-id", NS_STANZA_ID) && p.attr("by") == Some(bare.as_str()))
            .and_then(|p| p.attr("id"))
            .map(|id| format!("{bare}#{id}"))
            .or_else(|| message.id.as_ref().map(|id| format!("{from}#{}", id.0)));
        Some(Inbound {
            delivery_id,
            sender,
            sender_name: Some(sender_name.to_owned()),
            sender_is_bot: false,
            authenticated: None,
            room,
            thread: message.thread.as_ref().map(|t| t.id.clone()),
            message_id: message.id.as_ref().map(|id| id.0.clone()),
            text: text.trim().to_owned(),
            mentioned,
        })
    }
}

/// Whether a stanza's `<error/>` carries condition `condition`.
fn stanza_error_is(payloads: &[Element], condition: &str) -> bool {
    payloads
        .iter()
        .filter(|p| p.name() == "error")
        .any(|e| e.children().any(|c| c.is(condition, NS_STANZAS)))
}
