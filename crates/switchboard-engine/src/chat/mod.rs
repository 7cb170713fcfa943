//! The conversation engine: the one place that decides what a chat message
//! means, for every platform alike. An adapter hands over a verified
//! [`Inbound`]; this module decides whether the bot was addressed, drops
//! repeated deliveries, finds the principal behind the chat user (linked
//! identity, the console's authenticated caller, or `anonymous`), parses the
//! command against the catalog's aliases and answers through the adapter's
//! [`ChatOutlet`]: runs go through [`Engine::submit`] like every other door,
//! and `follow` reports them back into the request's thread.
//!
//! Not here: signatures, wire formats and markup (the adapters), who may do
//! what (`authz`, which also audits every decision), the grammar itself
//! (`switchboard_core::command`).

mod alerts;
mod follow;
mod links;
mod rpc;

pub use rpc::{RpcCall, RpcRun};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use switchboard_core::audit::AuditEvent;
use switchboard_core::chat::{
    ChatHandler, ChatIdentity, ChatOutlet, Destination, ExecutionRef, Inbound, Reply,
};
use switchboard_core::command::{CommandError, CommandSet, HelpEntry};
use switchboard_core::policy::Verb;
use switchboard_core::{Execution, ExecutionId, ExecutionStatus, Origin, Principal, Timestamp};

use crate::{Engine, EngineError, Identity, SubmitRequest};

/// How the bot converses.
#[derive(Debug, Clone)]
pub struct ChatSettings {
    /// A prefix that addresses the bot in rooms (`!uptime`), besides a
    /// mention or a direct message.
    pub prefix: Option<String>,
    /// Switchboard's public base URL, for links to executions.
    pub public_url: Option<String>,
    /// A run still going after this long gets progress updates…
    pub progress_after: Duration,
    /// …this often, where the platform can edit messages.
    pub progress_every: Duration,
    /// Lines of output shown in a result; the rest is attached as a file.
    pub tail_lines: usize,
    /// How long a link code works.
    pub link_code_ttl: Duration,
    /// Longest message read, in characters; longer ones are refused.
    pub max_text: usize,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            prefix: Some("!".to_owned()),
            public_url: None,
            progress_after: Duration::from_secs(3),
            progress_every: Duration::from_secs(5),
            tail_lines: 15,
            link_code_ttl: Duration::from_secs(10 * 60),
            max_text: 4000,
        }
    }
}

/// How long a delivery id is remembered: platforms retry within minutes.
const DELIVERY_MEMORY: Duration = Duration::from_secs(60 * 60);

/// The built-in commands, as `help` lists them.
const BUILTINS: [(&str, &str); 15] = [
    (
        "help [command]",
        "what you can run here, or how to use one command",
    ),
    ("whoami", "who Switchboard takes you for"),
    ("link", "link this chat account to your Switchboard user"),
    ("unlink", "remove that link"),
    (
        "status",
        "the hosts that need attention (firing alerts, failed runs), worst first",
    ),
    ("status ID", "the state of an execution"),
    ("cancel ID", "cancel an execution"),
    (
        "approve ID [reason]",
        "approve an execution awaiting approval",
    ),
    (
        "reject ID [reason]",
        "reject an execution awaiting approval",
    ),
    (
        "answer ID ANSWER",
        "answer the question a workflow waits on (`approve ID` and `reject ID` say yes and no)",
    ),
    (
        "alerts [matchers]",
        "the firing alerts, e.g. `alerts severity=critical`",
    ),
    (
        "silence MATCHERS for DURATION because WHY",
        "mute the alerts that match, e.g. `silence alertname=DiskFull for 2h because replacing disks`",
    ),
    ("unsilence ID", "end a silence"),
    ("ack ID [comment]", "acknowledge a firing alert or group"),
    (
        "automate ID RULE",
        "run an automation rule of alerts.toml now for a firing alert or group",
    ),
];

/// The audit record of a chat user linked to no account asking to run
/// something.
pub const UNLINKED_ATTEMPT: &str = "chat.unlinked_attempt";

/// The conversation engine, as adapters see it.
#[derive(Clone)]
pub struct Conversation {
    engine: Engine,
}

