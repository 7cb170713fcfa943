//! Chat with several nodes on one PostgreSQL: only the leader holds the
//! platform's long-lived connection, and another node opens it when the
//! leader dies; a platform's retry that lands on another node than the
//! first delivery still runs once and is answered once.

use std::time::Duration;

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
