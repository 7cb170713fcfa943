//! Replies as Discord message bodies (for follow-ups and edits of an
//! interaction's messages): the text in Discord's Markdown, cut to the
//! 2000 characters a message holds, with approval buttons and an alert
//! card's command buttons as message components.
//!
//! A button's `custom_id` says what pressing it means: `approve:<id>`,
//! `reject:<id>` or `cmd:<command>`. Discord signs the press, and pressing
//! is the presser saying that command, decided by the policies as if typed.
//!
//! Not here: sending the bodies (`webhooks.rs`).

use serde_json::{Value, json};
use switchboard_core::chat::{ButtonStyle, Markup, Reply};

/// The longest message Discord accepts, in characters.
pub(super) const MAX_TEXT: usize = 2000;
/// The longest `custom_id` Discord accepts.
const MAX_CUSTOM_ID: usize = 100;

pub(super) const APPROVE: &str = "approve";
pub(super) const REJECT: &str = "reject";
pub(super) const COMMAND: &str = "cmd";

/// Message flag: seen only by the person who used the interaction.
pub(super) const EPHEMERAL: u64 = 1 << 6;

// Button styles.
const PRIMARY: u8 = 1;
const SECONDARY: u8 = 2;
const SUCCESS: u8 = 3;
const DANGER: u8 = 4;

/// The body of a message (new or edited). An edit without buttons removes
/// those the message had. Mentions are never pinged: output may hold
/// `@everyone`.
pub(super) fn message_body(reply: &Reply) -> Value {
    let buttons = buttons(reply);
    let text = match reply {
        Reply::Alert { card } => card.text(Markup::Markdown, buttons.len() < card.buttons.len()),
        other => other.text(Markup::Markdown),
    };
    let components = if buttons.is_empty() {
        json!([])
    } else {
        // At most five buttons to a row.
        let rows: Vec<Value> = buttons
            .chunks(5)
            .map(|row| json!({ "type": 1, "components": row }))
            .collect();
        json!(rows)
    };
    json!({
        "content": cut(&text),
        "components": components,
        "allowed_mentions": { "parse": [] },
    })
}

/// Text cut to what one message holds.
fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_TEXT {
        return text.to_owned();
    }
    const CUT: &str = "\n… (cut)";
    let mut out: String = text.chars().take(MAX_TEXT - CUT.chars().count()).collect();
    out.push_str(CUT);
    out
}

fn button(label: &str, style: u8, custom_id: String) -> Value {
    json!({ "type": 2, "style": style, "label": label, "custom_id": custom_id })
}

/// The buttons of an approval request or an alert card.
fn buttons(reply: &Reply) -> Vec<Value> {
    match reply {
        Reply::ApprovalRequest { execution, .. } => vec![
            button("Approve", SUCCESS, format!("{APPROVE}:{}", execution.id)),
            button("Reject", DANGER, format!("{REJECT}:{}", execution.id)),
        ],
        Reply::Alert { card } => card
            .buttons
            .iter()
            .map(|b| (b, format!("{COMMAND}:{}", b.command)))
            // A command too long for a button is left to be typed.
            .filter(|(_, id)| id.len() <= MAX_CUSTOM_ID)
            .map(|(b, id)| {
                let style = match b.style {
                    ButtonStyle::Primary => PRIMARY,
                    ButtonStyle::Danger => DANGER,
                    ButtonStyle::Plain => SECONDARY,
                };
                button(&b.label, style, id)
            })
            .collect(),
        _ => Vec::new(),
    }
}
