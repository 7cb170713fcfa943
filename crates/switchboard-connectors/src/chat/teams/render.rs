//! Replies as the message a Workflows URL posts: one Adaptive Card
//! (version 1.4) in a `message` with an `attachments` list, the shape of
//! Teams' "Post to a channel when a webhook request is received" template.
//! The reply's Markdown becomes text blocks (Adaptive Cards render bold
//! and links, not code fences). Their Markdown is CommonMark's, where a
//! single line break is only a space, so prose lines are separated by a
//! blank line; and each line of a fenced block becomes a monospace rich
//! text block of its own (rich text is not read as Markdown, so output
//! shows as it is, `*` and `_` included), set without spacing.
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
    let mut part: Vec<&str> = Vec::new();
    let mut flush = |part: &mut Vec<&str>, code: bool| {
        if code {
            blocks.extend(part.iter().map(|line| code_line(line)));
        } else {
            let lines: Vec<&str> = part
                .iter()
                .copied()
                .filter(|l| !l.trim().is_empty())
                .collect();
            if !lines.is_empty() {
                blocks
                    .push(json!({ "type": "TextBlock", "text": lines.join("\n\n"), "wrap": true }));
            }
        }
        part.clear();
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

/// One line of output, as it is, in a monospace font. An empty line
/// keeps its height with a no-break space.
fn code_line(line: &str) -> Value {
    let text = if line.is_empty() { "\u{a0}" } else { line };
    json!({
        "type": "RichTextBlock",
        "spacing": "None",
        "inlines": [{ "type": "TextRun", "text": text, "fontType": "Monospace" }],
    })
}
