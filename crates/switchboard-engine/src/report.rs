//! The auditor's report, gathered from the live configuration: for each
//! action of the catalog (or of a selection), who may run, approve and
//! cancel it — on each host asked about, for actions that take a host —
//! and who may silence alerts or administer; the principals with where
//! they are defined, the API tokens (never their secrets), the chat
//! accounts linked; the automation (runners, SSH trust, schedules,
//! inbound webhooks, alert routes, escalations, alert automations); the
//! evidence: the audit chain verified, and executions, denials and
//! approvals counted by door; and the storage and the leader.
//!
//! Not here: the report's shape and its renderings (`core::report`), HTTP
//! and files.

use std::collections::BTreeMap;

use switchboard_core::Principal;
use switchboard_core::Timestamp;
use switchboard_core::alerts::Receiver;
use switchboard_core::alerts::escalation::Step;
use switchboard_core::directory::PrincipalKind;
use switchboard_core::params::ParamType;
use switchboard_core::policy::{GroupGrant, Verb, WhoCan};
use switchboard_core::report::{
    Access, AlertAutomationRow, AlertRouteRow, AutomationSection, ChatLinkRow, ClusterSection,
    DoorCounts, EscalationRow, Evidence, Holder, IdentitySection, PrincipalRow, Report, RunnerRow,
    ScheduleRow, Selection, SshRow, TokenRow, WebhookRow,
};

use crate::{Engine, EngineError};

/// The verbs asked about each action.
const ACTION_VERBS: [Verb; 3] = [Verb::Run, Verb::Approve, Verb::Cancel];
/// The verbs about the service as a whole, shown as the action `*`.
const SERVICE_VERBS: [Verb; 2] = [Verb::Silence, Verb::Admin];
/// Audit records read per page while counting.
const PAGE: u32 = 1000;

/// What to report on.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Count the evidence from then on (default: all of it).
    pub since: Option<Timestamp>,
    pub selection: Selection,
}

/// `name` matches `pattern`: equal, or a prefix ending in `*` (`db.*`).
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

fn kind_text(kind: PrincipalKind) -> &'static str {
    match kind {
        PrincipalKind::User => "user",
        PrincipalKind::ServiceAccount => "service",
    }
}

fn group_holder(g: &GroupGrant, who: String, kind: &str) -> Holder {
    Holder {
        who,
        kind: kind.to_owned(),
        doors: g.doors.clone(),
        policies: g.policies.iter().map(|p| p.id.clone()).collect(),
    }
}

/// A who-can answer as the report's holders.
fn access(
    action: &str,
    verb: Verb,
    host: Option<&str>,
    approval: Option<String>,
    w: WhoCan,
) -> Access {
    Access {
        action: action.to_owned(),
        verb: verb.as_str().to_owned(),
        host: host.map(str::to_owned),
        approval,
        principals: w
            .principals
            .iter()
            .map(|g| Holder {
                who: g.principal.to_string(),
                kind: kind_text(g.kind).to_owned(),
                doors: g.doors.clone(),
                policies: g.policies.iter().map(|p| p.id.clone()).collect(),
            })
            .collect(),
        groups: w
            .groups
            .iter()
            .map(|g| group_holder(g, format!("group:{}", g.group), "group"))
            .collect(),
        everyone: w
            .everyone
            .as_ref()
            .map(|g| group_holder(g, "everyone".to_owned(), "everyone")),
    }
}

impl Engine {
    /// The report, as of now.
    pub async fn report(&self, options: &ReportOptions) -> Result<Report, EngineError> {
        let catalog = self.catalog();
        let selection = &options.selection;
        let mut rows = Vec::new();
        for action in catalog.actions() {
            let name = action.name.as_str();
            if !selection.actions.is_empty() && !selection.actions.iter().any(|p| matches(p, name))
            {
                continue;
            }
            let approval = action
                .approval
                .as_ref()
                .map(|r| format!("{}, not the requester", r.approvers_text()));
            let takes_host = action.params.iter().any(|p| p.ty == ParamType::Host);
            let hosts: Vec<Option<&str>> = if takes_host && !selection.hosts.is_empty() {
                selection.hosts.iter().map(|h| Some(h.as_str())).collect()
            } else {
                vec![None]
            };
            for host in hosts {
                for verb in ACTION_VERBS {
                    let who = self.who_can(verb, Some(name), host, None).await?;
                    let approval = (verb == Verb::Run).then(|| approval.clone()).flatten();
                    rows.push(access(name, verb, host, approval, who));
                }
            }
        }
        if selection.actions.is_empty() {
            for verb in SERVICE_VERBS {
                let who = self.who_can(verb, None, None, None).await?;
                rows.push(access("*", verb, None, None, who));
            }
        }
        Ok(Report {
            generated_at: Timestamp::now().to_string(),
            node: self.node().to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            catalog_version: catalog.version.to_string(),
            selection: selection.clone(),
            doors: Vec::new(),
            access: rows,
            identity: self.identity_section().await?,
            automation: self.automation_section().await?,
            evidence: self.evidence(options.since).await?,
            cluster: self.cluster_section().await?,
        })
    }

