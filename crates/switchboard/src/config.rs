//! Server configuration: `switchboard.toml`, overridden by `SWITCHBOARD_*`
//! environment variables, overridden by flags. `serve` works with flags
//! alone. Relative paths in the file are relative to the file's folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

/// Flags of `switchboard serve`; each may also come from the environment.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// A configuration file (TOML); flags and environment override it.
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. `127.0.0.1:8080` (port 0 picks a free one).
    #[arg(long, env = "SWITCHBOARD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The catalog folder.
    #[arg(long, env = "SWITCHBOARD_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Storage URL, e.g. `sqlite:///var/lib/switchboard/switchboard.db`.
    #[arg(long, env = "SWITCHBOARD_STORAGE")]
    pub storage: Option<String>,
    /// This node's name (default: the host name).
    #[arg(long, env = "SWITCHBOARD_NODE")]
    pub node: Option<String>,
    /// Most executions running at once.
    #[arg(long, env = "SWITCHBOARD_MAX_CONCURRENCY")]
    pub max_concurrency: Option<usize>,
    /// Output kept per execution, in bytes.
    #[arg(long, env = "SWITCHBOARD_MAX_OUTPUT_BYTES")]
    pub max_output_bytes: Option<u64>,
    /// Time between SIGTERM and SIGKILL when a run is stopped, e.g. `5s`.
    #[arg(long, env = "SWITCHBOARD_KILL_GRACE", value_parser = humantime::parse_duration)]
    pub kill_grace: Option<Duration>,
    /// How long shutdown waits for running executions before cancelling them.
    #[arg(long, env = "SWITCHBOARD_DRAIN_TIMEOUT", value_parser = humantime::parse_duration)]
    pub drain_timeout: Option<Duration>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `switchboard.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    listen: Option<SocketAddr>,
    /// The catalog folder.
    catalog: Option<PathBuf>,
    /// Storage URL.
    storage: Option<String>,
    /// This node's name.
    node: Option<String>,
    /// Most executions running at once.
    max_concurrency: Option<usize>,
    /// Output kept per execution, in bytes.
    max_output_bytes: Option<u64>,
    /// Time between SIGTERM and SIGKILL, e.g. `"5s"`.
    #[serde(default, with = "humantime_serde_opt")]
    kill_grace: Option<Duration>,
    /// How long shutdown waits for running executions.
    #[serde(default, with = "humantime_serde_opt")]
    drain_timeout: Option<Duration>,
    /// Where per-run temporary folders go.
    temp_dir: Option<PathBuf>,
    /// `text` or `json`.
    log_format: Option<LogFormat>,
    /// Where the bootstrap token of `admin` is: `env:NAME` or `file:PATH`
    /// (`SWITCHBOARD_ADMIN_TOKEN`, when set, takes precedence).
    admin_token: Option<switchboard_core::secret::SecretRef>,
    /// Sign-in with OpenID Connect bearer tokens.
    oidc: Option<OidcFile>,
    /// Where audit records are also sent, as they are stored.
    #[serde(default)]
    audit_forward: Vec<ForwardFile>,
    /// People who sign in.
    #[serde(default)]
    users: Vec<PrincipalFile>,
    /// Machines and bots that sign in.
    #[serde(default)]
    service_accounts: Vec<PrincipalFile>,
    /// Groups that belong to other groups: `sre-leads = ["sre"]`.
    #[serde(default)]
    groups: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
    /// Users and groups from LDAP / Active Directory.
    ldap: Option<switchboard_engine::ldap::LdapConfig>,
    /// The chat front door: how the bot converses, and each platform.
    chat: Option<ChatFile>,
    /// A Hubot with `hubot-chatops-rpc` as a front door (GitHub's Chatops RPC).
    chatops_rpc: Option<switchboard_connectors::chat::chatops_rpc::ChatopsRpcFile>,
    /// How the SSH runner reaches hosts.
    ssh: Option<SshFile>,
    /// The Prometheus server graphs query.
    prometheus: Option<PrometheusFile>,
    /// How alerts are kept.
    alerts: Option<AlertsFile>,
    /// How nodes sharing one database hand work over.
    cluster: Option<ClusterFile>,
}

/// `[cluster]`: leases, for several nodes on one database.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterFile {
    /// How long a lease lasts (`"15s"`); renewed every third of it. A node
    /// that stops is noticed, and its work taken over, within about this.
    #[serde(default, with = "humantime_serde_opt")]
    lease: Option<Duration>,
}

impl ClusterFile {
    fn resolve(self) -> anyhow::Result<switchboard_engine::cluster::ClusterSettings> {
        let lease = self
            .lease
            .unwrap_or(switchboard_engine::cluster::ClusterSettings::default().lease);
        anyhow::ensure!(
            lease >= Duration::from_secs(1),
            "[cluster] lease: must be at least 1s"
        );
        Ok(switchboard_engine::cluster::ClusterSettings { lease })
    }
}

/// `[alerts]`: how alerts received are kept.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsFile {
    /// How long a firing alert without an end stays firing unless renewed
    /// (`"5m"`, as Alertmanager's `resolve_timeout`).
    #[serde(default, with = "humantime_serde_opt")]
    resolve_timeout: Option<Duration>,
    /// How many times a notification is tried before it is given up.
    delivery_attempts: Option<u32>,
    /// The wait after a first failed delivery; it doubles after each.
    #[serde(default, with = "humantime_serde_opt")]
    delivery_backoff: Option<Duration>,
}

impl AlertsFile {
    fn resolve(self) -> anyhow::Result<switchboard_engine::alerts::AlertSettings> {
        let defaults = switchboard_engine::alerts::AlertSettings::default();
        let resolve_timeout = self.resolve_timeout.unwrap_or(defaults.resolve_timeout);
        anyhow::ensure!(
            !resolve_timeout.is_zero(),
            "[alerts] resolve_timeout: must be longer than zero"
        );
        let delivery_attempts = self.delivery_attempts.unwrap_or(defaults.delivery_attempts);
        anyhow::ensure!(
            delivery_attempts > 0,
            "[alerts] delivery_attempts: must be at least 1"
        );
        let delivery_backoff = self.delivery_backoff.unwrap_or(defaults.delivery_backoff);
        anyhow::ensure!(
            !delivery_backoff.is_zero(),
            "[alerts] delivery_backoff: must be longer than zero"
        );
        Ok(switchboard_engine::alerts::AlertSettings {
            resolve_timeout,
            delivery_attempts,
            delivery_backoff,
        })
    }
}

/// `[ssh]`: how the SSH runner connects.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SshFile {
    /// The known_hosts file host keys are checked against.
    known_hosts: Option<PathBuf>,
    /// `strict` (default): unknown host keys are refused; `accept-new`:
    /// recorded on first sight. A changed key is always refused.
    host_key_policy: Option<String>,
    /// The private key: `file:PATH` or `env:NAME`.
    key: Option<switchboard_core::secret::SecretRef>,
    /// Its passphrase, if it has one: `file:PATH` or `env:NAME`.
    key_passphrase: Option<switchboard_core::secret::SecretRef>,
    /// The user for hosts whose inventory entry names none.
    user: Option<String>,
    /// Time to connect and sign in, per host (`"10s"`).
    #[serde(default, with = "humantime_serde_opt")]
    connect_timeout: Option<Duration>,
    /// Most hosts worked on at once by one run.
    concurrency: Option<usize>,
    /// A host every connection goes through: `[user@]host[:port]`.
    jump: Option<String>,
}

impl SshFile {
    fn resolve(self, base: &Path) -> anyhow::Result<switchboard_engine::runner::ssh::SshSettings> {
        use switchboard_engine::runner::ssh::{HostKeyPolicy, JumpHost, SshSettings};
        let defaults = SshSettings::default();
        let host_key_policy = match self.host_key_policy.as_deref() {
            None | Some("strict") => HostKeyPolicy::Strict,
            Some("accept-new") => HostKeyPolicy::AcceptNew,
            Some(other) => {
                anyhow::bail!("[ssh] host_key_policy: `{other}` is not `strict` or `accept-new`")
            }
        };
        let concurrency = self.concurrency.unwrap_or(defaults.concurrency);
        anyhow::ensure!(concurrency >= 1, "[ssh] concurrency: must be at least 1");
        let connect_timeout = self.connect_timeout.unwrap_or(defaults.connect_timeout);
        anyhow::ensure!(
            !connect_timeout.is_zero(),
            "[ssh] connect_timeout: must be longer than zero"
        );
        Ok(SshSettings {
            known_hosts: self.known_hosts.map(|p| base.join(p)),
            host_key_policy,
            key: self.key,
            key_passphrase: self.key_passphrase,
            user: self.user.unwrap_or(defaults.user),
            connect_timeout,
            concurrency,
            jump: self
                .jump
                .map(|j| JumpHost::parse(&j).map_err(|e| anyhow::anyhow!("[ssh] jump: {e}")))
                .transpose()?,
        })
    }
}

/// `[prometheus]`: where graphs are queried.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrometheusFile {
    /// Its base URL, e.g. `http://prometheus.internal:9090`.
    url: Option<String>,
    /// How long one query may take (`"10s"`).
    #[serde(default, with = "humantime_serde_opt")]
    timeout: Option<Duration>,
    /// A bearer token: `file:PATH` or `env:NAME`.
    bearer: Option<switchboard_core::secret::SecretRef>,
}

