//! The SSH runner: runs an action's command on one or many hosts over SSH,
//! with `russh` in this process (no `ssh` client needed on the server, keys
//! held in memory only, one task per host rather than one process).
//!
//! - **Host keys** are checked against one known_hosts file, by the host's
//!   address and, failing that, its inventory name (`[addr]:port` for ports
//!   other than 22, hashed entries too). A changed key always refuses; an
//!   unknown one refuses unless the policy is `accept-new`, which records it.
//! - **Authentication** is by the private key a secret reference points at,
//!   read at each run (so a rotated key is picked up).
//! - **Jump host**: when set, one connection to it per run carries every
//!   target connection (`direct-tcpip`), each target's key still checked.
//! - **Fan-out**: at most `concurrency` hosts at once; each host has its own
//!   connect timeout and command timeout (the action's `timeout`); output is
//!   streamed as it comes, each line labelled `[host]` when there are several;
//!   the run ends with one line per host and a summary, and the result lists
//!   every host's status and exit code.
//! - **Arguments**: the command renders to argv exactly as for the local
//!   runner; each element is then single-quoted for the remote POSIX shell, so
//!   a parameter value reaches the remote program as one argument whatever it
//!   contains (the remote account's shell must be POSIX: sh, bash, dash, zsh).
//!
//! Not here: which hosts a selector names (the inventory and the engine), and
//! copying files to hosts.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect, Sig, client};
use switchboard_core::inventory::Host;
use switchboard_core::secret::SecretRef;
use switchboard_core::template::render_command;
use switchboard_core::{Action, ExecutionStatus, Masker, Stream, Timestamp, ValidatedParams};
use tokio::sync::{mpsc, watch};

use super::output::{LineSplitter, Output};
use super::{RunEvent, RunLimits, RunOutcome};

/// What to do with a host whose key known_hosts does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Refuse it (the default).
    #[default]
    Strict,
    /// Record it in known_hosts and go on; a *changed* key still refuses.
    AcceptNew,
}

/// A host connections go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHost {
    pub address: String,
    pub port: u16,
    pub user: Option<String>,
}

impl JumpHost {
    /// `[user@]host[:port]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (user, rest) = match text.split_once('@') {
            Some((u, r)) if !u.is_empty() => (Some(u.to_owned()), r),
            Some(_) => return Err(format!("jump host `{text}`: the user before `@` is empty")),
            None => (None, text),
        };
        let (address, port) = match rest.rsplit_once(':') {
            Some((a, p)) if !a.contains(':') || a.starts_with('[') => (
                a.trim_start_matches('[').trim_end_matches(']'),
                p.parse::<u16>()
                    .map_err(|_| format!("jump host `{text}`: `{p}` is not a port"))?,
            ),
            _ => (rest, 22),
        };
        if address.is_empty() {
            return Err(format!("jump host `{text}` has no address"));
        }
        Ok(Self {
            address: address.to_owned(),
            port,
            user,
        })
    }
}

/// How this node connects to hosts (`[ssh]` in the configuration).
#[derive(Debug, Clone)]
pub struct SshSettings {
    /// The known_hosts file host keys are checked against.
    pub known_hosts: Option<PathBuf>,
    pub host_key_policy: HostKeyPolicy,
    /// The private key (OpenSSH format).
    pub key: Option<SecretRef>,
    /// Its passphrase, if it has one.
    pub key_passphrase: Option<SecretRef>,
    /// The user for hosts the inventory gives none.
    pub user: String,
    /// Time to connect, check the host key and sign in, per host.
    pub connect_timeout: Duration,
    /// Most hosts worked on at once in one run.
    pub concurrency: usize,
    pub jump: Option<JumpHost>,
}

impl Default for SshSettings {
    fn default() -> Self {
        Self {
            known_hosts: None,
            host_key_policy: HostKeyPolicy::Strict,
            key: None,
            key_passphrase: None,
            user: "switchboard".to_owned(),
            connect_timeout: Duration::from_secs(10),
            concurrency: 20,
            jump: None,
        }
    }
}

