//! Replies as Slack messages: the reply's mrkdwn text in `section` blocks
//! (several when it is longer than one section may hold, code blocks
//! closed and reopened across the cut), approval buttons and an alert
//! card's buttons (commands, and links such as its runbook) in an
//! `actions` block, and a plain fallback `text` for notifications.
//!
//! Free text in a reply (output, reasons) is escaped (`&`, `<`, `>`) before
//! it is put in mrkdwn, so output such as `<none>` shows as written.
//!
//! Not here: sending (`web_api.rs`) and the wording, which is the same on
//! every platform (`Reply::text`).

use serde::Serialize;
use serde_json::{Value, json};
use switchboard_core::chat::{ButtonStyle, CardAlert, Markup, Reply};

use super::inbound::{APPROVE, COMMAND, REJECT};

/// The longest text of one `section` block, in UTF-16 units as Slack counts.
pub(super) const SECTION_MAX: usize = 3000;
/// The longest text of one message (Slack truncates beyond).
pub(super) const MESSAGE_MAX: usize = 40_000;

const FENCE: &str = "```";

/// A message's `text` and `blocks`, as `chat.postMessage` and
/// `chat.update` take them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Rendered {
    /// Plain text, for notifications and clients without blocks.
    pub text: String,
    pub blocks: Vec<Value>,
}

/// The most elements one `actions` block may hold.
const ACTIONS_MAX: usize = 25;
/// The longest `value` of a button.
const VALUE_MAX: usize = 2000;
/// The longest label of a button.
const LABEL_MAX: usize = 75;

pub(super) fn render(reply: &Reply) -> Rendered {
    let reply = escaped(reply);
    let mrkdwn = match &reply {
        // The buttons say the commands.
        Reply::Alert { card } => card.text(Markup::SlackMrkdwn, false),
        other => other.text(Markup::SlackMrkdwn),
    };
    let mrkdwn = truncate(&mrkdwn, MESSAGE_MAX);
    let mut blocks: Vec<Value> = sections(&mrkdwn, SECTION_MAX)
        .into_iter()
        .map(|text| json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } }))
        .collect();
    if let Reply::ApprovalRequest { execution, .. } = &reply {
        let id = execution.id.to_string();
        blocks.push(json!({
            "type": "actions",
            "block_id": "approval",
            "elements": [
                button(APPROVE, "Approve", "primary", &id),
                button(REJECT, "Reject", "danger", &id),
            ],
        }));
    }
    if let Reply::Alert { card } = &reply {
        let commands = card
            .buttons
            .iter()
            .filter(|b| b.command.chars().count() <= VALUE_MAX)
            .enumerate()
            .map(|(i, b)| {
                let mut button = json!({
                    "type": "button",
                    "action_id": format!("{COMMAND}-{i}"),
                    "text": { "type": "plain_text", "text": truncate(&b.label, LABEL_MAX) },
                    "value": b.command,
                });
                match b.style {
                    ButtonStyle::Primary => button["style"] = json!("primary"),
                    ButtonStyle::Danger => button["style"] = json!("danger"),
                    ButtonStyle::Plain => {}
                }
                button
            });
        // Pressing a link button opens it; Slack also tells the app, which
        // ignores it.
        let links = card.links.iter().enumerate().map(|(i, (name, url))| {
            json!({
                "type": "button",
                "action_id": format!("open-{i}"),
                "text": { "type": "plain_text", "text": truncate(name, LABEL_MAX) },
                "url": url,
            })
        });
        let elements: Vec<Value> = commands.chain(links).take(ACTIONS_MAX).collect();
        if !elements.is_empty() {
            blocks.push(json!({ "type": "actions", "block_id": "alert", "elements": elements }));
        }
    }
    let mut text = truncate(&reply.text(Markup::Plain), SECTION_MAX);
    if text.trim().is_empty() {
        text = "(no text)".to_owned();
    }
    Rendered { text, blocks }
}

fn button(action_id: &str, label: &str, style: &str, execution: &str) -> Value {
    json!({
        "type": "button",
        "action_id": action_id,
        "text": { "type": "plain_text", "text": label },
        "style": style,
        "value": execution,
    })
}

