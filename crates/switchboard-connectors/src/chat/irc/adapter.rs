//! The IRC connection and the outlet that speaks through it.
//!
//! [`IrcAdapter::connect`] keeps one client connection (the `irc` crate:
//! TLS, pings, flood pacing, the alternative nicks when the nick is taken)
//! until told to stop: it registers (`session::Registration`: capabilities
//! and SASL), joins the channels, rejoins one it was kicked from, hands
//! each message to the conversation, and reconnects after a wait that
//! starts at `reconnect_min` and doubles up to `reconnect_max` while
//! sessions fail.
//!
//! [`IrcOutlet`] sends replies as lines to the channel or nick they answer
//! (IRC has no threads, edits, files or buttons), folded by `session::fold`.
//!
//! Not here: reading messages and the negotiation's rules (`session.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use irc::client::prelude::{Client, Config, Sender};
use irc::proto::Command;
use switchboard_core::chat::{
    Attachment, Capabilities, ChatHandler, ChatIdentity, ChatOutlet, Destination, Markup,
    OutletError, Posted, Reply,
};
use tokio::sync::watch;

use super::PLATFORM;
use super::config::{IrcConfig, Sasl};
use super::session::{self, LINE_BYTES, Registration};
use crate::chat::{ChatAdapter, STOPPED};

/// How long connecting (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The pause before rejoining a channel the bot was kicked from.
const REJOIN_AFTER: Duration = Duration::from_secs(2);

/// The IRC adapter: no HTTP endpoints, one long-lived connection.
pub struct IrcAdapter {
    config: Arc<IrcConfig>,
    outlet: Arc<IrcOutlet>,
}

impl IrcAdapter {
    pub fn new(config: IrcConfig) -> Self {
        let config = Arc::new(config);
        Self {
            outlet: Arc::new(IrcOutlet {
                config: config.clone(),
                sender: Mutex::new(None),
                nicks: Mutex::new(HashMap::new()),
                posted: AtomicU64::new(0),
            }),
            config,
        }
    }
}

#[async_trait]
impl ChatAdapter for IrcAdapter {
    fn door(&self) -> crate::chat::DoorDescription {
        let c = &self.config;
        crate::chat::DoorDescription {
            reaches: format!(
                "IRC {}:{}{} as {}, channels {}",
                c.server,
                c.port,
                if c.tls { " (TLS)" } else { " (no TLS)" },
                c.nick,
                c.channels.join(", ")
            ),
            authentication: format!(
                "{}; senders by their services account (account-tag), a bare nick is anonymous",
                match &c.sasl {
                    Some(super::config::Sasl::Plain { .. }) => "the bot signs in with SASL PLAIN",
                    Some(super::config::Sasl::External { .. }) =>
                        "the bot signs in with SASL EXTERNAL",
                    None => "the bot signs in with no SASL",
                }
            ),
        }
    }

    fn platform(&self) -> &'static str {
        PLATFORM
    }

    fn outlet(&self) -> Arc<dyn ChatOutlet> {
        self.outlet.clone()
    }

    async fn connect(&self, handler: Arc<dyn ChatHandler>, mut stop: watch::Receiver<bool>) {
        let mut wait = self.config.reconnect_min;
        loop {
            if *stop.borrow_and_update() {
                return;
            }
            let (registered, reason) = match self.session(&handler, &mut stop).await {
                Ended::Stopped => {
                    handler.connection(PLATFORM, false, STOPPED).await;
                    return;
                }
                Ended::Dropped { registered, reason } => (registered, reason),
            };
            self.outlet.disconnected();
            handler.connection(PLATFORM, false, &reason).await;
            if registered {
                wait = self.config.reconnect_min;
            }
            tracing::warn!(%reason, retry_in = ?wait, server = %self.config.server, "IRC connection closed");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            wait = (wait * 2).min(self.config.reconnect_max);
        }
    }
}

/// How a session ended.
enum Ended {
    Stopped,
    Dropped { registered: bool, reason: String },
}

impl IrcAdapter {
    /// The `irc` crate's configuration: the connection, nicks, channels
    /// and pacing. Registration is done here, not by the crate.
    fn client_config(&self) -> Config {
        let c = &self.config;
        let (client_cert_path, client_cert_pass) = match &c.sasl {
            Some(Sasl::External { cert_file, key }) => (
                Some(cert_file.display().to_string()),
                Some(key.expose().clone()),
            ),
            _ => (None, None),
        };
        Config {
            nickname: Some(c.nick.clone()),
            alt_nicks: c.alt_nicks.clone(),
            username: Some(c.username.clone()),
            realname: Some(c.realname.clone()),
            server: Some(c.server.clone()),
            port: Some(c.port),
            use_tls: Some(c.tls),
            cert_path: c.ca_file.as_ref().map(|p| p.display().to_string()),
            client_cert_path,
            client_cert_pass,
            channels: c.channels.clone(),
            burst_window_length: Some(c.burst_seconds),
            max_messages_in_burst: Some(c.lines_per_burst),
            ping_time: Some(60),
            ping_timeout: Some(30),
            version: Some("Switchboard".to_owned()),
            ..Config::default()
        }
    }

