//! The chat-adapter compliance suite, end to end: the real `switchboard`
//! binary against a local fake of each platform that speaks its documented
//! wire format (the Web API and Socket Mode of Slack; the REST API v4,
//! websocket, slash commands, outgoing webhooks and interactive buttons of
//! Mattermost), recording every call it receives.
//!
//! What differs per platform is the [`Platform`] trait (`slack.rs`,
//! `mattermost.rs`): starting the fake, its `[chat.<platform>]` section, and
//! building what the platform sends (a message, a forged one, a stale one,
//! a redelivery, a button press). The scenarios are written once, generic
//! over it: `compliance.rs` (what every adapter must pass) and `flows.rs`
//! (linking an account and approving with buttons, through chat). Each
//! platform runs every scenario as its own test ([`suite!`]); `fake.rs`
//! has what the fakes share (their thread, the long-lived connection, and
//! waiting with a deadline).
//!
//! What every platform does, whether or not it has all of that (Teams,
//! Discord, IRC, XMPP and Matrix too), is a smaller suite of its own:
//! `every_door.rs`.
//!
//! Every scenario asserts what a user would notice (the replies' text and
//! thread, the file attached, who an execution ran as and from where), and
//! waits by polling with a deadline, never by sleeping a fixed time.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::authz::TEAM;
use crate::harness::{Server, copy_catalog, sample_catalog};

use self::fake::{Sockets, eventually};

/// One test per scenario for a platform: `suite!(Slack)` in its file.
macro_rules! suite {
    ($platform:ident) => {
        scenarios!($platform;
            compliance::a_forged_request_is_refused_and_nothing_runs,
            compliance::a_replayed_request_is_refused_and_nothing_runs,
            compliance::the_same_message_delivered_again_runs_once_and_is_answered_once,
            compliance::long_output_shows_its_tail_and_comes_whole_as_a_file_in_the_thread,
            compliance::a_long_run_shows_its_progress_edited_into_the_acknowledgement,
            compliance::replies_stay_in_the_thread_of_the_request,
            compliance::a_slash_command_is_acknowledged_and_the_result_follows_in_that_thread,
            compliance::a_prefixed_line_is_a_command_and_other_chatter_is_ignored,
            compliance::a_dropped_connection_is_opened_again_and_the_next_message_runs,
            compliance::bad_input_is_refused_clearly_and_nothing_runs,
            compliance::an_oversized_request_is_refused_with_a_clear_answer,
            flows::refused_requests_that_claim_a_linked_user_are_audited,
            flows::an_account_linked_through_chat_runs_as_its_user_until_unlinked,
            flows::a_link_code_that_cannot_be_sent_is_not_made,
            flows::an_approval_asked_in_the_thread_is_given_with_a_button_and_the_run_follows,
            flows::a_lapsed_approval_request_is_reported_in_its_thread,
            alert_rooms::an_alert_group_is_one_message_kept_current_whose_buttons_ack_automate_and_silence,
            alert_rooms::an_automation_the_policies_refuse_is_told_in_the_alert_thread,
        );
    };
}

/// A `#[tokio::test]` named after each scenario, running it on `$platform`.
macro_rules! scenarios {
    ($platform:ident; $($module:ident :: $scenario:ident),* $(,)?) => {
        mod suite {
            use super::super::{alert_rooms, compliance, flows};
            use super::$platform;

            $(
                #[tokio::test]
                async fn $scenario() {
                    $module::$scenario::<$platform>().await;
                }
            )*
        }
    };
}

mod alert_rooms;
mod cluster;
mod compliance;
mod discord;
pub(crate) mod every_door;
mod fake;
pub(crate) mod flows;
pub mod focused;
mod mattermost;
pub(crate) mod slack;
mod teams;

/// The rooms of the fake workspaces: `ops`, where the sample policies let
/// sre run fleet actions from chat, `general`, where they do not, and the
/// direct conversation of a message's author with the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Room {
    Ops,
    General,
    Direct,
}

impl Room {
    pub fn name(self) -> &'static str {
        match self {
            Room::Ops => "ops",
            Room::General => "general",
            Room::Direct => "direct",
        }
    }
}

/// A message a person posts on the platform.
#[derive(Debug, Clone)]
pub struct Msg {
    /// `alice`, `carol`, `mallory`: each platform has a user for each.
    pub user: &'static str,
    pub room: Room,
    /// What they typed, addressed to the bot.
    pub text: String,
    /// The platform's id of the message (Slack `ts`, Mattermost post id).
    pub id: String,
    /// The thread it was posted in.
    pub thread: Option<String>,
}

impl Msg {
    /// The thread the bot answers in: the message's own, else the message.
    pub fn reply_thread(&self) -> &str {
        self.thread.as_deref().unwrap_or(&self.id)
    }
}

