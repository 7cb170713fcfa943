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

use serde::Serialize;
use switchboard_core::audit::AuditEvent;
use switchboard_core::directory::PrincipalKind;
use switchboard_core::params::{ParamType, ParamValue, ValidatedParams};
use switchboard_core::policy::{DOORS, Decision, PolicyRef, Question, Subject, Verb};
use switchboard_core::{Action, Catalog, Execution, ExecutionId, Origin, Principal};
use switchboard_store::ExecutionFilter;

use crate::{Engine, EngineError};

/// Who a request speaks for, as policies see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub principal: Principal,
    pub kind: PrincipalKind,
    /// Every group, nested ones expanded.
    pub groups: BTreeSet<String>,
}

impl Identity {
    fn subject(&self) -> Subject<'_> {
        Subject {
            principal: &self.principal,
            kind: self.kind,
            groups: &self.groups,
        }
    }
}

/// One principal who may, and the policies that let them.
#[derive(Debug, Clone, Serialize)]
pub struct Grant {
    pub principal: Principal,
    pub kind: PrincipalKind,
    /// The doors through which it is permitted.
    pub doors: Vec<String>,
    pub policies: Vec<PolicyRef>,
}

/// A group whose every member may, whoever they are.
#[derive(Debug, Clone, Serialize)]
pub struct GroupGrant {
    pub group: String,
    pub doors: Vec<String>,
    pub policies: Vec<PolicyRef>,
}

/// The answer to "who can VERB ACTION [on TARGET]?".
#[derive(Debug, Clone, Serialize)]
pub struct WhoCan {
    pub verb: Verb,
    pub action: Option<String>,
    pub target: Option<String>,
    /// The doors considered.
    pub doors: Vec<String>,
    /// Known principals (configuration, directory, the built-in admin) who may.
    pub principals: Vec<Grant>,
    /// Groups whose membership alone is enough; members the directory does
    /// not list (for example OIDC users asserting the group) are covered here.
    pub groups: Vec<GroupGrant>,
    /// Set when any signed-in principal may, group or not.
    pub everyone: Option<GroupGrant>,
    /// Principals examined.
    pub examined: usize,
}

/// The hosts an action's parameters target: the values of its `host`
/// parameters.
pub fn targets(action: &Action, params: &ValidatedParams) -> Vec<String> {
    action
        .params
        .iter()
        .filter(|p| p.ty == ParamType::Host)
        .filter_map(|p| match params.get(&p.name) {
            Some(ParamValue::Text(host)) => Some(host.clone()),
            _ => None,
        })
        .collect()
}

