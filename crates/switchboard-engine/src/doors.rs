//! The front doors' live state, kept in the store per node so any node
//! can report it: when each door last heard from a caller, and whether
//! each chat connection (IRC, XMPP, Matrix, Slack Socket Mode, a
//! Mattermost websocket) is up, since when, and what it last said.
//!
//! A door's last event is written at most once per [`EVENT_EVERY`] per
//! node, so a busy API costs no more than a write every few seconds; the
//! write is spawned, never awaited by the request that caused it.
//!
//! Not here: what each door is and how it authenticates (the adapters'
//! `door()` and the http crate), and the report that shows this
//! (`report.rs`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use switchboard_core::Timestamp;

use crate::Engine;

/// A door's last event is written at most this often per node.
pub const EVENT_EVERY: Duration = Duration::from_secs(10);

/// When this node last wrote each door's last event.
#[derive(Default)]
pub(crate) struct DoorEvents(Mutex<HashMap<String, Timestamp>>);

impl DoorEvents {
    /// Whether an event at `now` is to be written: the first one, and then
    /// one per [`EVENT_EVERY`].
    fn due(&self, door: &str, now: Timestamp) -> bool {
        let mut written = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match written.get(door) {
            Some(at) if now < at.after(EVENT_EVERY) => false,
            _ => {
                written.insert(door.to_owned(), now);
                true
            }
        }
    }
}

impl Engine {
    /// Notes that `door` (`api`, `web`, `chat:slack`, `chatops-rpc`,
    /// `webhook`, `schedule`) heard from a caller now.
    pub fn door_event(&self, door: &str) {
        let now = Timestamp::now();
        if !self.shared.door_events.due(door, now) {
            return;
        }
        let store = self.shared.store.clone();
        let node = self.node().to_owned();
        let door = door.to_owned();
        tokio::spawn(async move {
            if let Err(e) = store.note_door_event(&door, &node, now).await {
                tracing::warn!(%door, error = %e, "noting the door's last event failed");
            }
        });
    }

    /// Notes that `door`'s connection came up (with what it reached) or
    /// went down (with why).
    pub async fn door_connection(&self, door: &str, up: bool, detail: &str) {
        let at = Timestamp::now();
        if let Err(e) = self
            .shared
            .store
            .note_door_connection(door, self.node(), up, at, detail)
            .await
        {
            tracing::warn!(%door, error = %e, "noting the door's connection failed");
        }
    }
}
