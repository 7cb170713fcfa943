//! Authorization at the engine: every door's request is decided here with
//! the catalog's Cedar policies, and every decision that matters is
//! audited. Also answers the auditor's questions: who can do something
//! (`who_can`), and why one principal may or may not (`explain`).
//!
//! It does not parse or validate policies (`switchboard_core::policy` does)
//! and does not authenticate (see `tokens` and `oidc`).
//!
//! What is audited: every denial, and every allowed decision except `view`
//! (listings would otherwise write one record per row they show).

use std::collections::BTreeSet;
use std::sync::Arc;

use switchboard_core::audit::AuditEvent;
use switchboard_core::directory::{PrincipalEntry, PrincipalKind};
use switchboard_core::inventory::Inventory;
use switchboard_core::policy::{Decision, Question, Verb};
pub use switchboard_core::policy::{Identity, WhoCan};
use switchboard_core::{Action, Catalog, Execution, ExecutionId, Origin, Principal};
use switchboard_store::ExecutionFilter;

use crate::{Engine, EngineError};

/// The host groups the inventory (with what its sources found) puts `host`
/// in (nested ones included); none for a host it does not list. Policies see
/// them as the `HostGroup`s the target `Host` is in.
pub(crate) fn host_groups(inventory: &Inventory, host: &str) -> Vec<String> {
    inventory
        .host(host)
        .map(|h| h.groups.iter().cloned().collect())
        .unwrap_or_default()
}

impl Engine {
    /// The identity of a principal: its kind and groups from the
    /// configuration or, for principals it does not declare, from LDAP;
    /// plus the groups its identity provider asserted; nested groups of the
    /// configuration's `[groups]` expanded. When LDAP cannot answer, this
    /// fails and the request is denied: never answered with fewer groups.
    pub async fn identity_of(
        &self,
        principal: &Principal,
        asserted: &[String],
    ) -> Result<Identity, EngineError> {
        let dir = &self.shared.config.directory;
        let declared = dir.get(principal).cloned();
        let found = match (declared, &self.shared.ldap) {
            (Some(p), _) => Some(p),
            // The built-in admin is never taken from the directory.
            (None, Some(_)) if *principal != Principal::admin() => {
                self.ldap_entry(principal).await?
            }
            (None, _) => None,
        };
        let (kind, mut direct) = found.map_or((PrincipalKind::User, BTreeSet::new()), |p| {
            (p.kind, p.groups)
        });
        direct.extend(asserted.iter().cloned());
        Ok(Identity {
            principal: principal.clone(),
            kind,
            groups: dir.expand_groups(&direct),
        })
    }

    /// Every principal the configuration and LDAP know, with the built-in
    /// admin.
    pub(crate) async fn known_identities(&self) -> Result<Vec<Identity>, EngineError> {
        let dir = &self.shared.config.directory;
        let mut entries: Vec<PrincipalEntry> = dir.principals().cloned().collect();
        if let Some(ldap) = &self.shared.ldap {
            let from_ldap = ldap
                .all_users()
                .await
                .map_err(|e| EngineError::DirectoryUnavailable(e.to_string()))?;
            entries.extend(
                from_ldap
                    .into_iter()
                    .filter(|p| dir.get(&p.name).is_none() && p.name != Principal::admin()),
            );
        }
        if dir.get(&Principal::admin()).is_none() {
            entries.push(PrincipalEntry {
                name: Principal::admin(),
                kind: PrincipalKind::User,
                display_name: None,
                groups: BTreeSet::new(),
            });
        }
        Ok(entries
            .into_iter()
            .map(|p| Identity {
                groups: dir.expand_groups(&p.groups),
                principal: p.name,
                kind: p.kind,
            })
            .collect())
    }