impl Conversation {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

#[async_trait]
impl ChatHandler for Conversation {
    async fn handle(&self, inbound: Inbound, outlet: Arc<dyn ChatOutlet>) {
        if let Err(e) = self.engine.converse(inbound, outlet).await {
            tracing::warn!(error = %e, "a chat message could not be answered");
        }
    }

    async fn connection(&self, platform: &str, up: bool, detail: &str) {
        self.engine
            .door_connection(&format!("chat:{platform}"), up, detail)
            .await;
    }
}

/// Who is speaking, as far as the back end is concerned.
struct Speaker {
    identity: Identity,
    origin: Origin,
    /// Whether the principal came from a link or an authenticated console
    /// (rather than being `anonymous`).
    linked: bool,
}

impl Engine {
    fn chat_settings(&self) -> &ChatSettings {
        &self.shared.config.chat
    }

    /// Answers one chat message. Errors are the ones that could not even be
    /// answered (the platform is unreachable); refusals are answered.
    pub async fn converse(
        &self,
        inbound: Inbound,
        outlet: Arc<dyn ChatOutlet>,
    ) -> Result<(), EngineError> {
        self.door_event(&format!("chat:{}", inbound.sender.platform));
        self.converse_as(inbound, None, outlet).await
    }

    /// Answers a message of the console (web UI or `switchboard chat`),
    /// whose caller the API has already authenticated as `who`.
    pub async fn console(
        &self,
        mut inbound: Inbound,
        who: Identity,
        outlet: Arc<dyn ChatOutlet>,
    ) -> Result<(), EngineError> {
        inbound.authenticated = Some(who.principal.clone());
        self.converse_as(inbound, Some(who), outlet).await
    }

    async fn converse_as(
        &self,
        inbound: Inbound,
        authenticated: Option<Identity>,
        outlet: Arc<dyn ChatOutlet>,
    ) -> Result<(), EngineError> {
        if inbound.sender_is_bot {
            return Ok(());
        }
        let Some(text) = addressed_text(&inbound, self.chat_settings().prefix.as_deref()) else {
            return Ok(());
        };
        if let Some(delivery) = &inbound.delivery_id {
            let now = Timestamp::now();
            let first = self
                .shared
                .store
                .record_chat_delivery(
                    &inbound.sender.platform,
                    delivery,
                    now,
                    Timestamp(now.micros() - micros(DELIVERY_MEMORY)),
                )
                .await?;
            if !first {
                tracing::info!(platform = %inbound.sender.platform, %delivery, "repeated chat delivery ignored");
                return Ok(());
            }
        }
        let to = inbound.reply_to();
        let max = self.chat_settings().max_text;
        let unreadable = if text.chars().count() > max {
            Some(format!(
                "that message is longer than {max} characters; nothing was run"
            ))
        } else {
            text.chars().find(|c| is_invisible_format(*c)).map(|c| format!(
                "the message contains an invisible character (U+{:04X}) that can make a command read otherwise than it runs; type it again without it",
                u32::from(c)
            ))
        };
        if let Some(reason) = unreadable {
            tracing::info!(sender = %inbound.sender, %reason, "chat message refused");
            self.audit_chat_refusal(&inbound.sender, &reason).await;
            return say(&*outlet, &to, Reply::Refused { reason }).await;
        }
        let speaker = match self.speaker(&inbound, authenticated).await {
            Ok(s) => s,
            Err(e) => {
                let reason = e.to_string();
                return say(&*outlet, &to, Reply::Refused { reason }).await;
            }
        };
        let mut words = text.split_whitespace();
        let first = words.next().unwrap_or_default().to_lowercase();
        let rest: Vec<&str> = words.collect();
        let reply = match first.as_str() {
            "help" => self.help(&speaker, rest.first().copied()),
            "whoami" => self.whoami(&inbound, &speaker),
            "link" => self.chat_link(&inbound, &speaker, &*outlet).await,
            "unlink" => self.chat_unlink(&inbound, &speaker).await,
            "status" => self.chat_status(&speaker, &rest).await,
            "cancel" => self.chat_cancel(&speaker, &rest).await,
            "approve" | "reject" => self.chat_answer(&speaker, first == "approve", &rest).await,
            "answer" => self.chat_inquiry_answer(&speaker, &rest).await,
            "alerts" => self.chat_alerts(after_first_word(&text)).await,
            "silence" => self.chat_silence(&speaker, after_first_word(&text)).await,
            "unsilence" => self.chat_unsilence(&speaker, &rest).await,
            "ack" => self.chat_ack(&speaker, &rest, &to).await,
            "automate" => return self.chat_automate(&speaker, &rest, to, outlet).await,
            _ => return self.chat_run(&inbound, &speaker, &text, outlet).await,
        };
        say(&*outlet, &to, reply).await
    }

