//! The SSH runner against a real OpenSSH server on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::sshd::Sshd;
use switchboard_core::inventory::Host;
use switchboard_core::secret::SecretRef;
use switchboard_core::{
    Action, ActionName, ExecutionStatus, ParamSpec, ParamType, RawParams, Runner, Stream,
    ValidatedParams,
};
use switchboard_engine::runner::ssh::{self, HostKeyPolicy, JumpHost, SshRun, SshSettings};
use switchboard_engine::{RunEvent, RunLimits, RunOutcome};
use tokio::sync::{mpsc, watch};

fn action(command: &[&str], timeout: Duration) -> Action {
    let mut host = ParamSpec::new("host", ParamType::Host);
    host.required = true;
    let text = ParamSpec::new("text", ParamType::String);
    let token = ParamSpec::new("token", ParamType::Secret);
    Action {
        name: ActionName::new("remote.test").unwrap(),
        description: "test".into(),
        runner: Runner::Ssh,
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        timeout,
        tags: vec![],
        params: vec![host, text, token],
        aliases: vec![],
        concurrency: None,
        env: BTreeMap::new(),
        working_dir: None,
        idempotent: false,
        approval: None,
        http: None,
        graph: None,
        workflow: None,
        file: "actions/remote.toml".into(),
    }
}

fn host(name: &str, port: u16) -> Host {
    Host {
        name: name.into(),
        address: "127.0.0.1".into(),
        port,
        user: None,
        tags: Default::default(),
        groups: Default::default(),
        vars: Default::default(),
    }
}

fn settings(sshd: &Sshd) -> SshSettings {
    SshSettings {
        known_hosts: Some(sshd.known_hosts.clone()),
        key: Some(SecretRef::File(sshd.client_key.clone())),
        user: sshd.user.clone(),
        connect_timeout: Duration::from_secs(10),
        ..SshSettings::default()
    }
}

struct Ran {
    outcome: RunOutcome,
    lines: Vec<(Stream, String)>,
}

impl Ran {
    fn text(&self, stream: Stream) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, t)| t.as_str())
            .collect()
    }
}

async fn run(
    action: &Action,
    params: &[(&str, &str)],
    targets: &[Host],
    settings: &SshSettings,
    cancel_after: Option<Duration>,
) -> Ran {
    let mut raw: RawParams = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::json!(v)))
        .collect();
    raw.entry("host".into())
        .or_insert(serde_json::json!("test"));
    let params = ValidatedParams::validate(&action.params, &raw).unwrap();
    let (tx, mut rx) = mpsc::channel(1024);
    let (cancel_tx, cancel_rx) = watch::channel(false);
    if let Some(after) = cancel_after {
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = cancel_tx.send(true);
        });
    } else {
        std::mem::forget(cancel_tx);
    }
    let collector = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(ev) = rx.recv().await {
            if let RunEvent::Output(c) = ev {
                lines.push((c.stream, c.text));
            }
        }
        lines
    });
    let limits = RunLimits::default();
    let outcome = ssh::run(
        SshRun {
            action,
            params: &params,
            targets,
            settings,
            limits: &limits,
        },
        tx,
        cancel_rx,
    )
    .await;
    let lines = collector.await.unwrap();
    Ran { outcome, lines }
}

#[tokio::test]
async fn runs_a_command_and_hostile_parameters_arrive_as_single_arguments() {
    let sshd = Sshd::start();
    let a = action(
        &[
            "printf",
            "[%s]\\n",
            "{{ text }}",
            "two words",
            "{{ token }}",
        ],
        Duration::from_secs(30),
    );
    let hostile = "$(touch /tmp/pwned); `id` 'q' \"d\" * \\ | & > x";
    let ran = run(
        &a,
        &[("text", hostile), ("token", "s3cret-value")],
        &[host("web-1", sshd.port)],
        &settings(&sshd),
        None,
    )
    .await;
    assert_eq!(
        ran.outcome.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        ran.outcome,
        ran.lines
    );
    assert_eq!(ran.outcome.exit_code, Some(0));
    assert_eq!(
        ran.text(Stream::Stdout),
        [format!("[{hostile}]").as_str(), "[two words]", "[****]"],
        "one argument each, nothing expanded, the secret masked"
    );
    let result = ran.outcome.result.unwrap();
    assert_eq!(result["hosts"][0]["host"], "web-1");
    assert_eq!(result["hosts"][0]["exit_code"], 0);
    assert_eq!(result["summary"]["succeeded"], 1);
}

