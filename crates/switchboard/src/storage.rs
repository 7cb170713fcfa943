//! The commands that work on a database directly, with no server:
//! `migrate` (apply the migrations, tell the schema version) and
//! `store copy` (move everything to another database). The work is the
//! store's (`switchboard_store::migrate`, `switchboard_store::copy`); this
//! prints it. URLs are printed with their passwords masked.

use anyhow::Context;
use switchboard_store::{CopyReport, without_password};

use crate::cli::OutputFormat;
use crate::client::print_json;
use crate::terminal;

/// `switchboard migrate`: opens the storage, which applies what it lacks.
pub async fn migrate(url: &str, output: OutputFormat) -> anyhow::Result<u8> {
    let shown = without_password(url);
    let version = switchboard_store::migrate(url)
        .await
        .with_context(|| format!("cannot migrate {shown}"))?;
    if output == OutputFormat::Json {
        print_json(&serde_json::json!({
            "storage": shown,
            "backend": version.backend,
            "version": version.version,
            "description": version.description,
            "applied": version.applied,
        }));
    } else {
        println!(
            "{shown}: {} schema at version {} ({}), {} migrations applied",
            version.backend, version.version, version.description, version.applied
        );
    }
    Ok(terminal::EXIT_OK)
}

/// `switchboard store copy`: progress on stderr, the report on stdout;
/// exits 0 only when every count and the audit chain agree.
pub async fn copy(from: &str, to: &str, output: OutputFormat) -> anyhow::Result<u8> {
    eprintln!(
        "copying {} to {}",
        without_password(from),
        without_password(to)
    );
    let report = switchboard_store::copy(from, to, |table, copied, total| {
        if total == 0 {
            eprintln!("  {table}: empty");
        } else if copied == total {
            eprintln!("  {table}: {total} rows");
        } else if copied > 0 {
            eprintln!("  {table}: {copied}/{total} rows");
        }
    })
    .await?;
    if output == OutputFormat::Json {
        let mut json = serde_json::to_value(&report).context("cannot render the report")?;
        if let Some(object) = json.as_object_mut() {
            object.insert("counts_match".into(), report.counts_match().into());
            object.insert("audit_matches".into(), report.audit_matches().into());
            object.insert("ok".into(), report.ok().into());
        }
        print_json(&json);
    } else {
        print_report(&report);
    }
    Ok(if report.ok() {
        terminal::EXIT_OK
    } else {
        terminal::EXIT_FAILED
    })
}

fn print_report(report: &CopyReport) {
    println!(
        "from {} ({} schema version {})",
        report.source.url, report.source.schema.backend, report.source.schema.version
    );
    println!(
        "to   {} ({} schema version {})",
        report.target.url, report.target.schema.backend, report.target.schema.version
    );
    println!();
    let rows: Vec<Vec<String>> = report
        .tables
        .iter()
        .map(|t| {
            vec![
                t.table.clone(),
                t.source_rows.to_string(),
                t.read.to_string(),
                t.written.to_string(),
                t.target_rows.to_string(),
                t.next_id.map_or_else(|| "-".to_owned(), |n| n.to_string()),
                if t.matches() { "ok" } else { "MISMATCH" }.to_owned(),
            ]
        })
        .collect();
    terminal::print_table(
        &[
            "TABLE", "SOURCE", "READ", "WRITTEN", "TARGET", "NEXT ID", "COUNTS",
        ],
        &rows,
    );
    println!();
    let mismatched: Vec<&str> = report
        .tables
        .iter()
        .filter(|t| !t.matches())
        .map(|t| t.table.as_str())
        .collect();
    if mismatched.is_empty() {
        println!("counts: every table matches");
    } else {
        println!("counts: MISMATCH in {}", mismatched.join(", "));
    }
    let (source, target) = (&report.source_audit, &report.target_audit);
    if report.audit_matches() {
        println!(
            "audit chain: intact on both sides, {} records, same head {}",
            target.records, target.head
        );
    } else {
        let side = |name: &str, a: &switchboard_store::AuditVerification| match &a.broken {
            None => format!("{name}: intact, {} records, head {}", a.records, a.head),
            Some(why) => format!(
                "{name}: BROKEN ({why}), {} records verify, head {}",
                a.records, a.head
            ),
        };
        println!(
            "audit chain: DIFFERS\n  {}\n  {}",
            side("source", source),
            side("target", target)
        );
    }
    if report.ok() {
        println!("nothing lost");
    }
}
