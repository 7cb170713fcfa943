//! Escalation chains: who is paged next when nobody acknowledges a group.
//!
//! ```toml
//! [[escalations]]
//! name = "db-oncall"
//! repeat = 2               # run the steps this many times (default 1)
//! ack_timeout = "1h"       # an acknowledged group still firing after this escalates again
//! [[escalations.steps]]
//! notify = ["db-primary"]  # receivers
//! [[escalations.steps]]
//! wait = "10m"
//! [[escalations.steps]]
//! notify = ["db-secondary", "managers"]
//! ```
//!
//! A route names its chain with `escalation = "db-oncall"` (inherited like
//! its receiver). Owns [`Escalation`] and the stepping of a chain
//! ([`Escalation::advance`]): from a step, the `notify` steps that are due
//! run one after another until a `wait`, and after the last step the chain
//! starts again until it has run `repeat` times. When a chain starts, when
//! an acknowledgement stops it, and when a resolved group ends it is the
//! engine's decision; this module is told the time.

use std::time::Duration;

use crate::ids::Timestamp;

/// The default `ack_timeout`.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(3600);

/// One step of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Notify these receivers now.
    Notify(Vec<String>),
    /// Wait before the next step.
    Wait(Duration),
}

/// A chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub name: String,
    pub steps: Vec<Step>,
    /// How many times the steps run (at least 1).
    pub repeat: u32,
    pub ack_timeout: Duration,
    pub line: usize,
}

/// Where a running chain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The next step to run.
    pub step: usize,
    /// How many times the steps have run through.
    pub round: u32,
    /// When the next step is due.
    pub due: Timestamp,
}

impl Position {
    /// A chain starting at `now`.
    pub fn start(now: Timestamp) -> Self {
        Self {
            step: 0,
            round: 0,
            due: now,
        }
    }
}

/// What advancing a chain did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advanced {
    /// Receivers to notify now, in order, each once.
    pub notify: Vec<String>,
    /// Where the chain stands now; `None` when it has run `repeat` times.
    pub position: Option<Position>,
}

impl Escalation {
    /// Runs the steps due at `now` from `at`.
    pub fn advance(&self, at: Position, now: Timestamp) -> Advanced {
        let mut notify: Vec<String> = Vec::new();
        let mut pos = at;
        if pos.due > now {
            return Advanced {
                notify,
                position: Some(pos),
            };
        }
        // Every step is visited at most once per call: a chain without a
        // wait runs its rounds back to back, but ends.
        let budget = self.steps.len() * usize::try_from(self.repeat).unwrap_or(1);
        for _ in 0..=budget {
            if pos.step >= self.steps.len() {
                pos.round += 1;
                pos.step = 0;
                if pos.round >= self.repeat || self.steps.is_empty() {
                    return Advanced {
                        notify,
                        position: None,
                    };
                }
            }
            match &self.steps[pos.step] {
                Step::Notify(receivers) => {
                    for r in receivers {
                        if !notify.contains(r) {
                            notify.push(r.clone());
                        }
                    }
                    pos.step += 1;
                }
                Step::Wait(d) => {
                    pos.step += 1;
                    pos.due = now.after(*d);
                    return Advanced {
                        notify,
                        position: Some(pos),
                    };
                }
            }
        }
        Advanced {
            notify,
            position: None,
        }
    }
}
