//! The auditor's report: how Switchboard is set up and who can do what,
//! as one document built from the live configuration ([`Report`]), its
//! renderings for people ([`render`]: Markdown, a self-contained HTML
//! page, the access matrix as CSV) and the changes in access between two
//! reports ([`diff`]).
//!
//! The report holds names, rules and counts — never a secret: tokens
//! appear by owner, scopes and dates, secrets by reference at most.
//!
//! Not here: gathering it (the engine asks the policies, the directory,
//! the store), serving it (the http crate) or writing files (the binary).

pub mod diff;
pub mod render;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

/// The report, as `GET /api/v1/report` answers and `--format json` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// When it was made (RFC 3339, UTC).
    pub generated_at: String,
    /// The node that made it.
    pub node: String,
    /// Switchboard's version.
    pub version: String,
    /// The digest of the catalog's files.
    pub catalog_version: String,
    /// The git commit checked out in the catalog folder, when it is a
    /// repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_commit: Option<String>,
    /// The selection, when the access matrix covers only part of the
    /// catalog (`--actions`, `--hosts`).
    #[serde(default)]
    pub selection: Selection,
    /// The front doors, and how each knows who is calling.
    #[serde(default)]
    pub doors: Vec<DoorRow>,
    /// Who may do what, action by action.
    pub access: Vec<Access>,
    pub identity: IdentitySection,
    #[serde(default)]
    pub automation: AutomationSection,
    pub evidence: Evidence,
    #[serde(default)]
    pub cluster: ClusterSection,
}

/// A front door: `api`, `web`, `chat:slack`, `chatops-rpc`, `webhook`,
/// `schedule`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorRow {
    pub door: String,
    /// What it reaches or listens on.
    pub reaches: String,
    /// How it knows who is calling.
    pub authentication: String,
    /// Its long-lived connection, for doors with one: `connected on
    /// node-1 since … (irc.example.net:6697 as switchboard)`, or `not
    /// connected since …: why`. Empty for doors that only answer requests.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
    /// When it last heard from a caller (RFC 3339; to within 10 seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event: Option<String>,
}

/// What the access matrix was asked about.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// Action names or patterns (`db.*`); empty for every action.
    #[serde(default)]
    pub actions: Vec<String>,
    /// Hosts the targeted actions were asked about; empty for none.
    #[serde(default)]
    pub hosts: Vec<String>,
}

/// One verb on one action (on one host, for targeted actions asked about
/// hosts): who may, through which doors, by which policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Access {
    pub action: String,
    /// `run`, `approve`, `cancel` or `silence`.
    pub verb: String,
    /// The host asked about, for targeted actions with `--hosts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Who must approve a run, when the action needs approval
    /// (`1 of group:sre-leads, not the requester`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// Known principals who may (configured, from the directory).
    pub principals: Vec<Holder>,
    /// Groups whose membership alone is enough, including members no
    /// directory lists (OIDC users asserting the group).
    pub groups: Vec<Holder>,
    /// Set when any signed-in principal may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub everyone: Option<Holder>,
}

/// Someone who holds a right: a principal (`alice`), a group
/// (`group:sre`) or everyone (`everyone`), with the doors it holds it
/// through and the policies that grant it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub who: String,
    /// `user`, `service`, `group` or `everyone`.
    pub kind: String,
    pub doors: Vec<String>,
    pub policies: Vec<String>,
}

/// Principals, groups, tokens and chat links.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdentitySection {
    pub principals: Vec<PrincipalRow>,
    /// Every group a principal is in or a policy names.
    #[serde(default)]
    pub groups: Vec<GroupRow>,
    pub tokens: Vec<TokenRow>,
    pub chat_links: Vec<ChatLinkRow>,
    /// Chat users linked to no account who asked to run something (over
    /// the evidence's period).
    #[serde(default)]
    pub unlinked: Vec<UnlinkedRow>,
}

/// A group: where its members come from, and how many are known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRow {
    pub name: String,
    /// `config`, `ldap`, `oidc` (asserted by the identity provider at
    /// sign-in), or `policies` (named by a policy, no member known).
    pub sources: Vec<String>,
    /// Known principals in it (through nested groups too).
    pub members: usize,
}

