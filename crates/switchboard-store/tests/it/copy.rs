//! `copy`: an SQLite store filled through the trait, in every area, moved
//! to a real PostgreSQL server and back, with nothing lost.

use std::sync::Arc;

use serde_json::json;
use switchboard_core::audit::AuditEvent;
use switchboard_core::token::Scope;
use switchboard_core::{
    ActionName, Approval, ExecutionId, ExecutionStatus, Origin, OutputChunk, Principal, Stream,
    Timestamp,
};
use switchboard_store::{
    CatalogLoad, DeliveryAttempt, DeliveryStatus, Finish, FlushRecord, NewAutomation, NewDelivery,
    NewExecution, NewToken, Store, StoreError, StoredAck, StoredAlert, StoredChatCard,
    StoredEscalation, StoredGroup, StoredLogEntry, StoredSilence,
};

use crate::pg::PgServer;

/// Executions made: more than one batch of the copy.
const EXECUTIONS: i64 = 1_100;
/// Output lines of the first execution: more than two batches.
const LINES: i64 = 2_500;

fn new(action: &str) -> NewExecution {
    NewExecution {
        action: ActionName::new(action).unwrap(),
        params: json!({"path": "/", "ü": 1.5, "big": u64::MAX}),
        requester: Principal::new("alice").unwrap(),
        origin: Origin::new("cli").unwrap(),
        status: ExecutionStatus::Queued,
        created_at: Timestamp::now(),
        approval_rule: None,
        approval_expires_at: None,
        parent: None,
        step: None,
        node: None,
    }
}

