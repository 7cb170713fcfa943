//! The XMPP connection and the outlet that speaks through it.
//!
//! [`XmppAdapter::connect`] keeps one stanza stream for the bot's account
//! until told to stop. The library's stream logs in (SASL over TLS, made
//! by `connector.rs`), binds, and reconnects with backoff when the
//! connection drops; on each new session this sends the bot's presence
//! and joins the rooms, rejoins a room that put it out, hands each
//! message to the conversation, and sends what the outlet gives it.
//!
//! [`XmppOutlet`] sends replies as messages to the room or account they
//! answer, and corrects a posted message in place (XEP-0308) for
//! progress. XMPP has no buttons here, and files are not sent.
//!
//! Not here: reading stanzas and the rooms' rules (`stanzas.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use switchboard_core::chat::{
    Attachment, Capabilities, ChatHandler, ChatIdentity, ChatOutlet, Destination, Markup,
    OutletError, Posted, Reply,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_xmpp::Stanza;
use tokio_xmpp::connect::DnsConfig;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::stanzastream::{
    Event, StanzaStage, StanzaState, StanzaStream, StanzaToken, StreamEvent,
};
use tokio_xmpp::xmlstream::Timeouts;

use super::PLATFORM;
use super::config::XmppConfig;
use super::connector::StartTls;
use super::stanzas::{self, RoomEvent, Rooms};
use crate::chat::{ChatAdapter, STOPPED};

/// The pause before joining a room again that put the bot out.
const REJOIN_AFTER: Duration = Duration::from_secs(2);
/// How long a reply may wait to be written to the connection.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);
/// How long stopping may take to close the stream politely.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest reply, in characters.
const MAX_TEXT: usize = 10_000;

/// A stanza for the session to send, and where to say it was queued.
struct Outgoing {
    stanza: Stanza,
    queued: Option<oneshot::Sender<StanzaToken>>,
}

/// The XMPP adapter: no HTTP endpoints, one long-lived connection.
pub struct XmppAdapter {
    config: Arc<XmppConfig>,
    outlet: Arc<XmppOutlet>,
}

