//! The two-person rule: executions of actions with an `approval` rule wait
//! in `awaiting_approval` until enough approvers say yes; one no, or the
//! request lapsing, cancels them. Every answer is checked (an approver named
//! by the rule, never the requester, permitted `approve` by the policies),
//! stored, and audited; the execution itself shows its answers.
//!
//! It does not notify anyone by chat or mail (the doors report what the
//! engine returns), and it does not decide what needs approval (the
//! catalog's rule does).

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::audit::AuditEvent;
use switchboard_core::catalog::{ApprovalRule, Approver};
use switchboard_core::policy::{Identity, Verb};
use switchboard_core::{
    Action, Approval, Execution, ExecutionId, ExecutionStatus, Origin, Timestamp,
};

use crate::{Engine, EngineError, Pending, Shared, resume_params};

/// The longest the expiry timer sleeps before looking again (it is also
/// woken by every new request for approval).
const EXPIRY_POLL: Duration = Duration::from_secs(30);

/// What an answer did.
#[derive(Debug, Clone)]
pub struct ApprovalOutcome {
    pub execution: Execution,
    /// Approvals so far, and how many are needed.
    pub approvals: u32,
    pub needed: u32,
}

/// Whether `who` is one of the rule's approvers.
fn is_named_approver(rule: &ApprovalRule, who: &Identity) -> bool {
    rule.approvers.iter().any(|a| match a {
        Approver::Group(g) => who.groups.contains(g),
        Approver::User(u) => *u == who.principal,
    })
}

