//! The `[chat.matrix]` section: [`MatrixFile`] as it is written, and
//! [`MatrixConfig`], the same checked with its secrets resolved.
//!
//! Not here: reading the configuration file (the binary does) and using
//! any of it (the adapter does).

use std::time::Duration;

use serde::Deserialize;
use switchboard_core::secret::{Secret, SecretRef};

/// One bot account on one homeserver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixFile {
    /// The homeserver's client-server API base URL, e.g.
    /// `https://matrix.example.org`.
    pub homeserver: String,
    /// The bot account's access token, e.g. `env:MATRIX_TOKEN`.
    pub access_token: SecretRef,
    /// The bot's user id (`@switchboard:example.org`). When unset it is
    /// asked from the homeserver (`/account/whoami`).
    #[serde(default)]
    pub user_id: Option<String>,
    /// Accept invitations only from users of these servers (e.g.
    /// `["example.org"]`); default: from anyone.
    #[serde(default)]
    pub invites_from: Option<Vec<String>>,
}

/// The `[chat.matrix]` section, compiled. Fields are public so that tests
/// can adjust the timings.
#[derive(Debug, Clone)]
pub struct MatrixConfig {
    /// Without a trailing `/`.
    pub homeserver: String,
    pub access_token: Secret<String>,
    pub user_id: Option<String>,
    pub invites_from: Option<Vec<String>>,
    /// How long one `/sync` waits for events on the server.
    pub sync_timeout: Duration,
    /// The first wait before syncing again after a failure; it doubles up
    /// to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl MatrixFile {
    /// Checks the section and resolves its secrets. Every problem is
    /// reported, each naming its key (never a secret's value).
    pub fn compile(self) -> Result<MatrixConfig, String> {
        let mut errors = Vec::new();
        let homeserver = self.homeserver.trim_end_matches('/').to_owned();
        if reqwest::Url::parse(&homeserver)
            .map(|u| !matches!(u.scheme(), "http" | "https"))
            .unwrap_or(true)
        {
            errors.push(format!(
                "chat.matrix.homeserver: `{}` is not an http(s) URL",
                self.homeserver
            ));
        }
        if let Some(id) = &self.user_id
            && super::sync::split_user_id(id).is_none()
        {
            errors.push(format!(
                "chat.matrix.user_id: `{id}` is not a user id like @switchboard:example.org"
            ));
        }
        let access_token = self
            .access_token
            .resolve()
            .map_err(|e| errors.push(format!("chat.matrix.access_token: {e}")))
            .ok();
        match access_token {
            Some(access_token) if errors.is_empty() => Ok(MatrixConfig {
                homeserver,
                access_token,
                user_id: self.user_id,
                invites_from: self.invites_from,
                sync_timeout: Duration::from_secs(30),
                retry_min: Duration::from_secs(1),
                retry_max: Duration::from_secs(60),
            }),
            _ => Err(errors.join("; ")),
        }
    }
}
