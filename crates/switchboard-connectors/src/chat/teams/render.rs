//! Replies as the message a Workflows URL posts: one Adaptive Card
//! (version 1.4) in a `message` with an `attachments` list, the shape of
//! Teams' "Post to a channel when a webhook request is received" template.
//! The reply's Markdown becomes text blocks (Adaptive Cards render bold
//! and links, not code fences): each fenced block becomes a monospace
//! block of its own.
//!
//! Nothing here has buttons: a card posted through a workflow cannot call
//! Switchboard back, so approvals and alert cards spell their commands out.
//!
//! Not here: sending the message (`workflows.rs`).

use serde_json::{Value, json};
use switchboard_core::chat::{Markup, Reply};

/// The longest text Switchboard puts in one card, in characters (Teams
/// refuses messages over about 28 KB).
pub(super) const MAX_TEXT: usize = 20_000;

/// The message posting `reply`.
pub(super) fn message(reply: &Reply) -> Value {
    let text = reply.text(Markup::Markdown);
    let text: String = if text.chars().count() > MAX_TEXT {
        let mut cut: String = text.chars().take(MAX_TEXT).collect();
        cut.push_str("\n… (cut)");
        cut
    } else {
        text
    };
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": { "width": "Full" },
                "body": blocks(&text),
            },
        }],
    })
}

/// Text blocks, alternating prose and the fenced code between.
fn blocks(markdown: &str) -> Vec<Value> {
    let mut blocks = Vec::new();
    let mut code = false;
    let mut part = Vec::new();
    let mut flush = |part: &mut Vec<&str>, code: bool| {
        let text = part.join("\n");
        part.clear();
        if text.trim().is_empty() {
            return;
        }
        let mut block = json!({ "type": "TextBlock", "text": text, "wrap": true });
        if code {
            block["fontType"] = json!("Monospace");
        }
        blocks.push(block);
    };
    for line in markdown.lines() {
        if line == "```" {
            flush(&mut part, code);
            code = !code;
        } else {
            part.push(line);
        }
    }
    flush(&mut part, code);
    blocks
}
