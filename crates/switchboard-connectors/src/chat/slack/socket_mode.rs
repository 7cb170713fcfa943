//! Socket Mode: Switchboard opens a websocket to Slack (the URL comes from
//! `apps.connections.open`, authenticated by the app-level token) and Slack
//! pushes the same payloads it would post over HTTP, each in an envelope.
//! Every envelope is acknowledged first, then translated by the same
//! functions as the HTTP path (`inbound.rs`; there is no signature here: the
//! token authenticated the connection) and handed to the handler in its own
//! task — room names filled in first (`rooms.rs`), as the HTTP route does —
//! so neither a slow lookup nor a slow answer holds the connection.
//!
//! The connection is kept: Slack's `disconnect` (it refreshes connections
//! every few hours) opens a new one at once (unless it says Socket Mode was
//! turned off: then it is tried again after a wait); a drop, an error or a peer that
//! stops answering pings reconnects after a wait that doubles from
//! `reconnect_first` up to `reconnect_max` and starts again after a healthy
//! connection (one that said `hello`).
//!
//! Not here: what the payloads mean or how they are translated.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::chat::{ChatHandler, ChatOutlet, Inbound};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

use super::PLATFORM;
use super::adapter::SlackAdapter;
use super::inbound::{self, Context, Events, Payload};
use crate::chat::STOPPED;

/// The longest wait for the websocket handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a connection ended.
#[derive(Debug)]
enum Ended {
    /// Slack asked for a new connection.
    Refresh,
    /// It dropped or never opened; `healthy` when Slack had said `hello`.
    Dropped { healthy: bool, reason: String },
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    envelope_id: Option<String>,
    #[serde(default)]
    payload: Value,
    reason: Option<String>,
}

/// Keeps a Socket Mode connection until `stop` turns true (or its sender
/// goes away).
pub(super) async fn run(
    adapter: &SlackAdapter,
    handler: Arc<dyn ChatHandler>,
    mut stop: watch::Receiver<bool>,
) {
    let config = adapter.config();
    let mut wait = config.reconnect_first;
    loop {
        let ended = tokio::select! {
            ended = session(adapter, &handler) => Some(ended),
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some(ended) = ended else {
            handler.connection(PLATFORM, false, STOPPED).await;
            return;
        };
        match ended {
            Ended::Refresh => {
                tracing::info!("Slack Socket Mode: refreshing the connection");
                wait = config.reconnect_first;
            }
            Ended::Dropped { healthy, reason } => {
                if healthy {
                    wait = config.reconnect_first;
                }
                tracing::warn!(
                    %reason,
                    retry_in_ms = wait.as_millis() as u64,
                    "Slack Socket Mode connection lost"
                );
                handler.connection(PLATFORM, false, &reason).await;
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                wait = (wait * 2).min(config.reconnect_max);
            }
        }
    }
}

/// One connection, from `apps.connections.open` until it ends.
async fn session(adapter: &SlackAdapter, handler: &Arc<dyn ChatHandler>) -> Ended {
    let dropped = |healthy: bool, reason: String| Ended::Dropped { healthy, reason };
    let url = match adapter.api().connections_open().await {
        Ok(url) => url,
        Err(e) => return dropped(false, format!("apps.connections.open: {e}")),
    };
    let connecting = tokio_tungstenite::connect_async(url.as_str());
    let mut ws = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => return dropped(false, format!("connecting: {e}")),
        Err(_) => return dropped(false, "connecting: timed out".to_owned()),
    };
    let keepalive = adapter.config().keepalive;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heard = true;
    let mut healthy = false;
    loop {
        let message = tokio::select! {
            message = ws.next() => message,
            _ = ticks.tick() => {
                if !heard {
                    return dropped(healthy, "no answer to pings".to_owned());
                }
                heard = false;
                if let Err(e) = ws.send(Message::Ping(Default::default())).await {
                    return dropped(healthy, format!("sending a ping: {e}"));
                }
                continue;
            }
        };
        let message = match message {
            Some(Ok(message)) => message,
            Some(Err(e)) => return dropped(healthy, e.to_string()),
            None => return dropped(healthy, "the connection ended".to_owned()),
        };
        heard = true;
        let text = match message {
            Message::Text(text) => text,
            Message::Close(frame) => {
                let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                return dropped(healthy, format!("closed by Slack {why}"));
            }
            // Pongs to Slack's pings go out with the next read.
            _ => continue,
        };
        let envelope: Envelope = match serde_json::from_str(text.as_str()) {
            Ok(envelope) => envelope,
            Err(e) => {
                tracing::warn!(error = %e, "Slack Socket Mode: unreadable message ignored");
                continue;
            }
        };
        match envelope.kind.as_str() {
            "hello" => {
                if !healthy {
                    handler.connection(PLATFORM, true, "Socket Mode").await;
                }
                healthy = true;
            }
            "disconnect" if envelope.reason.as_deref() == Some("link_disabled") => {
                let reason = "Socket Mode is turned off in the app's settings (link_disabled)";
                return dropped(false, reason.to_owned());
            }
            "disconnect" => {
                tracing::info!(reason = ?envelope.reason, "Slack asked to reconnect");
                return Ended::Refresh;
            }
            kind => {
                if let Some(id) = &envelope.envelope_id {
                    let ack = json!({ "envelope_id": id }).to_string();
                    if let Err(e) = ws.send(Message::text(ack)).await {
                        return dropped(healthy, format!("acknowledging: {e}"));
                    }
                }
                let ctx = adapter.context();
                // Whom a refused payload named, for the log (never trusted).
                let claimed = Payload::of_envelope(kind)
                    .and_then(|p| inbound::claimed_in(p, &envelope.payload, ctx));
                match translate(kind, envelope.payload, ctx) {
                    Ok(messages) => {
                        for inbound in messages {
                            let handler = handler.clone();
                            let outlet: Arc<dyn ChatOutlet> = adapter.api();
                            let rooms = adapter.rooms();
                            tokio::spawn(async move {
                                let inbound = rooms.complete(inbound).await;
                                handler.handle(inbound, outlet).await
                            });
                        }
                    }
                    Err(reason) => {
                        let claimed = claimed.map(|sender| sender.to_string());
                        tracing::warn!(
                            kind,
                            %reason,
                            claimed_sender = claimed.as_deref(),
                            "Slack Socket Mode: payload refused"
                        );
                    }
                }
            }
        }
    }
}

/// An envelope's payload as messages, by the same rules as over HTTP.
fn translate(kind: &str, payload: Value, ctx: Context<'_>) -> Result<Vec<Inbound>, String> {
    match kind {
        "events_api" => match inbound::events_value(payload, ctx)? {
            Events::Messages(messages) => Ok(messages),
            Events::Challenge(_) => Ok(Vec::new()),
        },
        "slash_commands" => {
            let cmd = serde_json::from_value(payload)
                .map_err(|e| format!("malformed slash command: {e}"))?;
            Ok(vec![inbound::command(cmd, ctx)?])
        }
        "interactive" => inbound::interactive(payload, ctx),
        _ => Ok(Vec::new()),
    }
}