/// What the platform sends Switchboard.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// A request to `/chat/<platform>/<endpoint>`.
    Http {
        endpoint: &'static str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A frame pushed over the long-lived connection.
    Socket(Value),
}

/// A message the bot posted, as the platform holds it.
#[derive(Debug, Clone)]
pub struct Said {
    pub id: String,
    pub room: String,
    pub thread: Option<String>,
    /// What a reader sees now (the blocks' or the post's markup).
    pub text: String,
    /// Every version, the first as posted, then each edit.
    pub versions: Vec<String>,
    /// The labels of its buttons.
    pub buttons: Vec<String>,
    /// The message as the platform stored it, to press its buttons.
    pub raw: Value,
}

/// A file the bot shared.
#[derive(Debug, Clone)]
pub struct Upload {
    pub filename: String,
    pub title: String,
    pub bytes: Vec<u8>,
    pub room: String,
    pub thread: Option<String>,
}

/// What differs from one platform to the next.
pub trait Platform: Sized + Send + Sync + 'static {
    /// `slack`, `mattermost`: the `<platform>` of routes and origins.
    const NAME: &'static str;

    /// Starts the fake platform.
    fn start() -> Self;
    /// The `[chat.<platform>]` section pointing at the fake, its secrets
    /// written as files into `secrets` and referenced as `file:`.
    fn config(&self, secrets: &Path) -> String;
    /// A policy to add to the sample catalog's, when its own do not cover
    /// the platform's `ops` room as they cover `slack:#ops`.
    fn policy(&self) -> Option<&'static str> {
        None
    }

    /// The platform's id of a room (`ops` or `general`).
    fn room_id(&self, room: Room) -> String;
    /// The origin of executions asked for in a room: `chat:slack:#ops`.
    fn origin(&self, room: Room) -> String;
    /// A user's chat identity, `platform:workspace/user`.
    fn identity(&self, user: &str) -> String;

    /// A message `user` posted at the top of `room`, to reply under.
    fn root(&self, user: &'static str, room: Room) -> String;
    /// A new message of `user` in `room` (in `thread`) saying `text` to the bot.
    fn msg(&self, user: &'static str, room: Room, text: &str, thread: Option<&str>) -> Msg;
    /// `user` saying `text` to the bot in their direct conversation, and
    /// how the platform delivers that.
    fn direct(&self, user: &'static str, text: &str) -> (Msg, Delivery);

    /// `m` as the platform delivers it over HTTP, signed or with its token.
    fn hook(&self, m: &Msg) -> Delivery;
    /// `m` as the platform pushes it over the long-lived connection.
    fn socket(&self, m: &Msg) -> Delivery;
    /// `m` typed as a slash command (`/switchboard <text>`).
    fn slash(&self, m: &Msg) -> Delivery;
    /// `m` typed as a slash command and delivered over the long-lived
    /// connection, where the platform does that.
    fn slash_over_socket(&self, _m: &Msg) -> Option<Delivery> {
        None
    }
    /// `m` said in its room without addressing the bot by name, as an app
    /// that listens to the room hears it.
    fn chatter(&self, m: &Msg) -> Delivery;
    /// `m` over HTTP as someone without the secret would send it, in each
    /// way worth trying, named.
    fn forgeries(&self, m: &Msg) -> Vec<(&'static str, Delivery)>;
    /// `m` over HTTP, authentic but old: a replay.
    fn stale(&self, m: &Msg) -> Delivery;
    /// `m` delivered more than once, in each way the platform does (its
    /// retries, another event for the same message, both doors).
    fn repeated(&self, m: &Msg) -> Vec<Delivery>;
    /// Authentic requests whose bodies are not what they should be, named.
    fn malformed(&self) -> Vec<(&'static str, Delivery)>;
    /// An authentic request that names `user` as its sender but lacks a
    /// field it must have.
    fn malformed_from(&self, user: &'static str) -> Delivery;
    /// `user` pressing Approve (or Reject) under the approval `request`.
    fn press(&self, request: &Said, user: &'static str, approve: bool) -> Delivery;
    /// `user` pressing the button labelled `label` of `message`.
    fn press_labelled(&self, message: &Said, user: &'static str, label: &str) -> Delivery;
    /// A press of `request`'s Approve made up by someone without the secret.
    fn forged_press(&self, request: &Said, user: &'static str) -> Delivery;
    /// [`Platform::press`] over the long-lived connection, where the
    /// platform does that.
    fn press_over_socket(
        &self,
        _request: &Said,
        _user: &'static str,
        _approve: bool,
    ) -> Option<Delivery> {
        None
    }

    /// Every message the bot posted, in order.
    fn said(&self) -> Vec<Said>;
    /// Every file the bot shared, in order.
    fn uploads(&self) -> Vec<Upload>;
    /// The direct conversation the bot opened with `user`, if any.
    fn direct_room(&self, user: &str) -> Option<String>;
    /// From now on the platform refuses (or lets) the bot open direct
    /// conversations, as when the app lacks the permission.
    fn refuse_directs(&self, refuse: bool);
    /// Plain text as it reads in the platform's markup (Slack escapes `&`,
    /// `<` and `>`).
    fn markup(&self, plain: &str) -> String {
        plain.to_owned()
    }
    /// The platform's side of the long-lived connection.
    fn sockets(&self) -> &Sockets;
    /// The frame by which the platform asks for a new connection, if it
    /// has one (Slack's `disconnect`, sent when it refreshes connections).
    fn goodbye(&self) -> Option<Value> {
        None
    }
    /// Whether the client kept the connection's protocol (acknowledged
    /// every envelope, authenticated every connection); why not.
    fn socket_protocol_kept(&self) -> Result<(), String>;
    /// The API calls received, for failure messages.
    fn calls(&self) -> Vec<String>;
}

/// A fake platform and the real server configured for it, with the sample
/// catalog and the team of `authz.rs` (alice in sre, carol in sre-leads);
/// or several nodes of it on one PostgreSQL ([`Rig::start_nodes`]).
pub struct Rig<P: Platform> {
    pub fake: P,
    /// The server; with several nodes, the first (which leads at first).
    pub server: Server,
    /// The other nodes.
    pub others: Vec<Server>,
    /// With several nodes: the first node's network to the database, to cut.
    pub link: Option<crate::partition::Link>,
    http: reqwest::Client,
    _catalog: tempfile::TempDir,
    _secrets: tempfile::TempDir,
    _database: Option<crate::pg::PgServer>,
}

impl<P: Platform> Rig<P> {
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// [`Rig::start`], with the copied catalog changed by `edit` first.
    pub fn start_with(edit: impl FnOnce(&Path)) -> Self {
        Self::start_for(|_, catalog| edit(catalog))
    }

    /// [`Rig::start_with`], where `edit` also sees the fake platform.
    pub fn start_for(edit: impl FnOnce(&P, &Path)) -> Self {
        Self::start_configured("", edit)
    }

    /// [`Rig::start_for`], with `extra` added to the server's configuration.
    pub fn start_configured(extra: &str, edit: impl FnOnce(&P, &Path)) -> Self {
        let (fake, catalog, secrets, config) = Self::prepare(edit);
        let server = Server::start_with_config(catalog.path(), &format!("{config}\n{extra}"));
        Self {
            fake,
            server,
            others: Vec::new(),
            link: None,
            http: reqwest::Client::new(),
            _catalog: catalog,
            _secrets: secrets,
            _database: None,
        }
    }

    /// `nodes` nodes (`node-1`, …) of the server on one real PostgreSQL,
    /// with `cluster` (a `[cluster]` section) added to their configuration;
    /// the first starts first, and so leads; it reaches the database
    /// through [`Rig::link`].
    pub async fn start_nodes(nodes: usize, cluster: &str) -> Self {
        let (fake, catalog, secrets, config) = Self::prepare(|_, _| {});
        let database = crate::pg::PgServer::start();
        let url = database.database("switchboard").await;
        let path = secrets.path().join("switchboard.toml");
        std::fs::write(&path, format!("{cluster}\n{config}")).unwrap();
        let extra = ["--config", path.to_str().unwrap()];
        let link = crate::partition::Link::to(database.addr());
        let mut servers: Vec<Server> = (1..=nodes)
            .map(|n| {
                let url = match n {
                    1 => link.url(&url, database.addr()),
                    _ => url.clone(),
                };
                Server::start_node(catalog.path(), &url, &format!("node-{n}"), &extra)
            })
            .collect();
        let server = servers.remove(0);
        Self {
            fake,
            server,
            others: servers,
            link: Some(link),
            http: reqwest::Client::new(),
            _catalog: catalog,
            _secrets: secrets,
            _database: Some(database),
        }
    }

    /// The fake, a copy of the sample catalog changed by `edit`, the
    /// secrets' folder and the server's configuration.
    fn prepare(edit: impl FnOnce(&P, &Path)) -> (P, tempfile::TempDir, tempfile::TempDir, String) {
        let fake = P::start();
        let catalog = tempfile::tempdir().unwrap();
        copy_catalog(&sample_catalog(), catalog.path());
        edit(&fake, catalog.path());
        if let Some(policy) = fake.policy() {
            std::fs::write(
                catalog.path().join(format!("policies/{}.cedar", P::NAME)),
                policy,
            )
            .unwrap();
        }
        let secrets = tempfile::tempdir().unwrap();
        // Progress comes soon, so that a short run shows it.
        let config = format!(
            "{TEAM}\n[chat]\nprogress_after = \"300ms\"\nprogress_every = \"300ms\"\n\n{}",
            fake.config(secrets.path())
        );
        (fake, catalog, secrets, config)
    }

    /// Sends an HTTP delivery as the platform would; its status and body.
    pub async fn post(&self, delivery: Delivery) -> (u16, String) {
        self.post_to(&self.server, delivery).await
    }

    /// [`Rig::post`] to one node.
    pub async fn post_to(&self, node: &Server, delivery: Delivery) -> (u16, String) {
        let Delivery::Http {
            endpoint,
            headers,
            body,
        } = delivery
        else {
            panic!("not an HTTP delivery: {delivery:?}");
        };
        let mut request = self
            .http
            .post(format!("{}/chat/{}/{endpoint}", node.url, P::NAME))
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// Delivers: over HTTP (answered 200), or pushed over the live connection.
    pub async fn deliver(&self, delivery: Delivery) {
        match delivery {
            Delivery::Socket(frame) => {
                self.fake.sockets().wait_connected(1).await;
                assert_eq!(
                    self.fake.sockets().push(&frame),
                    1,
                    "pushed on one connection"
                );
            }
            http => {
                let (status, body) = self.post(http).await;
                assert_eq!(status, 200, "the platform's request was refused: {body}");
            }
        }
    }

    /// The bot's messages in `thread`.
    pub fn in_thread(&self, thread: &str) -> Vec<Said> {
        self.fake
            .said()
            .into_iter()
            .filter(|s| s.thread.as_deref() == Some(thread))
            .collect()
    }

    /// The bot's messages in `room`.
    pub fn in_room(&self, room: Room) -> Vec<Said> {
        let id = self.fake.room_id(room);
        self.fake
            .said()
            .into_iter()
            .filter(|s| s.room == id)
            .collect()
    }

    /// Everything the platform saw, for failure messages.
    pub fn transcript(&self) -> String {
        let said: Vec<String> = self
            .fake
            .said()
            .iter()
            .map(|s| {
                format!(
                    "  [{} thread {:?} id {}] {}",
                    s.room,
                    s.thread,
                    s.id,
                    s.text.replace('\n', "\n    ")
                )
            })
            .collect();
        format!(
            "\nthe bot said:\n{}\nAPI calls: {:?}",
            said.join("\n"),
            self.fake.calls()
        )
    }

    /// Waits for a message of the bot in `thread` whose text contains `needle`.
    pub async fn reply(&self, thread: &str, needle: &str) -> Said {
        eventually(
            || {
                format!(
                    "a reply containing {needle:?} in thread {thread}{}",
                    self.transcript()
                )
            },
            || {
                self.in_thread(thread)
                    .into_iter()
                    .find(|s| s.text.contains(needle))
            },
        )
        .await
    }

    /// Waits for a message of the bot in `room` whose text contains `needle`.
    pub async fn said_in(&self, room_id: &str, needle: &str) -> Said {
        eventually(
            || {
                format!(
                    "a message containing {needle:?} in {room_id}{}",
                    self.transcript()
                )
            },
            || {
                self.fake
                    .said()
                    .into_iter()
                    .find(|s| s.room == room_id && s.text.contains(needle))
            },
        )
        .await
    }

    /// `user` says `text` in `room` over HTTP; the bot's first answer.
    pub async fn ask(&self, user: &'static str, room: Room, text: &str, needle: &str) -> Said {
        let m = self.fake.msg(user, room, text, None);
        self.deliver(self.fake.hook(&m)).await;
        self.reply(m.reply_thread(), needle).await
    }

    /// Something the server certainly handled after what was sent before
    /// it: mallory's `whoami` in `general`, and its answer.
    pub async fn barrier(&self) {
        self.ask("mallory", Room::General, "whoami", "You are")
            .await;
    }

    /// The executions, newest first.
    pub async fn executions(&self) -> Vec<Value> {
        let (status, page) = self.server.get("/executions").await;
        assert_eq!(status, 200, "{page}");
        page["executions"].as_array().unwrap().clone()
    }

    /// Waits until execution `id` ends; returns it.
    pub async fn finished(&self, id: i64) -> Value {
        tokio::time::timeout(Duration::from_secs(60), self.server.wait_finished(id))
            .await
            .unwrap()
    }

    /// The audit records of `kind`.
    pub async fn audit(&self, kind: &str) -> Vec<Value> {
        let (status, page) = self.server.get("/audit?limit=5000").await;
        assert_eq!(status, 200, "{page}");
        page["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == kind)
            .cloned()
            .collect()
    }
}

/// The execution id a reply names: `N` in `(action #N)` / `action #N`.
pub fn execution_id(text: &str, action: &str) -> i64 {
    let start = text
        .find(&format!("{action} #"))
        .unwrap_or_else(|| panic!("no `{action} #` in {text:?}"))
        + action.len()
        + 2;
    text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}
