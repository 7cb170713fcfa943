//! Hearing of the executions other nodes run: one `LISTEN` connection per
//! node on `switchboard_executions` (announced by the triggers of migration
//! 0008), its notifications handed to every local watcher through a
//! broadcast channel. Started by the first watcher, so a store opened for
//! a one-off command (`store copy`) holds no extra connection.
//!
//! Notifications are transient: those sent while the connection is down
//! are lost. A watcher therefore still looks at the store now and then;
//! the channel makes it quick, not correct.
//!
//! Not here: what a watcher does with a change (the engine's `follow`).

use std::sync::OnceLock;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use switchboard_core::ExecutionId;
use tokio::sync::broadcast;

/// The channel the triggers notify.
const CHANNEL: &str = "switchboard_executions";
/// How many changes a slow watcher may fall behind (it then re-reads).
const CAPACITY: usize = 1024;
/// The longest wait between two attempts to listen again.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// The changes heard, started once.
#[derive(Default)]
pub(super) struct Changes {
    sender: OnceLock<broadcast::Sender<ExecutionId>>,
}

impl Changes {
    /// A receiver of the ids of executions whose output or status changed.
    pub(super) fn subscribe(&self, pool: &PgPool) -> broadcast::Receiver<ExecutionId> {
        self.sender
            .get_or_init(|| {
                let (sender, _) = broadcast::channel(CAPACITY);
                tokio::spawn(listen(pool.clone(), sender.clone()));
                sender
            })
            .subscribe()
    }
}

/// Listens until the pool closes, listening again (with backoff) after
/// every loss of the connection.
async fn listen(pool: PgPool, sender: broadcast::Sender<ExecutionId>) {
    let mut pause = Duration::from_millis(100);
    while !pool.is_closed() {
        match hear(&pool, &sender).await {
            Ok(()) => pause = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(error = %e, "listening for other nodes' executions failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}

/// One connection's worth: returns when it is lost.
async fn hear(pool: &PgPool, sender: &broadcast::Sender<ExecutionId>) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    while let Some(notification) = listener.try_recv().await? {
        if let Ok(id) = notification.payload().parse::<i64>() {
            // No receiver is no error: nobody watches right now.
            let _ = sender.send(ExecutionId(id));
        }
    }
    Ok(())
}
