//! The audit log's records and their hash chain. Each record carries the
//! SHA-256 of a canonical encoding of itself together with the previous
//! record's hash, so that changing, deleting, inserting or reordering any
//! record breaks the chain at that point. Storing records and deciding what
//! to record are done elsewhere; this module seals and verifies.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{Origin, Principal, Timestamp};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Something that happened, to be recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub ts: Timestamp,
    /// Who did it.
    pub actor: Principal,
    /// Through which door.
    pub origin: Origin,
    /// What kind of event, dotted: `execution.requested`, `execution.finished`,
    /// `execution.cancelled`, `catalog.loaded`, `catalog.reload_failed`.
    pub kind: String,
    /// What it was about: `execution:42`, `action:host.disk`, `catalog`.
    pub subject: String,
    /// How it ended: `ok`, `denied`, `succeeded`, `failed`, …
    pub outcome: String,
    /// Details (parameters with secrets masked, versions, reasons).
    pub detail: serde_json::Value,
}

impl AuditEvent {
    /// An event happening now.
    pub fn now(
        actor: &Principal,
        origin: &Origin,
        kind: &str,
        subject: impl Into<String>,
        outcome: &str,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            ts: crate::ids::Timestamp::now(),
            actor: actor.clone(),
            origin: origin.clone(),
            kind: kind.to_owned(),
            subject: subject.into(),
            outcome: outcome.to_owned(),
            detail,
        }
    }
}

/// A sealed, stored record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// Seals `event` as record `seq` following a record whose hash is `prev_hash`.
    pub fn seal(seq: i64, event: AuditEvent, prev_hash: &str) -> Self {
        let hash = hash_of(seq, &event, prev_hash);
        Self {
            seq,
            event,
            prev_hash: prev_hash.to_owned(),
            hash,
        }
    }
}

/// The hash of a record: SHA-256, hex, over a canonical encoding of every
/// field (length-prefixed, JSON with sorted keys), so the encoding has one
/// reading only.
fn hash_of(seq: i64, e: &AuditEvent, prev_hash: &str) -> String {
    let mut h = Sha256::new();
    let mut field = |text: &str| {
        h.update(text.len().to_string().as_bytes());
        h.update(b":");
        h.update(text.as_bytes());
        h.update(b";");
    };
    field(&seq.to_string());
    field(&e.ts.micros().to_string());
    field(e.actor.as_str());
    field(e.origin.as_str());
    field(&e.kind);
    field(&e.subject);
    field(&e.outcome);
    field(&canonical_json(&e.detail));
    field(prev_hash);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// JSON text with object keys sorted at every level, whatever map type
/// serde_json was built with.
pub fn canonical_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        serde_json::Value::String(k.clone()),
                        canonical_json(&map[k])
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        serde_json::Value::Array(items) => {
            format!(
                "[{}]",
                items
                    .iter()
                    .map(canonical_json)
                    .collect::<Vec<_>>()
                    .join(",")
            )
        }
        other => other.to_string(),
    }
}

/// Where and why a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The first record that does not verify (or the position where one is missing).
    pub seq: i64,
    pub reason: String,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {}: {}", self.seq, self.reason)
    }
}

/// Checks records in stored order, continuing a chain whose last verified
/// record was `prev` (`(0, GENESIS)` at the start). Returns the new last
/// position, or the first break.
pub fn verify_chain<'a>(
    records: impl IntoIterator<Item = &'a AuditRecord>,
    mut prev: (i64, String),
) -> Result<(i64, String), ChainBreak> {
    for r in records {
        let expected = prev.0 + 1;
        if r.seq != expected {
            return Err(ChainBreak {
                seq: expected,
                reason: format!("expected record {expected} here, found record {}", r.seq),
            });
        }
        if r.prev_hash != prev.1 {
            return Err(ChainBreak {
                seq: r.seq,
                reason: "does not follow the previous record (its prev_hash differs)".to_owned(),
            });
        }
        if hash_of(r.seq, &r.event, &r.prev_hash) != r.hash {
            return Err(ChainBreak {
                seq: r.seq,
                reason: "its content does not match its hash".to_owned(),
            });
        }
        prev = (r.seq, r.hash.clone());
    }
    Ok(prev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: i64) -> AuditEvent {
        AuditEvent {
            ts: Timestamp(1_700_000_000_000_000 + n),
            actor: Principal::new("alice").unwrap(),
            origin: Origin::cli(),
            kind: "execution.requested".into(),
            subject: format!("execution:{n}"),
            outcome: "ok".into(),
            detail: serde_json::json!({"b": 1, "a": {"y": [1, 2], "x": "****"}}),
        }
    }

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 1..=n {
            let prev = out.last().map_or(GENESIS.to_owned(), |r| r.hash.clone());
            out.push(AuditRecord::seal(i, event(i), &prev));
        }
        out
    }

    fn start() -> (i64, String) {
        (0, GENESIS.to_owned())
    }

    #[test]
    fn an_intact_chain_verifies_and_continues() {
        let c = chain(5);
        let (last, hash) = verify_chain(&c[..3], start()).unwrap();
        assert_eq!(verify_chain(&c[3..], (last, hash)).unwrap().0, 5);
    }

    #[test]
    fn every_kind_of_tampering_names_the_first_broken_record() {
        let mut changed = chain(5);
        changed[2].event.outcome = "denied".into();
        assert_eq!(verify_chain(&changed, start()).unwrap_err().seq, 3);

        let mut detail = chain(5);
        detail[1].event.detail = serde_json::json!({"b": 2});
        assert_eq!(verify_chain(&detail, start()).unwrap_err().seq, 2);

        let mut deleted = chain(5);
        deleted.remove(3);
        let err = verify_chain(&deleted, start()).unwrap_err();
        assert_eq!(
            (err.seq, err.reason.as_str()),
            (4, "expected record 4 here, found record 5")
        );

        let mut reordered = chain(5);
        reordered.swap(1, 2);
        assert_eq!(verify_chain(&reordered, start()).unwrap_err().seq, 2);

        // A record inserted and renumbered, with a hash of its own making.
        let mut inserted = chain(5);
        let forged = AuditRecord::seal(3, event(99), &inserted[1].hash);
        inserted.insert(2, forged);
        for (i, r) in inserted.iter_mut().enumerate().skip(3) {
            r.seq = i as i64 + 1;
        }
        assert_eq!(verify_chain(&inserted, start()).unwrap_err().seq, 4);

        // The last record deleted leaves a valid prefix: only an anchor
        // kept elsewhere (the count and last hash) can show that.
        let truncated = chain(4);
        assert_eq!(verify_chain(&truncated, start()).unwrap().0, 4);
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = serde_json::json!({"b": 1, "a": {"d": [ {"z": 1, "y": 2} ], "c": null}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}"#
        );
    }
}
