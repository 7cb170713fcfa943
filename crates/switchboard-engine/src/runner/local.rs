//! The local runner: runs an action's argv as a child process in its own
//! process group, with a cleared environment plus `SB_*` variables, streams
//! its output line by line, and kills the whole group on timeout, on cancel,
//! and once the main process has exited (so nothing it started outlives it).
//!
//! Parameters reach the program only as separate argv elements and
//! environment variables; no shell ever sees them. A process that leaves the
//! group on purpose (`setsid`) escapes the kill; containing that needs cgroups
//! and is not attempted here.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use switchboard_core::template::render_command;
use switchboard_core::{
    Action, ExecutionId, ExecutionStatus, Masker, Stream, Timestamp, ValidatedParams,
};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

use super::output::{Output, read_lines};
use super::{RunEvent, RunLimits, RunOutcome};

/// Largest `$SB_RESULT` file read.
const MAX_RESULT_BYTES: u64 = 1024 * 1024;
/// How long to wait for the output pipes to close once the group is dead.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Environment variables passed through from Switchboard's own environment
/// (`PATH` too, set explicitly).
const PASSED_ENV: [&str; 7] = ["HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "TMPDIR"];

/// Everything the local runner needs for one run.
pub struct LocalRun<'a> {
    pub action: &'a Action,
    pub params: &'a ValidatedParams,
    pub catalog_root: &'a Path,
    pub execution_id: Option<ExecutionId>,
    pub limits: &'a RunLimits,
    /// A private folder (see [`super::private_dir`]) where `$SB_RESULT` files go.
    pub temp_dir: &'a Path,
}

/// Runs the action to its end. `cancel` turning `true` stops it.
pub async fn run(
    job: LocalRun<'_>,
    events: mpsc::Sender<RunEvent>,
    mut cancel: watch::Receiver<bool>,
) -> RunOutcome {
    let masker = Masker::new(job.params.secret_values().iter().cloned());
    let mut out = Output::new(events, masker, job.limits);
    let fail = |out: &Output, error: String| RunOutcome {
        status: ExecutionStatus::Failed,
        exit_code: None,
        result: None,
        error: Some(error),
        output_bytes: out.bytes,
        output_truncated: out.truncated,
        artifacts: Vec::new(),
    };

    let argv = match render_command(&job.action.command, job.params, &job.action.param_names()) {
        Ok(argv) => argv,
        Err(e) => return fail(&out, out.masker.mask(&e.to_string())),
    };
    let result_path = job.temp_dir.join(match job.execution_id {
        Some(id) => format!("result-{id}.json"),
        None => "result-local.json".to_owned(),
    });
    let _ = std::fs::remove_file(&result_path);
    let spawned = command(&job, &argv, &result_path).and_then(|mut cmd| {
        cmd.spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", argv[0]))
    });
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return fail(&out, e),
    };
    let _ = out.events.send(RunEvent::Started(Timestamp::now())).await;
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);

    let (line_tx, mut lines) = mpsc::channel::<(Stream, String)>(256);
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(read_lines(stdout, Stream::Stdout, line_tx.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(read_lines(stderr, Stream::Stderr, line_tx.clone()));
    }
    drop(line_tx);

    let timeout = tokio::time::sleep(job.action.timeout);
    tokio::pin!(timeout);
    let far = Duration::from_secs(365 * 24 * 3600);
    let kill = tokio::time::sleep(far);
    tokio::pin!(kill);
    let mut stopped: Option<ExecutionStatus> = None;
    let mut exit = None;
    let mut lines_open = true;
    let mut drain_deadline = None;

    loop {
        tokio::select! {
            line = lines.recv(), if lines_open => match line {
                Some((stream, text)) => out.emit(stream, text).await,
                None => lines_open = false,
            },
            status = child.wait(), if exit.is_none() => {
                exit = Some(status);
                signal_group(group, Signal::SIGKILL);
                drain_deadline = Some(tokio::time::Instant::now() + DRAIN_TIMEOUT);
            }
            () = &mut timeout, if stopped.is_none() && exit.is_none() => {
                stopped = Some(ExecutionStatus::TimedOut);
                out.system(format!("timed out after {}; stopping the process group", humanize(job.action.timeout))).await;
                signal_group(group, Signal::SIGTERM);
                kill.as_mut().reset(tokio::time::Instant::now() + job.limits.kill_grace);
            }
            changed = cancel.changed(), if stopped.is_none() && exit.is_none() => {
                if changed.is_err() || *cancel.borrow() {
                    stopped = Some(ExecutionStatus::Cancelled);
                    out.system("cancelled; stopping the process group".to_owned()).await;
                    signal_group(group, Signal::SIGTERM);
                    kill.as_mut().reset(tokio::time::Instant::now() + job.limits.kill_grace);
                }
            }
            () = &mut kill, if stopped.is_some() && exit.is_none() => {
                out.system(format!("still running {} after SIGTERM; sending SIGKILL", humanize(job.limits.kill_grace))).await;
                signal_group(group, Signal::SIGKILL);
                kill.as_mut().reset(tokio::time::Instant::now() + far);
            }
            () = sleep_until(drain_deadline), if lines_open => {
                out.system("output pipes still open after the process group was killed (a process left the group); not waiting".to_owned()).await;
                lines_open = false;
            }
        }
        if exit.is_some() && !lines_open {
            break;
        }
    }

    let result = read_result(&result_path, &mut out).await;
    let _ = std::fs::remove_file(&result_path);
    let (exit_code, signal) = match exit {
        Some(Ok(s)) => {
            use std::os::unix::process::ExitStatusExt;
            (s.code(), s.signal())
        }
        Some(Err(e)) => return fail(&out, format!("cannot wait for the process: {e}")),
        None => (None, None),
    };
    let (status, error) = match (stopped, exit_code) {
        (Some(ExecutionStatus::TimedOut), _) => (
            ExecutionStatus::TimedOut,
            Some(format!("timed out after {}", humanize(job.action.timeout))),
        ),
        (Some(s), _) => (s, Some("cancelled".to_owned())),
        (None, Some(0)) => (ExecutionStatus::Succeeded, None),
        (None, Some(code)) => (
            ExecutionStatus::Failed,
            Some(format!("exited with status {code}")),
        ),
        (None, None) => {
            let name = signal
                .and_then(|s| Signal::try_from(s).ok())
                .map_or("a signal", Signal::as_str);
            (ExecutionStatus::Failed, Some(format!("killed by {name}")))
        }
    };
    RunOutcome {
        status,
        exit_code,
        result,
        error,
        output_bytes: out.bytes,
        output_truncated: out.truncated,
        artifacts: Vec::new(),
    }
}