/// Everything the SSH runner needs for one run.
pub struct SshRun<'a> {
    pub action: &'a Action,
    pub params: &'a ValidatedParams,
    /// The hosts, as the inventory describes them.
    pub targets: &'a [Host],
    pub settings: &'a SshSettings,
    pub limits: &'a RunLimits,
}

/// How one host's part of a run ended.
#[derive(Debug, Clone, serde::Serialize)]
struct HostOutcome {
    host: String,
    status: ExecutionStatus,
    exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    duration_ms: u64,
}

/// Runs the action on every target. `cancel` turning `true` stops it.
pub async fn run(
    job: SshRun<'_>,
    events: mpsc::Sender<RunEvent>,
    cancel: watch::Receiver<bool>,
) -> RunOutcome {
    let masker = Masker::new(job.params.secret_values().iter().cloned());
    let mut out = Output::new(events, masker, job.limits);
    // Each host's command sees its own name as the `host` parameter.
    let host_param = job
        .action
        .params
        .iter()
        .find(|p| p.ty == switchboard_core::ParamType::Host)
        .map(|p| p.name.as_str());
    let mut command_lines = Vec::with_capacity(job.targets.len());
    for host in job.targets {
        let mut params = job.params.clone();
        if let Some(name) = host_param {
            params.replace(name, switchboard_core::ParamValue::Text(host.name.clone()));
        }
        let rendered = render_command(&job.action.command, &params, &job.action.param_names())
            .map_err(|e| out.masker.mask(&e.to_string()))
            .and_then(|argv| remote_command(&argv));
        match rendered {
            Ok(line) => command_lines.push(line),
            Err(e) => return RunOutcome::failed(e),
        }
    }
    if job.targets.is_empty() {
        return RunOutcome::failed("no hosts to run on");
    }
    let connector = match Connector::new(job.settings).await {
        Ok(c) => Arc::new(c),
        Err(e) => return RunOutcome::failed(e),
    };
    let _ = out.events.send(RunEvent::Started(Timestamp::now())).await;

    let labelled = job.targets.len() > 1;
    let concurrency = job.settings.concurrency.max(1);
    let (line_tx, mut lines) = mpsc::channel::<(usize, Stream, String)>(1024);
    let mut waiting = job.targets.iter().enumerate();
    let mut running = FuturesUnordered::new();
    let mut outcomes = Vec::with_capacity(job.targets.len());
    loop {
        while running.len() < concurrency {
            let Some((index, host)) = waiting.next() else {
                break;
            };
            let lines = HostLines {
                index,
                tx: line_tx.clone(),
            };
            running.push(run_host(
                &connector,
                host,
                &command_lines[index],
                job.action.timeout,
                job.limits.kill_grace,
                lines,
                cancel.clone(),
            ));
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            Some(outcome) = running.next() => outcomes.push(outcome),
            Some((index, stream, text)) = lines.recv() => {
                emit_line(&mut out, job.targets, labelled, index, stream, text).await;
            }
        }
    }
    // Every host has ended: what they sent is all in the channel.
    drop(line_tx);
    while let Some((index, stream, text)) = lines.recv().await {
        emit_line(&mut out, job.targets, labelled, index, stream, text).await;
    }
    connector.close().await;
    // Report in the order the hosts were named, not the order they ended.
    outcomes.sort_by_key(|o| {
        job.targets
            .iter()
            .position(|t| t.name == o.host)
            .unwrap_or(usize::MAX)
    });
    summarize(&mut out, outcomes).await
}

async fn emit_line(
    out: &mut Output,
    targets: &[Host],
    labelled: bool,
    index: usize,
    stream: Stream,
    text: String,
) {
    let text = match targets.get(index) {
        Some(host) if labelled => format!("[{}] {text}", host.name),
        _ => text,
    };
    out.emit(stream, text).await;
}