#[tokio::test]
async fn fans_out_labels_output_by_host_and_summarizes() {
    let sshd = Sshd::start();
    // `{{ host }}` is each host's own name, not the selector.
    let a = action(
        &[
            "sh",
            "-c",
            "echo out $0; echo err >&2; exit {{ text }}",
            "{{ host }}",
        ],
        Duration::from_secs(30),
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let targets = [
        host("web-1", sshd.port),
        host("web-2", sshd.port),
        host("web-3", sshd.port),
        host("gone-1", closed_port),
    ];
    let mut s = settings(&sshd);
    s.concurrency = 2;
    let ran = run(&a, &[("text", "0")], &targets, &s, None).await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Failed);
    for name in ["web-1", "web-2", "web-3"] {
        assert!(
            ran.text(Stream::Stdout)
                .contains(&format!("[{name}] out {name}").as_str()),
            "{:?}",
            ran.lines
        );
        assert!(
            ran.text(Stream::Stderr)
                .contains(&format!("[{name}] err").as_str()),
            "{:?}",
            ran.lines
        );
    }
    let error = ran.outcome.error.clone().unwrap();
    assert!(
        error.starts_with("1 of 4 hosts did not succeed: gone-1 (cannot connect"),
        "{error}"
    );
    let system = ran.text(Stream::System);
    assert_eq!(system.last(), Some(&"4 hosts: 3 succeeded, 1 did not"));
    let result = ran.outcome.result.unwrap();
    let hosts: Vec<&str> = result["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(
        hosts,
        ["web-1", "web-2", "web-3", "gone-1"],
        "reported in the order named"
    );
    assert_eq!(result["summary"]["succeeded"], 3);
    assert_eq!(result["hosts"][3]["status"], "failed");

    // Exit codes per host.
    let ran = run(&a, &[("text", "3")], &targets[..2], &s, None).await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Failed);
    let result = ran.outcome.result.unwrap();
    assert_eq!(result["hosts"][0]["exit_code"], 3);
    assert_eq!(result["hosts"][1]["exit_code"], 3);
}

#[tokio::test]
async fn host_keys_are_checked_strictly_unless_accept_new_is_configured() {
    let sshd = Sshd::start();
    let a = action(&["true"], Duration::from_secs(30));
    let targets = [host("web-1", sshd.port)];

    // Unknown: refused, with the fingerprint and how to add it.
    let mut s = settings(&sshd);
    let empty = sshd.dir.path().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    s.known_hosts = Some(empty.clone());
    let ran = run(&a, &[], &targets, &s, None).await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Failed);
    let error = ran.outcome.error.unwrap();
    assert!(error.contains("host key of web-1 is not in"), "{error}");
    assert!(error.contains("SHA256:"), "{error}");
    assert!(
        error.contains(&format!("ssh-keyscan -p {} 127.0.0.1", sshd.port)),
        "{error}"
    );

    // Changed: always refused, even with accept-new.
    let other = crate::support::sshd::keygen(&sshd.dir.path().join("other_host_key"));
    let changed = sshd.dir.path().join("changed_known_hosts");
    std::fs::write(&changed, format!("[127.0.0.1]:{} {other}\n", sshd.port)).unwrap();
    s.known_hosts = Some(changed);
    s.host_key_policy = HostKeyPolicy::AcceptNew;
    let ran = run(&a, &[], &targets, &s, None).await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Failed);
    let error = ran.outcome.error.unwrap();
    assert!(error.contains("HOST KEY MISMATCH for web-1"), "{error}");
    assert!(error.contains("line 1"), "{error}");

    // Unknown with accept-new: recorded, then known.
    s.known_hosts = Some(empty.clone());
    let ran = run(&a, &[], &targets, &s, None).await;
    assert_eq!(
        ran.outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        ran.outcome
    );
    let learned = std::fs::read_to_string(&empty).unwrap();
    assert!(
        learned.contains(&format!("[127.0.0.1]:{}", sshd.port)),
        "{learned}"
    );
    s.host_key_policy = HostKeyPolicy::Strict;
    let ran = run(&a, &[], &targets, &s, None).await;
    assert_eq!(
        ran.outcome.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        ran.outcome
    );
}

