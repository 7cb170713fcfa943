//! The auditor's report, gathered from the live configuration: the doors
//! (those the http crate opens, plus the catalog's webhooks and schedules)
//! with their live state; for each action of the catalog (or of a
//! selection), who may run, approve and cancel it — on each host asked
//! about, for actions that take a host — and who may silence alerts or
//! administer, answered on every core; the principals and groups with
//! where they come from, the API tokens (never their secrets), the chat
//! accounts linked and the chat users linked to none who asked to run
//! something; the automation (runners, SSH trust, schedules, inbound
//! webhooks, alert routes, escalations, alert automations); the evidence:
//! the audit chain verified, and executions, denials and approvals counted
//! by door; and the storage, the nodes and the leader.
//!
//! Not here: the report's shape and its renderings (`core::report`), HTTP
//! and files; noting the doors' state (`doors.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use switchboard_core::alerts::Receiver;
use switchboard_core::alerts::escalation::Step;
use switchboard_core::audit::AuditEvent;
use switchboard_core::directory::PrincipalKind;
use switchboard_core::params::ParamType;
use switchboard_core::policy::{GroupGrant, Verb, WhoCan};
use switchboard_core::report::{
    Access, AlertAutomationRow, AlertRouteRow, AutomationSection, ChatLinkRow, ClusterSection,
    DoorCounts, DoorRow, EscalationRow, Evidence, GroupRow, Holder, IdentitySection, NodeRow,
    PrincipalRow, Report, RunnerRow, ScheduleRow, Selection, SshRow, TokenRow, UnlinkedRow,
    WebhookRow, WorkflowRow,
};
use switchboard_core::workflow::StepKind;
use switchboard_core::{Action, Catalog, Principal, Timestamp};

use crate::authz::host_groups;
use crate::{Engine, EngineError, Identity};

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
    /// The doors the server opens (the http crate knows them), to which
    /// the catalog's webhooks and schedules are added, each with its live
    /// state.
    pub doors: Vec<DoorRow>,
}

