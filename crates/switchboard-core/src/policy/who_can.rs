//! "Who can VERB ACTION?": every known principal, and every group, whom the
//! policies let through, by door. Known principals are the ones the caller
//! passes (the configuration's, the directory's, the built-in admin); groups
//! cover members no directory lists (OIDC users asserting a group).
//!
//! It evaluates the policies one principal and door at a time; it does not
//! look anyone up.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use super::{DOORS, Identity, Policies, PolicyRef, Question, Verb};
use crate::catalog::Action;
use crate::directory::{Directory, PrincipalKind};
use crate::ids::{Origin, Principal};

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
    /// Known principals who may.
    pub principals: Vec<Grant>,
    /// Groups whose membership alone is enough; members the directory does
    /// not list (for example OIDC users asserting the group) are covered here.
    pub groups: Vec<GroupGrant>,
    /// Set when any signed-in principal may, group or not.
    pub everyone: Option<GroupGrant>,
    /// Principals examined.
    pub examined: usize,
}

/// The doors that let someone through, and the policies that did.
type Through = (Vec<String>, Vec<PolicyRef>);

/// The origin that stands for a door: `api`, `chat:slack:#ops`, or `chat`
/// alone for a room no policy names (`chat:*:*`).
pub fn door_origin(door: &str) -> Result<Origin, String> {
    let text = if door == "chat" { "chat:*:*" } else { door };
    match Origin::new(text) {
        Ok(o) if o.as_str() != "system" && o.as_str() != "local" => Ok(o),
        _ => Err(format!(
            "unknown door `{door}`: expected one of {} (or `chat:PLATFORM:ROOM`)",
            DOORS.join(", ")
        )),
    }
}

impl Policies {
    /// Every principal of `known`, and every group (of `directory` or named
    /// by a policy), that may `verb` `action` (on `target`, a host with the
    /// host groups it is in), through `door`
    /// or, when none is given, through every door: each chat room a policy
    /// names, and any other room.
    pub fn who_can(
        &self,
        known: &[Identity],
        directory: &Directory,
        verb: Verb,
        action: Option<&Action>,
        target: Option<(&str, &[String])>,
        door: Option<&str>,
    ) -> Result<WhoCan, String> {
        let origins: Vec<Origin> = match door {
            Some(d) => vec![door_origin(d)?],
            None => DOORS
                .iter()
                .map(|d| door_origin(d))
                .chain(
                    self.named("Channel")
                        .into_iter()
                        .map(|c| door_origin(&format!("chat:{c}"))),
                )
                .collect::<Result<_, _>>()?,
        };
        // Which doors let `who` through, and by which policies.
        let check = |who: &Identity| -> Through {
            let mut through = Vec::new();
            let mut policies: Vec<PolicyRef> = Vec::new();
            for origin in &origins {
                let mut q = Question::new(verb, action, origin);
                q.target = target;
                let d = self.decide(who, &q);
                if d.allowed {
                    through.push(origin.to_string());
                    for p in d.policies {
                        if !policies.contains(&p) {
                            policies.push(p);
                        }
                    }
                }
            }
            (through, policies)
        };
        // A principal no policy names is decided by its kind and the groups
        // policies name (who-can sets no requester; a group no policy names
        // changes no decision), so principals alike in those share one
        // evaluation: directories have far fewer distinct such sets than
        // people.
        let named_users = self.named("User");
        let named_groups = self.named("Group");
        let mut by_class: HashMap<(PrincipalKind, BTreeSet<String>), Through> = HashMap::new();
        let mut class_check = |who: &Identity| {
            let named: BTreeSet<String> = who.groups.intersection(&named_groups).cloned().collect();
            by_class
                .entry((who.kind, named))
                .or_insert_with(|| check(who))
                .clone()
        };
        let mut principals = Vec::new();
        for who in known {
            let (doors, policies) = if named_users.contains(who.principal.as_str()) {
                check(who)
            } else {
                class_check(who)
            };
            if !doors.is_empty() {
                principals.push(Grant {
                    principal: who.principal.clone(),
                    kind: who.kind,
                    doors,
                    policies,
                });
            }
        }
        // A stand-in no policy can name: what membership alone grants.
        let member_of = |groups: BTreeSet<String>| Identity {
            principal: Principal::anonymous(),
            kind: PrincipalKind::User,
            groups,
        };
        let everyone = {
            let (doors, policies) = class_check(&member_of(BTreeSet::new()));
            (!doors.is_empty()).then(|| GroupGrant {
                group: "*".to_owned(),
                doors,
                policies,
            })
        };
        let mut groups = Vec::new();
        if everyone.is_none() {
            let mut all_groups = named_groups.clone();
            for who in known {
                all_groups.extend(who.groups.iter().cloned());
            }
            for g in all_groups {
                let (doors, policies) = class_check(&member_of(directory.expand_groups([&g])));
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
            target: target.map(|(host, _)| host.to_owned()),
            doors: origins.iter().map(ToString::to_string).collect(),
            examined: known.len(),
            principals,
            groups,
            everyone,
        })
    }
}