#[tokio::test]
async fn a_key_the_host_does_not_accept_is_a_clear_error() {
    let sshd = Sshd::start();
    let stranger = sshd.dir.path().join("stranger_key");
    crate::support::sshd::keygen(&stranger);
    let mut s = settings(&sshd);
    s.key = Some(SecretRef::File(stranger));
    let ran = run(
        &action(&["true"], Duration::from_secs(30)),
        &[],
        &[host("web-1", sshd.port)],
        &s,
        None,
    )
    .await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Failed);
    let error = ran.outcome.error.unwrap();
    assert!(
        error.contains(&format!(
            "the host refused the key for user `{}`",
            sshd.user
        )),
        "{error}"
    );

    s.key = Some(SecretRef::File(sshd.dir.path().join("no_such_key")));
    let ran = run(
        &action(&["true"], Duration::from_secs(30)),
        &[],
        &[host("web-1", sshd.port)],
        &s,
        None,
    )
    .await;
    assert!(ran.outcome.error.unwrap().starts_with("SSH key: "));

    let unset = SshSettings::default();
    let ran = run(
        &action(&["true"], Duration::from_secs(30)),
        &[],
        &[host("web-1", sshd.port)],
        &unset,
        None,
    )
    .await;
    assert!(
        ran.outcome
            .error
            .unwrap()
            .contains("set `[ssh] known_hosts`")
    );
}

/// Whether a process whose command line contains `marker` is running.
fn running(marker: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", marker])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

async fn gone(marker: &str) -> bool {
    for _ in 0..100 {
        if !running(marker) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn a_timeout_stops_the_remote_command() {
    let sshd = Sshd::start();
    let a = action(&["sleep", "{{ text }}"], Duration::from_secs(1));
    let ran = run(
        &a,
        &[("text", "731.25")],
        &[host("web-1", sshd.port)],
        &settings(&sshd),
        None,
    )
    .await;
    assert_eq!(
        ran.outcome.status,
        ExecutionStatus::TimedOut,
        "{:?}",
        ran.outcome
    );
    assert_eq!(ran.outcome.error.as_deref(), Some("timed out after 1s"));
    assert!(
        gone("sleep 731.25").await,
        "the remote sleep outlived its timeout"
    );
}

#[tokio::test]
async fn cancelling_stops_every_host() {
    let sshd = Sshd::start();
    let a = action(&["sleep", "{{ text }}"], Duration::from_secs(60));
    let targets = [host("web-1", sshd.port), host("web-2", sshd.port)];
    let ran = run(
        &a,
        &[("text", "842.5")],
        &targets,
        &settings(&sshd),
        Some(Duration::from_secs(2)),
    )
    .await;
    assert_eq!(
        ran.outcome.status,
        ExecutionStatus::Cancelled,
        "{:?}",
        ran.outcome
    );
    let result = ran.outcome.result.unwrap();
    assert_eq!(result["hosts"][0]["status"], "cancelled");
    assert_eq!(result["hosts"][1]["status"], "cancelled");
    assert!(
        gone("sleep 842.5").await,
        "a remote sleep outlived the cancel"
    );
}

#[tokio::test]
async fn connections_can_go_through_a_jump_host() {
    let jump = Sshd::start();
    let target = Sshd::start();
    // One known_hosts for both; one key both accept.
    let known = jump.dir.path().join("both_known_hosts");
    std::fs::write(
        &known,
        format!(
            "[127.0.0.1]:{} {}\n[127.0.0.1]:{} {}\n",
            jump.port, jump.host_key_line, target.port, target.host_key_line
        ),
    )
    .unwrap();
    let client_pub = std::fs::read_to_string(jump.client_key.with_extension("pub")).unwrap();
    std::fs::write(target.dir.path().join("authorized_keys"), client_pub).unwrap();
    let mut s = settings(&jump);
    s.known_hosts = Some(known);
    s.jump = Some(JumpHost {
        address: "127.0.0.1".into(),
        port: jump.port,
        user: Some(jump.user.clone()),
    });
    let a = action(&["echo", "through {{ text }}"], Duration::from_secs(30));
    let ran = run(
        &a,
        &[("text", "the jump")],
        &[host("inner-1", target.port)],
        &s,
        None,
    )
    .await;
    assert_eq!(
        ran.outcome.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        ran.outcome,
        ran.lines
    );
    assert_eq!(ran.text(Stream::Stdout), ["through the jump"]);

    // A jump host that is down fails the run with its name.
    s.jump = Some(JumpHost {
        address: "127.0.0.1".into(),
        port: 1,
        user: None,
    });
    let ran = run(
        &a,
        &[("text", "x")],
        &[host("inner-1", target.port)],
        &s,
        None,
    )
    .await;
    assert!(
        ran.outcome
            .error
            .unwrap()
            .starts_with("jump host 127.0.0.1: ")
    );
}