    async fn speaker(
        &self,
        inbound: &Inbound,
        authenticated: Option<Identity>,
    ) -> Result<Speaker, EngineError> {
        let origin = inbound
            .origin()
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        if let Some(identity) = authenticated {
            return Ok(Speaker {
                identity,
                origin,
                linked: true,
            });
        }
        self.speaker_of(&inbound.sender, origin).await
    }

    /// The principal a chat identity is linked to, else `anonymous`; a
    /// sender the platform does not vouch for is never anyone's.
    async fn speaker_of(
        &self,
        sender: &ChatIdentity,
        origin: Origin,
    ) -> Result<Speaker, EngineError> {
        let link = if sender.is_verified() {
            self.shared
                .store
                .linked_principal(&sender.to_string())
                .await?
        } else {
            None
        };
        let (principal, linked) = match link {
            Some(p) => (p, true),
            None => (Principal::anonymous(), false),
        };
        Ok(Speaker {
            identity: self.identity_of(&principal, &[]).await?,
            origin,
            linked,
        })
    }

    /// The commands `speaker` may see (parsing: a command they may see but
    /// not run is answered with the denial, which is audited).
    fn viewable_commands(&self, speaker: &Speaker) -> CommandSet {
        let actions = self.visible_actions(&speaker.identity, &speaker.origin);
        CommandSet::new(actions.iter())
    }

    /// `help` and `help <command>`: only what `speaker` may run.
    fn help(&self, speaker: &Speaker, word: Option<&str>) -> Reply {
        let runnable: Vec<_> = self
            .visible_actions(&speaker.identity, &speaker.origin)
            .into_iter()
            .filter(|a| self.permits(&speaker.identity, &speaker.origin, Verb::Run, Some(a)))
            .collect();
        let commands = CommandSet::new(runnable.iter());
        match word {
            None => {
                let mut lines: Vec<(String, String)> = commands
                    .help()
                    .into_iter()
                    .map(|h| (h.usage, h.description))
                    .collect();
                if lines.is_empty() {
                    lines.push((
                        "(nothing)".to_owned(),
                        if speaker.linked {
                            "no policy lets you run a command from here".to_owned()
                        } else {
                            "you are not linked: say `link` to link your account".to_owned()
                        },
                    ));
                }
                lines.extend(
                    BUILTINS
                        .iter()
                        .map(|(u, d)| ((*u).to_owned(), (*d).to_owned())),
                );
                Reply::Code {
                    title: "Commands you can run here:".to_owned(),
                    code: table(&lines),
                }
            }
            Some(word) => {
                let entries = commands.help_for(word);
                if entries.is_empty() {
                    let text = match commands.suggest(word) {
                        Some(s) => format!(
                            "No command `{word}`. Did you mean `{s}`? Say `help` for the list."
                        ),
                        None => format!(
                            "No command `{word}` that you can run here. Say `help` for the list."
                        ),
                    };
                    return Reply::Text { text };
                }
                Reply::Code {
                    title: format!("Help for `{word}`:"),
                    code: entries
                        .iter()
                        .map(help_text)
                        .collect::<Vec<_>>()
                        .join("\n\n"),
                }
            }
        }
    }

