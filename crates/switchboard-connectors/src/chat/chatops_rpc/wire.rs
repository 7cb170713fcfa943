//! Invocations and answers as they travel: the JSON Hubot posts to a
//! method's path, and what it is answered, either `{result, title?,
//! title_link?, color?, image_url?}` or a JSON-RPC style `{error: {code,
//! message}}`.
//!
//! Not here: what the method does (the engine) and the HTTP status, which
//! the route takes from [`RpcError::status`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The JSON-RPC error codes this provider answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The body is not JSON (-32700).
    Parse,
    /// The body is JSON but not an invocation, or too large (-32600).
    InvalidRequest,
    /// No such method (-32601).
    MethodNotFound,
    /// A parameter is unknown, missing or of the wrong type (-32602).
    InvalidParams,
    /// The run failed, or Switchboard could not run it (-32000).
    Failed,
    /// The policies do not permit it (-32001).
    Denied,
    /// The request's signature, timestamp or nonce was refused (-32002).
    Unauthenticated,
}

impl ErrorCode {
    pub fn code(self) -> i32 {
        match self {
            Self::Parse => -32700,
            Self::InvalidRequest => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::Failed => -32000,
            Self::Denied => -32001,
            Self::Unauthenticated => -32002,
        }
    }
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    pub code: ErrorCode,
    pub message: String,
    /// The HTTP status to answer with.
    pub status: u16,
}

impl RpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let status = match code {
            ErrorCode::Parse | ErrorCode::InvalidRequest | ErrorCode::InvalidParams => 400,
            ErrorCode::MethodNotFound => 404,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Denied => 403,
            // The call itself worked; the run failed.
            ErrorCode::Failed => 200,
        };
        Self {
            code,
            message: message.into(),
            status,
        }
    }

    /// With another HTTP status (413 for a body too large, 500 for a
    /// failure on Switchboard's side).
    pub fn with_status(self, status: u16) -> Self {
        Self { status, ..self }
    }

    /// `{"error": {"code": …, "message": …}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code.code(), "message": self.message } })
    }
}

/// A successful answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// Shown in the room.
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title_link: Option<String>,
    /// Hex, without `#`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// What can be done next to the run, each a command the client says
    /// for the user when the button is pressed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
}

/// A button of an answer: its label, and the command it says (without
/// the client's prefix), which one of the listing's methods matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Button {
    pub label: String,
    pub command: String,
}

/// A method invocation, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The chat user's login, trusted because the request is signed.
    pub user: String,
    pub mention_slug: Option<String>,
    /// The room, as Hubot names it (`#ops`).
    pub room_id: String,
    pub method: String,
    /// Text values as matched; empty ones are left out.
    pub params: BTreeMap<String, String>,
    pub message_id: Option<String>,
}

#[derive(Deserialize)]
struct RawInvocation {
    user: String,
    room_id: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    mention_slug: Option<String>,
    #[serde(default)]
    message_id: Option<String>,
}

/// Longest user, room or message id read.
const MAX_FIELD: usize = 256;

/// Reads the body posted to the method `path_method`.
pub fn parse_invocation(path_method: &str, body: &[u8]) -> Result<Invocation, RpcError> {
    let raw: RawInvocation = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            RpcError::new(
                ErrorCode::InvalidRequest,
                format!("the body is not an invocation `{{user, room_id, method, params}}`: {e}"),
            )
        } else {
            RpcError::new(ErrorCode::Parse, format!("the body is not JSON: {e}"))
        }
    })?;
    let field = |name: &str, value: &str| {
        if value.is_empty()
            || value.len() > MAX_FIELD
            || !value.chars().all(|c| c.is_ascii_graphic())
        {
            Err(RpcError::new(
                ErrorCode::InvalidRequest,
                format!("`{name}` must be 1 to {MAX_FIELD} visible ASCII characters"),
            ))
        } else {
            Ok(())
        }
    };
    field("user", &raw.user)?;
    field("room_id", &raw.room_id)?;
    for (name, value) in [
        ("mention_slug", &raw.mention_slug),
        ("message_id", &raw.message_id),
    ] {
        if let Some(v) = value {
            field(name, v)?;
        }
    }
    if let Some(method) = &raw.method
        && method != path_method
    {
        return Err(RpcError::new(
            ErrorCode::InvalidRequest,
            format!(
                "`method` is `{}` but the request was sent to `{path_method}`",
                method.chars().take(64).collect::<String>()
            ),
        ));
    }
    let mut params = BTreeMap::new();
    for (name, value) in raw.params.unwrap_or_default() {
        let text = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s,
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => {
                return Err(RpcError::new(
                    ErrorCode::InvalidParams,
                    format!(
                        "`{}`: expected text",
                        name.chars().take(64).collect::<String>()
                    ),
                ));
            }
        };
        if !text.is_empty() {
            params.insert(name, text);
        }
    }
    Ok(Invocation {
        user: raw.user,
        mention_slug: raw.mention_slug,
        room_id: raw.room_id,
        method: path_method.to_owned(),
        params,
        message_id: raw.message_id,
    })
}