impl PrometheusFile {
    fn resolve(self) -> anyhow::Result<switchboard_engine::runner::query::PrometheusSettings> {
        let defaults = switchboard_engine::runner::query::PrometheusSettings::default();
        let url = self.url.unwrap_or(defaults.url);
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "[prometheus] url: `{url}` must start with http:// or https://"
        );
        Ok(switchboard_engine::runner::query::PrometheusSettings {
            url,
            timeout: self.timeout.unwrap_or(defaults.timeout),
            bearer: self
                .bearer
                .map(|b| {
                    b.resolve()
                        .map_err(|e| anyhow::anyhow!("[prometheus] bearer: {e}"))
                })
                .transpose()?,
        })
    }
}

impl FileConfig {
    /// Reads a configuration file; relative paths in it are relative to
    /// its folder, which is returned too.
    pub fn read(path: &Path) -> anyhow::Result<(Self, PathBuf)> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let file: FileConfig = toml::from_str(&text)
            .with_context(|| format!("invalid configuration in {}", path.display()))?;
        Ok((
            file,
            path.parent().map(Path::to_path_buf).unwrap_or_default(),
        ))
    }

    /// How runners reach hosts and Prometheus.
    fn runners(
        ssh: Option<SshFile>,
        prometheus: Option<PrometheusFile>,
        base: &Path,
    ) -> anyhow::Result<switchboard_engine::runner::RunnerSettings> {
        Ok(switchboard_engine::runner::RunnerSettings {
            ssh: ssh.unwrap_or_default().resolve(base)?,
            prometheus: prometheus.unwrap_or_default().resolve()?,
        })
    }

    /// The runner settings of a configuration file, for `run --local`.
    pub fn runners_of(
        path: Option<&Path>,
    ) -> anyhow::Result<switchboard_engine::runner::RunnerSettings> {
        match path {
            Some(path) => {
                let (file, base) = Self::read(path)?;
                Self::runners(file.ssh, file.prometheus, &base)
            }
            None => Self::runners(None, None, Path::new("")),
        }
    }
}

