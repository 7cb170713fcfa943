//! The `[chat.discord]` section: [`DiscordFile`] as it is written, and
//! [`DiscordConfig`], the same checked (the public key decoded, the API's
//! URL checked) for the adapter.
//!
//! Not here: reading the configuration file (the binary does) and using
//! any of it (the adapter does).

use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use serde::Deserialize;
use switchboard_core::secret::{Secret, SecretRef};

/// Discord's HTTP API, where follow-ups go.
pub const DEFAULT_API_BASE: &str = "https://discord.com/api/v10";

/// Discord: an application whose interactions endpoint is
/// `https://<switchboard>/chat/discord/interactions`. Discord signs,
/// Switchboard only checks, and replies use the token each interaction
/// carries; the only secret is the optional bot token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordFile {
    /// The application's id (Developer Portal → General Information →
    /// Application ID), e.g. `"1234567890123456789"`. Follow-ups are sent to
    /// `/webhooks/<application_id>/<interaction token>`.
    pub application_id: String,
    /// The application's public key, 64 hex digits (General Information →
    /// Public Key). Every interaction's Ed25519 signature is checked with it.
    pub public_key: String,
    /// The slash command whose `text` option is the command, as registered
    /// (default `switchboard`: `/switchboard text:uptime`). Other slash
    /// commands of the application read as their name and options:
    /// `/uptime host:web-1` is `uptime host=web-1`.
    #[serde(default)]
    pub command: Option<String>,
    /// Discord's API base URL. Default `https://discord.com/api/v10`;
    /// change it only for a proxy or a test server.
    #[serde(default)]
    pub api_base: Option<String>,
    /// The application's bot token (Bot → Token), e.g.
    /// `env:DISCORD_BOT_TOKEN`. Optional: with it, what comes after an
    /// interaction's 15 minutes (the result of a long run), alerts and
    /// private messages are posted by the bot in the channel or a direct
    /// message; without it, only in answer to a live interaction.
    #[serde(default)]
    pub bot_token: Option<SecretRef>,
}

/// The `[chat.discord]` section, checked: what the adapter runs with.
/// Fields are public so that the binary and tests can adjust the timings.
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    pub application_id: String,
    pub public_key: VerifyingKey,
    /// The slash command that carries a command in its `text` option.
    pub command: String,
    /// Without a trailing `/`.
    pub api_base: String,
    /// Interactions whose `X-Signature-Timestamp` is further than this from
    /// now are refused as replays.
    pub replay_window: Duration,
    /// How long Discord honours an interaction's token.
    pub token_lifetime: Duration,
    pub bot_token: Option<Secret<String>>,
}

impl DiscordFile {
    /// Checks the section. Every problem is reported, each naming its key.
    pub fn compile(self) -> Result<DiscordConfig, String> {
        let mut errors = Vec::new();
        let key = |k: &str| format!("chat.discord.{k}");
        if self.application_id.is_empty()
            || !self.application_id.bytes().all(|b| b.is_ascii_digit())
        {
            errors.push(format!(
                "{}: `{}` is not an application id (digits, e.g. `1234567890123456789`)",
                key("application_id"),
                self.application_id
            ));
        }
        let public_key = parse_public_key(&self.public_key)
            .map_err(|e| errors.push(format!("{}: {e}", key("public_key"))))
            .ok();
        let command = self.command.unwrap_or_else(|| "switchboard".to_owned());
        if command.is_empty() || command.len() > 32 || command.chars().any(char::is_whitespace) {
            errors.push(format!(
                "{}: `{command}` is not a slash command name",
                key("command")
            ));
        }
        let api_base = self
            .api_base
            .unwrap_or_else(|| DEFAULT_API_BASE.to_owned())
            .trim_end_matches('/')
            .to_owned();
        if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
            errors.push(format!(
                "{}: `{api_base}` must start with `https://` or `http://`",
                key("api_base")
            ));
        }
        let bot_token = self.bot_token.as_ref().and_then(|r| {
            r.resolve()
                .map_err(|e| errors.push(format!("{}: {e}", key("bot_token"))))
                .ok()
        });
        match public_key {
            Some(public_key) if errors.is_empty() => Ok(DiscordConfig {
                command,
                api_base,
                bot_token,
                ..DiscordConfig::new(self.application_id, public_key)
            }),
            _ => Err(errors.join("\n")),
        }
    }
}

/// A public key as the Developer Portal shows it: 64 hex digits.
pub(super) fn parse_public_key(hex_key: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "expected the application's public key, 64 hex digits".to_owned())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not an Ed25519 public key".to_owned())
}

impl DiscordConfig {
    /// A configuration with the default command, API and timings.
    pub fn new(application_id: impl Into<String>, public_key: VerifyingKey) -> Self {
        Self {
            application_id: application_id.into(),
            public_key,
            command: "switchboard".to_owned(),
            api_base: DEFAULT_API_BASE.to_owned(),
            replay_window: Duration::from_secs(5 * 60),
            token_lifetime: Duration::from_secs(15 * 60),
            bot_token: None,
        }
    }
}
