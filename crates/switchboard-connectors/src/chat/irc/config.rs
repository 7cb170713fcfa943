//! The `[chat.irc]` section: [`IrcFile`] as it is written, and
//! [`IrcConfig`], the same checked with its secrets resolved.
//!
//! Not here: reading the configuration file (the binary does) and using
//! any of it (the adapter does).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use switchboard_core::secret::{Secret, SecretRef};

/// One IRC network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IrcFile {
    /// The server's host name, e.g. `irc.libera.chat`.
    pub server: String,
    /// Default: 6697 with TLS, 6667 without.
    #[serde(default)]
    pub port: Option<u16>,
    /// Connect with TLS (default: true).
    #[serde(default = "yes")]
    pub tls: bool,
    /// A PEM file of certificates to trust besides the system's, for a
    /// server with a private certificate authority.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The bot's nick; when it is taken, `alt_nicks` are tried in turn
    /// (default: the nick with `_`, then `__`).
    pub nick: String,
    #[serde(default)]
    pub alt_nicks: Option<Vec<String>>,
    /// Default: the nick.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub realname: Option<String>,
    /// The server password (`PASS`), if the server wants one.
    #[serde(default)]
    pub server_password: Option<SecretRef>,
    /// Authenticate the bot's own account with SASL.
    #[serde(default)]
    pub sasl: Option<SaslFile>,
    /// The channels to join (and rejoin after a kick), e.g. `["#ops"]`.
    #[serde(default)]
    pub channels: Vec<String>,
    /// The network's name in chat identities (`irc:<network>/<account>`),
    /// which links and policies refer to. Default: the server's host.
    #[serde(default)]
    pub network: Option<String>,
    /// Flood control: at most this many lines in `burst_seconds` seconds
    /// (default 5 in 2), then the rest waits.
    #[serde(default)]
    pub lines_per_burst: Option<u32>,
    #[serde(default)]
    pub burst_seconds: Option<u32>,
    /// A reply longer than this many lines is folded: its first lines, and
    /// a link to the execution's web page for the rest (default 6).
    #[serde(default)]
    pub max_lines: Option<usize>,
}

/// `[chat.irc.sasl]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, tag = "mechanism", rename_all = "lowercase")]
pub enum SaslFile {
    /// `mechanism = "plain"`: an account name and its password.
    Plain {
        username: String,
        password: SecretRef,
    },
    /// `mechanism = "external"`: the TLS client certificate the account
    /// knows (PEM files).
    External {
        cert_file: PathBuf,
        key_file: PathBuf,
    },
}

fn yes() -> bool {
    true
}

/// How the bot proves its own account.
#[derive(Debug, Clone)]
pub enum Sasl {
    Plain {
        username: String,
        password: Secret<String>,
    },
    External {
        cert_file: PathBuf,
        /// The key, read from its file (PEM).
        key: Secret<String>,
    },
}

/// The `[chat.irc]` section, compiled. Fields are public so that tests can
/// adjust the timings.
#[derive(Debug, Clone)]
pub struct IrcConfig {
    pub server: String,
    pub port: u16,
    pub tls: bool,
    pub ca_file: Option<PathBuf>,
    pub nick: String,
    pub alt_nicks: Vec<String>,
    pub username: String,
    pub realname: String,
    pub server_password: Option<Secret<String>>,
    pub sasl: Option<Sasl>,
    pub channels: Vec<String>,
    pub network: String,
    pub lines_per_burst: u32,
    pub burst_seconds: u32,
    pub max_lines: usize,
    /// The first wait before reconnecting; it doubles up to
    /// `reconnect_max` while connecting fails.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

impl IrcFile {
    /// Checks the section and resolves its secrets. Every problem is
    /// reported, each naming its key (never a secret's value).
    pub fn compile(self) -> Result<IrcConfig, String> {
        let mut errors = Vec::new();
        let key = |k: &str| format!("chat.irc.{k}");
        let token = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_graphic() && !matches!(c, ',' | ':'))
        };
        if !token(&self.server) {
            errors.push(format!(
                "{}: `{}` is not a host name",
                key("server"),
                self.server
            ));
        }
        if !token(&self.nick) || self.nick.starts_with('#') {
            errors.push(format!("{}: `{}` is not a nick", key("nick"), self.nick));
        }
        for channel in &self.channels {
            if !(channel.starts_with('#') || channel.starts_with('&')) || !token(channel) {
                errors.push(format!(
                    "{}: `{channel}` is not a channel (it starts with #)",
                    key("channels")
                ));
            }
        }
        let network = self.network.clone().unwrap_or_else(|| self.server.clone());
        if !token(&network) || network.contains('/') {
            errors.push(format!("{}: `{network}` must be one word", key("network")));
        }
        let resolve = |name: &str, r: &SecretRef, errors: &mut Vec<String>| {
            r.resolve()
                .map_err(|e| errors.push(format!("{}: {e}", key(name))))
                .ok()
        };
        let server_password = self
            .server_password
            .as_ref()
            .and_then(|r| resolve("server_password", r, &mut errors));
        let sasl = match &self.sasl {
            None => None,
            Some(SaslFile::Plain { username, password }) => {
                resolve("sasl.password", password, &mut errors).map(|password| Sasl::Plain {
                    username: username.clone(),
                    password,
                })
            }
            Some(SaslFile::External {
                cert_file,
                key_file,
            }) => {
                if !self.tls {
                    errors.push(format!(
                        "{}: SASL EXTERNAL needs `tls = true`",
                        key("sasl.mechanism")
                    ));
                }
                match std::fs::read_to_string(key_file) {
                    Ok(pem) => Some(Sasl::External {
                        cert_file: cert_file.clone(),
                        key: Secret::new(pem),
                    }),
                    Err(e) => {
                        errors.push(format!(
                            "{}: cannot read {}: {e}",
                            key("sasl.key_file"),
                            key_file.display()
                        ));
                        None
                    }
                }
            }
        };
        let lines_per_burst = self.lines_per_burst.unwrap_or(5);
        let burst_seconds = self.burst_seconds.unwrap_or(2);
        if lines_per_burst == 0 || burst_seconds == 0 {
            errors.push(format!(
                "{} / {}: at least 1 line in at least 1 second",
                key("lines_per_burst"),
                key("burst_seconds")
            ));
        }
        let max_lines = self.max_lines.unwrap_or(6);
        if !(2..=50).contains(&max_lines) {
            errors.push(format!("{}: between 2 and 50", key("max_lines")));
        }
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        Ok(IrcConfig {
            port: self.port.unwrap_or(if self.tls { 6697 } else { 6667 }),
            alt_nicks: self
                .alt_nicks
                .unwrap_or_else(|| vec![format!("{}_", self.nick), format!("{}__", self.nick)]),
            username: self.username.unwrap_or_else(|| self.nick.clone()),
            realname: self.realname.unwrap_or_else(|| "Switchboard".to_owned()),
            server: self.server,
            tls: self.tls,
            ca_file: self.ca_file,
            nick: self.nick,
            server_password,
            sasl,
            channels: self.channels,
            network,
            lines_per_burst,
            burst_seconds,
            max_lines,
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
        })
    }
}