    fn whoami(&self, inbound: &Inbound, speaker: &Speaker) -> Reply {
        let who = &speaker.identity;
        let groups = if who.groups.is_empty() {
            "no groups".to_owned()
        } else {
            format!(
                "groups {}",
                who.groups.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        };
        let text = if inbound.authenticated.is_some() {
            format!(
                "You are {} ({groups}), signed in here with a token.",
                who.principal
            )
        } else if speaker.linked {
            format!(
                "You are {}, linked to {} ({groups}). Say `unlink` to remove the link.",
                inbound.sender, who.principal
            )
        } else if !inbound.sender.is_verified() {
            format!(
                "You are {}, not signed in to an account this chat vouches for, so you act as `anonymous`. Sign in to your account on the chat network to link it.",
                inbound.sender
            )
        } else {
            format!(
                "You are {}, not linked to a Switchboard user, so you act as `anonymous`. Say `link` to link your account.",
                inbound.sender
            )
        };
        Reply::Text { text }
    }

    async fn chat_status(&self, speaker: &Speaker, args: &[&str]) -> Reply {
        if args.is_empty() {
            return self.chat_attention(speaker).await;
        }
        let id = match execution_id(args, "status") {
            Ok(id) => id,
            Err(reply) => return *reply,
        };
        match self
            .get_visible(&speaker.identity, &speaker.origin, id)
            .await
        {
            Ok(e) => Reply::Text {
                text: status_line(&e, self.link_to(e.id).as_deref()),
            },
            // One that may not be viewed is answered as missing.
            Err(EngineError::Forbidden(_)) => Reply::Refused {
                reason: format!("no execution {id}"),
            },
            Err(e) => refusal(e),
        }
    }

    /// `status` alone: the hosts that need attention, worst first.
    async fn chat_attention(&self, speaker: &Speaker) -> Reply {
        const WITHIN: Duration = Duration::from_secs(24 * 3600);
        const SHOWN: usize = 10;
        let since = switchboard_core::Timestamp::now().before(WITHIN);
        let hosts = match self
            .attention(&speaker.identity, &speaker.origin, since)
            .await
        {
            Ok(h) => h,
            Err(e) => return refusal(e),
        };
        if hosts.is_empty() {
            return Reply::Text {
                text:
                    "No host needs attention: every host's latest runs of the last 24h succeeded."
                        .to_owned(),
            };
        }
        let mut lines: Vec<String> = hosts
            .iter()
            .take(SHOWN)
            .map(|h| {
                let alerts = h.alerts.iter().map(|a| match &a.severity {
                    Some(severity) => format!("{} ({severity})", a.alertname),
                    None => a.alertname.clone(),
                });
                let failing = h
                    .failing
                    .iter()
                    .map(|f| format!("{} #{} {}", f.action, f.execution, f.status.as_str()));
                let said: Vec<String> = alerts.chain(failing).collect();
                format!("{}: {}", h.host, said.join(", "))
            })
            .collect();
        if hosts.len() > SHOWN {
            lines.push(format!(
                "… and {} more (`switchboard hosts --attention`)",
                hosts.len() - SHOWN
            ));
        }
        Reply::Code {
            title: format!(
                "{} host(s) need attention (runs of the last 24h, worst first)",
                hosts.len()
            ),
            code: lines.join("\n"),
        }
    }

    async fn chat_cancel(&self, speaker: &Speaker, args: &[&str]) -> Reply {
        let id = match execution_id(args, "cancel") {
            Ok(id) => id,
            Err(reply) => return *reply,
        };
        match self.cancel(id, &speaker.identity, &speaker.origin).await {
            Ok(e) => Reply::Text {
                text: format!(
                    "Execution {} ({}) is {}.",
                    e.id,
                    e.action,
                    e.status.as_str()
                ),
            },
            Err(e) => refusal(e),
        }
    }

    /// `answer ID TEXT`: an answer to the inquiry a workflow waits on.
    async fn chat_inquiry_answer(&self, speaker: &Speaker, args: &[&str]) -> Reply {
        let id = match execution_id(args, "answer") {
            Ok(id) => id,
            Err(reply) => return *reply,
        };
        if args.len() < 2 {
            return Reply::Refused {
                reason: format!("say `answer {id} ANSWER`"),
            };
        }
        let text = args[1..].join(" ");
        self.inquiry_reply(speaker, id, &text).await
    }

    async fn inquiry_reply(&self, speaker: &Speaker, id: ExecutionId, text: &str) -> Reply {
        match self
            .answer(id, None, &speaker.identity, &speaker.origin, text)
            .await
        {
            Ok(said) => Reply::Text {
                text: format!("{} answered {said}.", speaker.identity.principal),
            },
            Err(e) => refusal(e),
        }
    }

    async fn chat_answer(&self, speaker: &Speaker, approve: bool, args: &[&str]) -> Reply {
        let verb = if approve { "approve" } else { "reject" };
        let id = match execution_id(args, verb) {
            Ok(id) => id,
            Err(reply) => return *reply,
        };
        // A running workflow waits on a question: `approve` says yes.
        if let Ok(e) = self.get(id).await
            && e.status == ExecutionStatus::Running
            && self
                .catalog()
                .action(e.action.as_str())
                .is_some_and(|a| a.workflow.is_some())
        {
            let yes_no = if approve { "yes" } else { "no" };
            return self.inquiry_reply(speaker, id, yes_no).await;
        }
        let reason = (args.len() > 1).then(|| args[1..].join(" "));
        let who = &speaker.identity.principal;
        if approve {
            match self
                .approve(id, &speaker.identity, &speaker.origin, reason)
                .await
            {
                Ok(o) if o.approvals >= o.needed => Reply::Text {
                    text: format!(
                        "{who} approved execution {id} ({}); it runs now.",
                        o.execution.action
                    ),
                },
                Ok(o) => Reply::Text {
                    text: format!(
                        "{who} approved execution {id} ({}): {} of {} approvals.",
                        o.execution.action, o.approvals, o.needed
                    ),
                },
                Err(e) => refusal(e),
            }
        } else {
            match self
                .reject(id, &speaker.identity, &speaker.origin, reason)
                .await
            {
                Ok(e) => Reply::Text {
                    text: format!(
                        "{who} rejected execution {id} ({}); it will not run.",
                        e.action
                    ),
                },
                Err(e) => refusal(e),
            }
        }
    }

    /// A catalog command: parse, submit, acknowledge, then report the run.
    async fn chat_run(
        &self,
        inbound: &Inbound,
        speaker: &Speaker,
        text: &str,
        outlet: Arc<dyn ChatOutlet>,
    ) -> Result<(), EngineError> {
        let to = inbound.reply_to();
        let command = match self.viewable_commands(speaker).parse(text) {
            Ok(c) => c,
            Err(e) => {
                if !speaker.linked
                    && let CommandError::NoMatch { .. } = e
                    && let Ok(hidden) = CommandSet::new(self.catalog().actions()).parse(text)
                {
                    let why = "not a command for an unlinked user";
                    let action = hidden.action.as_str();
                    self.audit_unlinked_attempt(
                        &inbound.sender,
                        inbound.sender_name.as_deref(),
                        speaker,
                        action,
                        Some(why),
                    )
                    .await;
                }
                let reply = match e {
                    CommandError::Empty => Reply::Text {
                        text: "Say `help` to see what you can run here.".to_owned(),
                    },
                    CommandError::NoMatch { word, suggestion } if !speaker.linked => {
                        Reply::Refused {
                            reason: format!(
                                "no command `{word}` for an unlinked user{}; say `link` to link your account",
                                suggestion
                                    .map(|s| format!(" (did you mean `{s}`?)"))
                                    .unwrap_or_default()
                            ),
                        }
                    }
                    other => Reply::Refused {
                        reason: command_error_text(&other),
                    },
                };
                return say(&*outlet, &to, reply).await;
            }
        };
        let request = SubmitRequest {
            action: command.action.to_string(),
            params: command.params.clone(),
            requester: speaker.identity.clone(),
            origin: speaker.origin.clone(),
        };
        let submitted = self.submit(request).await;
        if !speaker.linked {
            let refused = submitted.as_ref().err().map(ToString::to_string);
            let action = command.action.as_str();
            self.audit_unlinked_attempt(
                &inbound.sender,
                inbound.sender_name.as_deref(),
                speaker,
                action,
                refused.as_deref(),
            )
            .await;
        }
        let execution = match submitted {
            Ok(e) => e,
            Err(EngineError::Forbidden(reason)) if !speaker.linked => {
                let reason = format!(
                    "{reason}. You are not linked to a Switchboard user: say `link` to link your account"
                );
                return say(&*outlet, &to, Reply::Refused { reason }).await;
            }
            Err(e) => return say(&*outlet, &to, refusal(e)).await,
        };
        let ack = command
            .ack
            .clone()
            .unwrap_or_else(|| format!("Running {}…", command.action));
        self.announce_run(execution, ack, to, outlet).await
    }

    /// Says in `to` that `execution` was accepted (with its approval
    /// request when it needs one), then follows it in the background,
    /// editing its progress in and posting its result in the thread.
    pub(crate) async fn announce_run(
        &self,
        execution: Execution,
        ack: String,
        to: Destination,
        outlet: Arc<dyn ChatOutlet>,
    ) -> Result<(), EngineError> {
        let reference = ExecutionRef {
            id: execution.id,
            action: execution.action.clone(),
            link: self.link_to(execution.id),
        };
        let accepted = Reply::Accepted {
            execution: reference.clone(),
            ack: ack.clone(),
        };
        let posted = outlet
            .post(&to, &accepted)
            .await
            .map_err(|e| EngineError::Internal(format!("posting the acknowledgement: {e}")))?;
        // Slash commands have no message to thread under: the ack starts the thread.
        let thread = if to.thread.is_some() {
            to
        } else {
            posted.thread()
        };
        if execution.status == ExecutionStatus::AwaitingApproval {
            let rule = execution.approval_rule.as_ref();
            let request = Reply::ApprovalRequest {
                execution: reference.clone(),
                requester: execution.requester.clone(),
                approvers: rule.map_or_else(String::new, |r| r.approvers_text()),
                expires_at: execution.approval_expires_at,
            };
            say(&*outlet, &thread, request).await?;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            follow::report(engine, execution, reference, ack, posted, thread, outlet).await;
        });
        Ok(())
    }

