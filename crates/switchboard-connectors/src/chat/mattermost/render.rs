//! Replies as Mattermost posts: the JSON bodies of `POST /api/v4/posts` and
//! `PUT /api/v4/posts/{id}/patch`, in Mattermost's Markdown, with
//! approval buttons and an alert card's command buttons (message-attachment
//! actions) and the signature those buttons carry.
//!
//! Not here: sending the bodies (`rest.rs`) and checking a pressed
//! button's signature against a request (`hooks.rs`, with [`button_mac`]).

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard_core::chat::{ButtonStyle, Destination, Markup, Posted, Reply};

use super::config::MattermostConfig;

/// The longest message Mattermost accepts, in characters.
pub(super) const MAX_TEXT: usize = 16_383;

/// What a button does. Mattermost sends the button's `context` back when
/// it is pressed; `mac` proves that Switchboard made it.
pub(super) const ACTIONS: [(&str, &str, &str); 2] = [
    ("approve", "Approve", "good"),
    ("reject", "Reject", "danger"),
];

/// The action of a button that says a command (an alert card's `Ack`,
/// `Silence 1h`, …); its `context` holds the command.
pub(super) const COMMAND: &str = "command";

/// The body of a new post: `reply` in `to`'s room and thread.
pub(super) fn post_body(config: &MattermostConfig, to: &Destination, reply: &Reply) -> Value {
    let root = to.thread.as_deref().unwrap_or("");
    let attachments = buttons(config, reply, root);
    let mut body = json!({
        "channel_id": to.room,
        "message": message(reply, attachments.is_some()),
    });
    if !root.is_empty() {
        body["root_id"] = json!(root);
    }
    if let Some(attachments) = attachments {
        body["props"] = json!({ "attachments": attachments });
    }
    body
}

/// The body of an edit of `posted`: its text, and its buttons, which an
/// edit removes unless the new reply has some.
pub(super) fn patch_body(config: &MattermostConfig, posted: &Posted, reply: &Reply) -> Value {
    let root = posted.thread.as_deref().unwrap_or(&posted.id);
    let attachments = buttons(config, reply, root);
    json!({
        "message": message(reply, attachments.is_some()),
        "props": { "attachments": attachments.unwrap_or_else(|| json!([])) },
    })
}

/// The reply as Mattermost Markdown, cut to what one post may carry; an
/// alert card without `buttons` writes out their commands.
pub(super) fn message(reply: &Reply, buttons: bool) -> String {
    let text = match reply {
        Reply::Alert { card } => card.text(Markup::Markdown, !buttons),
        other => other.text(Markup::Markdown),
    };
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
    let url = config.actions_url.as_deref()?;
    if let Reply::Alert { card } = reply {
        let actions: Vec<Value> = card
            .buttons
            .iter()
            .enumerate()
            .map(|(i, b)| {
                json!({
                    "id": format!("command{i}"),
                    "type": "button",
                    "name": b.label,
                    "style": match b.style {
                        ButtonStyle::Primary => "primary",
                        ButtonStyle::Danger => "danger",
                        ButtonStyle::Plain => "default",
                    },
                    "integration": {
                        "url": url,
                        "context": {
                            "action": COMMAND,
                            "command": b.command,
                            "root": root,
                            "mac": button_mac(config.action_secret.expose(), COMMAND, &b.command, root),
                        },
                    },
                })
            })
            .collect();
        if actions.is_empty() {
            return None;
        }
        let said: Vec<String> = card
            .buttons
            .iter()
            .map(|b| format!("`{}`", b.command))
            .collect();
        return Some(json!([{
            "fallback": format!("Say {}.", said.join(" or ")),
            "actions": actions,
        }]));
    }
    let Reply::ApprovalRequest { execution, .. } = reply else {
        return None;
    };
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
/// action, its subject — the execution, or the command — and the thread to
/// answer in), with the action secret.
pub(super) fn button_mac(secret: &str, action: &str, subject: &str, root: &str) -> String {
    // HMAC takes keys of any length; the fallback is unreachable.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    for part in ["switchboard-mattermost-button", action, subject, root] {
        mac.update(part.as_bytes());
        mac.update(b"\n");
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