/// The end of a run from its hosts' ends.
async fn summarize(out: &mut Output, outcomes: Vec<HostOutcome>) -> RunOutcome {
    for o in &outcomes {
        let how = match (&o.error, o.exit_code) {
            (None, Some(code)) => format!("exit {code}"),
            (Some(e), _) => e.clone(),
            (None, None) => String::new(),
        };
        out.system(format!(
            "{}: {} ({how}, {})",
            o.host,
            o.status.as_str(),
            humantime::format_duration(Duration::from_millis(o.duration_ms))
        ))
        .await;
    }
    let total = outcomes.len();
    let ok = outcomes
        .iter()
        .filter(|o| o.status == ExecutionStatus::Succeeded)
        .count();
    let cancelled = outcomes
        .iter()
        .any(|o| o.status == ExecutionStatus::Cancelled);
    let not_ok: Vec<&HostOutcome> = outcomes
        .iter()
        .filter(|o| o.status != ExecutionStatus::Succeeded)
        .collect();
    if total > 1 {
        out.system(format!(
            "{total} hosts: {ok} succeeded, {} did not",
            total - ok
        ))
        .await;
    }
    let status = if cancelled {
        ExecutionStatus::Cancelled
    } else if not_ok.is_empty() {
        ExecutionStatus::Succeeded
    } else if not_ok.iter().all(|o| o.status == ExecutionStatus::TimedOut) {
        ExecutionStatus::TimedOut
    } else {
        ExecutionStatus::Failed
    };
    let error = match (total, not_ok.as_slice()) {
        (_, []) => None,
        (1, [only]) => only.error.clone(),
        (_, failed) => {
            let named: Vec<String> = failed
                .iter()
                .take(5)
                .map(|o| format!("{} ({})", o.host, o.error.as_deref().unwrap_or("failed")))
                .collect();
            let more = if failed.len() > 5 {
                format!(" and {} more", failed.len() - 5)
            } else {
                String::new()
            };
            Some(format!(
                "{} of {total} hosts did not succeed: {}{more}",
                failed.len(),
                named.join(", ")
            ))
        }
    };
    let exit_code = match outcomes.as_slice() {
        [only] => only.exit_code,
        _ => None,
    };
    let result = serde_json::json!({
        "hosts": outcomes,
        "summary": {"total": total, "succeeded": ok, "not_succeeded": total - ok},
    });
    RunOutcome {
        status,
        exit_code,
        result: Some(out.masker.mask_json(result)),
        error: error.map(|e| out.masker.mask(&e)),
        output_bytes: out.bytes,
        output_truncated: out.truncated,
        artifacts: Vec::new(),
    }
}

/// The first line a remote command writes to stderr: its process id, which
/// is also its process group's (sshd starts each session in a new one), so
/// that a stop can signal the whole group. Never shown.
const PID_PREAMBLE: &str = "switchboard-pid:";

/// The command line the remote shell runs: a preamble that reports the
/// process id, then `exec` of the command with every argv element
/// single-quoted, so the shell splits it back into exactly these elements
/// and expands nothing inside them.
pub fn remote_command(argv: &[String]) -> Result<String, String> {
    Ok(format!(
        "printf '{PID_PREAMBLE}%s\\n' \"$$\" >&2; exec {}",
        quote_arguments(argv)?
    ))
}

/// Every element single-quoted for a POSIX shell, separated by spaces.
pub fn quote_arguments(argv: &[String]) -> Result<String, String> {
    let mut line = String::new();
    for (i, arg) in argv.iter().enumerate() {
        if arg.contains('\0') {
            return Err(format!(
                "command element {i} contains a NUL byte, which no remote argument can hold"
            ));
        }
        if i > 0 {
            line.push(' ');
        }
        line.push('\'');
        line.push_str(&arg.replace('\'', r"'\''"));
        line.push('\'');
    }
    Ok(line)
}

/// Where a host's output lines go: the run's collector, tagged with the host.
struct HostLines {
    index: usize,
    tx: mpsc::Sender<(usize, Stream, String)>,
}

impl HostLines {
    async fn send(&self, stream: Stream, text: String) {
        let _ = self.tx.send((self.index, stream, text)).await;
    }
}

