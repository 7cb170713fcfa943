//! Recording audit events: callers hand an event over and wait until it is
//! stored; a single writer task seals and appends whatever has queued up in
//! one transaction (group commit), so the audit log costs one write for many
//! concurrent events, never one each.

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::audit::AuditEvent;
use switchboard_store::Store;
use tokio::sync::{mpsc, oneshot};

/// Most events sealed in one transaction.
const BATCH: usize = 512;
/// Attempts to store a batch before its callers are told it failed.
const ATTEMPTS: u32 = 5;

type Ack = oneshot::Sender<Result<(), String>>;

/// The handle to the audit writer.
#[derive(Clone)]
pub(crate) struct AuditLog {
    tx: mpsc::Sender<(AuditEvent, Ack)>,
}

impl AuditLog {
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(write(store, rx));
        Self { tx }
    }

    /// Stores `event`; returns once it is in the chain, or why it is not.
    pub async fn record(&self, event: AuditEvent) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send((event, ack))
            .await
            .map_err(|_| "the audit writer has stopped".to_owned())?;
        done.await
            .map_err(|_| "the audit writer has stopped".to_owned())?
    }
}

async fn write(store: Arc<dyn Store>, mut rx: mpsc::Receiver<(AuditEvent, Ack)>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let (events, acks): (Vec<AuditEvent>, Vec<Ack>) = batch.drain(..).unzip();
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            match store.append_audit(&events).await {
                Ok(_) => break Ok(()),
                Err(e) if attempt < ATTEMPTS => {
                    tracing::error!(error = %e, attempt, "appending to the audit log failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, events = events.len(), "audit records could not be stored");
                    break Err(format!("the audit log cannot be written: {e}"));
                }
            }
        };
        for ack in acks {
            let _ = ack.send(result.clone());
        }
    }
}
