//! The `[chat.xmpp]` section: [`XmppFile`] as it is written, and
//! [`XmppConfig`], the same checked with its secrets resolved and its
//! TLS trust loaded.
//!
//! Not here: reading the configuration file (the binary does) and using
//! any of it (the adapter does).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use switchboard_core::secret::{Secret, SecretRef};
use tokio_xmpp::jid::BareJid;
use tokio_xmpp::rustls::pki_types::CertificateDer;
use tokio_xmpp::rustls::pki_types::pem::PemObject;
use tokio_xmpp::rustls::{ClientConfig, RootCertStore};

/// One bot account on one XMPP service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmppFile {
    /// The bot's account, e.g. `switchboard@example.org`.
    pub jid: String,
    /// Its password, e.g. `env:XMPP_PASSWORD`.
    pub password: SecretRef,
    /// The server to connect to; default: found from the account's domain
    /// (DNS `_xmpp-client._tcp` records, else the domain itself).
    #[serde(default)]
    pub server: Option<String>,
    /// Default 5222. The connection always starts TLS (STARTTLS); a server
    /// that does not offer it is not used.
    #[serde(default)]
    pub port: Option<u16>,
    /// A PEM file of certificates to trust besides the system's, for a
    /// server with a private certificate authority. The certificate must
    /// name the account's domain.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The multi-user chat rooms to join (and rejoin after a kick), e.g.
    /// `["ops@conference.example.org"]`.
    #[serde(default)]
    pub rooms: Vec<String>,
    /// The bot's nick in rooms; default: the account's name. When it is
    /// taken, `_` is added.
    #[serde(default)]
    pub nick: Option<String>,
}

/// The `[chat.xmpp]` section, compiled.
#[derive(Debug, Clone)]
pub struct XmppConfig {
    pub jid: BareJid,
    pub password: Secret<String>,
    pub server: Option<String>,
    pub port: u16,
    pub rooms: Vec<BareJid>,
    pub nick: String,
    /// The certificates the server's is checked against.
    pub tls: Arc<ClientConfig>,
    /// How long the connection may be silent before it is probed, and
    /// then given up.
    pub idle: Duration,
    pub probe: Duration,
}

impl XmppFile {
    /// Checks the section, resolves its secret and loads its trust. Every
    /// problem is reported, each naming its key (never a secret's value).
    pub fn compile(self) -> Result<XmppConfig, String> {
        let mut errors = Vec::new();
        let key = |k: &str| format!("chat.xmpp.{k}");
        let jid = match BareJid::new(&self.jid) {
            Ok(jid) if jid.node().is_some() => Some(jid),
            _ => {
                errors.push(format!(
                    "{}: `{}` is not an account like switchboard@example.org",
                    key("jid"),
                    self.jid
                ));
                None
            }
        };
        let mut rooms = Vec::new();
        for room in &self.rooms {
            match BareJid::new(room) {
                Ok(jid) if jid.node().is_some() => rooms.push(jid),
                _ => errors.push(format!(
                    "{}: `{room}` is not a room like ops@conference.example.org",
                    key("rooms")
                )),
            }
        }
        let nick = self.nick.clone().or_else(|| {
            jid.as_ref()
                .and_then(|j| j.node().map(|n| n.as_str().to_owned()))
        });
        if let Some(nick) = &nick
            && (nick.trim().is_empty() || nick.chars().any(char::is_control))
        {
            errors.push(format!("{}: `{nick}` is not a nick", key("nick")));
        }
        if let Some(server) = &self.server
            && (server.is_empty() || !server.chars().all(|c| c.is_ascii_graphic()))
        {
            errors.push(format!("{}: `{server}` is not a host name", key("server")));
        }
        let password = self
            .password
            .resolve()
            .map_err(|e| errors.push(format!("{}: {e}", key("password"))))
            .ok();
        let tls = trust(self.ca_file.as_ref())
            .map_err(|e| errors.push(format!("{}: {e}", key("ca_file"))))
            .ok();
        match (jid, password, tls, nick) {
            (Some(jid), Some(password), Some(tls), Some(nick)) if errors.is_empty() => {
                Ok(XmppConfig {
                    jid,
                    password,
                    server: self.server,
                    port: self.port.unwrap_or(5222),
                    rooms,
                    nick,
                    tls: Arc::new(tls),
                    idle: Duration::from_secs(90),
                    probe: Duration::from_secs(30),
                })
            }
            _ => Err(errors.join("; ")),
        }
    }
}

/// The TLS client settings: the system's certificate authorities and
/// those of `ca_file`.
fn trust(ca_file: Option<&PathBuf>) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect)
            .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{} holds no certificate", path.display()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(tokio_xmpp::rustls::crypto::aws_lc_rs::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
