//! The `[chat.mattermost]` section: [`MattermostFile`] as it is written,
//! and [`MattermostConfig`], the same compiled (URLs checked, secrets
//! resolved) for the adapter.
//!
//! Not here: reading the configuration file (the binary does) and using
//! any of it (the adapter does).

use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use switchboard_core::chat::ChatIdentity;
use switchboard_core::secret::{Secret, SecretRef};

/// Mattermost: slash commands, outgoing webhooks and a websocket bring
/// messages in; replies go out through the REST API v4 as a bot account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MattermostFile {
    /// The Mattermost server's base URL, e.g. `https://chat.example.com`
    /// (with its path when Mattermost is served under one). Replies are sent
    /// to `<url>/api/v4`, and the websocket connects to
    /// `<url>/api/v4/websocket`.
    pub url: String,
    /// The personal access token of the bot account Switchboard posts as,
    /// e.g. `env:MATTERMOST_BOT_TOKEN` or `file:/run/secrets/mattermost`.
    pub bot_token: SecretRef,
    /// The tokens of the slash commands that call
    /// `/chat/mattermost/commands` (Mattermost shows one when a slash
    /// command is created; set its request method to POST). Several are
    /// allowed, e.g. one per team. A slash command whose token is not
    /// listed is refused.
    #[serde(default)]
    pub command_tokens: Vec<SecretRef>,
    /// The tokens of the outgoing webhooks that call
    /// `/chat/mattermost/webhook` (either content type will do; the trigger
    /// word, e.g. `!sb`, is removed from the message). An outgoing webhook
    /// whose token is not listed is refused.
    #[serde(default)]
    pub webhook_tokens: Vec<SecretRef>,
    /// The bot account's user id. When unset it is asked from the server
    /// (`GET /api/v4/users/me`) at the first need.
    #[serde(default)]
    pub bot_user_id: Option<String>,
    /// The name of this Mattermost in chat identities
    /// (`mattermost:<team>/<user id>`), which links and policies refer to.
    /// Defaults to the host of `url` (`chat.example.com`).
    #[serde(default)]
    pub team: Option<String>,
    /// Listen to every message the bot can see over Mattermost's websocket
    /// (mentions of the bot and direct messages), in addition to slash
    /// commands and outgoing webhooks. Default: true.
    #[serde(default = "default_websocket")]
    pub websocket: bool,
    /// The key that signs the approval buttons Switchboard posts.
    /// Mattermost does not sign button presses, so each button carries a
    /// signature of what it does, checked when it is pressed. Defaults to
    /// the bot token (changing the key or the token invalidates buttons
    /// already posted).
    #[serde(default)]
    pub action_secret: Option<SecretRef>,
    /// Switchboard's public base URL as Mattermost reaches it, e.g.
    /// `https://switchboard.example.com`: approval buttons call
    /// `<callback_url>/chat/mattermost/actions`. Without it, approval
    /// requests are posted without buttons (people answer by typing
    /// `approve ID` or `reject ID`).
    #[serde(default)]
    pub callback_url: Option<String>,
}

fn default_websocket() -> bool {
    true
}

/// The `[chat.mattermost]` section, compiled: what the adapter runs with.
/// Fields are public so that the binary and tests can adjust the timings.
#[derive(Debug, Clone)]
pub struct MattermostConfig {
    /// The server's base URL, without a trailing `/`.
    pub url: String,
    pub bot_token: Secret<String>,
    pub command_tokens: Vec<Secret<String>>,
    pub webhook_tokens: Vec<Secret<String>>,
    pub bot_user_id: Option<String>,
    /// The workspace of chat identities.
    pub team: String,
    pub websocket: bool,
    /// The key of button signatures (the action secret, or the bot token).
    pub action_secret: Secret<String>,
    /// Where buttons call back: `<callback_url>/chat/mattermost/actions`.
    pub actions_url: Option<String>,
    /// Outgoing webhooks whose `timestamp` is further than this from now
    /// are refused as replays.
    pub replay_window: Duration,
    /// The first wait before reconnecting the websocket; it doubles up to
    /// `reconnect_max` while connecting fails.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// A websocket that says nothing (not even a ping) for this long is
    /// taken for dead and reconnected. Mattermost pings about every minute.
    pub websocket_idle: Duration,
    /// The longest wait honoured when Mattermost answers 429; longer waits
    /// are cut to this.
    pub max_rate_limit_wait: Duration,
}