/// `[chat]`: how the bot converses on every platform.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatFile {
    /// A prefix that addresses the bot in rooms (`"!"` makes `!uptime` a
    /// command); mentions and direct messages always do. `""` turns it off.
    prefix: Option<String>,
    /// Switchboard's public base URL, for links to executions in replies.
    public_url: Option<String>,
    /// A run still going after this long gets progress updates (`"3s"`).
    #[serde(default, with = "humantime_serde_opt")]
    progress_after: Option<Duration>,
    /// How often progress is updated (`"5s"`).
    #[serde(default, with = "humantime_serde_opt")]
    progress_every: Option<Duration>,
    /// Lines of output shown in a result; longer output is attached.
    tail_lines: Option<usize>,
    /// How long a link code works (`"10m"`).
    #[serde(default, with = "humantime_serde_opt")]
    link_code_ttl: Option<Duration>,
    /// Slack (Events API, slash commands, buttons, Socket Mode).
    slack: Option<switchboard_connectors::chat::slack::SlackFile>,
    /// Mattermost (slash commands, outgoing webhooks, REST API v4, websocket).
    mattermost: Option<switchboard_connectors::chat::mattermost::MattermostFile>,
    /// `[chat.irc]`: one IRC network.
    irc: Option<switchboard_connectors::chat::irc::IrcFile>,
    /// `[chat.matrix]`: one bot account on a Matrix homeserver.
    matrix: Option<switchboard_connectors::chat::matrix::MatrixFile>,
    /// Discord (an application's interactions endpoint, Ed25519-signed).
    discord: Option<switchboard_connectors::chat::discord::DiscordFile>,
    /// Microsoft Teams (outgoing webhooks, HMAC-signed; replies through Workflows).
    teams: Option<switchboard_connectors::chat::teams::TeamsFile>,
    /// `[chat.xmpp]`: one bot account on an XMPP service.
    xmpp: Option<switchboard_connectors::chat::xmpp::XmppFile>,
}

