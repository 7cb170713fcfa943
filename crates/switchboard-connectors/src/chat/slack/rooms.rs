//! Room names for messages that carry only a channel id. Events (mentions,
//! direct and channel messages, over HTTP and Socket Mode) name their
//! channel by id (`C0123`), but policies name rooms (`#ops`): the name is
//! asked of Slack (`conversations.info`) and kept per channel id for
//! `room_name_ttl`, so a channel costs one call per period, not one per
//! message. A channel renamed meanwhile keeps its old name until then.
//!
//! Nothing here fails a message: a lookup Slack refuses (`missing_scope`
//! without `channels:read` / `groups:read`, `channel_not_found`) or that
//! does not arrive leaves the name unknown, and policies see the channel
//! id. Refusals are remembered for a minute, so a missing scope costs one
//! call (and one warning) per channel a minute; unanswered lookups are not
//! remembered and are tried again with the next message.
//!
//! Not here: the call itself (`web_api.rs`) or what rooms mean.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use switchboard_core::chat::{Inbound, OutletError};

use super::inbound::room_name;
use super::web_api::WebApi;

/// How long a refused lookup is remembered.
const REFUSAL_TTL: Duration = Duration::from_secs(60);

/// The most channels remembered; past it, everything is forgotten at once.
pub(super) const MAX_REMEMBERED: usize = 10_000;

/// What is known of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Known {
    /// `#ops`.
    Named(String),
    /// A direct conversation with one person: it has no name.
    Direct,
    /// Nothing usable: Slack refused, or the name is not one.
    Unnamed,
}

/// Channel names, learned and remembered.
pub(super) struct Rooms {
    api: Arc<WebApi>,
    ttl: Duration,
    /// Channel id → what is known and until when.
    known: Mutex<HashMap<String, (Known, Instant)>>,
}

impl Rooms {
    pub(super) fn new(api: Arc<WebApi>, ttl: Duration) -> Self {
        Self {
            api,
            ttl,
            known: Mutex::default(),
        }
    }

    /// The message with its room's name filled in, or marked direct, when it
    /// came without one and Slack tells.
    pub(super) async fn complete(&self, mut inbound: Inbound) -> Inbound {
        if inbound.room.name.is_some() || inbound.room.direct {
            return inbound;
        }
        match self.lookup(&inbound.room.id).await {
            Known::Named(name) => inbound.room.name = Some(name),
            Known::Direct => inbound.room.direct = true,
            Known::Unnamed => {}
        }
        inbound
    }

    /// How many channels are remembered (tests).
    #[cfg(test)]
    pub(super) fn remembered(&self) -> usize {
        self.known().len()
    }

    /// Remembers `count` made-up unnamed channels (tests).
    #[cfg(test)]
    pub(super) fn fill(&self, count: usize) {
        let until = Instant::now() + self.ttl;
        for i in 0..count {
            self.remember(&format!("CFILL{i}"), Known::Unnamed, until);
        }
    }

    async fn lookup(&self, channel: &str) -> Known {
        let now = Instant::now();
        let remembered = {
            let known = self.known();
            known
                .get(channel)
                .filter(|(_, until)| *until > now)
                .map(|(known, _)| known.clone())
        };
        if let Some(known) = remembered {
            return known;
        }
        let (known, ttl) = match self.api.conversations_info(channel).await {
            Ok(c) if c.is_im => (Known::Direct, self.ttl),
            Ok(c) => match c.name.as_deref().and_then(room_name) {
                Some(name) => (Known::Named(name), self.ttl),
                None => {
                    tracing::debug!(
                        channel,
                        name = ?c.name,
                        "Slack channel without a usable name: policies see its id"
                    );
                    (Known::Unnamed, self.ttl)
                }
            },
            Err(OutletError::Refused(error)) => {
                tracing::warn!(
                    channel,
                    %error,
                    "Slack would not name a channel (the bot needs the `channels:read` scope, and `groups:read` for private channels): policies see its id"
                );
                (Known::Unnamed, REFUSAL_TTL)
            }
            Err(e) => {
                tracing::warn!(
                    channel,
                    error = %e,
                    "Slack channel name unavailable: policies see its id"
                );
                return Known::Unnamed;
            }
        };
        self.remember(channel, known.clone(), now + ttl);
        known
    }

    fn remember(&self, channel: &str, known: Known, until: Instant) {
        let mut remembered = self.known();
        if remembered.len() >= MAX_REMEMBERED && !remembered.contains_key(channel) {
            remembered.clear();
        }
        remembered.insert(channel.to_owned(), (known, until));
    }

    /// A panic elsewhere while holding the lock leaves a usable map.
    fn known(&self) -> MutexGuard<'_, HashMap<String, (Known, Instant)>> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
