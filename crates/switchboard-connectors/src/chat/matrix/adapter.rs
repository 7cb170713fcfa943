//! [`MatrixAdapter`]: the `/sync` loop (join on invite, hand messages to
//! the conversation, say once in an encrypted room that it cannot read
//! it), and [`MatrixOutlet`]: replies sent as `m.notice` events in the
//! thread of the message they answer, edited in place (`m.replace`), and
//! direct chats made on demand (`createRoom` with `is_direct`).
//!
//! Every send has its own transaction id, kept across its retries (a
//! network error, 429, or 5xx is tried again, four times at most), so the
//! homeserver stores it once however often it is sent.
//!
//! Not here: reading a `/sync` answer (`sync.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};
use switchboard_core::Timestamp;
use switchboard_core::chat::{
    Attachment, Capabilities, ChatHandler, ChatIdentity, ChatOutlet, Destination, Markup,
    OutletError, Posted, Reply,
};
use tokio::sync::watch;

use super::PLATFORM;
use super::config::MatrixConfig;
use super::sync;
use crate::chat::{ChatAdapter, STOPPED};

/// How many times one call is tried.
const ATTEMPTS: u32 = 4;
/// How long one call (but `/sync`) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The Matrix adapter: no HTTP endpoints, one `/sync` loop.
pub struct MatrixAdapter {
    config: Arc<MatrixConfig>,
    outlet: Arc<MatrixOutlet>,
}

impl MatrixAdapter {
    pub fn new(config: MatrixConfig) -> Self {
        let config = Arc::new(config);
        Self {
            outlet: Arc::new(MatrixOutlet {
                http: reqwest::Client::new(),
                me: Mutex::new(config.user_id.clone()),
                txn_prefix: Timestamp::now().micros().to_string(),
                txn: AtomicU64::new(0),
                direct: Mutex::default(),
                direct_rooms: Mutex::default(),
                config: config.clone(),
            }),
            config,
        }
    }
}

/// Delivers replies to Matrix rooms.
pub struct MatrixOutlet {
    http: reqwest::Client,
    config: Arc<MatrixConfig>,
    /// The bot's user id, once known.
    me: Mutex<Option<String>>,
    /// Transaction ids are `<prefix>.<n>`: unique for this process's life.
    txn_prefix: String,
    txn: AtomicU64,
    /// The direct chat made with each user.
    direct: Mutex<HashMap<String, String>>,
    /// Rooms that are direct chats with the bot.
    direct_rooms: Mutex<HashSet<String>>,
}

/// A failed call: whether trying again may help, and why.
struct CallError {
    again: bool,
    message: String,
}

impl From<CallError> for OutletError {
    fn from(e: CallError) -> Self {
        if e.again {
            Self::Unreachable(e.message)
        } else {
            Self::Refused(e.message)
        }
    }
}

impl MatrixOutlet {
    /// `<homeserver>/_matrix/client/v3/<segments…>`, each segment encoded.
    fn url(&self, segments: &[&str]) -> Result<Url, CallError> {
        let mut url = Url::parse(&format!("{}/_matrix/client/v3", self.config.homeserver))
            .map_err(|e| CallError {
                again: false,
                message: e.to_string(),
            })?;
        url.path_segments_mut()
            .map_err(|()| CallError {
                again: false,
                message: "the homeserver URL cannot take a path".to_owned(),
            })?
            .extend(segments);
        Ok(url)
    }

