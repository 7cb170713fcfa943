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
    /// The catalog's version (its git commit when it is a repository,
    /// else the digest of its files).
    pub catalog_version: String,
    /// The selection, when the access matrix covers only part of the
    /// catalog (`--actions`, `--hosts`).
    #[serde(default)]
    pub selection: Selection,
    /// Who may do what, action by action.
    pub access: Vec<Access>,
    pub identity: IdentitySection,
    pub evidence: Evidence,
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
    pub tokens: Vec<TokenRow>,
    pub chat_links: Vec<ChatLinkRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalRow {
    pub name: String,
    /// `user` or `service`.
    pub kind: String,
    /// Where it is defined: `config`, `ldap` or `built-in`.
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