/// Puts something in every table, through the trait only.
async fn fill(store: &dyn Store) {
    let t = Timestamp;
    let alice = Principal::new("alice").unwrap();
    // Executions, one finished with output, a truncation flag and a file.
    for _ in 0..EXECUTIONS {
        store.insert_execution(&new("host.disk")).await.unwrap();
    }
    let first = ExecutionId(1);
    store.claim_queued("n1", 1, &[], t(10)).await.unwrap();
    let lines: Vec<OutputChunk> = (1..=LINES)
        .map(|seq| OutputChunk {
            seq,
            ts: t(seq),
            stream: if seq % 2 == 0 {
                Stream::Stderr
            } else {
                Stream::Stdout
            },
            text: format!("line {seq} — ü"),
        })
        .collect();
    store.append_output(first, &lines).await.unwrap();
    let finish = Finish {
        status: ExecutionStatus::Failed,
        started_at: Some(t(11)),
        exit_code: Some(2),
        result: Some(json!({"used": 91})),
        error: Some("disk full".into()),
        output_bytes: 1_048_576,
        output_truncated: true,
        finished_at: t(20),
        artifacts: vec![switchboard_core::Artifact {
            name: "chart.png".into(),
            media_type: "image/png".into(),
            bytes: (0..=255u8).cycle().take(70_000).collect(),
        }],
    };
    assert!(store.finish_execution(first, &finish).await.unwrap());

    // A workflow with a step.
    let wf = store.insert_execution(&new("ops.rolling")).await.unwrap();
    store
        .save_workflow_state(wf.id, &json!({"steps": {"drain": "running"}}), t(30))
        .await
        .unwrap();
    store
        .insert_execution(&NewExecution {
            parent: Some(wf.id),
            step: Some("drain#1".into()),
            ..new("lb.drain")
        })
        .await
        .unwrap();

    // An approval.
    let waiting = store
        .insert_execution(&NewExecution {
            status: ExecutionStatus::AwaitingApproval,
            approval_expires_at: Some(t(1_000_000)),
            ..new("db.failover")
        })
        .await
        .unwrap();
    let answer = Approval {
        approver: Principal::new("carol").unwrap(),
        approved: true,
        reason: Some("ok".into()),
        origin: Origin::new("web").unwrap(),
        at: t(40),
    };
    assert!(store.record_approval(waiting.id, &answer).await.unwrap());

    store
        .record_catalog_load(&CatalogLoad {
            hash: "abc".into(),
            git_commit: Some("deadbeef".into()),
            actions: 12,
            node: "n1".into(),
            loaded_at: t(5),
        })
        .await
        .unwrap();
    let events: Vec<AuditEvent> = (0..30)
        .map(|n| AuditEvent {
            ts: t(100 + n),
            actor: alice.clone(),
            origin: Origin::cli(),
            kind: "execution.requested".into(),
            subject: format!("execution:{n}"),
            outcome: "ok".into(),
            detail: json!({"params": {"z": 1.5, "a": [n, "ü"], "big": u64::MAX}}),
        })
        .collect();
    store.append_audit(&events).await.unwrap();
    assert!(
        store
            .register_offline_run("run-1", &alice, t(50))
            .await
            .unwrap()
    );

    // Tokens, one revoked.
    for hash in ["h1", "h2"] {
        store
            .create_token(&NewToken {
                hash: hash.into(),
                principal: alice.clone(),
                scopes: vec![Scope::Read, Scope::Run],
                description: "bot".into(),
                created_by: Principal::new("admin").unwrap(),
                created_at: t(60),
                expires_at: Some(t(10_000)),
            })
            .await
            .unwrap();
    }
    assert!(store.revoke_token(1, t(70)).await.unwrap());

    // Chat: a delivery, a link made with a code.
    assert!(
        store
            .record_chat_delivery("slack", "Ev1", t(80), t(0))
            .await
            .unwrap()
    );
    store
        .create_link_code("code", "slack:T1/U1", t(80), t(900))
        .await
        .unwrap();
    assert!(
        store
            .redeem_link_code("code", &alice, t(90))
            .await
            .unwrap()
            .is_some()
    );

    // Alerts: alerts, groups, a flush with its log and delivery, an
    // attempt, an acknowledgement, a silence, an escalation, an
    // automation run and a chat card.
    let alert = |fingerprint: &str, firing: bool| StoredAlert {
        fingerprint: fingerprint.into(),
        labels: [("alertname".to_owned(), "DiskFull".to_owned())].into(),
        annotations: [("summary".to_owned(), "full".to_owned())].into(),
        firing,
        starts_at: t(100),
        ends_at: (!firing).then_some(t(200)),
        updated_at: t(100),
        source: "alertmanager_webhook".into(),
        generator_url: Some("http://prom/graph".into()),
        dedup_key: None,
    };
    store
        .upsert_alerts(vec![
            alert("00000000000000aa", true),
            alert("00000000000000bb", false),
        ])
        .await
        .unwrap();
    let group = |key: &str| StoredGroup {
        group_key: key.into(),
        receiver: "ops".into(),
        labels: [("alertname".to_owned(), "DiskFull".to_owned())].into(),
        route: "route".into(),
        created_at: t(10),
        next_flush_at: t(1_000),
        flushed: false,
    };
    store
        .save_alert_groups(&[group("g1"), group("g2")])
        .await
        .unwrap();
    store
        .record_flushes(&[FlushRecord {
            group: Some(StoredGroup {
                flushed: true,
                ..group("g1")
            }),
            group_key: "g1".into(),
            receiver: "ops".into(),
            log: vec![StoredLogEntry {
                group_key: "g1".into(),
                receiver: "ops".into(),
                integration: "webhook[0]".into(),
                firing: vec!["00000000000000aa".into()],
                resolved: vec![],
                sent_at: t(1_000),
            }],
            deliveries: vec![
                NewDelivery {
                    group_key: "g1".into(),
                    receiver: "ops".into(),
                    integration: "webhook[0]".into(),
                    notification: json!({"status": "firing"}),
                    created_at: t(1_000),
                };
                2
            ],
            cleared_acks: vec![],
        }])
        .await
        .unwrap();
    store
        .record_delivery_attempt(
            1,
            &DeliveryAttempt {
                status: DeliveryStatus::Delivered,
                attempts: 1,
                next_attempt_at: t(1_000),
                error: None,
                delivered_at: Some(t(1_001)),
            },
        )
        .await
        .unwrap();
    store
        .save_ack(&StoredAck {
            subject: "group:ops:g1".into(),
            acked_by: "bob".into(),
            acked_at: t(900),
            comment: "on it".into(),
        })
        .await
        .unwrap();
    store
        .insert_silence(&StoredSilence {
            id: "s1".into(),
            matchers: "{instance=\"db-1\"}".into(),
            starts_at: t(100),
            ends_at: t(1_000),
            created_by: "alice".into(),
            comment: "disk swap".into(),
            created_at: t(100),
            updated_at: t(100),
        })
        .await
        .unwrap();
    store
        .save_escalations(&[StoredEscalation {
            group_key: "g1".into(),
            receiver: "ops".into(),
            chain: "db".into(),
            state: "running".into(),
            step: 1,
            round: 1,
            due_at: t(1_000),
            updated_at: t(500),
        }])
        .await
        .unwrap();
    assert_eq!(
        store
            .schedule_automations(&[NewAutomation {
                rule: "restart".into(),
                fingerprint: "00000000000000aa".into(),
                starts_at: t(100),
                due_at: t(110),
                not_since: t(0),
                created_at: t(100),
            }])
            .await
            .unwrap(),
        1
    );
    store
        .save_chat_card(&StoredChatCard {
            group_key: "g1".into(),
            receiver: "ops".into(),
            integration: "chat[0]".into(),
            platform: "slack".into(),
            room: "C1".into(),
            message_id: "1700000000.000100".into(),
            thread: None,
            notification: json!({"status": "firing"}),
            updated_at: t(1_000),
        })
        .await
        .unwrap();

    // Triggers: a schedule's tick, a webhook's delivery.
    assert!(
        store
            .claim_schedule_tick("nightly", t(3_600), "n1", "claimed", t(3_601))
            .await
            .unwrap()
    );
    store
        .finish_schedule_tick("nightly", t(3_600), "submitted", Some(first), None)
        .await
        .unwrap();
    assert!(
        store
            .record_hook_delivery("deploy", "d-1", t(4_000), t(0))
            .await
            .unwrap()
    );
    // The leader lease and an execution's lease: the fencing token carries on.
    store
        .acquire_lease("leader", "old-node", t(5_000), t(6_000))
        .await
        .unwrap();
    store.renew_execution_leases("n1", t(6_000)).await.unwrap();
    // The doors' live state.
    store
        .note_door_connection("chat:irc", "n1", true, t(6_000), "irc.example.net as sb")
        .await
        .unwrap();
    store
        .note_door_event("chat:irc", "n1", t(6_100))
        .await
        .unwrap();
    store.note_door_event("api", "n1", t(6_200)).await.unwrap();
}

