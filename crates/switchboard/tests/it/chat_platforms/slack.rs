//! A local Slack: the Web API methods Switchboard calls (`auth.test`,
//! `conversations.info`, `conversations.open`, `chat.postMessage`,
//! `chat.update`, the three steps of `files.getUploadURLExternal`, the
//! upload URL and `files.completeUploadExternal`, `apps.connections.open`)
//! answered as Slack documents them, with their errors (`invalid_auth`,
//! `channel_not_found`, `no_text`, `invalid_blocks`, `msg_too_long`), and a
//! Socket Mode websocket; and what Slack sends Switchboard: Events API
//! callbacks, slash commands and `block_actions`, signed with v0 signatures.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::fake::{self, Sockets};
use super::{Delivery, Msg, Platform, Room, Said, Upload};

const TEAM: &str = "T0TEST";
const BOT: &str = "U0BOT";
const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const BOT_TOKEN: &str = "xoxb-1-test-bot-token";
const APP_TOKEN: &str = "xapp-1-A0TEST-1-test-app-token";

fn user_id(name: &str) -> String {
    format!("U0{}", name.to_ascii_uppercase())
}

fn channel_id(room: Room) -> String {
    assert_ne!(room, Room::Direct, "a direct conversation is `dm_id(user)`");
    format!("C0{}", room.name().to_ascii_uppercase())
}

/// The direct conversation of a user with the bot.
fn dm_id(user_id: &str) -> String {
    format!("D{user_id}")
}

/// Where `m` was said.
fn channel_of(m: &Msg) -> String {
    match m.room {
        Room::Direct => dm_id(&user_id(m.user)),
        room => channel_id(room),
    }
}

/// One Web API call as received.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    token: String,
    body: Value,
}

/// A file between `files.getUploadURLExternal` and its completion.
#[derive(Debug, Clone)]
struct Pending {
    filename: String,
    length: usize,
    bytes: Option<Vec<u8>>,
}

struct Workspace {
    addr: SocketAddr,
    calls: Mutex<Vec<Call>>,
    said: Mutex<Vec<Said>>,
    pending: Mutex<BTreeMap<String, Pending>>,
    uploads: Mutex<Vec<Upload>>,
    /// Direct conversations opened: user id → channel id.
    dms: Mutex<BTreeMap<String, String>>,
    sockets: Arc<Sockets>,
    /// Whether `conversations.open` is refused (the app lacks `im:write`).
    refuse_directs: AtomicBool,
    /// For message timestamps and ids, unique across the fake.
    seq: AtomicU64,
    /// When the fake started, the seconds part of timestamps.
    epoch: i64,
}

type Shared = Arc<Workspace>;

