use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;
use switchboard_core::audit::{AuditEvent, GENESIS, verify_chain};
use switchboard_core::token::Scope;
use switchboard_core::{
    ActionName, Approval, ExecutionId, ExecutionStatus, Origin, OutputChunk, Principal, Stream,
    Timestamp,
};
use switchboard_store::{
    CatalogLoad, DeliveryAttempt, DeliveryStatus, ExecutionFilter, Finish, FlushRecord,
    NewAutomation, NewDelivery, NewExecution, NewToken, Store, StoredAck, StoredAlert,
    StoredChatCard, StoredEscalation, StoredGroup, StoredLogEntry, StoredSilence,
};

use crate::pg::PgServer;

async fn sqlite() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = switchboard_store::open(&url).await.unwrap();
    (dir, store)
}

async fn postgres() -> (PgServer, Arc<dyn Store>) {
    let server = PgServer::start();
    let url = server.database("switchboard").await;
    let store = switchboard_store::open(&url).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    (server, store)
}

/// Two nodes: two stores (each with its own connections) on one database.
async fn sqlite_nodes() -> (tempfile::TempDir, Arc<dyn Store>, Arc<dyn Store>) {
    let (dir, a) = sqlite().await;
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let b = switchboard_store::open(&url).await.unwrap();
    (dir, a, b)
}

async fn postgres_nodes() -> (PgServer, Arc<dyn Store>, Arc<dyn Store>) {
    let server = PgServer::start();
    let url = server.database("switchboard").await;
    let (a, b) = tokio::join!(switchboard_store::open(&url), switchboard_store::open(&url));
    (server, a.unwrap(), b.unwrap())
}

/// Runs each scenario against both backends: `$sqlite` and `$postgres` are
/// the tests' names.
macro_rules! on_both {
    ($(#[$test:meta] $scenario:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[$test]
        async fn $sqlite() {
            let (_dir, store) = sqlite().await;
            $scenario(store).await;
        }

        #[$test]
        async fn $postgres() {
            let (_server, store) = postgres().await;
            $scenario(store).await;
        }
    )*};
}

/// Runs each two-node scenario against both backends.
macro_rules! on_both_with_two_nodes {
    ($(#[$test:meta] $scenario:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[$test]
        async fn $sqlite() {
            let (_dir, a, b) = sqlite_nodes().await;
            $scenario(a, b).await;
        }

        #[$test]
        async fn $postgres() {
            let (_server, a, b) = postgres_nodes().await;
            $scenario(a, b).await;
        }
    )*};
}

fn new(action: &str, requester: &str, origin: &str) -> NewExecution {
    NewExecution {
        action: ActionName::new(action).unwrap(),
        params: json!({"n": 1}),
        requester: Principal::new(requester).unwrap(),
        origin: Origin::new(origin).unwrap(),
        status: ExecutionStatus::Queued,
        created_at: Timestamp::now(),
        approval_rule: None,
        approval_expires_at: None,
        parent: None,
        step: None,
        node: None,
    }
}

async fn life_of_an_execution(store: Arc<dyn Store>) {
    let e = store
        .insert_execution(&new("demo.echo", "alice", "cli"))
        .await
        .unwrap();
    assert_eq!(e.status, ExecutionStatus::Queued);
    assert_eq!(store.queue_depth().await.unwrap(), 1);

    let skipped = store
        .claim_queued("n1", 10, std::slice::from_ref(&e.action), Timestamp::now())
        .await
        .unwrap();
    assert!(skipped.is_empty(), "a skipped action is not claimed");
    let claimed = store
        .claim_queued("n1", 10, &[], Timestamp::now())
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].status, ExecutionStatus::Running);
    assert_eq!(claimed[0].node.as_deref(), Some("n1"));
    assert!(
        store
            .claim_queued("n2", 10, &[], Timestamp::now())
            .await
            .unwrap()
            .is_empty(),
        "never claimed twice"
    );

    let chunks: Vec<OutputChunk> = (1..=3)
        .map(|seq| OutputChunk {
            seq,
            ts: Timestamp::now(),
            stream: Stream::Stdout,
            text: format!("line {seq}"),
        })
        .collect();
    store.append_output(e.id, &chunks).await.unwrap();
    assert_eq!(store.output(e.id, 1, 10).await.unwrap(), chunks[1..]);

    let started = Timestamp::now();
    let finish = Finish {
        status: ExecutionStatus::Succeeded,
        started_at: Some(started),
        exit_code: Some(0),
        result: Some(json!({"ok": true})),
        error: None,
        output_bytes: 18,
        output_truncated: false,
        finished_at: Timestamp::now(),
        artifacts: vec![switchboard_core::Artifact {
            name: "chart.png".into(),
            media_type: "image/png".into(),
            bytes: vec![0x89, b'P', b'N', b'G', 0, 1, 2],
        }],
    };
    assert!(store.finish_execution(e.id, &finish).await.unwrap());
    assert!(
        !store.finish_execution(e.id, &finish).await.unwrap(),
        "a finished execution stays finished"
    );
    let got = store.get_execution(e.id).await.unwrap().unwrap();
    assert_eq!(got.status, ExecutionStatus::Succeeded);
    assert_eq!(got.result, Some(json!({"ok": true})));
    // Its files were stored with its end.
    let listed = store.artifacts(e.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].name.as_str(), listed[0].size), ("chart.png", 7));
    let chart = store.artifact(e.id, "chart.png").await.unwrap().unwrap();
    assert_eq!(chart, finish.artifacts[0]);
    assert!(store.artifact(e.id, "other.png").await.unwrap().is_none());
    assert_eq!(got.exit_code, Some(0));
    assert_eq!(got.started_at, Some(started));
    assert!(
        store
            .get_execution(ExecutionId(999))
            .await
            .unwrap()
            .is_none()
    );
}