/// Escapes what Slack would read as markup in a reply's free text.
pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn escaped(reply: &Reply) -> Reply {
    let e = |s: &str| escape(s);
    match reply.clone() {
        Reply::Text { text } => Reply::Text { text: e(&text) },
        Reply::Code { title, code } => Reply::Code {
            title: e(&title),
            code: e(&code),
        },
        Reply::Refused { reason } => Reply::Refused { reason: e(&reason) },
        Reply::Accepted { execution, ack } => Reply::Accepted {
            execution,
            ack: e(&ack),
        },
        Reply::Progress {
            execution,
            ack,
            elapsed,
            tail,
        } => Reply::Progress {
            execution,
            ack: e(&ack),
            elapsed,
            tail: e(&tail),
        },
        Reply::Finished {
            execution,
            status,
            duration,
            exit_code,
            tail,
            partial,
            error,
        } => Reply::Finished {
            execution,
            status,
            duration,
            exit_code,
            tail: e(&tail),
            partial,
            error: error.as_deref().map(e),
        },
        Reply::ApprovalRequest {
            execution,
            requester,
            approvers,
            expires_at,
        } => Reply::ApprovalRequest {
            execution,
            requester,
            approvers: e(&approvers),
            expires_at,
        },
        Reply::Alert { mut card } => {
            card.title = e(&card.title);
            card.alerts = card
                .alerts
                .into_iter()
                .map(|a| CardAlert {
                    name: e(&a.name),
                    target: a.target.as_deref().map(e),
                    summary: a.summary.as_deref().map(e),
                    ..a
                })
                .collect();
            card.acknowledged = card.acknowledged.as_deref().map(e);
            card.links = card
                .links
                .into_iter()
                .map(|(name, url)| (e(&name), url))
                .collect();
            Reply::Alert { card }
        }
    }
}

/// Length as Slack counts it.
fn units(text: &str) -> usize {
    text.encode_utf16().count()
}

/// At most `max` units of `text`, cut at a character and marked when cut.
fn truncate(text: &str, max: usize) -> String {
    if units(text) <= max {
        return text.to_owned();
    }
    const MARK: &str = "\n…(cut)";
    let mut out = take_units(text, max - units(MARK)).to_owned();
    out.push_str(MARK);
    out
}

/// The longest start of `text` of at most `max` units.
fn take_units(text: &str, max: usize) -> &str {
    let mut used = 0;
    for (i, c) in text.char_indices() {
        used += c.len_utf16();
        if used > max {
            return &text[..i];
        }
    }
    text
}

fn is_fence(line: &str) -> bool {
    line.trim_start().starts_with(FENCE)
}

/// Cuts mrkdwn into pieces of at most `max` units, between lines where it
/// can (inside a line that alone is too long). A code block cut in two is
/// closed at the end of one piece and reopened at the start of the next.
fn sections(text: &str, max: usize) -> Vec<String> {
    // Room kept at the end of each piece to close a code block.
    let reserve = FENCE.len() + 1;
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has_text = false;
    let mut in_code = false;
    let mut flush = |cur: &mut String, has_text: &mut bool, in_code: bool| {
        if in_code {
            cur.push('\n');
            cur.push_str(FENCE);
        }
        if !cur.trim().is_empty() {
            out.push(std::mem::take(cur));
        }
        *cur = if in_code {
            FENCE.to_owned()
        } else {
            String::new()
        };
        *has_text = false;
    };
    for line in text.split('\n') {
        let closing = in_code && is_fence(line);
        let limit = if closing { max } else { max - reserve };
        let mut piece = line;
        loop {
            let sep = usize::from(!cur.is_empty());
            if units(&cur) + sep + units(piece) <= limit {
                if sep == 1 {
                    cur.push('\n');
                }
                cur.push_str(piece);
                has_text = true;
                break;
            }
            if has_text {
                flush(&mut cur, &mut has_text, in_code);
                continue;
            }
            // Too long for a piece of its own: cut the line.
            let mut head = take_units(piece, limit - units(&cur) - sep);
            if head.is_empty() {
                // Never stall on a character wider than the room left.
                head = piece
                    .chars()
                    .next()
                    .map_or(piece, |c| &piece[..c.len_utf8()]);
            }
            if sep == 1 {
                cur.push('\n');
            }
            cur.push_str(head);
            piece = &piece[head.len()..];
            flush(&mut cur, &mut has_text, in_code);
        }
        if is_fence(line) {
            in_code = !in_code;
        }
    }
    if has_text {
        flush(&mut cur, &mut has_text, in_code);
    }
    out
}
