//! Verifying the audit chain as a store holds it: the whole chain, read a
//! page at a time and checked with core's `verify_chain`. The engine's
//! `audit verify` and `store copy` (on both sides) both use it.
//!
//! Not here: sealing records or appending them (core and each backend).

use serde::Serialize;
use switchboard_core::audit::{ChainBreak, GENESIS, verify_chain};

use crate::{Store, StoreError};

/// Records read at a time.
const PAGE: u32 = 5000;

/// The result of verifying the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditVerification {
    /// Records that verify (up to the break, if any).
    pub records: i64,
    /// The hash of the last of them (the genesis hash when there is none).
    pub head: String,
    /// The first broken record, if any.
    pub broken: Option<ChainBreak>,
}

impl AuditVerification {
    pub fn intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// Walks the whole audit chain of a store, a page at a time.
pub async fn verify_audit(store: &dyn Store) -> Result<AuditVerification, StoreError> {
    let mut head = (0, GENESIS.to_owned());
    loop {
        let page = store.audit_records(head.0, None, PAGE).await?;
        if page.is_empty() {
            return Ok(AuditVerification {
                records: head.0,
                head: head.1,
                broken: None,
            });
        }
        match verify_chain(&page, head.clone()) {
            Ok(next) => head = next,
            Err(broken) => {
                // Records before the break verified; the head is the last of them.
                let records = broken.seq - 1;
                let head = page
                    .iter()
                    .find(|r| r.seq == records)
                    .map_or(head.1, |r| r.hash.clone());
                return Ok(AuditVerification {
                    records,
                    head,
                    broken: Some(broken),
                });
            }
        }
    }
}
