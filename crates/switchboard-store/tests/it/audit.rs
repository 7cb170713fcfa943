//! The audit chain on a real database: tampering with the stored rows, as
//! someone with write access to the file would, is detected.

use std::sync::Arc;

use switchboard_core::audit::{AuditEvent, GENESIS, verify_chain};
use switchboard_core::{Origin, Principal, Timestamp};
use switchboard_store::Store;

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

async fn seeded() -> (tempfile::TempDir, Arc<dyn Store>, sqlx::SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = switchboard_store::open(&url).await.unwrap();
    store.append_audit(&[event(1), event(2)]).await.unwrap();
    for n in 3..=6 {
        store.append_audit(&[event(n)]).await.unwrap();
    }
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    (dir, store, raw)
}

async fn first_break(store: &Arc<dyn Store>) -> Option<i64> {
    let records = store.audit_records(0, None, 1000).await.unwrap();
    verify_chain(&records, (0, GENESIS.to_owned()))
        .err()
        .map(|b| b.seq)
}

#[tokio::test]
async fn an_untouched_chain_verifies() {
    let (_dir, store, _raw) = seeded().await;
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

#[tokio::test]
async fn a_changed_field_is_detected() {
    let (_dir, store, raw) = seeded().await;
    sqlx::query("UPDATE audit_log SET outcome = 'denied' WHERE seq = 4")
        .execute(&raw)
        .await
        .unwrap();
    assert_eq!(first_break(&store).await, Some(4));
}

#[tokio::test]
async fn a_changed_detail_is_detected() {
    let (_dir, store, raw) = seeded().await;
    sqlx::query("UPDATE audit_log SET detail = '{\"params\":{\"token\":\"****\",\"lines\":99}}' WHERE seq = 2")
        .execute(&raw)
        .await
        .unwrap();
    assert_eq!(first_break(&store).await, Some(2));
}

#[tokio::test]
async fn a_deleted_record_is_detected() {
    let (_dir, store, raw) = seeded().await;
    sqlx::query("DELETE FROM audit_log WHERE seq = 3")
        .execute(&raw)
        .await
        .unwrap();
    assert_eq!(first_break(&store).await, Some(3));
}

#[tokio::test]
async fn reordered_records_are_detected() {
    let (_dir, store, raw) = seeded().await;
    sqlx::query("UPDATE audit_log SET seq = -seq WHERE seq IN (2, 3)")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET seq = 5 - seq WHERE seq IN (-2, -3)")
        .execute(&raw)
        .await
        .unwrap();
    // What was record 3 now sits at 2, and the other way round.
    assert_eq!(first_break(&store).await, Some(2));
}

#[tokio::test]
async fn an_inserted_record_is_detected() {
    let (_dir, store, raw) = seeded().await;
    sqlx::query("UPDATE audit_log SET seq = seq + 100 WHERE seq >= 4")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET seq = seq - 99 WHERE seq >= 104")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO audit_log (seq, ts, actor, origin, kind, subject, outcome, detail, prev_hash, hash) \
         SELECT 4, ts, 'mallory', origin, kind, subject, outcome, detail, hash, hash FROM audit_log WHERE seq = 3",
    )
    .execute(&raw)
    .await
    .unwrap();
    assert_eq!(first_break(&store).await, Some(4));
}