    async fn session(
        &self,
        handler: &Arc<dyn ChatHandler>,
        stop: &mut watch::Receiver<bool>,
    ) -> Ended {
        let dropped = |registered: bool, reason: String| Ended::Dropped { registered, reason };
        let mut client =
            match tokio::time::timeout(CONNECT_TIMEOUT, Client::from_config(self.client_config()))
                .await
            {
                Ok(Ok(client)) => client,
                Ok(Err(e)) => return dropped(false, format!("cannot connect: {e}")),
                Err(_) => return dropped(false, "connecting timed out".to_owned()),
            };
        let mut stream = match client.stream() {
            Ok(stream) => stream,
            Err(e) => return dropped(false, e.to_string()),
        };
        let (mut registration, first) = Registration::start(self.config.sasl.as_ref());
        let mut hello: Vec<Command> = Vec::new();
        if let Some(password) = &self.config.server_password {
            hello.push(Command::PASS(password.expose().clone()));
        }
        hello.extend(first);
        hello.push(Command::NICK(self.config.nick.clone()));
        hello.push(Command::USER(
            self.config.username.clone(),
            "0".to_owned(),
            self.config.realname.clone(),
        ));
        for command in hello {
            if let Err(e) = client.send(command) {
                return dropped(false, e.to_string());
            }
        }
        let sender = client.sender();
        let mut registered = false;
        loop {
            let message = tokio::select! {
                message = stream.next() => message,
                _ = stop.wait_for(|s| *s) => {
                    let _ = client.send_quit("Switchboard is stopping");
                    return Ended::Stopped;
                }
            };
            let message = match message {
                Some(Ok(m)) => m,
                Some(Err(e)) => return dropped(registered, e.to_string()),
                None => return dropped(registered, "the server closed the connection".to_owned()),
            };
            match registration.on(&message) {
                Ok(commands) => {
                    for command in commands {
                        if let Err(e) = sender.send(command) {
                            return dropped(registered, e.to_string());
                        }
                    }
                }
                Err(e) => {
                    let _ = client.send_quit("");
                    return dropped(registered, e.to_string());
                }
            }
            match &message.command {
                Command::Response(irc::proto::Response::RPL_WELCOME, _) => {
                    registered = true;
                    self.outlet.connected(sender.clone());
                    tracing::info!(server = %self.config.server, nick = %client.current_nickname(), "IRC connected");
                    let to = format!("{} as {}", self.config.server, client.current_nickname());
                    handler.connection(PLATFORM, true, &to).await;
                }
                Command::KICK(channel, who, reason)
                    if who.eq_ignore_ascii_case(client.current_nickname()) =>
                {
                    tracing::warn!(%channel, reason = ?reason, "kicked from an IRC channel; rejoining");
                    let (sender, channel) = (sender.clone(), channel.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(REJOIN_AFTER).await;
                        let _ = sender.send_join(&channel);
                    });
                }
                _ => {}
            }
            if let Some((identity, nick)) = session::sender(&message, &self.config.network)
                && identity.is_verified()
            {
                self.outlet.seen(identity.user, nick);
            }
            if let Some(inbound) =
                session::inbound(&message, client.current_nickname(), &self.config.network)
            {
                let (handler, outlet) = (handler.clone(), self.outlet.clone());
                tokio::spawn(async move { handler.handle(inbound, outlet).await });
            }
        }
    }
}

/// Replies as lines through the live connection.
pub struct IrcOutlet {
    config: Arc<IrcConfig>,
    /// The connection's sender, while connected.
    sender: Mutex<Option<Sender>>,
    /// The nick each account was last seen with (direct messages go to a
    /// nick; identities name the account).
    nicks: Mutex<HashMap<String, String>>,
    /// Numbers the lines posted (IRC gives messages no id).
    posted: AtomicU64,
}

impl IrcOutlet {
    fn connected(&self, sender: Sender) {
        *self
            .sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sender);
    }

    fn disconnected(&self) {
        *self
            .sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    fn seen(&self, account: String, nick: String) {
        self.nicks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(account, nick);
    }

    fn say(&self, target: &str, reply: &Reply) -> Result<(), OutletError> {
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                OutletError::Unreachable("not connected to the IRC server".to_owned())
            })?;
        let lines = session::fold(
            &reply.text(Markup::Plain),
            execution_link(reply),
            self.config.max_lines,
        );
        for line in lines {
            sender
                .send_privmsg(target, line)
                .map_err(|e| OutletError::Unreachable(e.to_string()))?;
        }
        Ok(())
    }
}

/// The web page of the execution a reply is about, if it has one.
fn execution_link(reply: &Reply) -> Option<&str> {
    match reply {
        Reply::Accepted { execution, .. }
        | Reply::Progress { execution, .. }
        | Reply::Finished { execution, .. }
        | Reply::ApprovalRequest { execution, .. } => execution.link.as_deref(),
        Reply::Text { .. } | Reply::Code { .. } | Reply::Refused { .. } | Reply::Alert { .. } => {
            None
        }
    }
}

#[async_trait]
impl ChatOutlet for IrcOutlet {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            edits: false,
            files: false,
            buttons: false,
            max_text: LINE_BYTES * self.config.max_lines,
        }
    }

    async fn post(&self, to: &Destination, reply: &Reply) -> Result<Posted, OutletError> {
        self.say(&to.room, reply)?;
        Ok(Posted {
            room: to.room.clone(),
            id: self.posted.fetch_add(1, Ordering::Relaxed).to_string(),
            thread: None,
        })
    }

    async fn update(&self, _posted: &Posted, _reply: &Reply) -> Result<(), OutletError> {
        Err(OutletError::Unsupported("IRC messages cannot be edited"))
    }

    async fn upload(&self, _to: &Destination, _file: &Attachment) -> Result<(), OutletError> {
        Err(OutletError::Unsupported("IRC has no files"))
    }

    async fn direct(&self, user: &ChatIdentity, reply: &Reply) -> Result<(), OutletError> {
        let nick = match user.user.strip_prefix('~') {
            Some(nick) => nick.to_owned(),
            None => self
                .nicks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&user.user)
                .cloned()
                .ok_or_else(|| {
                    OutletError::Refused(format!("account {} has not been seen on IRC", user.user))
                })?,
        };
        self.say(&nick, reply)
    }
}
