//! What changed in access between two reports: who gained or lost which
//! right, whose doors changed, and which actions started or stopped
//! needing approval — so that a periodic access review reads only what
//! changed since the last one.
//!
//! Rights are compared by action, verb and host, and holders by name
//! (`alice`, `group:sre`, `everyone`); policies are shown, not compared
//! (a right granted by another policy is the same right).
//!
//! Not here: reading the reports' files (the binary).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{Access, Holder, Report};

/// One change in access.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// `who` may now do what they could not.
    Gained {
        right: String,
        who: String,
        doors: Vec<String>,
        policies: Vec<String>,
    },
    /// `who` may no longer.
    Lost { right: String, who: String },
    /// `who` still may, through other doors.
    Doors {
        right: String,
        who: String,
        before: Vec<String>,
        after: Vec<String>,
    },
    /// The approval a run needs changed.
    Approval {
        action: String,
        before: Option<String>,
        after: Option<String>,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Gained {
                right,
                who,
                doors,
                policies,
            } => write!(
                f,
                "+ {who} may now {right} (through {}; by {})",
                doors.join(", "),
                policies.join(", ")
            ),
            Change::Lost { right, who } => write!(f, "- {who} may no longer {right}"),
            Change::Doors {
                right,
                who,
                before,
                after,
            } => write!(
                f,
                "~ {who} may {right} through {} (was {})",
                after.join(", "),
                before.join(", ")
            ),
            Change::Approval {
                action,
                before,
                after,
            } => {
                let say = |a: &Option<String>| a.clone().unwrap_or_else(|| "none".to_owned());
                write!(
                    f,
                    "~ {action} needs approval: {} (was {})",
                    say(after),
                    say(before)
                )
            }
        }
    }
}

/// `run db.failover` or `run fleet.reboot on web-1`.
fn right(a: &Access) -> String {
    match &a.host {
        Some(host) => format!("{} {} on {host}", a.verb, a.action),
        None => format!("{} {}", a.verb, a.action),
    }
}

/// Each right's holders by name.
fn rights(report: &Report) -> BTreeMap<String, BTreeMap<String, Holder>> {
    report
        .access
        .iter()
        .map(|a| {
            let holders = a
                .principals
                .iter()
                .chain(&a.groups)
                .chain(&a.everyone)
                .map(|h| (h.who.clone(), h.clone()))
                .collect();
            (right(a), holders)
        })
        .collect()
}

/// The changes from `old` to `new`, losses and gains of each right
/// together, rights in order.
pub fn diff(old: &Report, new: &Report) -> Vec<Change> {
    let (before, after) = (rights(old), rights(new));
    let empty = BTreeMap::new();
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let mut changes = Vec::new();
    for name in names {
        let was = before.get(name).unwrap_or(&empty);
        let is = after.get(name).unwrap_or(&empty);
        for (who, h) in was {
            match is.get(who) {
                None => changes.push(Change::Lost {
                    right: name.clone(),
                    who: who.clone(),
                }),
                Some(now) if now.doors != h.doors => changes.push(Change::Doors {
                    right: name.clone(),
                    who: who.clone(),
                    before: h.doors.clone(),
                    after: now.doors.clone(),
                }),
                Some(_) => {}
            }
        }
        for (who, h) in is {
            if !was.contains_key(who) {
                changes.push(Change::Gained {
                    right: name.clone(),
                    who: who.clone(),
                    doors: h.doors.clone(),
                    policies: h.policies.clone(),
                });
            }
        }
    }
    let approvals = |r: &Report| -> BTreeMap<String, Option<String>> {
        r.access
            .iter()
            .filter(|a| a.verb == "run" && a.host.is_none())
            .map(|a| (a.action.clone(), a.approval.clone()))
            .collect()
    };
    let (was, is) = (approvals(old), approvals(new));
    for (action, after) in &is {
        if let Some(before) = was.get(action)
            && before != after
        {
            changes.push(Change::Approval {
                action: action.clone(),
                before: before.clone(),
                after: after.clone(),
            });
        }
    }
    changes
}
