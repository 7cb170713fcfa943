//! Microsoft Teams, end to end: the real server behind an outgoing
//! webhook's URL, signed as Teams signs (HMAC-SHA256 with the security
//! token), and a fake of the Workflows URLs that records every card the
//! bot posts: the `#ops` channel's, the default one, and the private one.
//!
//! Teams passes the scenarios of every chat door (`every_door.rs`; an
//! outgoing webhook hears no chatter). The compliance suite of `mod.rs`
//! needs threads, edits, buttons, files and a long-lived connection,
//! which Teams' outgoing webhooks have not, so the rest is tested here on
//! its own: forged, replayed and malformed requests, the acknowledgement
//! in the response, the link code sent privately, and a delivery
//! repeated.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::every_door::{Asked, Door, doors};
use super::execution_id;
use super::fake::{bind, eventually, serve};
use super::focused::{catalog_with_policy, executions, link_code, post, refused_because};
use crate::authz::TEAM;
use crate::harness::Server;

const TOKEN: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const OPS: &str = "19:253b1f341670408fb6fe51050b6e5ceb@thread.tacv2";

fn user_id(user: &str) -> String {
    let n = match user {
        "alice" => 1,
        "carol" => 2,
        _ => 9,
    };
    format!("a1b2c3d4-0000-4000-8000-00000000000{n}")
}

/// What a Workflows URL was sent: which one (`ops`, `default`, `direct`)
/// and the text of its card.
#[derive(Debug, Clone)]
struct Card {
    url: String,
    text: String,
    recipient: Value,
}

#[derive(Clone, Default)]
struct Fake {
    cards: Arc<Mutex<Vec<Card>>>,
}

impl Fake {
    fn cards(&self) -> Vec<Card> {
        self.cards.lock().unwrap().clone()
    }

    /// Waits for a card posted to `url` whose text contains `needle`.
    async fn card(&self, url: &str, needle: &str) -> Card {
        eventually(
            || format!("{needle:?} posted to {url}: {:#?}", self.cards()),
            || {
                self.cards()
                    .into_iter()
                    .find(|c| c.url == url && c.text.contains(needle))
            },
        )
        .await
    }
}