/// The PATH the command sees: Switchboard's own, or a sane default.
fn child_path() -> std::ffi::OsString {
    std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into())
}

/// Finds a bare program name in `path`. Resolving it here, rather than
/// letting the C library search, gives a clear error and lets the standard
/// library start the child with `posix_spawn` instead of a full `fork`.
fn find_in_path(name: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn command(job: &LocalRun<'_>, argv: &[String], result_path: &Path) -> Result<Command, String> {
    let path = child_path();
    let program = if argv[0].contains('/') {
        job.catalog_root.join(&argv[0])
    } else {
        find_in_path(&argv[0], &path)
            .ok_or_else(|| format!("cannot start `{}`: not found in PATH", argv[0]))?
    };
    let mut cmd = Command::new(program);
    cmd.args(&argv[1..])
        .current_dir(job.action.working_dir.as_ref().map_or_else(
            || job.catalog_root.to_path_buf(),
            |d| job.catalog_root.join(d),
        ))
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for name in PASSED_ENV {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    cmd.env("PATH", path);
    cmd.envs(&job.action.env);
    for (name, value) in job.params.iter() {
        cmd.env(
            format!("SB_PARAM_{}", name.to_ascii_uppercase()),
            value.render(),
        );
    }
    cmd.env("SB_RESULT", result_path)
        .env("SB_ACTION", job.action.name.as_str())
        .env("SB_CATALOG", job.catalog_root);
    if let Some(id) = job.execution_id {
        cmd.env("SB_EXECUTION_ID", id.to_string());
    }
    Ok(cmd)
}

fn signal_group(group: Option<Pid>, signal: Signal) {
    if let Some(pgid) = group {
        // ESRCH (nothing left in the group) is the normal case after an exit.
        let _ = killpg(pgid, signal);
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn humanize(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

async fn read_result(path: &Path, out: &mut Output) -> Option<serde_json::Value> {
    let meta = tokio::fs::metadata(path).await.ok()?;
    if meta.len() > MAX_RESULT_BYTES {
        out.system(format!(
            "result file ignored: larger than {MAX_RESULT_BYTES} bytes"
        ))
        .await;
        return None;
    }
    let bytes = tokio::fs::read(path).await.ok()?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(v) => Some(out.masker.mask_json(v)),
        Err(e) => {
            out.system(format!("result file ignored: not valid JSON: {e}"))
                .await;
            None
        }
    }
}

#[cfg(test)]
mod tests;