/// What the trait reads back of everything `fill` stored, for comparison.
async fn everything(store: &dyn Store) -> serde_json::Value {
    let mut executions = Vec::new();
    for id in [
        1,
        2,
        EXECUTIONS,
        EXECUTIONS + 1,
        EXECUTIONS + 2,
        EXECUTIONS + 3,
    ] {
        executions.push(store.get_execution(ExecutionId(id)).await.unwrap().unwrap());
    }
    let alice = Principal::new("alice").unwrap();
    let artifact = store
        .artifact(ExecutionId(1), "chart.png")
        .await
        .unwrap()
        .unwrap();
    json!({
        "executions": executions,
        "output": store.output(ExecutionId(1), 0, 10_000).await.unwrap(),
        "artifact": [artifact.name, artifact.media_type, artifact.bytes],
        "audit": store.audit_records(0, None, 1000).await.unwrap(),
        "approvals": store.approvals(ExecutionId(EXECUTIONS + 3)).await.unwrap(),
        "workflow": store.workflow_state(ExecutionId(EXECUTIONS + 1)).await.unwrap(),
        "tokens": store.list_tokens().await.unwrap(),
        "links": store.chat_links_of(&alice).await.unwrap()
            .into_iter().map(|(i, at)| (i, at.0)).collect::<Vec<_>>(),
        "alerts": format!("{:?}", store.list_alerts(false, 100).await.unwrap()),
        "groups": format!("{:?}", store.alert_groups().await.unwrap()),
        "log": format!("{:?}", store.notification_log().await.unwrap()),
        "deliveries": format!("{:?}", store.list_deliveries(&[], 100).await.unwrap()),
        "acks": format!("{:?}", store.acks().await.unwrap()),
        "silences": format!("{:?}", store.silences(None, 100).await.unwrap()),
        "escalations": format!("{:?}", store.escalations().await.unwrap()),
        "automations": format!("{:?}", store.automations_of("00000000000000aa").await.unwrap()),
        "cards": format!("{:?}", store.chat_cards("g1", "ops").await.unwrap()),
        "ticks": format!("{:?}", store.last_schedule_ticks().await.unwrap()),
        "doors": format!("{:?}", store.door_states().await.unwrap()),
    })
}

