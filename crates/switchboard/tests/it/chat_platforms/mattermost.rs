//! A local Mattermost: the REST API v4 calls Switchboard makes (`users/me`,
//! posts created, read and patched, files uploaded, direct channels
//! opened), answered and refused as Mattermost documents them (a post whose
//! `root_id` is itself a reply is refused: threads have one root), and the
//! websocket with its `authentication_challenge` and `posted` events; and
//! what Mattermost sends Switchboard: outgoing webhooks, slash commands and
//! presses of interactive buttons, each with the token or context it
//! carries.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Multipart, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use super::fake::{self, Sockets};
use super::{Delivery, Msg, Platform, Room, Said, Upload};

const BOT_TOKEN: &str = "mmbottoken0000000000000000";
const COMMAND_TOKEN: &str = "mmcommandtoken000000000000";
const WEBHOOK_TOKEN: &str = "mmwebhooktoken000000000000";
/// Where Switchboard says its buttons call back; the fake delivers the
/// presses to the server under test instead, as a proxy in front would.
const CALLBACK: &str = "https://switchboard.example.com";
const BOT_NAME: &str = "switchboard";

/// A Mattermost id: 26 lower-case letters and digits.
fn mm_id(prefix: &str, n: u64) -> String {
    format!("{prefix}{n:0>width$}", width = 26 - prefix.len())
}

fn bot_id() -> String {
    mm_id("switchboardbot", 0)
}

fn user_id(name: &str) -> String {
    mm_id(name, 0)
}

fn channel_id(room: Room) -> String {
    assert_ne!(room, Room::Direct, "a direct channel is `dm_id(user)`");
    mm_id(&format!("{}room", room.name()), 0)
}

/// The direct channel of a user with the bot.
fn dm_id(user_id: &str) -> String {
    format!("dm{}", &user_id[..24])
}

/// The channel of `room` for `user`.
fn channel_of(room: Room, user: &str) -> String {
    match room {
        Room::Direct => dm_id(&user_id(user)),
        room => channel_id(room),
    }
}

/// A direct channel's name: both user ids, sorted, joined by `__`.
fn dm_name(user: &str) -> String {
    let mut names = [bot_id(), user_id(user)];
    names.sort();
    names.join("__")
}

fn team_id() -> String {
    mm_id("team", 0)
}

#[derive(Debug, Clone)]
struct Post {
    id: String,
    channel_id: String,
    root_id: String,
    user_id: String,
    message: String,
    props: Value,
    file_ids: Vec<String>,
    versions: Vec<String>,
}

impl Post {
    fn json(&self) -> Value {
        json!({
            "id": self.id, "create_at": 1_700_000_000_000_i64, "update_at": 1_700_000_000_000_i64,
            "edit_at": 0, "delete_at": 0, "is_pinned": false, "user_id": self.user_id,
            "channel_id": self.channel_id, "root_id": self.root_id, "original_id": "",
            "message": self.message, "type": "", "props": self.props, "hashtags": "",
            "file_ids": self.file_ids, "pending_post_id": "", "reply_count": 0, "metadata": {},
        })
    }
}

#[derive(Debug, Clone)]
struct File {
    filename: String,
    bytes: Vec<u8>,
    channel_id: String,
}

struct Workspace {
    addr: SocketAddr,
    calls: Mutex<Vec<String>>,
    /// Every post, people's and the bot's.
    posts: Mutex<Vec<Post>>,
    files: Mutex<BTreeMap<String, File>>,
    /// Direct channels opened by the bot: user id → channel id.
    dms: Mutex<BTreeMap<String, String>>,
    sockets: Arc<Sockets>,
    /// Whether opening a direct channel is refused (the bot may not).
    refuse_directs: AtomicBool,
    seq: AtomicU64,
}

type Shared = Arc<Workspace>;

