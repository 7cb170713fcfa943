//! Discord, end to end: the real server behind its interactions endpoint,
//! and a fake of Discord's webhook API (the follow-ups and edits of each
//! interaction) that records every message the bot sent, as a reader of
//! the channel would see it. Requests are signed with an Ed25519 key made
//! here, whose public key the server is configured with.
//!
//! Discord passes the scenarios of every chat door (`every_door.rs`; it
//! hears no room chatter). The compliance suite of `mod.rs` needs a
//! long-lived connection and files, which this adapter has not, so the
//! rest is tested here on its own: forged, replayed and malformed
//! requests, a delivery repeated, and an approval with buttons.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::patch;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

use super::every_door::{Asked, Door, doors};
use super::execution_id;
use super::fake::{bind, eventually, serve};
use super::focused::{catalog_with_policy, executions, link_code, post, refused_because};
use crate::authz::TEAM;
use crate::harness::Server;

const APP: &str = "1100000000000000001";
const GUILD: &str = "1200000000000000002";
const OPS: &str = "1300000000000000003";

fn user_id(user: &str) -> &'static str {
    match user {
        "alice" => "1400000000000000001",
        "carol" => "1400000000000000002",
        _ => "1400000000000000009",
    }
}

/// A message the bot sent through an interaction's webhook.
#[derive(Debug, Clone)]
struct Sent {
    /// The interaction token it was sent with.
    token: String,
    id: String,
    content: String,
    ephemeral: bool,
    /// The `custom_id` of its buttons.
    buttons: Vec<String>,
}

#[derive(Clone, Default)]
struct Fake {
    sent: Arc<Mutex<Vec<Sent>>>,
}