    /// One call with its retries; the answer's JSON.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        let mut wait = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(self.config.access_token.expose())
                .timeout(timeout);
            if let Some(body) = body {
                request = request.json(body);
            }
            let error = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    return response.json().await.map_err(|e| CallError {
                        again: true,
                        message: format!("the homeserver's answer is not JSON: {e}"),
                    });
                }
                Ok(response) => {
                    let status = response.status();
                    let answer: Value = response.json().await.unwrap_or(Value::Null);
                    if let Some(ms) = answer.get("retry_after_ms").and_then(Value::as_u64) {
                        wait = Duration::from_millis(ms).min(Duration::from_secs(30));
                    }
                    CallError {
                        again: status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error(),
                        message: format!(
                            "the homeserver answered {status}: {}",
                            answer
                                .get("error")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                        ),
                    }
                }
                Err(e) => CallError {
                    again: true,
                    message: e.to_string(),
                },
            };
            if !error.again || attempt >= ATTEMPTS {
                return Err(error);
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
            attempt += 1;
        }
    }

    /// The bot's user id: configured, or asked once.
    async fn me(&self) -> Result<String, CallError> {
        if let Some(me) = self
            .me
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Ok(me);
        }
        let answer = self
            .call(
                Method::GET,
                self.url(&["account", "whoami"])?,
                None,
                CALL_TIMEOUT,
            )
            .await?;
        let me = answer
            .get("user_id")
            .and_then(Value::as_str)
            .ok_or_else(|| CallError {
                again: false,
                message: "whoami named no user_id".to_owned(),
            })?
            .to_owned();
        *self.me.lock().unwrap_or_else(PoisonError::into_inner) = Some(me.clone());
        Ok(me)
    }

    /// Sends an event to a room under a new transaction id; its event id.
    async fn send(&self, room: &str, content: &Value) -> Result<String, CallError> {
        let txn = format!(
            "{}.{}",
            self.txn_prefix,
            self.txn.fetch_add(1, Ordering::Relaxed)
        );
        let url = self.url(&["rooms", room, "send", "m.room.message", &txn])?;
        let answer = self
            .call(Method::PUT, url, Some(content), CALL_TIMEOUT)
            .await?;
        Ok(answer
            .get("event_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned())
    }

    async fn join(&self, room: &str) -> Result<(), CallError> {
        self.call(
            Method::POST,
            self.url(&["join", room])?,
            Some(&json!({})),
            CALL_TIMEOUT,
        )
        .await
        .map(drop)
    }

    /// The direct chat with `user`: the one made before, or a new one.
    async fn direct_room(&self, user: &str) -> Result<String, CallError> {
        if let Some(room) = self
            .direct
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user)
        {
            return Ok(room.clone());
        }
        let body = json!({"is_direct": true, "invite": [user], "preset": "trusted_private_chat"});
        let answer = self
            .call(
                Method::POST,
                self.url(&["createRoom"])?,
                Some(&body),
                CALL_TIMEOUT,
            )
            .await?;
        let room = answer
            .get("room_id")
            .and_then(Value::as_str)
            .ok_or_else(|| CallError {
                again: false,
                message: "createRoom named no room_id".to_owned(),
            })?
            .to_owned();
        self.direct
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(user.to_owned(), room.clone());
        self.direct_rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(room.clone());
        Ok(room)
    }
}

/// A reply's event content: a notice (bots speak in notices, which other
/// bots leave alone), in `thread` when given.
fn content(reply: &Reply, thread: Option<&str>) -> Value {
    let mut content = json!({"msgtype": "m.notice", "body": reply.text(Markup::Plain)});
    if let Some(root) = thread {
        content["m.relates_to"] = json!({
            "rel_type": "m.thread",
            "event_id": root,
            "is_falling_back": true,
            "m.in_reply_to": {"event_id": root},
        });
    }
    content
}

#[async_trait]
impl ChatOutlet for MatrixOutlet {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            edits: true,
            files: false,
            buttons: false,
            max_text: 30_000,
        }
    }

    async fn post(&self, to: &Destination, reply: &Reply) -> Result<Posted, OutletError> {
        let id = self
            .send(&to.room, &content(reply, to.thread.as_deref()))
            .await?;
        Ok(Posted {
            room: to.room.clone(),
            id,
            thread: to.thread.clone(),
        })
    }

    async fn update(&self, posted: &Posted, reply: &Reply) -> Result<(), OutletError> {
        let new = content(reply, None);
        let edit = json!({
            "msgtype": "m.notice",
            "body": format!("* {}", new["body"].as_str().unwrap_or_default()),
            "m.new_content": new,
            "m.relates_to": {"rel_type": "m.replace", "event_id": posted.id},
        });
        self.send(&posted.room, &edit).await?;
        Ok(())
    }

    async fn upload(&self, _to: &Destination, _file: &Attachment) -> Result<(), OutletError> {
        Err(OutletError::Unsupported("files are not sent to Matrix"))
    }

    async fn direct(&self, user: &ChatIdentity, reply: &Reply) -> Result<(), OutletError> {
        let room = self.direct_room(&sync::user_id(user)).await?;
        self.send(&room, &content(reply, None)).await?;
        Ok(())
    }
}

#[async_trait]
impl ChatAdapter for MatrixAdapter {
    fn door(&self) -> crate::chat::DoorDescription {
        let c = &self.config;
        crate::chat::DoorDescription {
            reaches: format!(
                "Matrix {}{}",
                c.homeserver,
                c.user_id
                    .as_deref()
                    .map(|u| format!(" as {u}"))
                    .unwrap_or_default()
            ),
            authentication: "the bot's access token; senders are the homeserver's user ids; encrypted rooms are not read"
                .to_owned(),
        }
    }

    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn outlet(&self) -> Arc<dyn ChatOutlet> {
        self.outlet.clone()
    }

