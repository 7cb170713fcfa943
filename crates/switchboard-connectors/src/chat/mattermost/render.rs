//! Replies as Mattermost posts: the JSON bodies of `POST /api/v4/posts` and
//! `PUT /api/v4/posts/{id}/patch`, in Mattermost's Markdown, with
//! approval buttons (message-attachment actions) and the signature those
//! buttons carry.
//!
//! Not here: sending the bodies (`rest.rs`) and checking a pressed
//! button's signature against a request (`hooks.rs`, with [`button_mac`]).

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_core::chat::{Destination, Markup, Posted, Reply};

use super::config::MattermostConfig;

/// The longest message Mattermost accepts, in characters.
pub(super) const MAX_TEXT: usize = 16_383;

/// What a button does. Mattermost sends the button's `context` back when
/// it is pressed; `mac` proves that Switchboard made it.
pub(super) const ACTIONS: [(&str, &str, &str); 2] = [
    ("approve", "Approve", "good"),
    ("reject", "Reject", "danger"),
];

/// The body of a new post: `reply` in `to`'s room and thread.
pub(super) fn post_body(config: &MattermostConfig, to: &Destination, reply: &Reply) -> Value {
    let mut body = json!({
        "channel_id": to.room,
        "message": message(reply),
    });
    if let Some(root) = to.thread.as_deref().filter(|t| !t.is_empty()) {
        body["root_id"] = json!(root);
    }
    let root = to.thread.as_deref().unwrap_or("");
    if let Some(attachments) = buttons(config, reply, root) {
        body["props"] = json!({ "attachments": attachments });
    }
    body
}

/// The body of an edit of `posted`: its text, and its buttons, which an
/// edit removes unless the new reply has some.
pub(super) fn patch_body(config: &MattermostConfig, posted: &Posted, reply: &Reply) -> Value {
    let root = posted.thread.as_deref().unwrap_or(&posted.id);
    let attachments = buttons(config, reply, root).unwrap_or_else(|| json!([]));
    json!({
        "message": message(reply),
        "props": { "attachments": attachments },
    })
}

/// The reply as Mattermost Markdown, cut to what one post may carry.
pub(super) fn message(reply: &Reply) -> String {
    let text = reply.text(Markup::Markdown);
    if text.chars().count() <= MAX_TEXT {
        return text;
    }
    const CUT: &str = "\n… (cut)";
    let keep = MAX_TEXT - CUT.chars().count();
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(CUT);
    out
}

/// Approve and Reject buttons for an approval request, when buttons have
/// somewhere to call back; `root` is the thread the post is in (empty for
/// a post at the top of its room).
fn buttons(config: &MattermostConfig, reply: &Reply, root: &str) -> Option<Value> {
    let Reply::ApprovalRequest { execution, .. } = reply else {
        return None;
    };
    let url = config.actions_url.as_deref()?;
    let id = execution.id.to_string();
    let actions: Vec<Value> = ACTIONS
        .iter()
        .map(|(action, name, style)| {
            json!({
                "id": action,
                "type": "button",
                "name": name,
                "style": style,
                "integration": {
                    "url": url,
                    "context": {
                        "action": action,
                        "execution": id,
                        "root": root,
                        "mac": button_mac(config.action_secret.expose(), action, &id, root),
                    },
                },
            })
        })
        .collect();
    Some(json!([{
        "fallback": format!("Answer with `approve {id}` or `reject {id}`."),
        "actions": actions,
    }]))
}

/// The signature of a button: hex HMAC-SHA256 over what it does (the
/// action, the execution and the thread to answer in), with the action
/// secret.
pub(super) fn button_mac(secret: &str, action: &str, execution: &str, root: &str) -> String {
    // HMAC takes keys of any length; the fallback is unreachable.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    for part in ["switchboard-mattermost-button", action, execution, root] {
        mac.update(part.as_bytes());
        mac.update(b"\n");
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