impl XmppAdapter {
    pub fn new(config: XmppConfig) -> Self {
        let config = Arc::new(config);
        let rooms = Arc::new(Mutex::new(Rooms::new(&config.rooms, &config.nick)));
        Self {
            outlet: Arc::new(XmppOutlet {
                rooms: rooms.clone(),
                session: Mutex::new(None),
                posted: AtomicU64::new(0),
                prefix: format!(
                    "sb{}",
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_micros())
                        .unwrap_or_default()
                ),
            }),
            config,
        }
    }

    fn connector(&self) -> StartTls {
        let c = &self.config;
        let domain = c.jid.domain().as_str();
        let dns = match &c.server {
            Some(host) => DnsConfig::no_srv(host, c.port),
            None => DnsConfig::srv(domain, "_xmpp-client._tcp", c.port),
        };
        StartTls {
            dns,
            tls: c.tls.clone(),
        }
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, Rooms> {
        self.outlet
            .rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl ChatAdapter for XmppAdapter {
    fn door(&self) -> crate::chat::DoorDescription {
        let c = &self.config;
        let rooms: Vec<String> = c.rooms.iter().map(ToString::to_string).collect();
        crate::chat::DoorDescription {
            reaches: format!(
                "XMPP as {} via {}:{}, rooms {}",
                c.jid,
                c.server.as_deref().unwrap_or("DNS"),
                c.port,
                rooms.join(", ")
            ),
            authentication: "STARTTLS and SASL for the bot; senders by their JID (in rooms, the JID the room shows), a bare nick is anonymous"
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
        if *stop.borrow_and_update() {
            return;
        }
        let timeouts = Timeouts {
            read_timeout: self.config.idle,
            response_timeout: self.config.probe,
        };
        let mut stream = StanzaStream::new_c2s(
            self.connector(),
            Jid::from(self.config.jid.clone()),
            self.config.password.expose().clone(),
            timeouts,
            64,
        );
        let (tx, mut outgoing) = mpsc::channel::<Outgoing>(64);
        tracing::info!(jid = %self.config.jid, "XMPP connecting");
        loop {
            // What happens next; decided before anything is awaited, so
            // no borrow of `stop` is held across an await.
            let next = tokio::select! {
                event = stream.next() => Next::Event(event),
                Some(out) = outgoing.recv() => Next::Send(out),
                _ = stop.wait_for(|s| *s) => Next::Stop,
            };
            match next {
                Next::Event(Some(Event::Stream(StreamEvent::Reset { bound_jid, .. }))) => {
                    tracing::info!(jid = %bound_jid, rooms = self.config.rooms.len(), "XMPP connected");
                    let mut hello = vec![Presence::available()];
                    hello.extend(self.rooms().join_all());
                    for presence in hello {
                        // Queued now; written as soon as the stream can.
                        drop(stream.send(Box::new(presence.into())).await);
                    }
                    self.outlet.online(tx.clone());
                    handler
                        .connection(PLATFORM, true, &format!("as {bound_jid}"))
                        .await;
                }
                Next::Event(Some(Event::Stream(StreamEvent::Resumed))) => {
                    self.outlet.online(tx.clone());
                    let to = format!("as {}, resumed", self.config.jid);
                    handler.connection(PLATFORM, true, &to).await;
                }
                Next::Event(Some(Event::Stream(StreamEvent::Suspended))) => {
                    tracing::warn!(jid = %self.config.jid, "XMPP connection lost; reconnecting");
                    self.outlet.offline();
                    handler.connection(PLATFORM, false, "connection lost").await;
                }
                Next::Event(Some(Event::Stanza(stanza))) => self.on_stanza(stanza, &handler, &tx),
                Next::Event(None) => {
                    tracing::error!("XMPP stream ended");
                    self.outlet.offline();
                    handler.connection(PLATFORM, false, "stream ended").await;
                    return;
                }
                Next::Send(out) => {
                    let token = stream.send(Box::new(out.stanza)).await;
                    if let Some(queued) = out.queued {
                        let _ = queued.send(token);
                    }
                }
                Next::Stop => {
                    self.outlet.offline();
                    handler.connection(PLATFORM, false, STOPPED).await;
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.close()).await;
                    return;
                }
            }
        }
    }
}

/// What the session does next.
enum Next {
    Event(Option<Event>),
    Send(Outgoing),
    Stop,
}

impl XmppAdapter {
    fn on_stanza(
        &self,
        stanza: Stanza,
        handler: &Arc<dyn ChatHandler>,
        tx: &mpsc::Sender<Outgoing>,
    ) {
        match stanza {
            Stanza::Presence(presence) => {
                let event = self.rooms().on_presence(&presence);
                match event {
                    Some(RoomEvent::Joined(room)) => tracing::info!(%room, "XMPP room joined"),
                    Some(RoomEvent::NickTaken(again)) => {
                        tracing::warn!(room = ?again.to, "XMPP nick taken in a room; trying another");
                        let _ = tx.try_send(Outgoing {
                            stanza: again.into(),
                            queued: None,
                        });
                    }
                    Some(RoomEvent::Removed { room, why }) => {
                        tracing::warn!(%room, %why, "put out of an XMPP room; joining again");
                        let (tx, rooms) = (tx.clone(), self.outlet.rooms.clone());
                        tokio::spawn(async move {
                            tokio::time::sleep(REJOIN_AFTER).await;
                            let again = rooms
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .rejoin(&room);
                            if let Some(again) = again {
                                let _ = tx
                                    .send(Outgoing {
                                        stanza: again.into(),
                                        queued: None,
                                    })
                                    .await;
                            }
                        });
                    }
                    None => {}
                }
            }
            Stanza::Message(message) => {
                let inbound = self.rooms().inbound(&message, &self.config.jid);
                if let Some(inbound) = inbound {
                    let (handler, outlet) = (handler.clone(), self.outlet.clone());
                    tokio::spawn(async move { handler.handle(inbound, outlet).await });
                }
            }
            // Queries to the bot (disco, ping, version) are answered by
            // the library or left unanswered; none of them run anything.
            Stanza::Iq(_) => {}
        }
    }
}

/// Replies as messages through the live connection.
pub struct XmppOutlet {
    rooms: Arc<Mutex<Rooms>>,
    /// The session's queue, while connected.
    session: Mutex<Option<mpsc::Sender<Outgoing>>>,
    /// Numbers the messages posted, after `prefix`, for their ids.
    posted: AtomicU64,
    prefix: String,
}

impl XmppOutlet {
    fn online(&self, tx: mpsc::Sender<Outgoing>) {
        *self.session.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
    }

    fn offline(&self) {
        *self.session.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn next_id(&self) -> String {
        format!(
            "{}-{}",
            self.prefix,
            self.posted.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Sends `body` to `to` (a room, an account or a room's occupant),
    /// waiting until it is written to the connection.
    async fn send(
        &self,
        to: &str,
        id: &str,
        body: String,
        thread: Option<&str>,
        replace: Option<&str>,
    ) -> Result<(), OutletError> {
        let jid =
            Jid::new(to).map_err(|e| OutletError::Refused(format!("`{to}` is not a JID: {e}")))?;
        let groupchat = jid.resource().is_none()
            && self
                .rooms
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_room(&jid.to_bare());
        let stanza = stanzas::message(jid, groupchat, id, body, thread, replace).into();
        let session = self
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                OutletError::Unreachable("not connected to the XMPP server".to_owned())
            })?;
        let (queued, token) = oneshot::channel();
        let unreachable = || OutletError::Unreachable("the XMPP connection closed".to_owned());
        session
            .send(Outgoing {
                stanza,
                queued: Some(queued),
            })
            .await
            .map_err(|_| unreachable())?;
        let mut token = token.await.map_err(|_| unreachable())?;
        match tokio::time::timeout(SEND_TIMEOUT, token.wait_for(StanzaStage::Sent)).await {
            Ok(Some(StanzaState::Sent { .. } | StanzaState::Acked { .. })) => Ok(()),
            Ok(Some(StanzaState::Failed { error })) => {
                Err(OutletError::Unreachable(error.to_string()))
            }
            Ok(_) => Err(unreachable()),
            Err(_) => Err(OutletError::Unreachable(
                "the XMPP connection did not take the message in time".to_owned(),
            )),
        }
    }
}

#[async_trait]
impl ChatOutlet for XmppOutlet {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            edits: true,
            files: false,
            buttons: false,
            max_text: MAX_TEXT,
        }
    }

    async fn post(&self, to: &Destination, reply: &Reply) -> Result<Posted, OutletError> {
        let id = self.next_id();
        let body = reply.text(Markup::Plain);
        self.send(&to.room, &id, body, to.thread.as_deref(), None)
            .await?;
        Ok(Posted {
            room: to.room.clone(),
            id,
            thread: to.thread.clone(),
        })
    }

    async fn update(&self, posted: &Posted, reply: &Reply) -> Result<(), OutletError> {
        let id = self.next_id();
        let body = reply.text(Markup::Plain);
        self.send(
            &posted.room,
            &id,
            body,
            posted.thread.as_deref(),
            Some(&posted.id),
        )
        .await
    }

    async fn upload(&self, _to: &Destination, _file: &Attachment) -> Result<(), OutletError> {
        Err(OutletError::Unsupported("files are not sent to XMPP"))
    }

    async fn direct(&self, user: &ChatIdentity, reply: &Reply) -> Result<(), OutletError> {
        let jid: BareJid = stanzas::jid_of(user).ok_or_else(|| {
            OutletError::Refused(format!(
                "{user} is not an XMPP account the bot can write to"
            ))
        })?;
        let id = self.next_id();
        self.send(jid.as_str(), &id, reply.text(Markup::Plain), None, None)
            .await
    }
}
