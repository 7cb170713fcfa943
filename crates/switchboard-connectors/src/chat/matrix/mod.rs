//! The Matrix adapter: a thin client of the client-server API (v3) on
//! `reqwest`, as one bot account on one homeserver. Messages come through
//! `/sync` long-polls (each from the `since` token of the one before); the
//! bot joins the rooms it is invited to; replies are sent with a
//! transaction id of their own, so that a send retried after a lost answer
//! is stored once; a reply to a message goes in that message's thread
//! (`m.thread`), and progress edits it (`m.replace`).
//!
//! Identity: the homeserver vouches for its users, so `@alice:example.org`
//! is the chat identity `matrix:example.org/alice`.
//!
//! End-to-end encrypted rooms are not supported: the bot cannot read them
//! (it holds no keys); it says so once in such a room.
//!
//! Files: `config.rs` (the `[chat.matrix]` section), `sync.rs` (the long
//! poll and reading its events), `adapter.rs` (the `/sync` loop and the
//! outlet: sending, editing, direct rooms), `tests.rs`. Nothing here
//! decides what a message means.

mod adapter;
mod config;
mod sync;
#[cfg(test)]
mod tests;

pub use adapter::{MatrixAdapter, MatrixOutlet};
pub use config::{MatrixConfig, MatrixFile};

/// The platform's name in identities and origins.
pub const PLATFORM: &str = "matrix";
