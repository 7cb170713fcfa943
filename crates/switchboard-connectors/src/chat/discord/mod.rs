//! The Discord adapter. Discord reaches Switchboard through its
//! interactions endpoint, `POST /chat/discord/interactions`: slash commands
//! (`/switchboard text:uptime`) and presses of the buttons Switchboard
//! posted, each signed with Ed25519 by Discord. Every interaction is
//! answered at once with a deferred response; the replies go out through
//! the interaction's webhook (`PATCH …/messages/@original`, then
//! follow-ups), in Discord's Markdown, with approval buttons.
//!
//! Files: `config.rs` (the `[chat.discord]` section), `adapter.rs` (the
//! [`ChatAdapter`](crate::chat::ChatAdapter)), `interactions.rs` (inbound:
//! the signature, the replay window, the translation), `webhooks.rs` (the
//! outlet), `render.rs` (replies as message bodies) and `tests.rs`.
//!
//! Deliberately not here: the gateway (a websocket bot that hears every
//! message), `serenity` or any SDK, and a bot token. Switchboard speaks only
//! when spoken to: its replies ride on interaction tokens, which Discord
//! honours for 15 minutes, so a reply later than that (a long run's result,
//! an alert group in a room) cannot be delivered, and says so in the log.

mod adapter;
mod config;
mod interactions;
mod render;
#[cfg(test)]
mod tests;
mod webhooks;

pub use adapter::DiscordAdapter;
pub use config::{DEFAULT_API_BASE, DiscordConfig, DiscordFile};
pub use webhooks::DiscordOutlet;

/// The platform's name in routes, identities and origins.
pub const PLATFORM: &str = "discord";