fn approvers_text(rule: &ApprovalRule) -> String {
    rule.approvers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Engine {
    /// The answers an execution received.
    pub async fn approvals(&self, id: ExecutionId) -> Result<Vec<Approval>, EngineError> {
        Ok(self.shared.store.approvals(id).await?)
    }

    /// Approves an execution awaiting approval; it is queued once the
    /// rule's count of distinct approvers is reached.
    pub async fn approve(
        &self,
        id: ExecutionId,
        by: &Identity,
        origin: &Origin,
        reason: Option<String>,
    ) -> Result<ApprovalOutcome, EngineError> {
        let (execution, action, rule) = self.check_approver(id, by, origin).await?;
        self.store_answer(&execution, by, origin, true, reason.clone())
            .await?;
        let approvals = self
            .shared
            .store
            .approvals(id)
            .await?
            .iter()
            .filter(|a| a.approved)
            .count();
        let approvals = u32::try_from(approvals).unwrap_or(u32::MAX);
        let needed = rule.count;
        self.record(AuditEvent::now(
            &by.principal,
            origin,
            "approval.approved",
            format!("execution:{id}"),
            "approved",
            serde_json::json!({"action": execution.action, "requester": execution.requester, "reason": reason, "approvals": approvals, "needed": needed}),
        ))
        .await;
        if approvals >= needed {
            self.release(&execution, action.as_ref()).await?;
        }
        Ok(ApprovalOutcome {
            execution: self.get(id).await?,
            approvals,
            needed,
        })
    }

    /// Rejects an execution awaiting approval: it ends `cancelled`, saying
    /// who rejected it and why.
    pub async fn reject(
        &self,
        id: ExecutionId,
        by: &Identity,
        origin: &Origin,
        reason: Option<String>,
    ) -> Result<Execution, EngineError> {
        let (execution, _, _) = self.check_approver(id, by, origin).await?;
        self.store_answer(&execution, by, origin, false, reason.clone())
            .await?;
        let why = match &reason {
            Some(r) => format!("rejected by {}: {r}", by.principal),
            None => format!("rejected by {}", by.principal),
        };
        self.end_unapproved(id, &why).await?;
        self.record(AuditEvent::now(
            &by.principal,
            origin,
            "approval.rejected",
            format!("execution:{id}"),
            "cancelled",
            serde_json::json!({"action": execution.action, "requester": execution.requester, "reason": reason}),
        ))
        .await;
        self.get(id).await
    }

    /// The executions awaiting approval that `who` may answer.
    pub async fn approval_queue(
        &self,
        who: &Identity,
        origin: &Origin,
    ) -> Result<Vec<Execution>, EngineError> {
        let filter = switchboard_store::ExecutionFilter {
            status: Some(ExecutionStatus::AwaitingApproval),
            limit: 1000,
            ..Default::default()
        };
        let catalog = self.catalog();
        let waiting = self.shared.store.list_executions(&filter).await?;
        let mut mine = Vec::new();
        for e in waiting {
            let Some(action) = catalog.action(e.action.as_str()) else {
                continue;
            };
            let named = e
                .approval_rule
                .as_ref()
                .is_none_or(|rule| is_named_approver(rule, who));
            if named
                && e.requester != who.principal
                && self.permits(who, origin, Verb::Approve, Some(action))
            {
                mine.push(e);
            }
        }
        Ok(mine)
    }

    /// Checks that `by` may answer for execution `id`; every refusal is
    /// audited.
    async fn check_approver(
        &self,
        id: ExecutionId,
        by: &Identity,
        origin: &Origin,
    ) -> Result<(Execution, Option<Arc<Action>>, ApprovalRule), EngineError> {
        let execution = self.get(id).await?;
        if execution.status != ExecutionStatus::AwaitingApproval {
            return Err(EngineError::NotAwaitingApproval {
                id,
                status: execution.status,
            });
        }
        let catalog = self.catalog();
        let action = catalog.action(execution.action.as_str()).cloned();
        // The rule it was asked for under (recorded then); executions from
        // before rules were recorded fall back to one approver.
        let rule = execution.approval_rule.clone().unwrap_or(ApprovalRule {
            approvers: Vec::new(),
            count: 1,
            expires: Duration::ZERO,
        });
        let refusal = if execution.requester == by.principal {
            Some(format!(
                "{} asked for execution {id}; someone else must approve or reject it",
                by.principal
            ))
        } else if !rule.approvers.is_empty() && !is_named_approver(&rule, by) {
            Some(format!(
                "{} is not an approver of {} (approvers: {})",
                by.principal,
                execution.action,
                approvers_text(&rule)
            ))
        } else {
            None
        };
        if let Some(why) = refusal {
            self.record(AuditEvent::now(
                &by.principal,
                origin,
                "authz.decision",
                format!("execution:{id}"),
                "denied",
                serde_json::json!({"verb": Verb::Approve, "reason": why}),
            ))
            .await;
            return Err(EngineError::Forbidden(why));
        }
        self.authorize_on_execution(by, origin, Verb::Approve, &execution)
            .await?;
        Ok((execution, action, rule))
    }

    async fn store_answer(
        &self,
        execution: &Execution,
        by: &Identity,
        origin: &Origin,
        approved: bool,
        reason: Option<String>,
    ) -> Result<(), EngineError> {
        let answer = Approval {
            approver: by.principal.clone(),
            approved,
            reason,
            origin: origin.clone(),
            at: Timestamp::now(),
        };
        if self
            .shared
            .store
            .record_approval(execution.id, &answer)
            .await?
        {
            Ok(())
        } else {
            Err(EngineError::AlreadyAnswered {
                id: execution.id,
                by: by.principal.clone(),
            })
        }
    }

    /// Queues an approved execution. Its parameters are in memory when it
    /// was asked for on this node since the last start; otherwise they are
    /// read back from the store, which works unless they held secrets.
    async fn release(
        &self,
        execution: &Execution,
        action: Option<&Arc<Action>>,
    ) -> Result<(), EngineError> {
        let id = execution.id;
        let known = self.shared.state().pending.contains_key(&id);
        if !known {
            let resumed = match action {
                None => Err("its action is no longer in the catalog".to_owned()),
                Some(a) => resume_params(a, &execution.params, &self.inventory())
                    .map(|(params, hosts)| (a.clone(), params, hosts)),
            };
            match resumed {
                Ok((action, params, hosts)) => {
                    self.shared.state().pending.insert(
                        id,
                        Pending {
                            action,
                            params,
                            hosts,
                            audited: None,
                            requester: None,
                        },
                    );
                    self.shared.hub.open(id);
                }
                Err(why) => {
                    let reason = format!("approved, but cannot run: {why}");
                    self.shared
                        .store
                        .end_waiting(id, ExecutionStatus::Lost, &reason, Timestamp::now())
                        .await?;
                    self.shared.hub.finish(id, ExecutionStatus::Lost);
                    self.audit_system(
                        "execution.lost",
                        &format!("execution:{id}"),
                        "lost",
                        serde_json::json!({"action": execution.action, "reason": reason}),
                    )
                    .await;
                    return Ok(());
                }
            }
        }
        let _gate = self.shared.claim_gate.read().await;
        if self.shared.store.release_approved(id).await? {
            self.shared.wake.notify_one();
            tracing::info!(%id, action = %execution.action, "execution approved and queued");
        }
        Ok(())
    }

    /// Ends a waiting execution `cancelled` with `reason`.
    async fn end_unapproved(&self, id: ExecutionId, reason: &str) -> Result<bool, EngineError> {
        let ended = self
            .shared
            .store
            .end_waiting(id, ExecutionStatus::Cancelled, reason, Timestamp::now())
            .await?;
        if ended {
            self.shared.state().pending.remove(&id);
            self.shared.hub.finish(id, ExecutionStatus::Cancelled);
        }
        Ok(ended)
    }

    /// Cancels requests for approval that lapsed; returns how many.
    pub async fn expire_approvals(&self) -> Result<usize, EngineError> {
        let lapsed = self.shared.store.lapsed_approvals(Timestamp::now()).await?;
        let mut ended = 0;
        for id in lapsed {
            let e = self.get(id).await?;
            let wait = e
                .approval_expires_at
                .map(|t| e.created_at.until(t))
                .unwrap_or_default();
            let reason = format!(
                "no approval within {}",
                humantime::format_duration(Duration::from_secs(wait.as_secs()))
            );
            if self.end_unapproved(id, &reason).await? {
                ended += 1;
                self.audit_system(
                    "approval.expired",
                    &format!("execution:{id}"),
                    "cancelled",
                    serde_json::json!({"action": e.action, "requester": e.requester, "reason": reason}),
                )
                .await;
                tracing::info!(%id, action = %e.action, "request for approval lapsed");
            }
        }
        Ok(ended)
    }
}

/// Cancels lapsed requests for approval as they lapse: sleeps until the
/// next one is due (or a new one is made), then expires what is due.
pub(crate) async fn expiry_timer(engine: Engine, shared: Arc<Shared>) {
    loop {
        if let Err(e) = engine.expire_approvals().await {
            tracing::warn!(error = %e, "could not expire requests for approval");
        }
        let wait = match shared.store.next_approval_expiry().await {
            Ok(Some(next)) => Timestamp::now().until(next).min(EXPIRY_POLL),
            _ => EXPIRY_POLL,
        };
        let woken = shared.approval_wake.notified();
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
        }
        if !shared.accepting.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
    }
}
