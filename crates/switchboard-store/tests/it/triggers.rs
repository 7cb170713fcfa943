//! Schedule ticks and webhook deliveries: claimed once, whichever process
//! asks, and remembered across a restart.

use std::time::Duration;

use switchboard_core::{ExecutionId, Timestamp};

use crate::pg::PgServer;

/// What keeps a test's database alive: a folder, or a PostgreSQL server.
enum Keep {
    Folder(#[allow(dead_code, reason = "held until the test ends")] tempfile::TempDir),
    Server(#[allow(dead_code, reason = "held until the test ends")] PgServer),
}

async fn sqlite_database() -> (Keep, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    (Keep::Folder(dir), url)
}

async fn postgres_database() -> (Keep, String) {
    let server = PgServer::start();
    let url = server.database("switchboard").await;
    (Keep::Server(server), url)
}

/// Two handles on one database, as two processes would have.
async fn two_handles(
    url: &str,
) -> (
    std::sync::Arc<dyn switchboard_store::Store>,
    std::sync::Arc<dyn switchboard_store::Store>,
) {
    let a = switchboard_store::open(url).await.unwrap();
    let b = switchboard_store::open(url).await.unwrap();
    (a, b)
}

/// Runs each scenario (given its database's URL) on both backends.
macro_rules! on_both {
    ($($scenario:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test]
        async fn $sqlite() {
            let (_keep, url) = sqlite_database().await;
            $scenario(&url).await;
        }

        #[tokio::test]
        async fn $postgres() {
            let (_keep, url) = postgres_database().await;
            $scenario(&url).await;
        }
    )*};
}

on_both! {
    a_tick_is_claimed_once_whoever_asks_and_the_newest_is_remembered
        => sqlite_a_tick_is_claimed_once, postgres_a_tick_is_claimed_once;
    a_delivery_id_is_accepted_once_per_hook_within_its_window
        => sqlite_a_delivery_id_is_accepted_once, postgres_a_delivery_id_is_accepted_once;
}

async fn a_tick_is_claimed_once_whoever_asks_and_the_newest_is_remembered(url: &str) {
    let (a, b) = two_handles(url).await;
    let t1 = Timestamp(1_790_000_000_000_000);
    let t2 = t1.after(Duration::from_secs(60));
    let now = Timestamp::now();

    assert!(
        a.claim_schedule_tick("nightly", t1, "n1", "claimed", now)
            .await
            .unwrap()
    );
    assert!(
        !b.claim_schedule_tick("nightly", t1, "n2", "claimed", now)
            .await
            .unwrap(),
        "the same tick is never claimed twice"
    );
    assert!(
        b.claim_schedule_tick("other", t1, "n2", "claimed", now)
            .await
            .unwrap(),
        "another schedule's tick is its own"
    );
    a.finish_schedule_tick("nightly", t1, "submitted", Some(ExecutionId(7)), None)
        .await
        .unwrap();
    assert!(
        b.claim_schedule_tick("nightly", t2, "n2", "skipped", now)
            .await
            .unwrap()
    );
    b.finish_schedule_tick("nightly", t2, "skipped", None, Some("missed while down"))
        .await
        .unwrap();

    let last = a.last_schedule_ticks().await.unwrap();
    assert_eq!(last.len(), 2, "{last:?}");
    let nightly = last.iter().find(|t| t.schedule == "nightly").unwrap();
    assert_eq!(nightly.tick, t2, "the newest tick");
    assert_eq!(nightly.node, "n2");
    assert_eq!(nightly.outcome, "skipped");
    assert_eq!(nightly.reason.as_deref(), Some("missed while down"));

    let history = a.schedule_ticks("nightly", 10).await.unwrap();
    assert_eq!(
        history.iter().map(|t| t.tick).collect::<Vec<_>>(),
        [t2, t1],
        "newest first"
    );
    assert_eq!(history[1].execution, Some(ExecutionId(7)));
    assert_eq!(history[1].outcome, "submitted");

    // A restart reads the same.
    drop((a, b));
    let again = switchboard_store::open(url).await.unwrap();
    assert_eq!(again.last_schedule_ticks().await.unwrap(), last);
    assert!(
        !again
            .claim_schedule_tick("nightly", t1, "n3", "claimed", now)
            .await
            .unwrap(),
        "still claimed after a restart"
    );

    // A week later, older ticks go; the newest stays.
    let later = t2.after(Duration::from_secs(8 * 24 * 3600));
    assert!(
        again
            .claim_schedule_tick("nightly", later, "n3", "claimed", now)
            .await
            .unwrap()
    );
    let kept: Vec<Timestamp> = again
        .schedule_ticks("nightly", 10)
        .await
        .unwrap()
        .iter()
        .map(|t| t.tick)
        .collect();
    assert_eq!(kept, [later]);
}

async fn a_delivery_id_is_accepted_once_per_hook_within_its_window(url: &str) {
    let (a, b) = two_handles(url).await;
    let now = Timestamp::now();
    let window = Duration::from_secs(300);
    assert!(
        a.record_hook_delivery("github", "d-1", now, now.before(window))
            .await
            .unwrap()
    );
    assert!(
        !b.record_hook_delivery("github", "d-1", now, now.before(window))
            .await
            .unwrap(),
        "a replay, even through another process"
    );
    assert!(
        a.record_hook_delivery("gitlab", "d-1", now, now.before(window))
            .await
            .unwrap(),
        "another hook's ids are its own"
    );

    drop((a, b));
    let again = switchboard_store::open(url).await.unwrap();
    let soon = now.after(Duration::from_secs(10));
    assert!(
        !again
            .record_hook_delivery("github", "d-1", soon, soon.before(window))
            .await
            .unwrap(),
        "remembered after a restart"
    );
    again.forget_hook_delivery("gitlab", "d-1").await.unwrap();
    assert!(
        again
            .record_hook_delivery("gitlab", "d-1", soon, soon.before(window))
            .await
            .unwrap(),
        "a forgotten id is accepted again"
    );
    let late = now.after(Duration::from_secs(301));
    assert!(
        again
            .record_hook_delivery("github", "d-1", late, late.before(window))
            .await
            .unwrap(),
        "forgotten after the window"
    );
}
