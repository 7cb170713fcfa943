use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use switchboard_core::{Action, ActionName, ParamSpec, ParamType, RawParams, Runner};

use super::*;
use crate::runner::private_dir;

fn action(command: &[&str], params: Vec<ParamSpec>, timeout: Duration) -> Action {
    Action {
        name: ActionName::new("t.t").unwrap(),
        description: "test".into(),
        runner: Runner::Local,
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        timeout,
        tags: vec![],
        params,
        aliases: vec![],
        concurrency: None,
        env: BTreeMap::new(),
        working_dir: None,
        idempotent: false,
        approval: None,
        http: None,
        graph: None,
        workflow: None,
        file: "actions/t.toml".into(),
    }
}

struct Ran {
    outcome: RunOutcome,
    lines: Vec<(Stream, String)>,
}

async fn run_with(
    action: &Action,
    raw: RawParams,
    limits: RunLimits,
    cancel_after: Option<Duration>,
) -> Ran {
    let dir = tempfile::tempdir().unwrap();
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
    let job = LocalRun {
        action,
        params: &params,
        catalog_root: dir.path(),
        execution_id: Some(ExecutionId(1)),
        limits: &limits,
        temp_dir: &private_dir(dir.path(), "runs").unwrap(),
    };
    let outcome = run(job, tx, cancel_rx).await;
    Ran {
        outcome,
        lines: collector.await.unwrap(),
    }
}

fn stdout(ran: &Ran) -> Vec<&str> {
    ran.lines
        .iter()
        .filter(|(s, _)| *s == Stream::Stdout)
        .map(|(_, t)| t.as_str())
        .collect()
}

/// Whether a process exists and is not a zombie waiting to be reaped.
fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test]
async fn injection_attempts_are_plain_arguments() {
    let a = action(
        &["printf", "%s\\n", "{{ msg }}"],
        vec![ParamSpec::new("msg", ParamType::String)],
        Duration::from_secs(5),
    );
    for evil in ["x; touch /tmp/pwned", "$(id)", "`id`", "a\nb", "' \" \\"] {
        let ran = run_with(
            &a,
            [("msg".to_owned(), json!(evil))].into(),
            RunLimits::default(),
            None,
        )
        .await;
        assert_eq!(ran.outcome.status, ExecutionStatus::Succeeded);
        assert_eq!(stdout(&ran).join("\n"), evil);
    }
}

#[tokio::test]
async fn params_arrive_in_the_environment_and_the_server_env_does_not() {
    // SAFETY-free: set before the child spawns; the child gets a cleared env.
    let a = action(
        &[
            "sh",
            "-c",
            "echo \"$SB_PARAM_LINES|$SB_ACTION|${SWITCHBOARD_ADMIN_TOKEN:-unset}\"",
        ],
        vec![ParamSpec::new("lines", ParamType::Integer)],
        Duration::from_secs(5),
    );
    let ran = run_with(
        &a,
        [("lines".to_owned(), json!("12"))].into(),
        RunLimits::default(),
        None,
    )
    .await;
    assert_eq!(stdout(&ran), ["12|t.t|unset"]);
}

#[tokio::test]
async fn timeout_kills_the_whole_process_tree() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pids");
    let script = format!(
        "sleep 300 & echo $! > {p}; echo started; trap '' TERM; sleep 300",
        p = pidfile.display()
    );
    let a = action(&["sh", "-c", &script], vec![], Duration::from_millis(500));
    let limits = RunLimits {
        kill_grace: Duration::from_millis(300),
        ..RunLimits::default()
    };
    let ran = run_with(&a, RawParams::new(), limits, None).await;
    assert_eq!(ran.outcome.status, ExecutionStatus::TimedOut);
    assert!(
        ran.lines
            .iter()
            .any(|(s, t)| *s == Stream::System && t.contains("timed out"))
    );
    let grandchild: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pid_alive(grandchild), "grandchild {grandchild} survived");
}

#[tokio::test]
async fn cancel_stops_the_run() {
    let a = action(
        &["sh", "-c", "echo begin; sleep 30; echo never"],
        vec![],
        Duration::from_secs(60),
    );
    let ran = run_with(
        &a,
        RawParams::new(),
        RunLimits::default(),
        Some(Duration::from_millis(300)),
    )
    .await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Cancelled);
    assert_eq!(stdout(&ran), ["begin"]);
}

#[tokio::test]
async fn background_children_do_not_outlive_a_finished_run() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = format!(
        "sleep 300 > /dev/null 2>&1 & echo $! > {}; echo done",
        pidfile.display()
    );
    let a = action(&["sh", "-c", &script], vec![], Duration::from_secs(10));
    let ran = run_with(&a, RawParams::new(), RunLimits::default(), None).await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Succeeded);
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pid_alive(pid));
}

#[tokio::test]
async fn output_is_capped_with_a_visible_marker() {
    let a = action(
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 1000 ]; do echo line-$i; i=$((i+1)); done",
        ],
        vec![],
        Duration::from_secs(10),
    );
    let limits = RunLimits {
        max_output_bytes: 100,
        ..RunLimits::default()
    };
    let ran = run_with(&a, RawParams::new(), limits, None).await;
    assert!(ran.outcome.output_truncated);
    assert!(ran.outcome.output_bytes > 5000);
    assert!(stdout(&ran).len() < 20);
    assert!(ran.lines.last().unwrap().1.contains("output truncated"));
}

#[tokio::test]
async fn secrets_are_masked_in_output_and_result() {
    let a = action(
        &[
            "sh",
            "-c",
            "echo \"token=$1\" >&2; printf '{\"t\": \"%s\"}' \"$1\" > \"$SB_RESULT\"",
            "sh",
            "{{ token }}",
        ],
        vec![ParamSpec::new("token", ParamType::Secret)],
        Duration::from_secs(5),
    );
    let ran = run_with(
        &a,
        [("token".to_owned(), json!("hunter2"))].into(),
        RunLimits::default(),
        None,
    )
    .await;
    assert_eq!(ran.lines, [(Stream::Stderr, "token=****".to_owned())]);
    assert_eq!(ran.outcome.result, Some(json!({"t": "****"})));
}

#[tokio::test]
async fn failures_say_why() {
    let a = action(&["sh", "-c", "exit 3"], vec![], Duration::from_secs(5));
    let ran = run_with(&a, RawParams::new(), RunLimits::default(), None).await;
    assert_eq!(
        (ran.outcome.status, ran.outcome.exit_code),
        (ExecutionStatus::Failed, Some(3))
    );
    let a = action(&["/nonexistent/program"], vec![], Duration::from_secs(5));
    let ran = run_with(&a, RawParams::new(), RunLimits::default(), None).await;
    assert!(ran.outcome.error.unwrap().contains("cannot start"));
    let a = action(
        &["sh", "-c", "echo '{not json' > \"$SB_RESULT\""],
        vec![],
        Duration::from_secs(5),
    );
    let ran = run_with(&a, RawParams::new(), RunLimits::default(), None).await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Succeeded);
    assert!(ran.lines.iter().any(|(_, t)| t.contains("not valid JSON")));
}
