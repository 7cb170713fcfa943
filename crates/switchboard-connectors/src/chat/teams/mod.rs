//! The Microsoft Teams adapter. Teams reaches Switchboard through an
//! outgoing webhook (`POST /chat/teams/<any name>` when someone says
//! `@Switchboard uptime` in a channel of the team), signed with an HMAC of
//! the webhook's security token. Teams wants the answer within 5 seconds
//! in the response, so the response only acknowledges; every reply
//! (results, progress, approval requests) goes proactively to the
//! channel's incoming webhook — a Power Automate Workflows URL — as an
//! Adaptive Card.
//!
//! Files: `config.rs` (the `[chat.teams]` section), `adapter.rs` (the
//! [`ChatAdapter`](crate::chat::ChatAdapter)), `activity.rs` (inbound: the
//! signature, the replay window, the translation), `workflows.rs` (the
//! outlet), `render.rs` (replies as cards) and `tests.rs`.
//!
//! Deliberately not here: the Bot Framework (an Azure bot registration
//! with OAuth, which would allow threads, edits and buttons). Without it,
//! replies cannot be edited, threaded or carry working buttons: progress
//! comes as new messages and approvals are typed (`approve 42`).

mod activity;
mod adapter;
mod config;
mod render;
#[cfg(test)]
mod tests;
mod workflows;

pub use adapter::TeamsAdapter;
pub use config::{TeamsConfig, TeamsFile, TeamsRoom, TeamsRoomFile};
pub use workflows::TeamsOutlet;

/// The platform's name in routes, identities and origins.
pub const PLATFORM: &str = "teams";