impl Workspace {
    fn next(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    fn known_channel(&self, id: &str) -> bool {
        id == channel_id(Room::Ops) || id == channel_id(Room::General) || id.starts_with("dm")
    }

    /// Mattermost sends every post in the bot's channels to its websocket,
    /// its own included.
    fn echo(&self, post: &Post) {
        let direct = post.channel_id.starts_with("dm");
        let name = [Room::Ops, Room::General]
            .into_iter()
            .find(|r| channel_id(*r) == post.channel_id)
            .map_or_else(String::new, |r| r.name().to_owned());
        let mut json = post.json();
        json["props"]["from_bot"] = json!("true");
        self.sockets.broadcast(&json!({
            "event": "posted",
            "data": {
                "channel_display_name": name, "channel_name": name,
                "channel_type": if direct { "D" } else { "O" },
                "post": json.to_string(), "sender_name": format!("@{BOT_NAME}"),
                "set_online": true, "team_id": if direct { String::new() } else { team_id() },
            },
            "broadcast": { "omit_users": null, "user_id": "", "channel_id": post.channel_id, "team_id": "" },
            "seq": self.next(),
        }));
    }
}

/// Mattermost's error body.
fn error(status: StatusCode, id: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "id": id, "message": message, "status_code": status.as_u16(), "request_id": "r0" })),
    )
        .into_response()
}

/// The refusal of a call without the bot token, if it is one.
fn unauthorized(headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if given == format!("Bearer {BOT_TOKEN}") {
        None
    } else {
        Some(error(
            StatusCode::UNAUTHORIZED,
            "api.context.session_expired.app_error",
            "Invalid or expired session, please login again.",
        ))
    }
}

async fn users_me(State(s): State<Shared>, headers: HeaderMap) -> Response {
    s.record("GET users/me".to_owned());
    if let Some(e) = unauthorized(&headers) {
        return e;
    }
    axum::Json(
        json!({ "id": bot_id(), "username": BOT_NAME, "is_bot": true, "roles": "system_user" }),
    )
    .into_response()
}

async fn create_post(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    s.record(format!(
        "POST posts {}",
        body.to_string().chars().take(160).collect::<String>()
    ));
    if let Some(e) = unauthorized(&headers) {
        return e;
    }
    let text = |name: &str| body[name].as_str().unwrap_or("").to_owned();
    let channel = text("channel_id");
    if !s.known_channel(&channel) {
        return error(
            StatusCode::FORBIDDEN,
            "api.context.permissions.app_error",
            "You do not have the appropriate permissions.",
        );
    }
    let message = text("message");
    if message.chars().count() > 16_383 {
        return error(
            StatusCode::BAD_REQUEST,
            "model.post.is_valid.msg.app_error",
            "Invalid Message.",
        );
    }
    let root = text("root_id");
    if !root.is_empty() {
        let posts = s.posts.lock().unwrap();
        let parent = posts.iter().find(|p| p.id == root);
        if !parent.is_some_and(|p| p.root_id.is_empty() && p.channel_id == channel) {
            return error(
                StatusCode::BAD_REQUEST,
                "api.post.create_post.root_id.app_error",
                "Invalid RootId parameter.",
            );
        }
    }
    let file_ids: Vec<String> = body["file_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect();
    {
        let files = s.files.lock().unwrap();
        if file_ids
            .iter()
            .any(|f| files.get(f).is_none_or(|file| file.channel_id != channel))
        {
            return error(
                StatusCode::BAD_REQUEST,
                "api.post.create_post.attach_files.app_error",
                "Failed to attach files.",
            );
        }
    }
    let post = Post {
        id: mm_id("botpost", s.next()),
        channel_id: channel,
        root_id: root,
        user_id: bot_id(),
        message: message.clone(),
        props: body.get("props").cloned().unwrap_or(json!({})),
        file_ids,
        versions: vec![message],
    };
    let answer = post.json();
    s.echo(&post);
    s.posts.lock().unwrap().push(post);
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

async fn get_post(
    State(s): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    s.record(format!("GET posts/{id}"));
    if let Some(e) = unauthorized(&headers) {
        return e;
    }
    match s.posts.lock().unwrap().iter().find(|p| p.id == id) {
        Some(p) => axum::Json(p.json()).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "app.post.get.app_error",
            "Unable to get the post.",
        ),
    }
}

async fn patch_post(
    State(s): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    s.record(format!("PUT posts/{id}/patch"));
    if let Some(e) = unauthorized(&headers) {
        return e;
    }
    let mut posts = s.posts.lock().unwrap();
    let Some(p) = posts.iter_mut().find(|p| p.id == id) else {
        return error(
            StatusCode::NOT_FOUND,
            "app.post.get.app_error",
            "Unable to get the post.",
        );
    };
    if let Some(message) = body["message"].as_str() {
        p.message = message.to_owned();
        p.versions.push(message.to_owned());
    }
    if let Some(props) = body.get("props") {
        p.props = props.clone();
    }
    axum::Json(p.json()).into_response()
}

async fn upload(State(s): State<Shared>, headers: HeaderMap, mut form: Multipart) -> Response {
    s.record("POST files".to_owned());
    if let Some(e) = unauthorized(&headers) {
        return e;
    }
    let mut channel = String::new();
    let mut parts = Vec::new();
    while let Ok(Some(field)) = form.next_field().await {
        let name = field.name().unwrap_or("").to_owned();
        let filename = field.file_name().map(str::to_owned);
        let bytes = field.bytes().await.unwrap().to_vec();
        match (name.as_str(), filename) {
            ("channel_id", _) => channel = String::from_utf8_lossy(&bytes).into_owned(),
            ("files", Some(filename)) => parts.push((filename, bytes)),
            _ => {}
        }
    }
    if !s.known_channel(&channel) {
        return error(
            StatusCode::BAD_REQUEST,
            "api.file.upload_file.incorrect_channelId.app_error",
            "Unable to upload the file. Incorrect channel ID.",
        );
    }
    if parts.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "api.file.upload_file.read_request.app_error",
            "Unable to upload file(s). Error reading or parsing request data.",
        );
    }
    let mut infos = Vec::new();
    for (filename, bytes) in parts {
        let id = mm_id("file", s.next());
        infos.push(json!({
            "id": id, "user_id": bot_id(), "post_id": "", "channel_id": channel,
            "create_at": 1_700_000_000_000_i64, "name": filename,
            "extension": filename.rsplit('.').next().unwrap_or(""), "size": bytes.len(),
            "mime_type": "text/plain",
        }));
        s.files.lock().unwrap().insert(
            id,
            File {
                filename,
                bytes,
                channel_id: channel.clone(),
            },
        );
    }
    (
        StatusCode::CREATED,
        axum::Json(json!({ "file_infos": infos, "client_ids": [] })),
    )
        .into_response()
}

