//! The audit chain on a real database (SQLite and PostgreSQL): tampering with the stored rows, as
//! someone with write access to the file would, is detected.

use std::sync::Arc;

use switchboard_core::audit::{AuditEvent, GENESIS, verify_chain};
use switchboard_core::{Origin, Principal, Timestamp};
use switchboard_store::Store;

use crate::pg::PgServer;

fn event(n: usize) -> AuditEvent {
    AuditEvent {
        ts: Timestamp::now(),
        actor: Principal::new("alice").unwrap(),
        origin: Origin::cli(),
        kind: "execution.requested".into(),
        subject: format!("execution:{n}"),
        outcome: "ok".into(),
        detail: serde_json::json!({"params": {"token": "****", "lines": n}}),
    }
}

/// Write access to the database behind the store's back.
enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Raw {
    async fn execute(&self, sql: &'static str) {
        match self {
            Raw::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
            Raw::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        }
        .unwrap();
    }
}

/// What keeps a database alive for a test: its folder or its server.
type Guard = Box<dyn std::any::Any>;

async fn seed(store: &Arc<dyn Store>) {
    store.append_audit(&[event(1), event(2)]).await.unwrap();
    for n in 3..=6 {
        store.append_audit(&[event(n)]).await.unwrap();
    }
}

async fn sqlite() -> (Guard, Arc<dyn Store>, Raw) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = switchboard_store::open(&url).await.unwrap();
    seed(&store).await;
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    (Box::new(dir), store, Raw::Sqlite(raw))
}

async fn postgres() -> (Guard, Arc<dyn Store>, Raw) {
    let server = PgServer::start();
    let url = server.database("switchboard").await;
    let store = switchboard_store::open(&url).await.unwrap();
    seed(&store).await;
    let raw = sqlx::PgPool::connect(&url).await.unwrap();
    (Box::new(server), store, Raw::Postgres(raw))
}

/// Runs each scenario on a seeded chain of both backends.
macro_rules! on_both {
    ($($scenario:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test]
        async fn $sqlite() {
            let (_guard, store, raw) = sqlite().await;
            $scenario(store, raw).await;
        }

        #[tokio::test]
        async fn $postgres() {
            let (_guard, store, raw) = postgres().await;
            $scenario(store, raw).await;
        }
    )*};
}

on_both! {
    an_untouched_chain_verifies
        => sqlite_an_untouched_chain_verifies, postgres_an_untouched_chain_verifies;
    a_changed_field_is_detected
        => sqlite_a_changed_field_is_detected, postgres_a_changed_field_is_detected;
    a_changed_detail_is_detected
        => sqlite_a_changed_detail_is_detected, postgres_a_changed_detail_is_detected;
    a_deleted_record_is_detected
        => sqlite_a_deleted_record_is_detected, postgres_a_deleted_record_is_detected;
    reordered_records_are_detected
        => sqlite_reordered_records_are_detected, postgres_reordered_records_are_detected;
    an_inserted_record_is_detected
        => sqlite_an_inserted_record_is_detected, postgres_an_inserted_record_is_detected;
}

async fn first_break(store: &Arc<dyn Store>) -> Option<i64> {
    let records = store.audit_records(0, None, 1000).await.unwrap();
    verify_chain(&records, (0, GENESIS.to_owned()))
        .err()
        .map(|b| b.seq)
}

async fn an_untouched_chain_verifies(store: Arc<dyn Store>, _raw: Raw) {
    let records = store.audit_records(0, None, 1000).await.unwrap();
    assert_eq!(records.len(), 6);
    assert_eq!(records[0].prev_hash, GENESIS);
    assert_eq!(
        verify_chain(&records, (0, GENESIS.to_owned())).unwrap().0,
        6
    );
    let tail = store.audit_records(4, None, 1000).await.unwrap();
    assert_eq!(tail.iter().map(|r| r.seq).collect::<Vec<_>>(), [5, 6]);
}

async fn a_changed_field_is_detected(store: Arc<dyn Store>, raw: Raw) {
    raw.execute("UPDATE audit_log SET outcome = 'denied' WHERE seq = 4")
        .await;
    assert_eq!(first_break(&store).await, Some(4));
}

async fn a_changed_detail_is_detected(store: Arc<dyn Store>, raw: Raw) {
    raw.execute("UPDATE audit_log SET detail = '{\"params\":{\"token\":\"****\",\"lines\":99}}' WHERE seq = 2")
        .await;
    assert_eq!(first_break(&store).await, Some(2));
}

async fn a_deleted_record_is_detected(store: Arc<dyn Store>, raw: Raw) {
    raw.execute("DELETE FROM audit_log WHERE seq = 3").await;
    assert_eq!(first_break(&store).await, Some(3));
}

async fn reordered_records_are_detected(store: Arc<dyn Store>, raw: Raw) {
    raw.execute("UPDATE audit_log SET seq = -seq WHERE seq IN (2, 3)")
        .await;
    raw.execute("UPDATE audit_log SET seq = 5 - seq WHERE seq IN (-2, -3)")
        .await;
    // What was record 3 now sits at 2, and the other way round.
    assert_eq!(first_break(&store).await, Some(2));
}

async fn an_inserted_record_is_detected(store: Arc<dyn Store>, raw: Raw) {
    raw.execute("UPDATE audit_log SET seq = seq + 100 WHERE seq >= 4")
        .await;
    raw.execute("UPDATE audit_log SET seq = seq - 99 WHERE seq >= 104")
        .await;
    raw.execute(
        "INSERT INTO audit_log (seq, ts, actor, origin, kind, subject, outcome, detail, prev_hash, hash) \
         SELECT 4, ts, 'mallory', origin, kind, subject, outcome, detail, hash, hash FROM audit_log WHERE seq = 3",
    )
    .await;
    assert_eq!(first_break(&store).await, Some(4));
}
