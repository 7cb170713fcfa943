//! Chat, platform-neutral: who said what where ([`Inbound`]), what the bot
//! says back ([`Reply`]), and the [`ChatOutlet`] each chat adapter
//! implements to deliver replies on its platform.
//!
//! The types here are what adapters translate their wire formats to and
//! from; the conversation engine (in the engine crate) is the one place that
//! decides what a message means. Nothing here verifies signatures, speaks a
//! protocol or decides anything: an adapter hands over an `Inbound` only
//! after it has verified the platform's signature or token.
//!
//! Rendering: [`Reply::text`] renders a reply as text in a platform's markup
//! ([`Markup`]); adapters wrap it in their own structures (Slack blocks,
//! Mattermost attachments) and add buttons where the platform has them.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::execution::ExecutionStatus;
use crate::ids::{ActionName, ExecutionId, Origin, Principal, Timestamp};

/// A chat user as their platform names them: `slack:T01ABC/U123`. Linking
/// ties one of these to a principal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChatIdentity {
    /// `slack`, `mattermost`, `shell`, …
    pub platform: String,
    /// The platform's workspace, team or server (`T01ABC`, a Mattermost URL host).
    pub workspace: String,
    /// The platform's user id (`U123`), never a display name.
    pub user: String,
}

impl ChatIdentity {
    /// Whether the platform vouches for who this is. A user id that starts
    /// with `~` names a sender the platform does not authenticate (an IRC
    /// nick without a services account): never linked to a principal,
    /// always `anonymous`.
    pub fn is_verified(&self) -> bool {
        !self.user.starts_with('~')
    }

    pub fn new(
        platform: impl Into<String>,
        workspace: impl Into<String>,
        user: impl Into<String>,
    ) -> Result<Self, String> {
        let id = Self {
            platform: platform.into(),
            workspace: workspace.into(),
            user: user.into(),
        };
        let token = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s.chars()
                    .all(|c| c.is_ascii_graphic() && c != '/' && c != ':')
        };
        let platform_ok = token(&id.platform, 32);
        let workspace_ok = token(&id.workspace, 128);
        let user_ok = token(&id.user, 128);
        if platform_ok && workspace_ok && user_ok {
            Ok(id)
        } else {
            Err(format!(
                "invalid chat identity `{id}`: expected `platform:workspace/user` of visible ASCII"
            ))
        }
    }
}

impl fmt::Display for ChatIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.platform, self.workspace, self.user)
    }
}

impl TryFrom<String> for ChatIdentity {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let bad = || format!("invalid chat identity `{text}`: expected `platform:workspace/user`");
        let (platform, rest) = text.split_once(':').ok_or_else(bad)?;
        let (workspace, user) = rest.split_once('/').ok_or_else(bad)?;
        Self::new(platform, workspace, user)
    }
}

impl From<ChatIdentity> for String {
    fn from(id: ChatIdentity) -> String {
        id.to_string()
    }
}

/// Where a message was said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    /// The platform's channel id (`C0123`); replies go here.
    pub id: String,
    /// Its name as people say it (`#ops`), when the adapter knows it; policies
    /// see this rather than the id.
    pub name: Option<String>,
    /// A direct (one-to-one) conversation with the bot.
    pub direct: bool,
}

/// One chat message (or slash command, or button press) that an adapter has
/// verified and translated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbound {
    /// The platform's id of this delivery (Slack's `event_id`, a Mattermost
    /// post id): a delivery seen before is answered once only.
    pub delivery_id: Option<String>,
    pub sender: ChatIdentity,
    /// The sender's display name, for messages only; never for decisions.
    pub sender_name: Option<String>,
    /// Sent by a bot (including this one): ignored.
    pub sender_is_bot: bool,
    /// Set only by doors that authenticated the sender themselves (the web
    /// console and shell chat, with an API token); chat platforms go through
    /// linking instead.
    pub authenticated: Option<Principal>,
    pub room: Room,
    /// The thread the message is in, if any.
    pub thread: Option<String>,
    /// The message's own id (Slack `ts`, a Mattermost post id), so replies
    /// can thread under it; `None` for slash commands.
    pub message_id: Option<String>,
    /// The text, with the mention of the bot already removed.
    pub text: String,
    /// The bot was mentioned, or a slash command or button addressed it.
    pub mentioned: bool,
}

