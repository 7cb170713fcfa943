//! The Mattermost adapter. Messages come in three ways: slash commands and
//! outgoing webhooks (HTTP requests to `/chat/mattermost/commands` and
//! `/chat/mattermost/webhook`, checked against their tokens), and the
//! bot's websocket (`posted` events). Approval buttons call back on
//! `/chat/mattermost/actions`, checked by the signature they carry.
//! Replies go out through the REST API v4 as the bot account, in
//! Mattermost's Markdown.
//!
//! Files: `config.rs` (the `[chat.mattermost]` section), `adapter.rs` (the
//! [`ChatAdapter`](crate::chat::ChatAdapter)), `hooks.rs` (inbound HTTP),
//! `websocket.rs`, `rest.rs` (the outlet), `render.rs` (replies as posts)
//! and `tests.rs`. Nothing here decides what a message means.

mod adapter;
mod config;
mod hooks;
mod render;
mod rest;
#[cfg(test)]
mod tests;
mod websocket;

pub use adapter::MattermostAdapter;
pub use config::{MattermostConfig, MattermostFile};
pub use rest::{BotIdentity, MattermostOutlet};

/// The platform's name in routes, identities and origins.
pub const PLATFORM: &str = "mattermost";