async fn sqlite_store(dir: &tempfile::TempDir, name: &str) -> (String, Arc<dyn Store>) {
    let url = format!("sqlite://{}", dir.path().join(name).display());
    let store = switchboard_store::open(&url).await.unwrap();
    (url, store)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sqlite_store_moves_to_postgresql_and_back_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (from, source) = sqlite_store(&dir, "source.db").await;
    fill(source.as_ref()).await;
    let server = PgServer::start();
    let to = server.database("switchboard").await;

    let mut seen = Vec::new();
    let report = switchboard_store::copy(&from, &to, |table, copied, total| {
        seen.push((table.to_owned(), copied, total));
    })
    .await
    .unwrap();

    assert!(report.ok(), "{report:#?}");
    assert_eq!(report.source.schema.backend, "sqlite");
    assert_eq!(report.target.schema.backend, "postgres");
    assert_eq!(report.tables.len(), switchboard_store::copy::TABLES.len());
    for table in &report.tables {
        assert!(
            table.source_rows > 0,
            "the test puts something in every table, not yet in {}",
            table.table
        );
    }
    let rows = |name: &str| {
        report
            .tables
            .iter()
            .find(|t| t.table == name)
            .map(|t| (t.source_rows, t.target_rows, t.next_id))
            .unwrap()
    };
    let executions = u64::try_from(EXECUTIONS).unwrap() + 3;
    let next = EXECUTIONS + 4;
    assert_eq!(rows("executions"), (executions, executions, Some(next)));
    let lines = u64::try_from(LINES).unwrap();
    assert_eq!(rows("output_chunks"), (lines, lines, None));
    assert_eq!(rows("alert_deliveries"), (2, 2, Some(3)));
    assert_eq!(report.source_audit.records, 30);
    assert!(report.target_audit.intact());
    assert_eq!(report.target_audit.head, report.source_audit.head);
    // Each table was announced, then reported batch by batch.
    assert!(seen.contains(&("output_chunks".to_owned(), 0, lines)));
    assert!(seen.contains(&("output_chunks".to_owned(), 1000, lines)));
    assert!(seen.contains(&("output_chunks".to_owned(), lines, lines)));

    // Read back through the PostgreSQL store's trait: the same.
    let target = switchboard_store::open(&to).await.unwrap();
    assert_eq!(
        everything(target.as_ref()).await,
        everything(source.as_ref()).await
    );

    // New rows take ids after the copied ones.
    let fresh = target.insert_execution(&new("host.disk")).await.unwrap();
    assert_eq!(fresh.id, ExecutionId(next));
    let token = target
        .create_token(&NewToken {
            hash: "h3".into(),
            principal: Principal::new("bob").unwrap(),
            scopes: vec![Scope::Read],
            description: String::new(),
            created_by: Principal::new("admin").unwrap(),
            created_at: Timestamp(1),
            expires_at: None,
        })
        .await
        .unwrap();
    assert_eq!(token.id, 3);
    let sealed = target
        .append_audit(&[AuditEvent {
            ts: Timestamp(1),
            actor: Principal::new("bob").unwrap(),
            origin: Origin::cli(),
            kind: "test".into(),
            subject: "x".into(),
            outcome: "ok".into(),
            detail: json!({}),
        }])
        .await
        .unwrap();
    assert_eq!(sealed[0].seq, 31);
    assert_eq!(sealed[0].prev_hash, report.source_audit.head);

    // Copying into it again is refused, and changes nothing.
    let before = everything(target.as_ref()).await;
    let err = switchboard_store::copy(&from, &to, |_, _, _| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::TargetNotEmpty { tables, .. } if tables.contains(&("executions".to_owned(), executions + 1))),
        "{err}"
    );
    assert!(err.to_string().contains("never merges"), "{err}");
    assert_eq!(everything(target.as_ref()).await, before);
    assert_eq!(
        target.get_execution(fresh.id).await.unwrap(),
        Some(fresh.clone())
    );

    // And back: PostgreSQL to a new SQLite file, booleans included.
    let (back, restored) = sqlite_store(&dir, "restored.db").await;
    let report = switchboard_store::copy(&to, &back, |_, _, _| {})
        .await
        .unwrap();
    assert!(report.ok(), "{report:#?}");
    assert_eq!(report.target_audit.records, 31);
    assert_eq!(
        everything(restored.as_ref()).await,
        everything(target.as_ref()).await
    );
    let again = restored.insert_execution(&new("host.disk")).await.unwrap();
    assert_eq!(again.id, ExecutionId(next + 1));
}