    /// The public link of an execution, when a public URL is configured.
    fn link_to(&self, id: ExecutionId) -> Option<String> {
        self.chat_settings().public_url.as_ref().map(|base| {
            format!(
                "{}/api/v1/executions/{id}/output",
                base.trim_end_matches('/')
            )
        })
    }

    /// The public link of a file an execution produced, when a public URL
    /// is configured.
    pub(crate) fn artifact_link(&self, id: ExecutionId, name: &str) -> Option<String> {
        self.chat_settings().public_url.as_ref().map(|base| {
            format!(
                "{}/api/v1/executions/{id}/artifacts/{name}",
                base.trim_end_matches('/')
            )
        })
    }

    /// Records that a chat user linked to no account asked to run `action`,
    /// and whether it was refused and why, naming the chat identity the
    /// `anonymous` principal stands for: the auditor's report lists who
    /// tried.
    async fn audit_unlinked_attempt(
        &self,
        sender: &ChatIdentity,
        name: Option<&str>,
        speaker: &Speaker,
        action: &str,
        refused: Option<&str>,
    ) {
        self.record(AuditEvent::now(
            &speaker.identity.principal,
            &speaker.origin,
            UNLINKED_ATTEMPT,
            format!("chat:{sender}"),
            if refused.is_some() {
                "refused"
            } else {
                "accepted"
            },
            serde_json::json!({
                "action": action,
                "name": name,
                "verified": sender.is_verified(),
                "reason": refused,
            }),
        ))
        .await;
    }

