//! What a receiver is made of: its integrations (outlets), as written in
//! `[[receivers]]` tables of `alerts.toml`, in Alertmanager's shape:
//!
//! ```toml
//! [[receivers]]
//! name = "ops"
//! [[receivers.webhook_configs]]
//! url = "https://hooks.example.com/alerts"
//! hmac_secret = "env:HOOK_SECRET"     # signs the body (optional)
//! send_resolved = true                # the default for webhooks
//! max_alerts = 0                      # 0: all
//! ```
//!
//! Owns reading and checking those settings (unknown keys refused, URLs
//! absolute http(s), secrets only as references). Not here: sending (the
//! engine's outlets) and resolving secrets (at each delivery).

use serde::Deserialize;

use crate::secret::SecretRef;

/// Every integration of a receiver, in file order by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Integrations {
    #[serde(default)]
    pub webhook_configs: Vec<WebhookConfig>,
}

impl Integrations {
    /// Reads and checks a receiver's settings (its table without `name`).
    pub fn parse(settings: &toml::Table) -> Result<Self, String> {
        let parsed: Self = toml::Value::Table(settings.clone())
            .try_into()
            .map_err(|e: toml::de::Error| e.message().to_owned())?;
        for (i, w) in parsed.webhook_configs.iter().enumerate() {
            check_url(&w.url).map_err(|e| format!("webhook_configs[{i}].url: {e}"))?;
        }
        Ok(parsed)
    }

    /// Every integration with its name (`webhook[0]`): the unit whose
    /// notifications are logged and delivered.
    pub fn list(&self) -> Vec<(String, Integration)> {
        self.webhook_configs
            .iter()
            .enumerate()
            .map(|(i, w)| (format!("webhook[{i}]"), Integration::Webhook(w.clone())))
            .collect()
    }
}

/// One outlet of a receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integration {
    Webhook(WebhookConfig),
}

impl Integration {
    /// Whether resolved alerts are listed in its notifications.
    pub fn send_resolved(&self) -> bool {
        match self {
            Self::Webhook(w) => w.send_resolved,
        }
    }
}

/// A webhook receiving Alertmanager's webhook format (version 4).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// A key that signs each body: header `X-Switchboard-Signature:
    /// sha256=<hex HMAC-SHA256 of the body>`.
    #[serde(default)]
    pub hmac_secret: Option<SecretRef>,
    /// The most alerts one notification lists (0: all); the count of those
    /// left out is `truncatedAlerts`, as in Alertmanager.
    #[serde(default)]
    pub max_alerts: usize,
}

fn yes() -> bool {
    true
}

fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') || url.chars().any(char::is_whitespace) {
        return Err(format!("`{url}` names no host"));
    }
    Ok(())
}
