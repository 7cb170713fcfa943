//! `switchboard migrate` and `switchboard store copy`, run as the real
//! binary on the database a real server filled: moved to a real
//! PostgreSQL server (the store's test harness, `pg.rs`), and back.

use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::harness::{BIN, Server, test_catalog, text};
use crate::pg::PgServer;

fn switchboard(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SWITCHBOARD_STORAGE")
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_servers_sqlite_database_moves_to_postgresql_with_nothing_lost() {
    let mut server = Server::start(&test_catalog());
    let ok = server
        .submit("test.secret", json!({"token": "hunter2"}))
        .await;
    server.wait_finished(ok).await;
    let failed = server.submit("test.fail", json!({"code": 2})).await;
    server.wait_finished(failed).await;
    server.stop();
    let sqlite = format!(
        "sqlite://{}",
        server.data.path().join("db.sqlite").display()
    );

    // Migrating an up-to-date database changes nothing and says where it is.
    let out = switchboard(&["migrate", "--storage", &sqlite]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let said = text(&out.stdout);
    assert!(
        said.starts_with(&format!("{sqlite}: sqlite schema at version ")),
        "{said}"
    );
    assert!(said.contains(" migrations applied"), "{said}");
    let out = switchboard(&["migrate", "--storage", &sqlite, "-o", "json"]);
    let version: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(version["version"], version["applied"], "{version}");

    let pg = PgServer::start();
    let postgres = pg.database("switchboard").await;
    let out = switchboard(&["migrate", "--storage", &postgres, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let version: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(version["backend"], "postgres", "{version}");
    assert_eq!(version["version"], version["applied"], "{version}");

    let out = switchboard(&["store", "copy", "--from", &sqlite, "--to", &postgres]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let progress = text(&out.stderr);
    assert!(progress.contains("executions: 2 rows"), "{progress}");
    assert!(progress.contains("hook_deliveries: empty"), "{progress}");
    let report = text(&out.stdout);
    let executions = report
        .lines()
        .find(|l| l.starts_with("executions "))
        .unwrap_or_default();
    assert_eq!(
        executions.split_whitespace().collect::<Vec<_>>(),
        ["executions", "2", "2", "2", "2", "3", "ok"],
        "{report}"
    );
    assert!(report.contains("counts: every table matches"), "{report}");
    assert!(
        report.contains("audit chain: intact on both sides"),
        "{report}"
    );
    assert!(report.ends_with("nothing lost\n"), "{report}");

    // The same chain, as the auditors' command reads it on each side.
    let head = |storage: &str| {
        let out = switchboard(&["audit", "verify", "--storage", storage, "-o", "json"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (v["records"].clone(), v["head"].clone())
    };
    assert_eq!(head(&postgres), head(&sqlite));

    // A second copy into it is refused: it holds data now.
    let out = switchboard(&["store", "copy", "--from", &sqlite, "--to", &postgres]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let said = text(&out.stderr);
    assert!(said.contains("already holds data"), "{said}");
    assert!(said.contains("executions: 2 rows"), "{said}");

    // And back, for machines.
    let back = format!(
        "sqlite://{}",
        server.data.path().join("back.sqlite").display()
    );
    let out = switchboard(&[
        "store", "copy", "--from", &postgres, "--to", &back, "-o", "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["source"]["schema"]["backend"], "postgres");
    assert_eq!(report["target"]["schema"]["backend"], "sqlite");
    assert_eq!(report["tables"][0]["table"], "executions");
    assert_eq!(report["tables"][0]["target_rows"], 2);
    assert_eq!(report["target_audit"], report["source_audit"]);
    assert_eq!(head(&back), head(&sqlite));

    // The restored file serves.
    let data = server.data.path();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(data.join(format!("db.sqlite{suffix}")));
        let _ = std::fs::rename(
            data.join(format!("back.sqlite{suffix}")),
            data.join(format!("db.sqlite{suffix}")),
        );
    }
    server.start_again();
    let (_, got) = server.get(&format!("/executions/{failed}")).await;
    assert_eq!(got["status"], "failed", "{got}");
    let again = server.submit("test.fail", json!({"code": 3})).await;
    assert_eq!(again, failed + 1);
}

#[test]
fn bad_urls_are_errors_with_passwords_masked() {
    let out = switchboard(&[
        "store",
        "copy",
        "--from",
        "mysql://sb:s3cret@db/sb",
        "--to",
        "sqlite::memory:",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let said = text(&out.stderr);
    assert!(said.contains("unsupported storage URL"), "{said}");
    assert!(!said.contains("s3cret"), "{said}");
}
