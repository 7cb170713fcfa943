//! The pure parts of an IRC session: the registration's capability and
//! SASL negotiation ([`Registration`]), reading a message into an
//! [`Inbound`] ([`inbound`]), and folding a reply into the lines to send
//! ([`fold`]). No sockets here, so each is tested on its own.
//!
//! Not here: the connection, its pacing and reconnection (`adapter.rs`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use irc::proto::{CapSubCommand, Command, Message, Prefix, Response};
use switchboard_core::chat::{ChatIdentity, Inbound, Room};

use super::PLATFORM;
use super::config::Sasl;

/// The capabilities asked for when the server offers them: the sender's
/// account on each message, and SASL when configured.
const WANTED: [&str; 2] = ["account-tag", "message-tags"];

/// The longest text one line carries: IRC lines are 512 bytes with the
/// sender's prefix, the command and the target.
pub(super) const LINE_BYTES: usize = 400;

/// Where the registration stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// `CAP LS` sent; the offer is being read (it may span several lines).
    Listing(Vec<String>),
    /// `CAP REQ` sent.
    Requested { sasl: bool },
    /// `AUTHENTICATE <mechanism>` sent.
    Authenticating,
    /// `CAP END` sent, or the server does not negotiate.
    Done,
}

/// The registration's negotiation: what to send on each message of the
/// server until it is done.
#[derive(Debug)]
pub(super) struct Registration<'a> {
    sasl: Option<&'a Sasl>,
    stage: Stage,
}

/// Why registering failed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RegistrationError {
    /// The server refused the bot's SASL credentials.
    SaslRefused(String),
    /// SASL is configured but the server does not offer it.
    SaslUnavailable,
}

impl std::fmt::Display for RegistrationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SaslRefused(why) => write!(f, "the server refused the SASL login: {why}"),
            Self::SaslUnavailable => write!(
                f,
                "SASL is configured but the server does not offer it; not connecting without it"
            ),
        }
    }
}

impl<'a> Registration<'a> {
    /// Starts: the commands to send first (before `NICK` and `USER`).
    pub(super) fn start(sasl: Option<&'a Sasl>) -> (Self, Vec<Command>) {
        let ls = Command::CAP(None, CapSubCommand::LS, Some("302".to_owned()), None);
        (
            Self {
                sasl,
                stage: Stage::Listing(Vec::new()),
            },
            vec![ls],
        )
    }