    /// The directory's entry of exactly `principal`. LDAP matches names
    /// regardless of case; a name spelt otherwise than the directory spells
    /// it is not that user (or `ALICE` would get alice's groups while
    /// escaping policies that name `User::"alice"`).
    async fn ldap_entry(
        &self,
        principal: &Principal,
    ) -> Result<Option<PrincipalEntry>, EngineError> {
        let Some(ldap) = &self.shared.ldap else {
            return Ok(None);
        };
        let entry = ldap
            .user(principal)
            .await
            .map_err(|e| EngineError::DirectoryUnavailable(e.to_string()))?;
        Ok(entry.filter(|p| p.name == *principal))
    }

    /// Whether `principal` is known: declared, in LDAP, or the admin.
    pub async fn is_known(&self, principal: &Principal) -> Result<bool, EngineError> {
        if *principal == Principal::admin() || self.shared.config.directory.get(principal).is_some()
        {
            return Ok(true);
        }
        match &self.shared.ldap {
            Some(_) => Ok(self.ldap_entry(principal).await?.is_some()),
            None => Ok(self.shared.config.directory.is_empty()),
        }
    }

    /// Decides without recording anything: for filtering listings.
    pub fn permits(
        &self,
        who: &Identity,
        origin: &Origin,
        verb: Verb,
        action: Option<&Action>,
    ) -> bool {
        let q = Question::new(verb, action, origin);
        self.catalog().policies.decide(who, &q).allowed
    }

    /// Decides a request, records the decision, and refuses with its reason
    /// when denied. Actions with targets are decided once per target; one
    /// denial denies the whole request.
    pub async fn authorize(
        &self,
        who: &Identity,
        origin: &Origin,
        verb: Verb,
        action: Option<&Action>,
        targets: &[String],
        requester: Option<&Principal>,
    ) -> Result<Decision, EngineError> {
        let catalog = self.catalog();
        let mut q = Question::new(verb, action, origin);
        q.requester = requester;
        let inventory = self.inventory();
        let groups: Vec<Vec<String>> = targets.iter().map(|t| host_groups(&inventory, t)).collect();
        let decisions: Vec<(Option<&str>, Decision)> = if targets.is_empty() {
            vec![(None, catalog.policies.decide(who, &q))]
        } else {
            targets
                .iter()
                .zip(&groups)
                .map(|(t, g)| {
                    q.target = Some((t.as_str(), g.as_slice()));
                    (Some(t.as_str()), catalog.policies.decide(who, &q))
                })
                .collect()
        };
        let (target, mut decision) = decisions
            .iter()
            .find(|(_, d)| !d.allowed)
            .or_else(|| decisions.first())
            .cloned()
            .ok_or_else(|| EngineError::Internal("no decision was made".to_owned()))?;
        if decision.allowed {
            // Any target that may be acted on only with approval makes the
            // whole request wait for it.
            decision.approval = decisions.iter().find_map(|(_, d)| d.approval.clone());
        }
        for error in &decision.errors {
            tracing::warn!(%error, "a policy failed to evaluate and was skipped");
        }
        if !decision.allowed || verb != Verb::View {
            let subject = action.map_or_else(
                || "switchboard".to_owned(),
                |a| format!("action:{}", a.name),
            );
            self.record(AuditEvent::now(
                &who.principal,
                origin,
                "authz.decision",
                subject,
                if decision.allowed {
                    "allowed"
                } else {
                    "denied"
                },
                serde_json::json!({
                    "verb": verb,
                    "target": target,
                    "targets": targets,
                    "groups": who.groups,
                    "policies": decision.policies,
                    "reason": decision.reason,
                    "approval": decision.approval,
                }),
            ))
            .await;
        }
        if decision.allowed {
            Ok(decision)
        } else {
            Err(EngineError::Forbidden(decision.reason))
        }
    }

    /// Why `principal` may or may not: the decision with its policies.
    pub async fn explain(
        &self,
        principal: &Principal,
        verb: Verb,
        action: Option<&str>,
        target: Option<&str>,
        origin: &Origin,
    ) -> Result<(Identity, Decision), EngineError> {
        let catalog = self.catalog();
        let action = resolve(&catalog, verb, action)?;
        let who = self.identity_of(principal, &[]).await?;
        let groups = target
            .map(|t| host_groups(&self.inventory(), t))
            .unwrap_or_default();
        let mut q = Question::new(verb, action.as_deref(), origin);
        q.target = target.map(|t| (t, groups.as_slice()));
        let decision = catalog.policies.decide(&who, &q);
        Ok((who, decision))
    }

