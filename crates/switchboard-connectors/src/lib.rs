//! Switchboard's protocol adapters: each translates one outside protocol to
//! and from core types, and nothing more. Today: the chat platforms
//! (`chat/`). An adapter verifies what it receives (signatures, tokens,
//! replay windows) before anything else sees it.
//!
//! Deliberately not here: serving HTTP (the http crate routes requests to
//! [`chat::ChatAdapter::webhook`]), deciding what a message means or who may
//! do what (the engine's conversation), and storage of any kind.

pub mod chat;