/// Stops the remote command's process group: `kill` run in a second
/// session of the same connection (sshd refuses the protocol's own signal
/// request for root logins, and a dropped connection does not end a
/// command without a terminal), and the protocol's signal request too.
async fn signal_remote(
    session: &client::Handle<HostKeyCheck>,
    channel: &russh::Channel<client::Msg>,
    pid: Option<u32>,
    signal: Sig,
) {
    let _ = channel.signal(signal.clone()).await;
    let Some(pid) = pid.filter(|p| *p > 1) else {
        return;
    };
    let name = if matches!(signal, Sig::KILL) {
        "KILL"
    } else {
        "TERM"
    };
    let kill = async {
        let mut side = session.channel_open_session().await.ok()?;
        side.exec(false, format!("kill -s {name} -- -{pid}"))
            .await
            .ok()?;
        while let Some(msg) = side.wait().await {
            if matches!(msg, ChannelMsg::Close) {
                break;
            }
        }
        Some(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), kill).await;
}

async fn run_host(
    connector: &Connector,
    host: &Host,
    command_line: &str,
    timeout: Duration,
    kill_grace: Duration,
    lines: HostLines,
    mut cancel: watch::Receiver<bool>,
) -> HostOutcome {
    let started = Instant::now();
    let end = |status, exit_code, error: Option<String>| HostOutcome {
        host: host.name.clone(),
        status,
        exit_code,
        error,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    if *cancel.borrow() {
        return end(ExecutionStatus::Cancelled, None, Some("cancelled".into()));
    }
    let connected = tokio::select! {
        c = tokio::time::timeout(connector.settings.connect_timeout, connector.connect(host)) => c,
        _ = cancel.wait_for(|c| *c) => return end(ExecutionStatus::Cancelled, None, Some("cancelled".into())),
    };
    let session = match connected {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return end(ExecutionStatus::Failed, None, Some(e)),
        Err(_) => {
            return end(
                ExecutionStatus::Failed,
                None,
                Some(format!(
                    "could not connect within {}",
                    humantime::format_duration(connector.settings.connect_timeout)
                )),
            );
        }
    };
    let mut channel = match session.channel_open_session().await {
        Ok(c) => c,
        Err(e) => {
            return end(
                ExecutionStatus::Failed,
                None,
                Some(format!("could not open a session: {e}")),
            );
        }
    };
    if let Err(e) = channel.exec(true, command_line).await {
        return end(
            ExecutionStatus::Failed,
            None,
            Some(format!("could not start the command: {e}")),
        );
    }

    let mut stdout = LineSplitter::default();
    let mut stderr = LineSplitter::default();
    let mut exit_code = None;
    let mut exit_signal = None;
    let mut stopped: Option<ExecutionStatus> = None;
    // The remote process group, as the command line's preamble reports it.
    let mut remote_pid: Option<u32> = None;
    let mut killed = false;
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    // After SIGTERM, the time the command gets before SIGKILL; after
    // SIGKILL, the time its session gets to report its end.
    let grace = tokio::time::sleep(Duration::from_secs(365 * 24 * 3600));
    tokio::pin!(grace);
    loop {
        tokio::select! {
            msg = channel.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    for line in stdout.push(&data) {
                        lines.send(Stream::Stdout, line).await;
                    }
                }
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    for line in stderr.push(&data) {
                        match line.strip_prefix(PID_PREAMBLE).filter(|_| remote_pid.is_none()) {
                            Some(pid) => remote_pid = Some(pid.parse().unwrap_or(0)),
                            None => lines.send(Stream::Stderr, line).await,
                        }
                    }
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    exit_code = Some(i32::try_from(exit_status).unwrap_or(i32::MAX));
                }
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                    exit_signal = Some(format!("{signal_name:?}"));
                }
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            },
            () = &mut deadline, if stopped.is_none() => {
                stopped = Some(ExecutionStatus::TimedOut);
                signal_remote(&session, &channel, remote_pid, Sig::TERM).await;
                grace.as_mut().reset(tokio::time::Instant::now() + kill_grace);
            }
            _ = cancel.changed(), if stopped.is_none() => {
                if *cancel.borrow() {
                    stopped = Some(ExecutionStatus::Cancelled);
                    signal_remote(&session, &channel, remote_pid, Sig::TERM).await;
                    grace.as_mut().reset(tokio::time::Instant::now() + kill_grace);
                }
            }
            () = &mut grace, if stopped.is_some() => {
                if killed {
                    break;
                }
                killed = true;
                signal_remote(&session, &channel, remote_pid, Sig::KILL).await;
                grace.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(2));
            }
        }
    }
    for (splitter, stream) in [(&mut stdout, Stream::Stdout), (&mut stderr, Stream::Stderr)] {
        if let Some(rest) = splitter.finish() {
            lines.send(stream, rest).await;
        }
    }
    let _ = channel.close().await;
    let _ = session
        .disconnect(Disconnect::ByApplication, "done", "en")
        .await;
    match (stopped, exit_code) {
        (Some(ExecutionStatus::TimedOut), _) => end(
            ExecutionStatus::TimedOut,
            exit_code,
            Some(format!(
                "timed out after {}",
                humantime::format_duration(timeout)
            )),
        ),
        (Some(_), _) => end(
            ExecutionStatus::Cancelled,
            exit_code,
            Some("cancelled".into()),
        ),
        (None, Some(0)) => end(ExecutionStatus::Succeeded, Some(0), None),
        (None, Some(code)) => end(
            ExecutionStatus::Failed,
            Some(code),
            Some(format!("exited with status {code}")),
        ),
        (None, None) => end(
            ExecutionStatus::Failed,
            None,
            Some(match exit_signal {
                Some(s) => format!("killed by signal {s}"),
                None => "the connection closed before the command reported its end".to_owned(),
            }),
        ),
    }
}