/// The chat platforms configured, compiled.
#[derive(Debug, Clone, Default)]
pub struct ChatPlatforms {
    pub slack: Option<switchboard_connectors::chat::slack::SlackConfig>,
    pub mattermost: Option<switchboard_connectors::chat::mattermost::MattermostConfig>,
    pub irc: Option<switchboard_connectors::chat::irc::IrcConfig>,
    pub matrix: Option<switchboard_connectors::chat::matrix::MatrixConfig>,
    pub discord: Option<switchboard_connectors::chat::discord::DiscordConfig>,
    pub teams: Option<switchboard_connectors::chat::teams::TeamsConfig>,
    pub xmpp: Option<switchboard_connectors::chat::xmpp::XmppConfig>,
}

/// A `[chat.<platform>]` section compiled, when present; its errors
/// prefixed with the section's name.
fn compile_section<F, C>(
    name: &str,
    file: Option<F>,
    compile: impl FnOnce(F) -> Result<C, String>,
) -> anyhow::Result<Option<C>> {
    file.map(|f| compile(f).map_err(|e| anyhow::anyhow!("[chat.{name}]: {e}")))
        .transpose()
}

impl ChatFile {
    /// The conversation settings, and the platforms with their secrets resolved.
    fn resolve(self) -> anyhow::Result<(switchboard_engine::chat::ChatSettings, ChatPlatforms)> {
        let defaults = switchboard_engine::chat::ChatSettings::default();
        if let Some(url) = &self.public_url {
            anyhow::ensure!(
                url.starts_with("https://") || url.starts_with("http://"),
                "[chat] public_url: `{url}` must start with https:// or http://"
            );
        }
        let tail_lines = self.tail_lines.unwrap_or(defaults.tail_lines);
        anyhow::ensure!(
            (1..=200).contains(&tail_lines),
            "[chat] tail_lines: must be between 1 and 200"
        );
        use switchboard_connectors::chat::{discord, irc, matrix, mattermost, slack, teams, xmpp};
        let platforms = ChatPlatforms {
            slack: compile_section("slack", self.slack, slack::SlackFile::compile)?,
            mattermost: compile_section(
                "mattermost",
                self.mattermost,
                mattermost::MattermostFile::compile,
            )?,
            discord: compile_section("discord", self.discord, discord::DiscordFile::compile)?,
            teams: compile_section("teams", self.teams, teams::TeamsFile::compile)?,
            irc: compile_section("irc", self.irc, irc::IrcFile::compile)?,
            matrix: compile_section("matrix", self.matrix, matrix::MatrixFile::compile)?,
            xmpp: compile_section("xmpp", self.xmpp, xmpp::XmppFile::compile)?,
        };
        let settings = switchboard_engine::chat::ChatSettings {
            prefix: match self.prefix {
                Some(p) if p.trim().is_empty() => None,
                Some(p) => Some(p),
                None => defaults.prefix,
            },
            public_url: self.public_url,
            progress_after: self.progress_after.unwrap_or(defaults.progress_after),
            progress_every: self.progress_every.unwrap_or(defaults.progress_every),
            tail_lines,
            link_code_ttl: self.link_code_ttl.unwrap_or(defaults.link_code_ttl),
            max_text: defaults.max_text,
        };
        Ok((settings, platforms))
    }
}

/// `[[users]]` or `[[service_accounts]]`: one declared principal.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalFile {
    /// The principal's name, as tokens and policies name it.
    name: String,
    /// A name for people to read.
    display_name: Option<String>,
    /// The groups it is a member of.
    #[serde(default)]
    groups: std::collections::BTreeSet<String>,
}