async fn direct(State(s): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let members: Vec<String> = serde_json::from_slice(&body).unwrap_or_default();
    s.record(format!("POST channels/direct {members:?}"));
    if let Some(e) = unauthorized(&headers) {
        return e;
    }
    if s.refuse_directs.load(Ordering::SeqCst) {
        return error(
            StatusCode::FORBIDDEN,
            "api.context.permissions.app_error",
            "You do not have the appropriate permissions.",
        );
    }
    let bot = bot_id();
    let [a, b] = members.as_slice() else {
        return error(
            StatusCode::BAD_REQUEST,
            "api.context.invalid_body_param.app_error",
            "Invalid or missing user_ids in request body.",
        );
    };
    let user = match (a == &bot, b == &bot) {
        (true, false) => b.clone(),
        (false, true) => a.clone(),
        _ => {
            return error(
                StatusCode::FORBIDDEN,
                "api.context.permissions.app_error",
                "You do not have the appropriate permissions.",
            );
        }
    };
    let id = dm_id(&user);
    s.dms.lock().unwrap().insert(user.clone(), id.clone());
    let mut names = [bot, user];
    names.sort();
    (
        StatusCode::CREATED,
        axum::Json(json!({ "id": id, "type": "D", "name": names.join("__"), "team_id": "" })),
    )
        .into_response()
}

async fn websocket(State(s): State<Shared>, ws: WebSocketUpgrade) -> Response {
    let greeting = vec![
        json!({ "status": "OK", "seq_reply": 1 }),
        json!({
            "event": "hello",
            "data": { "connection_id": format!("conn{}", s.next()), "server_version": "10.5.0" },
            "broadcast": { "omit_users": null, "user_id": bot_id(), "channel_id": "", "team_id": "" },
            "seq": 0,
        }),
    ];
    let sockets = s.sockets.clone();
    ws.on_upgrade(move |socket| sockets.keep(socket, true, greeting))
}