impl Inbound {
    /// The origin of requests made by this message: `chat:<platform>:<room>`,
    /// with the room's name when known.
    pub fn origin(&self) -> Result<Origin, crate::IdError> {
        let room = self.room.name.as_deref().unwrap_or(&self.room.id);
        Origin::new(format!("chat:{}:{room}", self.sender.platform))
    }

    /// Where replies to this message go: its thread, or a thread under it.
    pub fn reply_to(&self) -> Destination {
        Destination {
            room: self.room.id.clone(),
            thread: self.thread.clone().or_else(|| self.message_id.clone()),
        }
    }
}

/// Where a reply goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub room: String,
    /// The thread to reply in; `None` posts at the top of the room.
    pub thread: Option<String>,
}

/// A message the bot posted, so it can be edited and threaded under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    pub room: String,
    /// The platform's id of the posted message (Slack `ts`, a post id).
    pub id: String,
    /// The thread it sits in, if any.
    pub thread: Option<String>,
}

impl Posted {
    /// Where replies to this message go: its thread, or a thread under it.
    pub fn thread(&self) -> Destination {
        Destination {
            room: self.room.clone(),
            thread: Some(self.thread.clone().unwrap_or_else(|| self.id.clone())),
        }
    }
}

/// An execution as a reply names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionRef {
    pub id: ExecutionId,
    pub action: ActionName,
    /// A link to its page (with the full output), when a public URL is set.
    pub link: Option<String>,
}

/// What the bot says. Adapters render it for their platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// Information: help, whoami, status, link instructions.
    Text { text: String },
    /// Preformatted text (help tables, output), shown in a code block.
    Code { title: String, code: String },
    /// A refusal or an error, with its reason.
    Refused { reason: String },
    /// A run was accepted; later edited in place with its progress.
    Accepted {
        execution: ExecutionRef,
        ack: String,
    },
    /// A long run's progress (replaces the `Accepted` message where the
    /// platform can edit).
    Progress {
        execution: ExecutionRef,
        ack: String,
        elapsed: Duration,
        tail: String,
    },
    /// A run ended.
    Finished {
        execution: ExecutionRef,
        status: ExecutionStatus,
        duration: Option<Duration>,
        exit_code: Option<i32>,
        /// The last lines of output (secrets masked).
        tail: String,
        /// Whether `tail` is only part of the output (the rest is attached or linked).
        partial: bool,
        error: Option<String>,
    },
    /// An execution waits for approval; approvers answer with buttons or
    /// `approve ID` / `reject ID`.
    ApprovalRequest {
        execution: ExecutionRef,
        requester: Principal,
        /// Who may approve, as the rule says it (`1 of group:sre-leads`).
        approvers: String,
        expires_at: Option<Timestamp>,
    },
    /// An alert group, posted to a room by a chat receiver and edited in
    /// place as the group changes.
    Alert { card: AlertCard },
}

/// An alert group as a chat message shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertCard {
    /// `[FIRING:2] DiskFull (critical)`: status, count, group labels.
    pub title: String,
    /// `true` while any alert fires.
    pub firing: bool,
    /// The group's short id, to type (`ack ID`).
    pub group: String,
    /// The alerts listed (firing first).
    pub alerts: Vec<CardAlert>,
    /// How many more alerts the group holds than are listed.
    pub more: usize,
    /// `alice at 2026-11-26T10:00:00Z`, when acknowledged.
    pub acknowledged: Option<String>,
    /// Runbook, dashboard: `(name, url)`.
    pub links: Vec<(String, String)>,
    /// What people can do about it, as commands their buttons say.
    pub buttons: Vec<Button>,
}

/// One alert of a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardAlert {
    pub firing: bool,
    pub name: String,
    /// Where: its `instance` (or `host`) label.
    pub target: Option<String>,
    /// Its `summary` annotation.
    pub summary: Option<String>,
    pub since: Timestamp,
    /// The fingerprint, to type (`ack ID`).
    pub fingerprint: String,
}

