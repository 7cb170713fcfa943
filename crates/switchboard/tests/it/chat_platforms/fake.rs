//! What every fake platform shares: serving on its own thread, the
//! long-lived connection (Slack Socket Mode, the Mattermost websocket) that
//! the test can push frames through and drop, and waiting with a deadline.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message, WebSocket};
use serde_json::Value;
use tokio::sync::mpsc;

/// How long anything the server should do may take, generously.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Serves `app` on its own thread and runtime, so that the fake answers
/// while the test blocks (the server calls the platform while it starts).
pub fn serve(listener: std::net::TcpListener, app: Router) {
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
}

/// A port for a fake, bound before its routes are made (they name it).
pub fn bind() -> (std::net::TcpListener, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Polls `probe` until it gives a value, for at most [`DEADLINE`]; on
/// timeout fails with `what()` (evaluated then, so it can show the state).
pub async fn eventually<T>(what: impl Fn() -> String, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "waited {DEADLINE:?} for {}",
            what()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

enum Command {
    Send(String),
    Drop,
}

/// The platform's side of its long-lived connections.
#[derive(Default)]
pub struct Sockets {
    /// Connections that finished their handshake and are still open.
    live: Mutex<Vec<(usize, mpsc::UnboundedSender<Command>)>>,
    /// Connections ever accepted.
    opened: AtomicUsize,
    /// Every text frame the client sent, in order, parsed when JSON.
    heard: Mutex<Vec<Value>>,
    /// Every frame the test pushed.
    pushed: Mutex<Vec<Value>>,
}

impl Sockets {
    /// Keeps one connection: reads the client's first frame when
    /// `challenge_first` (Mattermost's authentication), sends `greeting`,
    /// then relays pushed frames and records what the client says, until
    /// either side ends it. Ending it on [`Sockets::drop_all`] sends no
    /// close frame: the connection just goes, as when a network fails.
    pub async fn keep(
        self: Arc<Self>,
        mut socket: WebSocket,
        challenge_first: bool,
        greeting: Vec<Value>,
    ) {
        let n = self.opened.fetch_add(1, Ordering::SeqCst) + 1;
        if challenge_first {
            match socket.recv().await {
                Some(Ok(Message::Text(text))) => self.hear(text.as_str()),
                _ => return,
            }
        }
        for frame in greeting {
            if socket
                .send(Message::Text(frame.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.live.lock().unwrap().push((n, tx));
        loop {
            tokio::select! {
                command = rx.recv() => match command {
                    Some(Command::Send(text)) => {
                        if socket.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    Some(Command::Drop) | None => break,
                },
                message = socket.recv() => match message {
                    Some(Ok(Message::Text(text))) => self.hear(text.as_str()),
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        self.live.lock().unwrap().retain(|(i, _)| *i != n);
    }

    fn hear(&self, text: &str) {
        let value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()));
        self.heard.lock().unwrap().push(value);
    }

    /// How many connections were ever accepted.
    pub fn opened(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }

    /// How many connections are open and past their handshake.
    pub fn live(&self) -> usize {
        self.live.lock().unwrap().len()
    }

    /// What clients sent.
    pub fn heard(&self) -> Vec<Value> {
        self.heard.lock().unwrap().clone()
    }

    /// What the test pushed.
    pub fn pushed(&self) -> Vec<Value> {
        self.pushed.lock().unwrap().clone()
    }

    /// Sends `frame` on every live connection; returns on how many.
    pub fn push(&self, frame: &Value) -> usize {
        self.pushed.lock().unwrap().push(frame.clone());
        self.broadcast(frame)
    }

    /// Sends `frame` on every live connection, as the platform does on its
    /// own (the bot's own posts come back this way), without recording it
    /// among the test's.
    pub fn broadcast(&self, frame: &Value) -> usize {
        let live = self.live.lock().unwrap();
        live.iter()
            .filter(|(_, tx)| tx.send(Command::Send(frame.to_string())).is_ok())
            .count()
    }

    /// Drops every live connection without a word.
    pub fn drop_all(&self) {
        for (_, tx) in self.live.lock().unwrap().drain(..) {
            let _ = tx.send(Command::Drop);
        }
    }

    /// Waits until `n` connections were accepted and one is live.
    pub async fn wait_connected(&self, n: usize) {
        eventually(
            || {
                format!(
                    "connection {n} (opened {}, live {}, heard {:?})",
                    self.opened(),
                    self.live(),
                    self.heard()
                )
            },
            || (self.opened() >= n && self.live() >= 1).then_some(()),
        )
        .await;
    }
}

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// The `Content-Type` of a request, without parameters, lower-cased.
pub fn content_type(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A form body as a JSON object of strings.
pub fn form_object(body: &[u8]) -> Value {
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    )
}