impl MattermostFile {
    /// Checks the section and resolves its secrets. Every problem is
    /// reported, each naming its key (never a secret's value).
    pub fn compile(self) -> Result<MattermostConfig, String> {
        let mut errors = Vec::new();
        let key = |k: &str| format!("chat.mattermost.{k}");

        let url = check_base_url(&self.url)
            .map_err(|e| errors.push(format!("{}: {e}", key("url"))))
            .ok();

        let resolve = |name: String, r: &SecretRef, errors: &mut Vec<String>| {
            r.resolve()
                .map_err(|e| errors.push(format!("{name}: {e}")))
                .ok()
        };
        let bot_token = resolve(key("bot_token"), &self.bot_token, &mut errors);
        let list = |name: &str, refs: &[SecretRef], errors: &mut Vec<String>| {
            refs.iter()
                .enumerate()
                .filter_map(|(i, r)| resolve(format!("{}[{i}]", key(name)), r, errors))
                .collect::<Vec<_>>()
        };
        let command_tokens = list("command_tokens", &self.command_tokens, &mut errors);
        let webhook_tokens = list("webhook_tokens", &self.webhook_tokens, &mut errors);
        let action_secret = match &self.action_secret {
            Some(r) => resolve(key("action_secret"), r, &mut errors),
            None => bot_token.clone(),
        };

        let team = match (&self.team, &url) {
            (Some(team), _) => Some(team.clone()),
            (None, Some(url)) => url.host_str().map(str::to_owned),
            (None, None) => None,
        };
        if let Some(team) = &team
            && ChatIdentity::new("mattermost", team.as_str(), "user").is_err()
        {
            errors.push(format!(
                "{}: `{team}` cannot name a workspace in chat identities (visible ASCII without `/` or `:`)",
                key("team")
            ));
        }
        if let Some(id) = &self.bot_user_id
            && ChatIdentity::new("mattermost", "team", id.as_str()).is_err()
        {
            errors.push(format!("{}: `{id}` is not a user id", key("bot_user_id")));
        }

        let actions_url = match &self.callback_url {
            None => None,
            Some(text) => match check_base_url(text) {
                Ok(u) => Some(format!(
                    "{}/chat/mattermost/actions",
                    u.as_str().trim_end_matches('/')
                )),
                Err(e) => {
                    errors.push(format!("{}: {e}", key("callback_url")));
                    None
                }
            },
        };

        if self.command_tokens.is_empty() && self.webhook_tokens.is_empty() && !self.websocket {
            errors.push(
                "chat.mattermost: no way to receive messages: set `command_tokens`, `webhook_tokens` or `websocket = true`"
                    .to_owned(),
            );
        }

        match (url, bot_token, action_secret, team) {
            (Some(url), Some(bot_token), Some(action_secret), Some(team)) if errors.is_empty() => {
                Ok(MattermostConfig {
                    url: url.as_str().trim_end_matches('/').to_owned(),
                    bot_token,
                    command_tokens,
                    webhook_tokens,
                    bot_user_id: self.bot_user_id,
                    team,
                    websocket: self.websocket,
                    action_secret,
                    actions_url,
                    ..MattermostConfig::timings()
                })
            }
            _ => Err(errors.join("\n")),
        }
    }
}

impl MattermostConfig {
    /// A configuration for `url` with only a bot token, and the default
    /// timings: the start of tests and of hand-made configurations.
    pub fn new(url: impl Into<String>, bot_token: Secret<String>, team: impl Into<String>) -> Self {
        Self {
            url: url.into().trim_end_matches('/').to_owned(),
            action_secret: bot_token.clone(),
            bot_token,
            team: team.into(),
            ..Self::timings()
        }
    }

    fn timings() -> Self {
        Self {
            url: String::new(),
            bot_token: Secret::new(String::new()),
            command_tokens: Vec::new(),
            webhook_tokens: Vec::new(),
            bot_user_id: None,
            team: String::new(),
            websocket: true,
            action_secret: Secret::new(String::new()),
            actions_url: None,
            replay_window: Duration::from_secs(5 * 60),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            websocket_idle: Duration::from_secs(150),
            max_rate_limit_wait: Duration::from_secs(30),
        }
    }
}

/// An `http(s)` URL with a host, no query and no fragment.
fn check_base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{text}` must start with `http://` or `https://`"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` has no host"));
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(format!(
            "`{text}` must be a base URL, without user, query or fragment"
        ));
    }
    Ok(url)
}