/// A button that says a chat command for whoever presses it: pressing
/// `Ack` is the presser saying `ack 1a2b3c4d5e6f`, authorized and audited
/// as that person like anything they type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub label: String,
    pub command: String,
    pub style: ButtonStyle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonStyle {
    Primary,
    Danger,
    Plain,
}

impl AlertCard {
    /// The card as text in `markup`; with `commands`, the buttons' commands
    /// are written out for platforms (or configurations) without buttons.
    pub fn text(&self, markup: Markup, commands: bool) -> String {
        let mut out = format!("{} group `{}`", markup.bold(&self.title), self.group);
        for a in &self.alerts {
            let state = if a.firing { "FIRING" } else { "RESOLVED" };
            out.push_str(&format!("\n• {state} {}", a.name));
            if let Some(target) = &a.target {
                out.push_str(&format!(" on {target}"));
            }
            if let Some(summary) = &a.summary {
                out.push_str(&format!(": {summary}"));
            }
            out.push_str(&format!(
                " (since {}, `{}`)",
                minutes(a.since),
                a.fingerprint
            ));
        }
        if self.more > 0 {
            out.push_str(&format!("\n…and {} more", self.more));
        }
        if let Some(by) = &self.acknowledged {
            out.push_str(&format!("\nAcknowledged by {by}."));
        }
        if !self.links.is_empty() {
            let links: Vec<String> = self
                .links
                .iter()
                .map(|(name, url)| markup.link(url, name))
                .collect();
            out.push_str(&format!("\n{}", links.join(" · ")));
        }
        if commands && !self.buttons.is_empty() {
            let said: Vec<String> = self
                .buttons
                .iter()
                .map(|b| format!("`{}`", b.command))
                .collect();
            out.push_str(&format!("\nSay {}.", said.join(" or ")));
        }
        out
    }
}

/// The markup of a platform's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// Slack's mrkdwn: `*bold*`, `<url|text>`.
    SlackMrkdwn,
    /// CommonMark as Mattermost, Teams and Discord speak it: `**bold**`, `[text](url)`.
    Markdown,
    /// No markup: terminals, IRC, XMPP.
    Plain,
}

impl Markup {
    fn bold(self, text: &str) -> String {
        match self {
            Self::SlackMrkdwn => format!("*{text}*"),
            Self::Markdown => format!("**{text}**"),
            Self::Plain => text.to_owned(),
        }
    }

    fn link(self, url: &str, text: &str) -> String {
        match self {
            Self::SlackMrkdwn => format!("<{url}|{text}>"),
            Self::Markdown => format!("[{text}]({url})"),
            Self::Plain => format!("{text} ({url})"),
        }
    }

    fn code_block(self, code: &str) -> String {
        match self {
            // A fence inside the code would end the block early.
            Self::SlackMrkdwn | Self::Markdown => {
                format!("```\n{}\n```", code.replace("```", "`\u{200b}``"))
            }
            Self::Plain => code.to_owned(),
        }
    }
}

/// A time as people read it in chat: `2026-11-26 10:04 UTC`.
pub fn minutes(at: Timestamp) -> String {
    let text = at.to_string();
    match text.get(..16) {
        Some(head) => format!("{} UTC", head.replacen('T', " ", 1)),
        None => text,
    }
}

/// Formats a duration as people read it in chat: `850ms`, `12.3s`, `4m 05s`.
pub fn short_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        let s = d.as_secs();
        format!("{}m {:02}s", s / 60, s % 60)
    }
}