    /// Every known principal and group that may `verb` `action` (on
    /// `target`), through `door` or, when none is given, through any door.
    pub async fn who_can(
        &self,
        verb: Verb,
        action: Option<&str>,
        target: Option<&str>,
        door: Option<&str>,
    ) -> Result<WhoCan, EngineError> {
        let catalog = self.catalog();
        let action = resolve(&catalog, verb, action)?;
        let known = self.known_identities().await?;
        let groups = target
            .map(|t| host_groups(&self.inventory(), t))
            .unwrap_or_default();
        catalog
            .policies
            .who_can(
                &known,
                &self.shared.config.directory,
                verb,
                action.as_deref(),
                target.map(|t| (t, groups.as_slice())),
                door,
            )
            .map_err(EngineError::Invalid)
    }

    /// The action `name`, if `who` may view it. One they may not is
    /// answered as unknown, so its existence does not leak; the denial is
    /// audited.
    pub async fn visible_action(
        &self,
        who: &Identity,
        origin: &Origin,
        name: &str,
    ) -> Result<Arc<Action>, EngineError> {
        // "Did you mean" only among the actions `who` may see, so that a
        // suggestion never names a hidden one.
        let unknown = || {
            let visible = self.visible_actions(who, origin);
            let names: Vec<&str> = visible.iter().map(|a| a.name.as_str()).collect();
            EngineError::UnknownAction {
                name: name.to_owned(),
                suggestion: switchboard_core::params::closest(name, &names).map(str::to_owned),
            }
        };
        let action = self.catalog().action(name).cloned().ok_or_else(unknown)?;
        match self
            .authorize(who, origin, Verb::View, Some(&action), &[], None)
            .await
        {
            Ok(_) => Ok(action),
            Err(EngineError::Forbidden(_)) => Err(unknown()),
            Err(e) => Err(e),
        }
    }

    /// The catalog's actions `who` may view, by name.
    pub fn visible_actions(&self, who: &Identity, origin: &Origin) -> Vec<Arc<Action>> {
        self.catalog()
            .actions()
            .filter(|a| self.permits(who, origin, Verb::View, Some(a)))
            .cloned()
            .collect()
    }

    /// A page of the executions `who` may view. Executions of actions that
    /// left the catalog are shown to those permitted `admin` only.
    pub async fn list_visible(
        &self,
        who: &Identity,
        origin: &Origin,
        mut filter: ExecutionFilter,
    ) -> Result<Vec<Execution>, EngineError> {
        if !self.permits(who, origin, Verb::Admin, None) {
            let names = self
                .visible_actions(who, origin)
                .into_iter()
                .map(|a| a.name.clone())
                .collect();
            filter.actions_in = Some(names);
        }
        self.list(&filter).await
    }

    /// One execution, if `who` may view it.
    pub async fn get_visible(
        &self,
        who: &Identity,
        origin: &Origin,
        id: ExecutionId,
    ) -> Result<Execution, EngineError> {
        let execution = self.get(id).await?;
        self.authorize_on_execution(who, origin, Verb::View, &execution)
            .await?;
        Ok(execution)
    }
}

/// The action a verb needs (none for service-wide verbs).
fn resolve(
    catalog: &Catalog,
    verb: Verb,
    action: Option<&str>,
) -> Result<Option<Arc<Action>>, EngineError> {
    if verb.is_service_wide() {
        return Ok(None);
    }
    let Some(name) = action else {
        return Err(EngineError::Invalid(format!(
            "`{verb}` is about an action: name one"
        )));
    };
    match catalog.action(name) {
        Some(a) => Ok(Some(a.clone())),
        None => Err(EngineError::UnknownAction {
            suggestion: catalog.suggest(name).map(str::to_owned),
            name: name.to_owned(),
        }),
    }
}
