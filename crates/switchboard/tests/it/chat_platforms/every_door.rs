//! What every chat door must do, on every platform — Slack, Mattermost,
//! Teams, Discord, IRC, XMPP and Matrix — written once over [`Door`]: a
//! request said in the ops room runs as its speaker, from that room, and
//! is answered there; an account is linked through chat, and then runs as
//! its user (a bare IRC nick never is); what is refused or not understood
//! is told and runs nothing; what does not address the bot runs nothing;
//! a message too long to read is refused.
//!
//! Each platform implements [`Door`] beside its own tests (Slack and
//! Mattermost through the compliance suite's [`Rig`]) and lists the
//! scenarios that apply to it with [`doors!`]: Teams' outgoing webhooks
//! and Discord's slash commands only ever deliver what addresses the bot,
//! and an IRC line cannot carry 4000 characters.

use serde_json::Value;

use super::fake::eventually;
use super::{Platform, Rig, Room, execution_id};
use crate::chat_platforms::focused::link_code;
use crate::harness::Server;

/// Whatever identifies a request, to find the bot's answers to it: the
/// thread it opened, the interaction, the room, or how many messages the
/// room had before.
#[derive(Debug, Clone)]
pub struct Asked {
    pub user: &'static str,
    pub handle: String,
}

/// A chat platform as the scenarios drive it: people (`alice`, in sre, and
/// `mallory`, nobody) say things to the bot in the ops room and read its
/// answers there, or in their direct conversation with it.
#[allow(async_fn_in_trait, reason = "the scenarios run on one thread")]
pub trait Door: Sized {
    /// Starts the platform (a real server, or a fake of its wire format)
    /// and Switchboard connected to it, with the sample catalog and the
    /// team of `authz.rs`; returns once the bot is there.
    async fn open() -> Self;
    fn server(&self) -> &Server;
    /// The origin of what is asked in the ops room (`chat:slack:#ops`).
    fn origin(&self) -> String;
    /// `user` says `text` to the bot in the ops room.
    async fn ask(&mut self, user: &'static str, text: &str) -> Asked;
    /// Waits for the bot's answer to `asked` that contains `needle`; its text.
    async fn answer(&mut self, asked: &Asked, needle: &str) -> String;
    /// Waits for the bot's message to `user` alone that contains `needle`;
    /// its text.
    async fn private(&mut self, user: &'static str, needle: &str) -> String;
}

/// A door where the bot hears what is said in the room without being
/// addressed (not Teams' outgoing webhooks or Discord's slash commands).
#[allow(async_fn_in_trait, reason = "the scenarios run on one thread")]
pub trait Overhears: Door {
    /// `user` says `text` in the ops room without addressing the bot.
    async fn chatter(&mut self, user: &'static str, text: &str);
}

/// One test per scenario that applies to the platform:
/// `doors!(Irc; asked_in_ops_…, …)` in its file.
macro_rules! doors {
    ($door:ident; $($scenario:ident),* $(,)?) => {
        mod every_door {
            use super::$door;

            $(
                #[tokio::test]
                async fn $scenario() {
                    $crate::chat_platforms::every_door::$scenario::<$door>().await;
                }
            )*
        }
    };
}
pub(crate) use doors;

async fn asked_and_answered<D: Door>(
    door: &mut D,
    user: &'static str,
    text: &str,
    needle: &str,
) -> String {
    let asked = door.ask(user, text).await;
    door.answer(&asked, needle).await
}

/// Waits until `run` ends; it as the API shows it.
async fn finished<D: Door>(door: &D, run: i64) -> Value {
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        door.server().wait_finished(run),
    )
    .await
    .unwrap_or_else(|_| panic!("execution {run} never ended"))
}

async fn executions<D: Door>(door: &D) -> Vec<Value> {
    let (_, page) = door.server().get("/executions").await;
    page["executions"].as_array().unwrap().clone()
}

pub async fn asked_in_ops_it_runs_as_the_speaker_from_ops_and_is_answered_there<D: Door>() {
    let mut door = D::open().await;
    let asked = door.ask("mallory", "echo hello from every door").await;
    let result = door.answer(&asked, "succeeded").await;
    let run = execution_id(&result, "demo.echo");
    door.answer(&asked, "hello from every door").await;
    let e = finished(&door, run).await;
    assert_eq!(
        (
            e["requester"].as_str(),
            e["origin"].as_str(),
            e["params"]["message"].as_str()
        ),
        (
            Some("anonymous"),
            Some(door.origin().as_str()),
            Some("hello from every door")
        ),
        "{e}"
    );
}

pub async fn an_account_linked_through_chat_runs_as_its_user<D: Door>() {
    let mut door = D::open().await;
    let refused = asked_and_answered(&mut door, "alice", "restart nginx", "Refused:").await;
    assert!(refused.contains("anonymous"), "{refused}");
    door.ask("alice", "link").await;
    let code = link_code(&door.private("alice", "Your link code is ").await);
    let token = door.server().token_for("alice");
    let out = door.server().cli_as(&token, &["link", &code]);
    assert!(out.status.success(), "{out:?}");
    asked_and_answered(&mut door, "alice", "whoami", "linked to alice").await;
    let result = asked_and_answered(&mut door, "alice", "echo as alice", "succeeded").await;
    let e = finished(&door, execution_id(&result, "demo.echo")).await;
    assert_eq!(e["requester"], "alice", "{e}");
    // Nobody else became alice.
    let result = asked_and_answered(&mut door, "mallory", "echo as mallory", "succeeded").await;
    let e = finished(&door, execution_id(&result, "demo.echo")).await;
    assert_eq!(e["requester"], "anonymous", "{e}");

    // The auditor's report names who asked while linked to no account —
    // alice, linked since — and says when the door last heard anyone.
    let (_, report) = door.server().get("/report").await;
    let unlinked = report["identity"]["unlinked"].as_array().unwrap();
    let mut tried: Vec<(&str, u64, u64, &str)> = unlinked
        .iter()
        .map(|u| {
            (
                u["actions"][0].as_str().unwrap(),
                u["attempts"].as_u64().unwrap(),
                u["refused"].as_u64().unwrap(),
                u["linked_now"].as_str().unwrap_or("nobody"),
            )
        })
        .collect();
    tried.sort_unstable();
    assert_eq!(
        tried,
        [
            ("demo.echo", 1, 0, "nobody"),
            ("service.restart", 1, 1, "alice")
        ],
        "{report}"
    );
    let platform = door.origin().split(':').nth(1).unwrap().to_owned();
    let this_door = report["doors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["door"] == format!("chat:{platform}"))
        .unwrap_or_else(|| panic!("no door chat:{platform} in {report}"));
    assert!(this_door["last_event"].is_string(), "{this_door}");
}

pub async fn a_bare_nick_is_never_linked<D: Door>() {
    let mut door = D::open().await;
    let whoami = asked_and_answered(&mut door, "alice", "whoami", "anonymous").await;
    assert!(whoami.contains("not signed in to an account"), "{whoami}");
    let link = asked_and_answered(&mut door, "alice", "link", "Refused:").await;
    assert!(link.contains("anyone can take a nick"), "{link}");
}

pub async fn what_is_refused_or_not_understood_is_told_and_nothing_runs<D: Door>() {
    let mut door = D::open().await;
    for (text, why) in [
        (
            "restart nginx",
            "no policy permits anonymous to run service.restart",
        ),
        ("frobnicate now", "no command `frobnicate`"),
        ("echo \"oops", "never closed"),
        ("restart nginx\u{200b}", "invisible character (U+200B)"),
    ] {
        let answer = asked_and_answered(&mut door, "mallory", text, "Refused:").await;
        assert!(answer.contains(why), "{text:?}: {answer}");
    }
    asked_and_answered(&mut door, "mallory", "whoami", "You are").await;
    let ran = executions(&door).await;
    assert!(ran.is_empty(), "nothing may run: {ran:?}");
}

pub async fn a_message_too_long_to_read_is_refused<D: Door>() {
    let mut door = D::open().await;
    let huge = format!("echo {}", "x".repeat(5000));
    let answer = asked_and_answered(&mut door, "mallory", &huge, "Refused:").await;
    assert!(
        answer.contains("longer than 4000 characters; nothing was run"),
        "{answer}"
    );
    asked_and_answered(&mut door, "mallory", "whoami", "You are").await;
    assert!(executions(&door).await.is_empty());
}

pub async fn only_what_addresses_the_bot_runs<D: Overhears>() {
    let mut door = D::open().await;
    for text in ["echo nobody asked", "uptime is fine today"] {
        door.chatter("mallory", text).await;
    }
    let result = asked_and_answered(&mut door, "mallory", "echo asked", "succeeded").await;
    execution_id(&result, "demo.echo");
    asked_and_answered(&mut door, "mallory", "whoami", "You are").await;
    let ran = executions(&door).await;
    assert_eq!(ran.len(), 1, "only what addressed the bot: {ran:?}");
}

/// Slack and Mattermost: the compliance suite's fakes.
impl<P: Platform> Door for Rig<P> {
    async fn open() -> Self {
        Rig::start()
    }

    fn server(&self) -> &Server {
        &self.server
    }

    fn origin(&self) -> String {
        self.fake.origin(Room::Ops)
    }

    async fn ask(&mut self, user: &'static str, text: &str) -> Asked {
        let m = self.fake.msg(user, Room::Ops, text, None);
        self.deliver(self.fake.hook(&m)).await;
        Asked {
            user,
            handle: m.reply_thread().to_owned(),
        }
    }

    async fn answer(&mut self, asked: &Asked, needle: &str) -> String {
        self.reply(&asked.handle, needle).await.text
    }

    async fn private(&mut self, user: &'static str, needle: &str) -> String {
        let room = eventually(
            || format!("a direct conversation with {user}{}", self.transcript()),
            || self.fake.direct_room(user),
        )
        .await;
        self.said_in(&room, needle).await.text
    }
}

impl<P: Platform> Overhears for Rig<P> {
    async fn chatter(&mut self, user: &'static str, text: &str) {
        let m = self.fake.msg(user, Room::Ops, text, None);
        self.deliver(self.fake.chatter(&m)).await;
    }
}

/// What one person heard from the bot, in order: where (a room, or
/// privately) and the text — for doors whose people read a stream of
/// messages (IRC, XMPP) rather than ask a fake what was posted.
#[derive(Debug, Default)]
pub struct Heard(Vec<(String, String)>);

impl Heard {
    /// Where the next message will be, for [`Heard::find`].
    pub fn mark(&self) -> String {
        self.0.len().to_string()
    }

    pub fn push(&mut self, place: String, text: String) {
        self.0.push((place, text));
    }

    /// From `mark` on, the texts said in `place` up to the first that
    /// contains `needle`, one per line; `None` until it was said.
    pub fn find(&self, mark: &str, place: &str, needle: &str) -> Option<String> {
        let from: usize = mark.parse().unwrap_or(0);
        let said: Vec<&str> = self.0[from.min(self.0.len())..]
            .iter()
            .filter(|(p, _)| p == place)
            .map(|(_, text)| text.as_str())
            .collect();
        let last = said.iter().position(|text| text.contains(needle))?;
        Some(said[..=last].join("\n"))
    }
}
