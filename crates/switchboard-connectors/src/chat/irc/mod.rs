//! The IRC adapter: one client connection (TLS, SASL PLAIN or EXTERNAL)
//! to one network, in the configured channels and in private messages.
//! A message addressed to the bot (`switchboard: uptime`, or the chat
//! prefix) or said to it privately is handed to the conversation; replies
//! are plain text lines, paced by a flood limit, and long ones are folded
//! to their first lines and a link to the execution's web page.
//!
//! Identity: IRC nicks are not identities — anyone can take a free nick.
//! Only a services account the server vouches for (the `account` message
//! tag of IRCv3 `account-tag`) names the sender (`irc:<network>/<account>`);
//! a sender without one is `irc:<network>/~<nick>`, which can never be
//! linked, so they act as `anonymous`.
//!
//! Files: `config.rs` (the `[chat.irc]` section), `session.rs` (the pure
//! parts: capability and SASL negotiation, reading a message, folding a
//! reply into lines), `adapter.rs` (the connection and the outlet) and
//! `tests.rs`. Nothing here decides what a message means.

mod adapter;
mod config;
mod session;
#[cfg(test)]
mod tests;

pub use adapter::IrcAdapter;
pub use config::{IrcConfig, IrcFile, Sasl};

/// The platform's name in identities and origins.
pub const PLATFORM: &str = "irc";
