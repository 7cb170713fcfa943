//! The ChatOps-RPC provider: GitHub's Chatops RPC protocol (version 3),
//! through which an existing Hubot (with `hubot-chatops-rpc`) drives
//! Switchboard. Hubot fetches a listing of methods (`GET /_chatops`), each
//! a regex with named groups made from one alias of the catalog; when a
//! typed line matches one, it posts the named groups as parameters to the
//! method's path (`POST /_chatops/<method>`) and shows the answer in the
//! room. Every request is signed with Hubot's RSA key.
//!
//! Owns: the `[chatops_rpc]` section (`config.rs`), the signature, its
//! timestamp window and the keys (`signature.rs`), the listing made from
//! the catalog's aliases (`listing.rs`), and the wire format of
//! invocations and answers (`wire.rs`).
//!
//! Not here: remembering nonces (the store, through the engine), who the
//! user is, whether they may run the method and running it (the engine),
//! and HTTP (the http crate's `_chatops` routes hand over the raw request).

mod config;
mod listing;
mod signature;
#[cfg(test)]
mod tests;
mod wire;

pub use config::{ChatopsRpcConfig, ChatopsRpcFile, UserField};
pub use listing::{Listing, Method, ResolvedMethod, Steer, listing, method_regex, resolve_method};
pub use signature::{
    MAX_SKEW, Refusal, SIGNATURE_HEADER, Verified, Verifier, parse_signature_header, signing_string,
};
pub use wire::{Answer, Button, ErrorCode, Invocation, RpcError, parse_invocation};

/// The origin's platform of every request that comes through this door:
/// `chat:chatops-rpc:<room>`.
pub const ORIGIN_PLATFORM: &str = "chatops-rpc";

/// The protocol version this provider speaks.
pub const VERSION: u32 = 3;