async fn listing_filters_and_pages(store: Arc<dyn Store>) {
    for i in 0..25 {
        let requester = if i % 5 == 0 { "bob" } else { "alice" };
        store
            .insert_execution(&new(
                if i % 2 == 0 { "a.even" } else { "a.odd" },
                requester,
                "api",
            ))
            .await
            .unwrap();
    }
    let page = |before, limit| ExecutionFilter {
        before,
        limit,
        ..Default::default()
    };
    let first = store.list_executions(&page(None, 10)).await.unwrap();
    assert_eq!(first.len(), 10);
    assert!(first.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let second = store
        .list_executions(&page(Some(first[9].id), 10))
        .await
        .unwrap();
    assert!(second[0].id < first[9].id);
    let bobs = ExecutionFilter {
        requester: Some(Principal::new("bob").unwrap()),
        action: Some(ActionName::new("a.even").unwrap()),
        limit: 100,
        ..Default::default()
    };
    let got = store.list_executions(&bobs).await.unwrap();
    assert_eq!(got.len(), 3, "ids 0, 10, 20");
    let queued = ExecutionFilter {
        status: Some(ExecutionStatus::Queued),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(store.list_executions(&queued).await.unwrap().len(), 25);
}

async fn restart_marks_running_lost_and_cancels_waiting(store: Arc<dyn Store>) {
    let a = store
        .insert_execution(&new("x.a", "alice", "cli"))
        .await
        .unwrap();
    let b = store
        .insert_execution(&new("x.b", "alice", "cli"))
        .await
        .unwrap();
    store
        .claim_queued("n1", 1, &[], Timestamp::now())
        .await
        .unwrap();
    let lost = store
        .mark_lost("n1", "node restarted", Timestamp::now())
        .await
        .unwrap();
    assert_eq!(lost, [a.id]);
    assert_eq!(
        store.get_execution(a.id).await.unwrap().unwrap().status,
        ExecutionStatus::Lost
    );
    assert!(
        store
            .end_waiting(
                b.id,
                ExecutionStatus::Cancelled,
                "cancelled by alice",
                Timestamp::now()
            )
            .await
            .unwrap()
    );
    let b = store.get_execution(b.id).await.unwrap().unwrap();
    assert_eq!(b.status, ExecutionStatus::Cancelled);
    assert_eq!(b.error.as_deref(), Some("cancelled by alice"));
    assert!(
        !store
            .end_waiting(a.id, ExecutionStatus::Cancelled, "x", Timestamp::now())
            .await
            .unwrap()
    );
}

/// A workflow keeps its state across a restart (it is not marked lost; it
/// resumes), and its steps are executions linked to it, listed by parent.
async fn workflows_keep_their_state_and_steps(store: Arc<dyn Store>) {
    let wf = store
        .insert_execution(&new("ops.rolling", "alice", "cli"))
        .await
        .unwrap();
    store
        .claim_queued("n1", 1, &[], Timestamp::now())
        .await
        .unwrap();
    let state = json!({"steps": {"drain": {"status": "running"}}});
    store
        .save_workflow_state(wf.id, &state, Timestamp::now())
        .await
        .unwrap();
    let step = NewExecution {
        parent: Some(wf.id),
        step: Some("drain#1".to_owned()),
        ..new("lb.drain", "alice", "cli")
    };
    let child = store.insert_execution(&step).await.unwrap();
    assert_eq!(
        (child.parent, child.step.as_deref()),
        (Some(wf.id), Some("drain#1"))
    );
    store
        .claim_queued("n1", 1, &[], Timestamp::now())
        .await
        .unwrap();
    let lost = store
        .mark_lost("n1", "node restarted", Timestamp::now())
        .await
        .unwrap();
    assert_eq!(lost, [child.id], "the step is lost, the workflow resumes");
    assert_eq!(store.workflows_running_on("n1").await.unwrap(), [wf.id]);
    assert!(store.workflows_running_on("n2").await.unwrap().is_empty());
    let later = json!({"steps": {"drain": {"status": "failed"}}});
    store
        .save_workflow_state(wf.id, &later, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(store.workflow_state(wf.id).await.unwrap(), Some(later));
    assert_eq!(store.workflow_state(child.id).await.unwrap(), None);
    let steps = store
        .list_executions(&ExecutionFilter {
            parent: Some(wf.id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(steps.iter().map(|e| e.id).collect::<Vec<_>>(), [child.id]);
}

/// Two-person rule: a waiting execution is not claimed, each approver
/// answers once, release queues it, lapsed requests are found by time.
async fn approvals_hold_and_release(store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let mut waiting = new("db.failover", "alice", "cli");
    waiting.status = ExecutionStatus::AwaitingApproval;
    waiting.approval_expires_at = Some(now.after(std::time::Duration::from_secs(60)));
    let held = store.insert_execution(&waiting).await.unwrap();
    waiting.approval_expires_at = Some(now.after(std::time::Duration::from_secs(1)));
    let soon = store.insert_execution(&waiting).await.unwrap();
    assert_eq!(
        held.approval_expires_at,
        Some(now.after(std::time::Duration::from_secs(60)))
    );
    assert!(
        store
            .claim_queued("n1", 10, &[], now)
            .await
            .unwrap()
            .is_empty(),
        "nothing waiting for approval is claimed"
    );
    assert_eq!(
        store.next_approval_expiry().await.unwrap(),
        soon.approval_expires_at
    );
    let later = now.after(std::time::Duration::from_secs(2));
    assert_eq!(store.lapsed_approvals(later).await.unwrap(), [soon.id]);
    assert!(store.lapsed_approvals(now).await.unwrap().is_empty());

    let answer = Approval {
        approver: Principal::new("carol").unwrap(),
        approved: true,
        reason: Some("ok".into()),
        origin: Origin::new("web").unwrap(),
        at: now,
    };
    assert!(store.record_approval(held.id, &answer).await.unwrap());
    assert!(
        !store.record_approval(held.id, &answer).await.unwrap(),
        "one answer per approver"
    );
    assert_eq!(store.approvals(held.id).await.unwrap(), [answer]);
    assert!(store.release_approved(held.id).await.unwrap());
    assert!(!store.release_approved(held.id).await.unwrap());
    let released = store.get_execution(held.id).await.unwrap().unwrap();
    assert_eq!(released.status, ExecutionStatus::Queued);
    assert_eq!(released.approval_expires_at, None);
    let claimed = store.claim_queued("n1", 10, &[], now).await.unwrap();
    assert_eq!(claimed.iter().map(|e| e.id).collect::<Vec<_>>(), [held.id]);
}

async fn chat_links_and_deliveries(store: Arc<dyn Store>) {
    let t = |s: i64| Timestamp(s * 1_000_000);
    let alice = Principal::new("alice").unwrap();
    let mallory = Principal::new("mallory").unwrap();
    // A retried delivery is recognised; one older than the memory is forgotten.
    assert!(
        store
            .record_chat_delivery("slack", "Ev1", t(100), t(0))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_chat_delivery("slack", "Ev1", t(101), t(0))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_chat_delivery("mattermost", "Ev1", t(101), t(0))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_chat_delivery("slack", "Ev2", t(5000), t(200))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_chat_delivery("slack", "Ev1", t(5001), t(200))
            .await
            .unwrap()
    );

    // A code links once, only before it lapses, and only the newest code works.
    store
        .create_link_code("h1", "slack:T1/U1", t(100), t(700))
        .await
        .unwrap();
    store
        .create_link_code("h2", "slack:T1/U1", t(110), t(710))
        .await
        .unwrap();
    assert_eq!(
        store.redeem_link_code("h1", &alice, t(120)).await.unwrap(),
        None
    );
    assert_eq!(
        store.redeem_link_code("h2", &alice, t(711)).await.unwrap(),
        None
    );
    store
        .create_link_code("h3", "slack:T1/U1", t(800), t(1400))
        .await
        .unwrap();
    assert_eq!(
        store
            .redeem_link_code("h3", &alice, t(900))
            .await
            .unwrap()
            .as_deref(),
        Some("slack:T1/U1")
    );
    assert_eq!(
        store
            .redeem_link_code("h3", &mallory, t(901))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.linked_principal("slack:T1/U1").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.linked_principal("slack:T1/U2").await.unwrap(), None);
    let links = store.chat_links_of(&alice).await.unwrap();
    assert_eq!(links, vec![("slack:T1/U1".to_owned(), t(900))]);
    assert!(store.unlink_chat_identity("slack:T1/U1").await.unwrap());
    assert!(!store.unlink_chat_identity("slack:T1/U1").await.unwrap());
    assert_eq!(store.linked_principal("slack:T1/U1").await.unwrap(), None);
}

/// Leases: the leader's is held by one node until it runs out or is given
/// up, and its token grows at each change of holder; executions' leases
/// are renewed by their node, and one that ran out is taken over once.
async fn leases_are_held_renewed_and_taken_over_once(store: Arc<dyn Store>) {
    use switchboard_store::TakeOver;
    let t = Timestamp(1_800_000_000_000_000);
    let s = |secs: u64| t.after(std::time::Duration::from_secs(secs));
    let l = store.acquire_lease("leader", "n1", t, s(10)).await.unwrap();
    assert_eq!((l.holder.as_str(), l.token), ("n1", 1));
    let l = store
        .acquire_lease("leader", "n2", s(5), s(15))
        .await
        .unwrap();
    assert_eq!(
        (l.holder.as_str(), l.token),
        ("n1", 1),
        "held until it runs out"
    );
    let l = store
        .acquire_lease("leader", "n1", s(6), s(16))
        .await
        .unwrap();
    assert_eq!(
        (l.holder.as_str(), l.token, l.expires_at),
        ("n1", 1, s(16)),
        "renewed"
    );
    let l = store
        .acquire_lease("leader", "n2", s(17), s(27))
        .await
        .unwrap();
    assert_eq!(
        (l.holder.as_str(), l.token),
        ("n2", 2),
        "taken once it ran out"
    );
    let l = store
        .acquire_lease("leader", "n1", s(18), s(28))
        .await
        .unwrap();
    assert_eq!(l.holder, "n2", "the deposed holder cannot renew");
    store.release_lease("leader", "n1").await.unwrap();
    assert_eq!(
        store.lease("leader").await.unwrap().unwrap().holder,
        "n2",
        "only its holder gives it up"
    );
    store.release_lease("leader", "n2").await.unwrap();
    let l = store
        .acquire_lease("leader", "n3", s(19), s(29))
        .await
        .unwrap();
    assert_eq!(
        (l.holder.as_str(), l.token),
        ("n3", 3),
        "the token never goes back"
    );
    assert_eq!(store.lease("nobody").await.unwrap(), None);

    let ids: Vec<_> = {
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(
                store
                    .insert_execution(&new("x.a", "alice", "cli"))
                    .await
                    .unwrap()
                    .id,
            );
        }
        ids
    };
    store.claim_queued("n1", 3, &[], t).await.unwrap();
    assert_eq!(store.renew_execution_leases("n1", s(10)).await.unwrap(), 3);
    assert!(store.expired_executions(s(9), 10).await.unwrap().is_empty());
    let expired: Vec<_> = store
        .expired_executions(s(11), 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(expired, ids);
    let lost = TakeOver::Lost {
        reason: "its node stopped".into(),
    };
    assert!(store.take_over_expired(ids[0], s(11), &lost).await.unwrap());
    assert!(
        !store
            .take_over_expired(ids[0], s(11), &TakeOver::Requeue)
            .await
            .unwrap(),
        "taken over once"
    );
    assert!(
        store
            .take_over_expired(ids[1], s(11), &TakeOver::Requeue)
            .await
            .unwrap()
    );
    let adopt = TakeOver::Adopt {
        node: "n2".into(),
        until: s(30),
    };
    assert!(
        store
            .take_over_expired(ids[2], s(11), &adopt)
            .await
            .unwrap()
    );
    let e = |i: usize| {
        let store = store.clone();
        let id = ids[i];
        async move { store.get_execution(id).await.unwrap().unwrap() }
    };
    let (a, b, c) = (e(0).await, e(1).await, e(2).await);
    assert_eq!(
        (a.status, a.error.as_deref()),
        (ExecutionStatus::Lost, Some("its node stopped"))
    );
    assert_eq!((b.status, b.node), (ExecutionStatus::Queued, None));
    assert_eq!(
        (c.status, c.node.as_deref()),
        (ExecutionStatus::Running, Some("n2"))
    );
    assert!(
        store
            .expired_executions(s(20), 10)
            .await
            .unwrap()
            .is_empty(),
        "adopted until 30 s"
    );
    let claimed = store.claim_queued("n2", 5, &[], s(12)).await.unwrap();
    assert_eq!(
        claimed.iter().map(|e| e.id).collect::<Vec<_>>(),
        [ids[1]],
        "queued again"
    );
}

/// Each node's lease is listed by its prefix, and each door's state is
/// kept per node: its connection as last told, its last event only ever
/// moving forward.
async fn nodes_and_doors_are_listed(store: Arc<dyn Store>) {
    let t = Timestamp(1_800_000_000_000_000);
    let s = |secs: u64| t.after(std::time::Duration::from_secs(secs));
    for node in ["b", "a"] {
        store
            .acquire_lease(&format!("node:{node}"), node, t, s(15))
            .await
            .unwrap();
    }
    store.acquire_lease("leader", "a", t, s(15)).await.unwrap();
    store.acquire_lease("node_x", "x", t, s(15)).await.unwrap();
    let nodes: Vec<String> = store
        .leases_with_prefix("node:")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.holder)
        .collect();
    assert_eq!(nodes, ["a", "b"]);
    assert!(store.leases_with_prefix("%").await.unwrap().is_empty());

    store.note_door_event("api", "a", s(5)).await.unwrap();
    store.note_door_event("api", "a", s(3)).await.unwrap();
    store
        .note_door_connection("chat:irc", "a", true, s(1), "irc.example.net:6697")
        .await
        .unwrap();
    store.note_door_event("chat:irc", "a", s(2)).await.unwrap();
    store
        .note_door_connection("chat:irc", "a", false, s(4), "connection reset")
        .await
        .unwrap();
    let states = store.door_states().await.unwrap();
    assert_eq!(states.len(), 2, "{states:?}");
    assert_eq!(
        (
            states[0].door.as_str(),
            states[0].connected,
            states[0].last_event_at
        ),
        ("api", None, Some(s(5))),
        "the last event never goes back"
    );
    assert_eq!(
        (
            states[1].door.as_str(),
            states[1].connected,
            states[1].changed_at,
            states[1].detail.as_deref(),
            states[1].last_event_at
        ),
        (
            "chat:irc",
            Some(false),
            Some(s(4)),
            Some("connection reset"),
            Some(s(2))
        )
    );
}

/// A queued execution is claimed by the node that accepted it; another
/// node claims it only once it has waited `ADOPT_AFTER` (its node is busy or
/// gone); one nobody accepted in particular, by anyone.
async fn an_execution_waits_for_the_node_that_accepted_it(store: Arc<dyn Store>) {
    let t = Timestamp(1_900_000_000_000_000);
    let s = |secs: u64| t.after(std::time::Duration::from_secs(secs));
    let accepted = |node: Option<&str>| NewExecution {
        node: node.map(str::to_owned),
        created_at: t,
        ..new("x.a", "alice", "cli")
    };
    let by_n1 = store.insert_execution(&accepted(Some("n1"))).await.unwrap();
    let anyone = store.insert_execution(&accepted(None)).await.unwrap();
    let ids = |v: Vec<switchboard_core::Execution>| v.iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.claim_queued("n2", 10, &[], s(1)).await.unwrap()),
        [anyone.id]
    );
    let later = store.insert_execution(&accepted(Some("n1"))).await.unwrap();
    assert_eq!(
        ids(store.claim_queued("n1", 1, &[], s(1)).await.unwrap()),
        [by_n1.id]
    );
    assert!(
        store
            .claim_queued("n2", 10, &[], s(4))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(store.claim_queued("n2", 10, &[], s(6)).await.unwrap()),
        [later.id],
        "waited long enough"
    );
}

on_both! {
    #[tokio::test] nodes_and_doors_are_listed
        => sqlite_nodes_and_doors_are_listed, postgres_nodes_and_doors_are_listed;
    #[tokio::test] an_execution_waits_for_the_node_that_accepted_it
        => sqlite_an_execution_waits_for_the_node_that_accepted_it, postgres_an_execution_waits_for_the_node_that_accepted_it;
    #[tokio::test] leases_are_held_renewed_and_taken_over_once
        => sqlite_leases_are_held_renewed_and_taken_over_once, postgres_leases_are_held_renewed_and_taken_over_once;
    #[tokio::test] chat_links_and_deliveries
        => sqlite_chat_links_and_deliveries, postgres_chat_links_and_deliveries;
    #[tokio::test] approvals_hold_and_release
        => sqlite_approvals_hold_and_release, postgres_approvals_hold_and_release;
    #[tokio::test] life_of_an_execution
        => sqlite_life_of_an_execution, postgres_life_of_an_execution;
    #[tokio::test] listing_filters_and_pages
        => sqlite_listing_filters_and_pages, postgres_listing_filters_and_pages;
    #[tokio::test] restart_marks_running_lost_and_cancels_waiting
        => sqlite_restart_marks_running_lost_and_cancels_waiting,
           postgres_restart_marks_running_lost_and_cancels_waiting;
    #[tokio::test] workflows_keep_their_state_and_steps
        => sqlite_workflows_keep_their_state_and_steps,
           postgres_workflows_keep_their_state_and_steps;
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        concurrent_alert_batches_are_each_kept_and_answered_with_their_own_alerts
        => sqlite_concurrent_alert_batches_are_each_kept_and_answered_with_their_own_alerts,
           postgres_concurrent_alert_batches_are_each_kept_and_answered_with_their_own_alerts;
    #[tokio::test] alerts_changed_since_a_time_are_listed_oldest_first
        => sqlite_alerts_changed_since_a_time_are_listed_oldest_first,
           postgres_alerts_changed_since_a_time_are_listed_oldest_first;
    #[tokio::test] alerts_keep_their_start_while_firing_and_resolve_when_due
        => sqlite_alerts_keep_their_start_while_firing_and_resolve_when_due,
           postgres_alerts_keep_their_start_while_firing_and_resolve_when_due;
    #[tokio::test] groups_the_notification_log_and_deliveries_are_kept
        => sqlite_groups_the_notification_log_and_deliveries_are_kept,
           postgres_groups_the_notification_log_and_deliveries_are_kept;
    #[tokio::test] silences_are_kept_listed_and_expired
        => sqlite_silences_are_kept_listed_and_expired,
           postgres_silences_are_kept_listed_and_expired;
    #[tokio::test] tokens_are_kept_revoked_and_touched
        => sqlite_tokens_are_kept_revoked_and_touched, postgres_tokens_are_kept_revoked_and_touched;
    #[tokio::test] claims_are_released_and_catalog_loads_offline_runs_recorded
        => sqlite_claims_are_released_and_catalog_loads_offline_runs_recorded,
           postgres_claims_are_released_and_catalog_loads_offline_runs_recorded;
    #[tokio::test] escalations_automations_and_chat_cards_are_kept
        => sqlite_escalations_automations_and_chat_cards_are_kept,
           postgres_escalations_automations_and_chat_cards_are_kept;
    #[tokio::test] an_alert_sent_twice_in_one_batch_is_upserted_in_order
        => sqlite_an_alert_sent_twice_in_one_batch_is_upserted_in_order,
           postgres_an_alert_sent_twice_in_one_batch_is_upserted_in_order;
    #[tokio::test] the_audit_chain_grows_and_pages
        => sqlite_the_audit_chain_grows_and_pages, postgres_the_audit_chain_grows_and_pages;
}

on_both_with_two_nodes! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        two_nodes_claim_every_execution_exactly_once
        => sqlite_two_nodes_claim_every_execution_exactly_once,
           postgres_two_nodes_claim_every_execution_exactly_once;
}

// Not on SQLite: one node owns a SQLite file, and its one writer already
// serializes appends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_nodes_append_to_one_audit_chain() {
    let (_server, a, b) = postgres_nodes().await;
    two_nodes_append_to_one_audit_chain(a, b).await;
}

#[tokio::test]
async fn sqlite_reopens_with_data_kept() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let id = {
        let store = switchboard_store::open(&url).await.unwrap();
        store
            .insert_execution(&new("x.a", "alice", "cli"))
            .await
            .unwrap()
            .id
    };
    let store = switchboard_store::open(&url).await.unwrap();
    assert_eq!(
        store
            .get_execution(id)
            .await
            .unwrap()
            .unwrap()
            .action
            .as_str(),
        "x.a"
    );
}

