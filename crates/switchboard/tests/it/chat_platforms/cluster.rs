//! Chat with several nodes on one PostgreSQL: only the leader holds the
//! platform's long-lived connection, and another node opens it when the
//! leader dies; a platform's retry that lands on another node than the
//! first delivery still runs once and is answered once.

use std::time::{Duration, Instant};

use serde_json::json;

use super::mattermost::Mattermost;
use super::slack::Slack;
use super::{Delivery, Platform, Rig, Room, execution_id};

/// Leases of 2 s, so a failover is quick.
const CLUSTER: &str = "[cluster]\nlease = \"2s\"\n";

#[tokio::test]
async fn only_the_leader_holds_the_websocket_and_the_next_leader_opens_it() {
    let mut rig = Rig::<Mattermost>::start_nodes(2, CLUSTER).await;
    let sockets = rig.fake.sockets();
    sockets.wait_connected(1).await;
    // Three of the follower's heartbeats: it stays off the platform.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!((sockets.opened(), sockets.live()), (1, 1));
    let before = rig.fake.msg("mallory", Room::Ops, "echo before", None);
    rig.deliver(rig.fake.socket(&before)).await;
    rig.reply(before.reply_thread(), "succeeded").await;

    rig.server.kill_9();
    sockets.wait_connected(2).await;
    let after = rig.fake.msg("mallory", Room::Ops, "echo after", None);
    rig.deliver(rig.fake.socket(&after)).await;
    let result = rig.reply(after.reply_thread(), "succeeded").await;
    let id = execution_id(&result.text, "demo.echo");
    let (_, run) = rig.others[0].get(&format!("/executions/{id}")).await;
    assert_eq!(run["node"], "node-2", "{run}");
    assert_eq!((sockets.opened(), sockets.live()), (2, 1));
}

#[tokio::test]
async fn a_retry_that_lands_on_another_node_runs_once_and_is_answered_once() {
    let rig = Rig::<Slack>::start_nodes(2, CLUSTER).await;
    let m = rig.fake.msg("mallory", Room::Ops, "uptime", None);
    let nodes = [&rig.server, &rig.others[0]];
    for (n, delivery) in rig.fake.repeated(&m).into_iter().enumerate() {
        match delivery {
            Delivery::Socket(_) => rig.deliver(delivery).await,
            http => {
                let (status, body) = rig.post_to(nodes[n % 2], http).await;
                assert_eq!(status, 200, "{body}");
            }
        }
    }
    let result = rig.reply(m.reply_thread(), "succeeded").await;
    let id = execution_id(&result.text, "host.uptime");
    rig.barrier().await;
    let ran = rig.executions().await;
    assert_eq!(ran.len(), 1, "one run: {ran:?}");
    assert_eq!(ran[0]["id"], id);
    let answers: Vec<String> = rig.in_room(Room::Ops).into_iter().map(|s| s.text).collect();
    assert_eq!(
        answers.len(),
        2,
        "one acknowledgement and one result: {answers:#?}"
    );
}

#[tokio::test]
async fn a_leader_cut_from_the_database_closes_its_connection_before_another_opens_one() {
    let rig = Rig::<Mattermost>::start_nodes(2, CLUSTER).await;
    let (first, second) = (&rig.server, &rig.others[0]);
    let sockets = rig.fake.sockets();
    sockets.wait_connected(1).await;

    rig.link.as_ref().unwrap().cut();
    let cut = Instant::now();
    // Watched closely: never two connections at once.
    let mut most = 0;
    while sockets.opened() < 2 || sockets.live() != 1 {
        most = most.max(sockets.live());
        assert!(
            cut.elapsed() < Duration::from_secs(15),
            "no node took the connection over (opened {}, live {})",
            sockets.opened(),
            sockets.live()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(most, 1, "the deposed leader kept its connection too long");
    let ready = first.readiness().await.unwrap();
    assert_eq!(
        (&ready["status"], &ready["leader"]),
        (&json!("not_ready"), &json!(false)),
        "{ready}"
    );
    assert_eq!(second.readiness().await.unwrap()["leader"], true);
    let m = rig
        .fake
        .msg("mallory", Room::Ops, "echo over the new connection", None);
    rig.deliver(rig.fake.socket(&m)).await;
    rig.reply(m.reply_thread(), "succeeded").await;

    // The network heals: the first node is ready again, and follows.
    rig.link.as_ref().unwrap().heal();
    let healed = Instant::now();
    while first
        .readiness()
        .await
        .is_none_or(|r| r["status"] != "ready")
    {
        assert!(
            healed.elapsed() < Duration::from_secs(30),
            "never ready again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(first.readiness().await.unwrap()["leader"], false);
    assert_eq!((sockets.opened(), sockets.live()), (2, 1));
}