/// The fake Mattermost.
pub struct Mattermost {
    state: Shared,
}

impl Mattermost {
    fn host(&self) -> String {
        self.state.addr.ip().to_string()
    }

    /// A post someone made, as the server holds it.
    fn posted(&self, user: &str, room: Room, message: &str, root: Option<&str>) -> String {
        let id = mm_id("post", self.state.next());
        self.state.posts.lock().unwrap().push(Post {
            id: id.clone(),
            channel_id: channel_of(room, user),
            root_id: root.unwrap_or("").to_owned(),
            user_id: user_id(user),
            message: message.to_owned(),
            props: json!({}),
            file_ids: Vec::new(),
            versions: vec![message.to_owned()],
        });
        id
    }

    /// The outgoing webhook of `m`, sent at `at` (milliseconds) with `token`.
    fn outgoing(&self, m: &Msg, token: &str, at: i64) -> Delivery {
        let body = json!({
            "token": token,
            "team_id": team_id(),
            "team_domain": "test",
            "channel_id": channel_of(m.room, m.user),
            "channel_name": m.room.name(),
            "timestamp": at,
            "user_id": user_id(m.user),
            "user_name": m.user,
            "post_id": m.id,
            "text": format!("@{BOT_NAME} {}", m.text),
            "trigger_word": format!("@{BOT_NAME}"),
            "file_ids": "",
        });
        Delivery::Http {
            endpoint: "webhook",
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.to_string().into_bytes(),
        }
    }

    /// The button `action` of `request` and the context it carries.
    fn button(request: &Said, action: &str) -> Value {
        let button = request.raw["props"]["attachments"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|a| a["actions"].as_array().cloned().unwrap_or_default())
            .find(|b| b["id"] == action)
            .unwrap_or_else(|| panic!("no `{action}` button in {}", request.raw));
        assert_eq!(
            button["integration"]["url"],
            format!("{CALLBACK}/chat/mattermost/actions"),
            "the button calls Switchboard back"
        );
        button["integration"]["context"].clone()
    }

    fn action(&self, request: &Said, user: &'static str, context: Value) -> Delivery {
        let room = [Room::Ops, Room::General]
            .into_iter()
            .find(|r| channel_id(*r) == request.room)
            .map_or("", |r| r.name());
        let body = json!({
            "user_id": user_id(user),
            "user_name": user,
            "channel_id": request.room,
            "channel_name": room,
            "team_id": team_id(),
            "team_domain": "test",
            "post_id": request.id,
            "trigger_id": format!("trigger{}", self.state.next()),
            "type": "",
            "data_source": "",
            "context": context,
        });
        Delivery::Http {
            endpoint: "actions",
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.to_string().into_bytes(),
        }
    }
}

impl Platform for Mattermost {
    const NAME: &'static str = "mattermost";