#[tokio::test]
async fn unknown_storage_urls_are_refused() {
    let err = switchboard_store::open("mysql://x").await.err().unwrap();
    assert!(err.to_string().contains("unsupported storage URL"));
    assert!(err.to_string().contains("postgres://"), "{err}");
}

#[tokio::test]
async fn sqlite_checkpoints_its_write_ahead_log() {
    let (dir, store) = sqlite().await;
    for _ in 0..3000 {
        store
            .insert_execution(&new("x.a", "alice", "cli"))
            .await
            .unwrap();
    }
    // Every kind of read, on the read connections, between the writes.
    store
        .list_executions(&ExecutionFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    store.get_execution(ExecutionId(1)).await.unwrap();
    store.queue_depth().await.unwrap();
    store.output(ExecutionId(1), 0, 10).await.unwrap();
    for _ in 0..3000 {
        store
            .insert_execution(&new("x.a", "alice", "cli"))
            .await
            .unwrap();
    }
    let size = |name: &str| {
        std::fs::metadata(dir.path().join(name))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    assert!(
        size("db.sqlite") > 100_000,
        "nothing was checkpointed into the database file: {} bytes",
        size("db.sqlite")
    );
    // Checkpoints run in the background: within a few seconds of the
    // writes the log's file is back under its bound, however far a burst
    // of writes took it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while size("db.sqlite-wal") >= 8 * 1024 * 1024 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        size("db.sqlite-wal") < 8 * 1024 * 1024,
        "the WAL grows without bound: {} bytes",
        size("db.sqlite-wal")
    );
}

fn alert(fingerprint: &str, firing: bool, starts_at: i64, ends_at: Option<i64>) -> StoredAlert {
    StoredAlert {
        fingerprint: fingerprint.to_owned(),
        labels: [("alertname".to_owned(), "DiskFull".to_owned())].into(),
        annotations: Default::default(),
        firing,
        starts_at: Timestamp(starts_at),
        ends_at: ends_at.map(Timestamp),
        updated_at: Timestamp(starts_at),
        source: "generic".to_owned(),
        generator_url: None,
        dedup_key: None,
    }
}

/// What changed since a time: the alerts received then or later, oldest
/// first, each as now kept.
async fn alerts_changed_since_a_time_are_listed_oldest_first(store: Arc<dyn Store>) {
    let fps = |list: Vec<StoredAlert>| -> Vec<(String, i64)> {
        list.into_iter()
            .map(|a| (a.fingerprint, a.updated_at.micros()))
            .collect()
    };
    store
        .upsert_alerts(vec![
            alert("aa", true, 100, None),
            alert("bb", true, 200, None),
        ])
        .await
        .unwrap();
    let mut again = alert("aa", false, 300, Some(300));
    again.updated_at = Timestamp(300);
    store.upsert_alerts(vec![again]).await.unwrap();
    let changed = store.alerts_changed_since(Timestamp(150)).await.unwrap();
    assert!(!changed[1].firing);
    assert_eq!(
        fps(changed),
        [("bb".to_owned(), 200), ("aa".to_owned(), 300)]
    );
    assert_eq!(
        fps(store.alerts_changed_since(Timestamp(300)).await.unwrap()),
        [("aa".to_owned(), 300)]
    );
    assert!(
        store
            .alerts_changed_since(Timestamp(301))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn concurrent_alert_batches_are_each_kept_and_answered_with_their_own_alerts(
    store: Arc<dyn Store>,
) {
    // Half of them known already, started earlier.
    let known: Vec<StoredAlert> = (0..20)
        .map(|r| alert(&format!("{r:02}-0000"), true, 50, None))
        .collect();
    store.upsert_alerts(known).await.unwrap();
    let requests = (0..20).map(|r| {
        let store = store.clone();
        tokio::spawn(async move {
            let batch: Vec<StoredAlert> = (0..200)
                .map(|i| alert(&format!("{r:02}-{i:04}"), true, 1_000 + r, None))
                .collect();
            (r, store.upsert_alerts(batch).await.unwrap())
        })
    });
    for done in futures::future::join_all(requests).await {
        let (r, kept) = done.unwrap();
        assert_eq!(kept.len(), 200);
        assert!(
            kept.iter()
                .all(|a| a.fingerprint.starts_with(&format!("{r:02}-")))
        );
        // The known one keeps its earlier start; the new ones have theirs.
        assert_eq!(kept[0].starts_at, Timestamp(50));
        assert!(
            kept[1..]
                .iter()
                .all(|a| a.starts_at == Timestamp(1_000 + r))
        );
    }
    assert_eq!(store.list_alerts(true, 10_000).await.unwrap().len(), 4_000);
}

async fn alerts_keep_their_start_while_firing_and_resolve_when_due(store: Arc<dyn Store>) {
    store
        .upsert_alerts(vec![
            alert("a", true, 100, Some(1_000)),
            alert("b", true, 100, None),
        ])
        .await
        .unwrap();
    // Sent again while firing: the start stays the first one, and the
    // alert as kept says so.
    let kept = store
        .upsert_alerts(vec![alert("a", true, 500, Some(2_000))])
        .await
        .unwrap();
    assert_eq!(kept[0].starts_at, Timestamp(100));
    let listed = store.list_alerts(true, 10).await.unwrap();
    let a = listed.iter().find(|x| x.fingerprint == "a").unwrap();
    assert_eq!(
        (a.starts_at, a.ends_at),
        (Timestamp(100), Some(Timestamp(2_000)))
    );

    // Due: `a` ends at 2000; `b` has no end and stays firing.
    assert_eq!(store.resolve_due_alerts(Timestamp(2_000)).await.unwrap(), 1);
    let firing = store.list_alerts(true, 10).await.unwrap();
    assert_eq!(firing.len(), 1);
    assert_eq!(firing[0].fingerprint, "b");

    // Firing again after it resolved: a new start.
    store
        .upsert_alerts(vec![alert("a", true, 3_000, Some(9_000))])
        .await
        .unwrap();
    let all = store.list_alerts(false, 10).await.unwrap();
    let a = all.iter().find(|x| x.fingerprint == "a").unwrap();
    assert!(a.firing);
    assert_eq!(a.starts_at, Timestamp(3_000));

    // A PagerDuty-style resolve names its key.
    let mut keyed = alert("c", true, 100, None);
    keyed.dedup_key = Some("disk-db-1".to_owned());
    store.upsert_alerts(vec![keyed]).await.unwrap();
    // Sent again without its key (another door): the key and start stay,
    // and the alert as kept says so.
    let again = store
        .upsert_alerts(vec![
            alert("c", true, 200, None),
            alert("d", true, 200, None),
        ])
        .await
        .unwrap();
    assert_eq!(
        (again[0].dedup_key.as_deref(), again[0].starts_at),
        (Some("disk-db-1"), Timestamp(100))
    );
    assert_eq!(
        (again[1].dedup_key.as_deref(), again[1].starts_at),
        (None, Timestamp(200))
    );
    let resolved = store
        .resolve_alert_by_dedup_key("disk-db-1", Timestamp(4_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            resolved.fingerprint.as_str(),
            resolved.firing,
            resolved.ends_at
        ),
        ("c", false, Some(Timestamp(4_000)))
    );
    assert!(
        store
            .resolve_alert_by_dedup_key("disk-db-1", Timestamp(4_000))
            .await
            .unwrap()
            .is_none()
    );
    let all = store.list_alerts(false, 10).await.unwrap();
    let c = all.iter().find(|x| x.fingerprint == "c").unwrap();
    assert!(!c.firing);
    // Firing ones come first.
    assert!(all[0].firing && !all[all.len() - 1].firing);
}

fn group(key: &str, next: i64) -> StoredGroup {
    StoredGroup {
        group_key: key.to_owned(),
        receiver: "ops".to_owned(),
        labels: [("alertname".to_owned(), "DiskFull".to_owned())].into(),
        route: "route".to_owned(),
        created_at: Timestamp(10),
        next_flush_at: Timestamp(next),
        flushed: false,
    }
}

async fn groups_the_notification_log_and_deliveries_are_kept(store: Arc<dyn Store>) {
    store
        .upsert_alerts(vec![
            alert("00000000000000aa", true, 100, None),
            alert("00000000000000bb", false, 100, Some(200)),
            alert("00000000000000cc", false, 100, Some(200)),
        ])
        .await
        .unwrap();
    store
        .save_alert_groups(&[group("g1", 1_000), group("g2", 1_000)])
        .await
        .unwrap();
    for subject in ["group:ops:g1", "group:ops:g2"] {
        store
            .save_ack(&StoredAck {
                subject: subject.to_owned(),
                acked_by: "bob".to_owned(),
                acked_at: Timestamp(900),
                comment: "on it".to_owned(),
            })
            .await
            .unwrap();
    }
    let flush = FlushRecord {
        group: Some(StoredGroup {
            flushed: true,
            ..group("g1", 5_000)
        }),
        group_key: "g1".to_owned(),
        receiver: "ops".to_owned(),
        log: vec![StoredLogEntry {
            group_key: "g1".to_owned(),
            receiver: "ops".to_owned(),
            integration: "webhook[0]".to_owned(),
            firing: vec!["00000000000000aa".to_owned(), "00000000000000bb".to_owned()],
            resolved: vec![],
            sent_at: Timestamp(1_000),
        }],
        deliveries: vec![NewDelivery {
            group_key: "g1".to_owned(),
            receiver: "ops".to_owned(),
            integration: "webhook[0]".to_owned(),
            notification: serde_json::json!({"status": "firing", "alerts": [1, 2]}),
            created_at: Timestamp(1_000),
        }],
        cleared_acks: vec![],
    };
    let ended = FlushRecord {
        group: None,
        group_key: "g2".to_owned(),
        receiver: "ops".to_owned(),
        log: vec![],
        deliveries: vec![],
        cleared_acks: vec!["group:ops:g2".to_owned()],
    };
    store.record_flushes(&[flush, ended]).await.unwrap();
    let groups = store.alert_groups().await.unwrap();
    assert_eq!(groups.len(), 1, "g2 ended");
    assert_eq!(
        (groups[0].next_flush_at, groups[0].flushed),
        (Timestamp(5_000), true)
    );
    let acks = store.acks().await.unwrap();
    assert_eq!(acks.len(), 1, "the ended group's acknowledgement went");
    assert_eq!(
        (acks[0].subject.as_str(), acks[0].acked_by.as_str()),
        ("group:ops:g1", "bob")
    );
    store
        .delete_acks(&["group:ops:g1".to_owned()])
        .await
        .unwrap();
    assert!(store.acks().await.unwrap().is_empty());
    let log = store.notification_log().await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].firing.len(), 2);
    // To regroup: the firing alert, and the resolved one a receiver was
    // told was firing; not the resolved one nobody heard of.
    let mut regroup: Vec<String> = store
        .alerts_to_regroup()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.fingerprint)
        .collect();
    regroup.sort();
    assert_eq!(regroup, ["00000000000000aa", "00000000000000bb"]);

    // A delivery: due, retried, then delivered; the error is kept.
    let due = store.due_deliveries(Timestamp(1_000), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].status, DeliveryStatus::Pending);
    assert_eq!(due[0].notification["alerts"][1], 2);
    let id = due[0].id;
    store
        .record_delivery_attempt(
            id,
            &DeliveryAttempt {
                status: DeliveryStatus::Pending,
                attempts: 1,
                next_attempt_at: Timestamp(3_000),
                error: Some("503".to_owned()),
                delivered_at: None,
            },
        )
        .await
        .unwrap();
    assert!(
        store
            .due_deliveries(Timestamp(2_999), 10)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .record_delivery_attempt(
            id,
            &DeliveryAttempt {
                status: DeliveryStatus::Delivered,
                attempts: 2,
                next_attempt_at: Timestamp(3_000),
                error: None,
                delivered_at: Some(Timestamp(3_000)),
            },
        )
        .await
        .unwrap();
    assert!(
        store
            .due_deliveries(Timestamp(9_999), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let listed = store.list_deliveries(&["g1".to_owned()], 10).await.unwrap();
    assert_eq!(listed[0].status, DeliveryStatus::Delivered);
    assert_eq!(listed[0].attempts, 2);
    assert_eq!(listed[0].last_error.as_deref(), Some("503"));
    assert!(
        store
            .list_deliveries(&["g9".to_owned()], 10)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .delete_alert_groups(&[("g1".to_owned(), "ops".to_owned())])
        .await
        .unwrap();
    assert!(store.alert_groups().await.unwrap().is_empty());
}

async fn silences_are_kept_listed_and_expired(store: Arc<dyn Store>) {
    let silence = StoredSilence {
        id: "s1".to_owned(),
        matchers: "{instance=\"db-1\"}".to_owned(),
        starts_at: Timestamp(100),
        ends_at: Timestamp(1_000),
        created_by: "alice".to_owned(),
        comment: "disk swap".to_owned(),
        created_at: Timestamp(100),
        updated_at: Timestamp(100),
    };
    store.insert_silence(&silence).await.unwrap();
    let current = store.silences(Some(Timestamp(500)), 10).await.unwrap();
    assert_eq!(current, std::slice::from_ref(&silence));
    let expired = store
        .expire_silence("s1", Timestamp(600))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(expired.ends_at, Timestamp(600));
    assert!(
        store
            .silences(Some(Timestamp(600)), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.silences(None, 10).await.unwrap().len(), 1);
    // Expiring again does not move its end later.
    let again = store
        .expire_silence("s1", Timestamp(900))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.ends_at, Timestamp(600));
    assert!(
        store
            .expire_silence("nope", Timestamp(900))
            .await
            .unwrap()
            .is_none()
    );
}

async fn tokens_are_kept_revoked_and_touched(store: Arc<dyn Store>) {
    let alice = Principal::new("alice").unwrap();
    let token = |hash: &str| NewToken {
        hash: hash.to_owned(),
        principal: alice.clone(),
        scopes: vec![Scope::Read, Scope::Run],
        description: "deploy bot".to_owned(),
        created_by: Principal::new("admin").unwrap(),
        created_at: Timestamp(100),
        expires_at: Some(Timestamp(10_000)),
    };
    let first = store.create_token(&token("h1")).await.unwrap();
    let second = store.create_token(&token("h2")).await.unwrap();
    assert_eq!(first.scopes, [Scope::Read, Scope::Run]);
    assert_eq!(
        (first.expires_at, first.revoked_at, first.last_used_at),
        (Some(Timestamp(10_000)), None, None)
    );
    assert!(
        store.create_token(&token("h1")).await.is_err(),
        "a hash is stored once"
    );
    assert_eq!(
        store.token_by_hash("h2").await.unwrap().unwrap().id,
        second.id
    );
    assert!(store.token_by_hash("h9").await.unwrap().is_none());
    let listed: Vec<i64> = store
        .list_tokens()
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, [second.id, first.id], "newest first");

    store.touch_token(first.id, Timestamp(500)).await.unwrap();
    assert!(store.revoke_token(first.id, Timestamp(600)).await.unwrap());
    assert!(
        !store.revoke_token(first.id, Timestamp(700)).await.unwrap(),
        "revoked once"
    );
    assert!(!store.revoke_token(9_999, Timestamp(700)).await.unwrap());
    let kept = store.token_by_hash("h1").await.unwrap().unwrap();
    assert_eq!(
        (kept.last_used_at, kept.revoked_at),
        (Some(Timestamp(500)), Some(Timestamp(600)))
    );
}

async fn claims_are_released_and_catalog_loads_offline_runs_recorded(store: Arc<dyn Store>) {
    assert!(!store.backend().is_empty());
    store.ping().await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let e = store
            .insert_execution(&new("x.a", "alice", "cli"))
            .await
            .unwrap();
        ids.push(e.id);
    }
    let claimed = store
        .claim_queued("n1", 2, &[], Timestamp(100))
        .await
        .unwrap();
    let claimed_ids: Vec<ExecutionId> = claimed.iter().map(|e| e.id).collect();
    assert_eq!(claimed_ids, ids[..2], "the oldest first");
    assert!(claimed.iter().all(|e| e.started_at == Some(Timestamp(100))));
    assert_eq!(store.queue_depth().await.unwrap(), 1);
    store.release_claims(&[ids[0]]).await.unwrap();
    store.release_claims(&[]).await.unwrap();
    let released = store.get_execution(ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (released.status, released.node, released.started_at),
        (ExecutionStatus::Queued, None, None)
    );
    assert_eq!(store.queue_depth().await.unwrap(), 2);
    // A finished execution is not given back.
    let finish = Finish {
        status: ExecutionStatus::Failed,
        started_at: None,
        exit_code: Some(3),
        result: None,
        error: Some("boom".to_owned()),
        output_bytes: 0,
        output_truncated: true,
        finished_at: Timestamp(200),
        artifacts: vec![],
    };
    assert!(store.finish_execution(ids[1], &finish).await.unwrap());
    store.release_claims(&[ids[1]]).await.unwrap();
    let failed = store.get_execution(ids[1]).await.unwrap().unwrap();
    assert_eq!(
        (
            failed.status,
            failed.started_at,
            failed.exit_code,
            failed.output_truncated
        ),
        (ExecutionStatus::Failed, Some(Timestamp(100)), Some(3), true),
        "the claim time stays when the process never started"
    );

    store
        .record_catalog_load(&CatalogLoad {
            hash: "abc".to_owned(),
            git_commit: Some("cafe".to_owned()),
            actions: 12,
            node: "n1".to_owned(),
            loaded_at: Timestamp(100),
        })
        .await
        .unwrap();
    let bob = Principal::new("bob").unwrap();
    assert!(
        store
            .register_offline_run("run-1", &bob, Timestamp(100))
            .await
            .unwrap()
    );
    assert!(
        !store
            .register_offline_run("run-1", &bob, Timestamp(200))
            .await
            .unwrap(),
        "a second push adds nothing"
    );
}

async fn escalations_automations_and_chat_cards_are_kept(store: Arc<dyn Store>) {
    let escalation = |key: &str, step: u32| StoredEscalation {
        group_key: key.to_owned(),
        receiver: "ops".to_owned(),
        chain: "db".to_owned(),
        state: "running".to_owned(),
        step,
        round: 1,
        due_at: Timestamp(1_000),
        updated_at: Timestamp(500),
    };
    store
        .save_escalations(&[escalation("g1", 0), escalation("g2", 0)])
        .await
        .unwrap();
    store
        .save_escalations(&[escalation("g1", 2)])
        .await
        .unwrap();
    let mut kept = store.escalations().await.unwrap();
    kept.sort_by(|a, b| a.group_key.cmp(&b.group_key));
    assert_eq!(kept, [escalation("g1", 2), escalation("g2", 0)]);
    // A group that ends takes its escalation with it.
    store
        .record_flushes(&[FlushRecord {
            group: None,
            group_key: "g2".to_owned(),
            receiver: "ops".to_owned(),
            log: vec![],
            deliveries: vec![],
            cleared_acks: vec![],
        }])
        .await
        .unwrap();
    assert_eq!(store.escalations().await.unwrap(), [escalation("g1", 2)]);

    let run = |rule: &str, starts_at: i64, created_at: i64| NewAutomation {
        rule: rule.to_owned(),
        fingerprint: "00000000000000aa".to_owned(),
        starts_at: Timestamp(starts_at),
        due_at: Timestamp(created_at + 10),
        not_since: Timestamp(created_at - 100),
        created_at: Timestamp(created_at),
    };
    assert_eq!(
        store
            .schedule_automations(&[run("restart", 1, 1_000), run("page", 1, 1_000)])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .schedule_automations(&[run("restart", 1, 1_001)])
            .await
            .unwrap(),
        0,
        "one run per rule and firing episode"
    );
    assert_eq!(
        store
            .schedule_automations(&[run("restart", 2, 1_050)])
            .await
            .unwrap(),
        0,
        "rate limited: it ran for this alert within its window"
    );
    assert!(
        store
            .due_automations(Timestamp(1_009), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = store.due_automations(Timestamp(1_010), 10).await.unwrap();
    assert_eq!(
        due.iter().map(|a| a.rule.as_str()).collect::<Vec<_>>(),
        ["restart", "page"],
        "oldest first"
    );
    store
        .finish_automation(due[0].id, "ran", Some(42), None, Timestamp(1_020))
        .await
        .unwrap();
    store
        .finish_automation(due[0].id, "failed", None, Some("late"), Timestamp(1_030))
        .await
        .unwrap();
    store
        .finish_automation(
            due[1].id,
            "skipped",
            None,
            Some("resolved"),
            Timestamp(1_020),
        )
        .await
        .unwrap();
    assert!(
        store
            .due_automations(Timestamp(9_000), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .schedule_automations(&[run("restart", 3, 1_200)])
            .await
            .unwrap(),
        1,
        "outside the window it runs again"
    );
    let runs = store.automations_of("00000000000000aa").await.unwrap();
    assert_eq!(
        runs.iter()
            .map(|a| (a.rule.as_str(), a.state.as_str(), a.execution_id))
            .collect::<Vec<_>>(),
        [
            ("restart", "pending", None),
            ("page", "skipped", None),
            ("restart", "ran", Some(42))
        ],
        "newest first; an ended run stays ended"
    );
    assert_eq!(runs[1].reason.as_deref(), Some("resolved"));
    assert!(store.automations_of("ff").await.unwrap().is_empty());

    let card = |integration: &str, message: &str| StoredChatCard {
        group_key: "g1".to_owned(),
        receiver: "ops".to_owned(),
        integration: integration.to_owned(),
        platform: "slack".to_owned(),
        room: "#ops".to_owned(),
        message_id: message.to_owned(),
        thread: None,
        notification: json!({"status": "firing"}),
        updated_at: Timestamp(1_000),
    };
    store.save_chat_card(&card("chat[1]", "m1")).await.unwrap();
    store.save_chat_card(&card("chat[0]", "m0")).await.unwrap();
    let mut edited = card("chat[1]", "m1");
    edited.thread = Some("t1".to_owned());
    edited.notification = json!({"status": "resolved"});
    store.save_chat_card(&edited).await.unwrap();
    assert_eq!(
        store.chat_cards("g1", "ops").await.unwrap(),
        [card("chat[0]", "m0"), edited]
    );
    assert!(store.chat_cards("g1", "dev").await.unwrap().is_empty());
    store
        .delete_chat_card("g1", "ops", "chat[0]")
        .await
        .unwrap();
    assert_eq!(store.chat_cards("g1", "ops").await.unwrap().len(), 1);
}

async fn an_alert_sent_twice_in_one_batch_is_upserted_in_order(store: Arc<dyn Store>) {
    let mut keyed = alert("00000000000000aa", true, 300, None);
    keyed.dedup_key = Some("k1".to_owned());
    let later = alert("00000000000000aa", true, 100, Some(900));
    let kept = store
        .upsert_alerts(vec![
            keyed,
            alert("00000000000000bb", true, 50, None),
            later,
        ])
        .await
        .unwrap();
    // The second sending sees the first: the earlier start, the key.
    for a in [&kept[0], &kept[2]] {
        assert_eq!(
            (a.starts_at, a.dedup_key.as_deref()),
            (Timestamp(100), Some("k1"))
        );
    }
    assert_eq!(kept[1].starts_at, Timestamp(50));
    let stored = store.alert("00000000000000aa").await.unwrap().unwrap();
    assert_eq!(
        (
            stored.starts_at,
            stored.ends_at,
            stored.dedup_key.as_deref()
        ),
        (Timestamp(100), Some(Timestamp(900)), Some("k1"))
    );
    assert!(store.alert("00000000000000cc").await.unwrap().is_none());

    // A batch larger than one statement takes, its first alert sent again
    // at its end.
    let mut many: Vec<StoredAlert> = (0..2_500)
        .map(|i| alert(&format!("f{i:015x}"), true, 1_000 + i, None))
        .collect();
    many.push(alert("f000000000000000", true, 5, None));
    let kept = store.upsert_alerts(many).await.unwrap();
    assert_eq!(kept.len(), 2_501);
    assert_eq!(
        (kept[0].starts_at, kept[2_500].starts_at),
        (Timestamp(5), Timestamp(5))
    );
    assert!(
        kept[1..2_500]
            .iter()
            .zip(1..)
            .all(|(a, i)| a.starts_at == Timestamp(1_000 + i))
    );
    // The two alerts from before, and the 2500 new ones.
    assert_eq!(store.list_alerts(true, 10_000).await.unwrap().len(), 2_502);
}

fn audit_event(n: usize, ts: i64) -> AuditEvent {
    AuditEvent {
        ts: Timestamp(ts),
        actor: Principal::new("alice").unwrap(),
        origin: Origin::cli(),
        kind: "execution.requested".into(),
        subject: format!("execution:{n}"),
        outcome: "ok".into(),
        // Floats, large numbers and other scripts come back as they went in.
        detail: json!({"params": {"z": 1.5, "a": [n, "ü"], "big": u64::MAX}}),
    }
}

async fn the_audit_chain_grows_and_pages(store: Arc<dyn Store>) {
    assert!(store.audit_records(0, None, 10).await.unwrap().is_empty());
    let first = store
        .append_audit(&[audit_event(1, 100), audit_event(2, 200)])
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2],
        "sealed records come back"
    );
    assert_eq!(first[0].prev_hash, GENESIS);
    assert_eq!(first[1].prev_hash, first[0].hash);
    let next = store.append_audit(&[audit_event(3, 300)]).await.unwrap();
    assert_eq!(next[0].prev_hash, first[1].hash);
    assert!(store.append_audit(&[]).await.unwrap().is_empty());
    let all = store.audit_records(0, None, 100).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[..2], first[..]);
    assert_eq!(verify_chain(&all, (0, GENESIS.to_owned())).unwrap().0, 3);
    let page: Vec<i64> = store
        .audit_records(1, None, 1)
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(page, [2]);
    let since: Vec<i64> = store
        .audit_records(0, Some(Timestamp(200)), 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(since, [2, 3]);
}

/// Two nodes claim from one queue at once, in small batches: every
/// execution is claimed, and by one node only.
async fn two_nodes_claim_every_execution_exactly_once(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    const EXECUTIONS: usize = 500;
    let mut all = BTreeSet::new();
    let one = new("x.a", "alice", "cli");
    for chunk in 0..EXECUTIONS / 50 {
        let inserted = futures::future::join_all((0..50).map(|i| {
            let store = if (chunk + i) % 2 == 0 { &a } else { &b };
            store.insert_execution(&one)
        }))
        .await;
        all.extend(inserted.into_iter().map(|e| e.unwrap().id));
    }
    assert_eq!(all.len(), EXECUTIONS);
    let start = Arc::new(tokio::sync::Barrier::new(2));
    let node = |store: Arc<dyn Store>, name: &'static str| {
        let start = start.clone();
        tokio::spawn(async move {
            start.wait().await;
            let mut claimed = Vec::new();
            loop {
                let batch = store
                    .claim_queued(name, 7, &[], Timestamp::now())
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return claimed;
                }
                assert!(batch.len() <= 7);
                assert!(batch.windows(2).all(|w| w[0].id < w[1].id));
                for e in batch {
                    assert_eq!(
                        (e.status, e.node.as_deref()),
                        (ExecutionStatus::Running, Some(name))
                    );
                    claimed.push(e.id);
                }
                // A node runs what it claimed before it claims again. Without
                // this pause one SQLite writer can drain the whole queue while
                // the other sleeps in its busy handler, and the test would not
                // be a race at all.
                tokio::time::sleep(std::time::Duration::from_millis(3)).await;
            }
        })
    };
    let (by_a, by_b) = tokio::join!(node(a.clone(), "n1"), node(b.clone(), "n2"));
    let (by_a, by_b) = (by_a.unwrap(), by_b.unwrap());
    assert!(
        !by_a.is_empty() && !by_b.is_empty(),
        "the nodes claimed side by side: {} and {}",
        by_a.len(),
        by_b.len()
    );
    let set_a: BTreeSet<ExecutionId> = by_a.iter().copied().collect();
    let set_b: BTreeSet<ExecutionId> = by_b.iter().copied().collect();
    assert_eq!(set_a.len(), by_a.len(), "n1 claimed an execution twice");
    assert_eq!(set_b.len(), by_b.len(), "n2 claimed an execution twice");
    assert!(
        set_a.is_disjoint(&set_b),
        "claimed by both nodes: {:?}",
        set_a.intersection(&set_b).collect::<Vec<_>>()
    );
    assert_eq!(
        set_a.union(&set_b).copied().collect::<BTreeSet<_>>(),
        all,
        "every execution is claimed"
    );
    assert_eq!(a.queue_depth().await.unwrap(), 0);
    // What each node was told it claimed is what the database says.
    let running = ExecutionFilter {
        status: Some(ExecutionStatus::Running),
        limit: 1_000,
        ..Default::default()
    };
    for e in b.list_executions(&running).await.unwrap() {
        let expected = if set_a.contains(&e.id) { "n1" } else { "n2" };
        assert_eq!(e.node.as_deref(), Some(expected), "execution {}", e.id.0);
    }
}