/// The targets of a stored execution, from its recorded parameters.
pub fn stored_targets(action: &Action, params: &serde_json::Value) -> Vec<String> {
    action
        .params
        .iter()
        .filter(|p| p.ty == ParamType::Host)
        .filter_map(|p| {
            params
                .get(&p.name)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .collect()
}

impl Engine {
    /// The identity of a principal: its kind and groups from the
    /// configuration, plus groups its identity provider asserted.
    pub fn identity_of(&self, principal: &Principal, asserted: &[String]) -> Identity {
        let dir = &self.shared.config.directory;
        let mut groups = dir.groups_of(principal);
        groups.extend(dir.expand_groups(asserted));
        Identity {
            kind: dir.get(principal).map_or(PrincipalKind::User, |p| p.kind),
            principal: principal.clone(),
            groups,
        }
    }

    /// Decides without recording anything: for filtering listings.
    pub fn permits(&self, who: &Identity, origin: &Origin, verb: Verb, action: &Action) -> bool {
        let q = Question::new(verb, Some(action), origin);
        self.catalog().policies.decide(who.subject(), &q).allowed
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
        let no_groups: &[String] = &[];
        let decisions: Vec<(Option<&str>, Decision)> = if targets.is_empty() {
            vec![(None, catalog.policies.decide(who.subject(), &q))]
        } else {
            targets
                .iter()
                .map(|t| {
                    q.target = Some((t.as_str(), no_groups));
                    (Some(t.as_str()), catalog.policies.decide(who.subject(), &q))
                })
                .collect()
        };
        let (target, decision) = decisions
            .iter()
            .find(|(_, d)| !d.allowed)
            .or_else(|| decisions.first())
            .cloned()
            .ok_or_else(|| EngineError::Internal("no decision was made".to_owned()))?;
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
    pub fn explain(
        &self,
        principal: &Principal,
        verb: Verb,
        action: Option<&str>,
        target: Option<&str>,
        origin: &Origin,
    ) -> Result<(Identity, Decision), EngineError> {
        let catalog = self.catalog();
        let action = resolve(&catalog, verb, action)?;
        let who = self.identity_of(principal, &[]);
        let mut q = Question::new(verb, action.as_deref(), origin);
        q.target = target.map(|t| (t, &[][..]));
        let decision = catalog.policies.decide(who.subject(), &q);
        Ok((who, decision))
    }

    /// Every known principal and group that may `verb` `action` (on
    /// `target`), through `door` or, when none is given, through any door.
    pub fn who_can(
        &self,
        verb: Verb,
        action: Option<&str>,
        target: Option<&str>,
        door: Option<&str>,
    ) -> Result<WhoCan, EngineError> {
        let catalog = self.catalog();
        let action = resolve(&catalog, verb, action)?;
        let doors: Vec<String> = match door {
            Some(d) => vec![door_origin(d)?.to_string()],
            // Every door, and for chat every room a policy names plus any
            // other room.
            None => DOORS
                .iter()
                .map(|d| door_origin(d).map(|o| o.as_str().to_owned()))
                .chain(
                    catalog
                        .policies
                        .named("Channel")
                        .into_iter()
                        .map(|c| Ok(format!("chat:{c}"))),
                )
                .collect::<Result<_, _>>()?,
        };
        let origins: Vec<Origin> = doors
            .iter()
            .map(|d| Origin::new(d.clone()))
            .collect::<Result<_, _>>()
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        // Which doors let `who` through, and by which policies.
        let check = |who: &Identity| -> (Vec<String>, Vec<PolicyRef>) {
            let mut through = Vec::new();
            let mut policies: Vec<PolicyRef> = Vec::new();
            for origin in &origins {
                let mut q = Question::new(verb, action.as_deref(), origin);
                q.target = target.map(|t| (t, &[][..]));
                let d = catalog.policies.decide(who.subject(), &q);
                if d.allowed {
                    through.push(origin.to_string());
                    for p in d.policies {
                        if !policies.contains(&p) {
                            policies.push(p);
                        }
                    }
                }
            }
            through.dedup();
            (through, policies)
        };
        let dir = &self.shared.config.directory;
        let mut names: Vec<Principal> = dir.principals().map(|p| p.name.clone()).collect();
        if !names.contains(&Principal::admin()) {
            names.push(Principal::admin());
        }
        let mut principals = Vec::new();
        for name in &names {
            let who = self.identity_of(name, &[]);
            let (doors, policies) = check(&who);
            if !doors.is_empty() {
                principals.push(Grant {
                    principal: who.principal,
                    kind: who.kind,
                    doors,
                    policies,
                });
            }
        }
        // A stand-in no policy can name: what membership alone grants.
        let stand_in = Principal::anonymous();
        let member_of = |groups: BTreeSet<String>| Identity {
            principal: stand_in.clone(),
            kind: PrincipalKind::User,
            groups,
        };
        let everyone = {
            let (doors, policies) = check(&member_of(BTreeSet::new()));
            (!doors.is_empty()).then(|| GroupGrant {
                group: "*".to_owned(),
                doors,
                policies,
            })
        };
        let mut all_groups: BTreeSet<String> = BTreeSet::new();
        for p in dir.principals() {
            all_groups.extend(dir.groups_of(&p.name));
        }
        all_groups.extend(catalog.policies.named("Group"));
        let mut groups = Vec::new();
        if everyone.is_none() {
            for g in all_groups {
                let (doors, policies) = check(&member_of(dir.expand_groups([&g])));
                if !doors.is_empty() {
                    groups.push(GroupGrant {
                        group: g,
                        doors,
                        policies,
                    });
                }
            }
        }
        Ok(WhoCan {
            verb,
            action: action.map(|a| a.name.to_string()),
            target: target.map(str::to_owned),
            doors,
            examined: names.len(),
            principals,
            groups,
            everyone,
        })
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

/// The origin that stands for a door: `api`, `chat:slack:#ops`, or `chat`
/// alone for a room no policy names (`chat:*:*`).
fn door_origin(door: &str) -> Result<Origin, EngineError> {
    let text = if door == "chat" { "chat:*:*" } else { door };
    match Origin::new(text) {
        Ok(o) if o.as_str() != "system" && o.as_str() != "local" => Ok(o),
        _ => Err(EngineError::Invalid(format!(
            "unknown door `{door}`: expected one of {} (or `chat:PLATFORM:ROOM`)",
            DOORS.join(", ")
        ))),
    }
}

impl Engine {
    fn may_admin(&self, who: &Identity, origin: &Origin) -> bool {
        let q = Question::new(Verb::Admin, None, origin);
        self.catalog().policies.decide(who.subject(), &q).allowed
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
        let catalog = self.catalog();
        let unknown = || EngineError::UnknownAction {
            name: name.to_owned(),
            suggestion: None,
        };
        let action = resolve(&catalog, Verb::View, Some(name))?.ok_or_else(unknown)?;
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
            .filter(|a| self.permits(who, origin, Verb::View, a))
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
        if !self.may_admin(who, origin) {
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
