//! The XMPP adapter: one client connection (STARTTLS, SASL) for the bot's
//! account, in the configured multi-user chat rooms (XEP-0045) and in
//! direct messages. A message addressed to the bot in a room
//! (`switchboard: uptime`, or the chat prefix) or said to it directly is
//! handed to the conversation; replies are plain-text messages, and a
//! progress message is corrected in place (XEP-0308).
//!
//! Identity: the server authenticates every account and stamps the sender
//! of a direct message, so a bare JID names its sender
//! (`xmpp:<domain>/<localpart>`). In a room only the occupant's nick is
//! seen, unless the room shows real JIDs (non-anonymous rooms, or the bot
//! a moderator): an occupant whose JID is not shown is
//! `xmpp:<room>/~<nick>`, which can never be linked, so they act as
//! `anonymous`.
//!
//! Files: `config.rs` (the `[chat.xmpp]` section), `stanzas.rs` (the pure
//! parts: identities, the rooms' occupants, reading a message, building
//! the stanzas to send), `connector.rs` (TCP and STARTTLS with the trust
//! the section names), `adapter.rs` (the connection and the outlet) and
//! `tests.rs`. Nothing here decides what a message means.

mod adapter;
mod config;
mod connector;
mod stanzas;
#[cfg(test)]
mod tests;

pub use adapter::XmppAdapter;
pub use config::{XmppConfig, XmppFile};

/// The platform's name in identities and origins.
pub const PLATFORM: &str = "xmpp";