/// Two nodes append to the audit log at once: the records form one chain
/// that verifies, with every record in it once.
async fn two_nodes_append_to_one_audit_chain(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    const BATCHES: usize = 40;
    let start = Arc::new(tokio::sync::Barrier::new(2));
    let node = |store: Arc<dyn Store>, node: usize| {
        let start = start.clone();
        tokio::spawn(async move {
            start.wait().await;
            let mut sealed = Vec::new();
            for batch in 0..BATCHES {
                let events: Vec<AuditEvent> = (0..=batch % 3)
                    .map(|i| audit_event(node * 1_000 + batch * 10 + i, 100))
                    .collect();
                sealed.extend(store.append_audit(&events).await.unwrap());
            }
            sealed
        })
    };
    let (by_a, by_b) = tokio::join!(node(a.clone(), 1), node(b.clone(), 2));
    let (by_a, by_b) = (by_a.unwrap(), by_b.unwrap());
    let records = a.audit_records(0, None, 10_000).await.unwrap();
    assert_eq!(records.len(), by_a.len() + by_b.len());
    assert_eq!(
        verify_chain(&records, (0, GENESIS.to_owned())).unwrap().0,
        i64::try_from(records.len()).unwrap(),
        "one unbroken chain"
    );
    // Each node's records are in the chain as it sealed them.
    for sealed in by_a.iter().chain(&by_b) {
        let stored = &records[usize::try_from(sealed.seq - 1).unwrap()];
        assert_eq!(stored, sealed);
    }
}

