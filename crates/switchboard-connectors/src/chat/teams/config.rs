//! The `[chat.teams]` section: [`TeamsFile`] as it is written, and
//! [`TeamsConfig`], the same compiled (security tokens decoded, URLs
//! resolved from their secret references) for the adapter.
//!
//! Not here: reading the configuration file (the binary does) and using
//! any of it (the adapter does).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use switchboard_core::chat::ChatIdentity;
use switchboard_core::secret::{Secret, SecretRef};

/// Microsoft Teams: outgoing webhooks bring messages in, Workflows (or
/// incoming webhook) URLs take the replies out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsFile {
    /// The security token Teams shows once when an outgoing webhook is
    /// created (base64), one per outgoing webhook (one per team), as
    /// references: `["env:TEAMS_SECURITY_TOKEN"]`.
    pub security_tokens: Vec<SecretRef>,
    /// Where replies go in a channel without its own `webhook_url` in
    /// `rooms`: a Workflows URL ("Post to a channel when a webhook request
    /// is received"), as a reference.
    #[serde(default)]
    pub webhook_url: Option<SecretRef>,
    /// Channels by their id (`19:…@thread.tacv2`, in the channel's link):
    /// the name policies see (`name = "ops"` makes the origin
    /// `chat:teams:#ops`) and the URL its replies go to.
    #[serde(default)]
    pub rooms: BTreeMap<String, TeamsRoomFile>,
    /// A Workflows URL that posts a card privately to the person named in
    /// the request's `recipient.aadObjectId` (as the Flow bot): link codes
    /// go this way. Without it, `link` is refused on Teams.
    #[serde(default)]
    pub direct_url: Option<SecretRef>,
    /// The tenant id used in chat identities (`teams:<tenant>/<user>`) when
    /// an activity does not name its tenant.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// One channel of `[chat.teams.rooms]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsRoomFile {
    /// Its name, without `#`.
    #[serde(default)]
    pub name: Option<String>,
    /// Where its replies go, as a reference.
    #[serde(default)]
    pub webhook_url: Option<SecretRef>,
}

/// A channel, compiled.
#[derive(Debug, Clone)]
pub struct TeamsRoom {
    pub name: Option<String>,
    pub webhook_url: Option<Secret<String>>,
}

/// The `[chat.teams]` section, compiled: what the adapter runs with.
#[derive(Debug, Clone)]
pub struct TeamsConfig {
    /// The decoded HMAC keys.
    pub security_tokens: Vec<Secret<Vec<u8>>>,
    pub webhook_url: Option<Secret<String>>,
    pub rooms: BTreeMap<String, TeamsRoom>,
    pub direct_url: Option<Secret<String>>,
    pub tenant: Option<String>,
    /// Activities whose `timestamp` is further than this from now are
    /// refused as replays.
    pub replay_window: Duration,
}

impl TeamsFile {
    /// Checks the section and resolves its secrets. Every problem is
    /// reported, each naming its key (never a secret's value).
    pub fn compile(self) -> Result<TeamsConfig, String> {
        let mut errors = Vec::new();
        let key = |k: &str| format!("chat.teams.{k}");
        if self.security_tokens.is_empty() {
            errors.push(format!(
                "{}: at least one outgoing webhook's security token is needed",
                key("security_tokens")
            ));
        }
        let security_tokens = self
            .security_tokens
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let name = format!("{}[{i}]", key("security_tokens"));
                let token = r
                    .resolve()
                    .map_err(|e| errors.push(format!("{name}: {e}")))
                    .ok()?;
                STANDARD
                    .decode(token.expose().trim())
                    .map(Secret::new)
                    .map_err(|_| errors.push(format!("{name}: the security token is not base64")))
                    .ok()
            })
            .collect();
        let mut url = |name: String, r: Option<&SecretRef>| {
            let url = r?
                .resolve()
                .map_err(|e| errors.push(format!("{name}: {e}")))
                .ok()?;
            if url.expose().starts_with("https://") || url.expose().starts_with("http://") {
                Some(url)
            } else {
                errors.push(format!("{name}: the URL must start with `https://`"));
                None
            }
        };
        let webhook_url = url(key("webhook_url"), self.webhook_url.as_ref());
        let direct_url = url(key("direct_url"), self.direct_url.as_ref());
        let rooms = self
            .rooms
            .into_iter()
            .map(|(id, room)| {
                let webhook_url = url(
                    format!("{}.\"{id}\".webhook_url", key("rooms")),
                    room.webhook_url.as_ref(),
                );
                let name = room.name.map(|n| n.trim_start_matches('#').to_owned());
                (id, TeamsRoom { name, webhook_url })
            })
            .collect();
        if let Some(tenant) = &self.tenant
            && ChatIdentity::new("teams", tenant.as_str(), "user").is_err()
        {
            errors.push(format!(
                "{}: `{tenant}` cannot name a tenant",
                key("tenant")
            ));
        }
        if errors.is_empty() {
            Ok(TeamsConfig {
                security_tokens,
                webhook_url,
                rooms,
                direct_url,
                tenant: self.tenant,
                replay_window: Duration::from_secs(5 * 60),
            })
        } else {
            Err(errors.join("\n"))
        }
    }
}

impl TeamsConfig {
    /// Where replies to channel `room` go.
    pub(super) fn webhook_for(&self, room: &str) -> Option<&Secret<String>> {
        self.rooms
            .get(room)
            .and_then(|r| r.webhook_url.as_ref())
            .or(self.webhook_url.as_ref())
    }
}