/// One right asked about: a verb on an action (on a host, with its host
/// groups), or on the service as a whole.
struct Question {
    action: Option<Arc<Action>>,
    verb: Verb,
    host: Option<(String, Vec<String>)>,
    approval: Option<String>,
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
    /// The report, as of now, of one catalog version throughout (a reload
    /// while it is made does not mix two).
    pub async fn report(&self, options: &ReportOptions) -> Result<Report, EngineError> {
        let catalog = self.catalog();
        let selection = &options.selection;
        let inventory = self.inventory();
        let mut questions = Vec::new();
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
            let hosts: Vec<Option<&String>> = if takes_host && !selection.hosts.is_empty() {
                selection.hosts.iter().map(Some).collect()
            } else {
                vec![None]
            };
            for host in hosts {
                for verb in ACTION_VERBS {
                    questions.push(Question {
                        action: Some(action.clone()),
                        verb,
                        host: host.map(|h| (h.clone(), host_groups(&inventory, h))),
                        approval: (verb == Verb::Run).then(|| approval.clone()).flatten(),
                    });
                }
            }
        }
        if selection.actions.is_empty() {
            for verb in SERVICE_VERBS {
                questions.push(Question {
                    action: None,
                    verb,
                    host: None,
                    approval: None,
                });
            }
        }
        // Listed once: with LDAP, a query of the whole directory.
        let known = Arc::new(self.known_identities().await?);
        let (engine, asked_of, of) = (self.clone(), catalog.clone(), known.clone());
        let rows =
            tokio::task::spawn_blocking(move || engine.answer_all(&asked_of, &of, questions))
                .await
                .map_err(|e| EngineError::Internal(format!("the report's access matrix: {e}")))?
                .map_err(EngineError::Invalid)?;
        let cluster = self.cluster_section().await?;
        let scanned = self.scan_audit(options.since).await?;
        let mut identity = self.identity_section(&known).await?;
        identity.unlinked = scanned.unlinked;
        if self.oidc_issuer().is_some() {
            add_signed_in(&mut identity.principals, scanned.signed_in);
        }
        identity.groups = group_rows(&identity.principals, &catalog);
        Ok(Report {
            generated_at: Timestamp::now().to_string(),
            node: self.node().to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            catalog_version: catalog.version.hash.clone(),
            catalog_commit: catalog.version.git_commit.clone(),
            selection: selection.clone(),
            doors: self
                .doors(&catalog, options.doors.clone(), &cluster.nodes)
                .await?,
            access: rows,
            identity,
            automation: self.automation_section(&catalog).await?,
            evidence: scanned.evidence,
            cluster,
        })
    }

    /// Who may, for each question, on every core: each is a who-can over
    /// every known principal and door, and a catalog has hundreds.
    fn answer_all(
        &self,
        catalog: &Catalog,
        known: &[Identity],
        questions: Vec<Question>,
    ) -> Result<Vec<Access>, String> {
        let directory = &self.shared.config.directory;
        let answer = |q: &Question| -> Result<Access, String> {
            let who = catalog.policies.who_can(
                known,
                directory,
                q.verb,
                q.action.as_deref(),
                q.host.as_ref().map(|(h, g)| (h.as_str(), g.as_slice())),
                None,
            )?;
            let name = q.action.as_ref().map_or("*", |a| a.name.as_str());
            let host = q.host.as_ref().map(|(h, _)| h.as_str());
            Ok(access(name, q.verb, host, q.approval.clone(), who))
        };
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let next = AtomicUsize::new(0);
        let mut answered: Vec<(usize, Result<Access, String>)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads.min(questions.len()))
                .map(|_| {
                    s.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(q) = questions.get(i) else {
                                return mine;
                            };
                            mine.push((i, answer(q)));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_default())
                .collect()
        });
        if answered.len() != questions.len() {
            return Err("a worker of the access matrix failed".to_owned());
        }
        answered.sort_by_key(|(i, _)| *i);
        answered.into_iter().map(|(_, a)| a).collect()
    }

    /// The doors the server opens, with `catalog`'s webhooks and schedules,
    /// each with its live state as the nodes alive (`nodes`) noted it.
    async fn doors(
        &self,
        catalog: &Catalog,
        mut doors: Vec<DoorRow>,
        nodes: &[NodeRow],
    ) -> Result<Vec<DoorRow>, EngineError> {
        if !catalog.hooks.is_empty() {
            let names: Vec<&str> = catalog.hooks.iter().map(|h| h.name.as_str()).collect();
            doors.push(DoorRow {
                door: "webhook".to_owned(),
                reaches: format!("/hooks/<name> for the hooks {}", names.join(", ")),
                authentication: "each hook's HMAC signature of the body (see Automation); runs as the hook's principal".to_owned(),
                ..DoorRow::default()
            });
        }
        let schedules: Vec<String> = catalog
            .schedules
            .iter()
            .map(|s| {
                let off = if s.enabled { "" } else { " (disabled)" };
                format!("{}{off}", s.name)
            })
            .collect();
        if !schedules.is_empty() {
            doors.push(DoorRow {
                door: "schedule".to_owned(),
                reaches: format!("the schedules {}", schedules.join(", ")),
                authentication: "none: each runs as its schedule's principal, fired by the leader"
                    .to_owned(),
                ..DoorRow::default()
            });
        }
        let alive = |node: &str| nodes.iter().any(|n| n.node == node && n.alive);
        let states = self.shared.store.door_states().await?;
        for door in &mut doors {
            let of_door: Vec<_> = states.iter().filter(|s| s.door == door.door).collect();
            door.last_event = of_door
                .iter()
                .filter_map(|s| s.last_event_at)
                .max()
                .map(|t| t.to_string());
            let connections = of_door.iter().filter(|s| s.connected.is_some());
            let up = connections
                .clone()
                .filter(|s| s.connected == Some(true) && alive(&s.node))
                .max_by_key(|s| s.changed_at);
            let last = connections.max_by_key(|s| s.changed_at);
            door.state = match (up, last) {
                (Some(s), _) => format!(
                    "connected on {} since {} ({})",
                    s.node,
                    when(s.changed_at),
                    s.detail.as_deref().unwrap_or_default()
                ),
                (None, Some(s)) if s.connected == Some(true) => {
                    format!("not connected: its node {} stopped", s.node)
                }
                (None, Some(s)) => format!(
                    "not connected since {}: {} ({})",
                    when(s.changed_at),
                    s.detail.as_deref().unwrap_or_default(),
                    s.node
                ),
                (None, None) => String::new(),
            };
        }
        Ok(doors)
    }

    async fn automation_section(
        &self,
        catalog: &Catalog,
    ) -> Result<AutomationSection, EngineError> {
        let mut runners: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for action in catalog.actions() {
            runners
                .entry(action.runner.as_str())
                .or_default()
                .push(action.name.to_string());
        }
        let workflows = catalog
            .actions()
            .filter_map(|a| Some((a, a.workflow.as_ref()?)))
            .map(|(a, w)| {
                let mut actions = Vec::new();
                let mut inquiries = Vec::new();
                for step in &w.steps {
                    match &step.kind {
                        StepKind::Action { action, .. } => {
                            if !actions.contains(&action.to_string()) {
                                actions.push(action.to_string());
                            }
                        }
                        StepKind::Inquiry(q) if q.approvers.is_empty() => {
                            inquiries.push(format!("{}: whoever may approve {}", step.name, a.name))
                        }
                        StepKind::Inquiry(q) => {
                            let who: Vec<String> =
                                q.approvers.iter().map(ToString::to_string).collect();
                            inquiries.push(format!("{}: {}", step.name, who.join(", ")));
                        }
                    }
                }
                WorkflowRow {
                    name: a.name.to_string(),
                    steps: w.steps.len(),
                    actions,
                    inquiries,
                    run_as: w.run_as.as_ref().map(ToString::to_string),
                }
            })
            .collect();
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
            workflows,
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
        let leader = lease.as_ref().map(|l| l.holder.clone());
        let lasts = self.shared.config.cluster.lease;
        let nodes = store
            .leases_with_prefix(crate::cluster::NODE_LEASE_PREFIX)
            .await?
            .into_iter()
            .map(|l| NodeRow {
                alive: l.expires_at > now,
                last_seen: l.expires_at.before(lasts).to_string(),
                leader: leader.as_deref() == Some(l.holder.as_str()),
                node: l.holder,
            })
            .collect();
        let whole_seconds = |d: std::time::Duration| std::time::Duration::from_secs(d.as_secs());
        Ok(ClusterSection {
            storage: store.backend().to_owned(),
            shared: store.shared_by_nodes(),
            node: self.node().to_owned(),
            leader,
            leader_since: lease.as_ref().map(|l| l.acquired_at.to_string()),
            leader_for: lease.as_ref().map(|l| {
                humantime::format_duration(whole_seconds(l.acquired_at.until(now))).to_string()
            }),
            lease_expires: lease.as_ref().map(|l| l.expires_at.to_string()),
            nodes,
        })
    }

    /// The principals of `known` with where they are defined, their chat
    /// links, and the API tokens.
    async fn identity_section(&self, known: &[Identity]) -> Result<IdentitySection, EngineError> {
        let directory = &self.shared.config.directory;
        let mut principals = Vec::new();
        let mut chat_links = Vec::new();
        for who in known {
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
            groups: Vec::new(),
            tokens,
            chat_links,
            unlinked: Vec::new(),
        })
    }

    /// The audit log since `since`, read once: the chain verified, what it
    /// records counted by door, the chat users linked to no account who
    /// asked to run something, and who was decided on with which groups.
    async fn scan_audit(&self, since: Option<Timestamp>) -> Result<Scanned, EngineError> {
        let verification = self.verify_audit().await?;
        let mut by_door: BTreeMap<String, DoorCounts> = BTreeMap::new();
        let mut unlinked: BTreeMap<String, UnlinkedRow> = BTreeMap::new();
        let mut signed_in: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut after = 0;
        loop {
            let page = self.audit_records(after, since, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for record in &page {
                let e = &record.event;
                if e.kind == crate::chat::UNLINKED_ATTEMPT {
                    note_unlinked(&mut unlinked, e);
                    continue;
                }
                if e.kind == "authz.decision"
                    && let Some(groups) = e.detail["groups"].as_array()
                {
                    let groups = groups.iter().filter_map(|g| g.as_str()).map(str::to_owned);
                    signed_in.insert(e.actor.to_string(), groups.collect());
                }
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
        let mut unlinked: Vec<UnlinkedRow> = unlinked.into_values().collect();
        for row in &mut unlinked {
            row.linked_now = self
                .shared
                .store
                .linked_principal(&row.identity)
                .await?
                .map(|p| p.to_string());
        }
        let evidence = Evidence {
            since: since.map(|t| t.to_string()),
            audit_records: verification.records,
            audit_intact: verification.intact(),
            audit_break: verification.broken.as_ref().map(|b| b.to_string()),
            by_door: by_door.into_values().collect(),
        };
        Ok(Scanned {
            evidence,
            unlinked,
            signed_in,
        })
    }
}

/// What one reading of the audit log gives the report.
struct Scanned {
    evidence: Evidence,
    unlinked: Vec<UnlinkedRow>,
    /// Each principal decided on, with the groups it had then.
    signed_in: BTreeMap<String, Vec<String>>,
}

/// Principals only the identity provider knows, seen in the audit log's
/// decisions: source `oidc`, with the groups last asserted.
fn add_signed_in(principals: &mut Vec<PrincipalRow>, seen: BTreeMap<String, Vec<String>>) {
    let not_people = [
        Principal::anonymous(),
        Principal::system(),
        Principal::local(),
    ];
    for (name, groups) in seen {
        if principals.iter().any(|p| p.name == name)
            || not_people.iter().any(|p| p.as_str() == name)
        {
            continue;
        }
        principals.push(PrincipalRow {
            name,
            kind: "user".to_owned(),
            source: "oidc".to_owned(),
            groups,
        });
    }
}

/// Every group the principals are in or a policy names, with where its
/// members come from.
fn group_rows(principals: &[PrincipalRow], catalog: &Catalog) -> Vec<GroupRow> {
    let mut groups: BTreeMap<String, GroupRow> = BTreeMap::new();
    for p in principals {
        for g in &p.groups {
            let row = groups.entry(g.clone()).or_insert_with(|| GroupRow {
                name: g.clone(),
                sources: Vec::new(),
                members: 0,
            });
            row.members += 1;
            if !row.sources.contains(&p.source) {
                row.sources.push(p.source.clone());
            }
        }
    }
    for g in catalog.policies.named("Group") {
        groups.entry(g.clone()).or_insert_with(|| GroupRow {
            name: g,
            sources: vec!["policies".to_owned()],
            members: 0,
        });
    }
    groups.into_values().collect()
}

/// A time noted, or `?` for one that was not.
fn when(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "?".to_owned(), |t| t.to_string())
}

/// Counts one attempt of a chat user linked to no account (an audit record
/// `chat.unlinked`, whose subject is `chat:<identity>`).
fn note_unlinked(rows: &mut BTreeMap<String, UnlinkedRow>, e: &AuditEvent) {
    let identity = e.subject.strip_prefix("chat:").unwrap_or(&e.subject);
    let row = rows
        .entry(identity.to_owned())
        .or_insert_with(|| UnlinkedRow {
            identity: identity.to_owned(),
            name: None,
            attempts: 0,
            refused: 0,
            actions: Vec::new(),
            last_at: String::new(),
            linked_now: None,
        });
    row.attempts += 1;
    if e.outcome != "accepted" {
        row.refused += 1;
    }
    if let Some(action) = e.detail["action"].as_str()
        && !row.actions.iter().any(|a| a == action)
    {
        row.actions.push(action.to_owned());
    }
    if let Some(name) = e.detail["name"].as_str() {
        row.name = Some(name.to_owned());
    }
    row.last_at = e.ts.to_string();
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