impl Fake {
    fn store(&self, token: String, id: Option<String>, body: &Value) -> Value {
        let mut sent = self.sent.lock().unwrap();
        let buttons = body["components"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
            .filter_map(|b| b["custom_id"].as_str().map(str::to_owned))
            .collect();
        let message = Sent {
            id: id.unwrap_or_else(|| format!("m{}", sent.len() + 1)),
            content: body["content"].as_str().unwrap_or("").to_owned(),
            ephemeral: body["flags"].as_u64() == Some(64),
            buttons,
            token,
        };
        let answer = json!({ "id": message.id, "channel_id": OPS });
        match sent
            .iter_mut()
            .find(|m| m.token == message.token && m.id == message.id)
        {
            Some(old) => *old = message,
            None => sent.push(message),
        }
        answer
    }

    fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    /// The bot's messages for interaction `id`.
    fn answers(&self, id: &str) -> Vec<Sent> {
        let token = format!("token-{id}");
        self.sent()
            .into_iter()
            .filter(|m| m.token == token)
            .collect()
    }

    /// Waits for a message for interaction `id` that contains `needle`.
    async fn answer(&self, id: &str, needle: &str) -> Sent {
        eventually(
            || format!("{needle:?} in answer to {id}: {:#?}", self.sent()),
            || {
                self.answers(id)
                    .into_iter()
                    .find(|m| m.content.contains(needle))
            },
        )
        .await
    }
}

async fn follow_up(
    State(fake): State<Fake>,
    Path((app, token)): Path<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    assert_eq!(app, APP);
    axum::Json(fake.store(token, None, &body))
}

async fn edit(
    State(fake): State<Fake>,
    Path((app, token, id)): Path<(String, String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> axum::Json<Value> {
    assert_eq!(app, APP);
    let id = if id == "@original" {
        format!("original-{token}")
    } else {
        id
    };
    axum::Json(fake.store(token, Some(id), &body))
}

/// The server configured for Discord, the fake and the signing key.
struct Rig {
    server: Server,
    fake: Fake,
    key: SigningKey,
    next: Mutex<u64>,
    _catalog: tempfile::TempDir,
}

impl Rig {
    fn start() -> Self {
        let fake = Fake::default();
        let (listener, addr) = bind();
        let app = Router::new()
            .route(
                "/api/webhooks/{app}/{token}",
                axum::routing::post(follow_up),
            )
            .route("/api/webhooks/{app}/{token}/messages/{id}", patch(edit))
            .with_state(fake.clone());
        serve(listener, app);
        let key = SigningKey::from_bytes(&[42; 32]);
        let catalog = catalog_with_policy(
            "discord",
            "@id(\"sre-runs-fleet-actions-from-discord\")\n\
             permit (principal in Group::\"sre\", action in [Action::\"run\", Action::\"cancel\"], resource)\n\
             when { (resource.name like \"service.*\" || resource.name like \"db.*\") &&\n\
             context has channel && context.channel == Channel::\"discord:#ops\" };\n",
        );
        let config = format!(
            "{TEAM}\n[chat.discord]\napplication_id = \"{APP}\"\npublic_key = \"{}\"\napi_base = \"http://{addr}/api\"\n",
            hex::encode(key.verifying_key().to_bytes())
        );
        let server = Server::start_with_config(catalog.path(), &config);
        Self {
            server,
            fake,
            key,
            next: Mutex::new(9000),
            _catalog: catalog,
        }
    }

    fn url(&self) -> String {
        format!("{}/chat/discord/interactions", self.server.url)
    }

    /// A new interaction id.
    fn id(&self) -> String {
        let mut next = self.next.lock().unwrap();
        *next += 1;
        next.to_string()
    }

    /// `user` typing `/switchboard text:<text>` in `#ops`.
    fn command(&self, user: &str, text: &str) -> (String, Value) {
        let id = self.id();
        let body = json!({
            "type": 2, "id": id, "application_id": APP, "token": format!("token-{id}"),
            "version": 1, "guild_id": GUILD, "channel_id": OPS,
            "channel": { "id": OPS, "name": "ops", "type": 0 },
            "member": { "user": { "id": user_id(user), "username": user } },
            "data": { "name": "switchboard", "type": 1,
                      "options": [{ "name": "text", "type": 3, "value": text }] },
        });
        (id, body)
    }

    /// `user` pressing the button `custom_id` in `#ops`.
    fn press(&self, user: &str, custom_id: &str) -> (String, Value) {
        let (id, mut body) = self.command(user, "");
        body["type"] = json!(3);
        body["data"] = json!({ "custom_id": custom_id, "component_type": 2 });
        (id, body)
    }

    /// Sends `body` signed by `key` at `timestamp` seconds; status and answer.
    async fn send_signed(&self, key: &SigningKey, timestamp: i64, body: &[u8]) -> (u16, Value) {
        let timestamp = timestamp.to_string();
        let signature = key.sign(&[timestamp.as_bytes(), body].concat());
        let headers = [
            ("x-signature-ed25519", hex::encode(signature.to_bytes())),
            ("x-signature-timestamp", timestamp),
        ];
        post(&self.url(), &headers, body).await
    }

    async fn send(&self, body: &Value) -> (u16, Value) {
        self.send_signed(&self.key, now(), body.to_string().as_bytes())
            .await
    }

    /// `user` says `text`; the interaction's id, once Discord was told to wait.
    async fn say(&self, user: &str, text: &str) -> String {
        let (id, body) = self.command(user, text);
        assert_eq!(self.send(&body).await, (200, json!({ "type": 5 })));
        id
    }

    /// `user` links their Discord account, confirmed with `token`.
    async fn link(&self, user: &str, token: &str) {
        let id = self.say(user, "link").await;
        let code = self.fake.answer(&id, "Your link code is ").await;
        assert!(code.ephemeral, "the code is for {user}'s eyes only");
        let public = self.fake.answers(&id);
        assert!(
            public
                .iter()
                .filter(|m| !m.ephemeral)
                .all(|m| !m.content.contains("link code is")),
            "{public:#?}"
        );
        let code = link_code(&code.content);
        let out = self.server.cli_as(token, &["link", &code]);
        assert!(out.status.success(), "{out:?}");
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn discord_pings_are_answered_and_forged_replayed_or_malformed_interactions_refused() {
    let rig = Rig::start();
    assert_eq!(
        rig.send(&json!({ "type": 1, "id": "1" })).await,
        (200, json!({ "type": 1 }))
    );

    let (_, body) = rig.command("alice", "uptime");
    let bytes = body.to_string().into_bytes();
    let stranger = SigningKey::from_bytes(&[1; 32]);
    refused_because(
        rig.send_signed(&stranger, now(), &bytes).await,
        401,
        "signature",
    );
    refused_because(
        rig.send_signed(&rig.key, now() - 600, &bytes).await,
        401,
        "replay",
    );
    assert_eq!(post(&rig.url(), &[], &bytes).await.0, 401);
    let malformed = rig.send_signed(&rig.key, now(), b"{\"type\": 2,").await;
    refused_because(malformed, 400, "not the JSON expected");

    // Something certainly handled after all of that: nothing ran, and
    // nothing was said but the answer to it.
    let id = rig.say("mallory", "whoami").await;
    rig.fake.answer(&id, "You are").await;
    assert!(executions(&rig.server).await.is_empty());
    assert_eq!(rig.fake.sent().len(), 1, "{:#?}", rig.fake.sent());
}

#[tokio::test]
async fn discord_commands_run_as_anonymous_then_as_the_linked_user_and_a_retry_runs_once() {
    let rig = Rig::start();
    let (id, body) = rig.command("mallory", "uptime");
    for _ in 0..2 {
        assert_eq!(rig.send(&body).await, (200, json!({ "type": 5 })));
    }
    let result = rig.fake.answer(&id, "succeeded").await;
    let run = execution_id(&result.content, "host.uptime");
    let ran = executions(&rig.server).await;
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert_eq!(ran[0]["id"], run);
    assert_eq!(ran[0]["requester"], "anonymous");
    assert_eq!(ran[0]["origin"], "chat:discord:#ops");
    let answers = rig.fake.answers(&id);
    assert!(
        answers[0].content.contains("Running host.uptime"),
        "the deferred message became the acknowledgement: {answers:#?}"
    );

    let refused = rig.say("alice", "restart nginx").await;
    rig.fake
        .answer(
            &refused,
            "no policy permits anonymous to run service.restart",
        )
        .await;
    let alice = rig.server.token_for("alice");
    rig.link("alice", &alice).await;
    let id = rig.say("alice", "whoami").await;
    rig.fake
        .answer(
            &id,
            &format!(
                "You are discord:{GUILD}/{}, linked to alice",
                user_id("alice")
            ),
        )
        .await;
    let id = rig.say("alice", "restart nginx").await;
    let result = rig.fake.answer(&id, "succeeded").await;
    let run = execution_id(&result.content, "service.restart");
    let e = rig.server.wait_finished(run).await;
    assert_eq!(e["requester"], "alice");
    assert_eq!(e["origin"], "chat:discord:#ops");
}

#[tokio::test]
async fn discord_an_approval_is_given_with_its_button_and_the_result_follows() {
    let rig = Rig::start();
    let alice = rig.server.token_for("alice");
    let carol = rig.server.token_for("carol");
    rig.link("alice", &alice).await;
    rig.link("carol", &carol).await;

    let asked = rig.say("alice", "failover to db-2").await;
    let ack = rig
        .fake
        .answer(&asked, "Asking for approval to promote db-2")
        .await;
    let run = execution_id(&ack.content, "db.failover");
    let request = rig.fake.answer(&asked, "Approval needed:").await;
    assert_eq!(
        request.buttons,
        [format!("approve:{run}"), format!("reject:{run}")]
    );

    // alice may not approve her own request.
    let (own, press) = rig.press("alice", &request.buttons[0]);
    assert_eq!(rig.send(&press).await, (200, json!({ "type": 5 })));
    rig.fake.answer(&own, "someone else must approve").await;

    let (pressed, press) = rig.press("carol", &request.buttons[0]);
    assert_eq!(rig.send(&press).await, (200, json!({ "type": 5 })));
    rig.fake
        .answer(&pressed, &format!("carol approved execution {run}"))
        .await;
    // The result goes where it was asked for.
    rig.fake.answer(&asked, "succeeded").await;
    let e = rig.server.wait_finished(run).await;
    assert_eq!(e["status"], "succeeded", "{e}");
    assert_eq!(e["approvals"][0]["approver"], "carol");
}

/// Discord as every chat door: each request is a slash command in `#ops`,
/// answered through its interaction; what is for one person alone is
/// ephemeral.
struct DiscordDoor {
    rig: Rig,
    /// Who asked each interaction.
    asked: Vec<(&'static str, String)>,
}

impl Door for DiscordDoor {
    async fn open() -> Self {
        Self {
            rig: Rig::start(),
            asked: Vec::new(),
        }
    }

    fn server(&self) -> &Server {
        &self.rig.server
    }

    fn origin(&self) -> String {
        "chat:discord:#ops".to_owned()
    }

    async fn ask(&mut self, user: &'static str, text: &str) -> Asked {
        let handle = self.rig.say(user, text).await;
        self.asked.push((user, handle.clone()));
        Asked { user, handle }
    }

    async fn answer(&mut self, asked: &Asked, needle: &str) -> String {
        eventually(
            || {
                format!(
                    "{needle:?} in answer to {}: {:#?}",
                    asked.handle,
                    self.rig.fake.sent()
                )
            },
            || {
                let said: Vec<String> = self
                    .rig
                    .fake
                    .answers(&asked.handle)
                    .into_iter()
                    .filter(|m| !m.ephemeral)
                    .map(|m| m.content)
                    .collect();
                let last = said.iter().position(|m| m.contains(needle))?;
                Some(said[..=last].join("\n"))
            },
        )
        .await
    }

    async fn private(&mut self, user: &'static str, needle: &str) -> String {
        let theirs: Vec<String> = self
            .asked
            .iter()
            .filter(|(who, _)| *who == user)
            .map(|(_, id)| id.clone())
            .collect();
        eventually(
            || format!("{needle:?} to {user} alone: {:#?}", self.rig.fake.sent()),
            || {
                theirs.iter().find_map(|id| {
                    self.rig
                        .fake
                        .answers(id)
                        .into_iter()
                        .find(|m| m.ephemeral && m.content.contains(needle))
                        .map(|m| m.content)
                })
            },
        )
        .await
    }
}

doors!(DiscordDoor;
    asked_in_ops_it_runs_as_the_speaker_from_ops_and_is_answered_there,
    an_account_linked_through_chat_runs_as_its_user,
    what_is_refused_or_not_understood_is_told_and_nothing_runs,
    a_message_too_long_to_read_is_refused,
);