    async fn connect(&self, handler: Arc<dyn ChatHandler>, mut stop: watch::Receiver<bool>) {
        let outlet = &self.outlet;
        let mut wait = self.config.retry_min;
        let mut since: Option<String> = None;
        let mut told_encrypted: HashSet<String> = HashSet::new();
        let mut aliases: HashMap<String, String> = HashMap::new();
        // What the door's state was last said to be: told on changes only.
        let mut told_up: Option<bool> = None;
        loop {
            if *stop.borrow_and_update() {
                handler.connection(PLATFORM, false, STOPPED).await;
                return;
            }
            let round = async {
                let me = outlet.me().await?;
                let batch = self.sync_once(since.as_deref()).await?;
                Ok::<_, CallError>((me, batch))
            };
            let round = tokio::select! {
                r = round => Some(r),
                _ = stop.wait_for(|s| *s) => None,
            };
            let Some(round) = round else {
                handler.connection(PLATFORM, false, STOPPED).await;
                return;
            };
            let (me, body) = match round {
                Ok(ok) => {
                    if told_up != Some(true) {
                        let to = format!("{} as {}", self.config.homeserver, ok.0);
                        handler.connection(PLATFORM, true, &to).await;
                        told_up = Some(true);
                    }
                    ok
                }
                Err(e) => {
                    tracing::warn!(error = %e.message, retry_in = ?wait, "Matrix /sync failed");
                    if told_up != Some(false) {
                        handler.connection(PLATFORM, false, &e.message).await;
                        told_up = Some(false);
                    }
                    if tokio::time::timeout(wait, stop.wait_for(|s| *s))
                        .await
                        .is_ok()
                    {
                        return;
                    }
                    wait = (wait * 2).min(self.config.retry_max);
                    continue;
                }
            };
            wait = self.config.retry_min;
            let direct = outlet
                .direct_rooms
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let batch = match sync::read(&body, &me, &direct) {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "Matrix /sync answer unreadable");
                    continue;
                }
            };
            for (room, inviter, is_direct) in &batch.invites {
                if self.invitation_welcome(inviter.as_deref()) {
                    match outlet.join(room).await {
                        Ok(()) if *is_direct => {
                            outlet
                                .direct_rooms
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .insert(room.clone());
                        }
                        Ok(()) => {}
                        Err(e) => {
                            tracing::warn!(%room, error = %e.message, "cannot join a Matrix room")
                        }
                    }
                } else {
                    tracing::info!(%room, inviter = ?inviter, "Matrix invitation from a server not in invites_from; ignored");
                }
            }
            aliases.extend(batch.aliases);
            // The first sync says where "now" is: what was said before the
            // bot came is no command for it now.
            if since.is_some() {
                for room in batch
                    .encrypted
                    .iter()
                    .filter(|r| told_encrypted.insert((*r).clone()))
                {
                    let notice = Reply::Text {
                        text: "This room is end-to-end encrypted; Switchboard cannot read it. Talk to me in an unencrypted room.".to_owned(),
                    };
                    let to = Destination {
                        room: room.clone(),
                        thread: None,
                    };
                    if let Err(e) = outlet.post(&to, &notice).await {
                        tracing::warn!(%room, error = %e, "cannot post to a Matrix room");
                    }
                }
                for mut inbound in batch.messages {
                    inbound.room.name = aliases.get(&inbound.room.id).cloned();
                    let (handler, outlet) = (handler.clone(), self.outlet.clone());
                    tokio::spawn(async move { handler.handle(inbound, outlet).await });
                }
            }
            since = Some(batch.next_batch);
        }
    }
}

impl MatrixAdapter {
    /// One `/sync`: at once the first time, else waiting up to
    /// `sync_timeout` for news.
    async fn sync_once(&self, since: Option<&str>) -> Result<Value, CallError> {
        let mut url = self.outlet.url(&["sync"])?;
        let wait = match since {
            Some(token) => {
                url.query_pairs_mut().append_pair("since", token);
                self.config.sync_timeout
            }
            None => Duration::ZERO,
        };
        url.query_pairs_mut()
            .append_pair("timeout", &wait.as_millis().to_string());
        self.outlet
            .call(Method::GET, url, None, wait + CALL_TIMEOUT)
            .await
    }

    fn invitation_welcome(&self, inviter: Option<&str>) -> bool {
        match &self.config.invites_from {
            None => true,
            Some(servers) => inviter
                .and_then(sync::split_user_id)
                .is_some_and(|(_, server)| servers.iter().any(|s| s == server)),
        }
    }
}