    /// The commands `msg` calls for.
    pub(super) fn on(&mut self, msg: &Message) -> Result<Vec<Command>, RegistrationError> {
        let end = || Command::CAP(None, CapSubCommand::END, None, None);
        match (&mut self.stage, &msg.command) {
            // `CAP <nick> LS [*] :caps`: a `*` says more lines follow.
            (Stage::Listing(offered), Command::CAP(_, CapSubCommand::LS, more, last)) => {
                let (more, caps) = match (more, last) {
                    (Some(star), Some(caps)) if star == "*" => (true, caps.as_str()),
                    (Some(caps), None) | (_, Some(caps)) => (false, caps.as_str()),
                    (None, None) => (false, ""),
                };
                // `sasl=PLAIN,EXTERNAL`: the name is what counts.
                offered.extend(
                    caps.split_whitespace()
                        .map(|c| c.split('=').next().unwrap_or(c).to_owned()),
                );
                if more {
                    return Ok(Vec::new());
                }
                let sasl = self.sasl.is_some() && offered.iter().any(|c| c == "sasl");
                if self.sasl.is_some() && !sasl {
                    return Err(RegistrationError::SaslUnavailable);
                }
                let mut wanted: Vec<&str> = WANTED
                    .iter()
                    .copied()
                    .filter(|w| offered.iter().any(|c| c == w))
                    .collect();
                if sasl {
                    wanted.push("sasl");
                }
                if wanted.is_empty() {
                    self.stage = Stage::Done;
                    return Ok(vec![end()]);
                }
                self.stage = Stage::Requested { sasl };
                Ok(vec![Command::CAP(
                    None,
                    CapSubCommand::REQ,
                    None,
                    Some(wanted.join(" ")),
                )])
            }
            (Stage::Requested { sasl }, Command::CAP(_, sub, _, _))
                if matches!(sub, CapSubCommand::ACK | CapSubCommand::NAK) =>
            {
                let acked = *sub == CapSubCommand::ACK;
                match self.sasl {
                    Some(mechanism) if *sasl && acked => {
                        self.stage = Stage::Authenticating;
                        let name = match mechanism {
                            Sasl::Plain { .. } => "PLAIN",
                            Sasl::External { .. } => "EXTERNAL",
                        };
                        Ok(vec![Command::AUTHENTICATE(name.to_owned())])
                    }
                    Some(_) if *sasl => Err(RegistrationError::SaslUnavailable),
                    _ => {
                        self.stage = Stage::Done;
                        Ok(vec![end()])
                    }
                }
            }
            (Stage::Authenticating, Command::AUTHENTICATE(go)) if go == "+" => {
                let payload = match self.sasl {
                    Some(Sasl::Plain { username, password }) => {
                        BASE64.encode(format!("\0{username}\0{}", password.expose()))
                    }
                    _ => String::new(),
                };
                Ok(authenticate_lines(&payload))
            }
            (Stage::Authenticating, Command::Response(Response::RPL_SASLSUCCESS, _)) => {
                self.stage = Stage::Done;
                Ok(vec![end()])
            }
            (
                Stage::Authenticating,
                Command::Response(
                    Response::ERR_SASLFAIL
                    | Response::ERR_SASLTOOLONG
                    | Response::ERR_SASLABORT
                    | Response::ERR_NICKLOCKED,
                    args,
                ),
            ) => Err(RegistrationError::SaslRefused(
                args.last().cloned().unwrap_or_default(),
            )),
            // A server that does not know CAP registers us all the same.
            (_, Command::Response(Response::RPL_WELCOME, _)) => {
                self.stage = Stage::Done;
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// `AUTHENTICATE` lines for a base64 payload: chunks of 400 bytes, `+`
/// for an empty payload or after a last chunk of exactly 400.
fn authenticate_lines(payload: &str) -> Vec<Command> {
    let mut lines: Vec<Command> = payload
        .as_bytes()
        .chunks(400)
        .map(|c| Command::AUTHENTICATE(String::from_utf8_lossy(c).into_owned()))
        .collect();
    if payload.len().is_multiple_of(400) {
        lines.push(Command::AUTHENTICATE("+".to_owned()));
    }
    lines
}

/// The value of message tag `name`, if the message carries it.
fn tag<'m>(msg: &'m Message, name: &str) -> Option<&'m str> {
    msg.tags
        .as_ref()?
        .iter()
        .find(|t| t.0 == name)
        .and_then(|t| t.1.as_deref())
        // `account=*` is how servers say "not logged in".
        .filter(|v| !v.is_empty() && *v != "*")
}

/// The sender of `msg` as a chat identity: its services account when the
/// server vouches for one (`account` tag), else `~<nick>`, which is never
/// linked. `None` when the message names no usable sender.
pub(super) fn sender(msg: &Message, network: &str) -> Option<(ChatIdentity, String)> {
    let Some(Prefix::Nickname(nick, _, _)) = &msg.prefix else {
        return None;
    };
    let user = match tag(msg, "account") {
        Some(account) => account.to_owned(),
        None => format!("~{nick}"),
    };
    let identity = ChatIdentity::new(PLATFORM, network, user).ok()?;
    Some((identity, nick.clone()))
}

/// A message said to the bot, or in one of its channels, as the
/// conversation takes it; `None` for anything else (notices, CTCP, the
/// bot's own lines, other commands).
pub(super) fn inbound(msg: &Message, me: &str, network: &str) -> Option<Inbound> {
    let Command::PRIVMSG(target, text) = &msg.command else {
        return None;
    };
    if text.starts_with('\u{1}') {
        return None;
    }
    let (sender, nick) = sender(msg, network)?;
    if nick.eq_ignore_ascii_case(me) {
        return None;
    }
    let in_channel = target.starts_with('#') || target.starts_with('&');
    let (room, text, mentioned) = if in_channel {
        let room = Room {
            id: target.clone(),
            name: Some(target.clone()),
            direct: false,
        };
        match crate::chat::addressed_to(text, me) {
            Some(rest) => (room, rest.to_owned(), true),
            None => (room, text.clone(), false),
        }
    } else {
        let room = Room {
            id: nick.clone(),
            name: None,
            direct: true,
        };
        (room, text.clone(), true)
    };
    Some(Inbound {
        delivery_id: tag(msg, "msgid").map(str::to_owned),
        sender,
        sender_name: Some(nick),
        sender_is_bot: false,
        authenticated: None,
        room,
        thread: None,
        message_id: None,
        text: text.trim().to_owned(),
        mentioned,
    })
}

/// The lines `text` is sent as: one per line of text (blank ones left
/// out, long ones cut at [`LINE_BYTES`] on a character boundary); when
/// there are more than `max_lines`, the first ones and a last line saying
/// how many more there are and where to read them.
pub(super) fn fold(text: &str, link: Option<&str>, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    // A carriage return or a NUL would end the IRC line early, and what
    // follows would be read as a command of its own.
    let text = text.replace('\0', "");
    for line in text
        .split(['\n', '\r'])
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
    {
        let mut rest = line;
        while !rest.is_empty() {
            let mut cut = rest.len().min(LINE_BYTES);
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            lines.push(rest[..cut].to_owned());
            rest = &rest[cut..];
        }
    }
    if lines.len() > max_lines {
        let kept = max_lines.saturating_sub(1).max(1);
        let more = lines.len() - kept;
        lines.truncate(kept);
        lines.push(match link {
            Some(url) => format!("… {more} more lines: {url}"),
            None => format!("… {more} more lines not shown"),
        });
    }
    lines
}