#[tokio::test]
async fn postgres_reopens_with_data_kept() {
    let server = PgServer::start();
    let url = server.database("switchboard").await;
    let id = {
        let store = switchboard_store::open(&url).await.unwrap();
        store
            .insert_execution(&new("x.a", "alice", "cli"))
            .await
            .unwrap()
            .id
    };
    // Migrations already applied are not applied again.
    let store = switchboard_store::open(&url.replace("postgres://", "postgresql://"))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_execution(id)
            .await
            .unwrap()
            .unwrap()
            .action
            .as_str(),
        "x.a"
    );
}

#[tokio::test]
async fn postgres_refuses_a_missing_database_at_once() {
    let server = PgServer::start();
    let started = std::time::Instant::now();
    let err = switchboard_store::open(&server.url("nope"))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("nope"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "not retried: waiting cannot create it"
    );
}

#[tokio::test]
async fn postgres_carries_on_after_the_server_restarts() {
    let (server, store) = postgres().await;
    let before = store
        .insert_execution(&new("x.a", "alice", "cli"))
        .await
        .unwrap();
    server.restart();
    // The pool's connections broke with the server: each is checked before
    // use and replaced, so the next operations just work.
    for _ in 0..3 {
        store.ping().await.unwrap();
    }
    let after = store
        .insert_execution(&new("x.a", "alice", "cli"))
        .await
        .unwrap();
    assert!(after.id > before.id);
    assert_eq!(store.queue_depth().await.unwrap(), 2);
}