/// `[[audit_forward]]`: one destination for audit records.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForwardFile {
    /// A syslog server: `udp://host:514` or `tcp://host:601`.
    syslog: Option<String>,
    /// A webhook URL that receives `{"records": [...]}`, signed.
    webhook: Option<String>,
    /// The webhook's signing secret, as a reference: `env:NAME` or `file:PATH`.
    secret: Option<switchboard_core::secret::SecretRef>,
}

impl ForwardFile {
    fn resolve(
        self,
        hostname: &str,
    ) -> anyhow::Result<switchboard_engine::audit_forward::AuditSink> {
        use switchboard_engine::audit_forward::AuditSink;
        match (self.syslog, self.webhook, self.secret) {
            (Some(url), None, None) => AuditSink::syslog(&url, hostname)
                .map_err(|e| anyhow::anyhow!("[[audit_forward]]: {e}")),
            (None, Some(url), Some(secret)) => Ok(AuditSink::Webhook {
                url,
                secret: secret.resolve()?,
            }),
            (None, Some(_), None) => {
                anyhow::bail!("[[audit_forward]]: a webhook needs a `secret` to sign with")
            }
            _ => {
                anyhow::bail!("[[audit_forward]]: give either `syslog`, or `webhook` with `secret`")
            }
        }
    }
}

/// `[oidc]`: how bearer JWTs from an OpenID Connect provider are accepted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OidcFile {
    /// The `iss` every token must carry.
    issuer: String,
    /// The `aud` every token must include.
    audience: String,
    /// The issuer's key set: an `https://` URL, or a file path.
    jwks: String,
    /// The claim naming the principal.
    #[serde(default = "default_user_claim")]
    user_claim: String,
    /// The claim listing groups.
    #[serde(default = "default_groups_claim")]
    groups_claim: String,
    /// What signed-in users may do: `read`, `run`, `admin`.
    #[serde(default = "default_oidc_scopes")]
    scopes: Vec<String>,
    /// The web UI's sign-in through the provider (authorization code with
    /// PKCE) is on when both endpoints are given.
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    /// The web UI's client id (default: `audience`).
    client_id: Option<String>,
    /// For a confidential client: a secret reference (`env:…`, `file:…`).
    client_secret: Option<String>,
}

fn default_user_claim() -> String {
    "preferred_username".to_owned()
}

fn default_groups_claim() -> String {
    "groups".to_owned()
}

fn default_oidc_scopes() -> Vec<String> {
    vec!["read".to_owned(), "run".to_owned()]
}

impl OidcFile {
    fn resolve(self, base: &Path) -> anyhow::Result<switchboard_engine::oidc::OidcConfig> {
        use switchboard_engine::oidc::{JwksSource, OidcConfig, OidcLogin};
        let jwks = if self.jwks.starts_with("https://") || self.jwks.starts_with("http://") {
            JwksSource::Url(self.jwks)
        } else {
            JwksSource::File(base.join(self.jwks))
        };
        let scopes = switchboard_core::token::Scope::parse_list(&self.scopes.join(","))
            .map_err(|e| anyhow::anyhow!("[oidc] scopes: {e}"))?;
        let login = match (self.authorization_endpoint, self.token_endpoint) {
            (Some(authorization_endpoint), Some(token_endpoint)) => {
                for (key, url) in [
                    ("authorization_endpoint", &authorization_endpoint),
                    ("token_endpoint", &token_endpoint),
                ] {
                    if !(url.starts_with("https://") || url.starts_with("http://")) {
                        anyhow::bail!("[oidc] {key}: `{url}` is not an http(s) URL");
                    }
                }
                let client_secret = self
                    .client_secret
                    .map(|s| switchboard_core::secret::SecretRef::parse(&s))
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("[oidc] client_secret: {e}"))?;
                Some(OidcLogin {
                    client_id: self.client_id.unwrap_or_else(|| self.audience.clone()),
                    client_secret,
                    authorization_endpoint,
                    token_endpoint,
                })
            }
            (None, None) => None,
            _ => anyhow::bail!(
                "[oidc] authorization_endpoint and token_endpoint go together (the web UI's sign-in needs both)"
            ),
        };
        Ok(OidcConfig {
            login,
            issuer: self.issuer,
            audience: self.audience,
            jwks,
            user_claim: self.user_claim,
            groups_claim: Some(self.groups_claim),
            scopes,
        })
    }
}

