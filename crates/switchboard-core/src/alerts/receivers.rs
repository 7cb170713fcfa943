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
//!
//! [[receivers.email_configs]]
//! to = ["oncall@example.com"]
//! from = "switchboard@example.com"
//! smarthost = "smtp.example.com:587"
//! auth_username = "switchboard"       # optional, with auth_password
//! auth_password = "env:SMTP_PASSWORD"
//! require_tls = true                  # STARTTLS (or TLS on port 465)
//! send_resolved = false               # the default for email
//!
//! [[receivers.pagerduty_configs]]
//! routing_key = "env:PD_ROUTING_KEY"  # Events API v2 integration key
//! severity = "critical"               # default: the alerts' `severity` label, else `error`
//!
//! [[receivers.chat_configs]]
//! platform = "slack"                  # a configured `[chat.<platform>]`
//! room = "C0123ABCD"                  # the platform's channel id
//! send_resolved = true                # the default for chat
//!
//! [[receivers.opsgenie_configs]]
//! api_key = "env:OPSGENIE_KEY"
//! priority = "P1"                     # optional
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
    #[serde(default)]
    pub email_configs: Vec<EmailConfig>,
    #[serde(default)]
    pub pagerduty_configs: Vec<PagerDutyConfig>,
    #[serde(default)]
    pub opsgenie_configs: Vec<OpsgenieConfig>,
    #[serde(default)]
    pub chat_configs: Vec<ChatConfig>,
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
        for (i, e) in parsed.email_configs.iter().enumerate() {
            e.check().map_err(|m| format!("email_configs[{i}].{m}"))?;
        }
        for (i, p) in parsed.pagerduty_configs.iter().enumerate() {
            check_url(&p.url).map_err(|e| format!("pagerduty_configs[{i}].url: {e}"))?;
            if let Some(s) = &p.severity
                && !PAGERDUTY_SEVERITIES.contains(&s.as_str())
            {
                return Err(format!(
                    "pagerduty_configs[{i}].severity: `{s}` is not one of {}",
                    PAGERDUTY_SEVERITIES.join(", ")
                ));
            }
        }
        for (i, o) in parsed.opsgenie_configs.iter().enumerate() {
            check_url(&o.api_url).map_err(|e| format!("opsgenie_configs[{i}].api_url: {e}"))?;
            if let Some(p) = &o.priority
                && !["P1", "P2", "P3", "P4", "P5"].contains(&p.as_str())
            {
                return Err(format!(
                    "opsgenie_configs[{i}].priority: `{p}` is not P1 to P5"
                ));
            }
        }
        for (i, c) in parsed.chat_configs.iter().enumerate() {
            c.check().map_err(|m| format!("chat_configs[{i}].{m}"))?;
        }
        Ok(parsed)
    }

    /// Every integration with its name (`webhook[0]`): the unit whose
    /// notifications are logged and delivered.
    pub fn list(&self) -> Vec<(String, Integration)> {
        let webhooks = self
            .webhook_configs
            .iter()
            .enumerate()
            .map(|(i, w)| (format!("webhook[{i}]"), Integration::Webhook(w.clone())));
        let emails = self
            .email_configs
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("email[{i}]"), Integration::Email(e.clone())));
        let pagerduty = self
            .pagerduty_configs
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("pagerduty[{i}]"), Integration::PagerDuty(p.clone())));
        let opsgenie = self
            .opsgenie_configs
            .iter()
            .enumerate()
            .map(|(i, o)| (format!("opsgenie[{i}]"), Integration::Opsgenie(o.clone())));
        let chats = self
            .chat_configs
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("chat[{i}]"), Integration::Chat(c.clone())));
        webhooks
            .chain(emails)
            .chain(pagerduty)
            .chain(opsgenie)
            .chain(chats)
            .collect()
    }
}