    async fn automation_section(&self) -> Result<AutomationSection, EngineError> {
        let catalog = self.catalog();
        let mut runners: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for action in catalog.actions() {
            runners
                .entry(action.runner.as_str())
                .or_default()
                .push(action.name.to_string());
        }
        let ssh = &self.shared.config.runners.ssh;
        let schedules = self
            .schedules()
            .await?
            .into_iter()
            .map(|s| ScheduleRow {
                name: s.name,
                action: s.action,
                cron: s.cron,
                timezone: s.timezone,
                run_as: s.run_as,
                enabled: s.enabled,
                next_run: s.next_run.map(|t| t.to_string()),
            })
            .collect();
        let webhooks = catalog
            .hooks
            .iter()
            .map(|h| {
                let sig = &h.signature;
                let mut how = format!(
                    "HMAC-{} of the body in `{}`",
                    sig.algorithm.as_str().to_uppercase(),
                    sig.header
                );
                if let Some(ts) = &sig.timestamp_header {
                    how.push_str(&format!(
                        ", timestamp in `{ts}` within {}",
                        humantime::format_duration(sig.replay_window)
                    ));
                }
                if let Some(d) = &sig.delivery_header {
                    how.push_str(&format!(", each delivery (`{d}`) once"));
                }
                WebhookRow {
                    name: h.name.clone(),
                    action: h.action.clone(),
                    run_as: h.run_as.clone(),
                    authentication: how,
                }
            })
            .collect();
        let mut section = AutomationSection {
            runners: runners
                .into_iter()
                .map(|(runner, actions)| RunnerRow {
                    runner: runner.to_owned(),
                    actions,
                })
                .collect(),
            ssh: SshRow {
                hosts: self.inventory().hosts().count(),
                user: ssh.user.clone(),
                host_key_policy: match ssh.host_key_policy {
                    crate::runner::ssh::HostKeyPolicy::Strict => "strict",
                    crate::runner::ssh::HostKeyPolicy::AcceptNew => "accept-new",
                }
                .to_owned(),
                known_hosts: ssh.known_hosts.as_ref().map(|p| p.display().to_string()),
            },
            schedules,
            webhooks,
            ..AutomationSection::default()
        };
        if let Some(alerts) = &catalog.alerts {
            section.alert_routes = alerts
                .route
                .nodes()
                .into_iter()
                .map(|node| AlertRouteRow {
                    route: node.path.clone(),
                    matchers: node.matchers.to_string(),
                    receiver: node.options.receiver.clone(),
                    outlets: alerts
                        .receiver(&node.options.receiver)
                        .map(outlets)
                        .unwrap_or_default(),
                    escalation: node.options.escalation.clone(),
                })
                .collect();
            section.escalations = alerts
                .escalations
                .values()
                .map(|e| EscalationRow {
                    name: e.name.clone(),
                    steps: e
                        .steps
                        .iter()
                        .map(|step| match step {
                            Step::Notify(to) => format!("notify {}", to.join(", ")),
                            Step::Wait(d) => format!("wait {}", humantime::format_duration(*d)),
                        })
                        .collect(),
                    repeat: e.repeat,
                })
                .collect();
            section.alert_automations = alerts
                .automations
                .iter()
                .map(|a| AlertAutomationRow {
                    name: a.name.clone(),
                    matchers: a.matchers.to_string(),
                    action: a.action.clone(),
                    run_as: a.run_as.clone(),
                })
                .collect();
        }
        Ok(section)
    }