/// Durations in the file are humantime text (`"5s"`, `"2m"`).
mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            humantime::parse_duration(&t)
                .map_err(|e| serde::de::Error::custom(format!("`{t}`: {e}")))
        })
        .transpose()
    }
}

/// The resolved settings of a server.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub catalog: PathBuf,
    pub storage: String,
    pub node: String,
    pub max_concurrency: usize,
    pub max_output_bytes: u64,
    pub kill_grace: Duration,
    pub drain_timeout: Duration,
    pub temp_dir: PathBuf,
    pub log_format: LogFormat,
    /// SHA-256 of `SWITCHBOARD_ADMIN_TOKEN`, the bootstrap token of `admin`.
    /// The token itself is read from the environment only (never a flag,
    /// which `ps` would show) and not kept.
    pub admin_token_hash: Option<String>,
    /// OIDC sign-in, when configured.
    pub oidc: Option<switchboard_engine::oidc::OidcConfig>,
    /// Audit record destinations.
    pub audit_forward: Vec<switchboard_engine::audit_forward::AuditSink>,
    /// Declared principals and groups.
    pub directory: switchboard_core::directory::Directory,
    /// The LDAP directory, when configured.
    pub ldap: Option<switchboard_engine::ldap::LdapConfig>,
    /// How the bot converses.
    pub chat: switchboard_engine::chat::ChatSettings,
    /// The chat platforms to connect.
    pub chat_platforms: ChatPlatforms,
    /// The ChatOps-RPC door, when configured.
    pub chatops_rpc: Option<switchboard_connectors::chat::chatops_rpc::ChatopsRpcConfig>,
    /// How runners reach hosts (SSH) and Prometheus.
    pub runners: switchboard_engine::runner::RunnerSettings,
    /// How alerts are kept.
    pub alerts: switchboard_engine::alerts::AlertSettings,
    /// How long leases last.
    pub cluster: switchboard_engine::cluster::ClusterSettings,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".to_owned())
}

/// The directory declared by `[[users]]`, `[[service_accounts]]` and `[groups]`.
fn directory(
    users: Vec<PrincipalFile>,
    services: Vec<PrincipalFile>,
    groups: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
) -> anyhow::Result<switchboard_core::directory::Directory> {
    use switchboard_core::directory::{Directory, PrincipalEntry, PrincipalKind};
    let kinds = users.into_iter().map(|u| (PrincipalKind::User, u)).chain(
        services
            .into_iter()
            .map(|s| (PrincipalKind::ServiceAccount, s)),
    );
    let mut entries = Vec::new();
    for (kind, p) in kinds {
        let name = switchboard_core::Principal::new(p.name)
            .map_err(|e| anyhow::anyhow!("[[users]]/[[service_accounts]]: {e}"))?;
        entries.push(PrincipalEntry {
            name,
            kind,
            display_name: p.display_name,
            groups: p.groups,
        });
    }
    Directory::new(entries, groups).map_err(|e| anyhow::anyhow!("principals: {e}"))
}

/// The hash of the bootstrap admin token, from `SWITCHBOARD_ADMIN_TOKEN` or
/// else the file's `admin_token` reference, resolved now and not kept.
fn admin_token_hash(
    reference: Option<&switchboard_core::secret::SecretRef>,
) -> anyhow::Result<Option<String>> {
    use switchboard_core::secret::{Secret, SecretRef};
    let token: Option<Secret<String>> = match std::env::var("SWITCHBOARD_ADMIN_TOKEN") {
        Ok(value) => Some(Secret::new(value)),
        Err(_) => reference.map(SecretRef::resolve).transpose()?,
    };
    match token {
        Some(t) if t.expose().trim().len() >= 16 => {
            Ok(Some(switchboard_core::token::token_hash(t.expose().trim())))
        }
        Some(_) => anyhow::bail!("the admin token must be at least 16 characters"),
        None => Ok(None),
    }
}

