//! Matrix end to end: the real `switchboard` binary against a local
//! homeserver that follows the client-server API's formats for what the
//! bot uses (`/account/whoami`, `/sync` long-polls with `since`, `/join`,
//! `send` with transaction ids — a repeated transaction id stores nothing
//! new — and `createRoom`), recording every event sent. No homeserver is
//! packaged for this machine, so this one is written here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::chat_platforms::every_door::{Asked, Door, Overhears, doors};
use crate::harness::{Server, copy_catalog, sample_catalog};

const BOT: &str = "@switchboard:example.org";
const OPS: &str = "!ops:example.org";

/// One event the bot sent.
#[derive(Debug, Clone)]
struct Sent {
    room: String,
    txn: String,
    content: Value,
}

#[derive(Default)]
struct Homeserver {
    /// Everything said in rooms and invitations, in order: the `since`
    /// token is a position in it.
    log: Mutex<Vec<(String, Value)>>,
    invites: Mutex<Vec<(String, String)>>,
    news: Notify,
    joined: Mutex<Vec<String>>,
    sent: Mutex<Vec<Sent>>,
    /// PUTs of each transaction id.
    puts: Mutex<HashMap<String, usize>>,
    /// Store the next send, then answer 500 as if the answer were lost.
    lose_next_answer: Mutex<bool>,
    syncs: Mutex<usize>,
    next_event: Mutex<u64>,
    /// The direct rooms the bot made, and whom it invited to each.
    dms: Mutex<Vec<(String, Value)>>,
}

impl Homeserver {
    fn event_id(&self) -> String {
        let mut n = self.next_event.lock().unwrap();
        *n += 1;
        format!("$e{n}")
    }

    fn say(&self, room: &str, event: Value) -> String {
        let id = self.event_id();
        let mut event = event;
        event["event_id"] = json!(id);
        self.log.lock().unwrap().push((room.to_owned(), event));
        self.news.notify_waiters();
        id
    }

    fn invite(&self, room: &str, from: &str) {
        self.invites
            .lock()
            .unwrap()
            .push((room.to_owned(), from.to_owned()));
        self.news.notify_waiters();
    }

    fn sent_in(&self, room: &str) -> Vec<Sent> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.room == room)
            .cloned()
            .collect()
    }

    /// The batch after position `since`.
    fn batch(&self, since: usize) -> Option<Value> {
        let log = self.log.lock().unwrap();
        let invites: Vec<(String, String)> = self.invites.lock().unwrap().drain(..).collect();
        if log.len() <= since && invites.is_empty() {
            return None;
        }
        let mut join = serde_json::Map::new();
        for (room, event) in &log[since.min(log.len())..] {
            let room = join
                .entry(room.clone())
                .or_insert_with(|| json!({"timeline": {"events": []}}));
            room["timeline"]["events"]
                .as_array_mut()
                .unwrap()
                .push(event.clone());
        }
        let invite: serde_json::Map<String, Value> = invites
            .into_iter()
            .map(|(room, from)| {
                (
                    room,
                    json!({"invite_state": {"events": [
                    {"type": "m.room.member", "state_key": BOT, "sender": from,
                     "content": {"membership": "invite"}}]}}),
                )
            })
            .collect();
        Some(json!({"next_batch": log.len().to_string(),
                    "rooms": {"join": join, "invite": invite}}))
    }
}

async fn whoami() -> Json<Value> {
    Json(json!({"user_id": BOT}))
}

async fn sync(
    State(hs): State<Arc<Homeserver>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    *hs.syncs.lock().unwrap() += 1;
    let since: usize = q.get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
    let timeout: u64 = q.get("timeout").and_then(|t| t.parse().ok()).unwrap_or(0);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout);
    loop {
        let news = hs.news.notified();
        if let Some(batch) = hs.batch(since) {
            return Json(batch);
        }
        if tokio::time::timeout_at(deadline, news).await.is_err() {
            return Json(json!({"next_batch": since.to_string(), "rooms": {}}));
        }
    }
}

async fn join(State(hs): State<Arc<Homeserver>>, Path(room): Path<String>) -> Json<Value> {
    hs.joined.lock().unwrap().push(room.clone());
    Json(json!({"room_id": room}))
}

async fn send(
    State(hs): State<Arc<Homeserver>>,
    Path((room, _kind, txn)): Path<(String, String, String)>,
    Json(content): Json<Value>,
) -> (StatusCode, Json<Value>) {
    *hs.puts.lock().unwrap().entry(txn.clone()).or_default() += 1;
    let known = hs.sent.lock().unwrap().iter().position(|s| s.txn == txn);
    if known.is_none() {
        hs.sent.lock().unwrap().push(Sent {
            room,
            txn: txn.clone(),
            content,
        });
    }
    let event_id = format!("$sent-{txn}");
    let mut lose = hs.lose_next_answer.lock().unwrap();
    if *lose {
        *lose = false;
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"errcode": "M_UNKNOWN", "error": "lost"})),
        );
    }
    (StatusCode::OK, Json(json!({"event_id": event_id})))
}

