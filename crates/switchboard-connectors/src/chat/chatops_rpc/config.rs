//! The `[chatops_rpc]` section: [`ChatopsRpcFile`] as it is written, and
//! [`ChatopsRpcConfig`], the same compiled (keys read and parsed, URL
//! checked) for the routes and the engine.
//!
//! Not here: reading the configuration file (the binary does).

use std::time::Duration;

use serde::Deserialize;
use switchboard_core::chat::ChatIdentity;
use switchboard_core::secret::SecretRef;

use super::signature::Verifier;

/// A Hubot with `hubot-chatops-rpc` as a front door.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatopsRpcFile {
    /// Hubot's public key, in PEM (`-----BEGIN PUBLIC KEY-----`), as a
    /// reference: `file:/etc/switchboard/hubot.pub` or `env:NAME`. Requests
    /// signed by another key are refused.
    pub public_key: SecretRef,
    /// A second accepted key, while Hubot's key is being replaced.
    #[serde(default)]
    pub alternate_public_key: Option<SecretRef>,
    /// The URL Hubot reaches Switchboard at, without the path, e.g.
    /// `https://switchboard.example.com`: the signature covers the full URL
    /// Hubot called, which behind a proxy Switchboard cannot know. Defaults
    /// to `[chat] public_url`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The listing's namespace, which Hubot may use as the command prefix.
    /// Default `switchboard`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The chat platform Hubot's users are on, in chat identities
    /// (`<platform>:<workspace>/<user>`) and so in links: `slack` with the
    /// Slack workspace id lets links made through Switchboard's Slack door
    /// serve for Hubot too. Default `hubot`.
    #[serde(default)]
    pub platform: Option<String>,
    /// The workspace in chat identities, e.g. the Slack team id `T01ABC`.
    /// Default `hubot`.
    #[serde(default)]
    pub workspace: Option<String>,
    /// Which field of an invocation names the user: `user` (Hubot's user
    /// name, the default) or `mention_slug` (on Slack, the user id that
    /// Slack links are made with).
    #[serde(default)]
    pub user_field: UserField,
    /// How long an invocation waits for its run to end before answering
    /// that it goes on (`"25s"`; Hubot gives up after 150 s).
    #[serde(default)]
    pub wait: Option<String>,
}

/// The field of an invocation that names the user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserField {
    #[default]
    User,
    MentionSlug,
}

/// The compiled `[chatops_rpc]` section.
#[derive(Debug, Clone)]
pub struct ChatopsRpcConfig {
    pub verifier: Verifier,
    /// Without a trailing `/`.
    pub base_url: String,
    pub namespace: String,
    pub platform: String,
    pub workspace: String,
    pub user_field: UserField,
    pub wait: Duration,
}

const DEFAULT_WAIT: Duration = Duration::from_secs(25);

impl ChatopsRpcFile {
    /// Resolves the keys and checks every key; `public_url` is `[chat]
    /// public_url`, the default base URL. Every error is reported.
    pub fn compile(self, public_url: Option<&str>) -> Result<ChatopsRpcConfig, String> {
        let mut errors = Vec::new();
        let pem = |name: &str, r: &SecretRef, errors: &mut Vec<String>| match r.resolve() {
            Ok(s) => Some(s.expose().clone()),
            Err(e) => {
                errors.push(format!("`chatops_rpc.{name}`: {e}"));
                None
            }
        };
        let primary = pem("public_key", &self.public_key, &mut errors);
        let alternate = self
            .alternate_public_key
            .as_ref()
            .and_then(|r| pem("alternate_public_key", r, &mut errors));
        let verifier = match primary {
            Some(p) => Verifier::from_pem(&p, alternate.as_deref())
                .map_err(|e| errors.push(format!("`chatops_rpc`: {e}")))
                .ok(),
            None => None,
        };
        let base_url = self
            .base_url
            .as_deref()
            .or(public_url)
            .map(|u| u.trim_end_matches('/').to_owned());
        match &base_url {
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => {}
            Some(u) => errors.push(format!(
                "`chatops_rpc.base_url`: `{u}` must start with https:// or http://"
            )),
            None => errors.push(
                "`chatops_rpc.base_url`: set it (or `[chat] public_url`) to the URL Hubot calls, e.g. `https://switchboard.example.com`; signatures cover it"
                    .to_owned(),
            ),
        }
        let namespace = self.namespace.unwrap_or_else(|| "switchboard".to_owned());
        if namespace.is_empty()
            || !namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            errors.push(format!(
                "`chatops_rpc.namespace`: `{namespace}` must be letters, digits, `-` and `_`"
            ));
        }
        let platform = self.platform.unwrap_or_else(|| "hubot".to_owned());
        let workspace = self.workspace.unwrap_or_else(|| "hubot".to_owned());
        if let Err(e) = ChatIdentity::new(platform.as_str(), workspace.as_str(), "user") {
            errors.push(format!("`chatops_rpc.platform`/`workspace`: {e}"));
        }
        let wait = match self.wait.as_deref().map(humantime::parse_duration) {
            None => DEFAULT_WAIT,
            Some(Ok(d)) if d <= Duration::from_secs(120) => d,
            Some(Ok(_)) => {
                errors.push(
                    "`chatops_rpc.wait`: at most 120s (Hubot gives up after 150s)".to_owned(),
                );
                DEFAULT_WAIT
            }
            Some(Err(e)) => {
                errors.push(format!(
                    "`chatops_rpc.wait`: not a duration such as `25s`: {e}"
                ));
                DEFAULT_WAIT
            }
        };
        match (verifier, base_url) {
            (Some(verifier), Some(base_url)) if errors.is_empty() => Ok(ChatopsRpcConfig {
                verifier,
                base_url,
                namespace,
                platform,
                workspace,
                user_field: self.user_field,
                wait,
            }),
            _ => Err(errors.join("\n")),
        }
    }
}