    /// Records a refused inbound chat request in the audit log when the
    /// sender it claims is linked to a principal (others are only logged:
    /// anyone can send junk, and it must not flood the audit log).
    pub async fn audit_chat_refusal(&self, sender: &ChatIdentity, reason: &str) {
        let Ok(Some(principal)) = self
            .shared
            .store
            .linked_principal(&sender.to_string())
            .await
        else {
            return;
        };
        let origin = Origin::new(format!("chat:{}:unknown", sender.platform))
            .unwrap_or_else(|_| Origin::system());
        self.record(AuditEvent::now(
            &principal,
            &origin,
            "chat.rejected",
            format!("chat:{sender}"),
            "rejected",
            serde_json::json!({"reason": reason}),
        ))
        .await;
    }
}

/// The text meant for the bot, with the prefix removed; `None` when the
/// bot was not addressed: neither mentioned, nor in a direct conversation
/// or the console, nor prefixed.
fn addressed_text(inbound: &Inbound, prefix: Option<&str>) -> Option<String> {
    let text = inbound.text.trim();
    if inbound.mentioned || inbound.room.direct || inbound.authenticated.is_some() {
        let text = prefix.and_then(|p| text.strip_prefix(p)).unwrap_or(text);
        return Some(text.trim().to_owned());
    }
    // `!uptime` addresses the bot; `!` alone or `! look` is just talk.
    text.strip_prefix(prefix?)
        .filter(|rest| !rest.is_empty() && !rest.starts_with(char::is_whitespace))
        .map(|rest| rest.trim().to_owned())
}

/// Posts one reply, turning an outlet failure into an error.
async fn say(outlet: &dyn ChatOutlet, to: &Destination, reply: Reply) -> Result<(), EngineError> {
    outlet
        .post(to, &reply)
        .await
        .map(|_| ())
        .map_err(|e| EngineError::Internal(format!("replying in chat: {e}")))
}

fn refusal(e: EngineError) -> Reply {
    Reply::Refused {
        reason: e.to_string(),
    }
}

/// The execution a built-in command names, or the refusal to answer.
fn execution_id(args: &[&str], verb: &str) -> Result<ExecutionId, Box<Reply>> {
    args.first()
        .and_then(|a| a.trim_start_matches('#').parse::<i64>().ok())
        .map(ExecutionId)
        .ok_or_else(|| {
            Box::new(Reply::Refused {
                reason: format!("say `{verb} ID`, with the execution's number"),
            })
        })
}

fn status_line(e: &switchboard_core::Execution, link: Option<&str>) -> String {
    let mut s = format!(
        "Execution {} ({}) requested by {} from {} is {}",
        e.id,
        e.action,
        e.requester,
        e.origin,
        e.status.as_str()
    );
    if let Some(code) = e.exit_code {
        s.push_str(&format!(" (exit code {code})"));
    }
    if let Some(error) = &e.error {
        s.push_str(&format!(": {error}"));
    }
    s.push('.');
    if let Some(link) = link {
        s.push_str(&format!(" Output: {link}"));
    }
    s
}

fn command_error_text(e: &CommandError) -> String {
    match e {
        CommandError::NoMatch { word, suggestion } => match suggestion {
            Some(s) => format!("no command `{word}`; did you mean `{s}`? Say `help` for the list"),
            None => format!("no command `{word}`; say `help` for the list"),
        },
        CommandError::Ambiguous { candidates } => format!(
            "that could mean several commands, so nothing was run: {}",
            candidates.join("; ")
        ),
        CommandError::Invalid {
            action,
            usage,
            message,
        } => format!("{message} (usage of {action}: `{usage}`)"),
        other => other.to_string(),
    }
}

/// Two columns, the first padded.
/// The text after a message's first word.
fn after_first_word(text: &str) -> &str {
    text.trim_start()
        .split_once(char::is_whitespace)
        .map_or("", |(_, rest)| rest.trim())
}

fn table(rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(a, _)| a.chars().count())
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|(a, b)| format!("{a:width$}  {b}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn help_text(h: &HelpEntry) -> String {
    let mut s = format!("{}\n  {} ({})", h.usage, h.description, h.action);
    for p in &h.params {
        s.push_str(&format!("\n  {p}"));
    }
    s
}

/// Zero-width and text-direction characters: invisible, yet they change
/// what a command means (`restart nginx` with a zero-width space is another
/// service; a right-to-left override shows text backwards).
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
    )
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use switchboard_core::chat::{ChatIdentity, Inbound, Room};

    use super::addressed_text;

    fn said(text: &str, mentioned: bool, direct: bool) -> Inbound {
        Inbound {
            delivery_id: None,
            sender: ChatIdentity::new("slack", "T1", "U1").unwrap(),
            sender_name: None,
            sender_is_bot: false,
            authenticated: None,
            room: Room {
                id: "C1".into(),
                name: None,
                direct,
            },
            thread: None,
            message_id: None,
            text: text.into(),
            mentioned,
        }
    }

    #[test]
    fn the_bot_answers_mentions_direct_messages_and_the_prefix_only() {
        let p = Some("!");
        assert_eq!(
            addressed_text(&said(" uptime ", true, false), p).as_deref(),
            Some("uptime")
        );
        assert_eq!(
            addressed_text(&said("uptime", false, true), p).as_deref(),
            Some("uptime")
        );
        assert_eq!(
            addressed_text(&said("!uptime", false, true), p).as_deref(),
            Some("uptime")
        );
        assert_eq!(
            addressed_text(&said("!uptime now", false, false), p).as_deref(),
            Some("uptime now")
        );
        assert_eq!(addressed_text(&said("uptime", false, false), p), None);
        assert_eq!(addressed_text(&said("! uptime", false, false), p), None);
        assert_eq!(addressed_text(&said("!", false, false), p), None);
        assert_eq!(addressed_text(&said("!uptime", false, false), None), None);
    }
}
