//! The `[chat.slack]` section: [`SlackFile`] as it is written, compiled into
//! the resolved [`SlackConfig`] the adapter runs with. Compiling resolves
//! the secret references and checks every key, reporting all problems at
//! once; errors name the key and the reference, never a secret's value.
//!
//! Not here: reading the configuration file (the binary does that) and
//! anything that talks to Slack.

use std::time::Duration;

use serde::Deserialize;
use switchboard_core::secret::{Secret, SecretRef};

/// Slack's Web API, where replies go.
pub const DEFAULT_API_BASE: &str = "https://slack.com/api";

/// Connecting Switchboard to one Slack workspace (`[chat.slack]`).
///
/// Slack reaches Switchboard in one of two ways: over HTTP (the Events API,
/// slash commands and interactivity pointed at
/// `https://<switchboard>/chat/slack/events`, `/chat/slack/commands` and
/// `/chat/slack/interactive`), which needs `signing_secret`; or over Socket
/// Mode (a websocket Switchboard opens, no public URL needed), which needs
/// `app_token`. Replies always go through the Web API with `bot_token`.
///
/// In the app's settings, subscribe to the bot events `app_mention` and
/// `message.im` (and `message.channels` / `message.groups` to hear
/// prefixed commands such as `!uptime` without a mention), turn
/// Interactivity on (approval buttons), and add a slash command if wanted.
///
/// Room names: policies name rooms (`Channel::"slack:#ops"`, origin
/// `chat:slack:#ops`), but Slack's events name only the channel id, so
/// Switchboard asks Slack for the name (`conversations.info`, remembered
/// for ten minutes). That needs the bot scope `channels:read` (and
/// `groups:read` for private channels); without it every event's room is
/// its channel id (`chat:slack:C0123`) and policies that name rooms never
/// match it — a warning says so.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackFile {
    /// The app's signing secret (Basic Information → App Credentials), as a
    /// reference: `env:SLACK_SIGNING_SECRET` or `file:/run/secrets/slack`.
    /// Every HTTP request from Slack is checked against it; without it the
    /// HTTP endpoints refuse everything.
    #[serde(default)]
    pub signing_secret: Option<SecretRef>,
    /// The bot token (`xoxb-…`, OAuth & Permissions), as a reference. Used
    /// for every reply. Scopes: `chat:write`, `files:write` and `im:write`
    /// to answer; `app_mentions:read` and `im:history` to hear (with
    /// `channels:history` / `groups:history` for messages without a
    /// mention); `channels:read` (and `groups:read` for private channels)
    /// to learn room names, without which policies see channel ids instead;
    /// `commands` for a slash command.
    pub bot_token: SecretRef,
    /// An app-level token (`xapp-…`, with the `connections:write` scope), as
    /// a reference. Setting it turns Socket Mode on: Switchboard opens the
    /// connection to Slack itself, so it needs no public URL.
    #[serde(default)]
    pub app_token: Option<SecretRef>,
    /// The Web API's base URL. Default `https://slack.com/api`; change it
    /// only for a proxy or a test server.
    #[serde(default)]
    pub api_base: Option<String>,
    /// The workspace id (`T01ABC…`) used in chat identities
    /// (`slack:T01ABC/U123`) when a payload does not name it. Learned from
    /// `auth.test` at start when not set.
    #[serde(default)]
    pub team_id: Option<String>,
    /// The bot's own user id (`U0BOT…`), to recognise its mention and its own
    /// messages. Learned from `auth.test` at start when not set.
    #[serde(default)]
    pub bot_user_id: Option<String>,
    /// The longest wait Switchboard accepts when Slack rate-limits a reply
    /// (`Retry-After`), e.g. `"30s"`. A longer demand fails the delivery
    /// instead of holding it. Default `"30s"`.
    #[serde(default)]
    pub max_retry_after: Option<String>,
}