/// One outlet of a receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integration {
    Webhook(WebhookConfig),
    Email(EmailConfig),
    PagerDuty(PagerDutyConfig),
    Opsgenie(OpsgenieConfig),
    Chat(ChatConfig),
}

impl Integration {
    /// Whether resolved alerts are listed in its notifications.
    pub fn send_resolved(&self) -> bool {
        match self {
            Self::Webhook(w) => w.send_resolved,
            Self::Email(e) => e.send_resolved,
            Self::PagerDuty(p) => p.send_resolved,
            Self::Opsgenie(o) => o.send_resolved,
            Self::Chat(c) => c.send_resolved,
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

/// A chat room: one message per group, edited in place as the group
/// changes, later notices in its thread.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatConfig {
    /// `slack`, `mattermost`: a platform configured under `[chat]`.
    pub platform: String,
    /// The platform's id of the room (a Slack channel id such as
    /// `C0123ABCD`, a Mattermost channel id).
    pub room: String,
    #[serde(default = "yes")]
    pub send_resolved: bool,
}

impl ChatConfig {
    fn check(&self) -> Result<(), String> {
        let token =
            |s: &str| !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_graphic());
        if !token(&self.platform) {
            return Err(format!(
                "platform: `{}` is not a platform name such as `slack`",
                self.platform
            ));
        }
        if !token(&self.room) {
            return Err(format!(
                "room: `{}` is not a room id (visible ASCII, no spaces)",
                self.room
            ));
        }
        Ok(())
    }
}

/// Email over SMTP.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub to: Vec<String>,
    pub from: String,
    /// `host:port` of the SMTP server.
    pub smarthost: String,
    #[serde(default)]
    pub auth_username: Option<String>,
    #[serde(default)]
    pub auth_password: Option<SecretRef>,
    /// TLS, by STARTTLS (or implicit TLS on port 465); `false` only for a
    /// relay on the same host or network.
    #[serde(default = "yes")]
    pub require_tls: bool,
    #[serde(default)]
    pub send_resolved: bool,
}

impl EmailConfig {
    /// The SMTP server's host and port.
    pub fn host_port(&self) -> Option<(&str, u16)> {
        let (host, port) = self.smarthost.rsplit_once(':')?;
        let port = port.parse().ok()?;
        (!host.is_empty()).then_some((host, port))
    }

    fn check(&self) -> Result<(), String> {
        if self.to.is_empty() {
            return Err("to: name at least one address".to_owned());
        }
        for (key, address) in self
            .to
            .iter()
            .map(|a| ("to", a))
            .chain(std::iter::once(("from", &self.from)))
        {
            let (local, domain) = address.rsplit_once('@').unwrap_or_default();
            if local.is_empty() || domain.is_empty() || address.chars().any(char::is_whitespace) {
                return Err(format!("{key}: `{address}` is not an email address"));
            }
        }
        if self.host_port().is_none() {
            return Err(format!(
                "smarthost: `{}` is not `host:port`",
                self.smarthost
            ));
        }
        if self.auth_username.is_some() != self.auth_password.is_some() {
            return Err("auth_username and auth_password go together".to_owned());
        }
        Ok(())
    }
}

/// PagerDuty's event severities.
pub const PAGERDUTY_SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

/// PagerDuty, through its Events API v2.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// The integration's routing key.
    pub routing_key: SecretRef,
    #[serde(default = "pagerduty_url")]
    pub url: String,
    /// The events' severity; by default the alerts' common `severity`
    /// label when it is one of PagerDuty's, else `error`.
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default = "yes")]
    pub send_resolved: bool,
}

fn pagerduty_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".to_owned()
}

/// Opsgenie, through its Alert API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieConfig {
    pub api_key: SecretRef,
    #[serde(default = "opsgenie_url")]
    pub api_url: String,
    /// `P1` … `P5`; Opsgenie's default when absent.
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default = "yes")]
    pub send_resolved: bool,
}

fn opsgenie_url() -> String {
    "https://api.opsgenie.com/".to_owned()
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
