//! The Slack adapter. Slack reaches Switchboard over HTTP — the Events API
//! (`/chat/slack/events`), slash commands (`/chat/slack/commands`) and
//! button presses (`/chat/slack/interactive`), each checked against the
//! app's signing secret — or over Socket Mode, a websocket Switchboard
//! opens with the app-level token. Replies go out through the Web API as
//! the bot, in `section` blocks of mrkdwn, with approval buttons.
//!
//! Files: `config.rs` (the `[chat.slack]` section), `adapter.rs` (the
//! [`ChatAdapter`](crate::chat::ChatAdapter) and signature checks),
//! `inbound.rs` (payloads to messages, for both doors), `rooms.rs` (room
//! names for events, which carry only channel ids), `socket_mode.rs`,
//! `web_api.rs` (the outlet), `render.rs` (replies as blocks) and
//! `tests.rs`. Nothing here decides what a message means.

mod adapter;
mod config;
mod inbound;
mod render;
mod rooms;
mod socket_mode;
#[cfg(test)]
mod tests;
mod web_api;

pub use adapter::SlackAdapter;
pub use config::{DEFAULT_API_BASE, SlackConfig, SlackFile};

/// The platform's name in routes, identities and origins.
pub const PLATFORM: &str = "slack";
