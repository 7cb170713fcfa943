//! Commands that need no server: `catalog check` and `run --local`.
//!
//! `run --local` runs an action straight from a catalog folder, with the same
//! runner, validation and masking as the daemon, and appends a record of the
//! run to a local spool file (JSON lines, documented in `docs/cli.md`) so that
//! it can be uploaded to the audit log once the server is back.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use switchboard_core::offline::{OfflineRun, SPOOL_VERSION};
use switchboard_core::{Catalog, Timestamp, ValidatedParams};
use switchboard_engine::{RunEvent, RunLimits};
use tokio::sync::{mpsc, watch};

use crate::cli::{OutputFormat, RunArgs};
use crate::client::parse_params;
use crate::terminal::{self, LivePrinter, exit_code_for};

pub fn check(dir: &Path, output: OutputFormat) -> anyhow::Result<u8> {
    match Catalog::load(dir) {
        Ok(catalog) => {
            if output == OutputFormat::Json {
                let v = serde_json::json!({"ok": true, "actions": catalog.len(), "version": catalog.version});
                println!("{v}");
            } else {
                println!(
                    "{}: {} actions, no errors (version {})",
                    dir.display(),
                    catalog.len(),
                    catalog.version
                );
            }
            Ok(terminal::EXIT_OK)
        }
        Err(errors) => {
            if output == OutputFormat::Json {
                println!("{}", serde_json::json!({"ok": false, "errors": errors.0}));
            } else {
                for e in &errors.0 {
                    println!("{}", e);
                }
                eprintln!(
                    "{}: {} error{}",
                    dir.display(),
                    errors.0.len(),
                    if errors.0.len() == 1 { "" } else { "s" }
                );
            }
            Ok(terminal::EXIT_FAILED)
        }
    }
}

pub fn default_spool() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    state.join("switchboard/spool.jsonl")
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// Appends one record as a single write and syncs it to disk.
fn append_spool(path: &Path, record: &OfflineRun) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut line = serde_json::to_vec(record)?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(&line)?;
    file.sync_data()?;
    Ok(())
}

fn invalid(errors: Vec<switchboard_core::ParamError>) -> anyhow::Error {
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    anyhow::anyhow!("invalid parameters:\n  {}", shown.join("\n  "))
}

pub async fn run(args: RunArgs) -> anyhow::Result<u8> {
    let dir = args.catalog.context("--local needs --catalog DIR")?;
    let catalog = Catalog::load(&dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let action = match catalog.action(&args.action) {
        Some(a) => a.clone(),
        None => {
            let hint = catalog
                .suggest(&args.action)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            anyhow::bail!("unknown action `{}`{hint}", args.action);
        }
    };
    let raw = parse_params(&args.params)?;
    let params = ValidatedParams::validate(&action.params, &raw).map_err(invalid)?;
    let settings = crate::config::FileConfig::runners_of(args.config.as_deref())?;

    let started_at = Timestamp::now();
    let printer = LivePrinter::new(
        &format!("{} (local)", action.name),
        args.timestamps,
        args.client.output == OutputFormat::Text,
    );
    let (tx, mut rx) = mpsc::channel(1024);
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let limits = RunLimits::default();
    let runner_catalog = catalog.clone();
    let runner_action = action.clone();
    let runner_params = params.clone();
    let runner = tokio::spawn(async move {
        switchboard_engine::run_offline(
            &runner_catalog,
            &runner_action,
            runner_params,
            &limits,
            &settings,
            tx,
            cancel_rx,
        )
        .await
    });
    let mut interrupted = false;
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(RunEvent::Output(c)) => printer.line(c.stream.as_str(), &c.ts.to_string(), &c.text),
                Some(RunEvent::Started(_)) => {}
                None => break,
            },
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                let _ = cancel_tx.send(true);
            }
        }
    }
    let outcome = runner
        .await
        .context("the local run crashed")?
        .map_err(invalid)?;
    printer.finish();

    let record = OfflineRun {
        version: SPOOL_VERSION,
        id: format!(
            "{}-{}-{}",
            host_name(),
            std::process::id(),
            started_at.micros()
        ),
        action: action.name.clone(),
        params: params.to_masked_json(&action.params),
        requester: switchboard_core::Principal::local().to_string(),
        os_user: std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into()),
        host: host_name(),
        origin: "local".to_owned(),
        catalog_version: catalog.version.hash.clone(),
        catalog_git_commit: catalog.version.git_commit.clone(),
        status: outcome.status,
        exit_code: outcome.exit_code,
        error: outcome.error.clone(),
        result: outcome.result.clone(),
        output_bytes: outcome.output_bytes,
        output_truncated: outcome.output_truncated,
        started_at,
        finished_at: Timestamp::now(),
    };
    let spool = args.spool.unwrap_or_else(default_spool);
    if let Err(e) = append_spool(&spool, &record) {
        eprintln!(
            "warning: could not append to the spool {}: {e:#}",
            spool.display()
        );
    }
    if let Some(path) = &args.save {
        let files: Vec<(&str, &[u8])> = outcome
            .artifacts
            .iter()
            .map(|a| (a.name.as_str(), a.bytes.as_slice()))
            .collect();
        crate::terminal::save_artifacts(path, &files)?;
    }
    if args.client.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        let mut line = format!("{} (local) {}", record.action, record.status);
        if let Some(code) = record.exit_code {
            line.push_str(&format!(" (exit {code})"));
        }
        if let Some(err) = record
            .error
            .as_deref()
            .filter(|_| record.status != switchboard_core::ExecutionStatus::Succeeded)
        {
            line.push_str(&format!(": {err}"));
        }
        eprintln!("{line}; recorded in {}", spool.display());
        if let Some(result) = &record.result {
            eprintln!("result: {result}");
        }
    }
    Ok(exit_code_for(record.status.as_str()))
}