/// Opens authenticated sessions: the key loaded once per run, the jump
/// host connected once per run.
struct Connector {
    settings: SshSettings,
    known_hosts: PathBuf,
    key: Arc<PrivateKey>,
    config: Arc<client::Config>,
    jump: Option<client::Handle<HostKeyCheck>>,
}

impl Connector {
    async fn new(settings: &SshSettings) -> Result<Self, String> {
        let known_hosts = settings.known_hosts.clone().ok_or(
            "SSH is not set up on this node: set `[ssh] known_hosts` (and `key`) in the configuration",
        )?;
        let key_ref = settings
            .key
            .as_ref()
            .ok_or("SSH is not set up on this node: set `[ssh] key` to a secret reference (`file:PATH` or `env:NAME`) holding the private key")?;
        let key_text = key_ref.resolve().map_err(|e| format!("SSH key: {e}"))?;
        let passphrase = match &settings.key_passphrase {
            Some(r) => Some(
                r.resolve()
                    .map_err(|e| format!("SSH key passphrase: {e}"))?,
            ),
            None => None,
        };
        let key = russh::keys::decode_secret_key(
            key_text.expose(),
            passphrase.as_ref().map(|p| p.expose().as_str()),
        )
        .map_err(|e| format!("SSH key: cannot read it as an OpenSSH private key: {e}"))?;
        let config = Arc::new(client::Config {
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 4,
            nodelay: true,
            ..client::Config::default()
        });
        let mut connector = Self {
            settings: settings.clone(),
            known_hosts,
            key: Arc::new(key),
            config,
            jump: None,
        };
        if let Some(jump) = &settings.jump {
            let host = Host {
                name: jump.address.clone(),
                address: jump.address.clone(),
                port: jump.port,
                user: jump.user.clone(),
                tags: Default::default(),
                groups: Default::default(),
                vars: Default::default(),
            };
            let handle = tokio::time::timeout(settings.connect_timeout, connector.connect(&host))
                .await
                .map_err(|_| {
                    format!(
                        "jump host {}: could not connect within {}",
                        jump.address,
                        humantime::format_duration(settings.connect_timeout)
                    )
                })?
                .map_err(|e| format!("jump host {}: {e}", jump.address))?;
            connector.jump = Some(handle);
        }
        Ok(connector)
    }