#[tokio::test]
async fn a_source_with_a_table_the_copy_does_not_know_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (from, source) = sqlite_store(&dir, "source.db").await;
    fill_a_little(source.as_ref()).await;
    let pool = sqlx::SqlitePool::connect(&from).await.unwrap();
    sqlx::query("CREATE TABLE future_things (name TEXT PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (to, target) = sqlite_store(&dir, "target.db").await;
    let err = switchboard_store::copy(&from, &to, |_, _, _| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("future_things"), "{err}");
    assert!(
        target
            .get_execution(ExecutionId(1))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_sqlite_store_copies_to_another_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let (from, source) = sqlite_store(&dir, "source.db").await;
    fill_a_little(source.as_ref()).await;
    let (to, target) = sqlite_store(&dir, "target.db").await;
    let report = switchboard_store::copy(&from, &to, |_, _, _| {})
        .await
        .unwrap();
    assert!(report.ok(), "{report:#?}");
    assert_eq!(
        target.get_execution(ExecutionId(1)).await.unwrap(),
        source.get_execution(ExecutionId(1)).await.unwrap()
    );
    // The next id follows the copied ones.
    let next = target.insert_execution(&new("x.y")).await.unwrap();
    assert_eq!(next.id, ExecutionId(3));
}

#[tokio::test]
async fn unknown_urls_are_refused_with_the_password_masked() {
    let err = switchboard_store::copy("mysql://u:s3cret@db/x", "sqlite::memory:", |_, _, _| {})
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
    let err = switchboard_store::migrate("postgres://u:s3cret@db:notaport/x")
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[tokio::test]
async fn migrate_tells_the_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let first = switchboard_store::migrate(&url).await.unwrap();
    assert_eq!(first.backend, "sqlite");
    assert_eq!(first.version, first.applied);
    assert!(first.version >= 16, "{first:?}");
    assert_eq!(switchboard_store::migrate(&url).await.unwrap(), first);
}

async fn fill_a_little(store: &dyn Store) {
    store.insert_execution(&new("a.b")).await.unwrap();
    store.insert_execution(&new("a.c")).await.unwrap();
}