/// A chat user linked to no account who asked to run actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlinkedRow {
    /// `slack:T01ABC/U999`, `irc:libera/~nick`.
    pub identity: String,
    /// The display name the platform gave, last time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub attempts: u64,
    /// Of which refused (by policy, or not a command for them).
    pub refused: u64,
    pub actions: Vec<String>,
    /// The last attempt (RFC 3339).
    pub last_at: String,
    /// The principal the identity has been linked to since, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_now: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalRow {
    pub name: String,
    /// `user` or `service`.
    pub kind: String,
    /// Where it is defined: `config`, `ldap`, `built-in`, or `oidc` for
    /// one only the identity provider knows, seen signing in (its groups
    /// as last asserted).
    pub source: String,
    /// Its groups, with those they are in.
    pub groups: Vec<String>,
}

/// An API token, by what it allows — never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRow {
    pub id: i64,
    pub owner: String,
    pub scopes: Vec<String>,
    pub description: String,
    pub created_by: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub state: String,
}

/// A chat identity linked to a principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatLinkRow {
    /// `slack:T01ABC/U123`.
    pub identity: String,
    pub principal: String,
}

/// What the store says happened: the audit chain, and counts by door.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The start of the counted period (RFC 3339), if one was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Records of the audit chain that verify.
    pub audit_records: i64,
    /// Whether the whole chain verifies.
    pub audit_intact: bool,
    /// Where it breaks, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_break: Option<String>,
    /// By door (`api`, `web`, `chat`, `schedule`, …).
    pub by_door: Vec<DoorCounts>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorCounts {
    pub door: String,
    pub executions: u64,
    pub denials: u64,
    pub approvals: u64,
}

/// What runs without a person asking: the catalog by runner, how SSH
/// trusts hosts, workflows, schedules, inbound webhooks, and what alerts
/// reach and start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AutomationSection {
    /// Each runner (`local`, `ssh`, `http`, `query`, `workflow`) and its
    /// actions.
    pub runners: Vec<RunnerRow>,
    pub ssh: SshRow,
    /// Each workflow: what it calls, who answers its questions, as whom.
    #[serde(default)]
    pub workflows: Vec<WorkflowRow>,
    pub schedules: Vec<ScheduleRow>,
    pub webhooks: Vec<WebhookRow>,
    /// Each alert route: what it matches and where it sends.
    pub alert_routes: Vec<AlertRouteRow>,
    pub escalations: Vec<EscalationRow>,
    /// Actions alerts start.
    pub alert_automations: Vec<AlertAutomationRow>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerRow {
    pub runner: String,
    pub actions: Vec<String>,
}

/// How the SSH runner reaches hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshRow {
    /// Hosts of the inventory.
    pub hosts: usize,
    pub user: String,
    /// `strict` (an unknown key is refused) or `accept-new`.
    pub host_key_policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<String>,
}

/// A workflow of the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowRow {
    pub name: String,
    pub steps: usize,
    /// The actions its steps run.
    pub actions: Vec<String>,
    /// Its questions to people: `confirm: group:sre-leads`.
    pub inquiries: Vec<String>,
    /// The principal every step runs as, when not the requester.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRow {
    pub name: String,
    pub action: String,
    pub cron: String,
    pub timezone: String,
    pub run_as: String,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
}

/// An inbound webhook: who it runs what as, and how a caller proves itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRow {
    pub name: String,
    pub action: String,
    pub run_as: String,
    /// `HMAC-SHA256 in X-Signature, 5m replay window` — never the secret.
    pub authentication: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRouteRow {
    /// Its key in `alerts.toml`.
    pub route: String,
    pub matchers: String,
    pub receiver: String,
    /// Where the receiver sends: `chat slack:#ops`, `email oncall@…`,
    /// `webhook https://hooks.example.com` (the host only: a URL's path
    /// can hold a token), `pagerduty`, `opsgenie`.
    pub outlets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationRow {
    pub name: String,
    /// `notify sre-pager`, `wait 10m`, …
    pub steps: Vec<String>,
    pub repeat: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertAutomationRow {
    pub name: String,
    pub matchers: String,
    pub action: String,
    pub run_as: String,
}

/// Where the data lives and who leads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSection {
    /// `sqlite` or `postgres`.
    pub storage: String,
    /// Whether several nodes may share it.
    pub shared: bool,
    /// The node that made the report.
    pub node: String,
    /// The node holding the leader lease, if any does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_since: Option<String>,
    /// How long the leader has held its lease (`2h 5m 3s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_for: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires: Option<String>,
    /// Every node that ever ran on this storage, by name.
    #[serde(default)]
    pub nodes: Vec<NodeRow>,
}

/// A node, as its own lease shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRow {
    pub node: String,
    /// Whether its heartbeat keeps its lease: `false` once it stopped.
    pub alive: bool,
    /// Its last heartbeat (RFC 3339).
    pub last_seen: String,
    pub leader: bool,
}
