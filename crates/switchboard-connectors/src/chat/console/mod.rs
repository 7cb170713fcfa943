//! The console: the chat of the web UI and of `switchboard chat` in a
//! terminal. Both send text to `POST /api/v1/chat` as an authenticated API
//! caller, so there is no signature to check and no identity to link; the
//! replies the conversation engine makes are streamed back as events.

mod adapter;
#[cfg(test)]
mod tests;

pub use adapter::{ConsoleEvent, ConsoleOutlet};