/// Whether `rx` tells of `id` within `wait` (other ids pass by).
async fn heard(
    rx: &mut tokio::sync::broadcast::Receiver<ExecutionId>,
    id: ExecutionId,
    wait: std::time::Duration,
) -> bool {
    tokio::time::timeout(wait, async { while rx.recv().await.unwrap() != id {} })
        .await
        .is_ok()
}

/// Adds output to `id` until `rx` tells of it (a notification sent before
/// the listener listens, or while it listens again, is lost); `seq` is the
/// last chunk's number.
async fn output_until_heard(
    store: &Arc<dyn Store>,
    rx: &mut tokio::sync::broadcast::Receiver<ExecutionId>,
    id: ExecutionId,
    seq: &mut i64,
) {
    for _ in 0..100 {
        *seq += 1;
        let chunk = OutputChunk {
            seq: *seq,
            ts: Timestamp::now(),
            stream: Stream::Stdout,
            text: format!("line {seq}"),
        };
        // Fails while the server restarts; tried again.
        if store.append_output(id, &[chunk]).await.is_ok()
            && heard(rx, id, std::time::Duration::from_millis(200)).await
        {
            return;
        }
    }
    panic!("output of execution {id} never heard of");
}

#[tokio::test]
async fn postgres_tells_every_node_of_output_and_changes_of_status() {
    let (server, a, b) = postgres_nodes().await;
    let mut rx = b.execution_changes().expect("PostgreSQL tells of changes");
    let e = a
        .insert_execution(&new("x.a", "alice", "cli"))
        .await
        .unwrap();
    let mut seq = 0;
    output_until_heard(&a, &mut rx, e.id, &mut seq).await;
    let wait = std::time::Duration::from_secs(5);
    a.claim_queued("n1", 10, &[], Timestamp::now())
        .await
        .unwrap();
    assert!(heard(&mut rx, e.id, wait).await, "claimed: running");
    // Notifications come in the order of commits: none older is left.
    while rx.try_recv().is_ok() {}
    // The connection is lost; the node listens again by itself.
    server.restart();
    output_until_heard(&a, &mut rx, e.id, &mut seq).await;
    let finish = Finish {
        status: ExecutionStatus::Succeeded,
        started_at: None,
        exit_code: Some(0),
        result: None,
        error: None,
        output_bytes: 0,
        output_truncated: false,
        finished_at: Timestamp::now(),
        artifacts: Vec::new(),
    };
    assert!(a.finish_execution(e.id, &finish).await.unwrap());
    assert!(heard(&mut rx, e.id, wait).await, "finished");

    let (_dir, sqlite) = sqlite().await;
    assert!(
        sqlite.execution_changes().is_none(),
        "one node: nothing to hear"
    );
}
