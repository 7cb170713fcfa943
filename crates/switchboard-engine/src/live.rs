//! Live fan-out of execution output: every execution this node is about to
//! run or is running has an entry here with a broadcast channel and the
//! output not yet written to the store. A watcher subscribes, then reads the
//! store: together they give every chunk, with no gap, whichever node or
//! moment it joins. Watchers of executions not active here read the store
//! (each time it tells that the execution changed, where it can: the
//! engine's `follow`).

use std::collections::HashMap;
use std::sync::Mutex;

use switchboard_core::{ExecutionId, ExecutionStatus, OutputChunk};
use tokio::sync::broadcast;

/// What a live watcher receives.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    Output(OutputChunk),
    Finished(ExecutionStatus),
}

struct Entry {
    sender: broadcast::Sender<LiveEvent>,
    /// Output sent live but not yet stored, in order.
    unflushed: Vec<OutputChunk>,
}

/// The live channels of the executions active on this node.
#[derive(Default)]
pub(crate) struct LiveHub {
    entries: Mutex<HashMap<ExecutionId, Entry>>,
}

/// How many events a slow watcher may fall behind before it re-reads.
const CAPACITY: usize = 256;

impl LiveHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ExecutionId, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts tracking an execution that will run here.
    pub(crate) fn open(&self, id: ExecutionId) {
        self.lock().entry(id).or_insert_with(|| Entry {
            sender: broadcast::channel(CAPACITY).0,
            unflushed: Vec::new(),
        });
    }

    pub(crate) fn publish(&self, id: ExecutionId, chunk: OutputChunk) {
        if let Some(e) = self.lock().get_mut(&id) {
            e.unflushed.push(chunk.clone());
            let _ = e.sender.send(LiveEvent::Output(chunk));
        }
    }

    /// Output waiting to be stored.
    pub(crate) fn unflushed(&self, id: ExecutionId) -> Vec<OutputChunk> {
        self.lock()
            .get(&id)
            .map(|e| e.unflushed.clone())
            .unwrap_or_default()
    }

    /// Forgets output up to `seq`, now that the store has it.
    pub(crate) fn flushed(&self, id: ExecutionId, seq: i64) {
        if let Some(e) = self.lock().get_mut(&id) {
            e.unflushed.retain(|c| c.seq > seq);
        }
    }

    /// Announces the end and stops tracking. Call after the store has the
    /// final state, so that a watcher who finds no entry finds it there.
    pub(crate) fn finish(&self, id: ExecutionId, status: ExecutionStatus) {
        if let Some(e) = self.lock().remove(&id) {
            let _ = e.sender.send(LiveEvent::Finished(status));
        }
    }

    /// A receiver and the output not yet stored, or `None` when the
    /// execution is not active here (then the store has everything).
    pub(crate) fn subscribe(
        &self,
        id: ExecutionId,
    ) -> Option<(broadcast::Receiver<LiveEvent>, Vec<OutputChunk>)> {
        self.lock()
            .get(&id)
            .map(|e| (e.sender.subscribe(), e.unflushed.clone()))
    }
}