impl Workspace {
    fn next(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn ts(&self) -> String {
        format!("{}.{:06}", self.epoch, self.next())
    }

    fn known_channel(&self, id: &str) -> bool {
        id == channel_id(Room::Ops) || id == channel_id(Room::General) || id.starts_with("DU0")
    }

    /// Slack sends the bot's own messages back as events, to an app
    /// subscribed to the rooms' messages.
    fn echo(&self, ts: &str, channel: &str, thread: Option<&str>, text: &Value) {
        let mut event = json!({
            "type": "message", "user": BOT, "bot_id": "B0BOT", "app_id": "A0TEST", "text": text,
            "ts": ts, "channel": channel, "event_ts": ts,
            "channel_type": if channel.starts_with('D') { "im" } else { "channel" },
        });
        if let Some(thread) = thread {
            event["thread_ts"] = json!(thread);
        }
        self.sockets.broadcast(&json!({
            "envelope_id": format!("env-{}", self.next()),
            "type": "events_api",
            "accepts_response_payload": false,
            "retry_attempt": 0,
            "retry_reason": "",
            "payload": {
                "team_id": TEAM, "api_app_id": "A0TEST", "type": "event_callback",
                "event_id": format!("Ev0{}", ts.replace('.', "")), "event_time": fake::unix_now(),
                "event": event,
                "authorizations": [{ "team_id": TEAM, "user_id": BOT, "is_bot": true }],
            },
        }));
    }
}

/// The fake Slack.
pub struct Slack {
    state: Shared,
}

fn ok(mut answer: Value) -> Response {
    answer["ok"] = json!(true);
    axum::Json(answer).into_response()
}

fn error(code: &str) -> Response {
    axum::Json(json!({ "ok": false, "error": code })).into_response()
}

/// The text a reader sees: the `section` blocks' mrkdwn, else `text`.
fn shown(body: &Value) -> String {
    let sections: Vec<&str> = body["blocks"]
        .as_array()
        .map(|blocks| {
            blocks
                .iter()
                .filter(|b| b["type"] == "section")
                .filter_map(|b| b["text"]["text"].as_str())
                .collect()
        })
        .unwrap_or_default();
    if sections.is_empty() {
        body["text"].as_str().unwrap_or("").to_owned()
    } else {
        sections.join("\n")
    }
}

fn buttons(body: &Value) -> Vec<String> {
    body["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["type"] == "button")
        .filter_map(|e| e["text"]["text"].as_str().map(str::to_owned))
        .collect()
}

/// What Slack checks of a message body: some text, sections of at most
/// 3,000 characters, a message of at most 40,000.
fn message_error(body: &Value) -> Option<&'static str> {
    let text = body["text"].as_str().unwrap_or("");
    let blocks = body["blocks"].as_array().cloned().unwrap_or_default();
    if text.is_empty() && blocks.is_empty() {
        return Some("no_text");
    }
    if text.chars().count() > 40_000 {
        return Some("msg_too_long");
    }
    let too_long = blocks.iter().any(|b| {
        b["text"]["text"]
            .as_str()
            .is_some_and(|t| t.encode_utf16().count() > 3000)
    });
    if blocks.len() > 50 || too_long {
        return Some("invalid_blocks");
    }
    None
}

async fn api(
    State(s): State<Shared>,
    UrlPath(method): UrlPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut fields = match fake::content_type(&headers).as_str() {
        "application/json" => serde_json::from_slice(&body).unwrap_or(Value::Null),
        _ => fake::form_object(&body),
    };
    if let (Some(query), Some(object)) = (query, fields.as_object_mut())
        && let Value::Object(q) = fake::form_object(query.as_bytes())
    {
        object.extend(q);
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    s.calls.lock().unwrap().push(Call {
        method: method.clone(),
        token: token.clone(),
        body: fields.clone(),
    });
    let expected = if method == "apps.connections.open" {
        APP_TOKEN
    } else {
        BOT_TOKEN
    };
    if token.is_empty() {
        return error("not_authed");
    }
    if token != expected {
        return error("invalid_auth");
    }
    let text = |name: &str| fields[name].as_str().unwrap_or("").to_owned();
    match method.as_str() {
        "auth.test" => ok(json!({
            "url": "https://test.slack.com/", "team": "Test", "user": "switchboard",
            "team_id": TEAM, "user_id": BOT, "bot_id": "B0BOT", "is_enterprise_install": false,
        })),
        "conversations.info" => {
            let id = text("channel");
            for room in [Room::Ops, Room::General] {
                if id == channel_id(room) {
                    return ok(json!({ "channel": {
                        "id": id, "name": room.name(), "is_channel": true, "is_group": false,
                        "is_im": false, "is_private": false, "is_member": true,
                    }}));
                }
            }
            match id.strip_prefix('D').filter(|u| u.starts_with("U0")) {
                Some(user) => ok(json!({ "channel": { "id": id, "is_im": true, "user": user } })),
                None => error("channel_not_found"),
            }
        }
        "conversations.open" => {
            if s.refuse_directs.load(Ordering::SeqCst) {
                return axum::Json(json!({
                    "ok": false, "error": "missing_scope", "needed": "im:write",
                    "provided": "chat:write,files:write,app_mentions:read",
                }))
                .into_response();
            }
            let users = text("users");
            if users.is_empty() || users.contains(',') {
                return error("users_list_not_supplied");
            }
            let channel = dm_id(&users);
            s.dms.lock().unwrap().insert(users, channel.clone());
            ok(json!({ "channel": { "id": channel } }))
        }
        "chat.postMessage" => {
            let channel = text("channel");
            if !s.known_channel(&channel) {
                return error("channel_not_found");
            }
            if let Some(code) = message_error(&fields) {
                return error(code);
            }
            let ts = s.ts();
            let thread = fields["thread_ts"].as_str().map(str::to_owned);
            let mut raw = fields.clone();
            raw["ts"] = json!(ts);
            let shown = shown(&fields);
            s.said.lock().unwrap().push(Said {
                id: ts.clone(),
                room: channel.clone(),
                thread: thread.clone(),
                text: shown.clone(),
                versions: vec![shown],
                buttons: buttons(&fields),
                raw,
            });
            s.echo(&ts, &channel, thread.as_deref(), &fields["text"]);
            let mut message = json!({ "type": "message", "user": BOT, "bot_id": "B0BOT", "ts": ts, "text": fields["text"] });
            if let Some(thread) = thread {
                message["thread_ts"] = json!(thread);
            }
            ok(json!({ "channel": channel, "ts": ts, "message": message }))
        }
        "chat.update" => {
            let (channel, ts) = (text("channel"), text("ts"));
            if let Some(code) = message_error(&fields) {
                return error(code);
            }
            let mut said = s.said.lock().unwrap();
            let Some(m) = said.iter_mut().find(|m| m.id == ts && m.room == channel) else {
                return error("message_not_found");
            };
            m.text = shown(&fields);
            m.versions.push(m.text.clone());
            m.buttons = buttons(&fields);
            let thread = m.raw.get("thread_ts").cloned();
            m.raw = fields.clone();
            m.raw["ts"] = json!(ts);
            if let Some(thread) = thread {
                m.raw["thread_ts"] = thread;
            }
            ok(json!({ "channel": channel, "ts": ts, "text": fields["text"] }))
        }
        "files.getUploadURLExternal" => {
            let filename = text("filename");
            let Ok(length) = text("length").parse::<usize>() else {
                return error("invalid_arguments");
            };
            if filename.is_empty() {
                return error("invalid_arguments");
            }
            let id = format!("F0{}", s.next());
            s.pending.lock().unwrap().insert(
                id.clone(),
                Pending {
                    filename,
                    length,
                    bytes: None,
                },
            );
            ok(json!({ "upload_url": format!("http://{}/upload/v1/{id}", s.addr), "file_id": id }))
        }
        "files.completeUploadExternal" => {
            let Ok(files) = serde_json::from_str::<Vec<Value>>(&text("files")) else {
                return error("invalid_arguments");
            };
            let channel = text("channel_id");
            if !channel.is_empty() && !s.known_channel(&channel) {
                return error("channel_not_found");
            }
            let thread = fields["thread_ts"].as_str().map(str::to_owned);
            let mut completed = Vec::new();
            for file in &files {
                let id = file["id"].as_str().unwrap_or("");
                let Some(pending) = s.pending.lock().unwrap().remove(id) else {
                    return error("file_not_found");
                };
                let Some(bytes) = pending.bytes else {
                    return error("file_upload_incomplete");
                };
                if bytes.len() != pending.length {
                    return error("file_size_mismatch");
                }
                s.uploads.lock().unwrap().push(Upload {
                    filename: pending.filename.clone(),
                    title: file["title"]
                        .as_str()
                        .unwrap_or(&pending.filename)
                        .to_owned(),
                    bytes,
                    room: channel.clone(),
                    thread: thread.clone(),
                });
                completed.push(json!({ "id": id, "title": file["title"] }));
            }
            ok(json!({ "files": completed }))
        }
        "apps.connections.open" => ok(json!({
            "url": format!("ws://{}/link/?ticket=t-{}&app_id=A0TEST", s.addr, s.next()),
        })),
        _ => error("unknown_method"),
    }
}

async fn upload(State(s): State<Shared>, UrlPath(id): UrlPath<String>, body: Bytes) -> Response {
    s.calls.lock().unwrap().push(Call {
        method: format!("upload {id}"),
        token: String::new(),
        body: json!(body.len()),
    });
    match s.pending.lock().unwrap().get_mut(&id) {
        Some(p) => {
            p.bytes = Some(body.to_vec());
            format!("OK - {}", body.len()).into_response()
        }
        None => (axum::http::StatusCode::NOT_FOUND, "no such upload").into_response(),
    }
}

async fn link(State(s): State<Shared>, ws: WebSocketUpgrade) -> Response {
    let hello = json!({
        "type": "hello",
        "num_connections": 1,
        "debug_info": { "host": "applink-test", "build_number": 1, "approximate_connection_time": 18060 },
        "connection_info": { "app_id": "A0TEST" },
    });
    let sockets = s.sockets.clone();
    ws.on_upgrade(move |socket| sockets.keep(socket, false, vec![hello]))
}

/// `v0=` and the hex HMAC-SHA256 of `v0:<timestamp>:<body>`.
fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Slack escapes these three in message text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Slack {
    fn signed(
        &self,
        endpoint: &'static str,
        content_type: &str,
        body: Vec<u8>,
        at: i64,
    ) -> Delivery {
        Delivery::Http {
            endpoint,
            headers: vec![
                ("content-type".to_owned(), content_type.to_owned()),
                ("x-slack-request-timestamp".to_owned(), at.to_string()),
                (
                    "x-slack-signature".to_owned(),
                    signature(SIGNING_SECRET, at, &body),
                ),
            ],
            body,
        }
    }

    /// A slash command's fields, as Slack posts them (or sends them over
    /// Socket Mode).
    fn slash_fields(&self, m: &Msg) -> Vec<(&'static str, String)> {
        let n = self.state.next();
        vec![
            ("token", "verification-token-unused".to_owned()),
            ("team_id", TEAM.to_owned()),
            ("team_domain", "test".to_owned()),
            ("channel_id", channel_of(m)),
            (
                "channel_name",
                match m.room {
                    Room::Direct => "directmessage".to_owned(),
                    room => room.name().to_owned(),
                },
            ),
            ("user_id", user_id(m.user)),
            ("user_name", m.user.to_owned()),
            ("command", "/switchboard".to_owned()),
            ("text", m.text.clone()),
            ("api_app_id", "A0TEST".to_owned()),
            ("is_enterprise_install", "false".to_owned()),
            (
                "response_url",
                format!("http://{}/commands/{n}", self.state.addr),
            ),
            (
                "trigger_id",
                format!("{n}.{}.0123456789abcdef", fake::unix_now()),
            ),
        ]
    }

    /// The Events API callback of `m`: an `app_mention` of the bot in a
    /// room, a `message` in the direct conversation.
    fn callback(&self, m: &Msg) -> Value {
        let mut event = if m.room == Room::Direct {
            json!({ "type": "message", "channel_type": "im", "text": escape(&m.text) })
        } else {
            json!({ "type": "app_mention", "text": format!("<@{BOT}> {}", escape(&m.text)) })
        };
        event["user"] = json!(user_id(m.user));
        event["ts"] = json!(m.id);
        event["channel"] = json!(channel_of(m));
        event["event_ts"] = json!(m.id);
        if let Some(thread) = &m.thread {
            event["thread_ts"] = json!(thread);
        }
        json!({
            "token": "verification-token-unused",
            "team_id": TEAM,
            "api_app_id": "A0TEST",
            "event": event,
            "type": "event_callback",
            "event_id": format!("Ev0{}", m.id.replace('.', "")),
            "event_time": fake::unix_now(),
            "authorizations": [{ "enterprise_id": null, "team_id": TEAM, "user_id": BOT, "is_bot": true, "is_enterprise_install": false }],
            "is_ext_shared_channel": false,
        })
    }

    fn events(&self, m: &Msg, at: i64) -> Delivery {
        let body = self.callback(m).to_string().into_bytes();
        self.signed("events", "application/json", body, at)
    }

    fn block_actions(&self, request: &Said, user: &'static str, action_id: &str) -> Vec<u8> {
        let payload = self.block_actions_payload(request, user, action_id);
        serde_urlencoded::to_string([("payload", payload.to_string())])
            .unwrap()
            .into_bytes()
    }

    /// The `block_actions` payload of `user` pressing `action_id`.
    fn block_actions_payload(&self, request: &Said, user: &'static str, action_id: &str) -> Value {
        let button = request.raw["blocks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
            .find(|e| e["action_id"] == action_id)
            .unwrap_or_else(|| panic!("no `{action_id}` button in {:?}", request.raw));
        let room = [Room::Ops, Room::General]
            .into_iter()
            .find(|r| channel_id(*r) == request.room)
            .map_or("", |r| r.name());
        let mut message = json!({
            "type": "message", "user": BOT, "bot_id": "B0BOT", "ts": request.id,
            "text": request.raw["text"], "blocks": request.raw["blocks"],
        });
        let mut container = json!({
            "type": "message", "message_ts": request.id, "channel_id": request.room, "is_ephemeral": false,
        });
        if let Some(thread) = &request.thread {
            message["thread_ts"] = json!(thread);
            container["thread_ts"] = json!(thread);
        }
        let payload = json!({
            "type": "block_actions",
            "user": { "id": user_id(user), "username": user, "name": user, "team_id": TEAM },
            "api_app_id": "A0TEST",
            "token": "verification-token-unused",
            "container": container,
            "trigger_id": format!("{}.{}.0123456789abcdef", self.state.next(), fake::unix_now()),
            "team": { "id": TEAM, "domain": "test" },
            "enterprise": null,
            "is_enterprise_install": false,
            "channel": { "id": request.room, "name": room },
            "message": message,
            "state": { "values": {} },
            "response_url": format!("http://{}/actions/response", self.state.addr),
            "actions": [{
                "action_id": action_id,
                "block_id": "approval",
                "text": button["text"],
                "value": button["value"],
                "style": button["style"],
                "type": "button",
                "action_ts": format!("{}.{:06}", fake::unix_now(), self.state.next()),
            }],
        });
        payload
    }
}

impl Platform for Slack {
    const NAME: &'static str = "slack";

    fn start() -> Self {
        let (listener, addr) = fake::bind();
        let state = Arc::new(Workspace {
            addr,
            calls: Mutex::default(),
            said: Mutex::default(),
            pending: Mutex::default(),
            uploads: Mutex::default(),
            dms: Mutex::default(),
            sockets: Arc::default(),
            refuse_directs: AtomicBool::new(false),
            seq: AtomicU64::new(100),
            epoch: fake::unix_now(),
        });
        let app = Router::new()
            .route("/api/{method}", any(api))
            .route("/upload/v1/{id}", post(upload))
            .route("/link/", get(link))
            .with_state(state.clone());
        fake::serve(listener, app);
        Self { state }
    }

    fn config(&self, secrets: &Path) -> String {
        let mut section = String::from("[chat.slack]\n");
        for (key, value) in [
            ("signing_secret", SIGNING_SECRET),
            ("bot_token", BOT_TOKEN),
            ("app_token", APP_TOKEN),
        ] {
            let path = secrets.join(format!("slack-{key}"));
            std::fs::write(&path, value).unwrap();
            section.push_str(&format!("{key} = \"file:{}\"\n", path.display()));
        }
        section.push_str(&format!("api_base = \"http://{}/api\"\n", self.state.addr));
        section
    }

    fn room_id(&self, room: Room) -> String {
        channel_id(room)
    }

    fn origin(&self, room: Room) -> String {
        format!("chat:slack:#{}", room.name())
    }

    fn identity(&self, user: &str) -> String {
        format!("slack:{TEAM}/{}", user_id(user))
    }

    fn root(&self, _user: &'static str, _room: Room) -> String {
        self.state.ts()
    }

    fn msg(&self, user: &'static str, room: Room, text: &str, thread: Option<&str>) -> Msg {
        Msg {
            user,
            room,
            text: text.to_owned(),
            id: self.state.ts(),
            thread: thread.map(str::to_owned),
        }
    }

    fn hook(&self, m: &Msg) -> Delivery {
        self.events(m, fake::unix_now())
    }

    fn socket(&self, m: &Msg) -> Delivery {
        Delivery::Socket(json!({
            "envelope_id": format!("env-{}", self.state.next()),
            "type": "events_api",
            "payload": self.callback(m),
            "accepts_response_payload": false,
            "retry_attempt": 0,
            "retry_reason": "",
        }))
    }

    fn slash(&self, m: &Msg) -> Delivery {
        let form = self.slash_fields(m);
        let body = serde_urlencoded::to_string(form).unwrap().into_bytes();
        self.signed(
            "commands",
            "application/x-www-form-urlencoded",
            body,
            fake::unix_now(),
        )
    }

    fn slash_over_socket(&self, m: &Msg) -> Option<Delivery> {
        let payload: serde_json::Map<String, Value> = self
            .slash_fields(m)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v)))
            .collect();
        Some(Delivery::Socket(json!({
            "envelope_id": format!("env-{}", self.state.next()),
            "type": "slash_commands",
            "payload": payload,
            "accepts_response_payload": true,
        })))
    }