impl Reply {
    /// The reply as text in `markup`.
    pub fn text(&self, markup: Markup) -> String {
        let name = |e: &ExecutionRef| match &e.link {
            Some(url) => markup.link(url, &format!("#{}", e.id)),
            None => format!("#{}", e.id),
        };
        match self {
            Self::Text { text } => text.clone(),
            Self::Code { title, code } => {
                if title.is_empty() {
                    markup.code_block(code)
                } else {
                    format!("{}\n{}", title, markup.code_block(code))
                }
            }
            Self::Refused { reason } => format!("{} {reason}", markup.bold("Refused:")),
            Self::Accepted { execution, ack } => {
                format!("{ack} ({} {})", execution.action, name(execution))
            }
            Self::Progress {
                execution,
                ack,
                elapsed,
                tail,
            } => {
                let mut out = format!(
                    "{ack} ({} {}, running for {})",
                    execution.action,
                    name(execution),
                    short_duration(*elapsed)
                );
                if !tail.is_empty() {
                    out.push('\n');
                    out.push_str(&markup.code_block(tail));
                }
                out
            }
            Self::Finished {
                execution,
                status,
                duration,
                exit_code,
                tail,
                partial,
                error,
            } => {
                let mut head = format!(
                    "{} {} {}",
                    execution.action,
                    name(execution),
                    markup.bold(status.as_str())
                );
                if let Some(d) = duration {
                    head.push_str(&format!(" in {}", short_duration(*d)));
                }
                if let Some(code) = exit_code.filter(|c| *c != 0) {
                    head.push_str(&format!(" (exit code {code})"));
                }
                if let Some(error) = error {
                    head.push_str(&format!(": {error}"));
                }
                if !tail.is_empty() {
                    head.push('\n');
                    head.push_str(&markup.code_block(tail));
                }
                if *partial {
                    head.push_str(&match &execution.link {
                        Some(url) => format!("\n{}", markup.link(url, "Full output")),
                        None => "\n(last lines shown; the full output is attached)".to_owned(),
                    });
                }
                head
            }
            Self::ApprovalRequest {
                execution,
                requester,
                approvers,
                expires_at,
            } => {
                let mut out = format!(
                    "{} {} {} asked to run {} and it needs approval from {approvers}.",
                    markup.bold("Approval needed:"),
                    name(execution),
                    requester,
                    execution.action
                );
                if let Some(at) = expires_at {
                    out.push_str(&format!(" The request lapses at {at}."));
                }
                out.push_str(&format!(
                    " Answer with `approve {0}` or `reject {0}`.",
                    execution.id
                ));
                out
            }
            Self::Alert { card } => card.text(markup, true),
        }
    }
}

/// A file to upload: long output, a graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub title: String,
    pub bytes: Vec<u8>,
}