/// The compiled `[chat.slack]` section.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    pub signing_secret: Option<Secret<String>>,
    pub bot_token: Secret<String>,
    pub app_token: Option<Secret<String>>,
    /// Without a final `/`.
    pub api_base: String,
    pub team_id: Option<String>,
    pub bot_user_id: Option<String>,
    pub max_retry_after: Duration,
    /// How often a rate-limited call is tried again before it fails.
    pub max_retries: u32,
    /// The first wait before reconnecting a dropped Socket Mode connection;
    /// it doubles on each failure…
    pub reconnect_first: Duration,
    /// …up to this. Neither is in the file; tests shorten them.
    pub reconnect_max: Duration,
    /// Socket Mode sends a ping this often; a connection that stays silent
    /// from one ping to the next is dropped and opened again.
    pub keepalive: Duration,
    /// How long a channel's name, once asked of Slack, is used before it is
    /// asked again (a renamed channel keeps its old name until then). Not
    /// in the file either.
    pub room_name_ttl: Duration,
}

impl SlackConfig {
    /// A configuration with the defaults and these tokens (tests, and
    /// callers that resolve secrets themselves).
    pub fn new(bot_token: Secret<String>) -> Self {
        Self {
            signing_secret: None,
            bot_token,
            app_token: None,
            api_base: DEFAULT_API_BASE.to_owned(),
            team_id: None,
            bot_user_id: None,
            max_retry_after: Duration::from_secs(30),
            max_retries: 3,
            reconnect_first: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            keepalive: Duration::from_secs(30),
            room_name_ttl: Duration::from_secs(600),
        }
    }
}

impl SlackFile {
    /// Resolves the secrets and checks every key; the error lists every
    /// problem found, one per line.
    pub fn compile(self) -> Result<SlackConfig, String> {
        let mut errors = Vec::new();
        let mut secret = |key: &str, r: &SecretRef| match r.resolve() {
            Ok(s) => Some(s),
            Err(e) => {
                errors.push(format!("`chat.slack.{key}`: {e}"));
                None
            }
        };
        let signing_secret = self
            .signing_secret
            .as_ref()
            .and_then(|r| secret("signing_secret", r));
        let bot_token = secret("bot_token", &self.bot_token);
        let app_token = self.app_token.as_ref().and_then(|r| secret("app_token", r));

        if bot_token
            .as_ref()
            .is_some_and(|t| t.expose().starts_with("xapp-"))
        {
            errors.push(format!(
                "`chat.slack.bot_token`: `{}` holds an app-level token (`xapp-…`); it belongs in `app_token`, and `bot_token` takes the bot token (`xoxb-…`)",
                self.bot_token
            ));
        }
        if let (Some(r), Some(t)) = (&self.app_token, &app_token)
            && !t.expose().starts_with("xapp-")
        {
            errors.push(format!(
                "`chat.slack.app_token`: `{r}` does not hold an app-level token (`xapp-…`)"
            ));
        }
        if self.signing_secret.is_none() && self.app_token.is_none() {
            errors.push(
                "`chat.slack`: set `signing_secret` (to receive over HTTP) or `app_token` (Socket Mode), or both; with neither Slack cannot reach Switchboard"
                    .to_owned(),
            );
        }
        let api_base = self
            .api_base
            .as_deref()
            .unwrap_or(DEFAULT_API_BASE)
            .trim_end_matches('/')
            .to_owned();
        match reqwest::Url::parse(&api_base) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => errors.push(format!(
                "`chat.slack.api_base`: `{api_base}` is not an http(s) URL"
            )),
        }
        let mut max_retry_after = Duration::from_secs(30);
        if let Some(text) = &self.max_retry_after {
            match humantime::parse_duration(text) {
                Ok(d) => max_retry_after = d,
                Err(e) => errors.push(format!(
                    "`chat.slack.max_retry_after`: `{text}` is not a duration such as `30s`: {e}"
                )),
            }
        }
        for (key, value) in [
            ("team_id", &self.team_id),
            ("bot_user_id", &self.bot_user_id),
        ] {
            if let Some(v) = value
                && (v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric()))
            {
                errors.push(format!(
                    "`chat.slack.{key}`: `{v}` is not a Slack id (letters and digits, like `T01ABC` or `U0BOT`)"
                ));
            }
        }

        match bot_token {
            Some(bot_token) if errors.is_empty() => Ok(SlackConfig {
                signing_secret,
                app_token,
                api_base,
                team_id: self.team_id,
                bot_user_id: self.bot_user_id,
                max_retry_after,
                ..SlackConfig::new(bot_token)
            }),
            _ => Err(errors.join("\n")),
        }
    }
}
