//! Recording audit events: callers hand an event over and wait until it is
//! stored; a single writer task seals and appends whatever has queued up in
//! one transaction (group commit), so the audit log costs one write for many
//! concurrent events, never one each. Stored records are then handed to the
//! forwarders (syslog, webhooks), which never hold the writer up.

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::audit::AuditEvent;
use switchboard_store::Store;
use tokio::sync::{mpsc, watch};

use crate::audit_forward::Forwarder;

/// Most events sealed in one transaction.
const BATCH: usize = 512;
/// Attempts to store a batch before its callers are told it failed.
const ATTEMPTS: u32 = 5;

/// Whether an event is stored: `None` until the writer has tried.
pub(crate) type Stored = watch::Receiver<Option<Result<(), String>>>;
type Ack = watch::Sender<Option<Result<(), String>>>;

/// The handle to the audit writer.
#[derive(Clone)]
pub(crate) struct AuditLog {
    tx: mpsc::Sender<(AuditEvent, Ack)>,
}

impl AuditLog {
    pub fn start(store: Arc<dyn Store>, forwarder: Forwarder) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(write(store, forwarder, rx));
        Self { tx }
    }

    /// Hands `event` to the writer; the receiver tells when it is stored.
    pub async fn enqueue(&self, event: AuditEvent) -> Stored {
        let (ack, stored) = watch::channel(None);
        if let Err(mpsc::error::SendError((_, ack))) = self.tx.send((event, ack)).await {
            let _ = ack.send(Some(Err("the audit writer has stopped".to_owned())));
        }
        stored
    }

    /// Stores `event`; returns once it is in the chain, or why it is not.
    pub async fn record(&self, event: AuditEvent) -> Result<(), String> {
        wait_stored(self.enqueue(event).await).await
    }
}

/// Waits until the writer has tried to store an event.
pub(crate) async fn wait_stored(mut stored: Stored) -> Result<(), String> {
    match stored.wait_for(Option::is_some).await {
        Ok(result) => result.clone().unwrap_or(Ok(())),
        Err(_) => Err("the audit writer has stopped".to_owned()),
    }
}

async fn write(
    store: Arc<dyn Store>,
    forwarder: Forwarder,
    mut rx: mpsc::Receiver<(AuditEvent, Ack)>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let (events, acks): (Vec<AuditEvent>, Vec<Ack>) = batch.drain(..).unzip();
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            match store.append_audit(&events).await {
                Ok(sealed) => {
                    forwarder.forward(&sealed);
                    break Ok(());
                }
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
            let _ = ack.send(Some(result.clone()));
        }
    }
}