async fn create_room(State(hs): State<Arc<Homeserver>>, Json(body): Json<Value>) -> Json<Value> {
    let room = format!("!dm{}:example.org", hs.event_id().trim_start_matches('$'));
    hs.dms
        .lock()
        .unwrap()
        .push((room.clone(), body["invite"].clone()));
    Json(json!({ "room_id": room }))
}

async fn start_homeserver() -> (Arc<Homeserver>, String) {
    let hs = Arc::new(Homeserver::default());
    let app = Router::new()
        .route("/_matrix/client/v3/account/whoami", get(whoami))
        .route("/_matrix/client/v3/sync", get(sync))
        .route("/_matrix/client/v3/join/{room}", post(join))
        .route(
            "/_matrix/client/v3/rooms/{room}/send/{kind}/{txn}",
            put(send),
        )
        .route("/_matrix/client/v3/createRoom", post(create_room))
        .with_state(hs.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (hs, url)
}

/// Waits (20 s at most) until `probe` finds something.
async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "waited in vain for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Alice invites the bot to `!ops`; once it joined, the room is given
/// its alias, `#ops:example.org`.
async fn ops_with_the_bot(hs: &Homeserver) {
    hs.invite(OPS, "@alice:example.org");
    eventually("the bot joining", || {
        hs.joined
            .lock()
            .unwrap()
            .contains(&OPS.to_owned())
            .then_some(())
    })
    .await;
    hs.say(
        OPS,
        json!({"type": "m.room.canonical_alias", "sender": "@alice:example.org",
               "state_key": "", "content": {"alias": "#ops:example.org"}}),
    );
}

fn body(s: &Sent) -> String {
    let content = s.content.get("m.new_content").unwrap_or(&s.content);
    content["body"].as_str().unwrap_or_default().to_owned()
}

fn message(sender: &str, text: &str) -> Value {
    json!({"type": "m.room.message", "sender": sender,
           "content": {"msgtype": "m.text", "body": text}})
}

#[tokio::test]
async fn the_bot_joins_on_invite_answers_in_threads_and_sends_each_reply_once() {
    let (hs, url) = start_homeserver().await;
    let catalog = tempfile::tempdir().unwrap();
    copy_catalog(&sample_catalog(), catalog.path());
    let token = catalog.path().join("matrix-token");
    std::fs::write(&token, "syt_test_token").unwrap();
    // What was said before the bot came is no command for it.
    hs.say(
        OPS,
        message("@alice:example.org", "switchboard: echo from the past"),
    );
    let server = Server::start_with_config(
        catalog.path(),
        &format!(
            "[chat.matrix]\nhomeserver = \"{url}\"\naccess_token = \"file:{}\"\n",
            token.display()
        ),
    );
    eventually("the first sync", || {
        (*hs.syncs.lock().unwrap() >= 2).then_some(())
    })
    .await;

    ops_with_the_bot(&hs).await;

    let asked = hs.say(
        OPS,
        message("@alice:example.org", "Switchboard: echo hello matrix"),
    );
    let result = eventually("the result in the thread", || {
        hs.sent_in(OPS)
            .into_iter()
            .find(|s| body(s).contains("succeeded"))
    })
    .await;
    let threaded: Vec<Sent> = hs
        .sent_in(OPS)
        .into_iter()
        .filter(|s| s.content["m.relates_to"]["rel_type"] == "m.thread")
        .collect();
    assert!(!threaded.is_empty(), "{:?}", hs.sent_in(OPS));
    assert!(
        threaded
            .iter()
            .all(|s| s.content["m.relates_to"]["event_id"] == asked.as_str())
    );
    assert_eq!(result.content["msgtype"], "m.notice");
    let (_, runs) = server.get("/executions?action=demo.echo").await;
    let runs = runs["executions"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        1,
        "only the message said after the bot came: {runs:?}"
    );
    assert_eq!(
        (runs[0]["origin"].as_str(), runs[0]["requester"].as_str()),
        (Some("chat:matrix:#ops:example.org"), Some("anonymous")),
    );

    // The answer to a send is lost: the bot sends again with the same
    // transaction id, and the homeserver keeps one event — the room shows
    // the reply once.
    *hs.lose_next_answer.lock().unwrap() = true;
    hs.say(OPS, message("@bob:example.org", "switchboard: whoami"));
    eventually("the whoami answer", || {
        hs.sent_in(OPS)
            .into_iter()
            .find(|s| body(s).contains("matrix:example.org/bob"))
    })
    .await;
    let retried = eventually("a send tried again", || {
        let puts = hs.puts.lock().unwrap();
        puts.iter()
            .find(|(_, n)| **n == 2)
            .map(|(txn, _)| txn.clone())
    })
    .await;
    let sent = hs.sent.lock().unwrap().clone();
    let lost = sent.iter().find(|s| s.txn == retried).unwrap();
    assert_eq!(
        sent.iter()
            .filter(|s| s.room == lost.room && s.content == lost.content)
            .count(),
        1,
        "{sent:#?}"
    );

    // An encrypted room: said once that it cannot be read.
    let secret = "!secret:example.org";
    hs.invite(secret, "@alice:example.org");
    eventually("the bot joining the encrypted room", || {
        hs.joined
            .lock()
            .unwrap()
            .contains(&secret.to_owned())
            .then_some(())
    })
    .await;
    for _ in 0..2 {
        hs.say(
            secret,
            json!({"type": "m.room.encrypted", "sender": "@alice:example.org",
                              "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "…"}}),
        );
    }
    eventually("the notice", || {
        hs.sent_in(secret)
            .into_iter()
            .find(|s| body(s).contains("end-to-end encrypted"))
    })
    .await;
    // A message after it shows the bot is past both encrypted ones.
    hs.say(OPS, message("@bob:example.org", "switchboard: whoami"));
    eventually("the second whoami", || {
        (hs.sent_in(OPS)
            .iter()
            .filter(|s| body(s).contains("matrix:example.org/bob"))
            .count()
            == 2)
            .then_some(())
    })
    .await;
    assert_eq!(hs.sent_in(secret).len(), 1, "told once");
}

/// The homeserver with the bot in `!ops` (alias `#ops:example.org`);
/// people are `@<name>:example.org`.
struct MatrixDoor {
    hs: Arc<Homeserver>,
    server: Server,
    _catalog: tempfile::TempDir,
}

impl MatrixDoor {
    /// The bodies of the bot's messages in `room` that `belongs` to the
    /// answer (by their relation), each as edited last, up to the first
    /// that contains `needle`.
    fn said(&self, room: &str, belongs: impl Fn(&Value) -> bool, needle: &str) -> Option<String> {
        let sent = self.hs.sent_in(room);
        let mine: Vec<&Sent> = sent
            .iter()
            .filter(|s| belongs(&s.content["m.relates_to"]))
            .collect();
        let edits = |s: &Sent| {
            let id = format!("$sent-{}", s.txn);
            sent.iter()
                .filter(|e| {
                    e.content["m.relates_to"]["rel_type"] == "m.replace"
                        && e.content["m.relates_to"]["event_id"] == id.as_str()
                })
                .map(body)
                .next_back()
                .unwrap_or_else(|| body(s))
        };
        let bodies: Vec<String> = mine.iter().map(|s| edits(s)).collect();
        let last = bodies.iter().position(|b| b.contains(needle))?;
        Some(bodies[..=last].join("\n"))
    }
}

impl Door for MatrixDoor {
    async fn open() -> Self {
        let (hs, url) = start_homeserver().await;
        let catalog = tempfile::tempdir().unwrap();
        copy_catalog(&sample_catalog(), catalog.path());
        let token = catalog.path().join("matrix-token");
        std::fs::write(&token, "syt_test_token").unwrap();
        let server = Server::start_with_config(
            catalog.path(),
            &format!(
                "{}\n[chat.matrix]\nhomeserver = \"{url}\"\naccess_token = \"file:{}\"\n",
                crate::authz::TEAM,
                token.display()
            ),
        );
        ops_with_the_bot(&hs).await;
        Self {
            hs,
            server,
            _catalog: catalog,
        }
    }

    fn server(&self) -> &Server {
        &self.server
    }

    fn origin(&self) -> String {
        "chat:matrix:#ops:example.org".to_owned()
    }

    async fn ask(&mut self, user: &'static str, text: &str) -> Asked {
        let sender = format!("@{user}:example.org");
        let handle = self
            .hs
            .say(OPS, message(&sender, &format!("switchboard: {text}")));
        Asked { user, handle }
    }

    async fn answer(&mut self, asked: &Asked, needle: &str) -> String {
        let root = asked.handle.as_str();
        eventually(&format!("{needle:?} in the thread of {root}"), || {
            self.said(
                OPS,
                |r| r["rel_type"] == "m.thread" && r["event_id"] == root,
                needle,
            )
        })
        .await
    }

    async fn private(&mut self, user: &'static str, needle: &str) -> String {
        let invited = format!("@{user}:example.org");
        eventually(&format!("{needle:?} to {invited} alone"), || {
            let dms = self.hs.dms.lock().unwrap().clone();
            dms.iter()
                .filter(|(_, invite)| {
                    invite
                        .as_array()
                        .is_some_and(|i| i.contains(&json!(invited)))
                })
                .find_map(|(room, _)| self.said(room, |r| r.is_null(), needle))
        })
        .await
    }
}

impl Overhears for MatrixDoor {
    async fn chatter(&mut self, user: &'static str, text: &str) {
        self.hs
            .say(OPS, message(&format!("@{user}:example.org"), text));
    }
}

doors!(MatrixDoor;
    asked_in_ops_it_runs_as_the_speaker_from_ops_and_is_answered_there,
    an_account_linked_through_chat_runs_as_its_user,
    what_is_refused_or_not_understood_is_told_and_nothing_runs,
    a_message_too_long_to_read_is_refused,
    only_what_addresses_the_bot_runs,
);