    /// A signed-in session with `host`, its key checked.
    async fn connect(&self, host: &Host) -> Result<client::Handle<HostKeyCheck>, String> {
        let check = HostKeyCheck {
            known_hosts: self.known_hosts.clone(),
            policy: self.settings.host_key_policy,
            names: vec![
                (host.address.clone(), host.port),
                (host.name.clone(), host.port),
            ],
            shown: host.name.clone(),
            refusal: Arc::new(Mutex::new(None)),
        };
        let refusal = check.refusal.clone();
        let why = |e: russh::Error| -> String {
            let refused = refusal
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            refused.unwrap_or_else(|| describe(&e))
        };
        let mut handle = match &self.jump {
            None => client::connect(
                self.config.clone(),
                (host.address.as_str(), host.port),
                check,
            )
            .await
            .map_err(why)?,
            Some(jump) => {
                let tunnel = jump
                    .channel_open_direct_tcpip(
                        host.address.clone(),
                        u32::from(host.port),
                        "127.0.0.1",
                        0,
                    )
                    .await
                    .map_err(|e| format!("the jump host could not reach {}: {e}", host.address))?;
                client::connect_stream(self.config.clone(), tunnel.into_stream(), check)
                    .await
                    .map_err(why)?
            }
        };
        let user = host.user.as_deref().unwrap_or(&self.settings.user);
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .ok()
            .flatten()
            .flatten();
        let auth = handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(self.key.clone(), hash))
            .await
            .map_err(|e| format!("signing in as `{user}` failed: {}", describe(&e)))?;
        if !auth.success() {
            return Err(format!(
                "the host refused the key for user `{user}` (is the public key in that user's authorized_keys?)"
            ));
        }
        Ok(handle)
    }

    async fn close(&self) {
        if let Some(jump) = &self.jump {
            let _ = jump
                .disconnect(Disconnect::ByApplication, "done", "en")
                .await;
        }
    }
}

fn describe(e: &russh::Error) -> String {
    match e {
        // What sshd does to connections past its `MaxStartups` while many
        // are still signing in: the likely cause in a wide fan-out.
        russh::Error::IO(io) if io.kind() == std::io::ErrorKind::ConnectionReset => format!(
            "cannot connect: {io} (if many hosts share one sshd, it may be dropping connections past its MaxStartups: lower [ssh] concurrency or raise MaxStartups)"
        ),
        russh::Error::IO(io) => format!("cannot connect: {io}"),
        other => other.to_string(),
    }
}

/// Serializes appends to known_hosts (hosts of one fan-out learn at once).
static KNOWN_HOSTS_WRITE: Mutex<()> = Mutex::new(());

/// Checks a server's key against known_hosts; keeps the reason of a refusal
/// for the error message, which the SSH library cannot carry.
struct HostKeyCheck {
    known_hosts: PathBuf,
    policy: HostKeyPolicy,
    /// The names the host may be listed under, first the address connected to.
    names: Vec<(String, u16)>,
    shown: String,
    refusal: Arc<Mutex<Option<String>>>,
}