async fn workflow(
    State(fake): State<Fake>,
    Path(url): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> StatusCode {
    let card = &body["attachments"][0]["content"];
    assert_eq!(card["type"], "AdaptiveCard", "{body}");
    // What a reader sees of each block: a text block's text, a rich text
    // block's runs.
    let text: Vec<String> = card["body"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| match b["type"].as_str() {
            Some("RichTextBlock") => b["inlines"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|run| run["text"].as_str())
                .collect(),
            _ => b["text"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    fake.cards.lock().unwrap().push(Card {
        url,
        text: text.join("\n"),
        recipient: body["recipient"].clone(),
    });
    StatusCode::ACCEPTED
}

struct Rig {
    server: Server,
    fake: Fake,
    next: Mutex<u64>,
    _dirs: [tempfile::TempDir; 2],
}

impl Rig {
    fn start() -> Self {
        let fake = Fake::default();
        let (listener, addr) = bind();
        let app = Router::new()
            .route("/workflows/{url}", axum::routing::post(workflow))
            .with_state(fake.clone());
        serve(listener, app);
        let catalog = catalog_with_policy(
            "teams",
            "@id(\"sre-runs-fleet-actions-from-teams\")\n\
             permit (principal in Group::\"sre\", action in [Action::\"run\", Action::\"cancel\"], resource)\n\
             when { resource.name like \"service.*\" &&\n\
             context has channel && context.channel == Channel::\"teams:#ops\" };\n",
        );
        let secrets = tempfile::tempdir().unwrap();
        let secret = |name: &str, value: String| {
            let path = secrets.path().join(name);
            std::fs::write(&path, value).unwrap();
            format!("file:{}", path.display())
        };
        let config = format!(
            "{TEAM}\n[chat.teams]\nsecurity_tokens = [\"{}\"]\nwebhook_url = \"{}\"\ndirect_url = \"{}\"\n\
             [chat.teams.rooms.\"{OPS}\"]\nname = \"ops\"\nwebhook_url = \"{}\"\n",
            secret("token", TOKEN.to_owned()),
            secret("default", format!("http://{addr}/workflows/default")),
            secret("direct", format!("http://{addr}/workflows/direct")),
            secret("ops", format!("http://{addr}/workflows/ops")),
        );
        let server = Server::start_with_config(catalog.path(), &config);
        Self {
            server,
            fake,
            next: Mutex::new(1_700_000_000_000),
            _dirs: [catalog, secrets],
        }
    }

    /// `user` saying `@Switchboard <text>` in `#ops`, `ago` seconds ago.
    fn activity(&self, user: &str, text: &str, ago: i64) -> Value {
        let id = {
            let mut next = self.next.lock().unwrap();
            *next += 1;
            next.to_string()
        };
        let at = std::time::SystemTime::now() - std::time::Duration::from_secs(ago as u64);
        json!({
            "type": "message", "id": id,
            "timestamp": humantime::format_rfc3339_millis(at).to_string(),
            "channelId": "msteams",
            "from": { "id": format!("29:{user}"), "name": user, "aadObjectId": user_id(user) },
            "conversation": { "isGroup": true, "id": format!("{OPS};messageid={id}") },
            "text": format!("<at>Switchboard</at> {text}"),
            "channelData": {
                "teamsChannelId": OPS, "channel": { "id": OPS },
                "tenant": { "id": TENANT },
            },
        })
    }

    /// Sends `body` signed with the base64 `token`; status and answer.
    async fn send_with(&self, token: &str, body: &[u8]) -> (u16, Value) {
        let key = STANDARD.decode(token).unwrap();
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
        mac.update(body);
        let signature = STANDARD.encode(mac.finalize().into_bytes());
        let url = format!("{}/chat/teams/ops", self.server.url);
        post(
            &url,
            &[("authorization", format!("HMAC {signature}"))],
            body,
        )
        .await
    }

    async fn send(&self, activity: &Value) -> (u16, Value) {
        self.send_with(TOKEN, activity.to_string().as_bytes()).await
    }

    /// `user` says `text`; Teams shows the acknowledgement at once.
    async fn say(&self, user: &str, text: &str) {
        let (status, answer) = self.send(&self.activity(user, text, 0)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["type"], "message");
        assert_eq!(
            answer["text"],
            format!("Received `{text}`; replies follow in this channel.")
        );
    }
}

#[tokio::test]
async fn teams_forged_replayed_and_malformed_requests_are_refused_and_nothing_runs() {
    let rig = Rig::start();
    let body = rig.activity("alice", "uptime", 0).to_string();
    refused_because(
        rig.send_with("c2VjcmV0", body.as_bytes()).await,
        401,
        "does not match",
    );
    let url = format!("{}/chat/teams/ops", rig.server.url);
    assert_eq!(post(&url, &[], body.as_bytes()).await.0, 401);
    let old = rig.activity("alice", "uptime", 600);
    refused_because(rig.send(&old).await, 401, "replay");
    let malformed = rig.send_with(TOKEN, b"{\"type\": \"message\",").await;
    refused_because(malformed, 400, "not the Teams activity expected");

    // Something certainly handled after all of that.
    rig.say("mallory", "whoami").await;
    rig.fake.card("ops", "You are").await;
    assert!(executions(&rig.server).await.is_empty());
    assert_eq!(rig.fake.cards().len(), 1, "{:#?}", rig.fake.cards());
}

#[tokio::test]
async fn teams_commands_run_as_anonymous_then_as_the_linked_user_and_a_repeat_runs_once() {
    let rig = Rig::start();
    let uptime = rig.activity("mallory", "uptime", 0);
    for _ in 0..2 {
        assert_eq!(rig.send(&uptime).await.0, 200);
    }
    let result = rig.fake.card("ops", "succeeded").await;
    rig.fake.card("ops", "Running host.uptime").await;
    let run = execution_id(&result.text, "host.uptime");
    let ran = executions(&rig.server).await;
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert_eq!(ran[0]["id"], run);
    assert_eq!(ran[0]["requester"], "anonymous");
    assert_eq!(ran[0]["origin"], "chat:teams:#ops");

    rig.say("alice", "restart nginx").await;
    rig.fake
        .card("ops", "no policy permits anonymous to run service.restart")
        .await;

    // `link` sends the code to alice alone, through the private workflow.
    rig.say("alice", "link").await;
    let code = rig.fake.card("direct", "Your link code is ").await;
    assert_eq!(
        code.recipient,
        json!({ "aadObjectId": user_id("alice"), "tenantId": TENANT })
    );
    rig.fake
        .card("ops", "I sent you a link code in a direct message.")
        .await;
    assert!(
        rig.fake
            .cards()
            .iter()
            .all(|c| c.url == "direct" || !c.text.contains("link code is")),
        "{:#?}",
        rig.fake.cards()
    );
    let code = link_code(&code.text);
    let alice = rig.server.token_for("alice");
    let out = rig.server.cli_as(&alice, &["link", &code]);
    assert!(out.status.success(), "{out:?}");

    rig.say("alice", "restart nginx").await;
    let result = rig.fake.card("ops", "Restarting nginx").await;
    let run = execution_id(&result.text, "service.restart");
    let e = rig.server.wait_finished(run).await;
    assert_eq!(e["requester"], "alice");
    assert_eq!(e["origin"], "chat:teams:#ops");
    assert_eq!(e["status"], "succeeded");
}

/// Teams as every chat door: what is said in `#ops` is answered by cards
/// to the channel's Workflows URL, link codes by the private one.
impl Door for Rig {
    async fn open() -> Self {
        Rig::start()
    }

    fn server(&self) -> &Server {
        &self.server
    }

    fn origin(&self) -> String {
        "chat:teams:#ops".to_owned()
    }

    async fn ask(&mut self, user: &'static str, text: &str) -> Asked {
        let handle = self.fake.cards().len().to_string();
        self.say(user, text).await;
        Asked { user, handle }
    }

    async fn answer(&mut self, asked: &Asked, needle: &str) -> String {
        let from: usize = asked.handle.parse().unwrap();
        eventually(
            || format!("{needle:?} in #ops: {:#?}", self.fake.cards()),
            || {
                let cards: Vec<String> = self.fake.cards()[from..]
                    .iter()
                    .filter(|c| c.url == "ops")
                    .map(|c| c.text.clone())
                    .collect();
                let last = cards.iter().position(|c| c.contains(needle))?;
                Some(cards[..=last].join("\n"))
            },
        )
        .await
    }

    async fn private(&mut self, user: &'static str, needle: &str) -> String {
        let recipient = json!({ "aadObjectId": user_id(user), "tenantId": TENANT });
        eventually(
            || format!("{needle:?} to {user} alone: {:#?}", self.fake.cards()),
            || {
                self.fake
                    .cards()
                    .into_iter()
                    .find(|c| {
                        c.url == "direct" && c.recipient == recipient && c.text.contains(needle)
                    })
                    .map(|c| c.text)
            },
        )
        .await
    }
}

doors!(Rig;
    asked_in_ops_it_runs_as_the_speaker_from_ops_and_is_answered_there,
    an_account_linked_through_chat_runs_as_its_user,
    what_is_refused_or_not_understood_is_told_and_nothing_runs,
    a_message_too_long_to_read_is_refused,
);