    fn start() -> Self {
        let (listener, addr) = fake::bind();
        let state = Arc::new(Workspace {
            addr,
            calls: Mutex::default(),
            posts: Mutex::default(),
            files: Mutex::default(),
            dms: Mutex::default(),
            sockets: Arc::default(),
            refuse_directs: AtomicBool::new(false),
            seq: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/api/v4/users/me", get(users_me))
            .route("/api/v4/posts", post(create_post))
            .route("/api/v4/posts/{id}", get(get_post))
            .route("/api/v4/posts/{id}/patch", put(patch_post))
            .route("/api/v4/files", post(upload))
            .route("/api/v4/channels/direct", post(direct))
            .route("/api/v4/websocket", get(websocket))
            .with_state(state.clone());
        fake::serve(listener, app);
        Self { state }
    }

    fn config(&self, secrets: &Path) -> String {
        let file = |name: &str, value: &str| {
            let path = secrets.join(format!("mattermost-{name}"));
            std::fs::write(&path, value).unwrap();
            format!("\"file:{}\"", path.display())
        };
        format!(
            "[chat.mattermost]\nurl = \"http://{}\"\nbot_token = {}\ncommand_tokens = [{}]\nwebhook_tokens = [{}]\ncallback_url = \"{CALLBACK}\"\n",
            self.state.addr,
            file("bot-token", BOT_TOKEN),
            file("command-token", COMMAND_TOKEN),
            file("webhook-token", WEBHOOK_TOKEN),
        )
    }

    fn policy(&self) -> Option<&'static str> {
        Some(
            "@id(\"sre-runs-fleet-actions-from-mattermost\")\n\
             @description(\"sre may also run and cancel fleet actions from ~ops on Mattermost.\")\n\
             permit (principal in Group::\"sre\", action in [Action::\"run\", Action::\"cancel\"], resource)\n\
             when {\n  (resource.name like \"host.*\" || resource.name like \"service.*\" || resource.name like \"db.*\") &&\n  \
             context has channel && context.channel == Channel::\"mattermost:~ops\"\n};\n",
        )
    }

    fn room_id(&self, room: Room) -> String {
        channel_id(room)
    }

    fn origin(&self, room: Room) -> String {
        format!("chat:mattermost:~{}", room.name())
    }

    fn identity(&self, user: &str) -> String {
        format!("mattermost:{}/{}", self.host(), user_id(user))
    }

    fn root(&self, user: &'static str, room: Room) -> String {
        self.posted(user, room, "a thread about the database", None)
    }

    fn msg(&self, user: &'static str, room: Room, text: &str, thread: Option<&str>) -> Msg {
        let message = format!("@{BOT_NAME} {text}");
        Msg {
            user,
            room,
            text: text.to_owned(),
            id: self.posted(user, room, &message, thread),
            thread: thread.map(str::to_owned),
        }
    }

    fn hook(&self, m: &Msg) -> Delivery {
        self.outgoing(m, WEBHOOK_TOKEN, fake::unix_now() * 1000)
    }

    fn socket(&self, m: &Msg) -> Delivery {
        let direct = m.room == Room::Direct;
        let channel = channel_of(m.room, m.user);
        // In a direct channel nobody needs to mention the bot.
        let message = if direct {
            m.text.clone()
        } else {
            format!("@{BOT_NAME} {}", m.text)
        };
        let post = json!({
            "id": m.id, "create_at": fake::unix_now() * 1000, "update_at": fake::unix_now() * 1000,
            "edit_at": 0, "delete_at": 0, "is_pinned": false, "user_id": user_id(m.user),
            "channel_id": channel, "root_id": m.thread.clone().unwrap_or_default(),
            "original_id": "", "message": message, "type": "",
            "props": {}, "hashtags": "", "pending_post_id": "", "reply_count": 0, "metadata": {},
        });
        let name = if direct {
            dm_name(m.user)
        } else {
            m.room.name().to_owned()
        };
        Delivery::Socket(json!({
            "event": "posted",
            "data": {
                "channel_display_name": if direct { format!("@{}", m.user) } else { name.clone() },
                "channel_name": name,
                "channel_type": if direct { "D" } else { "O" },
                "post": post.to_string(),
                "sender_name": format!("@{}", m.user),
                "set_online": true,
                "team_id": if direct { String::new() } else { team_id() },
            },
            "broadcast": { "omit_users": null, "user_id": "", "channel_id": channel, "team_id": "" },
            "seq": self.state.next(),
        }))
    }

    /// A post without a mention, as the bot's websocket hears it.
    fn chatter(&self, m: &Msg) -> Delivery {
        let Delivery::Socket(mut event) = self.socket(m) else {
            unreachable!()
        };
        let mut post: Value =
            serde_json::from_str(event["data"]["post"].as_str().unwrap()).unwrap();
        post["message"] = json!(m.text);
        event["data"]["post"] = json!(post.to_string());
        Delivery::Socket(event)
    }

    fn slash(&self, m: &Msg) -> Delivery {
        let n = self.state.next();
        let form = [
            ("channel_id", channel_of(m.room, m.user)),
            (
                "channel_name",
                match m.room {
                    Room::Direct => dm_name(m.user),
                    room => room.name().to_owned(),
                },
            ),
            ("command", "/switchboard".to_owned()),
            (
                "response_url",
                format!("http://{}/hooks/commands/{n}", self.state.addr),
            ),
            ("team_domain", "test".to_owned()),
            ("team_id", team_id()),
            ("text", m.text.clone()),
            ("token", COMMAND_TOKEN.to_owned()),
            ("trigger_id", format!("trigger{n}")),
            ("user_id", user_id(m.user)),
            ("user_name", m.user.to_owned()),
        ];
        Delivery::Http {
            endpoint: "commands",
            headers: vec![(
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            )],
            body: serde_urlencoded::to_string(form).unwrap().into_bytes(),
        }
    }

    /// Outgoing webhooks and slash commands with a guessed token, with
    /// none, or with the token of the other kind of integration.
    fn forgeries(&self, m: &Msg) -> Vec<(&'static str, Delivery)> {
        let now = fake::unix_now() * 1000;
        let slash_with = |token: &str| {
            let Delivery::Http {
                endpoint,
                headers,
                body,
            } = self.slash(m)
            else {
                unreachable!()
            };
            let body = String::from_utf8(body)
                .unwrap()
                .replace(COMMAND_TOKEN, token)
                .into_bytes();
            Delivery::Http {
                endpoint,
                headers,
                body,
            }
        };
        vec![
            (
                "webhook with a guessed token",
                self.outgoing(m, "guessedtoken00000000000000", now),
            ),
            ("webhook without a token", self.outgoing(m, "", now)),
            (
                "webhook with the slash command's token",
                self.outgoing(m, COMMAND_TOKEN, now),
            ),
            (
                "slash command with a guessed token",
                slash_with("guessedtoken00000000000000"),
            ),
            (
                "slash command with the webhook's token",
                slash_with(WEBHOOK_TOKEN),
            ),
        ]
    }

    /// An outgoing webhook sent ten minutes ago.
    fn stale(&self, m: &Msg) -> Delivery {
        self.outgoing(m, WEBHOOK_TOKEN, (fake::unix_now() - 600) * 1000)
    }

    /// A post in a channel with an outgoing webhook comes both ways: the
    /// webhook, and the bot's websocket.
    fn repeated(&self, m: &Msg) -> Vec<Delivery> {
        vec![self.hook(m), self.socket(m)]
    }

    fn malformed(&self) -> Vec<(&'static str, Delivery)> {
        let json = "application/json";
        let http = |endpoint, content_type: &str, body: String| Delivery::Http {
            endpoint,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body: body.into_bytes(),
        };
        let no_post = json!({
            "token": WEBHOOK_TOKEN, "team_id": team_id(), "channel_id": channel_id(Room::Ops),
            "channel_name": "ops", "timestamp": fake::unix_now() * 1000,
            "user_id": user_id("mallory"), "user_name": "mallory", "text": "@switchboard uptime",
            "trigger_word": "@switchboard",
        });
        let no_user = serde_urlencoded::to_string([
            ("channel_id", channel_id(Room::Ops)),
            ("command", "/switchboard".to_owned()),
            ("text", "uptime".to_owned()),
            ("token", COMMAND_TOKEN.to_owned()),
        ])
        .unwrap();
        vec![
            (
                "a webhook body that is not JSON",
                http(
                    "webhook",
                    json,
                    format!("{{\"token\": \"{WEBHOOK_TOKEN}\", \"text\": \"uptime\""),
                ),
            ),
            (
                "a webhook without its post id",
                http("webhook", json, no_post.to_string()),
            ),
            (
                "a slash command without its user",
                http("commands", "application/x-www-form-urlencoded", no_user),
            ),
            (
                "a button press that is not JSON",
                http("actions", json, "{\"context\": ".to_owned()),
            ),
            (
                "a webhook of an unknown content type",
                http(
                    "webhook",
                    "text/xml",
                    format!("<token>{WEBHOOK_TOKEN}</token>"),
                ),
            ),
        ]
    }

    /// An outgoing webhook without its post id.
    fn malformed_from(&self, user: &'static str) -> Delivery {
        let body = json!({
            "token": WEBHOOK_TOKEN, "team_id": team_id(), "channel_id": channel_id(Room::Ops),
            "channel_name": "ops", "timestamp": fake::unix_now() * 1000,
            "user_id": user_id(user), "user_name": user, "text": "@switchboard uptime",
            "trigger_word": "@switchboard",
        });
        Delivery::Http {
            endpoint: "webhook",
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.to_string().into_bytes(),
        }
    }

    fn direct(&self, user: &'static str, text: &str) -> (Msg, Delivery) {
        let m = self.msg(user, Room::Direct, text, None);
        let delivery = self.socket(&m);
        (m, delivery)
    }

    fn press(&self, request: &Said, user: &'static str, approve: bool) -> Delivery {
        let context = Self::button(request, if approve { "approve" } else { "reject" });
        self.action(request, user, context)
    }

    fn press_labelled(&self, message: &Said, user: &'static str, label: &str) -> Delivery {
        let id = message.raw["props"]["attachments"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|a| a["actions"].as_array().cloned().unwrap_or_default())
            .find(|b| b["name"] == label)
            .and_then(|b| b["id"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("no `{label}` button in {}", message.raw));
        let context = Self::button(message, &id);
        self.action(message, user, context)
    }

    /// Approve's context, made to name another execution, with the
    /// signature left as it was.
    fn forged_press(&self, request: &Said, user: &'static str) -> Delivery {
        let mut context = Self::button(request, "approve");
        let id: i64 = context["execution"].as_str().unwrap().parse().unwrap();
        context["execution"] = json!((id + 1).to_string());
        self.action(request, user, context)
    }

    fn said(&self) -> Vec<Said> {
        let bot = bot_id();
        self.state
            .posts
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.user_id == bot)
            .map(|p| Said {
                id: p.id.clone(),
                room: p.channel_id.clone(),
                thread: Some(p.root_id.clone()).filter(|r| !r.is_empty()),
                text: p.message.clone(),
                versions: p.versions.clone(),
                buttons: p.props["attachments"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|a| a["actions"].as_array().cloned().unwrap_or_default())
                    .filter_map(|b| b["name"].as_str().map(str::to_owned))
                    .collect(),
                raw: p.json(),
            })
            .collect()
    }

    fn uploads(&self) -> Vec<Upload> {
        let files = self.state.files.lock().unwrap();
        self.said()
            .into_iter()
            .flat_map(|said| {
                let ids: Vec<String> = said.raw["file_ids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect();
                ids.into_iter()
                    .filter_map(|id| files.get(&id).cloned())
                    .map(move |f| Upload {
                        filename: f.filename,
                        title: said.text.clone(),
                        bytes: f.bytes,
                        room: said.room.clone(),
                        thread: said.thread.clone(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn direct_room(&self, user: &str) -> Option<String> {
        self.state.dms.lock().unwrap().get(&user_id(user)).cloned()
    }

    fn refuse_directs(&self, refuse: bool) {
        self.state.refuse_directs.store(refuse, Ordering::SeqCst);
    }

    fn sockets(&self) -> &Sockets {
        &self.state.sockets
    }

    /// Every connection began with an `authentication_challenge` carrying
    /// the bot token.
    fn socket_protocol_kept(&self) -> Result<(), String> {
        let heard = self.sockets().heard();
        let challenges: Vec<&Value> = heard
            .iter()
            .filter(|h| h["action"] == "authentication_challenge")
            .collect();
        if challenges.len() < self.sockets().opened() {
            return Err(format!(
                "{} connections but {} authentication challenges: {heard:?}",
                self.sockets().opened(),
                challenges.len()
            ));
        }
        match challenges.iter().find(|c| c["data"]["token"] != BOT_TOKEN) {
            Some(c) => Err(format!("a challenge without the bot token: {c}")),
            None => Ok(()),
        }
    }

    fn calls(&self) -> Vec<String> {
        self.state.calls.lock().unwrap().clone()
    }
}

suite!(Mattermost);

/// The scenarios every chat door passes, on Mattermost.
type MattermostDoor = super::Rig<Mattermost>;
super::every_door::doors!(MattermostDoor;
    asked_in_ops_it_runs_as_the_speaker_from_ops_and_is_answered_there,
    an_account_linked_through_chat_runs_as_its_user,
    what_is_refused_or_not_understood_is_told_and_nothing_runs,
    a_message_too_long_to_read_is_refused,
    only_what_addresses_the_bot_runs,
);