impl HostKeyCheck {
    fn refuse(&self, why: String) -> bool {
        *self
            .refusal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why);
        false
    }

    fn decide(&self, key: &PublicKey) -> bool {
        let fingerprint = key.fingerprint(HashAlg::Sha256);
        let path = self.known_hosts.display();
        match known_host_status(&self.known_hosts, &self.names, key) {
            Err(e) => self.refuse(format!("cannot read known_hosts {path}: {e}")),
            Ok(KnownHost::Known) => true,
            Ok(KnownHost::Changed { line }) => self.refuse(format!(
                "HOST KEY MISMATCH for {}: it presents {} {fingerprint}, which differs from {path} line {line}. \
                 Someone may be intercepting the connection, or the host was reinstalled; \
                 if you have checked, replace that line",
                self.shown,
                key.algorithm()
            )),
            Ok(KnownHost::Revoked { line }) => self.refuse(format!(
                "the host key of {} ({} {fingerprint}) is revoked in {path} line {line}",
                self.shown,
                key.algorithm()
            )),
            Ok(KnownHost::OtherType { line }) => self.refuse(format!(
                "{} presents a {} key ({fingerprint}), but {path} lists it only with a key of another type \
                 (line {line}); if the host's keys were changed on purpose, add the new one",
                self.shown,
                key.algorithm()
            )),
            Ok(KnownHost::Unknown) if self.policy == HostKeyPolicy::AcceptNew => {
                let _guard = KNOWN_HOSTS_WRITE
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let (address, port) = &self.names[0];
                match russh::keys::known_hosts::learn_known_hosts_path(
                    address,
                    *port,
                    key,
                    &self.known_hosts,
                ) {
                    Ok(()) => {
                        tracing::warn!(host = %self.shown, %fingerprint, "learned a new host key (host_key_policy = accept-new)");
                        true
                    }
                    Err(e) => self.refuse(format!("cannot record the host key in {path}: {e}")),
                }
            }
            Ok(KnownHost::Unknown) => {
                let (address, port) = &self.names[0];
                self.refuse(format!(
                    "host key of {} is not in {path}: it presents {} {fingerprint}; after checking that \
                     fingerprint, add it (e.g. `ssh-keyscan -p {port} {address} >> {path}`)",
                    self.shown,
                    key.algorithm()
                ))
            }
        }
    }
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self.decide(key),
            PublicKeyOrCertificate::Certificate(_) => self.refuse(format!(
                "{} presents a host certificate; only host keys listed in known_hosts are accepted",
                self.shown
            )),
        })
    }
}

/// What known_hosts says of a key.
#[derive(Debug, PartialEq, Eq)]
pub enum KnownHost {
    Known,
    /// Listed with another key of the same algorithm (at this line).
    Changed {
        line: usize,
    },
    /// Listed only with keys of other algorithms (the first at this line).
    OtherType {
        line: usize,
    },
    /// Marked `@revoked` (at this line), whatever host it is listed for.
    Revoked {
        line: usize,
    },
    Unknown,
}

/// Looks `key` up under each of `names` (`(host, port)`).
pub fn known_host_status(
    path: &std::path::Path,
    names: &[(String, u16)],
    key: &PublicKey,
) -> Result<KnownHost, String> {
    if let Some(line) = revoked_line(path, key) {
        return Ok(KnownHost::Revoked { line });
    }
    let mut changed = None;
    let mut other = None;
    for (name, port) in names {
        let listed = russh::keys::known_hosts::known_host_keys_path(name, *port, path)
            .map_err(|e| e.to_string())?;
        for (line, recorded) in listed {
            if recorded == *key {
                return Ok(KnownHost::Known);
            }
            if recorded.algorithm() == key.algorithm() {
                changed.get_or_insert(line);
            } else {
                other.get_or_insert(line);
            }
        }
    }
    Ok(match (changed, other) {
        (Some(entry), _) => KnownHost::Changed {
            line: file_line(path, entry),
        },
        (None, Some(entry)) => KnownHost::OtherType {
            line: file_line(path, entry),
        },
        (None, None) => KnownHost::Unknown,
    })
}

/// The line marking `key` `@revoked`, if any (the SSH library skips them).
fn revoked_line(path: &std::path::Path, key: &PublicKey) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    let presented = key.to_openssh().ok()?;
    let base64 = presented.split_whitespace().nth(1)?;
    text.lines()
        .position(|line| {
            let mut fields = line.split_whitespace();
            fields.next() == Some("@revoked") && fields.nth(2) == Some(base64)
        })
        .map(|index| index + 1)
}

/// The line of the file that holds the `entry`-th entry as the SSH library
/// counts them (it does not count comment lines).
fn file_line(path: &std::path::Path, entry: usize) -> usize {
    let Ok(text) = std::fs::read_to_string(path) else {
        return entry;
    };
    let mut counted = 0;
    for (index, line) in text.lines().enumerate() {
        if !line.starts_with('#') {
            counted += 1;
            if counted == entry {
                return index + 1;
            }
        }
    }
    entry
}

#[cfg(test)]
mod tests;