impl ServeArgs {
    /// Merges flags, environment, file and defaults.
    pub fn resolve(self) -> anyhow::Result<ServeConfig> {
        let (file, base) = match &self.config {
            Some(path) => FileConfig::read(path)?,
            None => (FileConfig::default(), PathBuf::new()),
        };
        let catalog = self
            .catalog
            .or_else(|| file.catalog.map(|c| base.join(c)))
            .context("no catalog: pass --catalog DIR, set SWITCHBOARD_CATALOG, or `catalog` in the configuration file")?;
        let storage = self
            .storage
            .or(file.storage)
            .context("no storage: pass --storage sqlite:///path/switchboard.db, set SWITCHBOARD_STORAGE, or `storage` in the configuration file")?;
        let max_concurrency = self.max_concurrency.or(file.max_concurrency).unwrap_or(16);
        anyhow::ensure!(max_concurrency >= 1, "max_concurrency must be at least 1");
        let (chat, chat_platforms) = file.chat.unwrap_or_default().resolve()?;
        let chatops_rpc = file
            .chatops_rpc
            .map(|f| {
                f.compile(chat.public_url.as_deref())
                    .map_err(|e| anyhow::anyhow!("[chatops_rpc]: {e}"))
            })
            .transpose()?;
        let runners = FileConfig::runners(file.ssh, file.prometheus, &base)?;
        let alerts = file.alerts.unwrap_or_default().resolve()?;
        let cluster = file.cluster.unwrap_or_default().resolve()?;
        Ok(ServeConfig {
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            catalog,
            storage,
            node: self.node.or(file.node).unwrap_or_else(host_name),
            max_concurrency,
            max_output_bytes: self
                .max_output_bytes
                .or(file.max_output_bytes)
                .unwrap_or(1024 * 1024),
            kill_grace: self
                .kill_grace
                .or(file.kill_grace)
                .unwrap_or(Duration::from_secs(5)),
            drain_timeout: self
                .drain_timeout
                .or(file.drain_timeout)
                .unwrap_or(Duration::from_secs(30)),
            temp_dir: file
                .temp_dir
                .map(|t| base.join(t))
                .unwrap_or_else(std::env::temp_dir),
            log_format: self
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            admin_token_hash: admin_token_hash(file.admin_token.as_ref())?,
            oidc: file.oidc.map(|o| o.resolve(&base)).transpose()?,
            directory: directory(file.users, file.service_accounts, file.groups)?,
            ldap: file
                .ldap
                .map(|l| {
                    l.validate()
                        .map(|()| l)
                        .map_err(|e| anyhow::anyhow!("[ldap]: {e}"))
                })
                .transpose()?,
            chat,
            chat_platforms,
            chatops_rpc,
            runners,
            alerts,
            cluster,
            audit_forward: file
                .audit_forward
                .into_iter()
                .map(|f| f.resolve(&host_name()))
                .collect::<anyhow::Result<_>>()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_paths_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\ncatalog = \"catalog\"\nstorage = \"sqlite::memory:\"\ndrain_timeout = \"2m\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            listen: Some("127.0.0.1:9999".parse().unwrap()),
            ..ServeArgs::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.catalog, dir.path().join("catalog"));
        assert_eq!(c.drain_timeout, Duration::from_secs(120));
        assert_eq!(c.max_concurrency, 16);
    }

    #[test]
    fn unknown_keys_and_missing_settings_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\ncatalogue = \"x\"\n").unwrap();
        let err = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `catalogue`"),
            "{err:#}"
        );
        let err = ServeArgs::default().resolve().unwrap_err();
        assert!(err.to_string().starts_with("no catalog"), "{err}");
    }

    #[test]
    fn the_admin_token_is_a_reference_never_inline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.toml");
        let token = dir.path().join("admin-token");
        std::fs::write(&token, "sb_from_a_file_0123456789\n").unwrap();
        let base = "catalog = \"c\"\nstorage = \"sqlite::memory:\"\n";
        std::fs::write(
            &path,
            format!("{base}admin_token = \"file:{}\"\n", token.display()),
        )
        .unwrap();
        let c = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        if std::env::var_os("SWITCHBOARD_ADMIN_TOKEN").is_none() {
            assert_eq!(
                c.admin_token_hash,
                Some(switchboard_core::token::token_hash(
                    "sb_from_a_file_0123456789"
                ))
            );
        }
        std::fs::write(
            &path,
            format!("{base}admin_token = \"sb_inline_0123456789\"\n"),
        )
        .unwrap();
        let err = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("must be a reference"),
            "{err:#}"
        );
    }
}