/// What a platform can do with messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Messages can be edited in place (progress).
    pub edits: bool,
    /// Files can be uploaded (long output, images).
    pub files: bool,
    /// Messages can carry buttons (approvals).
    pub buttons: bool,
    /// The longest text one message may carry, in characters.
    pub max_text: usize,
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum OutletError {
    #[error("the platform refused: {0}")]
    Refused(String),
    #[error("the platform could not be reached: {0}")]
    Unreachable(String),
    #[error("not supported on this platform: {0}")]
    Unsupported(&'static str),
}

/// What adapters hand verified messages to: the conversation engine.
#[async_trait]
pub trait ChatHandler: Send + Sync {
    /// Answers one message; replies go out through `outlet`. Returns once
    /// the message is accepted (runs are followed in the background).
    async fn handle(&self, inbound: Inbound, outlet: std::sync::Arc<dyn ChatOutlet>);

    /// Told by an adapter with a long-lived connection when it comes up
    /// (`up`, with what it reached) and when it goes down (with why), so
    /// the door's live state can be reported. Ignored unless overridden.
    async fn connection(&self, _platform: &str, _up: bool, _detail: &str) {}
}

/// Delivers replies on one platform. Implemented by each chat adapter; the
/// conversation engine calls it and decides nothing platform-specific.
#[async_trait]
pub trait ChatOutlet: Send + Sync {
    fn capabilities(&self) -> Capabilities;

    /// Posts a reply, in a thread when `to.thread` is set.
    async fn post(&self, to: &Destination, reply: &Reply) -> Result<Posted, OutletError>;

    /// Replaces a posted message (only called when `capabilities().edits`).
    async fn update(&self, posted: &Posted, reply: &Reply) -> Result<(), OutletError>;

    /// Uploads a file (only called when `capabilities().files`).
    async fn upload(&self, to: &Destination, file: &Attachment) -> Result<(), OutletError>;

    /// Sends a direct (private) message to a user: link codes go this way.
    async fn direct(&self, user: &ChatIdentity, reply: &Reply) -> Result<(), OutletError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_identities_round_trip_and_refuse_odd_text() {
        let id = ChatIdentity::try_from("slack:T01ABC/U123".to_owned()).unwrap();
        assert_eq!(id.user, "U123");
        assert_eq!(id.to_string(), "slack:T01ABC/U123");
        for bad in [
            "slack",
            "slack:T01",
            "slack:/U1",
            ":T/U",
            "slack:T/U 1",
            "slack:T/U/x",
        ] {
            assert!(ChatIdentity::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn origin_names_the_room_by_name_when_known() {
        let mut m = Inbound {
            delivery_id: None,
            sender: ChatIdentity::new("slack", "T1", "U1").unwrap(),
            sender_name: None,
            sender_is_bot: false,
            authenticated: None,
            room: Room {
                id: "C1".into(),
                name: Some("#ops".into()),
                direct: false,
            },
            thread: None,
            message_id: Some("1.2".into()),
            text: "uptime".into(),
            mentioned: true,
        };
        assert_eq!(m.origin().unwrap().as_str(), "chat:slack:#ops");
        assert_eq!(m.reply_to().thread.as_deref(), Some("1.2"));
        m.room.name = None;
        m.thread = Some("1.0".into());
        assert_eq!(m.origin().unwrap().as_str(), "chat:slack:C1");
        assert_eq!(m.reply_to().thread.as_deref(), Some("1.0"));
    }

    #[test]
    fn finished_replies_say_status_duration_and_where_the_rest_is() {
        let r = Reply::Finished {
            execution: ExecutionRef {
                id: ExecutionId(42),
                action: ActionName::new("host.logs").unwrap(),
                link: Some("https://sb.example/executions/42".into()),
            },
            status: ExecutionStatus::Failed,
            duration: Some(Duration::from_millis(12_340)),
            exit_code: Some(2),
            tail: "no such file".into(),
            partial: true,
            error: None,
        };
        assert_eq!(
            r.text(Markup::SlackMrkdwn),
            "host.logs <https://sb.example/executions/42|#42> *failed* in 12.3s (exit code 2)\n```\nno such file\n```\n<https://sb.example/executions/42|Full output>"
        );
        assert!(r.text(Markup::Markdown).contains("**failed**"));
        assert!(
            r.text(Markup::Plain)
                .starts_with("host.logs #42 (https://sb.example/executions/42) failed in 12.3s")
        );
    }

    fn card() -> AlertCard {
        AlertCard {
            title: "[FIRING:2] DiskFull (critical)".into(),
            firing: true,
            group: "0668fc525e22".into(),
            alerts: vec![CardAlert {
                firing: true,
                name: "DiskFull".into(),
                target: Some("db-1".into()),
                summary: Some("/ is 97% full".into()),
                since: Timestamp::parse_rfc3339("2026-11-26T10:04:05.123456Z").unwrap(),
                fingerprint: "1a2b3c4d5e6f7a8b".into(),
            }],
            more: 1,
            acknowledged: Some("alice at 2026-11-26 10:06 UTC".into()),
            links: vec![("Runbook".into(), "https://runbooks.example.com/disk".into())],
            buttons: vec![Button {
                label: "Ack".into(),
                command: "ack 0668fc525e22".into(),
                style: ButtonStyle::Primary,
            }],
        }
    }

    #[test]
    fn an_alert_card_reads_as_text_with_its_commands_where_buttons_are_missing() {
        let with_buttons = card().text(Markup::Markdown, false);
        assert_eq!(
            with_buttons,
            "**[FIRING:2] DiskFull (critical)** group `0668fc525e22`\n\
             • FIRING DiskFull on db-1: / is 97% full (since 2026-11-26 10:04 UTC, `1a2b3c4d5e6f7a8b`)\n\
             …and 1 more\n\
             Acknowledged by alice at 2026-11-26 10:06 UTC.\n\
             [Runbook](https://runbooks.example.com/disk)"
        );
        let plain = Reply::Alert { card: card() }.text(Markup::Plain);
        assert!(plain.ends_with("\nSay `ack 0668fc525e22`."), "{plain}");
        assert!(plain.contains("Runbook (https://runbooks.example.com/disk)"));
    }

    #[test]
    fn code_fences_inside_output_cannot_close_the_block() {
        let r = Reply::Code {
            title: String::new(),
            code: "a```b".into(),
        };
        assert_eq!(r.text(Markup::Markdown).matches("```").count(), 2);
    }
}