    async fn cluster_section(&self) -> Result<ClusterSection, EngineError> {
        let store = &self.shared.store;
        let lease = store.lease(crate::cluster::LEADER).await?;
        let now = Timestamp::now();
        let lease = lease.filter(|l| l.expires_at > now);
        Ok(ClusterSection {
            storage: store.backend().to_owned(),
            shared: store.shared_by_nodes(),
            node: self.node().to_owned(),
            leader: lease.as_ref().map(|l| l.holder.clone()),
            leader_since: lease.as_ref().map(|l| l.acquired_at.to_string()),
            lease_expires: lease.as_ref().map(|l| l.expires_at.to_string()),
        })
    }

    async fn identity_section(&self) -> Result<IdentitySection, EngineError> {
        let directory = &self.shared.config.directory;
        let known = self.known_identities().await?;
        let mut principals = Vec::new();
        let mut chat_links = Vec::new();
        for who in &known {
            let source = if directory.get(&who.principal).is_some() {
                "config"
            } else if who.principal == Principal::admin() {
                "built-in"
            } else {
                "ldap"
            };
            principals.push(PrincipalRow {
                name: who.principal.to_string(),
                kind: kind_text(who.kind).to_owned(),
                source: source.to_owned(),
                groups: who.groups.iter().cloned().collect(),
            });
            for (identity, _) in self.shared.store.chat_links_of(&who.principal).await? {
                chat_links.push(ChatLinkRow {
                    identity,
                    principal: who.principal.to_string(),
                });
            }
        }
        let now = Timestamp::now();
        let tokens = self
            .list_tokens()
            .await?
            .into_iter()
            .map(|t| TokenRow {
                state: if t.revoked_at.is_some() {
                    "revoked"
                } else if t.unusable(now).is_some() {
                    "expired"
                } else {
                    "active"
                }
                .to_owned(),
                id: t.id,
                owner: t.principal.to_string(),
                scopes: t.scopes.iter().map(ToString::to_string).collect(),
                description: t.description,
                created_by: t.created_by.to_string(),
                created_at: t.created_at.to_string(),
                expires_at: t.expires_at.map(|t| t.to_string()),
                last_used_at: t.last_used_at.map(|t| t.to_string()),
            })
            .collect();
        Ok(IdentitySection {
            principals,
            tokens,
            chat_links,
        })
    }

    /// The audit chain verified, and what it records since `since`
    /// counted by door.
    async fn evidence(&self, since: Option<Timestamp>) -> Result<Evidence, EngineError> {
        let verification = self.verify_audit().await?;
        let mut by_door: BTreeMap<String, DoorCounts> = BTreeMap::new();
        let mut after = 0;
        loop {
            let page = self.audit_records(after, since, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for record in &page {
                let e = &record.event;
                let count: fn(&mut DoorCounts) = match (e.kind.as_str(), e.outcome.as_str()) {
                    ("execution.requested", _) => |c| c.executions += 1,
                    (_, "denied") => |c| c.denials += 1,
                    ("approval.approved", _) => |c| c.approvals += 1,
                    _ => continue,
                };
                let door = e.origin.door();
                count(
                    by_door
                        .entry(door.to_owned())
                        .or_insert_with(|| DoorCounts {
                            door: door.to_owned(),
                            ..DoorCounts::default()
                        }),
                );
            }
            if page.len() < PAGE as usize {
                break;
            }
        }
        Ok(Evidence {
            since: since.map(|t| t.to_string()),
            audit_records: verification.records,
            audit_intact: verification.intact(),
            audit_break: verification.broken.as_ref().map(|b| b.to_string()),
            by_door: by_door.into_values().collect(),
        })
    }
}

/// Where a receiver sends, without what could be a secret: a webhook by
/// its scheme and host only (a URL's path or query can hold a token).
fn outlets(receiver: &Receiver) -> Vec<String> {
    let i = &receiver.integrations;
    let host = |url: &str| {
        reqwest::Url::parse(url).map_or_else(
            |_| "an unreadable URL".to_owned(),
            |u| format!("{}://{}", u.scheme(), u.host_str().unwrap_or_default()),
        )
    };
    i.chat_configs
        .iter()
        .map(|c| format!("chat {}:{}", c.platform, c.room))
        .chain(
            i.email_configs
                .iter()
                .map(|e| format!("email {}", e.to.join(", "))),
        )
        .chain(
            i.webhook_configs
                .iter()
                .map(|w| format!("webhook {}", host(&w.url))),
        )
        .chain(i.pagerduty_configs.iter().map(|_| "pagerduty".to_owned()))
        .chain(i.opsgenie_configs.iter().map(|_| "opsgenie".to_owned()))
        .collect()
}