    /// A `message` event in the room, without a mention, as an app
    /// subscribed to `message.channels` hears it.
    fn chatter(&self, m: &Msg) -> Delivery {
        let mut callback = self.callback(m);
        callback["event"]["type"] = json!("message");
        callback["event"]["channel_type"] = json!("channel");
        callback["event"]["text"] = json!(escape(&m.text));
        self.signed(
            "events",
            "application/json",
            callback.to_string().into_bytes(),
            fake::unix_now(),
        )
    }

    /// Altered on the way (another command put in the signed body), signed
    /// with another secret, signed for another time, or not signed.
    fn forgeries(&self, m: &Msg) -> Vec<(&'static str, Delivery)> {
        let now = fake::unix_now();
        let body = self.callback(m).to_string().into_bytes();
        let altered = String::from_utf8(body.clone())
            .unwrap()
            .replace(&escape(&m.text), "restart nginx dry_run=false")
            .into_bytes();
        let headers = |at: i64, signature: String| {
            vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("x-slack-request-timestamp".to_owned(), at.to_string()),
                ("x-slack-signature".to_owned(), signature),
            ]
        };
        let http = |headers, body| Delivery::Http {
            endpoint: "events",
            headers,
            body,
        };
        vec![
            (
                "altered body",
                http(headers(now, signature(SIGNING_SECRET, now, &body)), altered),
            ),
            (
                "another secret",
                http(
                    headers(now, signature("not-the-signing-secret", now, &body)),
                    body.clone(),
                ),
            ),
            (
                "signed for another time",
                http(
                    headers(now, signature(SIGNING_SECRET, now - 1, &body)),
                    body.clone(),
                ),
            ),
            (
                "no signature",
                http(
                    vec![("content-type".to_owned(), "application/json".to_owned())],
                    body,
                ),
            ),
        ]
    }

    /// Signed ten minutes ago: outside Slack's five-minute window.
    fn stale(&self, m: &Msg) -> Delivery {
        self.events(m, fake::unix_now() - 600)
    }

    /// Slack retries a delivery it did not see answered: the same event,
    /// signed anew, with `X-Slack-Retry-Num`, or over Socket Mode with
    /// `retry_attempt`. And a mention in a room comes twice, as an
    /// `app_mention` and as a `message` (another event id), to an app
    /// subscribed to both.
    fn repeated(&self, m: &Msg) -> Vec<Delivery> {
        let Delivery::Http {
            endpoint,
            mut headers,
            body,
        } = self.hook(m)
        else {
            unreachable!()
        };
        headers.push(("x-slack-retry-num".to_owned(), "1".to_owned()));
        headers.push(("x-slack-retry-reason".to_owned(), "http_timeout".to_owned()));
        let retried = Delivery::Http {
            endpoint,
            headers,
            body,
        };
        let mut as_message = self.callback(m);
        as_message["event"]["type"] = json!("message");
        as_message["event"]["channel_type"] = json!("channel");
        as_message["event_id"] = json!(format!("Ev1{}", m.id.replace('.', "")));
        let as_message = self.signed(
            "events",
            "application/json",
            as_message.to_string().into_bytes(),
            fake::unix_now(),
        );
        let Delivery::Socket(mut over_socket) = self.socket(m) else {
            unreachable!()
        };
        over_socket["retry_attempt"] = json!(1);
        over_socket["retry_reason"] = json!("timeout");
        vec![
            self.hook(m),
            retried,
            as_message,
            Delivery::Socket(over_socket),
        ]
    }

    fn malformed(&self) -> Vec<(&'static str, Delivery)> {
        let now = fake::unix_now();
        let json = "application/json";
        let form = "application/x-www-form-urlencoded";
        let slash = serde_urlencoded::to_string([
            ("team_id", TEAM),
            ("user_id", "U0MALLORY"),
            ("command", "/switchboard"),
            ("text", "uptime"),
        ])
        .unwrap();
        let press =
            serde_urlencoded::to_string([("payload", "{\"type\": \"block_actions\", ")]).unwrap();
        let truncated: &[u8] = br#"{"type": "event_callback", "team_id": "T0TEST", "event": {"type": "app_mention", "text": "uptime""#;
        vec![
            (
                "an Events API body that is not JSON",
                self.signed("events", json, truncated.to_vec(), now),
            ),
            (
                "a slash command without its channel",
                self.signed("commands", form, slash.into_bytes(), now),
            ),
            (
                "a button press whose payload is not JSON",
                self.signed("interactive", form, press.into_bytes(), now),
            ),
        ]
    }

    /// A slash command without its channel.
    fn malformed_from(&self, user: &'static str) -> Delivery {
        let form = serde_urlencoded::to_string([
            ("team_id", TEAM.to_owned()),
            ("user_id", user_id(user)),
            ("user_name", user.to_owned()),
            ("command", "/switchboard".to_owned()),
            ("text", "uptime".to_owned()),
        ])
        .unwrap();
        self.signed(
            "commands",
            "application/x-www-form-urlencoded",
            form.into_bytes(),
            fake::unix_now(),
        )
    }

    fn direct(&self, user: &'static str, text: &str) -> (Msg, Delivery) {
        let m = self.msg(user, Room::Direct, text, None);
        let delivery = self.hook(&m);
        (m, delivery)
    }

    fn press(&self, request: &Said, user: &'static str, approve: bool) -> Delivery {
        let action = if approve { "approve" } else { "reject" };
        let body = self.block_actions(request, user, action);
        self.signed(
            "interactive",
            "application/x-www-form-urlencoded",
            body,
            fake::unix_now(),
        )
    }

    fn press_labelled(&self, message: &Said, user: &'static str, label: &str) -> Delivery {
        let action_id = message.raw["blocks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
            .find(|e| e["text"]["text"] == label)
            .and_then(|e| e["action_id"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("no `{label}` button in {:?}", message.raw));
        let body = self.block_actions(message, user, &action_id);
        self.signed(
            "interactive",
            "application/x-www-form-urlencoded",
            body,
            fake::unix_now(),
        )
    }

    /// A well-formed press signed with a secret that is not the app's.
    fn forged_press(&self, request: &Said, user: &'static str) -> Delivery {
        let body = self.block_actions(request, user, "approve");
        let at = fake::unix_now();
        Delivery::Http {
            endpoint: "interactive",
            headers: vec![
                (
                    "content-type".to_owned(),
                    "application/x-www-form-urlencoded".to_owned(),
                ),
                ("x-slack-request-timestamp".to_owned(), at.to_string()),
                (
                    "x-slack-signature".to_owned(),
                    signature("not-the-signing-secret", at, &body),
                ),
            ],
            body,
        }
    }

    fn press_over_socket(
        &self,
        request: &Said,
        user: &'static str,
        approve: bool,
    ) -> Option<Delivery> {
        let action = if approve { "approve" } else { "reject" };
        Some(Delivery::Socket(json!({
            "envelope_id": format!("env-{}", self.state.next()),
            "type": "interactive",
            "payload": self.block_actions_payload(request, user, action),
            "accepts_response_payload": false,
        })))
    }

    fn said(&self) -> Vec<Said> {
        self.state.said.lock().unwrap().clone()
    }

    fn uploads(&self) -> Vec<Upload> {
        self.state.uploads.lock().unwrap().clone()
    }

    fn direct_room(&self, user: &str) -> Option<String> {
        self.state.dms.lock().unwrap().get(&user_id(user)).cloned()
    }

    fn refuse_directs(&self, refuse: bool) {
        self.state.refuse_directs.store(refuse, Ordering::SeqCst);
    }

    fn markup(&self, plain: &str) -> String {
        escape(plain)
    }

    fn sockets(&self) -> &Sockets {
        &self.state.sockets
    }

    fn goodbye(&self) -> Option<Value> {
        Some(json!({
            "type": "disconnect",
            "reason": "refresh_requested",
            "debug_info": { "host": "applink-test" },
        }))
    }

    /// Every envelope pushed was acknowledged with its `envelope_id`, and
    /// each connection was opened through `apps.connections.open` with the
    /// app-level token.
    fn socket_protocol_kept(&self) -> Result<(), String> {
        let heard = self.sockets().heard();
        for frame in self.sockets().pushed() {
            let id = &frame["envelope_id"];
            if id.is_null() {
                // `disconnect` and other frames that want no answer.
                continue;
            }
            if !heard.iter().any(|h| h["envelope_id"] == *id) {
                return Err(format!(
                    "envelope {id} was not acknowledged: heard {heard:?}"
                ));
            }
        }
        let opens: Vec<Call> = self
            .state
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.method == "apps.connections.open")
            .cloned()
            .collect();
        if opens.len() < self.sockets().opened() {
            return Err(format!(
                "{} connections but {} apps.connections.open calls",
                self.sockets().opened(),
                opens.len()
            ));
        }
        match opens.iter().find(|c| c.token != APP_TOKEN) {
            Some(c) => Err(format!(
                "apps.connections.open without the app token: {c:?}"
            )),
            None => Ok(()),
        }
    }

    fn calls(&self) -> Vec<String> {
        self.state
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| {
                let body: String = c.body.to_string().chars().take(160).collect();
                format!("{} {body}", c.method)
            })
            .collect()
    }
}

suite!(Slack);

/// The scenarios every chat door passes, on Slack.
type SlackDoor = super::Rig<Slack>;
super::every_door::doors!(SlackDoor;
    asked_in_ops_it_runs_as_the_speaker_from_ops_and_is_answered_there,
    an_account_linked_through_chat_runs_as_its_user,
    what_is_refused_or_not_understood_is_told_and_nothing_runs,
    a_message_too_long_to_read_is_refused,
    only_what_addresses_the_bot_runs,
);
